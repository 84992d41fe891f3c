// Browser tests: Debian's chromium, driven by playwright-core, against the real
// trawl binary. Screenshots of every step land in tests/browser/artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, createHash } from "node:crypto";
import { launchChromium, shot as shotOf, startServer, trawl } from "./harness.mjs";


let data, server, base, browser, page, key;
const marker = "TRAWL_UI_MARKER_" + randomBytes(6).toString("hex");
const sample = Buffer.concat([Buffer.from("MZ"), randomBytes(3000), Buffer.from(marker), randomBytes(2000)]);
const sha256 = createHash("sha256").update(sample).digest("hex");

async function shot(name) {
  await shotOf(page, name);
}

const cspViolations = [];

before(async () => {
  data = mkdtempSync(join(tmpdir(), "trawl-ui-"));
  key = execFileSync(trawl, ["--data", data, "key", "add", "--role", "analyst", "ui-tester"]).toString().trim();
  const s = await startServer(data);
  server = s.proc;
  base = s.url;
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 850 } });
  page = await ctx.newPage();
  page.on("pageerror", (e) => { throw e; });
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

test("sets the API key and shows who is signed in", async () => {
  await page.goto(base + "/#/key");
  await page.fill("#key", key);
  await page.click("#kf button.primary");
  await page.waitForSelector("text=Signed in as");
  assert.match(await page.textContent("#whoami"), /ui-tester/);
  assert.match(await page.textContent("#who"), /ui-tester · analyst/);
  await shot("01-key");
});

test("uploads a file with tags", async () => {
  await page.goto(base + "/#/upload");
  await page.fill("#utags", "ui-test, dropper");
  await page.setInputFiles("#files", { name: "dropper.exe", mimeType: "application/octet-stream", buffer: sample });
  await page.waitForSelector("#uploads a:text('inserted')", { timeout: 20000 });
  await shot("02-upload");
});

test("marks a parse error at its line", async () => {
  await page.goto(base + "/#/hunt");
  await page.fill(".editor textarea", 'rule broken {\n  strings:\n    $a = "unterminated\n  condition:\n    $a\n}\n');
  await page.click("#plan");
  await page.waitForSelector(".error-box");
  assert.equal(await page.textContent(".editor .gutter .err"), "3");
  await shot("03-parse-error");
});

test("plans and runs a hunt that finds the upload", async () => {
  await page.goto(base + "/#/hunt");
  const rule = `rule ui_marker {\n  strings:\n    $m = "${marker}"\n  condition:\n    $m\n}\n`;
  await page.fill(".editor textarea", rule);
  // Highlighting: the keyword and the string are coloured.
  await page.waitForSelector(".editor pre .hl-kw:text('rule')");
  await page.click("#plan");
  await page.waitForSelector("#plan-box .plan-rule");
  assert.match(await page.textContent("#plan-box"), /ui_marker/);
  assert.match(await page.textContent("#plan-box"), /accelerated/);
  await shot("04-plan");
  // The index catches up with the upload in the background.
  await page.click("#hunt");
  await page.waitForURL(/#\/hunts\/\d+/);
  try {
    await page.waitForSelector("#state b.good", { timeout: 30000 });
    await page.waitForSelector(`#matches a:text('${sha256.slice(0, 16)}')`, { timeout: 10000 });
  } catch (e) {
    await shot("05-hunt-results-failed");
    throw new Error(e.message + "\nstate: " + (await page.textContent("#state")) +
                    "\nmatches: " + (await page.textContent("#matches")));
  }
  assert.match(await page.textContent("#state"), /1 matches/);
  assert.match(await page.textContent("#matches"), /ui_marker/);
  assert.match(await page.textContent("#matches"), /ui-test/);            // the sample's tags
  assert.match(await page.textContent("#matches"), /\$m @ 0x[0-9a-f]+/);    // matched string with its offset
  assert.equal(await page.locator("#matches .hexview mark").count() >= 16, true);
  await shot("05-hunt-results");
});

test("opens the sample page from the match", async () => {
  await page.click(`#matches a:text('${sha256.slice(0, 16)}')`);
  await page.waitForSelector(`h1:text('${sha256}')`);
  const text = await page.textContent("main");
  assert.match(text, /dropper\.exe/);
  assert.match(text, /ui-test/);
  assert.match(text, /password: infected/);
  await shot("06-sample");
});

test("finds the sample by tag on the samples page", async () => {
  await page.goto(base + "/#/samples");
  await page.fill("#q", "tag:dropper");
  await page.press("#q", "Enter");
  await page.waitForSelector(`#list a.row-link[href="#/sample/${sha256}"]`);
  await shot("07-samples");
});

test("runs under its Content-Security-Policy with nothing blocked", async () => {
  const resp = await page.request.get(base + "/");
  assert.match(resp.headers()["content-security-policy"] || "", /frame-ancestors 'none'/);
  await page.goto(base + "/#/upload");
  await page.waitForSelector("#uploads", { state: "attached" });
  for (const [hash, sel] of [["#/rules", "#list table"], ["#/status", "main h2, main table, main div"], ["#/hunts", "main table, main div"]]) {
    await page.goto(base + "/" + hash);
    await page.waitForSelector(sel, { state: "attached" });
  }
  assert.deepEqual(cspViolations, []);
});
