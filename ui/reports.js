// trawl web UI, the Reports pages (#/reports...): documents become drafts,
// an analyst reviews every extraction in the highlighted text and commits
// the report to the knowledge base. Loaded before app.js, whose helpers
// ($, api, esc, errorBox, toast, main, keyStore) it uses when called.
// No inline scripts or styles: the page works under a strict CSP.
"use strict";

const REPORT_MARKINGS = {
  "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "TLP:CLEAR",
  "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "TLP:GREEN",
  "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "TLP:AMBER",
  "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "TLP:AMBER+STRICT",
  "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "TLP:RED",
  "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "TLP:WHITE",
};
const REPORT_ADD_KINDS = ["ipv4", "ipv6", "domain", "url", "email", "md5", "sha1", "sha256",
  "sha512", "ssdeep", "cve", "attack-technique", "bitcoin", "filename", "registry-key",
  "malware", "intrusion-set", "threat-actor", "tool", "campaign"];

function pageReports(parts) {
  return parts[0] ? pageReportDraft(parts[0]) : pageReportList();
}

// ---- the list and new drafts ---------------------------------------------------
async function pageReportList() {
  main.innerHTML = `<h1>Reports</h1>
    <div class="panel">
      <div class="drop" id="rdrop">Drop a report here (text, Markdown, HTML, PDF, .eml), or
        <label class="btn">choose a file<input id="rfile" type="file" hidden></label></div>
      <form id="rpaste" class="mt14">
        <label class="grow">or paste its text<textarea id="rtext" rows="6" class="rep-paste"
          placeholder="C2 at hxxp://45.77.12[.]201/gate ..."></textarea></label>
        <div class="row"><label>name <input id="rname" type="text" placeholder="from the title"></label>
          <button class="primary" id="rcreate">Create draft</button></div>
      </form>
    </div>
    <h2>Drafts</h2><div id="rlist"><p class="muted">loading…</p></div>`;
  const drop = $("#rdrop");
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) reportUpload(e.dataTransfer.files[0]);
  };
  $("#rfile").onchange = (e) => { if (e.target.files.length) reportUpload(e.target.files[0]); };
  $("#rpaste").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("#rtext").value;
    if (!text.trim()) { toast("paste a document first"); return; }
    const body = { text };
    if ($("#rname").value.trim()) body.name = $("#rname").value.trim();
    try {
      const d = await api("/api/reports/drafts", { method: "POST", json: body });
      location.hash = "#/reports/" + d.draft.id;
    } catch (err) { toast(err.message); }
  });
  try {
    const r = await api("/api/reports/drafts");
    const rows = r.drafts.map((d) => `<tr class="clickable" data-href="#/reports/${esc(d.id)}">
        <td><a href="#/reports/${esc(d.id)}">${esc(d.name)}</a></td>
        <td><span class="rep-status rep-${esc(d.status)}">${esc(d.status)}</span></td>
        <td>${esc(d.format)}</td><td>${d.accepted} / ${d.extractions}</td><td>${d.entities}</td>
        <td class="muted">${esc((d.created || "").slice(0, 19).replace("T", " "))}</td></tr>`).join("");
    $("#rlist").innerHTML = r.drafts.length ? `<table id="rdrafts"><thead><tr><th>name</th><th>status</th>
        <th>format</th><th>accepted / extractions</th><th>entity mentions</th><th>created</th></tr></thead>
        <tbody>${rows}</tbody></table>` : `<p class="muted">No drafts yet.</p>`;
  } catch (e) { $("#rlist").innerHTML = errorBox(e); }
}

function reportUpload(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  if ($("#rname").value.trim()) form.append("name", $("#rname").value.trim());
  $("#rdrop").textContent = "reading " + file.name + "…";
  api("/api/reports/drafts", { method: "POST", body: form })
    .then((d) => { location.hash = "#/reports/" + d.draft.id; })
    .catch((err) => { $("#rdrop").textContent = err.message; toast(err.message); });
}

// ---- one draft -------------------------------------------------------------------
// Spans to highlight: extractions and entity mentions, as byte ranges of
// the UTF-8 text (the API's offsets), the first of overlapping ones kept.
function reportSpans(d) {
  const spans = [];
  d.extractions.forEach((x, i) => {
    if (x.source !== "link" && x.offset != null && x.length)
      spans.push({ at: x.offset, len: x.length, cls: "ioc", i, on: x.accepted });
  });
  d.entities.forEach((x, i) => spans.push({ at: x.offset, len: x.length, cls: "ent", i, on: x.accepted }));
  (d.candidates || []).forEach((x, i) => (x.offsets || []).forEach((at) =>
    spans.push({ at, len: new TextEncoder().encode(x.name).length, cls: "cand", i, on: x.accepted })));
  spans.sort((a, b) => a.at - b.at || b.len - a.len);
  const out = [];
  let end = 0;
  for (const s of spans) if (s.at >= end) { out.push(s); end = s.at + s.len; }
  return out;
}

function reportTextHtml(d) {
  const bytes = new TextEncoder().encode(d.text);
  const dec = new TextDecoder();
  let html = "", pos = 0;
  for (const s of reportSpans(d)) {
    html += esc(dec.decode(bytes.subarray(pos, s.at)));
    html += `<mark class="rep-${s.cls} ${s.on ? "rep-on" : "rep-off"}" data-${s.cls}="${s.i}">` +
      esc(dec.decode(bytes.subarray(s.at, s.at + s.len))) + `</mark>`;
    pos = s.at + s.len;
  }
  return html + esc(dec.decode(bytes.subarray(pos)));
}

function reportItem(kind, i, on, label, note, disabled) {
  return `<li class="rep-item ${on ? "rep-on" : "rep-off"}" data-kind="${kind}" data-i="${i}" tabindex="-1">
    <label><input type="checkbox" ${on ? "checked" : ""} ${disabled ? "disabled" : ""}
      aria-label="accept ${esc(label)}"> <span class="mono">${esc(label)}</span></label>
    <span class="muted">${esc(note)}</span></li>`;
}

function reportSide(d, closed) {
  const ex = d.extractions.map((x, i) => reportItem("ex", i, x.accepted, x.value,
    `${x.kind} · ${x.class}${x.defanged ? " · defanged" : ""}${x.added ? " · added" : ""}${x.source === "link" ? " · link" : ""}`, closed)).join("");
  const seen = new Set();
  const ents = d.entities.map((x, i) => {
    if (seen.has(x.id)) return "";
    seen.add(x.id);
    return reportItem("ent", i, x.accepted, x.name, x.type + (x.matched !== x.name ? " · as " + x.matched : ""), closed);
  }).join("");
  const cands = (d.candidates || []).map((x, i) => reportItem("cand", i, x.accepted, x.name,
    `new ${x.type}${x.added ? " · added" : ""}`, closed)).join("");
  const props = (d.proposals || []).map((x, i) => reportItem("prop", i, x.accepted,
    `${x.source_name} ${x.relationship_type} ${x.target_name}`, "proposed relationship", closed)).join("");
  const sec = (t, n, body) => `<h3>${t} <span class="muted">(${n})</span></h3><ul class="rep-list">${body || "<li class=\"muted\">none</li>"}</ul>`;
  return sec("Indicators", d.extractions.length, ex) + sec("Entities", seen.size, ents) +
    sec("New objects", (d.candidates || []).length, cands) + sec("Relationships", (d.proposals || []).length, props);
}

async function pageReportDraft(id) {
  main.innerHTML = `<p class="muted">loading…</p>`;
  let d;
  try { d = await api("/api/reports/drafts/" + encodeURIComponent(id)); }
  catch (e) { main.innerHTML = `<h1>Report draft</h1>` + errorBox(e); return; }
  reportRender(d);
}

function reportRender(d) {
  // A decision re-renders the page: keep both panes where the analyst was.
  const keep = ["#rtextview", "#rside"].map((sel) => { const el = $(sel); return el ? el.scrollTop : 0; });
  const id = d.draft.id, closed = d.draft.status !== "open";
  const rep = d.report;
  const marking = REPORT_MARKINGS[(rep.object_marking_refs || [])[0]] || "";
  const committed = d.draft.committed;
  main.innerHTML = `<h1>Report draft <span class="rep-status rep-${esc(d.draft.status)}">${esc(d.draft.status)}</span></h1>
    ${committed ? `<p id="rcommitted">Committed as ${kbLink(committed.report, rep.name)}: ${committed.objects} objects, ${committed.added} new.</p>` : ""}
    <form id="rmeta" class="panel row">
      <label class="grow">name <input id="rmname" type="text" value="${esc(rep.name)}" ${closed ? "disabled" : ""}></label>
      <label>labels <input id="rmlabels" type="text" value="${esc((rep.labels || []).join(", "))}" placeholder="ransomware, apt" ${closed ? "disabled" : ""}></label>
      <label>marking <select id="rmmarking" ${closed ? "disabled" : ""}>${["", "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"].map((m) =>
        `<option value="${m}"${m === marking ? " selected" : ""}>${m || "none"}</option>`).join("")}</select></label>
      <button ${closed ? "disabled" : ""}>Save</button>
      <button type="button" class="primary" id="rcommit" ${closed ? "disabled" : ""} title="c">Commit to the knowledge base</button>
      <button type="button" id="rdelete" class="danger">Delete draft</button>
    </form>
    <div class="rep-layout">
      <section><div class="muted rep-help">${esc(d.document.format)}, ${esc(d.document.charset)} ·
        select text to add what was missed · j/k move, space or x toggles, a accept, r reject, c commit</div>
        <pre id="rtextview" class="rep-text">${reportTextHtml(d)}</pre>
        <form id="radd" class="row panel">
          <select id="raddkind" aria-label="kind">${REPORT_ADD_KINDS.map((k) => `<option>${k}</option>`).join("")}</select>
          <input id="raddvalue" type="text" class="grow mono" placeholder="selected text, or type a value" ${closed ? "disabled" : ""}>
          <button ${closed ? "disabled" : ""}>Add</button>
        </form></section>
      <aside id="rside" class="rep-side">${reportSide(d, closed)}</aside>
    </div>`;

  async function change(body) {
    try { reportRender(await api("/api/reports/drafts/" + id, { method: "PATCH", json: body })); }
    catch (e) { toast(e.message); }
  }
  function toggle(li, want) {
    const i = Number(li.getAttribute("data-i")), kind = li.getAttribute("data-kind");
    const on = want == null ? !li.classList.contains("rep-on") : want;
    const key = { ex: "", ent: "_entities", cand: "_candidates", prop: "_proposals" }[kind];
    reportFocus = { kind, i };
    return change({ [(on ? "accept" : "reject") + key]: [i] });
  }
  $("#rside").addEventListener("change", (e) => {
    const li = e.target.closest(".rep-item");
    if (li) toggle(li, e.target.checked);
  });
  $("#rtextview").addEventListener("click", (e) => {
    const m = e.target.closest("mark");
    if (!m) return;
    const kind = m.hasAttribute("data-ioc") ? "ex" : m.hasAttribute("data-ent") ? "ent" : "cand";
    const i = m.getAttribute("data-" + { ex: "ioc", ent: "ent", cand: "cand" }[kind]);
    const li = $(`.rep-item[data-kind="${kind}"][data-i="${i}"]`) ||
      (kind === "ent" && $(`.rep-item[data-kind="ent"]`));
    if (li) { li.focus(); li.scrollIntoView({ block: "nearest" }); }
  });
  $("#rtextview").addEventListener("mouseup", () => {
    const s = window.getSelection().toString().trim();
    if (s && !closed) { $("#raddvalue").value = s; $("#raddkind").focus(); }
  });
  $("#radd").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("#raddvalue").value.trim();
    if (!value) { toast("select text or type a value"); return; }
    change({ add: [{ kind: $("#raddkind").value, value }] });
  });
  $("#rmeta").addEventListener("submit", (e) => {
    e.preventDefault();
    change({ name: $("#rmname").value.trim(),
      labels: $("#rmlabels").value.split(",").map((s) => s.trim()).filter(Boolean),
      marking: $("#rmmarking").value || null });
  });
  $("#rcommit").addEventListener("click", async () => {
    try {
      const r = await api(`/api/reports/drafts/${id}/commit`, { method: "POST" });
      toast("committed: " + r.draft.committed.objects + " objects");
      reportRender(r);
    } catch (e) { toast(e.message); }
  });
  $("#rdelete").addEventListener("click", async () => {
    if (!confirm("Delete this draft?")) return;
    try { await api("/api/reports/drafts/" + id, { method: "DELETE" }); location.hash = "#/reports"; }
    catch (e) { toast(e.message); }
  });
  // Keyboard review: j/k through the side list, space or x toggles, a/r decide.
  const items = () => [...document.querySelectorAll(".rep-item")];
  $("#rside").addEventListener("keydown", (e) => {
    const li = e.target.closest(".rep-item");
    if (!li || e.ctrlKey || e.metaKey || e.altKey) return;
    const all = items(), at = all.indexOf(li);
    const go = (n) => { const t = all[Math.max(0, Math.min(all.length - 1, n))]; t.focus(); t.scrollIntoView({ block: "nearest" }); };
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); go(at + 1); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); go(at - 1); }
    else if (closed) return;
    else if (e.key === "x" || (e.key === " " && e.target === li)) { e.preventDefault(); toggle(li); }
    else if (e.key === "a") { e.preventDefault(); toggle(li, true); }
    else if (e.key === "r") { e.preventDefault(); toggle(li, false); }
  });
  main.onkeydown = (e) => {
    if (e.key === "c" && !closed && !e.target.matches("input, textarea, select") &&
        !e.ctrlKey && !e.metaKey && !e.altKey && main.contains($("#rcommit"))) {
      e.preventDefault();
      $("#rcommit").click();
    }
  };
  ["#rtextview", "#rside"].forEach((sel, k) => { $(sel).scrollTop = keep[k]; });
  const f = reportFocus && $(`.rep-item[data-kind="${reportFocus.kind}"][data-i="${reportFocus.i}"]`);
  (f || items()[0] || main).focus({ preventScroll: !!f });
  reportFocus = null;
}
let reportFocus = null;
