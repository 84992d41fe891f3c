// trawl web UI: a dependency-free single page over the JSON API.
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
  const key = keyStore.get();
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
function toast(msg) {
  const t = $("#toast");
  t.textContent = msg;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 2500);
}
function tags(list, removable) {
  return (list || []).map((t) => `<span class="tag">${esc(t)}${removable ?
    `<button data-untag="${esc(t)}" title="remove tag">×</button>` : ""}</span>`).join("");
}
function errorBox(e) {
  if (e.status === 401) return `<div class="error-box">${esc(e.message)}\nSet an API key on the <a href="#/key">key page</a>.</div>`;
  return `<div class="error-box">${esc(e.message)}</div>`;
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

function makeEditor(initial) {
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
  ta.addEventListener("input", () => { errLine = 0; render(); localStorage.setItem("trawl.rule", ta.value); });
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

async function pageHunt() {
  main.innerHTML = `<h1>Hunt</h1>
    <div class="panel">
      <div class="editor-slot"></div>
      <div class="row mt10">
        <button id="plan">Plan <span class="kbd">Alt+P</span></button>
        <button id="hunt" class="primary">Hunt <span class="kbd">Ctrl+Enter</span></button>
        <label class="muted">limit <input id="limit" type="text" size="6" placeholder="none"></label>
        <span class="grow"></span><button id="example">Example</button>
      </div>
    </div>
    <div class="panel" id="plan-box"><span class="muted">Plan a rule to see which strings the index accelerates.</span></div>`;
  const ed = makeEditor(localStorage.getItem("trawl.rule") || EXAMPLE_RULE);
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
      ed.markError(e.data && e.data.line ? e.data.line : parseErrorLine(e.message));
      box.innerHTML = errorBox(e);
      return false;
    }
  }
  async function hunt() {
    const limit = parseInt($("#limit").value, 10);
    try {
      const res = await api("/api/hunts", { method: "POST", json: { rule: ed.value, limit: limit > 0 ? limit : undefined } });
      location.hash = "#/hunts/" + res.id;
    } catch (e) {
      ed.markError(e.data && e.data.line ? e.data.line : parseErrorLine(e.message));
      box.innerHTML = errorBox(e);
    }
  }
  $("#plan").onclick = plan;
  $("#hunt").onclick = hunt;
  $("#example").onclick = () => { ed.value = EXAMPLE_RULE; localStorage.setItem("trawl.rule", EXAMPLE_RULE); };
  ed.textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); hunt(); }
    if ((e.key === "p" || e.key === "P") && e.altKey) { e.preventDefault(); plan(); }
  });
  ed.textarea.focus();
}

function statusClass(s) {
  return { done: "good", failed: "bad", cancelled: "warn", interrupted: "warn" }[s] || "";
}

async function pageHunts() {
  main.innerHTML = `<h1>Recent hunts</h1><div id="list"><span class="muted">loading…</span></div>`;
  try {
    const res = await api("/api/hunts");
    const rows = res.data.map((j) => `<tr class="clickable" data-href="#/hunts/${j.id}">
      <td>${j.id}</td><td>${esc(j.rules || "")}</td>
      <td class="${statusClass(j.status)}">${esc(j.status)}</td><td>${j.matches ?? ""}</td>
      <td>${j.candidates ?? ""}</td><td>${esc(j.created || "")}</td></tr>`).join("");
    $("#list").innerHTML = `<table><tr><th>id</th><th>rules</th><th>status</th><th>matches</th>
      <th>candidates</th><th>started</th></tr>${rows || `<tr><td colspan=6 class=muted>no hunts yet</td></tr>`}</table>`;
  } catch (e) { $("#list").innerHTML = errorBox(e); }
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

async function pageHuntResults(id) {
  main.innerHTML = `<h1>Hunt ${esc(id)}</h1><div id="state" class="panel">loading…</div>
    <div class="row mb10">
      <button id="cancel">Cancel</button>
      <button id="zip">Download matches (zip)</button>
      <button id="hashes">Download sha256 list</button></div>
    <div id="matches"></div>`;
  $("#cancel").onclick = async () => { try { await api(`/api/hunts/${id}/cancel`, { method: "POST" }); toast("cancel requested"); } catch (e) { toast(e.message); } };
  $("#zip").onclick = () => download(`/api/hunts/${id}/download`, `hunt-${id}.zip`);
  $("#hashes").onclick = () => download(`/api/hunts/${id}/hashes`, `hunt-${id}.sha256.txt`);
  let shown = -1;
  /* The page may be left while a request is out: then its elements are gone. */
  const here = () => location.hash.startsWith("#/hunts/" + id) && $("#state");
  async function tick() {
    if (!here()) return;
    let j;
    try { j = await api(`/api/hunts/${id}`); } catch (e) { if (here()) $("#state").innerHTML = errorBox(e); return; }
    if (!here()) return;
    const pct = j.candidates ? Math.round(100 * j.scanned / j.candidates) : (j.status === "done" ? 100 : 0);
    $("#state").innerHTML = `<div class="row"><b class="${statusClass(j.status)}">${esc(j.status)}</b>
        <span>${j.scanned}/${j.candidates} candidates scanned</span><span>${j.matches} matches</span>
        <span>${bytes(j.scanned_bytes)} read</span><span>${j.rate_mbs ? j.rate_mbs.toFixed(1) + " MB/s" : ""}</span>
        <span class="muted">a full scan would read ${j.samples} files</span></div>
        ${j.full_scan_rules ? `<div class="warn">${j.full_scan_rules} rule(s) could not use the index: every sample is verified</div>` : ""}
        <div class="progress mt8"><div></div></div>
        ${j.error ? `<div class="error-box mt8">${esc(j.error)}</div>` : ""}
        ${(j.warnings || []).map((w) => `<div class="warn">${esc(w)}</div>`).join("")}`;
    /* Set through the DOM: the Content-Security-Policy allows no inline style attributes. */
    $("#state .progress div").style.width = pct + "%";
    if (j.matches !== shown) {
      shown = j.matches;
      const res = await api(`/api/hunts/${id}/results?limit=500`);
      if (!here()) return;
      $("#matches").innerHTML = `<table><tr><th>rule</th><th>sample</th><th>name</th><th>type</th><th>size</th>
        <th>tags</th><th>matched strings</th></tr>${res.data.map((m) => { const smp = m.sample || {}; return `<tr>
        <td>${esc(m.rule)}</td><td><a class="mono" href="#/sample/${smp.sha256}">${esc((smp.sha256 || "").slice(0, 16))}…</a></td>
        <td>${esc((smp.file_names || [])[0] || "")}</td><td>${esc(smp.file_type || "")}</td><td>${bytes(smp.size)}</td>
        <td>${tags(smp.tags)}${(m.tags || []).length ? `<div class="muted">rule: ${(m.tags || []).map(esc).join(", ")}</div>` : ""}</td><td>${(m.strings || []).slice(0, 4).map((s) =>
          `<div><span class="hl-var mono">${esc(s.id)}</span> @ 0x${s.offset.toString(16)}${hexContext(s)}</div>`).join("")}
          ${(m.strings || []).length > 4 ? `<div class="muted">+${m.strings.length - 4} more</div>` : ""}</td></tr>`; }).join("")
        || `<tr><td colspan=7 class=muted>no matches yet</td></tr>`}</table>`;
    }
    if (["queued", "running"].includes(j.status)) setTimeout(tick, 700);
  }
  tick();
}

async function pageSamples(params) {
  const q = params.get("q") || "";
  main.innerHTML = `<h1>Samples</h1>
    <form class="row panel" id="search">
      <input id="q" type="search" class="grow" placeholder="hash, tag:emotet, signature:Qakbot, type:dll  (press / to focus)" value="${esc(q)}">
      <button class="primary">Search</button></form><div id="list"><span class="muted">loading…</span></div>`;
  $("#search").onsubmit = (e) => { e.preventDefault(); location.hash = "#/samples?q=" + encodeURIComponent($("#q").value.trim()); };
  const qs = new URLSearchParams({ limit: "100" });
  for (const part of q.split(/\s+/).filter(Boolean)) {
    const m = /^(tag|signature|type):(.+)$/.exec(part);
    if (m) qs.set(m[1], m[2]);
    else if (/^[0-9a-fA-F]{32,64}$/.test(part)) qs.set("hash", part);
    else qs.set("tag", part);
  }
  try {
    const res = await api("/api/samples?" + qs);
    $("#list").innerHTML = `<table><tr><th>sha256</th><th>name</th><th>type</th><th>size</th>
      <th>first seen</th><th>signature</th><th>tags</th></tr>${res.data.map((s) => `
      <tr class="clickable" data-href="#/sample/${s.sha256_hash}"><td class="mono">${s.sha256_hash}</td>
      <td>${esc(s.file_name || "")}</td><td>${esc(s.file_type || "")}</td><td>${bytes(s.file_size)}</td>
      <td>${esc(s.first_seen)}</td><td>${esc(s.signature || "")}</td><td>${tags(s.tags)}</td></tr>`).join("")
      || `<tr><td colspan=7 class=muted>no samples</td></tr>`}</table>`;
  } catch (e) { $("#list").innerHTML = errorBox(e); }
}

async function pageSample(sha) {
  main.innerHTML = `<span class="muted">loading…</span>`;
  let s;
  try { s = (await api("/api/samples/" + sha)).data; } catch (e) { main.innerHTML = errorBox(e); return; }
  const row = (k, v) => `<dt>${k}</dt><dd>${v}</dd>`;
  main.innerHTML = `<h1 class="mono">${esc(s.sha256_hash)}</h1>
    <div class="row mb12"><button id="dl" class="primary">Download zip (password: infected)</button>
      <span class="muted">${esc(s.file_type)} · ${bytes(s.file_size)} · ${esc(s.magic || "")}</span></div>
    <div class="panel"><dl class="kv">
      ${row("sha256", `<span class="mono">${esc(s.sha256_hash)}</span>`)}
      ${row("sha1", `<span class="mono">${esc(s.sha1_hash)}</span>`)}
      ${row("md5", `<span class="mono">${esc(s.md5_hash)}</span>`)}
      ${row("sha3-384", `<span class="mono">${esc(s.sha3_384_hash)}</span>`)}
      ${row("ssdeep", `<span class="mono">${esc(s.ssdeep || "")}</span>`)}
      ${row("TLSH", `<span class="mono">${esc(s.tlsh || "—")}</span>`)}
      ${row("imphash", `<span class="mono">${esc(s.imphash || "—")}</span>`)}
      ${row("size", `${s.file_size} bytes`)}
      ${row("type", `${esc(s.file_type)} <span class="muted">(${esc(s.file_type_mime)})</span>`)}
      ${row("names", (s.file_names || []).map(esc).join(", "))}
      ${row("first seen", esc(s.first_seen) + " UTC")}
      ${row("last seen", esc(s.last_seen) + " UTC")}
      ${row("signature", esc(s.signature || "—"))}
      ${row("reporter", esc(s.reporter || "—"))}
      ${row("delivery", esc(s.delivery_method || "—"))}
      ${row("tags", `<span id="tags">${tags(s.tags, true)}</span>
        <form id="addtag" class="row inline-flex"><input id="newtag" type="text" size="14" placeholder="add tag"></form>`)}
      ${row("live hits", (s.yara_rules || []).map((y) => `<span class="tag">${esc(y.rule_name)}</span>`).join("") || "—")}
    </dl></div>
    <h2>Comments</h2><div class="panel" id="comments">${(s.comments || []).map((c) =>
      `<p><b>${esc(c.author || "anonymous")}</b> <span class="muted">${esc(c.created)}</span><br>${esc(c.text)}</p>`).join("")
      || `<span class="muted">no comments</span>`}
      <form id="comment" class="row"><input id="ctext" type="text" class="grow" placeholder="add a comment"><button>Post</button></form></div>
    <h2>Similar samples</h2><div class="panel" id="similar"></div>`;
  similarMount($("#similar"), sha);
  $("#dl").onclick = () => download(`/api/samples/${sha}/download`, `${s.sha256_hash}.zip`);
  $("#addtag").onsubmit = async (e) => {
    e.preventDefault();
    const t = $("#newtag").value.trim();
    if (!t) return;
    try { await api(`/api/samples/${sha}/tags`, { method: "POST", json: { tags: [t] } }); pageSample(sha); }
    catch (err) { toast(err.message); }
  };
  $("#tags").onclick = async (e) => {
    const t = e.target.getAttribute("data-untag");
    if (!t) return;
    try { await api(`/api/samples/${sha}/tags/${encodeURIComponent(t)}`, { method: "DELETE" }); pageSample(sha); }
    catch (err) { toast(err.message); }
  };
  $("#comment").onsubmit = async (e) => {
    e.preventDefault();
    const text = $("#ctext").value.trim();
    if (!text) return;
    try { await api(`/api/samples/${sha}/comments`, { method: "POST", json: { text } }); pageSample(sha); }
    catch (err) { toast(err.message); }
  };
}

function pageUpload() {
  main.innerHTML = `<h1>Upload</h1>
    <div class="panel"><div class="row">
      <label>tags <input id="utags" type="text" placeholder="emotet, epoch5"></label>
      <label>signature <input id="usig" type="text" placeholder="Emotet"></label>
      <label class="grow">comment <input id="ucomment" type="text" class="w60"></label></div></div>
    <div class="drop" id="drop">Drop files here, or <label class="btn">choose files<input id="files" type="file" multiple hidden></label></div>
    <table id="uploads" class="mt14"></table>`;
  const drop = $("#drop");
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); send([...e.dataTransfer.files]); };
  $("#files").onchange = (e) => send([...e.target.files]);
  function send(files) {
    for (const f of files) {
      const tr = h(`<table><tr><td>${esc(f.name)}</td><td class="w40"><div class="progress"><div class="w0"></div></div></td>
        <td class="st muted">queued</td></tr></table>`).querySelector("tr");
      $("#uploads").appendChild(tr);
      const form = new FormData();
      form.append("file", f, f.name);
      if ($("#utags").value) form.append("tags", $("#utags").value);
      if ($("#usig").value) form.append("signature", $("#usig").value);
      if ($("#ucomment").value) form.append("comment", $("#ucomment").value);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/samples");
      const key = keyStore.get();
      if (key) xhr.setRequestHeader("Authorization", "Bearer " + key);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) $(".progress div", tr).style.width = (100 * e.loaded / e.total) + "%"; };
      xhr.onload = () => {
        let d = {};
        try { d = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status < 300) {
          $(".st", tr).innerHTML = `<a href="#/sample/${d.data.sha256_hash}">${d.query_status}</a>`;
          $(".progress div", tr).style.width = "100%";
        } else {
          $(".st", tr).innerHTML = `<span class="bad">${esc(d.error || xhr.status)}</span>`;
        }
      };
      xhr.onerror = () => { $(".st", tr).innerHTML = `<span class="bad">network error</span>`; };
      $(".st", tr).textContent = "uploading";
      xhr.send(form);
    }
  }
}

async function pageRules() {
  main.innerHTML = `<h1>Live rules</h1>
    <div class="panel"><form id="add" class="row"><input id="rname" type="text" placeholder="name">
      <label class="btn">rule file<input id="rfile" type="file" accept=".yar,.yara,.rule,.txt" hidden></label>
      <span id="rfname" class="muted"></span><label><input id="retro" type="checkbox"> retrohunt now</label>
      <button class="primary">Add</button></form></div><div id="list"><span class="muted">loading…</span></div>`;
  $("#rfile").onchange = (e) => { $("#rfname").textContent = e.target.files[0] ? e.target.files[0].name : ""; };
  $("#add").onsubmit = async (e) => {
    e.preventDefault();
    const f = $("#rfile").files[0];
    if (!f || !$("#rname").value) { toast("a name and a rule file, please"); return; }
    try {
      await api("/api/rules", { method: "POST", json: { name: $("#rname").value, rule: await f.text(), retro: $("#retro").checked } });
      pageRules();
    } catch (err) { toast(err.message); }
  };
  try {
    const res = await api("/api/rules");
    $("#list").innerHTML = `<table><tr><th>name</th><th>rules</th><th>enabled</th><th>hits</th><th>last failure</th><th></th></tr>${res.data.map((r) => `
      <tr><td>${esc(r.name)}</td><td>${r.rule_count ?? ""}</td><td>${r.enabled ? "yes" : "no"}</td><td>${r.hits ?? ""}</td>
      <td class="failure">${r.last_failure ? `${esc(r.last_failure.time)}: ${esc(r.last_failure.message)}` : "—"}</td>
      <td><button data-act="${r.enabled ? "disable" : "enable"}" data-name="${esc(r.name)}">${r.enabled ? "Disable" : "Enable"}</button>
      <button data-act="delete" data-name="${esc(r.name)}">Delete</button></td></tr>`).join("")
      || `<tr><td colspan=6 class=muted>no live rule sets</td></tr>`}</table>`;
    $("#list").onclick = async (e) => {
      const act = e.target.getAttribute("data-act"), name = e.target.getAttribute("data-name");
      if (!act) return;
      try {
        if (act === "delete") await api("/api/rules/" + encodeURIComponent(name), { method: "DELETE" });
        else await api(`/api/rules/${encodeURIComponent(name)}/${act}`, { method: "POST" });
        pageRules();
      } catch (err) { toast(err.message); }
    };
  } catch (e) { $("#list").innerHTML = errorBox(e); }
}

async function pageStatus() {
  main.innerHTML = `<h1>Status</h1><div class="stats" id="stats"></div><h2>Index</h2><div id="index"></div>`;
  const stat = (v, l) => `<div class="stat"><b>${v}</b><span>${l}</span></div>`;
  try {
    const [health, ix] = await Promise.all([api("/api/health"), api("/api/index").catch((e) => ({ error: e }))]);
    let jobs = null;
    try { jobs = await api("/api/jobs"); } catch (_) { /* no hunt jobs endpoint */ }
    $("#stats").innerHTML = stat(health.samples, "samples") + stat(bytes(health.bytes), "stored") +
      (ix.error ? "" : stat(ix.segments, "index segments") + stat(bytes(ix.bytes), "index size") +
        stat(ix.documents - ix.tombstones, "indexed samples")) +
      (jobs ? stat(jobs.running, "hunts running") + stat(jobs.queued, "hunts queued") + stat(jobs.workers, "verification workers") : "");
    $("#index").innerHTML = ix.error ? errorBox(ix.error) : `<table><tr><th>gram kind</th><th>keys</th><th>postings</th><th>bytes</th></tr>
      ${Object.entries(ix.kinds).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v.keys}</td><td>${v.postings}</td><td>${bytes(v.bytes)}</td></tr>`).join("")}</table>`;
  } catch (e) { $("#stats").innerHTML = errorBox(e); }
}

async function pageKey() {
  main.innerHTML = `<h1>API key</h1><div class="panel">
    <p class="muted">Keys are made with <code>trawl key add --role analyst NAME</code>. The key stays in this browser only.</p>
    <form id="kf" class="row"><input id="key" type="password" class="grow" placeholder="trawl_…" value="${esc(keyStore.get())}">
    <button class="primary">Save</button><button type="button" id="forget">Forget</button></form>
    <p id="whoami"></p></div>`;
  $("#kf").onsubmit = async (e) => { e.preventDefault(); keyStore.set($("#key").value.trim()); await refreshWho(); pageKey(); };
  $("#forget").onclick = async () => { keyStore.set(""); await refreshWho(); pageKey(); };
  try {
    const w = await api("/api/whoami");
    $("#whoami").innerHTML = w.authenticated ? `Signed in as <b>${esc(w.key)}</b> (${esc(w.role)}).` : `Anonymous (${esc(w.role)}).`;
  } catch (e) { $("#whoami").innerHTML = errorBox(e); }
}

async function refreshWho() {
  try {
    const w = await api("/api/whoami");
    $("#who").textContent = w.authenticated ? `${w.key} · ${w.role}` : "no key";
  } catch (_) { $("#who").textContent = "key rejected"; }
}

// ---- routing and keyboard ---------------------------------------------------
function route() {
  const hash = location.hash || "#/hunt";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  document.querySelectorAll("[data-nav]").forEach((a) =>
    a.classList.toggle("active", a.getAttribute("data-nav") === (parts[0] === "sample" ? "samples" : parts[0])));
  switch (parts[0]) {
    case "hunts": return parts[1] ? pageHuntResults(parts[1]) : pageHunts();
    case "samples": return pageSamples(params);
    case "sample": return pageSample(parts[1]);
    case "upload": return pageUpload();
    case "rules": return pageRules();
    case "noise": return pageNoise(parts, params);
    case "status": return pageStatus();
    case "key": return pageKey();
    case "kb": return pageKb(parts.slice(1), params);
    case "reports": return pageReports(parts.slice(1));
    default: return pageHunt();
  }
}

main.addEventListener("click", (e) => {
  const tr = e.target.closest("tr[data-href]");
  if (tr && !e.target.closest("a,button")) location.hash = tr.getAttribute("data-href");
});

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
refreshWho();
route();
