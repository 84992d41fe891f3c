// What every browser test file needs: the real trawl binary serving a data
// directory on a loopback port, Debian's chromium driven by playwright-core,
// and screenshots kept in artifacts/ for a person to look at.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, "..", "..");
export const trawl = process.env.TRAWL_BIN || join(root, "build", "asan", "trawl");
export const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

// Resolves {proc, url} once `trawl serve` says where it listens.
export function startServer(data, ...extra) {
  return new Promise((resolve, reject) => {
    const p = spawn(trawl, ["--data", data, "serve", "--listen", "127.0.0.1:0", ...extra],
      { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
      const m = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolve({ proc: p, url: m[1] });
    });
    p.on("exit", (code) => reject(new Error("trawl serve exited " + code + ": " + out)));
    setTimeout(() => reject(new Error("trawl serve did not start: " + out)), 20000);
  });
}

// Headless chromium with the flags this closed network needs (no background
// connections, no component updates).
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, name + ".png"), fullPage: true });
}

// One JSON call to trawl's API with a key; a non-2xx answer throws with its body.
export async function callApi(base, key, path, opts = {}) {
  const res = await fetch(base + path, { ...opts, headers: { Authorization: "Bearer " + key, ...(opts.headers || {}) } });
  const body = await res.json();
  if (!res.ok) throw new Error(path + ": " + res.status + " " + JSON.stringify(body));
  return body;
}

// Polls fn every 100 ms until it returns something truthy (returned), or
// throws naming what was awaited after ms.
export async function until(what, fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}
