// Orders by state: counts per state, search by number or customer, a state filter, and a
// click shows the order's history (GET /api/v1/orders/{number}/history).
import { api } from "../api.js";
import { $, $$, attrSelector, el, replace, setText } from "../dom.js";
import { dateTime, humanize } from "../format.js";

export const ORDER_STATES = [
  "created", "picking", "picked", "packed", "loaded", "in_transit", "arriving", "arrived",
  "delivered", "cancelled",
];
const PAGE = 200;
const COUNT_LIMIT = 1000;

export class OrdersPanel {
  constructor() {
    this.root = $("#orders-panel");
    this.list = $("#orders-list", this.root);
    this.search = $("#order-search");
    this.state = $("#order-state");
    this.counts = $("#order-counts");
    this.history = $("#order-history");
    this.timer = null;
    this.liveTimer = null;
    this.generation = 0;
    replace(this.state, el("option", { value: "" }, "All states"),
      ORDER_STATES.map((s) => el("option", { value: s }, humanize(s))));
    this.search.addEventListener("input", () => this.debounce(250));
    this.state.addEventListener("change", () => this.reload());
  }

  debounce(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), ms);
  }

  /** load() for event handlers: a failure shows in the list (a 401 already signed out). */
  reload() {
    this.load().catch((err) => {
      if (err.status !== 401) replace(this.list, el("li", { class: "error" }, `Orders unavailable: ${err.message}`));
    });
  }

  async load() {
    const generation = ++this.generation;
    const params = { q: this.search.value.trim() || undefined, state: this.state.value || undefined, limit: PAGE };
    const [page, all] = await Promise.all([
      api("/orders", { params }),
      api("/orders", { params: { limit: COUNT_LIMIT } }),
    ]);
    if (generation !== this.generation) return; // a newer search answered first
    this.renderCounts(all);
    this.renderList(page);
  }

  renderCounts(all) {
    const counts = Object.fromEntries(ORDER_STATES.map((s) => [s, 0]));
    for (const order of all.items) counts[order.state] = (counts[order.state] || 0) + 1;
    const more = all.next_cursor ? "+" : "";
    replace(this.counts, ORDER_STATES.filter((s) => counts[s]).map((s) =>
      el("button", {
        type: "button", class: "count-chip", "data-count-state": s, "data-state": s,
        "aria-pressed": String(this.state.value === s),
        onclick: () => { this.state.value = this.state.value === s ? "" : s; this.reload(); },
      }, `${humanize(s)} `, el("strong", {}, `${counts[s]}${more}`))));
    if (!all.items.length) this.counts.append(el("span", { class: "muted" }, "No orders yet"));
  }

  renderList(page) {
    replace(this.list, page.items.map((o) => this.row(o)));
    if (!page.items.length) this.list.append(el("li", { class: "empty" }, "No orders match"));
    if (page.next_cursor) this.list.append(el("li", { class: "muted" }, `Showing the newest ${PAGE}; search to narrow.`));
  }

  row(o) {
    const flags = (o.exception_flags || []).map((f) => el("span", { class: "flag" }, humanize(f)));
    return el("li", { class: "row clickable", "data-order-number": o.number, tabindex: 0,
      onclick: () => this.showHistory(o.number),
      onkeydown: (e) => { if (e.key === "Enter") this.showHistory(o.number); } },
    el("span", { class: "row-main" }, el("strong", {}, o.number), " ", el("span", { class: "muted" }, o.customer_name)),
    el("span", { class: "state-chip", "data-field": "state", "data-state": o.state }, humanize(o.state)),
    flags, o.trip_id ? el("span", { class: "muted small" }, `trip ${o.trip_id}`) : null);
  }

  async showHistory(number) {
    for (const row of $$("[data-order-number]", this.list)) {
      row.classList.toggle("selected", row.getAttribute("data-order-number") === number);
    }
    this.history.hidden = false;
    replace(this.history, el("h3", {}, `History of ${number}`), el("p", { class: "muted" }, "loading…"));
    try {
      const events = await api(`/orders/${encodeURIComponent(number)}/history`);
      replace(this.history,
        el("div", { class: "history-head" }, el("h3", {}, `History of ${number}`),
          el("button", { type: "button", class: "link", onclick: () => { this.history.hidden = true; } }, "close")),
        el("ol", { class: "history", "data-history-for": number }, events.map((e) => el("li", {},
          el("span", { class: "muted small" }, dateTime(e.at)), " ",
          e.to_state ? el("strong", {}, `${humanize(e.from_state || "—")} → ${humanize(e.to_state)}`) : el("strong", {}, humanize(e.kind)),
          e.trigger ? ` · ${humanize(e.trigger)}` : "",
          e.read_point ? ` · ${Object.values(e.read_point).filter(Boolean).join("/")}` : "",
          ` · ${e.actor}`))));
    } catch (err) {
      replace(this.history, el("p", { class: "error" }, `History unavailable: ${err.message}`));
    }
  }

  /** Live `orders` items: the state of a listed order changed; counts are re-read soon. */
  apply(items) {
    for (const item of items) {
      const row = $(attrSelector("data-order-number", item.number), this.list);
      const chip = row && $("[data-field=state]", row);
      if (chip && item.to_state) {
        setText(chip, humanize(item.to_state));
        chip.setAttribute("data-state", item.to_state);
      }
    }
    // Counts are re-read at most every 2 s while states keep changing (never starved).
    if (!this.liveTimer) {
      this.liveTimer = setTimeout(() => { this.liveTimer = null; this.reload(); }, 2000);
    }
  }
}
