// Browser tests of the knowledge-base pages: Debian's chromium, driven by
// playwright-core, against the real trawl binary, with a strict Content
// Security Policy added to every answer (no inline script or style may run).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { launchChromium, shot as shotOf, startServer, trawl } from "./harness.mjs";

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'";

let data, server, base, browser, page, key;
const violations = [];
const sampleA = Buffer.from("kb ui gloom payload one\x00\x01");
const sampleB = Buffer.from("kb ui gloom payload two\x00\x02");
const shaA = createHash("sha256").update(sampleA).digest("hex");
const SET = "intrusion-set--1c7b5b88-8ff7-4a4d-aa9d-feb398cd0061";
const REPORT = "report--2c7b5b88-8ff7-4a4d-aa9d-feb398cd0061";
const bundle = { type: "bundle", id: "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", objects: [
  { type: "intrusion-set", spec_version: "2.1", id: SET, created: "2024-01-01T00:00:00.000Z",
    modified: "2024-01-01T00:00:00.000Z", name: "Murky Team", aliases: ["Gloomhaul"],
    object_marking_refs: ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"] },
  { type: "intrusion-set", spec_version: "2.1", id: SET, created: "2024-01-01T00:00:00.000Z",
    modified: "2024-03-01T00:00:00.000Z", name: "Murky Team", aliases: ["Gloomhaul"],
    description: "Second version.", object_marking_refs: ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"] },
  { type: "report", spec_version: "2.1", id: REPORT, created: "2024-02-01T00:00:00.000Z",
    modified: "2024-02-01T00:00:00.000Z", name: "Murky Team returns", published: "2024-02-01T00:00:00Z",
    object_refs: [SET] },
] };

function run(...args) {
  return execFileSync(trawl, ["--data", data, ...args]).toString();
}

async function shot(name) {
  await shotOf(page, name);
}

before(async () => {
  data = mkdtempSync(join(tmpdir(), "trawl-kb-ui-"));
  writeFileSync(join(data, "..", "kbui-a-" + shaA.slice(0, 8)), sampleA);
  const a = join(data, "..", "kbui-a-" + shaA.slice(0, 8)), b = join(data, "..", "kbui-b-" + shaA.slice(0, 8));
  writeFileSync(b, sampleB);
  const ent = join(data, "..", "kbui-ent-" + shaA.slice(0, 8) + ".json");
  writeFileSync(ent, JSON.stringify(bundle));
  run("add", "--signature", "Gloomhaul", a, b);
  run("stix", "import", ent);
  rmSync(a); rmSync(b); rmSync(ent);
  key = run("key", "add", "--role", "analyst", "kb-ui-tester").trim();
  const s = await startServer(data);
  server = s.proc;
  base = s.url;
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  await ctx.addInitScript((k) => localStorage.setItem("trawl.key", k), key);
  await ctx.route("**/*", async (route) => {
    const res = await route.fetch();
    await route.fulfill({ response: res, headers: { ...res.headers(), "content-security-policy": CSP } });
  });
  page = await ctx.newPage();
  page.on("pageerror", (e) => { throw e; });
  // Only the knowledge-base pages are held to it here (the sample page is
  // another page's business).
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text()) && page.url().includes("#/kb"))
      violations.push(page.url() + ": " + m.text());
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

test("syncs trawl's data and lists reports first", async () => {
  await page.goto(base + "/#/kb");
  await page.waitForSelector("#kbtable td:has-text('Murky Team returns')");
  await page.click("#kbsync");
  await page.waitForSelector("#toast.show:has-text('synced')");
  assert.match(await page.textContent("#toast"), /synced: \d+ added/);
  await shot("kb-01-reports");
});

test("a failed sync says why next to the button, not in a passing toast", async () => {
  const gone = run("key", "add", "--role", "analyst", "kb-ui-gone").trim();
  await page.goto(base + "/#/kb");
  await page.waitForSelector("#kbtable");
  await page.evaluate((k) => localStorage.setItem("trawl.key", k), gone);
  run("key", "rm", "kb-ui-gone");
  await page.click("#kbsync");
  await page.waitForSelector("#kbsyncres .error-box[role=alert]");
  assert.match(await page.textContent("#kbsyncres"), /key/i);
  await page.evaluate((k) => localStorage.setItem("trawl.key", k), key);
});

test("searches by alias and opens the intrusion set with its linked samples", async () => {
  await page.goto(base + "/#/kb");
  await page.fill("#q", "gloomhaul");
  await page.selectOption("#kbtype", "intrusion-set");
  await page.click("#kbsearch button.primary");
  await page.waitForSelector("#kbtable a:text('Murky Team')");
  await page.click("#kbtable a:text('Murky Team')");
  await page.waitForSelector("#kbname:text('Murky Team')");
  // The trawl malware object the sync linked (uses), and its two samples.
  await page.waitForSelector("#kbsamples h2:text('Samples (2)')");
  assert.equal(await page.locator(`#kbsamples a[href='#/sample/${shaA}']`).count(), 1);
  // Markings, both versions, and the neighbourhood drawn as SVG.
  assert.match(await page.textContent("#kbmarkings"), /TLP:GREEN/i);
  assert.equal(await page.locator("#kbversions tbody tr").count(), 2);
  assert.match(await page.textContent("#kbversions"), /description/);
  assert.ok(await page.locator("#kbgraph svg .kb-node").count() >= 4);
  assert.ok(await page.locator("#kbgraph svg .kb-edge text:text('uses')").count() >= 1);
  await shot("kb-02-intrusion-set");
});

test("follows the graph to the malware and to a sample", async () => {
  await page.click("#kbgraph svg a.kb-t-malware");
  await page.waitForSelector("#kbname:text('Gloomhaul')");
  await page.waitForSelector("#kbprops dt:text('sample_refs')");
  await page.click(`#kbsamples a[href='#/sample/${shaA}']`);
  await page.waitForSelector(`h1:text('${shaA}')`);
  await shot("kb-03-sample");
});

test("matches a pattern against trawl's data", async () => {
  await page.goto(base + "/#/kb");
  await page.fill("#kbpattern", `[file:hashes.'SHA-256' = '${shaA}']`);
  await page.click("#kbmatch button");
  await page.waitForSelector(`#kbmatchlist a:text('${shaA}')`);
  assert.match(await page.textContent("#kbmatchlist"), /1 samples, 0 addresses/);
  await shot("kb-04-match");
});

test("no Content Security Policy violation on the knowledge-base pages", () => {
  assert.deepEqual(violations, []);
});
