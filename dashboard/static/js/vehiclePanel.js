// The selected vehicle: its loads, its stops' ETAs (GET /api/v1/map/vehicles/{id}) and its
// trip drawn on the map (GET /api/v1/map/trips/{trip_id}); `etas` frames keep it current.
import { api } from "./api.js";
import { $, el, replace, setText } from "./dom.js";
import { ago, humanize, shortClock, speedKmh } from "./format.js";
import { drawTrip } from "./map.js";

const OPEN_STOP = new Set(["pending", "arriving"]);

/** The first stop not yet arrived at (by seq), or null. */
export function nextStop(stops) {
  return [...(stops || [])].sort((a, b) => a.seq - b.seq).find((s) => OPEN_STOP.has(s.state)) || null;
}

export function etaText(stop) {
  if (!stop || !stop.eta) return "no ETA";
  const window = stop.eta_earliest && stop.eta_latest
    ? ` (${shortClock(stop.eta_earliest)}–${shortClock(stop.eta_latest)})` : "";
  return `ETA ${shortClock(stop.eta)}${window} · stop ${stop.seq}`;
}

export class VehiclePanel {
  constructor({ vehicles, tripLayer, onClose }) {
    this.vehicles = vehicles;
    this.tripLayer = tripLayer;
    this.onClose = onClose;
    this.panel = $("#vehicle-panel");
    this.id = null;
    this.detail = null;
    this.tripTimer = null;
    $("#vehicle-close").addEventListener("click", () => this.close());
  }

  get tripId() {
    return this.detail?.trip?.id || this.vehicles.get(this.id)?.trip_id || null;
  }

  async open(id) {
    this.id = id;
    this.detail = null;
    this.vehicles.select(id);
    this.panel.hidden = false;
    setText($("#vehicle-name"), this.vehicles.get(id)?.name || id);
    setText($("[data-testid=vehicle-eta]", this.panel), "loading…");
    replace($("[data-testid=vehicle-loads]", this.panel));
    await this.refresh();
  }

  close() {
    this.id = null;
    this.detail = null;
    this.panel.hidden = true;
    this.vehicles.select(null);
    this.tripLayer.clearLayers();
    this.onClose?.();
  }

  /** Re-read the vehicle and its trip. */
  async refresh() {
    const id = this.id;
    if (!id) return;
    try {
      const detail = await api(`/map/vehicles/${encodeURIComponent(id)}`);
      if (id !== this.id) return;
      this.detail = detail;
      this.render();
    } catch (err) {
      if (id !== this.id) return;
      setText($("[data-testid=vehicle-eta]", this.panel), "no ETA");
      setText($("#vehicle-meta"), `details unavailable (${err.status || "network"}: ${err.message})`);
      if (err.status === 404) await this.fallbackLoads(id);
      return;
    }
    await this.refreshTrip();
  }

  /** Without the map endpoints: the loads of the vehicle's open trip from the order list. */
  async fallbackLoads(id) {
    try {
      const vehicle = await api(`/vehicles/${encodeURIComponent(id)}`);
      const trip = vehicle.open_trips?.[0];
      if (!trip || id !== this.id) return;
      const page = await api("/orders", { params: { trip, limit: 200 } });
      if (id !== this.id) return;
      setText($("#vehicle-name"), vehicle.name || id);
      setText($("#vehicle-trip"), `Trip ${trip}`);
      replace($("[data-testid=vehicle-loads]", this.panel), page.items.map((o) => el("li", { "data-order-number": o.number, class: "load-row" },
        el("span", { class: "load-number" }, o.number),
        el("span", { class: "state-chip", "data-field": "state", "data-state": o.state }, humanize(o.state)),
        el("span", { class: "load-customer" }, o.customer_name))));
    } catch {
      // nothing more to show
    }
  }

  async refreshTrip() {
    const trip = this.tripId;
    if (!trip) {
      this.tripLayer.clearLayers();
      return;
    }
    try {
      const collection = await api(`/map/trips/${encodeURIComponent(trip)}`);
      if (trip === this.tripId) drawTrip(this.tripLayer, collection);
    } catch {
      // the panel still shows loads and ETAs; the route is a nicety
    }
  }

  /** Debounced: the trail grows with every fix, no need to redraw it more than every few s. */
  scheduleTrip() {
    if (this.tripTimer) return;
    this.tripTimer = setTimeout(() => {
      this.tripTimer = null;
      this.refreshTrip();
    }, 5000);
  }

  render() {
    const d = this.detail;
    const live = this.vehicles.get(this.id) || {};
    setText($("#vehicle-name"), d.name || d.id);
    const fix = d.last_fix;
    const status = live.status || fix?.status || "no fix";
    const parts = [d.plate, humanize(status), speedKmh(live.speed_mps ?? fix?.speed_mps),
      fix ? `last fix ${ago(live.last_fix_at || fix.at)}` : "no fix yet"];
    setText($("#vehicle-meta"), parts.filter(Boolean).join(" · "));
    const trip = d.trip;
    setText($("#vehicle-trip"), trip
      ? `Trip ${trip.id} · ${humanize(trip.state)}${trip.driver ? ` · driver ${trip.driver}` : ""}`
      : "No trip loading or on the road");
    setText($("[data-testid=vehicle-eta]", this.panel), etaText(nextStop(trip?.stops)));
    const loads = $("[data-testid=vehicle-loads]", this.panel);
    replace(loads, (trip?.orders || []).map((o) => el("li", { "data-order-number": o.number, class: "load-row" },
      el("span", { class: "load-number" }, o.number),
      el("span", { class: "state-chip", "data-field": "state", "data-state": o.state }, humanize(o.state)),
      el("span", { class: "load-customer" }, `${o.customer}${o.stop_seq ? ` · stop ${o.stop_seq}` : ""}`))));
    if (!trip?.orders?.length) loads.append(el("li", { class: "empty" }, "No loads"));
    const stops = $("#vehicle-stops");
    replace(stops, [...(trip?.stops || [])].sort((a, b) => a.seq - b.seq).map((s) =>
      el("li", { class: "stop-row", "data-stop-seq": s.seq, "data-state": s.state },
        el("span", {}, `${s.seq}. ${s.fence_name || ""}`),
        el("span", { class: "muted small" }, s.arrived_at ? `arrived ${shortClock(s.arrived_at)}` : etaText(s)))));
  }

  /** Live `etas` items: update the stops of the selected vehicle's trip. */
  applyEtas(items) {
    const trip = this.detail?.trip;
    if (!trip) return;
    let changed = false;
    for (const item of items) {
      if (item.trip_id !== trip.id) continue;
      const stop = trip.stops.find((s) => s.seq === item.seq);
      if (!stop) continue;
      Object.assign(stop, {
        state: item.state, eta: item.eta, eta_earliest: item.eta_earliest,
        eta_latest: item.eta_latest, arrived_at: item.arrived_at,
      });
      changed = true;
    }
    if (changed) this.render();
  }

  /** Live `orders` items: a load's state changed. */
  applyOrders(items) {
    const trip = this.detail?.trip;
    if (!trip) return;
    let changed = false;
    for (const item of items) {
      const order = trip.orders.find((o) => o.number === item.number);
      if (order && item.to_state) {
        order.state = item.to_state;
        changed = true;
      } else if (!order && item.trip_id === trip.id) {
        this.refresh();
        return;
      }
    }
    if (changed) this.render();
  }

  /** A vehicle moved: the meta line, and the trail when it is this one. */
  onFix(vehicleId) {
    if (vehicleId !== this.id || !this.detail) return;
    this.render();
    this.scheduleTrip();
  }
}
