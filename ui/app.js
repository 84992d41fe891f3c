// trawl web UI: a dependency-free single page over the JSON API.
// Hook points for other pages: the nav list in index.html, ROUTES (below,
// near the end) and SAMPLE_SECTIONS (the sample page's sections).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const main = $("#main");

// ---- API access -------------------------------------------------------------
const keyStore = {
  get: () => localStorage.getItem("trawl.key") || "",
  set: (k) => (k ? localStorage.setItem("trawl.key", k) : localStorage.removeItem("trawl.key")),
};

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  const key = opts.key !== undefined ? opts.key : keyStore.get();
  if (key) headers["Authorization"] = "Bearer " + key;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  const res = await fetch(path, { method: opts.method || "GET", headers, body });
  let data = null;
  const ctype = res.headers.get("Content-Type") || "";
  if (ctype.startsWith("application/json")) data = await res.json();
  if (!res.ok) {
    const err = new Error((data && data.error) || res.status + " " + res.statusText);
    err.status = res.status;
    err.data = data;
    throw err;
  }
  return data;
}

// ---- small helpers ----------------------------------------------------------
function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function h(html) {
  const t = document.createElement("template");
  t.innerHTML = html.trim();
  return t.content.firstElementChild;
}
function bytes(n) {
  if (n == null) return "";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, v = n;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return (i ? v.toFixed(1) : v) + " " + u[i];
}
function num(n) { return n == null ? "" : Number(n).toLocaleString("en-US"); }
function duration(s) {
  if (s == null || !isFinite(s)) return "";
  s = Math.max(0, Math.round(s));
  const m = Math.floor(s / 60), hh = Math.floor(m / 60);
  return hh ? `${hh}h ${m % 60}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}
function setTitle(t) { document.title = t ? `${t} · trawl` : "trawl"; }
// Passing news: a polite live region. Errors go next to what failed instead.
function toast(msg) {
  const t = $("#toast");
  t.textContent = msg;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 4000);
}
function errorBox(e) {
  if (e.status === 401) return `<div class="error-box" role="alert">${esc(e.message)}\nSet an API key on the <a href="#/key">key page</a>.</div>`;
  return `<div class="error-box" role="alert">${esc(e.message)}</div>`;
}
function showError(box, e) { if (box) box.innerHTML = errorBox(e); }
// Sets a box that may be gone: the page was left while a request was out.
function fill(box, html) { if (box && box.isConnected) box.innerHTML = html; return !!(box && box.isConnected); }
// A link to the samples list filtered by one field.
function searchLink(field, value, label) {
  if (value == null || value === "") return "—";
  return `<a href="#/samples?${field}=${encodeURIComponent(value)}">${esc(label != null ? label : value)}</a>`;
}
function tags(list, removable) {
  return (list || []).map((t) => `<span class="tag"><a href="#/samples?tag=${encodeURIComponent(t)}">${esc(t)}</a>${removable ?
    `<button type="button" class="needs-analyst" data-untag="${esc(t)}" aria-label="remove tag ${esc(t)}">×</button>` : ""}</span>`).join("");
}
async function download(path, name) {
  const key = keyStore.get();
  const res = await fetch(path, { headers: key ? { Authorization: "Bearer " + key } : {} });
  if (!res.ok) { toast("download failed: " + res.status); return; }
  const blob = await res.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}
async function copyText(text) {
  try { await navigator.clipboard.writeText(text); }
  catch (_) {
    // Without the async clipboard (an insecure origin): a selected textarea.
    const ta = document.createElement("textarea");
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    document.execCommand("copy");
    ta.remove();
  }
  toast("copied");
}
// An inline yes/no next to the control that asked: no modal, keyboard first.
function askConfirm(anchor, question, yes = "Yes") {
  return new Promise((resolve) => {
    const old = anchor.parentElement.querySelector(".confirm");
    if (old) old.remove();
    const box = h(`<span class="confirm" role="alertdialog" aria-label="${esc(question)}">${esc(question)}
      <button type="button" class="danger">${esc(yes)}</button><button type="button">Cancel</button></span>`);
    anchor.insertAdjacentElement("afterend", box);
    const [ok, no] = box.querySelectorAll("button");
    const done = (v) => { box.remove(); resolve(v); if (!v) anchor.focus(); };
    ok.onclick = () => done(true);
    no.onclick = () => done(false);
    box.addEventListener("keydown", (e) => { if (e.key === "Escape") done(false); });
    no.focus();
  });
}
// "1–50 of 4,000" with previous/next links; hrefFor(offset) builds a link.
function pager(total, offset, limit, hrefFor, label = "") {
  if (!total) return "";
  const first = Math.min(total, offset + 1), last = Math.min(total, offset + limit);
  const prev = offset > 0 ? `<a class="btn" rel="prev" href="${hrefFor(Math.max(0, offset - limit))}">← Previous</a>` : "";
  const next = last < total ? `<a class="btn" rel="next" href="${hrefFor(offset + limit)}">Next →</a>` : "";
  const lastPage = Math.floor((total - 1) / limit) * limit;
  const end = last < total && lastPage > offset + limit ? `<a class="btn" href="${hrefFor(lastPage)}">Last</a>` : "";
  return `<nav class="pager row" aria-label="pages${label ? " of " + esc(label) : ""}">${prev}
    <span class="muted">${num(first)}–${num(last)} of <b class="total">${num(total)}</b>${label ? " " + esc(label) : ""}</span>${next}${end}</nav>`;
}
function hashQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of params) if (v !== "" && v != null) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

// ---- YARA highlighting ------------------------------------------------------
const YARA_KEYWORDS = new Set(("all and any ascii at base64 base64wide condition contains endswith entrypoint " +
  "false filesize for fullword global icontains iendswith iequals import in include int16 int16be int32 " +
  "int32be int8 int8be istartswith matches meta nocase none not of or private rule startswith strings them " +
  "true uint16 uint16be uint32 uint32be uint8 uint8be wide xor defined").split(" "));

function highlightYara(src) {
  const out = [];
  let i = 0;
  const n = src.length;
  const push = (cls, text) => out.push(cls ? `<span class="${cls}">${esc(text)}</span>` : esc(text));
  let prevSignificant = "";
  while (i < n) {
    const c = src[i];
    if (c === "/" && src[i + 1] === "/") {
      const e = src.indexOf("\n", i); const j = e < 0 ? n : e;
      push("hl-com", src.slice(i, j)); i = j; continue;
    }
    if (c === "/" && src[i + 1] === "*") {
      const e = src.indexOf("*/", i + 2); const j = e < 0 ? n : e + 2;
      push("hl-com", src.slice(i, j)); i = j; continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < n && src[j] !== '"' && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      j = Math.min(n, j + 1);
      push("hl-str", src.slice(i, j)); i = j; prevSignificant = '"'; continue;
    }
    if (c === "/" && (prevSignificant === "=" || prevSignificant === "matches")) {
      let j = i + 1;
      while (j < n && src[j] !== "/" && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      j = Math.min(n, j + 1);
      while (j < n && /[is]/.test(src[j])) j++;
      push("hl-re", src.slice(i, j)); i = j; prevSignificant = "/"; continue;
    }
    if (c === "{" && prevSignificant === "=") {
      const e = src.indexOf("}", i); const j = e < 0 ? n : e + 1;
      push("hl-hex", src.slice(i, j)); i = j; prevSignificant = "}"; continue;
    }
    if (/[$#@!]/.test(c) && /[A-Za-z0-9_*]/.test(src[i + 1] || "")) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_*]/.test(src[j])) j++;
      push("hl-var", src.slice(i, j)); i = j; prevSignificant = "$"; continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9a-fA-FxXKBMB]/.test(src[j])) j++;
      push("hl-num", src.slice(i, j)); i = j; prevSignificant = "0"; continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(src[j])) j++;
      const w = src.slice(i, j);
      push(YARA_KEYWORDS.has(w) ? "hl-kw" : "", w); i = j; prevSignificant = w; continue;
    }
    if (!/\s/.test(c)) prevSignificant = c;
    push("", c); i++;
  }
  return out.join("");
}

function makeEditor(initial, storeKey) {
  const el = h(`<div class="editor"><div class="gutter"></div><div class="code">
    <pre aria-hidden="true"></pre><textarea spellcheck="false" aria-label="YARA rule"></textarea></div></div>`);
  const ta = $("textarea", el), pre = $("pre", el), gutter = $(".gutter", el);
  let errLine = 0;
  function render() {
    const text = ta.value;
    const lines = text.split("\n");
    let html = highlightYara(text);
    if (errLine > 0) {
      const parts = html.split("\n");
      if (parts[errLine - 1] !== undefined) parts[errLine - 1] = `<span class="errline">${parts[errLine - 1] || " "}</span>`;
      html = parts.join("\n");
    }
    pre.innerHTML = html + "\n";
    gutter.innerHTML = lines.map((_, k) => `<div class="${k + 1 === errLine ? "err" : ""}">${k + 1}</div>`).join("");
    sync();
  }
  function sync() { pre.scrollTop = ta.scrollTop; pre.scrollLeft = ta.scrollLeft; gutter.scrollTop = ta.scrollTop; }
  ta.addEventListener("input", () => { errLine = 0; render(); if (storeKey) localStorage.setItem(storeKey, ta.value); });
  ta.addEventListener("scroll", sync);
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Tab" && !e.shiftKey) {
      e.preventDefault();
      const s = ta.selectionStart;
      ta.setRangeText("    ", s, ta.selectionEnd, "end");
      ta.dispatchEvent(new Event("input"));
    }
  });
  ta.value = initial;
  render();
  return {
    el, textarea: ta,
    get value() { return ta.value; },
    set value(v) { ta.value = v; render(); },
    markError(line) { errLine = line || 0; render(); },
  };
}


function hexContext(m) {
  // A matched string as a small hexdump: a few bytes before, the match
  // (marked), a few after, 16 bytes a row.
  const before = (m.before || "").match(/../g) || [], data = (m.data || "").match(/../g) || [];
  const after = (m.after || "").match(/../g) || [];
  const cut = data.length < m.length;          // long matches are stored truncated
  const cells = [...before.map((x) => [x, false]), ...data.map((x) => [x, true]),
    ...(cut ? [["..", true]] : []), ...after.map((x) => [x, false])];
  let off = Math.max(0, m.offset - before.length);
  const rows = [];
  for (let i = 0; i < cells.length; i += 16) {
    const row = cells.slice(i, i + 16);
    const hex = row.map(([x, inm]) => (inm ? `<mark>${x}</mark>` : x)).join(" ");
    const asc = row.map(([x, inm]) => {
      const b = parseInt(x, 16), ch = Number.isNaN(b) ? "…" : (b >= 32 && b < 127 ? String.fromCharCode(b) : ".");
      return inm ? `<mark>${esc(ch)}</mark>` : esc(ch);
    }).join("");
    rows.push(`${off.toString(16).padStart(8, "0")}  ${hex}${"   ".repeat(16 - row.length)}  ${asc}`);
    off += row.length;
  }
  return `<div class="hexview">${rows.join("\n")}</div>`;
}

// ---- pages ------------------------------------------------------------------
const EXAMPLE_RULE = `rule example_pe_with_url
{
    meta:
        author = "analyst"
        description = "a PE file that carries an http URL"
    strings:
        $mz = { 4D 5A }
        $url = /https?:\\/\\/[a-z0-9.-]{4,}\\.(com|net|org)/ nocase
        $ua = "Mozilla/5.0" ascii wide
    condition:
        $mz at 0 and ($url or $ua)
}
`;

function parseErrorLine(msg) {
  const m = /:(\d+):(\d+):/.exec(msg || "") || /\((\d+)\)/.exec(msg || "");
  return m ? parseInt(m[1], 10) : 0;
}
function errorLine(e) { return e.data && e.data.line ? e.data.line : parseErrorLine(e.message); }

function renderPlan(box, res) {
  box.innerHTML = res.rules.map((r) => `<div class="plan-rule">
      <div class="row"><b>${esc(r.rule)}</b>
        <span class="${r.scans_everything ? "warn" : "good"}">${r.scans_everything ? "scans every file" : "accelerated"}</span>
        <span class="muted grow">estimate: ${esc(r.estimate || "n/a")}</span></div>
      ${r.warning ? `<div class="warn">${esc(r.warning)}</div>` : ""}
      <div class="plan-query">${esc(r.query)}</div>
      <ul class="mono">${(r.strings || []).map((s) => `<li>${esc(s)}</li>`).join("")}</ul></div>`).join("")
    || `<span class="muted">no rules</span>`;
}

// Saves rule text as a live rule set from a small inline form under `slot`:
// errors stay in the form (and mark the editor's line when there is one).
function liveRuleForm(slot, getText, ed) {
  slot.innerHTML = `<form class="row panel live-form" aria-label="save as live rule">
      <label>live rule set name <input name="name" type="text" required pattern="[A-Za-z0-9_.\\-]{1,64}" size="20"></label>
      <label><input name="retro" type="checkbox"> retrohunt the stored samples now</label>
      <button class="primary">Save live rule</button><button type="button" data-cancel>Cancel</button>
      <div class="form-error grow" role="alert"></div></form>`;
  const f = $("form", slot);
  $("input[name=name]", f).focus();
  $("[data-cancel]", f).onclick = () => { slot.innerHTML = ""; };
  f.onsubmit = async (e) => {
    e.preventDefault();
    const err = $(".form-error", f);
    err.textContent = "";
    try {
      const res = await api("/api/rules", { method: "POST", json: { name: f.name.value.trim(), rule: getText(), retro: f.retro.checked } });
      slot.innerHTML = `<div class="panel good" role="status">Saved live rule set <a href="#/rules/${encodeURIComponent(res.name)}">${esc(res.name)}</a>${res.retrohunt ? `; retrohunt <a href="#/hunts/${res.retrohunt}">#${res.retrohunt}</a> queued` : ""}.</div>`;
    } catch (ex) {
      if (ed) ed.markError(errorLine(ex));
      err.innerHTML = errorBox(ex);
    }
  };
}

async function pageHunt() {
  setTitle("Hunt");
  main.innerHTML = `<h1>Hunt</h1>
    <div class="panel">
      <div class="editor-slot"></div>
      <div class="row mt10">
        <button type="button" id="plan">Plan <span class="kbd">Alt+P</span></button>
        <button type="button" id="hunt" class="primary needs-analyst">Hunt <span class="kbd">Ctrl+Enter</span></button>
        <label class="muted">limit <input id="limit" type="text" inputmode="numeric" size="6" placeholder="none"></label>
        <label class="muted">name <input id="hname" type="text" size="18" placeholder="from the rules"></label>
        <span class="grow"></span>
        <button type="button" id="savelive" class="needs-analyst">Save as live rule</button>
        <button type="button" id="example">Example</button>
      </div>
      <div id="live-slot"></div>
    </div>
    <div class="panel" id="plan-box"><span class="muted">Plan a rule to see which strings the index accelerates.</span></div>`;
  const ed = makeEditor(localStorage.getItem("trawl.rule") || EXAMPLE_RULE, "trawl.rule");
  $(".editor-slot").replaceWith(ed.el);
  const box = $("#plan-box");
  async function plan() {
    box.innerHTML = `<span class="muted">planning…</span>`;
    try {
      const res = await api("/api/plan", { method: "POST", json: { rule: ed.value } });
      ed.markError(0);
      renderPlan(box, res);
      return true;
    } catch (e) {
      ed.markError(errorLine(e));
      showError(box, e);
      return false;
    }
  }
  async function hunt() {
    const limit = parseInt($("#limit").value, 10);
    const name = $("#hname").value.trim();
    try {
      const res = await api("/api/hunts", { method: "POST", json: { rule: ed.value, limit: limit > 0 ? limit : undefined, name: name || undefined } });
      location.hash = "#/hunts/" + res.id;
    } catch (e) {
      ed.markError(errorLine(e));
      showError(box, e);
    }
  }
  $("#plan").onclick = plan;
  $("#hunt").onclick = hunt;
  $("#savelive").onclick = () => liveRuleForm($("#live-slot"), () => ed.value, ed);
  $("#example").onclick = async (e) => {
    const cur = ed.value.trim();
    if (cur && cur !== EXAMPLE_RULE.trim() && !(await askConfirm(e.currentTarget, "Replace the rule in the editor with the example?", "Replace"))) return;
    ed.value = EXAMPLE_RULE;
    localStorage.setItem("trawl.rule", EXAMPLE_RULE);
    ed.textarea.focus();
  };
  ed.textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); hunt(); }
    if ((e.key === "p" || e.key === "P") && e.altKey) { e.preventDefault(); plan(); }
  });
  ed.textarea.focus();
}

function statusClass(s) {
  return { done: "good", failed: "bad", cancelled: "warn", interrupted: "warn" }[s] || "";
}
const isLive = (s) => s === "queued" || s === "running";

// Bytes, not files, measure a hunt: one large file can be most of the work.
function huntProgress(j) {
  const total = j.candidate_bytes || 0, done = j.scanned_bytes || 0;
  let pct = total ? Math.min(100, 100 * done / total) : (isLive(j.status) ? 0 : 100);
  if (!isLive(j.status)) pct = j.status === "done" ? 100 : pct;
  const eta = j.status === "running" && done > 0 && total > done && j.seconds > 0 ? j.seconds * (total - done) / done : null;
  return { pct, eta };
}

async function pageHunts(params) {
  setTitle("Hunts");
  const limit = 50, offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  main.innerHTML = `<h1>Recent hunts</h1><div id="list"><span class="muted">loading…</span></div>`;
  const here = () => location.hash.split("?")[0] === "#/hunts" && $("#list");
  async function load() {
    if (!here()) return;
    let res;
    try { res = await api(`/api/hunts?offset=${offset}&limit=${limit}`); }
    catch (e) { if (here()) showError($("#list"), e); return; }
    if (!here()) return;
    const rows = res.data.map((j) => {
      const p = huntProgress(j);
      return `<tr><td><a href="#/hunts/${j.id}">#${j.id}</a></td><td><a href="#/hunts/${j.id}">${esc(j.rules || "")}</a></td>
      <td class="${statusClass(j.status)}">${esc(j.status)}</td>
      <td>${isLive(j.status) ? `<div class="progress" role="progressbar" aria-label="hunt ${j.id} progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${Math.round(p.pct)}"><div data-pct="${p.pct}"></div></div>` : ""}</td>
      <td>${num(j.matches)}</td><td>${num(j.candidates)}</td><td>${esc(j.owner || "")}</td><td>${esc(j.created || "")}</td></tr>`;
    }).join("");
    $("#list").innerHTML = `${pager(res.total, offset, limit, (o) => "#/hunts?offset=" + o, "hunts")}
      <div class="table-wrap"><table><thead><tr><th>id</th><th>name</th><th>status</th><th>progress</th><th>matches</th>
      <th>candidates</th><th>by</th><th>started</th></tr></thead><tbody>${rows || `<tr><td colspan=8 class=muted>no hunts yet</td></tr>`}</tbody></table></div>`;
    for (const d of document.querySelectorAll("#list .progress div")) d.style.width = d.dataset.pct + "%";
    if (res.data.some((j) => isLive(j.status))) setTimeout(load, 1500);
  }
  load();
}

// One matched string: its offset and a hexdump of its context.
function stringView(s) {
  return `<div class="str"><span class="hl-var mono">${esc(s.id)}</span> @ 0x${s.offset.toString(16)}${hexContext(s)}</div>`;
}
function metaLine(meta) {
  if (!meta) return "";
  const bits = [];
  if (meta.author) bits.push(`by ${esc(meta.author)}`);
  if (meta.description) bits.push(esc(meta.description));
  return bits.length ? `<span class="muted">${bits.join(" · ")}</span>` : "";
}

// A matched sample: its rules, the first string of its first match, and
// the rest behind "show all" (fetched and built only when opened: a big
// hunt's page stays small).
function sampleGroup(g, huntId, rule) {
  const m0 = g.matches[0] || {}, smp = m0.sample || {};
  const first = (m0.strings || [])[0];
  const more = g.match_count > 1 || (m0.strings || []).length > 1;
  const label = `show all strings of ${num(g.match_count)} match${g.match_count > 1 ? "es" : ""}`;
  const el = h(`<article class="match-group">
    <header class="row"><a class="mono" href="#/sample/${esc(g.sha256)}">${esc(g.sha256.slice(0, 16))}…</a>
      <span>${esc((smp.file_names || [])[0] || "")}</span><span class="muted">${esc(smp.file_type || "")} · ${bytes(smp.size)}</span>
      <span>${tags(smp.tags)}</span></header>
    <div class="rules-hit">${(g.rules || []).map((r) => `<span class="tag rule">${esc(r)}</span>`).join("")}</div>
    <div class="first">${first ? `<div class="muted">${esc(m0.rule)} ${metaLine(m0.meta)}</div>${stringView(first)}` : ""}</div>
    ${more ? `<button type="button" class="link" aria-expanded="false">${label}</button><div class="all" hidden></div>` : ""}
  </article>`);
  const btn = $("button.link", el);
  if (btn) btn.onclick = async () => {
    const all = $(".all", el), open = btn.getAttribute("aria-expanded") === "true";
    if (!open && !all.childElementCount) {
      try {
        const res = await api(`/api/hunts/${huntId}/samples?sample=${g.sha256}${rule ? "&rule=" + encodeURIComponent(rule) : ""}`);
        const ms = res.data.length ? res.data[0].matches : [];
        all.innerHTML = ms.map((m) => `<div class="match"><b>${esc(m.rule)}</b> ${metaLine(m.meta)}
          ${(m.tags || []).length ? `<span class="muted">rule tags: ${m.tags.map(esc).join(", ")}</span>` : ""}
          ${(m.strings || []).map(stringView).join("")}</div>`).join("");
      } catch (e) { showError(all, e); }
    }
    all.hidden = open;
    $(".first", el).hidden = !open;
    btn.setAttribute("aria-expanded", String(!open));
    btn.textContent = open ? label : "show less";
  };
  return el;
}

const RESULT_PAGE = 25;

async function pageHuntResults(id, params) {
  setTitle(`Hunt ${id}`);
  const rule = params.get("rule") || "";
  const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  const link = (o, r = rule) => `#/hunts/${id}${hashQuery([["rule", r], ["offset", o || ""]])}`;
  main.innerHTML = `<h1 id="hunt-title">Hunt ${esc(id)}</h1><div id="state" class="panel">loading…</div>
    <div class="row mb10" id="controls"></div><div id="live-slot"></div>
    <details id="source" class="panel"><summary>Rule source</summary><pre class="mono rule-src"></pre></details>
    <div id="rulebar" class="row rulebar" role="toolbar" aria-label="filter by rule"></div>
    <div id="pager-top"></div><div id="matches" aria-live="off"></div><div id="pager-bottom"></div>`;
  let ruleText = null;
  async function source() {
    if (ruleText == null) {
      const r = await api(`/api/hunts/${id}/rules`);
      ruleText = r.data.map((s) => s.text).join("\n");
      $("#source pre").textContent = ruleText;
    }
    return ruleText;
  }
  source().catch((e) => { $("#source pre").textContent = e.message; });
  const here = () => location.hash.split("?")[0] === "#/hunts/" + id && $("#state");
  let lastStatus = null, lastMatches = -1, shown = 0, total = 0, loading = false;
  function controls(j) {
    const c = $("#controls");
    c.innerHTML = `${isLive(j.status) ? `<button type="button" id="cancel" class="needs-analyst">Cancel</button>` : ""}
      ${j.matches ? `<button type="button" id="zip">Download matches (zip)</button><button type="button" id="hashes">Download sha256 list</button>` : ""}
      <button type="button" id="rerun" class="needs-analyst">Edit and re-run</button>
      <button type="button" id="savelive" class="needs-analyst">Save as live rule</button>
      ${isLive(j.status) ? "" : `<button type="button" id="delete" class="needs-analyst">Delete hunt</button>`}
      <div id="ctl-error" class="grow"></div>`;
    const cerr = (e) => showError($("#ctl-error"), e);
    if ($("#cancel")) $("#cancel").onclick = async () => { try { await api(`/api/hunts/${id}/cancel`, { method: "POST" }); toast("cancel requested"); } catch (e) { cerr(e); } };
    if ($("#zip")) $("#zip").onclick = () => download(`/api/hunts/${id}/download`, `hunt-${id}.zip`);
    if ($("#hashes")) $("#hashes").onclick = () => download(`/api/hunts/${id}/hashes`, `hunt-${id}.sha256.txt`);
    $("#rerun").onclick = async () => {
      try { localStorage.setItem("trawl.rule", await source()); location.hash = "#/hunt"; } catch (e) { cerr(e); }
    };
    $("#savelive").onclick = async () => { try { await source(); liveRuleForm($("#live-slot"), () => ruleText); } catch (e) { cerr(e); } };
    if ($("#delete")) $("#delete").onclick = async (ev) => {
      if (!(await askConfirm(ev.currentTarget, `Delete hunt ${id} and its results?`, "Delete"))) return;
      try { await api(`/api/hunts/${id}`, { method: "DELETE" }); location.hash = "#/hunts"; } catch (e) { cerr(e); }
    };
  }
  // Appends what is new since the last fetch: by offset, never what is shown.
  // True when the rows fetched account for `expect` matches: a hunt counts a
  // match a moment before its rows can be read, so a fetch in that moment
  // comes back short and the next poll must fetch again.
  async function more(expect = 0) {
    if (loading) return false;
    loading = true;
    // A full page still asks for one group: the totals and counts move on.
    const want = RESULT_PAGE - shown;
    try {
      const res = await api(`/api/hunts/${id}/samples?matches=1&offset=${offset + shown}&limit=${Math.max(want, 1)}${rule ? "&rule=" + encodeURIComponent(rule) : ""}`);
      if (!here()) return;
      total = res.total;
      const box = $("#matches");
      const add = res.data.slice(0, Math.max(want, 0));
      if (shown === 0 && add.length) box.innerHTML = "";
      for (const g of add) box.appendChild(sampleGroup(g, id, rule));
      shown += add.length;
      if (!shown) box.innerHTML = `<p class="muted">${isLive(lastStatus) ? "no matches yet" : "no matches"}</p>`;
      const all = res.rules.reduce((a, r) => a + r.matches, 0);
      $("#rulebar").innerHTML = res.rules.length ? `<a class="btn${rule ? "" : " active"}" href="${link(0, "")}" ${rule ? "" : 'aria-current="true"'}>all rules <b>${num(all)}</b></a>` +
        res.rules.map((r) => `<a class="btn${r.rule === rule ? " active" : ""}" href="${link(0, r.rule)}" ${r.rule === rule ? 'aria-current="true"' : ""}
          title="${num(r.matches)} matches in ${num(r.samples)} samples">${esc(r.rule)} <b>${num(r.matches)}</b></a>`).join("") : "";
      const pg = pager(total, offset, RESULT_PAGE, (o) => link(o), "matched samples");
      $("#pager-top").innerHTML = pg;
      $("#pager-bottom").innerHTML = pg;
      return all >= expect;
    } catch (e) { if (here()) showError($("#matches"), e); return false; }
    finally { loading = false; }
  }
  async function tick() {
    if (!here()) return;
    let j;
    try { j = await api(`/api/hunts/${id}`); } catch (e) { if (here()) showError($("#state"), e); return; }
    if (!here()) return;
    setTitle(`Hunt ${id}: ${j.rules || ""}`);
    $("#hunt-title").textContent = `Hunt ${id}: ${j.rules || ""}`;
    const p = huntProgress(j);
    $("#state").innerHTML = `<div class="row"><b class="${statusClass(j.status)}">${esc(j.status)}</b>
        <span>${num(j.matches)} matches</span>
        ${isLive(j.status) && !j.candidates ? `<span class="muted">finding candidates…</span>` :
          `<span>${bytes(j.scanned_bytes)} of ${bytes(j.candidate_bytes)} read</span>
        <span>${num(j.scanned)}/${num(j.candidates)} candidates</span>`}
        <span>elapsed ${duration(j.seconds)}</span>
        ${p.eta != null ? `<span>about ${duration(p.eta)} left</span>` : ""}
        <span>${j.rate_mbs ? j.rate_mbs.toFixed(1) + " MB/s" : ""}</span>
        <span class="muted">of ${num(j.samples)} samples${j.owner ? " · by " + esc(j.owner) : ""}</span></div>
      ${j.error ? `<div class="error-box" role="alert">${esc(j.error)}</div>` : ""}
      <div class="progress mt8" role="progressbar" aria-label="bytes read" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${Math.round(p.pct)}"><div></div></div>`;
    $("#state .progress div").style.width = p.pct + "%";
    const ended = lastStatus != null && isLive(lastStatus) && !isLive(j.status);
    if (j.status !== lastStatus) { lastStatus = j.status; controls(j); }
    // Only when the count moved (or the hunt just ended: its last results),
    // and again until the rows caught up with the count.
    if ((j.matches !== lastMatches || ended) && await more(j.matches)) lastMatches = j.matches;
    if (isLive(j.status)) setTimeout(tick, 700);
  }
  tick();
}

// ---- samples ------------------------------------------------------------------
// The search box's words: field:value pairs map one to one onto the API's
// parameters (and the page's URL); a bare hex word of 8+ digits is a hash or
// hash prefix, any other bare word searches file names. Nothing is guessed
// silently: the page says what it searched.
const SAMPLE_FIELDS = ["tag", "signature", "type", "reporter", "name", "hash", "imphash", "tlsh", "since", "until"];
const SAMPLE_SORTS = [["first_seen", "first seen"], ["size", "size"], ["type", "type"], ["signature", "signature"], ["reporter", "reporter"]];
const SAMPLE_PAGE = 50;

function parseSampleQuery(q) {
  const out = new Map();
  const words = q.match(/(\w+:"[^"]*"|"[^"]*"|\S+)/g) || [];
  const names = [];
  for (const w of words) {
    const m = /^(\w+):(.*)$/.exec(w);
    const unq = (v) => v.replace(/^"(.*)"$/, "$1");
    if (m && SAMPLE_FIELDS.includes(m[1])) out.set(m[1], unq(m[2]));
    else if (/^[0-9a-fA-F]{8,64}$/.test(w)) out.set("hash", w);
    else names.push(unq(w));
  }
  if (names.length) out.set("name", names.join(" "));
  return out;
}
function sampleQueryText(params) {
  return SAMPLE_FIELDS.filter((f) => params.get(f)).map((f) => {
    const v = params.get(f);
    return `${f}:${/\s/.test(v) ? '"' + v + '"' : v}`;
  }).join(" ");
}

let lastSamplesHash = "#/samples";

async function pageSamples(params) {
  setTitle("Samples");
  lastSamplesHash = location.hash || "#/samples";
  const sort = params.get("sort") || "", order = params.get("order") || "";
  const offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  const filters = SAMPLE_FIELDS.filter((f) => params.get(f));
  main.innerHTML = `<h1>Samples</h1>
    <form class="row panel" id="search" role="search">
      <input id="q" type="search" class="grow" aria-label="search samples" value="${esc(sampleQueryText(params))}"
        placeholder="file name, hash or 8+ hex prefix, tag:emotet signature:Qakbot type:dll reporter:x since:2024-01-01 until:…  (/ to focus)">
      <button class="primary">Search</button>${filters.length ? `<a class="btn" href="#/samples">Clear</a>` : ""}</form>
    <p class="muted" id="searched">${filters.length ? "Showing samples with " + filters.map((f) =>
      `<b>${esc(f === "name" ? "a file name containing" : f === "hash" ? "a hash starting with" : f)}</b> ${esc(params.get(f))}`).join(", ") : "All samples, newest first."}</p>
    <div id="list"><span class="muted">loading…</span></div>`;
  $("#search").onsubmit = (e) => {
    e.preventDefault();
    const p = parseSampleQuery($("#q").value.trim());
    if (sort) p.set("sort", sort);
    if (order) p.set("order", order);
    location.hash = "#/samples" + hashQuery(p);
  };
  const link = (changes) => {
    const p = new Map([...params]);
    for (const [k, v] of Object.entries(changes)) p.set(k, v);
    return "#/samples" + hashQuery(p);
  };
  const qs = new URLSearchParams({ limit: String(SAMPLE_PAGE), offset: String(offset) });
  for (const f of filters) qs.set(f, params.get(f));
  if (sort) qs.set("sort", sort);
  if (order) qs.set("order", order);
  const th = (key, label) => {
    const active = (sort || "first_seen") === key || (!sort && key === "first_seen");
    const dir = active ? (order === "asc" ? "ascending" : "descending") : "none";
    const next = active && order !== "asc" ? "asc" : "desc";
    return `<th aria-sort="${dir}"><a href="${link({ sort: key, order: next, offset: "" })}">${esc(label)}${active ? (order === "asc" ? " ▲" : " ▼") : ""}</a></th>`;
  };
  const list = $("#list");
  try {
    const res = await api("/api/samples?" + qs);
    if (!list.isConnected) return;
    const rows = res.data.map((s) => `<tr>
      <td><a class="mono row-link" href="#/sample/${s.sha256_hash}" title="${s.sha256_hash}">${s.sha256_hash.slice(0, 16)}…</a></td>
      <td class="name">${esc(s.file_name || "")}</td><td>${searchLink("type", s.file_type)}</td><td>${bytes(s.file_size)}</td>
      <td>${esc(s.first_seen)}</td><td>${searchLink("signature", s.signature)}</td><td>${searchLink("reporter", s.reporter)}</td><td>${tags(s.tags)}</td></tr>`).join("");
    list.innerHTML = `${pager(res.total, offset, SAMPLE_PAGE, (o) => link({ offset: o || "" }), "samples")}
      <div class="table-wrap"><table><thead><tr><th>sha256</th><th>name</th>${th("type", "type")}${th("size", "size")}
      ${th("first_seen", "first seen")}${th("signature", "signature")}${th("reporter", "reporter")}<th>tags</th></tr></thead>
      <tbody>${rows || `<tr><td colspan=8 class=muted>no samples match</td></tr>`}</tbody></table></div>
      ${res.total > SAMPLE_PAGE ? pager(res.total, offset, SAMPLE_PAGE, (o) => link({ offset: o || "" }), "samples") : ""}`;
    // Back from a sample: focus the row it was opened from.
    const back = sessionStorage.getItem("trawl.lastSample");
    const a = back && $(`#list a.row-link[href="#/sample/${back}"]`);
    if (a) a.focus();
  } catch (e) { if (list.isConnected) showError(list, e); }
}

function copyable(value, label) {
  if (!value) return "—";
  return `<span class="mono">${esc(value)}</span> <button type="button" class="copy" data-copy="${esc(value)}" aria-label="copy ${esc(label)}">copy</button>`;
}

// The sample page is a list of sections, each (sample, sha) -> HTML or an
// element; other pages add theirs here.
const SAMPLE_SECTIONS = [
  sectionSampleDetails,
  sectionLiveHits,
  sectionHuntMatches,
  sectionSimilar,       // similar.js
  sectionComments,
];

function sectionSampleDetails(s) {
  const row = (k, v) => `<dt>${k}</dt><dd>${v}</dd>`;
  const day = (t) => (t || "").slice(0, 10);
  const notes = (s.changes || []).map((c) => `<div class="note" role="note">An upload on ${esc(c.time)} UTC${c.reporter ?
    ` by ${searchLink("reporter", c.reporter)}` : ""} changed the ${esc(c.field)} from <b>${esc(c.old)}</b> to <b>${esc(c.new)}</b>.</div>`).join("");
  return `${notes}<div class="panel"><dl class="kv">
      ${row("sha256", copyable(s.sha256_hash, "sha256"))}
      ${row("sha1", copyable(s.sha1_hash, "sha1"))}
      ${row("md5", copyable(s.md5_hash, "md5"))}
      ${row("sha3-384", copyable(s.sha3_384_hash, "sha3-384"))}
      ${row("ssdeep", copyable(s.ssdeep, "ssdeep"))}
      ${row("TLSH", s.tlsh ? `${searchLink("tlsh", s.tlsh)} <button type="button" class="copy" data-copy="${esc(s.tlsh)}" aria-label="copy TLSH">copy</button>` : "—")}
      ${row("imphash", s.imphash ? `${searchLink("imphash", s.imphash)} <button type="button" class="copy" data-copy="${esc(s.imphash)}" aria-label="copy imphash">copy</button>` : "—")}
      ${row("size", `${num(s.file_size)} bytes`)}
      ${row("type", `${searchLink("type", s.file_type)} <span class="muted">(${esc(s.file_type_mime)})</span>`)}
      ${row("names", (s.file_names || []).map((n) => searchLink("name", n)).join(", ") || "—")}
      ${row("first seen", `<a href="#/samples?since=${day(s.first_seen)}&amp;until=${day(s.first_seen)}">${esc(s.first_seen)} UTC</a>`)}
      ${row("last seen", esc(s.last_seen) + " UTC")}
      ${row("signature", searchLink("signature", s.signature))}
      ${row("reporter", searchLink("reporter", s.reporter))}
      ${row("delivery", esc(s.delivery_method || "—"))}
      ${row("tags", `<span id="tags">${tags(s.tags, true)}</span>
        <form id="addtag" class="row inline-flex needs-analyst"><input id="newtag" type="text" size="14" placeholder="add tag" aria-label="add tag"></form>
        <div id="tag-msg" role="status"></div>`)}
    </dl></div>`;
}

function sectionLiveHits(s) {
  const hits = s.yara_rules || [];
  return `<h2>Live rule hits</h2><div class="panel">${hits.length ? `<div class="table-wrap"><table><thead><tr><th>rule</th><th>rule set</th><th>author</th><th>description</th></tr></thead><tbody>${hits.map((y) => `<tr>
    <td>${esc(y.rule_name)}</td><td><a href="#/rules/${encodeURIComponent(y.ruleset)}">${esc(y.ruleset)}</a></td>
    <td>${esc(y.author || "")}</td><td>${esc(y.description || "")}${y.reference ? ` <span class="muted">${esc(y.reference)}</span>` : ""}</td></tr>`).join("")}</tbody></table></div>` : `<span class="muted">no live rule matched it</span>`}</div>`;
}

function sectionHuntMatches(s) {
  const hm = s.hunt_matches || [];
  return `<h2>Hunts that matched</h2><div class="panel">${hm.length ? `<div class="table-wrap"><table><thead><tr><th>hunt</th><th>rule</th><th>author</th><th>description</th><th>strings</th></tr></thead><tbody>${hm.map((m) => `<tr>
    <td><a href="#/hunts/${m.hunt}">#${m.hunt} ${esc(m.hunt_name)}</a></td><td>${esc(m.rule)}</td>
    <td>${esc((m.meta && m.meta.author) || "")}</td><td>${esc((m.meta && m.meta.description) || "")}</td><td>${num(m.strings)}</td></tr>`).join("")}</tbody></table></div>` : `<span class="muted">no retrohunt matched it</span>`}</div>`;
}

function sectionComments(s) {
  return `<h2>Comments</h2><div class="panel" id="comments">${(s.comments || []).map((c) =>
      `<p><b>${esc(c.author || "anonymous")}</b> <span class="muted">${esc(c.created)}</span><br>${esc(c.text)}</p>`).join("")
      || `<span class="muted">no comments</span>`}
      <form id="comment" class="row needs-analyst"><input id="ctext" type="text" class="grow" placeholder="add a comment" aria-label="comment"><button>Post</button></form>
      <div id="comment-error"></div></div>`;
}

async function pageSample(sha) {
  setTitle("Sample " + (sha || "").slice(0, 12));
  sessionStorage.setItem("trawl.lastSample", sha);
  main.innerHTML = `<span class="muted">loading…</span>`;
  let s;
  try { s = (await api("/api/samples/" + sha)).data; } catch (e) { main.innerHTML = errorBox(e); return; }
  setTitle(`${(s.file_names || [])[0] || s.sha256_hash.slice(0, 12)} (sample)`);
  main.innerHTML = `<nav class="crumbs"><a id="back" href="${esc(lastSamplesHash)}">← Samples</a></nav>
    <h1 class="mono">${esc(s.sha256_hash)}</h1>
    <div class="row mb12"><button type="button" id="dl" class="primary">Download zip (password: infected)</button>
      <span class="muted">${esc(s.file_type)} · ${bytes(s.file_size)} · ${esc(s.magic || "")}</span></div>
    <div id="sections"></div>`;
  const box = $("#sections");
  for (const sec of SAMPLE_SECTIONS) {
    const out = sec(s, sha);
    if (typeof out === "string") box.insertAdjacentHTML("beforeend", out);
    else if (out instanceof Element) box.appendChild(out);
  }
  $("#dl").onclick = () => download(`/api/samples/${sha}/download`, `${s.sha256_hash}.zip`);
  main.addEventListener("click", copyHandler);
  const reloadTags = async () => {
    const fresh = (await api("/api/samples/" + sha)).data;
    $("#tags").innerHTML = tags(fresh.tags, true);
  };
  $("#addtag").onsubmit = async (e) => {
    e.preventDefault();
    const t = $("#newtag").value.trim();
    if (!t) return;
    try { await api(`/api/samples/${sha}/tags`, { method: "POST", json: { tags: [t] } }); $("#newtag").value = ""; $("#tag-msg").innerHTML = ""; await reloadTags(); }
    catch (err) { showError($("#tag-msg"), err); }
  };
  // Removing a tag is one click, and so is taking it back.
  $("#tags").onclick = async (e) => {
    const t = e.target.getAttribute("data-untag");
    if (!t) return;
    try {
      await api(`/api/samples/${sha}/tags/${encodeURIComponent(t)}`, { method: "DELETE" });
      await reloadTags();
      $("#tag-msg").innerHTML = `Removed tag <b>${esc(t)}</b>. <button type="button" id="undo-tag">Undo</button>`;
      $("#undo-tag").focus();
      $("#undo-tag").onclick = async () => {
        try { await api(`/api/samples/${sha}/tags`, { method: "POST", json: { tags: [t] } }); $("#tag-msg").innerHTML = ""; await reloadTags(); }
        catch (err) { showError($("#tag-msg"), err); }
      };
    } catch (err) { showError($("#tag-msg"), err); }
  };
  $("#comment").onsubmit = async (e) => {
    e.preventDefault();
    const text = $("#ctext").value.trim();
    if (!text) return;
    try { await api(`/api/samples/${sha}/comments`, { method: "POST", json: { text } }); pageSample(sha); }
    catch (err) { showError($("#comment-error"), err); }
  };
}
function copyHandler(e) {
  const b = e.target.closest("button[data-copy]");
  if (b) copyText(b.getAttribute("data-copy"));
}

function pageUpload() {
  setTitle("Upload");
  main.innerHTML = `<h1>Upload</h1>
    <p class="only-readonly panel">This key's role cannot upload: uploads need an analyst or admin key (<a href="#/key">key page</a>).</p>
    <div class="panel needs-analyst"><div class="row">
      <label>tags <input id="utags" type="text" placeholder="emotet, epoch5"></label>
      <label>signature <input id="usig" type="text" placeholder="Emotet"></label>
      <label class="grow">comment <input id="ucomment" type="text" class="w60"></label></div></div>
    <div class="drop needs-analyst" id="drop">Drop files here, or <label class="btn">choose files<input id="files" class="visually-hidden" type="file" multiple></label></div>
    <table id="uploads" class="mt14"></table>`;
  const drop = $("#drop");
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); send([...e.dataTransfer.files]); };
  $("#files").onchange = (e) => send([...e.target.files]);
  function send(files) {
    for (const f of files) sendOne(f);
  }
  async function sendOne(f) {
    const tr = h(`<table><tr><td>${esc(f.name)}</td><td class="w40"><div class="progress" role="progressbar" aria-label="upload of ${esc(f.name)}" aria-valuemin="0" aria-valuemax="100"><div class="w0"></div></div></td>
      <td class="st muted">queued</td></tr></table>`).querySelector("tr");
    $("#uploads").appendChild(tr);
    const sig = $("#usig").value;
    const form = new FormData();
    form.append("file", f, f.name);
    if ($("#utags").value) form.append("tags", $("#utags").value);
    if (sig) form.append("signature", sig);
    if ($("#ucomment").value) form.append("comment", $("#ucomment").value);
    // Only a signature can be changed by a duplicate: with one, the stored
    // copy's changes are counted first, so that those after are this
    // upload's (see uploadChanges); without one there can be none.
    const before = sig ? await changeCount(f) : -1;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/samples");
    const key = keyStore.get();
    if (key) xhr.setRequestHeader("Authorization", "Bearer " + key);
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = 100 * e.loaded / e.total;
      $(".progress div", tr).style.width = pct + "%";
      $(".progress", tr).setAttribute("aria-valuenow", String(Math.round(pct)));
    };
    xhr.onload = () => {
      let d = {};
      try { d = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status < 300) {
        $(".st", tr).innerHTML = `<a href="#/sample/${d.data.sha256_hash}">${d.query_status}</a>`;
        $(".progress div", tr).style.width = "100%";
        if (d.query_status === "exists") uploadChanges(tr, d.data, before);
      } else {
        $(".st", tr).innerHTML = `<span class="bad">${esc(d.error || xhr.status)}</span>`;
      }
    };
    xhr.onerror = () => { $(".st", tr).innerHTML = `<span class="bad">network error</span>`; };
    $(".st", tr).textContent = "uploading";
    xhr.send(form);
  }
}

// How many changes the stored copy of a file has recorded: 0 when it is not
// stored; null when that cannot be known here (no Web Crypto outside a
// secure context).
async function changeCount(f) {
  if (!(window.crypto && crypto.subtle)) return null;
  try {
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
    const sha = [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
    return ((await api(`/api/samples/${sha}`)).data.changes || []).length;
  } catch (e) { return e.status === 404 ? 0 : null; }
}

// A duplicate upload may change the stored sample (a new signature replaces
// the old one). Its changes are those recorded after the count taken before
// it was sent (-1: it had no signature, so none); without a count, those
// stamped with the upload's time (the sample's new last_seen), which a
// second upload within the same second would share.
async function uploadChanges(tr, x, before) {
  let all = [];
  if (before !== -1) {
    try { all = (await api(`/api/samples/${x.sha256_hash}`)).data.changes || []; } catch (e) { return; }
  }
  const mine = before == null ? all.filter((c) => c.time === x.last_seen) : all.slice(Math.max(before, 0));
  const cell = h(`<table><tr><td colspan="3" class="upload-changes"></td></tr></table>`).querySelector("tr");
  $("td", cell).innerHTML = mine.length
    ? mine.map((c) => `<div class="note" role="note">${esc(x.sha256_hash.slice(0, 16))}… was already stored: this upload changed its ${esc(c.field)} from <b>${esc(c.old)}</b> to <b>${esc(c.new)}</b>.</div>`).join("")
    : `<span class="muted">already stored; this upload changed none of its fields</span>`;
  tr.after(cell);
}

// ---- live rules ---------------------------------------------------------------
async function pageRules() {
  setTitle("Live rules");
  main.innerHTML = `<h1>Live rules</h1>
    <p class="muted">Every new upload is scanned against the enabled rule sets.</p>
    <div class="panel needs-analyst"><form id="add" aria-label="add a live rule set">
      <div class="row mb10"><label>name <input id="rname" type="text" required size="22" pattern="[A-Za-z0-9_.\\-]{1,64}" placeholder="letters, digits, _ . -"></label>
      <label class="btn">load a file<input id="rfile" class="visually-hidden" type="file" accept=".yar,.yara,.rule,.txt"></label>
      <label><input id="retro" type="checkbox"> retrohunt the stored samples now</label>
      <label><input id="replace" type="checkbox"> replace a rule set of that name</label></div>
      <div class="editor-slot"></div>
      <div class="row mt10"><button class="primary">Save live rule set</button><div id="add-error" class="grow"></div></div></form></div>
    <div id="list"><span class="muted">loading…</span></div>`;
  const ed = makeEditor(localStorage.getItem("trawl.liverule") || "", "trawl.liverule");
  $(".editor-slot").replaceWith(ed.el);
  $("#rfile").onchange = async (e) => {
    const f = e.target.files[0];
    if (!f) return;
    ed.value = await f.text();
    if (!$("#rname").value) $("#rname").value = f.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64);
  };
  $("#add").onsubmit = async (e) => {
    e.preventDefault();
    const err = $("#add-error");
    err.innerHTML = "";
    if (!ed.value.trim()) { err.innerHTML = errorBox(new Error("write or paste a rule first")); ed.textarea.focus(); return; }
    try {
      const res = await api("/api/rules", { method: "POST", json: { name: $("#rname").value.trim(), rule: ed.value, retro: $("#retro").checked, replace: $("#replace").checked } });
      ed.markError(0);
      localStorage.removeItem("trawl.liverule");
      err.innerHTML = `<span class="good" role="status">saved ${esc(res.name)}${res.retrohunt ? `; retrohunt <a href="#/hunts/${res.retrohunt}">#${res.retrohunt}</a>` : ""}</span>`;
      ed.value = "";
      loadList();
    } catch (ex) { ed.markError(errorLine(ex)); showError(err, ex); }
  };
  const list = $("#list");
  async function loadList() {
    try {
      const res = await api("/api/rules");
      fill(list, `<div class="table-wrap"><table><thead><tr><th>name</th><th>rules</th><th>enabled</th><th>hits</th><th>last failure</th><th></th></tr></thead><tbody>${res.data.map((r) => `
        <tr><td><a href="#/rules/${encodeURIComponent(r.name)}">${esc(r.name)}</a></td><td>${r.rule_count ?? ""}</td><td>${r.enabled ? "yes" : "no"}</td><td>${num(r.hits)}</td>
        <td class="failure">${r.last_failure ? `${esc(r.last_failure.time)}: ${esc(r.last_failure.message)}` : "—"}</td>
        <td class="actions"><button type="button" class="needs-analyst" data-act="${r.enabled ? "disable" : "enable"}" data-name="${esc(r.name)}">${r.enabled ? "Disable" : "Enable"}</button>
        <button type="button" class="needs-analyst" data-act="delete" data-name="${esc(r.name)}">Delete</button><div class="row-error"></div></td></tr>`).join("")
        || `<tr><td colspan=6 class=muted>no live rule sets</td></tr>`}</tbody></table></div>
        ${res.scans_pending ? `<p class="muted">${num(res.scans_pending)} uploads waiting for their live scan</p>` : ""}`);
    } catch (e) { fill(list, errorBox(e)); }
  }
  $("#list").onclick = async (e) => {
    const b = e.target.closest("button[data-act]");
    if (!b) return;
    const act = b.getAttribute("data-act"), name = b.getAttribute("data-name");
    const rowErr = b.parentElement.querySelector(".row-error");
    try {
      if (act === "delete") {
        if (!(await askConfirm(b, `Delete live rule set ${name} and its hits?`, "Delete"))) return;
        await api("/api/rules/" + encodeURIComponent(name), { method: "DELETE" });
      } else await api(`/api/rules/${encodeURIComponent(name)}/${act}`, { method: "POST" });
      loadList();
    } catch (err) { showError(rowErr, err); }
  };
  loadList();
}

async function pageRuleSet(name, params) {
  setTitle("Live rule " + name);
  const limit = 50, offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
  main.innerHTML = `<nav class="crumbs"><a href="#/rules">← Live rules</a></nav><h1>Live rule set ${esc(name)}</h1>
    <details class="panel"><summary>Rule source</summary><pre class="mono rule-src" id="src"></pre></details>
    <h2>Hits</h2><div id="hits"><span class="muted">loading…</span></div>`;
  try {
    const [r, hits] = await Promise.all([api("/api/rules/" + encodeURIComponent(name)),
      api(`/api/rules/${encodeURIComponent(name)}/hits?offset=${offset}&limit=${limit}`)]);
    if (!$("#src")) return;
    $("#src").textContent = r.rule;
    $("#hits").innerHTML = `${pager(hits.total, offset, limit, (o) => `#/rules/${encodeURIComponent(name)}?offset=${o}`, "hits")}
      <div class="table-wrap"><table><thead><tr><th>sample</th><th>rule</th><th>author</th><th>description</th><th>when</th></tr></thead><tbody>
      ${hits.data.map((x) => `<tr><td><a class="mono" href="#/sample/${x.sha256}">${x.sha256.slice(0, 16)}…</a></td><td>${esc(x.rule)}</td>
        <td>${esc(x.author || "")}</td><td>${esc(x.description || "")}</td><td>${esc(x.created)}</td></tr>`).join("") || `<tr><td colspan=5 class=muted>no hits yet</td></tr>`}</tbody></table></div>`;
  } catch (e) { showError($("#hits"), e); }   // null-safe when the page was left
}

async function pageStatus() {
  setTitle("Status");
  main.innerHTML = `<h1>Status</h1><div class="stats" id="stats"></div><h2>Index</h2><div id="index"></div>`;
  const stat = (v, l) => `<div class="stat"><b>${v}</b><span>${l}</span></div>`;
  const statsBox = $("#stats"), ixBox = $("#index");
  try {
    const [health, ix] = await Promise.all([api("/api/health"), api("/api/index").catch((e) => ({ error: e }))]);
    let jobs = null;
    try { jobs = await api("/api/jobs"); } catch (_) { /* no hunt jobs endpoint */ }
    fill(statsBox, stat(num(health.samples), "samples") + stat(bytes(health.bytes), "stored") +
      (ix.error ? "" : stat(ix.segments, "index segments") + stat(bytes(ix.bytes), "index size") +
        stat(num(ix.documents - ix.tombstones), "indexed samples")) +
      (jobs ? stat(jobs.running, "hunts running") + stat(jobs.queued, "hunts queued") + stat(jobs.workers, "verification workers") : ""));
    fill(ixBox, ix.error ? errorBox(ix.error) : `<div class="table-wrap"><table><thead><tr><th>gram kind</th><th>keys</th><th>postings</th><th>bytes</th></tr></thead><tbody>
      ${Object.entries(ix.kinds).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${num(v.keys)}</td><td>${num(v.postings)}</td><td>${bytes(v.bytes)}</td></tr>`).join("")}</tbody></table></div>`);
  } catch (e) { fill(statsBox, errorBox(e)); }
}

// ---- who is this: the key, its role, and what the page offers ---------------
let whoami = null;

// A key is saved only once the server accepted it.
async function pageKey(params) {
  setTitle("API key");
  const first = !keyStore.get();
  main.innerHTML = `<h1>API key</h1><div class="panel">
    ${first ? `<p><b>Welcome.</b> This server wants an API key for most pages. Paste yours below; it is checked with the server before it is kept.</p>` : ""}
    <p class="muted">Keys are made with <code>trawl key add --role analyst NAME</code>. The key stays in this browser only.</p>
    <form id="kf" class="row"><label class="grow">API key <input id="key" type="password" class="w60" autocomplete="off" placeholder="trawl_…" value="${esc(keyStore.get())}"></label>
    <button class="primary">Check and save</button><button type="button" id="forget">Forget</button></form>
    <div id="key-msg"></div><p id="whoami"></p></div>`;
  $("#kf").onsubmit = async (e) => {
    e.preventDefault();
    const k = $("#key").value.trim();
    const msg = $("#key-msg");
    msg.innerHTML = `<span class="muted">checking…</span>`;
    try {
      const w = await api("/api/whoami", { key: k });
      if (k && !w.authenticated) throw new Error("the server did not take this key");
      keyStore.set(k);
      await refreshWho();
      msg.innerHTML = "";
      const next = params && params.get("next");
      if (next) { location.hash = next; return; }
      showWho();
    } catch (err) {
      msg.innerHTML = errorBox(err.status === 401 ? new Error("This key was rejected by the server (unknown API key); it was not saved.") : err);
      $("#key").focus();
    }
  };
  $("#forget").onclick = async () => { keyStore.set(""); await refreshWho(); pageKey(params); };
  function showWho() {
    const w = whoami;
    $("#whoami").innerHTML = !w ? "" : w.authenticated ? `Signed in as <b>${esc(w.key)}</b> (${esc(w.role)}).` : `Anonymous (${esc(w.role)}).`;
  }
  showWho();
  $("#key").focus();
}

const ROLE_RANK = { anonymous: 0, reader: 1, analyst: 2, admin: 3 };
async function refreshWho() {
  try {
    whoami = await api("/api/whoami");
    $("#who").textContent = whoami.authenticated ? `${whoami.key} · ${whoami.role}` : "no key";
  } catch (_) { whoami = null; $("#who").textContent = "key rejected"; }
  // Controls the role cannot use are hidden, not left to fail on submit.
  const rank = whoami ? ROLE_RANK[whoami.role] || 0 : 0;
  document.body.classList.toggle("cannot-write", rank < ROLE_RANK.analyst);
  document.body.classList.toggle("cannot-admin", rank < ROLE_RANK.admin);
  return whoami;
}

// ---- routing and keyboard ---------------------------------------------------
// #/<first part>... -> page(parts, params). Other pages add a line here.
const ROUTES = {
  hunt: () => pageHunt(),
  hunts: (parts, params) => (parts[1] ? pageHuntResults(parts[1], params) : pageHunts(params)),
  samples: (parts, params) => pageSamples(params),
  sample: (parts) => pageSample(parts[1]),
  upload: () => pageUpload(),
  rules: (parts, params) => (parts[1] ? pageRuleSet(decodeURIComponent(parts[1]), params) : pageRules()),
  noise: (parts, params) => { setTitle(parts[1] ? "Noise " + decodeURIComponent(parts.slice(1).join(" ")) : "Noise"); return pageNoise(parts, params); },
  status: () => pageStatus(),
  key: (parts, params) => pageKey(params),
  // The reports pages (ui/reports.js, on another branch) hook in here.
  reports: (parts) => (typeof pageReports === "function" ? pageReports(parts.slice(1)) : pageHunt()),
  kb: (parts, params) => { setTitle(parts[1] ? "Knowledge: " + decodeURIComponent(parts.slice(2).join(" ") || parts[1]) : "Knowledge"); return pageKb(parts.slice(1), params); },
};
const NAV_ALIASES = { sample: "samples" };

function route() {
  const hash = location.hash || "#/hunt";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const navKey = NAV_ALIASES[parts[0]] || parts[0] || "hunt";
  document.querySelectorAll("[data-nav]").forEach((a) => {
    const on = a.getAttribute("data-nav") === navKey;
    a.classList.toggle("active", on);
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  setTitle("");                     // each page names itself
  const page = ROUTES[parts[0]] || ROUTES.hunt;
  const out = page(parts, params);
  // Keyboard and screen reader users start at the new page's content.
  if (route.started && document.activeElement === document.body) main.focus({ preventScroll: true });
  route.started = true;
  return out;
}

let pendingG = false;
document.addEventListener("keydown", (e) => {
  if (e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "/") { const q = $("#q"); if (q) { e.preventDefault(); q.focus(); return; } }
  if (pendingG) {
    pendingG = false;
    const map = { h: "#/hunt", r: "#/hunts", s: "#/samples", u: "#/upload", l: "#/rules", t: "#/status", k: "#/key", b: "#/kb", n: "#/noise" };
    if (map[e.key]) { location.hash = map[e.key]; e.preventDefault(); }
    return;
  }
  if (e.key === "g") pendingG = true;
});

window.addEventListener("hashchange", route);
(async () => {
  const w = await refreshWho();
  // First run: no key and the server lets anonymous users do nothing.
  if (!keyStore.get() && (!w || w.role === "anonymous") && !/^#\/key/.test(location.hash)) {
    const next = location.hash && location.hash !== "#/key" ? location.hash : "#/hunt";
    location.replace("#/key?next=" + encodeURIComponent(next));   // hashchange routes
    return;
  }
  route();
})();
