// The UI at collection scale: a 10,000-match hunt paged and grouped by
// sample, the samples list's pager, sorting, search and links, keyboard-only
// navigation, a phone-sized viewport, the first-run key prompt, controls by
// role, live rules written in the editor, confirmations and undo.
// Small generated data (100 samples); the timings printed are informative,
// the bench is bench/ui.sh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { callApi, launchChromium, shot as shotOf, startServer, trawl, until } from "./harness.mjs";

let data, server, base, browser, ctx, page, key, readerKey;
const N = 100;
const hashes = [];
let huntId = 0;

async function shot(name) { await shotOf(page, "scale-" + name); }

const call = (path, opts = {}) => callApi(base, key, path, opts);

// 99 rules match every sample, two match half each: 9,900 + 50 + 50.
function bigRule() {
  const rules = [];
  for (let i = 0; i < 99; i++)
    rules.push(`rule all_${String(i).padStart(2, "0")} { meta: author = "bench" strings: $a = "SCALE_MARK_ALL" condition: $a }`);
  rules.push('rule odd_only { meta: author = "odd author" description = "odd samples" strings: $o = "SCALE_MARK_ODD" condition: $o }');
  rules.push('rule even_only { strings: $e = "SCALE_MARK_EVEN" condition: $e }');
  return rules.join("\n") + "\n";
}

before(async () => {
  data = mkdtempSync(join(tmpdir(), "trawl-uiscale-"));
  key = execFileSync(trawl, ["--data", data, "key", "add", "--role", "analyst", "scale-tester"]).toString().trim();
  readerKey = execFileSync(trawl, ["--data", data, "key", "add", "--role", "reader", "scale-reader"]).toString().trim();
  const s = await startServer(data);
  server = s.proc;
  base = s.url;
  for (let i = 0; i < N; i++) {
    const body = Buffer.concat([randomBytes(200 + 37 * i), Buffer.from(i % 2 ? "SCALE_MARK_ODD" : "SCALE_MARK_EVEN"),
      randomBytes(64), Buffer.from("SCALE_MARK_ALL"), randomBytes(100)]);
    const form = new FormData();
    form.append("file", new Blob([body]), `scale_${String(i).padStart(3, "0")}${i === 42 ? "_dropper" : ""}.bin`);
    form.append("tags", i % 10 === 0 ? "tenth, scale" : "scale");
    if (i < 30) form.append("signature", "ScaleFam");
    hashes.push((await call("/api/samples", { method: "POST", body: form })).data.sha256_hash);
  }
  await until("indexing", async () => (await call("/api/index")).documents >= N, 240000);
  huntId = (await call("/api/hunts", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ rule: bigRule() }) })).id;
  await until("the hunt", async () => !["queued", "running"].includes((await call("/api/hunts/" + huntId)).status), 240000);
  browser = await launchChromium();
  ctx = await browser.newContext({ viewport: { width: 1366, height: 850 } });
  await ctx.addInitScript((k) => { if (!localStorage.getItem("trawl.key")) localStorage.setItem("trawl.key", k); }, key);
  page = await ctx.newPage();
  page.on("pageerror", (e) => { throw e; });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

const domNodes = () => page.evaluate(() => document.getElementsByTagName("*").length);

test("a 10,000-match hunt: grouped by sample, paged, counted per rule", async () => {
  const t0 = Date.now();
  const fetches = [];
  page.on("request", (r) => { if (/\/api\/hunts\/\d+\/samples\?/.test(r.url())) fetches.push(r.url()); });
  await page.goto(`${base}/#/hunts/${huntId}`);
  await page.waitForSelector("#matches .match-group");
  const firstRow = Date.now() - t0;
  await page.waitForSelector("#state b.good");
  assert.match(await page.textContent("#state"), /10,000 matches/);
  assert.equal(await page.locator("#matches .match-group").count(), 25);
  assert.match(await page.textContent("#pager-top"), /1–25 of 100 matched samples/);
  // Rule bar: all, then every rule with its count; odd_only has 50.
  assert.equal(await page.locator("#rulebar a").count(), 102);
  assert.match(await page.textContent("#rulebar"), /all rules 10,000/);
  assert.match(await page.locator("#rulebar a", { hasText: "odd_only" }).textContent(), /odd_only 50/);
  // Strings collapsed: one hexdump a sample until "show all".
  assert.equal(await page.locator("#matches .match-group").first().locator(".hexview:visible").count(), 1);
  const nodes = await domNodes();
  assert.ok(nodes <= 5000, `DOM nodes ${nodes}`);
  console.log(`# hunt results (10,000 matches, 100 samples): first group in ${firstRow} ms, ${nodes} DOM nodes`);
  const g = page.locator("#matches .match-group").first();
  await g.locator("button.link").click();
  await g.locator(".all .hexview").nth(99).waitFor();
  assert.equal(await g.locator(".all .hexview").count(), 100);
  assert.equal(await g.locator("button.link").getAttribute("aria-expanded"), "true");
  await shot("01-results");
  // Next page: other samples, no overlap.
  const firstPage = await page.locator("#matches .match-group header a.mono").evaluateAll((a) => a.map((x) => x.getAttribute("href")));
  await page.click("#pager-top a[rel=next]");
  await page.waitForURL(/offset=25/);
  await page.waitForSelector("#pager-top:has-text('26–50 of 100')");
  const second = await page.locator("#matches .match-group header a.mono").evaluateAll((a) => a.map((x) => x.getAttribute("href")));
  assert.equal(second.length, 25);
  assert.equal(second.filter((x) => firstPage.includes(x)).length, 0);
  // The rule filter: odd_only's 50 samples, each showing that rule only.
  await page.click("#rulebar a:has-text('odd_only')");
  await page.waitForURL(/rule=odd_only/);
  await page.waitForSelector("#pager-top:has-text('of 50 matched samples')");
  assert.equal(await page.locator("#rulebar a.active").textContent(), "odd_only 50");
  const chips = await page.locator("#matches .rules-hit").allTextContents();
  assert.ok(chips.length === 25 && chips.every((c) => c.trim() === "odd_only"));
  assert.match(await page.textContent("#matches"), /odd author/);
  // A finished hunt's page was fetched once: nothing shown is fetched again.
  const firstVisit = fetches.filter((u) => /[?&]offset=0&/.test(u) && !/rule=|sample=/.test(u));
  assert.equal(firstVisit.length, 1, fetches.join("\n"));
  await shot("02-filtered");
});

test("a finished hunt offers no Cancel, keeps its rule source, re-runs from the editor", async () => {
  await page.goto(`${base}/#/hunts/${huntId}`);
  await page.waitForSelector("#controls #rerun");
  assert.equal(await page.locator("#cancel").count(), 0);
  assert.match(await page.textContent("#hunt-title"), /all_00, all_01, all_02 \+98 more/);
  assert.match(await page.title(), new RegExp(`Hunt ${huntId}`));
  await page.click("#source summary");
  assert.match(await page.textContent("#source pre"), /rule even_only/);
  await page.click("#rerun");
  await page.waitForURL(/#\/hunt$/);
  assert.match(await page.inputValue(".editor textarea"), /rule odd_only/);
  // Example asks before replacing that text; Cancel keeps it.
  await page.click("#example");
  await page.waitForSelector(".confirm[role=alertdialog]");
  await page.click(".confirm button:has-text('Cancel')");
  assert.match(await page.inputValue(".editor textarea"), /rule odd_only/);
  await page.click("#example");
  await page.click(".confirm button:has-text('Replace')");
  assert.match(await page.inputValue(".editor textarea"), /example_pe_with_url/);
});

test("hunts list: paged with its total, named from the rules", async () => {
  await page.goto(`${base}/#/hunts`);
  await page.waitForSelector("#list table");
  assert.match(await page.textContent("#list"), /1–1 of 1 hunts/);
  assert.match(await page.textContent("#list"), /all_00, all_01/);
});

test("samples: total, pager, sort by a header, search by name and hash prefix, links", async () => {
  const t0 = Date.now();
  await page.goto(`${base}/#/samples`);
  await page.waitForSelector("#list a.row-link");
  console.log(`# samples list (${N} samples): first row in ${Date.now() - t0} ms, ${await domNodes()} DOM nodes`);
  assert.match(await page.textContent("#list .pager"), /1–50 of 100 samples/);
  assert.equal(await page.locator("#list tbody tr").count(), 50);
  await page.click("#list .pager a[rel=next]");
  await page.waitForSelector("#list .pager:has-text('51–100 of 100')");
  // Sorting by size: ascending then descending, in the URL.
  await page.click("#list th a:has-text('size')");
  await page.waitForURL(/sort=size&order=desc/);
  await page.waitForSelector("th[aria-sort=descending]:has-text('size')");
  assert.equal(await page.locator("#list a.row-link").first().getAttribute("href"), `#/sample/${hashes[N - 1]}`);
  await page.click("#list th a:has-text('size')");
  await page.waitForURL(/sort=size&order=asc/);
  await page.waitForSelector("th[aria-sort=ascending]");
  assert.equal(await page.locator("#list a.row-link").first().getAttribute("href"), `#/sample/${hashes[0]}`);
  // A bare word searches file names, and says so.
  await page.fill("#q", "dropper");
  await page.press("#q", "Enter");
  await page.waitForURL(/name=dropper/);
  await page.waitForSelector(`#list a.row-link[href="#/sample/${hashes[42]}"]`);
  assert.match(await page.textContent("#searched"), /a file name containing dropper/);
  assert.match(await page.textContent("#list .pager"), /of 1 samples/);
  // A hash prefix of 10 digits.
  await page.fill("#q", hashes[7].slice(0, 10));
  await page.press("#q", "Enter");
  await page.waitForSelector(`#list a.row-link[href="#/sample/${hashes[7]}"]`);
  // Tags and signatures are links to their searches; the URL holds the view.
  await page.goto(`${base}/#/samples`);
  await page.click("#list a[href='#/samples?tag=tenth']");
  await page.waitForSelector("#list .pager:has-text('of 10 samples')");
  await page.goto(`${base}/#/samples?signature=ScaleFam&sort=size&order=asc`);
  await page.waitForSelector("#list .pager:has-text('of 30 samples')");
  assert.equal(await page.inputValue("#q"), "signature:ScaleFam");
  await shot("03-samples");
});

test("sample page: copy buttons, fields linked to searches, hunts that matched with rule meta, tag undo", async () => {
  await page.goto(`${base}/#/sample/${hashes[3]}`);
  await page.waitForSelector("#sections h2:has-text('Hunts that matched')");
  for (const h of ["sha256", "sha1", "md5", "sha3-384", "ssdeep"])
    assert.equal(await page.locator(`button.copy[aria-label='copy ${h}']`).count(), 1, h);
  assert.ok(await page.locator("dd a[href='#/samples?signature=ScaleFam']").count());
  assert.ok(await page.locator("dd a[href='#/samples?reporter=scale-tester']").count());
  assert.ok(await page.locator("dd a[href^='#/samples?name=']").count());
  const huntRows = page.locator("#sections tr", { hasText: "odd_only" });
  assert.match(await huntRows.first().textContent(), /odd author.*odd samples/s);
  // Remove a tag, then take it back.
  await page.click("button[aria-label='remove tag scale']");
  await page.waitForSelector("#tag-msg:has-text('Removed tag')");
  assert.equal(await page.locator("#tags .tag", { hasText: "scale" }).count(), 0);
  await page.click("#undo-tag");
  await page.waitForSelector("#tags .tag:has-text('scale')");
  await shot("04-sample");
  // A duplicate upload that changed the signature leaves a note.
  const body = randomBytes(900);
  let sha = "";
  for (const sig of ["OldFam", "NewFam"]) {
    const form = new FormData();
    form.append("file", new Blob([body]), "dup.bin");
    form.append("signature", sig);
    sha = (await call("/api/samples", { method: "POST", body: form })).data.sha256_hash;
  }
  await page.goto(`${base}/#/sample/${sha}`);
  await page.waitForSelector("#sections .note[role=note]");
  assert.match(await page.textContent("#sections .note"), /changed the signature from OldFam to NewFam/);
});

test("keyboard only: from the samples list to a sample and back", async () => {
  await page.goto(`${base}/#/samples`);
  await page.waitForSelector("#list a.row-link");
  await page.evaluate(() => { document.activeElement && document.activeElement.blur(); });
  let target = null;
  for (let i = 0; i < 80 && !target; i++) {
    await page.keyboard.press("Tab");
    target = await page.evaluate(() => (document.activeElement.matches("a.row-link") ? document.activeElement.getAttribute("href") : null));
  }
  assert.ok(target, "Tab reaches a row link");
  // The focus is visible.
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none");
  await page.keyboard.press("Enter");
  await page.waitForSelector("h1.mono");
  assert.equal("#/sample/" + (await page.textContent("h1.mono")), target);
  let back = false;
  for (let i = 0; i < 20 && !back; i++) {
    await page.keyboard.press("Tab");
    back = await page.evaluate(() => document.activeElement.id === "back");
  }
  assert.ok(back, "Tab reaches the back link");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#list a.row-link");
  await until("focus back on the row", () => page.evaluate((t) => document.activeElement.getAttribute("href") === t, target), 5000);
});

test("live rules: written in the editor, errors where they occur, delete asks first", async () => {
  await page.goto(`${base}/#/rules`);
  await page.waitForSelector("#list table");
  await page.fill("#rname", "kb_rule");
  await page.fill(".editor textarea", 'rule ok {\n  strings:\n    $a = "unterminated\n  condition: $a\n}\n');
  await page.click("#add button.primary");
  await page.waitForSelector("#add-error .error-box[role=alert]");
  assert.equal(await page.textContent(".editor .gutter .err"), "3");
  await page.waitForTimeout(3000);          // not a toast: still there
  assert.equal(await page.locator("#add-error .error-box").count(), 1);
  await page.fill(".editor textarea", 'rule ok { strings: $a = "SCALE_MARK_ODD" condition: $a }\n');
  await page.click("#add button.primary");
  await page.waitForSelector("#list a:has-text('kb_rule')");
  await page.click("#list button[data-act=delete][data-name=kb_rule]");
  await page.waitForSelector(".confirm");
  await page.click(".confirm button:has-text('Cancel')");
  assert.equal(await page.locator("#list a:has-text('kb_rule')").count(), 1);
  await page.click("#list button[data-act=delete][data-name=kb_rule]");
  await page.click(".confirm button:has-text('Delete')");
  await page.waitForSelector("#list td:has-text('no live rule sets')");
  // Saving a hunt's rule as a live rule.
  await page.goto(`${base}/#/hunts/${huntId}`);
  await page.click("#savelive");
  await page.fill("#live-slot input[name=name]", "from_hunt");
  await page.click("#live-slot button.primary");
  await page.waitForSelector("#live-slot a:has-text('from_hunt')");
  const r = await call("/api/rules/from_hunt");
  assert.match(r.rule, /rule odd_only/);
});

test("a 390 px phone: the nav wraps, tables scroll in their box, no page scroll", async () => {
  const phone = await ctx.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  for (const [hash, sel] of [["#/samples", "#list a.row-link"], [`#/hunts/${huntId}`, "#matches .match-group"],
    [`#/sample/${hashes[1]}`, "#sections"], ["#/hunts", "#list table"], ["#/rules", "#list table"], ["#/hunt", ".editor"]]) {
    await phone.goto(base + "/" + hash);
    await phone.waitForSelector(sel);
    const [sw, cw, wide] = await phone.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,
      [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
        .slice(0, 3).map((e) => e.tagName + "." + e.className).join(", ")]);
    assert.ok(sw <= cw, `${hash}: page ${sw} px wide in a ${cw} px viewport (${wide})`);
  }
  const navRight = await phone.evaluate(() => Math.max(...[...document.querySelectorAll(".top nav a")].map((a) => a.getBoundingClientRect().right)));
  assert.ok(navRight <= 390, `nav ends at ${navRight}`);
  await phone.screenshot({ path: join(process.cwd(), "artifacts", "scale-05-phone.png"), fullPage: true });
  await phone.close();
});

test("first run: the key is checked before it is kept; controls follow the role", async () => {
  const fresh = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const p = await fresh.newPage();
  p.on("pageerror", (e) => { throw e; });
  await p.goto(base + "/#/samples");
  await p.waitForURL(/#\/key\?next=/);
  await p.waitForSelector("text=Welcome.");
  await p.fill("#key", "trawl_not_a_real_key");
  await p.click("#kf button.primary");
  await p.waitForSelector("#key-msg .error-box[role=alert]:has-text('rejected')");
  assert.equal(await p.evaluate(() => localStorage.getItem("trawl.key")), null);
  await p.fill("#key", readerKey);
  await p.click("#kf button.primary");
  await p.waitForURL(/#\/samples/);
  await p.waitForSelector("#list a.row-link");
  assert.equal(await p.evaluate(() => localStorage.getItem("trawl.key")), readerKey);
  // A reader is not offered what it cannot do.
  await p.goto(base + "/#/hunt");
  await p.waitForSelector("#plan");
  assert.equal(await p.isVisible("#hunt"), false);
  assert.equal(await p.isVisible("#plan"), true);
  await p.goto(base + "/#/upload");
  await p.waitForSelector("#drop", { state: "attached" });
  assert.equal(await p.isVisible("#drop"), false);
  await fresh.close();
});

// Last: it adds samples and a hunt the counts above do not expect.
test("a running hunt: a byte-based bar with elapsed time and ETA; Cancel only while it runs", async () => {
  // Bytes are counted as each file is done: many middling files.
  for (let i = 0; i < 16; i++) {
    const form = new FormData();
    form.append("file", new Blob([randomBytes(300_000)]), `big${i}.bin`);
    await call("/api/samples", { method: "POST", body: form });
  }
  await until("indexing", async () => (await call("/api/index")).documents >= N + 16);
  // No strings, so no index: a loop over every byte of every file, slowly.
  const slow = "rule slow_scan { condition: for any i in (0..filesize-1) : (for any k in (1..4) : " +
    "(uint8(i) == k and uint8(i+k) == 0xF7 and uint8(i+2*k) == 0x3C and uint8(i+3*k) == 0x99)) }";
  const id = (await call("/api/hunts", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ rule: slow }) })).id;
  await page.goto(`${base}/#/hunts/${id}`);
  await page.waitForSelector("#state b:text('running')", { timeout: 30000 });
  const bar = page.locator("#state [role=progressbar]");
  assert.equal(await bar.getAttribute("aria-label"), "bytes read");
  await page.waitForFunction(() => /MB of [\d.]+ MB read/.test(document.querySelector("#state").textContent), null, { timeout: 20000 });
  assert.match(await page.textContent("#state"), /elapsed \d+s/);
  await page.waitForSelector("#state :text('left')", { timeout: 60000 });   // an ETA once bytes were read
  const now = parseInt(await bar.getAttribute("aria-valuenow"), 10);
  assert.ok(now >= 0 && now < 100);
  assert.equal(await page.locator("#cancel").count(), 1);
  assert.equal(await page.locator("#delete").count(), 0);
  await shot("06-running");
  await page.click("#cancel");
  await page.waitForSelector("#state b:text('cancelled')", { timeout: 30000 });
  await page.waitForSelector("#delete");
  assert.equal(await page.locator("#cancel").count(), 0);
});
