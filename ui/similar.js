// trawl web UI: the "Similar samples" section of a sample page. Loaded before
// app.js, whose helpers ($, api, esc, bytes, errorBox) it uses when called.
"use strict";

const SIMILAR_KINDS = [["tlsh", "TLSH"], ["ssdeep", "ssdeep"], ["imphash", "imphash"], ["telfhash", "telfhash"]];

// Fills el with the samples nearest to sha by the chosen hash; the kind
// buttons switch between tlsh (distance), ssdeep (score) and imphash.
async function similarMount(el, sha, by = "tlsh") {
  const buttons = SIMILAR_KINDS.map(([k, label]) =>
    `<button type="button" data-sim="${k}"${k === by ? ' class="primary"' : ""}>${label}</button>`).join(" ");
  el.innerHTML = `<div class="row mb12">${buttons}</div><div class="sim-body"><span class="muted">loading…</span></div>`;
  el.querySelectorAll("button[data-sim]").forEach((b) => {
    b.onclick = () => similarMount(el, sha, b.getAttribute("data-sim"));
  });
  const body = $(".sim-body", el);
  let ans;
  try { ans = await api(`/api/samples/${sha}/similar?by=${encodeURIComponent(by)}&max=10`); }
  catch (e) { body.innerHTML = errorBox(e); return; }
  if (!ans.value) { body.innerHTML = `<span class="muted">this sample has no ${esc(by)}</span>`; return; }
  if (!ans.results.length) { body.innerHTML = `<span class="muted">no similar samples by ${esc(by)}</span>`; return; }
  const metric = ans.metric;
  body.innerHTML = `<div class="table-wrap"><table><tr><th>${metric === "score" ? "score" : "distance"}</th><th>sha256</th><th>name</th>
    <th>type</th><th>size</th></tr>${ans.results.map((r) => `<tr>
    <td>${esc(r[metric])}</td><td><a class="mono" href="#/sample/${esc(r.sha256_hash)}">${esc(r.sha256_hash.slice(0, 16))}…</a></td>
    <td>${esc(r.file_name || "")}</td><td>${esc(r.file_type)}</td><td>${bytes(r.file_size)}</td></tr>`).join("")}</table></div>`;
}

// The sample page's section (app.js SAMPLE_SECTIONS): filled once the answer comes.
function sectionSimilar(s, sha) {
  const sec = document.createElement("section");
  sec.innerHTML = `<h2>Similar samples</h2><div class="panel" id="similar"></div>`;
  similarMount(sec.querySelector("#similar"), sha);
  return sec;
}
