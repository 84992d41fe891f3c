// Browser tests of the noise pages: GNQL search and facets, the IP page with
// the events behind a tag in hex/ASCII, tags, sensors and the tag editor.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchChromium, shot as shotOf, startServer, trawl } from "./harness.mjs";


let data, server, base, browser, page, key;
const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");

function ev(src, port, proto, fields, payload, extra = {}) {
  const e = { time: now, sensor: "edge-ui", src_ip: src, src_port: 40000, dst_ip: "198.51.100.1",
    dst_port: port, transport: "tcp", proto, handshake: proto !== "syn", fields: fields || {}, ...extra };
  if (payload) e.payload_b64 = Buffer.from(payload).toString("base64");
  return e;
}
function httpEv(src, path, ua) {
  const req = `GET ${path} HTTP/1.1\r\nHost: 198.51.100.1\r\nUser-Agent: ${ua}\r\n\r\n`;
  return ev(src, 80, "http", { http_method: "GET", http_path: path, http_version: "HTTP/1.1",
    http_host: "198.51.100.1", http_user_agent: ua }, req);
}

async function shot(name) {
  await shotOf(page, name);
}

before(async () => {
  data = mkdtempSync(join(tmpdir(), "trawl-noise-ui-"));
  key = execFileSync(trawl, ["--data", data, "key", "add", "--role", "analyst", "noise-ui"]).toString().trim();
  const f = join(data, "events.jsonl");
  writeFileSync(f, [
    httpEv("203.0.113.10", "/.env", "curl/8.0"),
    httpEv("203.0.113.11", "/.env", "curl/8.0"),
    httpEv("203.0.113.11", "/.git/config", "python-requests/2.31.0"),
    ev("203.0.113.12", 23, "syn", {}, null, { ip_id: 54321, tcp_window: 65535 }),
  ].map((e) => JSON.stringify(e)).join("\n") + "\n");
  execFileSync(trawl, ["--data", data, "noise", "import", f]);
  const s = await startServer(data);
  server = s.proc;
  base = s.url;
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  page = await ctx.newPage();
  page.on("pageerror", (e) => { throw e; });
  await page.goto(base + "/#/key");
  await page.evaluate((k) => localStorage.setItem("trawl.key", k), key);
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

test("GNQL search lists matching IPs and facets narrow the query", async () => {
  await page.goto(base + "/#/noise");
  await page.fill("#gnql", 'raw_data.web.paths:"/.env"');
  await page.click("#gnql-form button");
  await page.waitForSelector("#gnql-count");
  assert.match(await page.textContent("#gnql-count"), /^2 matching IPs/);
  const ips = await page.$$eval("table.list tbody td.mono", (tds) => tds.map((t) => t.textContent.trim()));
  assert.deepEqual(ips, ["203.0.113.10", "203.0.113.11"]);
  await shot("noise-01-search");
  await page.click('a.facet[data-term="tags:\\"Python Requests Client\\""]');
  await page.waitForFunction(() => /^1 matching IPs/.test(document.querySelector("#gnql-count")?.textContent || ""));
  assert.equal(await page.textContent("table.list tbody td.mono"), "203.0.113.11");
  assert.match(await page.inputValue("#gnql"), /tags:"Python Requests Client"/);
  await page.fill("#gnql", "tags:(broken");
  await page.fill("#gnql", "(tags:broken");
  await page.click("#gnql-form button");
  await page.waitForSelector(".error-box");
  assert.match(await page.textContent(".error-box"), /position 1/);
});

test("IP page: record, timeline, events behind a tag in hex and ASCII", async () => {
  await page.goto(base + "/#/noise/ip/203.0.113.11");
  await page.waitForSelector("#ip-record");
  assert.match(await page.textContent("#ip-record"), /malicious/);
  assert.match(await page.textContent("#ip-record"), /\/\.git\/config/);
  assert.equal(await page.locator("#ip-timeline svg rect.bar").count(), 1);
  await page.click('details.tag-events[data-tag="Git Config Crawler"] summary');
  await page.waitForSelector('details.tag-events[data-tag="Git Config Crawler"] pre.hexdump');
  const dump = await page.textContent('details.tag-events[data-tag="Git Config Crawler"] pre.hexdump');
  assert.match(dump, /^00000000  47 45 54 20 2f 2e 67 69/);     // "GET /.gi"
  assert.match(dump, / {3}GET \/\.git\/config\n/);
  await shot("noise-02-ip");
});

test("Tags page: IPs per day chart, top ports and countries", async () => {
  await page.goto(base + "/#/noise/tags?tag=" + encodeURIComponent(".env Scanner"));
  await page.waitForSelector("#tag-chart svg");
  assert.equal(await page.textContent("#tag-name"), ".env Scanner");
  assert.equal(await page.locator("#tag-chart rect.bar").count(), 30);
  const last = await page.locator("#tag-chart rect.bar").last().locator("title").textContent();
  assert.match(last, /: 2$/);
  assert.match(await page.textContent("#tag-ports"), /80\s+2/);
  await page.fill("#tag-filter", "zmap");
  assert.equal(await page.locator("#tag-list li:not([hidden])").count(), 1);
  await shot("noise-03-tags");
});

test("Sensors page", async () => {
  await page.goto(base + "/#/noise/sensors");
  await page.waitForSelector("#sensors tbody tr");
  const cells = await page.$$eval("#sensors tbody tr td", (t) => t.map((x) => x.textContent));
  assert.equal(cells[0], "edge-ui");
  assert.equal(cells[3], "4");
  await shot("noise-04-sensors");
});

test("Tag editor tests a rule against stored events before saving", async () => {
  await page.goto(base + "/#/noise/editor");
  await page.fill("#tag-src", `rule git_only
{
    meta:
        name = "UI Git Tag"
        category = "activity"
        intention = "malicious"
    strings:
        $a = "/.git/"
    condition:
        $a
}`);
  await page.click("#tag-test");
  await page.waitForSelector("#tag-test-summary, #tag-result .error-box", { timeout: 60000 });
  assert.equal(await page.locator("#tag-result .error-box").count(), 0,
    await page.textContent("#tag-result"));
  assert.match(await page.textContent("#tag-test-summary"), /^1 of 4 stored events match/);
  await shot("noise-05-editor-test");
  await page.click("#tag-save");
  await page.waitForSelector("#tag-saved");
  await page.goto(base + "/#/noise?q=" + encodeURIComponent('tags:"UI Git Tag"'));
  await page.waitForSelector("#gnql-count");
  assert.match(await page.textContent("#gnql-count"), /^1 matching IPs/);
});
