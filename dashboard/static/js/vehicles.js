// Vehicle markers: a rotated arrow coloured by status, moved by REST reads and live frames.
// Up to CLUSTER_ABOVE vehicles stay single markers; more are clustered (markercluster).
import { el } from "./dom.js";

const L = window.L;
const CLUSTER_ABOVE = 40;
const MOVING_MPS = 1.0; // as the server decides (routers/geojson.py): slower is GNSS jitter

function clusterIcon(cluster) {
  const count = cluster.getChildCount();
  const size = count < 10 ? "small" : count < 100 ? "medium" : "large";
  const html = el("div", {}, el("span", {}, String(count)));
  return L.divIcon({ html, className: `marker-cluster marker-cluster-${size}`, iconSize: L.point(40, 40) });
}

/** The status a live fix implies: the server's staleness rule needs the REST read. */
export function statusOfFix(fix) {
  return typeof fix.speed_mps === "number" && fix.speed_mps >= MOVING_MPS ? "moving" : "stopped";
}

export class VehicleLayer extends EventTarget {
  constructor(map) {
    super();
    this.map = map;
    this.vehicles = new Map(); // id -> {marker, data}
    this.plain = L.layerGroup().addTo(map);
    this.cluster = L.markerClusterGroup({
      iconCreateFunction: clusterIcon, showCoverageOnHover: false, maxClusterRadius: 50,
    });
    this.clustered = false;
    this.selected = null;
  }

  get layer() {
    return this.clustered ? this.cluster : this.plain;
  }

  /** Replace every vehicle with a GeoJSON FeatureCollection from GET /api/v1/map/vehicles. */
  setAll(collection) {
    const seen = new Set();
    for (const feature of collection?.features || []) {
      const props = feature.properties || {};
      const [lon, lat] = feature.geometry?.coordinates || [];
      if (typeof lat !== "number" || typeof lon !== "number" || !props.vehicle_id) continue;
      seen.add(props.vehicle_id);
      this.upsert({ ...props, lat, lon });
    }
    for (const id of [...this.vehicles.keys()]) if (!seen.has(id)) this.remove(id);
    this.regroup();
  }

  /** Live `vehicles` frame items: positions only; other properties are kept. */
  applyFixes(items) {
    const unknown = [];
    for (const fix of items) {
      if (!fix.vehicle_id || typeof fix.lat !== "number" || typeof fix.lon !== "number") continue;
      if (!this.vehicles.has(fix.vehicle_id)) unknown.push(fix.vehicle_id);
      this.upsert({ ...fix, status: statusOfFix(fix) });
    }
    this.regroup();
    return unknown;
  }

  upsert(data) {
    const entry = this.vehicles.get(data.vehicle_id);
    if (entry) {
      entry.data = { ...entry.data, ...data };
      entry.marker.setLatLng([data.lat, data.lon]);
      this.decorate(entry);
      return;
    }
    const arrow = el("div", { class: "vehicle-arrow" });
    const icon = L.divIcon({
      html: el("div", { class: "vehicle-icon" }, arrow),
      className: "vehicle-marker", iconSize: [30, 30], iconAnchor: [15, 15],
    });
    const marker = L.marker([data.lat, data.lon], { icon, keyboard: true, title: "" });
    const created = { marker, data, arrow };
    marker.on("add", () => this.decorate(created));
    marker.on("click", () => this.dispatchEvent(new CustomEvent("select", { detail: data.vehicle_id })));
    marker.bindTooltip(el("span", {}), { direction: "top", offset: [0, -12] });
    this.vehicles.set(data.vehicle_id, created);
    this.layer.addLayer(marker);
  }

  /** Data attributes and looks on the marker's element (re-applied whenever it is re-created). */
  decorate(entry) {
    const { data, marker, arrow } = entry;
    const element = marker.getElement();
    const status = data.status || "stopped";
    if (element) {
      element.setAttribute("data-vehicle-id", data.vehicle_id);
      element.setAttribute("data-status", status);
      element.setAttribute("data-lat", String(data.lat));
      element.setAttribute("data-lon", String(data.lon));
      element.setAttribute("aria-label", `vehicle ${data.name || data.vehicle_id}, ${status}`);
      element.classList.toggle("selected", this.selected === data.vehicle_id);
      for (const s of ["moving", "stopped", "stale"]) element.classList.toggle(`status-${s}`, s === status);
    }
    const heading = Number(data.heading_deg);
    arrow.classList.toggle("no-heading", !Number.isFinite(heading));
    arrow.style.transform = `rotate(${Number.isFinite(heading) ? heading : 0}deg)`;
    const tooltip = marker.getTooltip()?.getContent();
    if (tooltip instanceof Node) tooltip.textContent = `${data.name || data.vehicle_id} · ${status}`;
  }

  remove(id) {
    const entry = this.vehicles.get(id);
    if (!entry) return;
    this.layer.removeLayer(entry.marker);
    this.vehicles.delete(id);
  }

  regroup() {
    const want = this.vehicles.size > CLUSTER_ABOVE;
    if (want === this.clustered) return;
    const markers = [...this.vehicles.values()].map((e) => e.marker);
    this.layer.clearLayers();
    this.map.removeLayer(this.layer);
    this.clustered = want;
    this.layer.addLayers ? this.layer.addLayers(markers) : markers.forEach((m) => this.layer.addLayer(m));
    this.map.addLayer(this.layer);
  }

  select(id) {
    this.selected = id;
    for (const entry of this.vehicles.values()) this.decorate(entry);
  }

  get(id) {
    return this.vehicles.get(id)?.data || null;
  }

  list() {
    return [...this.vehicles.values()].map((e) => e.data);
  }

  bounds() {
    const points = [...this.vehicles.values()].map((e) => e.marker.getLatLng());
    return points.length ? L.latLngBounds(points) : null;
  }
}
