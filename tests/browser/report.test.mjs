// Browser test of the report review page: upload a document, reject
// extractions (a click and the keyboard), add a missed name from a text
// selection, commit, and find the report on the knowledge-base page. The
// knowledge base must then hold what was accepted and not what was rejected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchChromium, root, shot as shotOf, startServer, trawl } from "./harness.mjs";

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'";
const BLOG = join(root, "tests", "fixtures", "reports", "hand-en-blog.txt");

let data, server, base, browser, page, key;
const violations = [];

function kb(type) {
  const out = execFileSync(trawl, ["--data", data, "stix", "search", "--type", type, "--limit", "1000", "--json"]);
  return JSON.parse(out.toString());
}

async function shot(name) {
  await shotOf(page, name);
}

function item(value) {
  return page.locator(".rep-item", { has: page.locator(`.mono:text-is("${value}")`) });
}

before(async () => {
  data = mkdtempSync(join(tmpdir(), "trawl-report-ui-"));
  key = execFileSync(trawl, ["--data", data, "key", "add", "--role", "analyst", "report-ui-tester"]).toString().trim();
  const s = await startServer(data);
  server = s.proc;
  base = s.url;
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  await ctx.addInitScript((k) => localStorage.setItem("trawl.key", k), key);
  await ctx.route("**/*", async (route) => {
    // route.fetch() loses a multipart body (the upload): the policy only
    // matters on the pages and scripts, which are GETs.
    if (route.request().method() !== "GET") return route.continue();
    const res = await route.fetch();
    await route.fulfill({ response: res, headers: { ...res.headers(), "content-security-policy": CSP } });
  });
  page = await ctx.newPage();
  page.on("pageerror", (e) => { throw e; });
  page.on("dialog", (d) => d.accept());
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text()) && page.url().includes("#/reports"))
      violations.push(page.url() + ": " + m.text());
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

test("uploads a document and shows it highlighted", async () => {
  await page.goto(base + "/#/reports");
  await page.waitForSelector("#rlist:has-text('No drafts yet')");
  await page.setInputFiles("#rfile", BLOG);
  await page.waitForSelector("#rtextview mark");
  assert.match(page.url(), /#\/reports\/[0-9a-f-]{36}$/);
  // The defanged spelling is what the text shows, highlighted.
  assert.equal(await page.locator("#rtextview mark.rep-ioc.rep-on:text-is('91.215.85[.]142')").count(), 2);
  assert.equal(await page.locator("#rtextview mark.rep-ioc.rep-off:text-is('rundll32.exe')").count(), 1);
  assert.ok(await item("update-msstore.com").locator("input:checked").count() === 1);
  await shot("report-01-draft");
});

test("rejects by click and by keyboard, adds a selection, edits labels", async () => {
  await item("update-msstore.com").locator("input").click();
  await page.waitForSelector("#rtextview mark.rep-off:text-is('update-msstore[.]com')");
  assert.equal(await item("update-msstore.com").locator("input:checked").count(), 0);
  // Keyboard: focus the list, walk with j, reject with r.
  const items = page.locator(".rep-item");
  const values = await items.locator(".mono").allTextContents();
  const at = values.indexOf("cdn-edgecache.net");
  assert.ok(at > 0);
  await items.nth(at - 1).focus();
  await page.keyboard.press("j");
  assert.equal(await page.evaluate(() => document.activeElement.querySelector(".mono").textContent), "cdn-edgecache.net");
  await page.keyboard.press("r");
  await page.waitForSelector(".rep-item.rep-off .mono:text-is('cdn-edgecache.net')");
  // Select the loader's name in the text and add it as new malware.
  await page.evaluate(() => {
    const pre = document.querySelector("#rtextview");
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    let n;
    while ((n = walker.nextNode()) && !n.data.includes("DriftLoader"));
    const r = document.createRange();
    r.setStart(n, n.data.indexOf("DriftLoader"));
    r.setEnd(n, n.data.indexOf("DriftLoader") + "DriftLoader".length);
    getSelection().removeAllRanges();
    getSelection().addRange(r);
    pre.dispatchEvent(new MouseEvent("mouseup", { bubbles: true }));
  });
  assert.equal(await page.inputValue("#raddvalue"), "DriftLoader");
  await page.selectOption("#raddkind", "malware");
  await page.click("#radd button");
  await page.waitForSelector(".rep-item[data-kind='cand'] .mono:text-is('DriftLoader')");
  await page.fill("#rmlabels", "loader, cdn");
  await page.selectOption("#rmmarking", "TLP:GREEN");
  await page.click("#rmeta button:text('Save')");
  await page.waitForFunction(() => document.querySelector("#rmlabels").value === "loader, cdn" &&
    document.querySelector("#rmmarking").value === "TLP:GREEN");
  await shot("report-02-reviewed");
});

test("commits, and the report is on the knowledge-base page", async () => {
  await page.click("#rcommit");
  await page.waitForSelector("#rcommitted");
  assert.equal(await page.locator("#rcommit:disabled").count(), 1);
  await shot("report-03-committed");
  await page.goto(base + "/#/kb?type=report");
  await page.waitForSelector("#kbtable td:has-text('DriftLoader')");
  await shot("report-04-kb");
  const names = new Set(kb("indicator").map((o) => o.name));
  assert.ok(names.has("91.215.85.142") && names.has("static-cdnfront.com"));
  assert.ok(!names.has("update-msstore.com") && !names.has("cdn-edgecache.net"));
  assert.deepEqual(kb("malware").map((o) => o.name), ["DriftLoader"]);
  const [report] = kb("report");
  assert.deepEqual(report.labels, ["loader", "cdn"]);
  await page.goto(base + "/#/reports");
  await page.waitForSelector("#rdrafts .rep-committed");
});

test("no Content Security Policy violation on the report pages", () => {
  assert.deepEqual(violations, []);
});
