// The analytics page (analytics.html): a date range, five reports drawn as inline SVG built
// with DOM calls (no chart library, no HTML strings), and CSV/XLSX downloads fetched with the
// session's token (a plain link cannot carry the Authorization header) and saved as a Blob.
import { ApiError, api, endSession, session } from "./api.js";
import { setupLogin } from "./auth.js";
import { $, $$, el, replace, setText } from "./dom.js";
import { humanize } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
let W = 600; // the viewBox width: the chart's own width in px, so text stays legible on a phone
const REPORTS = ["stages", "on-time", "exceptions", "throughput", "vehicles"];

/** An SVG element: attributes with setAttribute, strings as text nodes. */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  return node;
}

const minutes = (m) => (m === null || m === undefined ? "–" : m >= 120 ? `${(m / 60).toFixed(1)} h` : `${m.toFixed(m < 10 ? 1 : 0)} min`);
const empty = (text) => el("p", { class: "empty" }, text);

/** Horizontal bars: [{label, value, marker, text, title}]; `marker` draws a tick (p90). */
function hbars(rows, cls) {
  const labelW = Math.min(130, W * 0.24), valueW = Math.min(170, W * 0.42), rowH = 28;
  const max = Math.max(1e-9, ...rows.map((r) => Math.max(r.value || 0, r.marker || 0)));
  const scale = (v) => ((v || 0) / max) * (W - labelW - valueW);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${rows.length * rowH + 6}`, role: "img" });
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    chart.append(svg("g", {},
      svg("title", {}, r.title || `${r.label}: ${r.text}`),
      svg("text", { x: labelW - 8, y: y + 16, "text-anchor": "end", class: "label" }, r.label),
      svg("rect", { x: labelW, y: y + 4, width: Math.max(1, scale(r.value)), height: rowH - 10, class: cls, rx: 3 }),
      r.marker !== undefined && r.marker !== null
        ? svg("line", { x1: labelW + scale(r.marker), x2: labelW + scale(r.marker), y1: y + 1, y2: y + rowH - 3, class: "p90" })
        : null,
      svg("text", { x: labelW + scale(Math.max(r.value || 0, r.marker || 0)) + 6, y: y + 16, class: "value" }, r.text),
    ));
  });
  return chart;
}

function stagesChart(report) {
  const rows = report.overall.filter((r) => r.count);
  if (!rows.length) return empty("No stage ended in this range.");
  return hbars(rows.map((r) => ({
    label: humanize(r.stage), value: r.p50_min, marker: r.p90_min,
    text: `p50 ${minutes(r.p50_min)} · p90 ${minutes(r.p90_min)}`,
    title: `${humanize(r.stage)}: ${r.count} orders, p50 ${minutes(r.p50_min)}, p90 ${minutes(r.p90_min)}, mean ${minutes(r.mean_min)}`,
  })), "p50");
}

function onTimeChart(report) {
  const days = report.rows;
  if (!days.length) return empty("No deliveries in this range.");
  const H = 200, top = 34, bottom = 36, colW = W / days.length;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" },
    svg("line", { x1: 0, x2: W, y1: H - bottom, y2: H - bottom, class: "axis" }));
  days.forEach((d, i) => {
    const rate = d.on_time_rate;
    const h = rate === null ? 3 : Math.max(2, rate * (H - top - bottom));
    const x = i * colW + colW * 0.15, w = colW * 0.7, cx = i * colW + colW / 2;
    const label = rate === null ? "–" : `${Math.round(rate * 100)}%`;
    chart.append(svg("g", {},
      svg("title", {}, `${d.day}: ${d.on_time} on time, ${d.late} late, ${d.no_window} without a window`),
      svg("rect", { x, y: H - bottom - h, width: w, height: h, class: rate === null ? "rate none" : "rate", rx: 2 }),
      svg("text", { x: cx, y: H - bottom - h - 5, "text-anchor": "middle", class: "value" }, label),
      days.length <= 16 || i % Math.ceil(days.length / 16) === 0
        ? svg("text", { x: cx, y: H - bottom + 16, "text-anchor": "middle", class: "label" }, d.day.slice(5))
        : null,
    ));
  });
  const t = report.total;
  const summary = t.on_time_rate === null ? "no delivery had a window" : `${Math.round(t.on_time_rate * 100)}% on time`;
  chart.append(svg("text", { x: 0, y: 14, class: "value" },
    `${t.delivered} delivered · ${summary} · ${t.no_window} without a window`));
  return chart;
}

function exceptionsChart(report) {
  if (!report.by_kind.length) return empty("No exceptions in this range.");
  return hbars(report.by_kind.map((k) => ({
    label: humanize(k.kind), value: k.count, text: `${k.count} (${k.unresolved} unresolved)`,
  })), "count");
}

function throughputChart(report) {
  if (!report.rows.length) return empty("No accepted door scans in this range.");
  const grid = new Map(); // "site/door" -> 24 local-hour counts
  for (const r of report.rows) {
    const key = `${r.site}/${r.door}`;
    if (!grid.has(key)) grid.set(key, new Array(24).fill(0));
    grid.get(key)[new Date(r.hour).getHours()] += r.accepted;
  }
  const labelW = Math.min(110, W * 0.27), cell = (W - labelW) / 24, rowH = 24, top = 16;
  const max = Math.max(...[...grid.values()].flat());
  const chart = svg("svg", { viewBox: `0 0 ${W} ${top + grid.size * rowH + 4}`, role: "img" });
  for (let h = 0; h < 24; h += 3) {
    chart.append(svg("text", { x: labelW + h * cell + cell / 2, y: 11, "text-anchor": "middle", class: "value" }, String(h).padStart(2, "0")));
  }
  [...grid.keys()].sort().forEach((door, i) => {
    const y = top + i * rowH;
    chart.append(svg("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "label" }, door));
    grid.get(door).forEach((n, h) => {
      chart.append(svg("rect", {
        x: labelW + h * cell + 1, y: y + 1, width: cell - 2, height: rowH - 2, rx: 2,
        class: n ? "heat" : "heat zero", "fill-opacity": n ? (0.15 + 0.85 * n / max).toFixed(2) : null,
      }, svg("title", {}, `${door} ${String(h).padStart(2, "0")}:00: ${n} accepted`)));
    });
  });
  return chart;
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = (v.length - 1) / 2;
  return (v[Math.floor(mid)] + v[Math.ceil(mid)]) / 2;
}

function vehiclesChart(report) {
  const km = new Map(), dwell = new Map();
  for (const r of report.rows) km.set(r.vehicle_id ?? "no vehicle", (km.get(r.vehicle_id ?? "no vehicle") || 0) + r.distance_km);
  for (const s of report.stops) {
    const key = s.vehicle_id ?? "no vehicle";
    if (!km.has(key)) km.set(key, 0);
    if (s.dwell_min !== null) dwell.set(key, [...(dwell.get(key) || []), s.dwell_min]);
  }
  if (!km.size) return empty("No vehicle moved or stopped in this range.");
  return hbars([...km.entries()].sort((a, b) => b[1] - a[1]).map(([vehicle, total]) => {
    const d = median(dwell.get(vehicle) || []);
    return { label: vehicle, value: total, text: `${total.toFixed(1)} km · dwell ${minutes(d)}` };
  }), "km");
}

const CHARTS = {
  stages: stagesChart, "on-time": onTimeChart, exceptions: exceptionsChart,
  throughput: throughputChart, vehicles: vehiclesChart,
};

function localDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The range as the API takes it: local midnights of the chosen days, `to` exclusive. */
function rangeParams() {
  const start = new Date(`${$("#range-from").value}T00:00`);
  const end = new Date(`${$("#range-to").value}T00:00`);
  end.setDate(end.getDate() + 1);
  const site = $("#range-site").value.trim();
  return { from: start.toISOString(), to: end.toISOString(), ...(site ? { site } : {}) };
}

function paramsFor(report) {
  const params = rangeParams();
  if (report === "vehicles") delete params.site; // vehicles are not per site
  return params;
}

let results = [];

function draw() {
  let failed = 0;
  results.forEach((result, i) => {
    const target = $(`[data-chart="${REPORTS[i]}"]`);
    W = Math.max(300, Math.round(target.clientWidth || 600));
    if (result.status === "fulfilled") replace(target, CHARTS[REPORTS[i]](result.value));
    else {
      failed += 1;
      replace(target, empty(result.reason instanceof ApiError ? result.reason.message : "Could not load this report."));
    }
  });
  setText($("#an-status"), failed ? `${failed} report(s) could not be loaded.` : "");
}

async function loadAll() {
  setText($("#an-status"), "Loading…");
  results = await Promise.allSettled(REPORTS.map((r) => api(`/analytics/${r}`, { params: paramsFor(r) })));
  draw();
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(draw, 200);
});

async function download(report, format, button) {
  button.disabled = true;
  try {
    const search = new URLSearchParams({ ...paramsFor(report), format });
    const response = await fetch(`/api/v1/analytics/${report}?${search}`, {
      headers: { Authorization: `Bearer ${session.token}` },
    });
    if (response.status === 401) return endSession("Signed out: log in again to download.");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1];
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url; // a blob: URL of our own bytes, set as a property
    link.download = name || `analytics-${report}.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    setText($("#an-status"), `Download failed: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

for (const card of $$("[data-report]")) {
  const report = card.getAttribute("data-report");
  const buttons = ["csv", "xlsx"].map((format) => el("button", {
    type: "button", "data-format": format,
    onclick: (event) => download(report, format, event.currentTarget),
  }, `Download ${format.toUpperCase()}`));
  card.append(el("div", { class: "an-downloads" }, buttons));
}

const today = new Date();
const weekAgo = new Date(today);
weekAgo.setDate(today.getDate() - 6);
$("#range-from").value = localDate(weekAgo);
$("#range-to").value = localDate(today);
$("#range-form").addEventListener("submit", (event) => {
  event.preventDefault();
  loadAll();
});

setupLogin({ allowedRoles: ["dispatcher", "viewer"], onLogin: () => loadAll() });
