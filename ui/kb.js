// trawl web UI: the STIX knowledge base pages (#/kb...). Loaded before app.js,
// whose helpers ($, api, esc, errorBox, showError, toast, main) it uses when called.
// No inline scripts or styles: the page works under a strict CSP.
"use strict";

const KB_TYPES = ["", "report", "intrusion-set", "malware", "indicator", "vulnerability", "campaign",
  "threat-actor", "attack-pattern", "tool", "identity", "sighting", "relationship", "file",
  "ipv4-addr", "ipv6-addr", "domain-name", "url"];
const KB_SHORTCUTS = [["report", "Reports"], ["intrusion-set", "Intrusion sets"], ["malware", "Malware"],
  ["indicator", "Indicators"], ["vulnerability", "Vulnerabilities"]];
const SVGNS = "http://www.w3.org/2000/svg";

function kbName(o) {
  if (!o) return "";
  if (o.name) return o.name;
  if (o.value) return o.value;
  if (o.type === "file" && o.hashes) return o.hashes["SHA-256"] || Object.values(o.hashes)[0];
  if (o.type === "relationship") return o.relationship_type;
  return o.id;
}
function kbLink(id, label) {
  return `<a href="#/kb/object/${encodeURIComponent(id)}">${esc(label || id)}</a>`;
}
function kbTypeBadge(t) {
  return `<span class="kb-type kb-t-${esc(String(t).replace(/[^a-z0-9-]/g, ""))}">${esc(t)}</span>`;
}

// ---- search ------------------------------------------------------------------
async function pageKbSearch(params) {
  const q = params.get("q") || "";
  const type = params.get("type") || (q ? "" : "report");
  main.innerHTML = `<h1>Knowledge base</h1>
    <form id="kbsearch" class="row panel">
      <input id="q" type="search" class="grow" placeholder="names, aliases, descriptions (press / to focus)" value="${esc(q)}">
      <select id="kbtype" aria-label="type">${KB_TYPES.map((t) =>
        `<option value="${t}"${t === type ? " selected" : ""}>${t || "any type"}</option>`).join("")}</select>
      <button class="primary">Search</button>
      <button type="button" id="kbsync" title="link samples, rules, hunts and noise addresses">Sync trawl's data</button>
    </form>
    <div id="kbsyncres"></div>
    <div class="row kb-shortcuts">${KB_SHORTCUTS.map(([t, l]) =>
      `<a class="btn" href="#/kb?type=${t}">${l}</a>`).join("")}</div>
    <form id="kbmatch" class="row panel">
      <input id="kbpattern" type="text" class="grow mono" placeholder="[file:hashes.'SHA-256' = '…'] or [ipv4-addr:value ISSUBSET '203.0.113.0/24']">
      <button>Match against trawl's data</button>
    </form>
    <div id="kbmatchres"></div>
    <div id="kbres"><p class="muted">Searching…</p></div>`;
  $("#kbsearch").addEventListener("submit", (e) => {
    e.preventDefault();
    const qs = new URLSearchParams();
    if ($("#q").value.trim()) qs.set("q", $("#q").value.trim());
    if ($("#kbtype").value) qs.set("type", $("#kbtype").value);
    location.hash = "#/kb?" + qs.toString();
  });
  $("#kbsync").addEventListener("click", async () => {
    try {
      const r = await api("/api/kb/sync", { method: "POST", json: {} });
      toast(`synced: ${r.added} added, ${r.updated} updated, ${r.retired} retired`);
      route();
    } catch (e) { showError($("#kbsyncres"), e); }
  });
  $("#kbmatch").addEventListener("submit", async (e) => {
    e.preventDefault();
    const box = $("#kbmatchres");
    try {
      const r = await api("/api/kb/match?pattern=" + encodeURIComponent($("#kbpattern").value));
      box.innerHTML = `<div class="panel" id="kbmatchlist"><b>${r.samples.length} samples, ${r.ips.length} addresses</b>
        <ul>${r.samples.map((s) => `<li><a class="mono" href="#/sample/${esc(s.sha256)}">${esc(s.sha256)}</a> ${esc(s.name || "")}</li>`).join("")}
        ${r.ips.map((i) => `<li class="mono">${esc(i.ip)} <span class="muted">${esc(i.classification)}</span></li>`).join("")}</ul></div>`;
    } catch (err) { box.innerHTML = errorBox(err); }
  });
  const qs = new URLSearchParams();
  if (q) qs.set("q", q);
  if (type) qs.set("type", type);
  qs.set("limit", "200");
  try {
    const r = await api("/api/stix/search?" + qs.toString());
    $("#kbres").innerHTML = r.objects.length ? `<table id="kbtable"><thead><tr><th>type</th><th>name</th><th>modified</th></tr></thead><tbody>
      ${r.objects.map((o) => `<tr class="clickable" data-href="#/kb/object/${encodeURIComponent(o.id)}">
        <td>${kbTypeBadge(o.type)}</td><td>${kbLink(o.id, kbName(o))}${o.revoked ? ` <span class="bad">revoked</span>` : ""}</td>
        <td class="muted">${esc(o.modified || "")}</td></tr>`).join("")}</tbody></table>`
      : `<p class="muted" id="kbempty">Nothing found.</p>`;
  } catch (e) { $("#kbres").innerHTML = errorBox(e); }
}

// ---- one object ----------------------------------------------------------------
function kbValue(k, v) {
  if (typeof v === "string" && /^[a-z0-9-]+--[0-9a-f-]{36}$/.test(v)) return kbLink(v);
  if (Array.isArray(v)) return v.map((x) => kbValue(k, x)).join("<br>");
  if (v && typeof v === "object") return `<pre class="kb-json">${esc(JSON.stringify(v, null, 2))}</pre>`;
  if (k === "pattern") return `<pre class="kb-json">${esc(v)}</pre>`;
  return esc(v);
}

function kbGraph(graph, centre) {
  const nodes = graph.nodes.slice(0, 80);
  const ids = new Set(nodes.map((n) => n.id));
  const edges = graph.edges.filter((e) => ids.has(e.source_ref) && ids.has(e.target_ref));
  // Rings by hop count from the centre (breadth first over the edges).
  const hop = new Map([[centre, 0]]);
  let frontier = [centre];
  while (frontier.length) {
    const next = [];
    for (const id of frontier)
      for (const e of edges)
        for (const [a, b] of [[e.source_ref, e.target_ref], [e.target_ref, e.source_ref]])
          if (a === id && !hop.has(b)) { hop.set(b, hop.get(id) + 1); next.push(b); }
    frontier = next;
  }
  const rings = new Map();
  for (const n of nodes) {
    const d = hop.has(n.id) ? hop.get(n.id) : 3;
    if (!rings.has(d)) rings.set(d, []);
    rings.get(d).push(n);
  }
  const W = 900, H = 560, cx = W / 2, cy = H / 2, pos = new Map();
  const maxd = Math.max(1, ...rings.keys());
  for (const [d, list] of rings) {
    const r = d === 0 ? 0 : Math.min(cx, cy) * 0.85 * (d / maxd);
    list.forEach((n, i) => {
      const a = (2 * Math.PI * i) / list.length + d * 0.4;
      pos.set(n.id, [cx + r * Math.cos(a), cy + r * Math.sin(a)]);
    });
  }
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "kb-graph");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "neighbourhood graph");
  const el = (name, attrs, parent) => {
    const x = document.createElementNS(SVGNS, name);
    for (const [k, v] of Object.entries(attrs)) x.setAttribute(k, v);
    parent.appendChild(x);
    return x;
  };
  for (const e of edges) {
    const [x1, y1] = pos.get(e.source_ref), [x2, y2] = pos.get(e.target_ref);
    const g = el("g", { class: "kb-edge" }, svg);
    el("line", { x1, y1, x2, y2 }, g);
    const t = el("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 3 }, g);
    t.textContent = e.relationship_type;
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n.id);
    const a = el("a", { href: "#/kb/object/" + encodeURIComponent(n.id), class: "kb-node kb-t-" + n.type }, svg);
    if (n.id === centre) a.setAttribute("class", a.getAttribute("class") + " kb-centre");
    el("circle", { cx: x, cy: y, r: n.id === centre ? 14 : 9 }, a);
    const t = el("text", { x, y: y + 24 }, a);
    const label = kbName(n);
    t.textContent = label.length > 28 ? label.slice(0, 26) + "…" : label;
    const title = el("title", {}, a);
    title.textContent = `${n.type}: ${label}`;
  }
  return svg;
}

// What a malware or intrusion set is linked to: the samples (files), the
// rules (indicators) and the addresses in its neighbourhood.
function kbLinked(graph, self) {
  const by = (types) => graph.nodes.filter((n) => n.id !== self.id && types.includes(n.type));
  const files = by(["file"]), rules = by(["indicator"]), ips = by(["ipv4-addr", "ipv6-addr"]);
  const li = (n, extra) => `<li>${kbLink(n.id, kbName(n))}${extra || ""}${n.x_trawl_removed ? ` <span class="muted">(removed from the store)</span>` : ""}</li>`;
  return `<div class="kb-linked">
    <div class="panel" id="kbsamples"><h2>Samples (${files.length})</h2><ul>${files.map((f) =>
      li(f, f.hashes && f.hashes["SHA-256"] && !f.x_trawl_removed ? ` · <a href="#/sample/${esc(f.hashes["SHA-256"])}">sample</a>` : "")).join("")}</ul></div>
    <div class="panel" id="kbrules"><h2>Rules (${rules.length})</h2><ul>${rules.map((r) => li(r, ` <span class="muted">${esc(r.pattern_type || "")}</span>`)).join("")}</ul></div>
    <div class="panel" id="kbips"><h2>Addresses (${ips.length})</h2><ul>${ips.map((i) => li(i)).join("")}</ul></div>
  </div>`;
}

async function pageKbObject(id, params) {
  const depth = Math.max(1, Math.min(3, parseInt(params.get("depth") || "2", 10) || 2));
  main.innerHTML = `<p class="muted">Loading…</p>`;
  let o, versions, graph;
  try {
    [o, versions, graph] = await Promise.all([
      api("/api/stix/objects/" + encodeURIComponent(id)),
      api("/api/stix/objects/" + encodeURIComponent(id) + "/versions"),
      api("/api/stix/objects/" + encodeURIComponent(id) + "/neighbours?depth=" + depth),
    ]);
  } catch (e) { main.innerHTML = errorBox(e); return; }
  const markings = await Promise.all((o.object_marking_refs || []).map((m) =>
    api("/api/stix/objects/" + encodeURIComponent(m)).catch(() => ({ id: m }))));
  const props = Object.entries(o).filter(([k]) => k !== "object_marking_refs");
  main.innerHTML = `<h1>${kbTypeBadge(o.type)} <span id="kbname">${esc(kbName(o))}</span>${o.revoked ? ` <span class="bad">revoked</span>` : ""}</h1>
    <p class="row"><a href="#/kb">← knowledge base</a> <button id="kbexport">Export every version</button></p>
    <div class="panel"><h2>Markings</h2><div id="kbmarkings">${markings.length ? markings.map((m) =>
      `<span class="tag">${kbLink(m.id, m.name || m.id)}</span>`).join("") : `<span class="muted">none</span>`}</div></div>
    ${["malware", "intrusion-set"].includes(o.type) ? kbLinked(graph, o) : ""}
    <div class="panel"><h2>Neighbourhood</h2>
      <div class="row">depth ${[1, 2, 3].map((d) => d === depth ? `<b>${d}</b>` :
        `<a href="#/kb/object/${encodeURIComponent(o.id)}?depth=${d}">${d}</a>`).join(" ")}
        <span class="muted">${graph.nodes.length} objects${graph.truncated ? " (truncated)" : ""}${graph.nodes.length > 80 ? ", the first 80 drawn" : ""}</span></div>
      <div id="kbgraph"></div></div>
    <div class="panel"><h2>Properties</h2><dl class="kv" id="kbprops">${props.map(([k, v]) =>
      `<dt>${esc(k)}</dt><dd>${kbValue(k, v)}</dd>`).join("")}</dl></div>
    <div class="panel"><h2>Versions (${versions.versions.length})</h2><table id="kbversions"><thead><tr><th>modified</th><th>revoked</th><th>changes</th></tr></thead><tbody>
      ${versions.versions.slice().reverse().map((v, i, all) => {
        const prev = all[i + 1];
        const changed = prev ? Object.keys(v).filter((k) => JSON.stringify(v[k]) !== JSON.stringify(prev[k]) && k !== "modified") : ["first version"];
        return `<tr><td class="mono">${esc(v.modified || v.created || "—")}</td><td>${v.revoked ? "yes" : ""}</td><td>${esc(changed.join(", "))}</td></tr>`;
      }).join("")}</tbody></table></div>`;
  $("#kbgraph").appendChild(kbGraph(graph, o.id));
  $("#kbexport").addEventListener("click", () => download("/api/stix/export?versions=all&id=" +
    encodeURIComponent(o.id), o.id + ".json"));
}

function pageKb(parts, params) {
  if (parts[0] === "object" && parts[1]) return pageKbObject(decodeURIComponent(parts[1]), params);
  return pageKbSearch(params);
}
