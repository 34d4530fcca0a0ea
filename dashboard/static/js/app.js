// The dispatcher's page: login, the live map, the selected vehicle and the panels.
// REST gives the state; two WebSockets keep it current (the map's, filtered by viewport
// and the followed vehicle, and the panels', unfiltered); without them, REST is polled.
import { ApiError, api, loadConfig, session } from "./api.js";
import { setupLogin } from "./auth.js";
import { $, setText } from "./dom.js";
import { LiveClient } from "./live.js";
import { boundsOf, createMap, drawFences, viewBbox } from "./map.js";
import { DocksPanel } from "./panels/docks.js";
import { ExceptionsPanel } from "./panels/exceptions.js";
import { GatewaysPanel } from "./panels/gateways.js";
import { OrdersPanel } from "./panels/orders.js";
import { VehicleList } from "./panels/vehicleList.js";
import { Replay } from "./replay.js";
import { setupTabs } from "./tabs.js";
import { VehiclePanel } from "./vehiclePanel.js";
import { VehicleLayer } from "./vehicles.js";

const L = window.L;
const POLL_MS = 5000; // REST polling while the live stream is down
const VEHICLE_REFRESH_MS = 30000; // staleness is the server's to decide: re-read now and then
const MAP_STREAMS = ["vehicles", "etas"];
const PANEL_STREAMS = ["orders", "exceptions", "scans", "gateways"];

const config = await loadConfig();
let ui = null; // built on the first login
let restOk = true;
let pollTimer = null;
let fitted = false;

function build() {
  const map = createMap($("#map"), config);
  const fences = L.featureGroup().addTo(map);
  const tripLayer = L.featureGroup().addTo(map);
  const vehicles = new VehicleLayer(map);
  const built = {
    map, fences, tripLayer, vehicles,
    panel: new VehiclePanel({ vehicles, tripLayer, onClose: () => { subscribeMap(); renderVehicleList(); } }),
    list: new VehicleList({ onSelect: (id) => select(id, { pan: true }) }),
    orders: new OrdersPanel(),
    exceptions: new ExceptionsPanel({
      onCount: (n) => badge("exceptions", n),
      canManage: () => ["admin", "dispatcher"].includes(session.role),
    }),
    docks: new DocksPanel(),
    gateways: new GatewaysPanel({ onTrouble: (n) => badge("gateways", n) }),
    replay: new Replay(map),
    mapLive: new LiveClient({ streams: MAP_STREAMS }),
    panelLive: new LiveClient({ streams: PANEL_STREAMS }),
  };
  vehicles.addEventListener("select", (e) => select(e.detail));
  map.on("moveend", () => subscribeMap());
  setupTabs((name) => { if (name === "replay") built.replay.setEnabled(built.replay.points.length > 0); });
  for (const live of [built.mapLive, built.panelLive]) {
    live.addEventListener("state", showStatus);
    live.addEventListener("resync", () => refreshAll());
    live.addEventListener("frame", (e) => onFrame(e.detail));
  }
  return built;
}

function badge(tab, count) {
  const target = $(`[data-tab=${tab}] .badge`);
  if (!target) return;
  setText(target, count ? String(count) : "");
  target.hidden = !count;
}

async function select(id, { pan = false } = {}) {
  const data = ui.vehicles.get(id);
  if (pan && data) ui.map.panTo([data.lat, data.lon]);
  ui.replay.choose(id);
  const opened = ui.panel.open(id);
  subscribeMap();
  renderVehicleList();
  await opened;
  subscribeMap(); // now with the trip
}

function subscribeMap() {
  if (!ui) return;
  const id = ui.panel.id;
  const trip = ui.panel.tripId;
  ui.mapLive.subscribe({
    streams: MAP_STREAMS, bbox: viewBbox(ui.map),
    vehicles: id ? [id] : undefined, trip: trip || undefined,
  });
}

function renderVehicleList() {
  ui.list.render(ui.vehicles.list(), ui.panel.id);
}

let listRender = null;
function renderVehicleListSoon() {
  listRender ??= setTimeout(() => { listRender = null; renderVehicleList(); }, 2000);
}

async function loadVehicles() {
  try {
    const collection = await api("/map/vehicles");
    ui.vehicles.setAll(collection);
    setNotice("");
  } catch (err) {
    if (err.status === 404 || err.status === 403) {
      setNotice(err.status === 404
        ? "Vehicle positions are not available from this server yet (GET /api/v1/map/vehicles: 404)."
        : `Vehicle positions: ${err.message}`);
      const fleet = await api("/vehicles").catch(() => []);
      ui.replay.setVehicles(fleet.map((v) => ({ id: v.id, name: v.name })));
      ui.list.render([], null, "Vehicle positions are unavailable; retrying.");
      return;
    }
    throw err;
  }
  ui.replay.setVehicles(ui.vehicles.list().map((v) => ({ id: v.vehicle_id, name: v.name })));
  renderVehicleList();
}

async function loadFences() {
  drawFences(ui.fences, await api("/geofences", { params: { format: "geojson" } }));
}

function setNotice(text) {
  const notice = $("#map-notice");
  setText(notice, text);
  notice.hidden = !text;
}

let refreshing = null;
let refreshAgain = false;

/** Re-read everything from REST (start, resync, reconnect, polling); calls that come while
 * a read is under way coalesce into one more read after it. */
function refreshAll() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = readEverything().finally(() => {
    refreshing = null;
    if (refreshAgain) {
      refreshAgain = false;
      refreshAll();
    }
  });
  return refreshing;
}

async function readEverything() {
  if (!ui || !session.token) return;
  const tasks = [loadVehicles(), loadFences(), ui.orders.load(), ui.exceptions.load(), ui.docks.load(),
    ui.gateways.load(), ui.panel.refresh()];
  const results = await Promise.allSettled(tasks);
  const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
  for (const err of failures) if (!(err instanceof ApiError && err.status === 401)) console.warn("refresh:", err);
  // Offline: nothing answered at all (the network or the server is down).
  restOk = failures.length < tasks.length || failures.every((e) => e instanceof ApiError);
  if (!fitted) {
    const bounds = boundsOf(ui.fences) || ui.vehicles.bounds();
    const vehicleBounds = ui.vehicles.bounds();
    if (bounds && vehicleBounds) bounds.extend(vehicleBounds);
    if (bounds) {
      ui.map.fitBounds(bounds, { padding: [20, 20], maxZoom: 15 });
      fitted = true;
    }
  }
  showStatus();
}

let vehicleReload = null;
function reloadVehiclesSoon() {
  if (vehicleReload) return;
  vehicleReload = setTimeout(() => { vehicleReload = null; loadVehicles().catch(() => {}); }, 1000);
}

function onFrame(frame) {
  const items = frame.items || [];
  switch (frame.type) {
    case "vehicles": {
      const selected = ui.panel.id;
      const before = selected ? ui.vehicles.get(selected)?.trip_id : null;
      if (ui.vehicles.applyFixes(items).length) reloadVehiclesSoon();
      renderVehicleListSoon();
      if (selected && items.some((i) => i.vehicle_id === selected)) {
        const after = ui.vehicles.get(selected)?.trip_id;
        if (after !== before) ui.panel.refresh().then(subscribeMap);
        else ui.panel.onFix(selected);
      }
      break;
    }
    case "etas": ui.panel.applyEtas(items); break;
    case "orders": ui.orders.apply(items); ui.panel.applyOrders(items); break;
    case "exceptions": ui.exceptions.apply(items); break;
    case "scans": ui.docks.apply(items); break;
    case "gateways": ui.gateways.apply(items); break;
    default: break;
  }
}

function isLive() {
  const needed = session.role === "dock" ? [ui.panelLive] : [ui.mapLive, ui.panelLive];
  return needed.every((c) => c.state === "live");
}

function showStatus() {
  if (!ui) return;
  const status = $("#live-status");
  const state = isLive() ? "live" : restOk ? "polling" : "offline";
  status.setAttribute("data-state", state);
  const text = {
    live: "Live",
    polling: "Live updates unavailable, retrying",
    offline: "Offline: the server cannot be reached, retrying",
  }[state];
  setText($("[data-field=text]", status), text);
  const why = [ui.mapLive.reason, ui.panelLive.reason].filter(Boolean).join("; ");
  status.title = state === "live" ? "" : `${why ? `${why}; ` : ""}refreshing every ${POLL_MS / 1000} s`;
}

function startPolling() {
  stopPolling();
  let last = Date.now();
  pollTimer = setInterval(() => {
    if (!isLive()) {
      refreshAll();
      last = Date.now();
    } else if (Date.now() - last >= VEHICLE_REFRESH_MS) {
      loadVehicles().catch(() => {});
      last = Date.now();
    }
  }, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

setupLogin({
  onLogin(role) {
    ui ??= build();
    setText($("#user-role"), role || "");
    ui.map.invalidateSize();
    ui.panelLive.subscribe({ streams: role === "dock" ? ["scans"] : PANEL_STREAMS });
    subscribeMap();
    refreshAll();
    if (role !== "dock") ui.mapLive.start();
    ui.panelLive.start();
    startPolling();
    showStatus();
  },
  onLogout() {
    if (!ui) return;
    stopPolling();
    ui.mapLive.stop();
    ui.panelLive.stop();
    if (ui.panel.id) ui.panel.close();
    ui.replay.clear();
  },
});
