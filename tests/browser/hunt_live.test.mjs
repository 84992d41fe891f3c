// A hunt's results show up while it is still running, not only at the end.
//
// Deterministic by construction, not by timing: hunts verify the largest
// candidates first, so the store's largest file is the one that matches and
// it is verified first; a dozen MB of random files follow that the index
// cannot exclude (the rule's regular expressions have no literal to look up,
// checked through the hunt's candidate count) and that libyara scans slowly
// (those expressions are checked at almost every byte). The page is read in
// one JavaScript turn: a result row and the state line saying "running" at
// the same instant. The server runs one verification worker so that the
// page's polls are not starved by the hunt. If the hunt was over before the first row could be
// shown, the test does not pass: it runs again with twice the expressions
// (twice the work per byte), at most three times, then fails.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { callApi, launchChromium, shot, startServer, trawl, until as untilDone } from "./harness.mjs";

const MARK = "LIVE_HUNT_MARK_7Q";
const FILLERS = 6;
let data, server, base, browser, page, key, matchSha;

const call = (path, opts = {}) => callApi(base, key, path, opts);
const until = (what, fn, ms = 120000) => untilDone(what, fn, ms);

// The marker, or any of `slow` expressions that random bytes essentially
// never match (18 bytes of given classes) and that have no literal.
function rule(slow) {
  const classes = ["[a-z]", "[0-9]", "[A-Z]"];
  const res = [];
  for (let i = 0; i < slow; i++) {
    const c = [0, 1, 2].map((k) => classes[(i + k) % 3] + `{${6 + (i >> 2) % 2}}`);
    res.push(`$r${i} = /${c.join("")}/`);
  }
  return `rule live_first { meta: author = "browser test" strings: $m = "${MARK}" ${res.join(" ")} condition: $m or any of ($r*) }\n`;
}

before(async () => {
  data = mkdtempSync(join(tmpdir(), "trawl-huntlive-"));
  const files = join(data, "in");
  mkdirSync(files);
  // The matching file is the largest (4 MB), the fillers 2 MB each.
  const big = Buffer.concat([randomBytes(2 << 20), Buffer.from(MARK), randomBytes(2 << 20)]);
  matchSha = createHash("sha256").update(big).digest("hex");
  writeFileSync(join(files, "big_match.bin"), big);
  for (let i = 0; i < FILLERS; i++) writeFileSync(join(files, `filler_${i}.bin`), randomBytes((2 << 20) - 4096 * i));
  execFileSync(trawl, ["--data", join(data, "store"), "add", files], { stdio: "ignore" });
  key = execFileSync(trawl, ["--data", join(data, "store"), "key", "add", "--role", "analyst", "live-tester"]).toString().trim();
  // One verification worker: the hunt then leaves a core to the server and
  // the browser, whose polls would otherwise queue behind it.
  const s = await startServer(join(data, "store"), "--workers", "1");
  server = s.proc;
  base = s.url;
  await until("indexing", async () => (await call("/api/index")).documents >= FILLERS + 1);
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 850 } });
  await ctx.addInitScript((k) => localStorage.setItem("trawl.key", k), key);
  page = await ctx.newPage();
  page.on("pageerror", (e) => { throw e; });
  // The app is loaded once; each hunt is then opened by its link, as a user
  // would after submitting (no page load in the timed part).
  await page.goto(`${base}/#/hunts`);
  await page.waitForSelector("#list");
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

test("a hunt's first result is shown while it still runs", async () => {
  const seen = [];
  for (let attempt = 0, slow = 4; attempt < 3; attempt++, slow *= 2) {
    const id = (await call("/api/hunts", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rule: rule(slow) }) })).id;
    await page.evaluate((h) => { location.hash = h; }, `#/hunts/${id}`);
    // One turn of the page's JavaScript: the row and the state together.
    const got = await (await page.waitForFunction(() => {
      const g = document.querySelector("#matches .match-group");
      const state = document.querySelector("#state b");
      if (!g || !state) return null;
      return { status: state.textContent, href: g.querySelector("header a.mono")?.getAttribute("href") || "",
        bar: Number(document.querySelector("#state .progress")?.getAttribute("aria-valuenow")),
        line: document.querySelector("#state").textContent.replace(/\s+/g, " ") };
    }, null, { polling: 50, timeout: 120000 })).jsonValue();
    // Whatever happened, the hunt must be what the test built: every sample a
    // candidate (nothing excluded by the index), one match, the big file.
    const j = await until("the hunt to end", async () => {
      const x = await call("/api/hunts/" + id);
      return ["queued", "running"].includes(x.status) ? null : x;
    });
    assert.equal(j.status, "done", JSON.stringify(j));
    assert.equal(j.candidates, FILLERS + 1, "the index excluded files: the test's premise is gone");
    assert.equal(j.matches, 1);
    assert.ok(got.href.includes(matchSha), got.href);
    seen.push(`${slow} expressions: ${got.status} (${got.line.trim()})`);
    if (got.status === "running") {
      assert.ok(got.bar < 100, `progress ${got.bar}`);
      await shot(page, "hunt-live-running");
      console.log(`# first row shown while running, attempt ${attempt + 1}: ${got.line.trim()}`);
      if (seen.length > 1) console.log("# earlier attempts: " + seen.slice(0, -1).join("; "));
      return;
    }
  }
  assert.fail("every hunt ended before its first result row was shown:\n" + seen.join("\n"));
});
