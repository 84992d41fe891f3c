// The upload page says what a duplicate upload changed on the stored
// sample (its signature replaced), and that nothing changed when so.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { launchChromium, shot, startServer, trawl } from "./harness.mjs";

let data, server, base, browser, page;

before(async () => {
  data = mkdtempSync(join(tmpdir(), "trawl-uploadchg-"));
  const key = execFileSync(trawl, ["--data", data, "key", "add", "--role", "analyst", "up-tester"]).toString().trim();
  const s = await startServer(data);
  server = s.proc;
  base = s.url;
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  await ctx.addInitScript((k) => localStorage.setItem("trawl.key", k), key);
  page = await ctx.newPage();
  page.on("pageerror", (e) => { throw e; });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

async function upload(buffer, signature) {
  await page.fill("#usig", signature);
  const rows = await page.locator("#uploads tr").count();
  await page.setInputFiles("#files", { name: "dup.bin", mimeType: "application/octet-stream", buffer });
  const row = page.locator("#uploads tr").nth(rows);
  await row.locator(".st a").waitFor();
  return row;
}

test("a duplicate upload's changes are shown on the upload page", async () => {
  await page.goto(`${base}/#/upload`);
  await page.waitForSelector("#files", { state: "attached" });
  const file = Buffer.concat([Buffer.from("upload change test "), randomBytes(512)]);

  const first = await upload(file, "FirstFamily");
  assert.equal(await first.locator(".st a").textContent(), "inserted");
  assert.equal(await page.locator(".upload-changes").count(), 0);

  const second = await upload(file, "SecondFamily");
  assert.equal(await second.locator(".st a").textContent(), "exists");
  const note = page.locator(".upload-changes .note");
  await note.waitFor();
  assert.match(await note.textContent(), /changed its signature from FirstFamily to SecondFamily/);
  assert.equal(await note.getAttribute("role"), "note");
  await shot(page, "upload-changed");

  // The same signature again, within the same second or not: nothing
  // changed, and the page says so (the earlier change is not shown again as
  // if this upload made it).
  const third = await upload(file, "SecondFamily");
  assert.equal(await third.locator(".st a").textContent(), "exists");
  await page.locator(".upload-changes").nth(1).waitFor();
  assert.match(await page.locator(".upload-changes").nth(1).textContent(), /changed none of its fields/);
  assert.equal(await page.locator(".upload-changes .note").count(), 1);

  // The sample page keeps the note too.
  await page.click("#uploads tr >> nth=0 >> .st a");
  await page.waitForURL(/#\/sample\//);
  await page.waitForSelector("dl.kv");
  assert.equal(await page.locator(".note[role=note]").count(), 1);
  assert.match(await page.textContent(".note[role=note]"), /changed the signature from FirstFamily to SecondFamily/);
});
