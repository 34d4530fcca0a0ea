// The Leaflet map: base tiles (optional), geofences, and the layers other modules draw on.
// Leaflet and markercluster are classic scripts loaded before the modules (window.L).
import { el, setText } from "./dom.js";

const L = window.L;
const FENCE_COLOURS = {
  warehouse: "#2563eb", depot: "#7c3aed", customer_site: "#059669",
  restricted_zone: "#dc2626", route_corridor: "#d97706",
};

/** A map in `container`; tiles only when config.tile_url is set (else a plain background). */
export function createMap(container, config) {
  const map = L.map(container, {
    zoomControl: true,
    attributionControl: false, // Leaflet would parse the attribution as HTML: ours is text
    worldCopyJump: true,
  }).setView([52.52, 13.40], 11);
  if (config.tile_url) {
    const tiles = L.tileLayer(config.tile_url, { maxZoom: 19, crossOrigin: false });
    let failures = 0;
    tiles.on("tileerror", () => {
      failures += 1;
      if (failures === 8) container.classList.add("tiles-failed");
    });
    tiles.addTo(map);
  } else {
    container.classList.add("no-tiles");
  }
  const Attribution = L.Control.extend({
    options: { position: "bottomright" },
    onAdd() {
      const box = el("div", { class: "map-attribution" });
      setText(box, ["Leaflet", config.tile_url ? config.tile_attribution : ""].filter(Boolean).join(" | "));
      return box;
    },
  });
  map.addControl(new Attribution());
  return map;
}

/** Geofences from GET /api/v1/geofences?format=geojson: circles and polygons. */
export function drawFences(layer, collection) {
  layer.clearLayers();
  for (const feature of collection?.features || []) {
    const props = feature.properties || {};
    const colour = FENCE_COLOURS[props.kind] || "#475569";
    const style = { color: colour, weight: 2, fillOpacity: 0.08, interactive: true };
    const label = el("span", { class: "fence-label" }, props.name || props.kind || "fence");
    let shape;
    if (feature.geometry?.type === "Point" && props.radius_m) {
      const [lon, lat] = feature.geometry.coordinates;
      shape = L.circle([lat, lon], { ...style, radius: Number(props.radius_m) });
    } else if (feature.geometry) {
      shape = L.geoJSON(feature, { style: () => style });
    } else {
      continue;
    }
    shape.bindTooltip(label, { sticky: true });
    shape.addTo(layer);
  }
}

/** Bounds of every layer given that has any, or null. */
export function boundsOf(...layers) {
  let bounds = null;
  for (const layer of layers) {
    const b = layer.getBounds?.();
    if (b && b.isValid()) bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast());
  }
  return bounds;
}

/** A trip's FeatureCollection (GET /api/v1/map/trips/{id}): route, trail, stops, origin. */
export function drawTrip(layer, collection) {
  layer.clearLayers();
  for (const feature of collection?.features || []) {
    const props = feature.properties || {};
    const kind = props.kind;
    if (kind === "route") {
      L.geoJSON(feature, { style: () => ({ color: "#2563eb", weight: 3, dashArray: "6 6", opacity: 0.7 }) }).addTo(layer);
    } else if (kind === "trail") {
      L.geoJSON(feature, { style: () => ({ color: "#0f766e", weight: 4, opacity: 0.9 }) }).addTo(layer);
    } else if (kind === "stop" && feature.geometry?.type === "Point") {
      const [lon, lat] = feature.geometry.coordinates;
      const done = props.state === "arrived" || props.state === "done";
      const marker = L.circleMarker([lat, lon], {
        radius: 8, color: "#1e293b", weight: 2, fillColor: done ? "#94a3b8" : "#facc15", fillOpacity: 1,
      });
      marker.bindTooltip(el("span", {}, `Stop ${props.seq ?? ""} · ${props.state ?? ""}`), { direction: "top" });
      marker.addTo(layer);
    } else if (kind === "origin") {
      const style = { color: "#2563eb", weight: 1, fillOpacity: 0.05, interactive: false };
      if (feature.geometry?.type === "Point" && props.radius_m) {
        const [lon, lat] = feature.geometry.coordinates;
        L.circle([lat, lon], { ...style, radius: Number(props.radius_m) }).addTo(layer);
      } else if (feature.geometry) {
        L.geoJSON(feature, { style: () => style }).addTo(layer);
      }
    }
  }
}

/** [west, south, east, north] of the map's view, clamped to valid longitudes. */
export function viewBbox(map) {
  const b = map.getBounds();
  const round = (v) => Math.round(v * 1e5) / 1e5;
  return [
    round(Math.max(-180, b.getWest())), round(Math.max(-90, b.getSouth())),
    round(Math.min(180, b.getEast())), round(Math.min(90, b.getNorth())),
  ];
}
