// The vehicles tab: every vehicle on the map, by name; a click selects it.
import { $, el, replace } from "../dom.js";
import { humanize } from "../format.js";
import { etaText } from "../vehiclePanel.js";

export class VehicleList {
  constructor({ onSelect }) {
    this.list = $("#vehicles-list");
    this.onSelect = onSelect;
  }

  render(vehicles, selected, emptyText = "No vehicle has reported a position yet") {
    const sorted = [...vehicles].sort((a, b) => String(a.name || a.vehicle_id).localeCompare(String(b.name || b.vehicle_id), undefined, { numeric: true }));
    replace(this.list, sorted.map((v) => el("li", {
      class: `row clickable${v.vehicle_id === selected ? " selected" : ""}`, tabindex: 0,
      "data-vehicle-row": v.vehicle_id, "data-status": v.status || "stopped",
      onclick: () => this.onSelect(v.vehicle_id),
      onkeydown: (e) => { if (e.key === "Enter") this.onSelect(v.vehicle_id); },
    },
    el("span", { class: "row-main" }, el("span", { class: `dot status-${v.status || "stopped"}` }), " ",
      el("strong", {}, v.name || v.vehicle_id), " ", el("span", { class: "muted" }, v.plate || "")),
    el("span", { class: "state-chip", "data-state": v.status }, humanize(v.status || "")),
    el("div", { class: "muted small" }, [
      v.trip_id ? `trip ${v.trip_id} (${humanize(v.trip_state || "")})` : "no trip",
      typeof v.loads === "number" ? `${v.loads} on board` : "",
      v.next_stop ? etaText(v.next_stop) : "",
    ].filter(Boolean).join(" · ")))));
    if (!sorted.length) this.list.append(el("li", { class: "empty" }, emptyText));
  }
}
