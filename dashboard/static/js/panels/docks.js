// Dock doors with their trip and last scans (GET /api/v1/docks); live `scans` frames
// prepend new verdicts to their door.
import { api } from "../api.js";
import { $, attrSelector, el, replace } from "../dom.js";
import { clock, humanize } from "../format.js";
import { isGoodVerdict } from "../verdicts.js";

const KEEP = 5;

export class DocksPanel {
  constructor() {
    this.root = $("#docks-panel");
    this.list = $("#docks-list", this.root);
    this.seen = new Set(); // event ids shown, so a REST read and a frame never double up
  }

  async load() {
    const doors = await api("/docks", { params: { recent: KEEP } });
    this.seen.clear();
    replace(this.list, doors.map((d) => this.door(d)));
    if (!doors.length) this.list.append(el("li", { class: "empty" }, "No dock doors assigned yet"));
  }

  door(d) {
    const key = `${d.site}/${d.door}`;
    const scans = el("ul", { class: "scans", "data-field": "scans" });
    for (const s of d.recent || []) scans.append(this.scan({ ...s, code: s.code ?? s.package_sscc }));
    const trip = d.trip_id
      ? `trip ${d.trip_id} (${humanize(d.trip_state)})${d.vehicle_name ? ` · ${d.vehicle_name}` : ""}`
      : "no trip assigned";
    return el("li", { class: "row door", "data-door": key },
      el("div", { class: "row-main" }, el("strong", {}, key), " ",
        el("span", { class: "muted", "data-field": "trip" }, trip)),
      scans);
  }

  scan(s) {
    if (s.event_id) this.seen.add(s.event_id);
    const verdict = s.verdict || "unknown";
    return el("li", {
      class: `scan ${isGoodVerdict(verdict) ? "good" : "bad"}`, "data-verdict": verdict,
      "data-event-id": s.event_id || undefined,
    },
    el("span", { class: "muted small" }, clock(s.decided_at)), " ",
    el("span", { class: "verdict-chip", "data-field": "verdict" }, humanize(verdict)), " ",
    s.order_number ? el("span", { "data-field": "order" }, s.order_number) : null, " ",
    s.code ? el("code", { "data-field": "code" }, s.code) : null,
    s.message ? el("div", { class: "small", "data-field": "message" }, s.message) : null);
  }

  /** Live `scans` items; a scan at a door not listed yet adds the door. */
  apply(items) {
    for (const s of items) {
      if (!s.door || (s.event_id && this.seen.has(s.event_id))) continue;
      const key = `${s.site}/${s.door}`;
      let row = $(attrSelector("data-door", key), this.list);
      if (!row) {
        $(".empty", this.list)?.remove();
        row = this.door({ site: s.site, door: s.door, recent: [] });
        this.list.prepend(row);
      }
      const scans = $("[data-field=scans]", row);
      scans.prepend(this.scan(s));
      while (scans.children.length > KEEP) scans.lastElementChild.remove();
    }
  }
}
