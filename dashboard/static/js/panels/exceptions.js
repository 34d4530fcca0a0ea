// Open exceptions with acknowledge and resolve buttons; live `exceptions` frames upsert rows.
import { api } from "../api.js";
import { $, attrSelector, el, setText } from "../dom.js";
import { dateTime, humanize } from "../format.js";

const DEFAULT_NOTE = "resolved from the dashboard";

export class ExceptionsPanel {
  constructor({ onCount, canManage }) {
    this.root = $("#exceptions-panel");
    this.list = $("#exceptions-list", this.root);
    this.onCount = onCount;
    this.canManage = canManage;
    this.known = new Map(); // id -> the latest exception read or streamed
  }

  /** Merge the open exceptions into the list: rows (and notes being typed) stay put. */
  async load() {
    const page = await api("/exceptions", { params: { status: ["open", "acknowledged"], limit: 200 } });
    const listed = new Set(page.items.map((x) => String(x.id)));
    for (const row of this.list.querySelectorAll("[data-exception-id]")) {
      // Gone from the open list: resolved elsewhere. Rows resolved here stay until reload.
      if (!listed.has(row.getAttribute("data-exception-id")) && row.getAttribute("data-status") !== "resolved") row.remove();
    }
    for (const x of [...page.items].reverse()) {
      const existing = $(attrSelector("data-exception-id", x.id), this.list);
      if (existing) this.fill(existing, x);
      else this.list.prepend(this.row(x));
    }
    this.emptyState();
  }

  emptyState() {
    const rows = this.list.querySelectorAll("[data-exception-id]");
    $(".empty", this.list)?.remove();
    if (!rows.length) this.list.append(el("li", { class: "empty" }, "No open exceptions"));
    const open = [...rows].filter((r) => r.getAttribute("data-status") !== "resolved").length;
    this.onCount?.(open);
  }

  row(x) {
    const note = el("input", { type: "text", class: "note", "data-field": "note", maxlength: 2000,
      placeholder: "note (optional)", "aria-label": `note for exception ${x.id}` });
    const ack = el("button", { type: "button", "data-action": "acknowledge" }, "Acknowledge");
    const resolve = el("button", { type: "button", "data-action": "resolve", class: "primary" }, "Resolve");
    const error = el("span", { class: "error small", "data-field": "error" });
    const row = el("li", { class: "row exception", "data-exception-id": x.id },
      el("div", { class: "row-main" },
        el("span", { class: "kind-chip", "data-field": "kind" }, humanize(x.kind)), " ",
        el("span", { class: "status-chip", "data-field": "status" }),
        el("div", { "data-field": "summary", class: "summary" }, x.summary),
        el("div", { class: "muted small", "data-field": "refs" })),
      el("div", { class: "actions" }, note, ack, resolve, error));
    ack.addEventListener("click", () => this.act(row, "acknowledge", note.value.trim() ? { note: note.value.trim() } : undefined));
    resolve.addEventListener("click", () => this.act(row, "resolve", { note: note.value.trim() || DEFAULT_NOTE }));
    this.fill(row, x);
    return row;
  }

  fill(row, x) {
    this.known.set(String(x.id), x);
    row.setAttribute("data-kind", x.kind);
    row.setAttribute("data-status", x.status);
    setText($("[data-field=kind]", row), humanize(x.kind));
    const status = $("[data-field=status]", row);
    setText(status, x.status);
    status.setAttribute("data-state", x.status);
    setText($("[data-field=summary]", row), x.summary);
    const refs = [x.order_number && `order ${x.order_number}`, x.vehicle_id && `vehicle ${x.vehicle_id}`,
      x.trip_id && `trip ${x.trip_id}`, x.opened_at && `opened ${dateTime(x.opened_at)}`];
    setText($("[data-field=refs]", row), refs.filter(Boolean).join(" · "));
    const manage = this.canManage();
    $("button[data-action=acknowledge]", row).disabled = !manage || x.status !== "open";
    $("button[data-action=resolve]", row).disabled = !manage || x.status === "resolved";
    $("[data-field=note]", row).disabled = !manage || x.status === "resolved";
    row.classList.toggle("resolved", x.status === "resolved");
  }

  async act(row, action, body) {
    const id = row.getAttribute("data-exception-id");
    const error = $("[data-field=error]", row);
    setText(error, "");
    for (const b of row.querySelectorAll("button")) b.disabled = true;
    try {
      const detail = await api(`/exceptions/${encodeURIComponent(id)}/${action}`, { method: "POST", body });
      $("[data-field=note]", row).value = "";
      this.fill(row, detail);
    } catch (err) {
      setText(error, err.message);
      // re-enable per the status we know
      this.fill(row, this.known.get(id));
    }
    this.emptyState();
  }

  /** Live `exceptions` items (new ones and status changes). */
  apply(items) {
    for (const x of items) {
      const existing = $(attrSelector("data-exception-id", x.id), this.list);
      if (existing) this.fill(existing, { ...this.known.get(String(x.id)), ...x });
      else if (x.status !== "resolved") this.list.prepend(this.row(x));
    }
    this.emptyState();
  }
}
