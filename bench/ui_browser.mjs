// bench/ui_browser.mjs URL KEY HASH SELECTOR RUNS
// Opens URL/HASH in headless chromium RUNS+1 times (the first one warms the
// browser cache and the server) and prints, for the warm runs, the time from
// navigation to the first SELECTOR and the page's DOM node count:
//   first_ms median min max  dom_nodes N
// Uses tests/browser's playwright-core (npm ci there) and /usr/bin/chromium.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "tests", "browser", "package.json"));
const { chromium } = require("playwright-core");

const [url, key, hash, selector, runsArg] = process.argv.slice(2);
const runs = parseInt(runsArg || "3", 10);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 850 } });
  await ctx.addInitScript((k) => localStorage.setItem("trawl.key", k), key);
  const page = await ctx.newPage();
  await page.goto(url + "/#/status");
  await page.waitForSelector("#stats .stat");
  const times = [];
  let nodes = 0;
  for (let i = 0; i <= runs; i++) {
    await page.goto(url + "/#/status");
    await page.waitForSelector("#stats .stat");
    // In-page clock: from the hash change (an in-app navigation, as a user
    // clicks) to the first row in the DOM.
    const ms = await page.evaluate(async ([h, sel]) => {
      const t0 = performance.now();
      location.hash = h;
      for (;;) {
        if (document.querySelector(sel)) return performance.now() - t0;
        await new Promise((r) => requestAnimationFrame(r));
      }
    }, [hash, selector]);
    nodes = await page.evaluate(() => document.getElementsByTagName("*").length);
    if (i > 0) times.push(ms);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  console.log(`first_ms ${med.toFixed(0)} min ${times[0].toFixed(0)} max ${times[times.length - 1].toFixed(0)}  dom_nodes ${nodes}`);
} finally {
  await browser.close();
}
