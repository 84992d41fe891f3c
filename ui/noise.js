// trawl web UI, the noise pages: GNQL search with stats facets, the IP page,
// tags, sensors and the tag editor. Uses app.js's helpers (api, esc, h, $,
// main, errorBox, toast); app.js routes #/noise... here.
"use strict";

function noiseNav(active) {
  const l = [["", "Search"], ["tags", "Tags"], ["sensors", "Sensors"], ["editor", "Tag editor"]];
  return `<nav class="subnav">${l.map(([p, t]) =>
    `<a href="#/noise${p ? "/" + p : ""}" class="${p === active ? "active" : ""}">${t}</a>`).join(" · ")}</nav>`;
}

function gnqlQuote(v) {
  return /[\s()"]/.test(v) ? '"' + String(v).replace(/["\\]/g, "\\$&") + '"' : String(v);
}

// A bar chart as SVG (no inline styles: attributes only).
function barChart(points, label) {
  const w = 600, hgt = 120, n = Math.max(points.length, 1), max = Math.max(1, ...points.map((p) => p.v));
  const bw = w / n;
  const bars = points.map((p, i) => {
    const bh = Math.round((p.v / max) * (hgt - 20));
    return `<rect class="bar" x="${(i * bw + 1).toFixed(1)}" y="${hgt - bh}" width="${Math.max(bw - 2, 1).toFixed(1)}" height="${bh}"><title>${esc(p.k)}: ${p.v}</title></rect>`;
  }).join("");
  return `<svg class="chart" viewBox="0 0 ${w} ${hgt}" width="${w}" height="${hgt}" role="img" aria-label="${esc(label)}">${bars}
    <text x="2" y="12" class="chart-label">max ${max}</text></svg>`;
}

function hexdump(b64) {
  if (!b64) return "";
  const bin = atob(b64);
  const lines = [];
  for (let off = 0; off < bin.length && off < 4096; off += 16) {
    const chunk = bin.slice(off, off + 16);
    const hex = Array.from(chunk, (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(chunk, (c) => { const x = c.charCodeAt(0); return x >= 32 && x < 127 ? c : "."; }).join("");
    lines.push(off.toString(16).padStart(8, "0") + "  " + hex.padEnd(48) + "  " + ascii);
  }
  return lines.join("\n");
}

async function pageNoiseSearch(params) {
  const q = params.get("q") || "";
  main.innerHTML = `<h1>Noise</h1>${noiseNav("")}
    <form id="gnql-form" class="row"><input id="gnql" class="grow" placeholder='GNQL, e.g. tags:"Mirai" -classification:benign' value="${esc(q)}">
    <button class="primary">Search</button></form>
    <div id="gnql-out"></div>`;
  $("#gnql-form").onsubmit = (e) => {
    e.preventDefault();
    location.hash = "#/noise?q=" + encodeURIComponent($("#gnql").value.trim());
  };
  if (!q) return;
  const out = $("#gnql-out");
  out.textContent = "searching…";
  try {
    const enc = encodeURIComponent(q);
    const [res, st] = await Promise.all([api("/v3/gnql?size=100&query=" + enc),
      api("/v2/experimental/gnql/stats?count=8&query=" + enc)]);
    const md = res.request_metadata;
    const rows = res.data.map((d) => {
      const i = d.internet_scanner_intelligence;
      return `<tr class="clickable" data-href="#/noise/ip/${esc(d.ip)}"><td class="mono"><a href="#/noise/ip/${esc(d.ip)}">${esc(d.ip)}</a></td>
        <td>${esc(i.classification)}</td><td>${esc(i.last_seen)}</td><td>${esc(i.actor)}</td>
        <td>${tags((i.tags || []).map((t) => t.name))}</td></tr>`;
    }).join("");
    const facetKeys = [["classifications", "classification", "classification"], ["tags", "tag", "tags"],
      ["countries", "country", "metadata.country"], ["asns", "asn", "metadata.asn"],
      ["organizations", "organization", "metadata.organization"], ["actors", "actor", "actor"],
      ["spoofable", "spoofable", "spoofable"], ["ports", "port", "raw_data.scan.port"],
      ["sensors", "sensor", "sensor"], ["destination_countries", "country", null]];
    const facets = facetKeys.map(([list, key, field]) => {
      const items = (st.stats[list] || []).map((x) => {
        const v = typeof x[key] === "object" && x[key] !== null ? x[key].name : x[key];
        const term = field ? field + ":" + gnqlQuote(v) : null;
        return `<li>${term ? `<a href="#" class="facet" data-term="${esc(term)}">${esc(v)}</a>` : esc(v)} <span class="muted">${x.count}</span></li>`;
      }).join("");
      return items ? `<div class="facet-group"><h3>${esc(list.replace("_", " "))}</h3><ul>${items}</ul></div>` : "";
    }).join("");
    out.innerHTML = `<p id="gnql-count">${md.count} matching IPs${md.complete ? "" : " (first 100 shown)"}</p>
      <div class="noise-layout"><aside class="facets">${facets}</aside>
      <table class="list"><thead><tr><th>IP</th><th>Classification</th><th>Last seen</th><th>Actor</th><th>Tags</th></tr></thead>
      <tbody>${rows}</tbody></table></div>`;
    out.querySelectorAll("a.facet").forEach((a) => a.onclick = (e) => {
      e.preventDefault();
      location.hash = "#/noise?q=" + encodeURIComponent((q + " " + a.getAttribute("data-term")).trim());
    });
  } catch (e) {
    out.innerHTML = errorBox(e.data && e.data.message ? Object.assign(e, { message: e.data.message }) : e);
  }
}

async function pageNoiseIp(ip) {
  main.innerHTML = `<h1 class="mono">${esc(ip)}</h1>${noiseNav("ip")}<div id="ip-out">loading…</div>`;
  const out = $("#ip-out");
  let r;
  try {
    r = await api("/api/noise/ip/" + encodeURIComponent(ip));
  } catch (e) {
    out.innerHTML = e.status === 404 ? `<p>Never seen by this trawl's sensors.</p>` : errorBox(e);
    return;
  }
  const m = r.metadata || {};
  const days = Object.entries(r.events_per_day || {}).map(([k, v]) => ({ k, v }));
  const kv = [["Classification", r.classification], ["Actor", r.actor], ["First seen", r.first_seen_time],
    ["Last seen", r.last_seen_time], ["Events", r.events], ["Spoofable", r.spoofable ? "yes" : "no"],
    ["Country", m.country ? `${m.country} (${m.country_code})` : ""], ["ASN", m.asn], ["Organization", m.organization],
    ["rDNS", m.rdns], ["Tor", m.tor ? "exit node" : "no"], ["CVEs", (r.cve || []).join(", ")]];
  const scan = (r.raw_data.scan || []).map((s) => s.port + "/" + s.protocol).join(", ");
  out.innerHTML = `<dl class="kv" id="ip-record">${kv.map(([k, v]) => `<dt>${k}</dt><dd>${esc(v)}</dd>`).join("")}
      <dt>Ports</dt><dd>${esc(scan)}</dd>
      <dt>Paths</dt><dd class="mono">${esc((r.raw_data.web.paths || []).join("  "))}</dd>
      <dt>User agents</dt><dd class="mono">${esc((r.raw_data.web.useragents || []).join("  "))}</dd>
      <dt>Sensors</dt><dd>${esc((r.sensors || []).map((s) => s.name).join(", "))}</dd></dl>
    <h2>Activity</h2><div id="ip-timeline">${barChart(days, "events per day")}</div>
    <h2>Tags</h2><div id="ip-tags">${(r.tag_details || []).map((t) =>
      `<details class="tag-events" data-tag="${esc(t.name)}"><summary><span class="tag">${esc(t.name)}</span>
       ${esc(t.intention || "")} · ${t.events} events · ${esc(t.first_seen)} – ${esc(t.last_seen)}</summary>
       <div class="events">…</div></details>`).join("") || "<p>No tags.</p>"}</div>
    <h2>Recent events</h2><div id="ip-events" class="events">…</div>`;
  const showEvents = async (box, tag) => {
    try {
      const ev = await api(`/api/noise/events?limit=20&ip=${encodeURIComponent(ip)}${tag ? "&tag=" + encodeURIComponent(tag) : ""}`);
      box.innerHTML = ev.events.map((e) => `<div class="event"><div>${esc(e.time)} · ${esc(e.sensor)} · ${esc(e.proto)} → port ${e.dst_port}
        ${tags(e.tags)}</div>${e.payload_b64 ? `<pre class="hexdump">${esc(hexdump(e.payload_b64))}</pre>` : ""}</div>`).join("") || "none stored (retention)";
    } catch (e) { box.innerHTML = errorBox(e); }
  };
  out.querySelectorAll("details.tag-events").forEach((d) => d.addEventListener("toggle", () => {
    if (d.open) showEvents($(".events", d), d.getAttribute("data-tag"));
  }));
  showEvents($("#ip-events"), null);
}

async function pageNoiseTags(params) {
  main.innerHTML = `<h1>Noise tags</h1>${noiseNav("tags")}<div id="tags-out">loading…</div>`;
  const out = $("#tags-out");
  try {
    const list = await api("/api/noise/tags");
    const sel = params.get("tag");
    out.innerHTML = `<div class="noise-layout"><aside><input id="tag-filter" placeholder="filter (e.g. SMBGhost)">
      <ul id="tag-list" class="plain">${list.tags.map((t) =>
        `<li data-name="${esc(t.name.toLowerCase())}"><a href="#/noise/tags?tag=${encodeURIComponent(t.name)}">${esc(t.name)}</a> <span class="muted">${t.ips} IPs</span></li>`).join("")}</ul></aside>
      <section id="tag-detail">${sel ? "loading…" : "<p>Pick a tag.</p>"}</section></div>`;
    $("#tag-filter").oninput = (e) => {
      const f = e.target.value.toLowerCase();
      out.querySelectorAll("#tag-list li").forEach((li) => li.hidden = !li.getAttribute("data-name").includes(f));
    };
    if (!sel) return;
    const t = list.tags.find((x) => x.name === sel) || { name: sel };
    const q = "tags:" + gnqlQuote(sel);
    const [days, st] = await Promise.all([api("/api/noise/tag-days/" + encodeURIComponent(sel) + "?days=30"),
      api("/v2/experimental/gnql/stats?count=10&query=" + encodeURIComponent(q))]);
    const top = (l, k) => (l || []).map((x) => `<li>${esc(x[k])} <span class="muted">${x.count}</span></li>`).join("") || "<li>none</li>";
    $("#tag-detail").innerHTML = `<h2 id="tag-name">${esc(sel)}</h2>
      <p>${esc(t.description || "")}</p><p>${esc(t.category || "")} · ${esc(t.intention || "")} ${(t.cves || []).map((c) => `<span class="tag">${esc(c)}</span>`).join("")}</p>
      <p><a href="#/noise?q=${encodeURIComponent(q)}">${st.count} IPs (search)</a></p>
      <h3>IPs per day, 30 days</h3><div id="tag-chart">${barChart(days.days.map((d) => ({ k: d.day, v: d.ips })), "IPs per day")}</div>
      <div class="cols"><div><h3>Top ports</h3><ul id="tag-ports">${top(st.stats.ports, "port")}</ul></div>
      <div><h3>Top countries</h3><ul id="tag-countries">${top(st.stats.countries, "country")}</ul></div></div>`;
  } catch (e) { out.innerHTML = errorBox(e); }
}

async function pageNoiseSensors() {
  main.innerHTML = `<h1>Sensors</h1>${noiseNav("sensors")}<div id="sensors-out">loading…</div>`;
  const out = $("#sensors-out");
  try {
    const s = await api("/api/noise/sensors");
    out.innerHTML = `<table class="list" id="sensors"><thead><tr><th>Sensor</th><th>Last event</th><th>Events 1 h</th>
      <th>Events 24 h</th><th>Events 7 d</th><th>Source IPs 7 d</th></tr></thead><tbody>${s.sensors.map((x) =>
      `<tr><td>${esc(x.name)}</td><td>${esc(x.last_event)}</td><td>${x.events_1h}</td><td>${x.events_24h}</td>
       <td>${x.events_7d}</td><td>${x.ips_7d}</td></tr>`).join("")}</tbody></table>
      <p class="muted">Spool state lives on each sensor (trawl sensor status); the server sees what arrived.</p>`;
  } catch (e) { out.innerHTML = errorBox(e); }
}

function pageNoiseEditor() {
  main.innerHTML = `<h1>Tag editor</h1>${noiseNav("editor")}
    <p>Write a tag as a YARA rule (meta: name, category, intention: malicious, benign or unknown, cves, description). Test it against the stored events before saving.</p>
    <textarea id="tag-src" class="code" rows="16" spellcheck="false">rule my_tag
{
    meta:
        name = "My Tag"
        category = "activity"
        intention = "malicious"
    strings:
        $a = "/.env"
    condition:
        $a
}</textarea>
    <div class="row"><button id="tag-test">Test against stored events</button> <button id="tag-save" class="primary">Save</button></div>
    <div id="tag-result"></div>`;
  const out = $("#tag-result");
  $("#tag-test").onclick = async () => {
    out.textContent = "testing…";
    try {
      const r = await api("/api/noise/tags/test", { method: "POST", json: { text: $("#tag-src").value } });
      out.innerHTML = `<p id="tag-test-summary">${r.events_matched} of ${r.events_scanned} stored events match (${r.ips_shown} IPs shown)</p>
        <table class="list"><thead><tr><th>Event</th><th>Source</th><th>Time</th><th>Tag</th></tr></thead><tbody>${r.matches.map((m) =>
        `<tr><td>${m.event_id}</td><td><a href="#/noise/ip/${esc(m.src_ip)}">${esc(m.src_ip)}</a></td><td>${esc(m.time)}</td><td>${esc(m.tag)}</td></tr>`).join("")}</tbody></table>`;
    } catch (e) { out.innerHTML = errorBox(e); }
  };
  $("#tag-save").onclick = async () => {
    try {
      const r = await api("/api/noise/tags", { method: "POST", json: { text: $("#tag-src").value } });
      out.innerHTML = `<p id="tag-saved">Saved ${esc(JSON.stringify(r.tags || r))}</p>`;
      toast("tag saved");
    } catch (e) { out.innerHTML = errorBox(e); }
  };
}

function pageNoise(parts, params) {
  switch (parts[1]) {
    case "ip": return pageNoiseIp(decodeURIComponent(parts.slice(2).join("/")));
    case "tags": return pageNoiseTags(params);
    case "sensors": return pageNoiseSensors();
    case "editor": return pageNoiseEditor();
    default: return pageNoiseSearch(params);
  }
}
