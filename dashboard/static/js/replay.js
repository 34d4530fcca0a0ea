// Trail replay: a vehicle and a time range, GET /api/v1/map/vehicles/{id}/trail, then a
// slider (and play/pause) moves a replay marker along the fixes and shows each one's time.
import { api } from "./api.js";
import { $, el, replace, setText } from "./dom.js";
import { dateTime, toLocalInput } from "./format.js";

const L = window.L;
const STEP_MS = 150;

export class Replay {
  constructor(map) {
    this.map = map;
    this.layer = L.layerGroup().addTo(map);
    this.select = $("#replay-vehicle");
    this.from = $("#replay-from");
    this.to = $("#replay-to");
    this.slider = $("#replay-slider");
    this.time = $("#replay-time");
    this.play = $("#replay-play");
    this.status = $("#replay-status");
    this.points = [];
    this.times = [];
    this.marker = null;
    this.timer = null;
    const now = new Date();
    this.to.value = toLocalInput(now);
    this.from.value = toLocalInput(new Date(now.getTime() - 3600 * 1000));
    $("#replay-load").addEventListener("click", () => this.load());
    this.slider.addEventListener("input", () => this.show(Number(this.slider.value)));
    this.play.addEventListener("click", () => (this.timer ? this.pause() : this.start()));
    this.setEnabled(false);
  }

  /** The vehicles to choose from: [{id, name}]. Keeps the current choice if still there. */
  setVehicles(vehicles) {
    const current = this.select.value;
    const sorted = [...vehicles].sort((a, b) => String(a.id).localeCompare(String(b.id), undefined, { numeric: true }));
    replace(this.select, el("option", { value: "" }, "Pick a vehicle"),
      sorted.map((v) => el("option", { value: v.id }, v.name && v.name !== v.id ? `${v.name} (${v.id})` : v.id)));
    if (sorted.some((v) => v.id === current)) this.select.value = current;
  }

  choose(id) {
    if ([...this.select.options].some((o) => o.value === id)) this.select.value = id;
  }

  setEnabled(enabled) {
    this.slider.disabled = !enabled;
    this.play.disabled = !enabled;
  }

  async load() {
    this.pause();
    const id = this.select.value;
    const from = new Date(this.from.value);
    const to = new Date(this.to.value);
    if (!id) return this.say("Pick a vehicle first.");
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || to <= from) {
      return this.say("Pick a time range: “to” after “from”.");
    }
    this.say("loading…");
    let feature;
    try {
      feature = await api(`/map/vehicles/${encodeURIComponent(id)}/trail`, {
        params: { from: from.toISOString(), to: to.toISOString() },
      });
    } catch (err) {
      return this.say(`Trail unavailable: ${err.message}`);
    }
    this.draw(feature);
  }

  draw(feature) {
    this.layer.clearLayers();
    this.marker = null;
    const geometry = feature?.geometry;
    const coords = !geometry ? [] : geometry.type === "Point" ? [geometry.coordinates] : geometry.coordinates || [];
    this.points = coords.map(([lon, lat]) => [lat, lon]);
    this.times = feature?.properties?.times || [];
    if (!this.points.length) {
      this.setEnabled(false);
      setText(this.time, "");
      return this.say("No fixes in that range.");
    }
    const bucket = feature.properties?.bucket_s ? ` (averaged per ${feature.properties.bucket_s} s)` : "";
    this.say(`${this.points.length} fixes${bucket}`);
    if (this.points.length > 1) L.polyline(this.points, { color: "#9333ea", weight: 3, opacity: 0.8 }).addTo(this.layer);
    const icon = L.divIcon({ html: el("div", { class: "replay-dot" }), className: "replay-marker", iconSize: [18, 18] });
    this.marker = L.marker(this.points[0], { icon, interactive: false, keyboard: false, zIndexOffset: 1000 }).addTo(this.layer);
    this.slider.min = "0";
    this.slider.max = String(this.points.length - 1);
    this.slider.value = "0";
    this.setEnabled(true);
    this.map.fitBounds(L.latLngBounds(this.points), { padding: [30, 30], maxZoom: 16 });
    this.show(0);
  }

  show(index) {
    const point = this.points[index];
    if (!point || !this.marker) return;
    this.marker.setLatLng(point);
    const element = this.marker.getElement();
    if (element) {
      element.setAttribute("data-lat", String(point[0]));
      element.setAttribute("data-lon", String(point[1]));
      element.setAttribute("data-index", String(index));
    }
    setText(this.time, this.times[index] ? dateTime(this.times[index]) : `fix ${index + 1}`);
  }

  start() {
    if (!this.points.length) return;
    if (Number(this.slider.value) >= this.points.length - 1) this.slider.value = "0";
    setText(this.play, "Pause");
    this.play.setAttribute("aria-pressed", "true");
    this.timer = setInterval(() => {
      const next = Number(this.slider.value) + 1;
      if (next >= this.points.length) return this.pause();
      this.slider.value = String(next);
      this.show(next);
    }, STEP_MS);
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    setText(this.play, "Play");
    this.play.setAttribute("aria-pressed", "false");
  }

  clear() {
    this.pause();
    this.layer.clearLayers();
    this.marker = null;
    this.points = [];
    this.setEnabled(false);
  }

  say(text) {
    setText(this.status, text);
  }
}
