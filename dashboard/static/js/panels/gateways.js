// Gateway health: the newest status of each (gateway, device) from GET /api/v1/devices/status;
// live `gateways` frames update or add rows.
import { api } from "../api.js";
import { $, el, replace, setText } from "../dom.js";
import { ago, dateTime } from "../format.js";

const BAD_STATES = new Set(["offline", "error", "down", "disconnected", "stale", "fault"]);

export class GatewaysPanel {
  constructor({ onTrouble }) {
    this.root = $("#gateways-panel");
    this.list = $("#gateways-list", this.root);
    this.rows = new Map(); // "site/gateway/device" -> row
    this.onTrouble = onTrouble;
  }

  async load() {
    const statuses = await api("/devices/status");
    this.rows.clear();
    replace(this.list, statuses.map((s) => this.upsert(s)));
    if (!statuses.length) this.list.append(el("li", { class: "empty" }, "No gateway has reported yet"));
    this.summarise();
  }

  upsert(s) {
    const key = `${s.site}/${s.gateway}/${s.device}`;
    let row = this.rows.get(key);
    if (!row) {
      row = el("li", { class: "row gateway", "data-gateway": s.gateway, "data-site": s.site, "data-device": s.device },
        el("div", { class: "row-main" },
          el("strong", { "data-field": "gateway" }), " ", el("span", { "data-field": "device" })),
        el("span", { class: "state-chip", "data-field": "state" }),
        el("div", { class: "muted small", "data-field": "detail" }));
      this.rows.set(key, row);
    }
    setText($("[data-field=gateway]", row), `${s.site}/${s.gateway}`);
    setText($("[data-field=device]", row), s.device);
    const state = $("[data-field=state]", row);
    setText(state, s.state);
    state.setAttribute("data-state", s.state);
    row.classList.toggle("trouble", BAD_STATES.has(String(s.state).toLowerCase()));
    const when = s.time ? `${dateTime(s.time)} (${ago(s.time)})` : "";
    setText($("[data-field=detail]", row), [s.detail, when].filter(Boolean).join(" · "));
    return row;
  }

  summarise() {
    const trouble = [...this.rows.values()].filter((r) => r.classList.contains("trouble")).length;
    this.onTrouble?.(trouble);
  }

  /** Live `gateways` items. */
  apply(items) {
    $(".empty", this.list)?.remove();
    for (const s of items) {
      const known = this.rows.has(`${s.site}/${s.gateway}/${s.device}`);
      const row = this.upsert(s);
      if (!known) this.list.append(row);
    }
    this.summarise();
  }
}
