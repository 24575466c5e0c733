// jurisdns status page. Plain JavaScript, no dependencies, no build step.
//
// Safety rule: every piece of data from the API reaches the DOM through
// textContent or createTextNode (see el below), never through innerHTML, so
// a name or an instrument containing markup is shown as text. Links are
// created only for http(s) URLs.
"use strict";

(function () {
  const REFRESH_MS = 15000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STATE_LABEL = { active: "active", report: "report-only", inactive: "inactive", expired: "expired", failed: "not loaded" };

  // el builds an element: attrs are set with setAttribute (never "style" or
  // event handlers), children are nodes or strings (as text nodes).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "style" || k.startsWith("on")) throw new Error("el: refused attribute " + k);
      e.setAttribute(k, String(v));
    }
  }

  function append(e, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function setText(id, text) {
    document.getElementById(id).textContent = text;
  }

  // safeLink returns an <a> for an http(s) URL, or the URL as text.
  function safeLink(url, label) {
    let u;
    try {
      u = new URL(url);
    } catch (_) {
      return el("span", { class: "small" }, url);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") return el("span", { class: "small" }, url);
    return el("a", { href: u.href, target: "_blank", rel: "noopener noreferrer", title: u.href }, label || u.hostname);
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function isSet(t) {
    return t && !t.startsWith("0001-01-01");
  }

  // fmtTime shows a time in UTC: 2026-01-15 12:03:04.
  function fmtTime(t) {
    if (!isSet(t)) return "—";
    const d = new Date(t);
    if (isNaN(d)) return t;
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }

  function fmtClock(d) {
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }

  function short(hash) {
    return hash ? hash.slice(0, 12) : "—";
  }

  async function getJSON(url) {
    const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      // not JSON (e.g. 401 from the admin server)
    }
    if (!resp.ok) {
      const msg = body && body.error ? body.error : resp.status + " " + resp.statusText;
      const err = new Error(msg);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  // ---- status ----

  function badge(j) {
    let text = STATE_LABEL[j.state] || j.status;
    if (j.state === "inactive" && j.effective) text = "inactive until " + j.effective;
    if (j.state === "expired" && j.expires) text = "expired " + j.expires;
    if (j.state === "failed") text = j.status;
    return el("span", { class: "badge " + j.state, title: j.status }, text);
  }

  function jurisdictionCell(j) {
    return [
      el("div", { class: "jid" }, j.id),
      el("div", { class: "title" }, j.title),
      j.authority ? el("div", { class: "small" }, j.authority) : null,
    ];
  }

  function instrumentCell(j) {
    const titles = j.link_titles || [];
    const links = (j.links || []).map((u, i) => safeLink(u, titles[i] || (j.links.length > 1 ? "source " + (i + 1) : "source")));
    return [
      j.instrument ? el("div", null, j.instrument) : el("div", { class: "small" }, "—"),
      links.length ? el("div", { class: "links" }, links) : null,
    ];
  }

  function datesCell(j) {
    return [
      el("div", { class: "nowrap" }, el("span", { class: "small" }, "effective "), j.effective || "—"),
      el("div", { class: "nowrap" }, el("span", { class: "small" }, "expires "), j.expires || "—"),
    ];
  }

  function listCell(j) {
    const failed = [];
    for (const s of j.sources || []) {
      if (s.error) failed.push(el("div", { class: "failed", title: s.error }, "✕ " + s.name + ": " + s.error));
      else if (s.bad > 0) failed.push(el("div", { class: "small", title: (s.bad_lines || []).join("\n") }, s.name + ": " + s.bad + " bad line" + (s.bad === 1 ? "" : "s")));
    }
    if (j.load_error && !(j.sources || []).some((s) => s.error)) failed.push(el("div", { class: "failed" }, "✕ " + j.load_error));
    return [
      el("div", { class: "mono", title: "list hash " + j.hash }, short(j.hash)),
      el("div", { class: "small", title: "list hash last changed " + fmtTime(j.list_changed) + " UTC" }, "refreshed " + fmtTime(j.last_refresh)),
      failed,
    ];
  }

  function jurisdictionRow(j, withClients) {
    const tr = el("tr", { "data-id": j.id, "data-state": j.state });
    append(tr, [
      el("td", null, jurisdictionCell(j)),
      el("td", { class: "status" }, badge(j)),
      el("td", null, el("span", { class: "tier " + j.tier }, j.tier)),
      el("td", { class: "instrument" }, instrumentCell(j)),
      el("td", null, datesCell(j)),
      el("td", { class: "num" }, j.entries.toLocaleString("en-US")),
      el("td", { class: "list" }, listCell(j)),
    ]);
    if (withClients) {
      append(tr, [el("td", null, el("div", { class: "tags" }, (j.clients || []).map((c) => el("span", { class: "tag" }, c))))]);
    }
    return tr;
  }

  function renderSummary(p) {
    const s = p.summary;
    const box = document.getElementById("summary");
    clear(box);
    const card = (label, value, cls) => el("div", { class: "card " + (cls || "") }, el("div", { class: "label" }, label), el("div", { class: "value" }, String(value)));
    append(box, [
      card("Active", s.active, s.active ? "good" : ""),
      card("Report-only", s.report, s.report ? "warn" : ""),
      card("Inactive", s.inactive),
      card("Expired", s.expired),
      card("Failed sources", s.failed_sources, s.failed_sources ? "bad" : ""),
      card("Hits, last hour", p.hits.hour.total),
      card("Hits, last day", p.hits.day.total),
      card("Queries udp / tcp / dot / doh", [p.queries.udp, p.queries.tcp, p.queries.dot, p.queries.doh].join(" / ")),
    ]);
  }

  function renderJurisdictions(p) {
    const used = p.jurisdictions.filter((j) => j.in_use);
    const unused = p.jurisdictions.filter((j) => !j.in_use);
    const tbody = document.querySelector("#jurisdictions tbody");
    clear(tbody);
    if (!used.length) append(tbody, [el("tr", null, el("td", { class: "empty", colspan: 8 }, "No jurisdiction applies to any client."))]);
    for (const j of used) tbody.appendChild(jurisdictionRow(j, true));
    const ub = document.querySelector("#unused-table tbody");
    clear(ub);
    for (const j of unused) ub.appendChild(jurisdictionRow(j, false));
    document.getElementById("unused").hidden = unused.length === 0;
    setText("unused-summary", unused.length + " more jurisdiction" + (unused.length === 1 ? "" : "s") + " loaded but not applied to any client");
  }

  function renderClients(p) {
    const tbody = document.querySelector("#clients tbody");
    clear(tbody);
    for (const c of p.clients) {
      append(tbody, [el("tr", { "data-client": c.name },
        el("td", null, el("span", { class: "jid" }, c.name), c.default ? el("div", { class: "small" }, "clients matching no entry") : null),
        el("td", null, c.subnets.length ? el("div", { class: "tags" }, c.subnets.map((s) => el("span", { class: "tag" }, s))) : el("span", { class: "small" }, "—")),
        el("td", null, c.jurisdictions.length ? el("div", { class: "tags" }, c.jurisdictions.map((s) => el("span", { class: "tag" }, s))) : el("span", { class: "small" }, "none")),
      )]);
    }
  }

  // chart draws one series as an SVG bar chart; bar titles give the bucket
  // and its count.
  function chart(win, series, report) {
    const n = win.buckets, w = 180, h = 34, gap = 1;
    const bw = (w - gap * (n - 1)) / n;
    const max = Math.max(1, ...series.counts);
    const start = new Date(win.start).getTime();
    const s = svg("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h, role: "img", "aria-label": series.jurisdiction + ": " + series.total + " hits", class: "spark" });
    s.appendChild(svg("rect", { class: "bg", x: 0, y: 0, width: w, height: h - 1 }));
    series.counts.forEach((c, i) => {
      if (!c) return;
      const bh = Math.max(2, Math.round((c / max) * (h - 3)));
      const from = new Date(start + i * win.step_seconds * 1000), to = new Date(start + (i + 1) * win.step_seconds * 1000);
      s.appendChild(svg("rect", { class: "bar" + (report ? " report" : ""), x: (i * (bw + gap)).toFixed(2), y: h - 1 - bh, width: bw.toFixed(2), height: bh },
        svg("title", null, fmtClock(from) + "–" + fmtClock(to) + " UTC: " + c)));
    });
    s.appendChild(svg("line", { class: "base", x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5 }));
    return el("div", { class: "chart" }, s, el("span", { class: "total" }, String(series.total)));
  }

  function axis(win, labels) {
    const start = new Date(win.start).getTime(), end = start + win.buckets * win.step_seconds * 1000;
    return el("div", { class: "axis" }, el("span", null, labels[0] || fmtClock(new Date(start))), el("span", null, labels[1] || fmtClock(new Date(end))));
  }

  function renderHits(p) {
    const box = document.getElementById("hits");
    clear(box);
    const hour = p.hits.hour, day = p.hits.day;
    const ids = day.series.map((s) => s.jurisdiction);
    for (const s of hour.series) if (!ids.includes(s.jurisdiction)) ids.push(s.jurisdiction);
    if (!ids.length) {
      box.appendChild(el("p", { class: "empty" }, "No policy hits in the last 24 hours."));
      return;
    }
    const modes = {};
    for (const j of p.jurisdictions) modes[j.id] = j.mode;
    const empty = (win, id) => ({ jurisdiction: id, total: 0, counts: new Array(win.buckets).fill(0) });
    const find = (win, id) => win.series.find((s) => s.jurisdiction === id) || empty(win, id);
    const table = el("table", { class: "hits" },
      el("thead", null, el("tr", null,
        el("th", null, "Jurisdiction"),
        el("th", null, "Last hour, per minute"),
        el("th", null, "Last 24 hours, per hour"))));
    const tbody = el("tbody");
    for (const id of ids) {
      const report = modes[id] === "report";
      append(tbody, [el("tr", { "data-hits": id },
        el("td", null, el("span", { class: "jid" }, id), report ? el("div", { class: "small" }, "report-only") : null),
        el("td", null, chart(hour, find(hour, id), report)),
        el("td", null, chart(day, find(day, id), report)))]);
    }
    append(tbody, [el("tr", null, el("td"), el("td", null, axis(hour, ["−60 min", "now"])), el("td", null, axis(day, ["−24 h", "now"])))]);
    table.appendChild(tbody);
    box.appendChild(table);
  }

  // renderAudit says whether the enforcement log is being written and
  // gives its last signed checkpoint (keep it: docs/audit.md).
  function renderAudit(a) {
    if (!a) {
      setText("audit-state", "");
      return;
    }
    let text = a.writing
      ? "Enforcement log: writing (" + a.written + " records written, " + a.failed + " lost)."
      : "Enforcement log NOT WRITING since " + fmtTime(a.failing_since) + " UTC: " + a.error + " (" + a.failed + " lost so far).";
    if (a.checkpoint) {
      text += " Last signed checkpoint: " + a.checkpoint.count + " lines, head " + short(a.checkpoint.head) + ", " + fmtTime(a.checkpoint.time) + " UTC.";
    } else if (!a.signed) {
      text += " Not signed (audit.signing_key_file).";
    }
    setText("audit-state", text);
  }

  function renderRecent(p) {
    const tbody = document.querySelector("#recent tbody");
    clear(tbody);
    setText("recent-hint", "Newest first; the last " + p.recent_capacity + " are kept in memory (" + p.recent_total + " since start). Clients shown per client_privacy: " + p.client_privacy + ".");
    if (!p.recent.length) {
      append(tbody, [el("tr", null, el("td", { class: "empty", colspan: 7 }, "No enforcement records yet."))]);
      return;
    }
    for (const r of p.recent) {
      const outcome = r.mode === "report" ? "reported (" + r.action + ")" : "blocked (" + r.action + ")";
      const rule = r.rule ? r.rule + (r.source ? " · " + r.source + (r.line ? ":" + r.line : "") : "") : "—";
      append(tbody, [el("tr", null,
        el("td", { class: "nowrap" }, fmtTime(r.time)),
        el("td", { class: "mono" }, r.client || "—"),
        el("td", { class: "mono" }, r.name),
        el("td", null, r.type),
        el("td", null, el("span", { class: "jid" }, r.jurisdiction)),
        el("td", null, el("span", { class: "badge " + (r.mode === "report" ? "report" : "blocked") }, outcome)),
        el("td", { class: "mono small" }, rule))]);
    }
  }

  function render(p) {
    const hash = document.getElementById("meta-policy");
    hash.textContent = short(p.policy_hash);
    hash.title = p.policy_hash;
    setText("meta-since", fmtTime(p.policy_since) + " UTC");
    setText("meta-loaded", fmtTime(p.policy_loaded) + " UTC");
    setText("meta-updated", fmtTime(p.generated) + " UTC");
    setText("version", p.version ? "jurisdns " + p.version : "");
    renderSummary(p);
    renderNotCurrent(p);
    renderJurisdictions(p);
    renderClients(p);
    renderHits(p);
    renderRecent(p);
    renderAudit(p.audit);
    document.body.setAttribute("data-loaded", "true");
  }

  // renderNotCurrent lists the URL list sources served from their last
  // good copy (or not loaded yet) while their download is retried.
  function renderNotCurrent(p) {
    const box = document.getElementById("not-current");
    const items = p.not_current || [];
    clear(box);
    box.hidden = items.length === 0;
    if (!items.length) return;
    box.appendChild(el("strong", null, "List sources not current"));
    box.appendChild(el("ul", null, items.map((t) => el("li", null, t))));
  }

  function showError(msg) {
    const box = document.getElementById("load-error");
    box.textContent = msg;
    box.hidden = !msg;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      render(await getJSON("api/status"));
      showError("");
    } catch (e) {
      showError(e.status === 401 ? "Not authorized: this admin listener requires a bearer token (Authorization header)." : "Could not load the status: " + e.message);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  // ---- explain ----

  function verdictText(r) {
    switch (r.decision) {
      case "block": return "BLOCKED by " + r.jurisdiction;
      case "fail_closed": return "SERVFAIL: " + r.jurisdiction + " failed to load (fail_closed)";
      default: return "NOT BLOCKED";
    }
  }

  function kv(pairs) {
    const dl = el("dl", { class: "kv" });
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === "") continue;
      append(dl, [el("dt", null, k), el("dd", null, v)]);
    }
    return dl;
  }

  function renderExplain(r) {
    const box = document.getElementById("explain-result");
    clear(box);
    if (r.name_error) {
      box.appendChild(el("div", { class: "verdict error" }, r.name + ": not a valid name: " + r.name_error));
      return;
    }
    box.appendChild(el("div", { class: "verdict " + r.decision, "data-decision": r.decision }, el("span", { class: "mono" }, r.canonical), el("span", null, "— " + verdictText(r))));
    const client = (r.client || "(any)") + " → entry " + r.client_entry + (r.client_subnet ? " (" + r.client_subnet + ")" : "");
    const pairs = [["Client", client], ["Policy", short(r.policy_hash) + " at " + fmtTime(r.time) + " UTC"]];
    if (r.decision === "block") {
      pairs.push(["Decision", r.jurisdiction + " (tier " + r.tier + "), action " + r.action]);
      pairs.push(["Instrument", r.instrument || "—"]);
      pairs.push(["Rule", r.rule + " in " + r.source + " line " + r.line]);
    }
    if (r.reported && r.reported.length) pairs.push(["Report-only hits", r.reported.join(", ")]);
    if (r.elsewhere && r.elsewhere.length) pairs.push(["Also listed by (not applied to this client)", r.elsewhere.join(", ")]);
    box.appendChild(kv(pairs));

    if (r.answer) {
      const lines = ["status: " + r.answer.rcode];
      for (const s of r.answer.answer || []) lines.push(s);
      for (const s of r.answer.authority || []) lines.push(s);
      if (r.answer.ede) lines.push("EDE " + r.answer.ede);
      if (r.answer.note) lines.push(r.answer.note);
      box.appendChild(el("h3", { class: "sub-h" }, "Answer"));
      box.appendChild(el("pre", { class: "answer mono" }, lines.join("\n")));
    }

    box.appendChild(el("h3", { class: "sub-h" }, "Jurisdictions of this client"));
    const jt = el("table", { class: "data compact" },
      el("thead", null, el("tr", null, ["Jurisdiction", "Tier", "Mode", "Status", "Entries"].map((h) => el("th", null, h)))));
    const jb = el("tbody");
    for (const j of r.jurisdictions || []) {
      append(jb, [el("tr", null, el("td", { class: "jid" }, j.id), el("td", null, j.tier), el("td", null, j.mode), el("td", null, j.status), el("td", { class: "num" }, String(j.entries)))]);
    }
    if (!(r.jurisdictions || []).length) append(jb, [el("tr", null, el("td", { class: "empty", colspan: 5 }, "none"))]);
    jt.appendChild(jb);
    box.appendChild(el("div", { class: "scroll" }, jt));

    box.appendChild(el("h3", { class: "sub-h" }, "Matching rules"));
    const mt = el("table", { class: "data compact", id: "explain-matches" },
      el("thead", null, el("tr", null, ["Jurisdiction", "Rule", "Source", "Tier / mode / status", "Outcome"].map((h) => el("th", null, h)))));
    const mb = el("tbody");
    for (const m of r.matches || []) {
      append(mb, [el("tr", null,
        el("td", { class: "jid" }, m.jurisdiction),
        el("td", { class: "mono" }, (m.allow ? "allow " : "block ") + m.rule + " (" + m.kind + ")"),
        el("td", { class: "mono small" }, m.source + ":" + m.line),
        el("td", null, m.tier + " / " + m.mode + " / " + m.status),
        el("td", null, el("span", { class: "outcome " + m.outcome }, m.outcome), m.lifted_by ? el("div", { class: "small" }, "lifted by " + m.lifted_by) : null))]);
    }
    if (!(r.matches || []).length) append(mb, [el("tr", null, el("td", { class: "empty", colspan: 5 }, "No rule of this client's jurisdictions covers the name."))]);
    mt.appendChild(mb);
    box.appendChild(el("div", { class: "scroll" }, mt));

    box.appendChild(el("details", { class: "json" }, el("summary", null, "JSON (as jurisdns check --json)"), el("pre", { class: "mono" }, JSON.stringify(r, null, 2))));
  }

  async function explain(ev) {
    ev.preventDefault();
    const name = document.getElementById("explain-name").value.trim();
    const client = document.getElementById("explain-client").value.trim();
    const type = document.getElementById("explain-type").value;
    const q = new URLSearchParams({ name: name });
    if (client) q.set("client", client);
    if (type && type !== "A") q.set("type", type);
    const box = document.getElementById("explain-result");
    try {
      renderExplain(await getJSON("api/explain?" + q.toString()));
    } catch (e) {
      clear(box);
      box.appendChild(el("div", { class: "verdict error", "data-decision": "error" }, e.message));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("explain-form").addEventListener("submit", explain);
    refresh();
  });
})();
