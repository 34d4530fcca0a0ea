// The demo's mail page (mail.html): what each customer received from the demo's local SMTP
// sink, newest first, with the tracking link each message carried.
import { ApiError, api } from "./api.js";
import { setupLogin } from "./auth.js";
import { $, el, replace, setText } from "./dom.js";
import { dateTime, humanize } from "./format.js";

const REFRESH_MS = 5000;
const TOKEN_PATH = /^\/t\/[A-Za-z0-9_-]{22,64}$/;
let timer = null;

setupLogin({
  allowedRoles: ["dispatcher"],
  onLogin: () => { load(); timer = setInterval(load, REFRESH_MS); },
  onLogout: () => clearInterval(timer),
});

async function load() {
  const error = $("#mail-error");
  try {
    const inboxes = await api("/demo/mailbox");
    error.hidden = true;
    const total = inboxes.reduce((n, box) => n + box.messages.length, 0);
    setText($("#mail-count"), `${total} messages to ${inboxes.length} customers`);
    replace($("#inboxes"), inboxes.length ? inboxes.map(inbox) : el("p", { class: "muted" }, "No mail yet."));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      setText(error, "This server has no demo mailbox: the mail page works under `tracklane demo`.");
    } else {
      setText(error, `Could not load the mail: ${err.message}`);
    }
    error.hidden = false;
  }
}

function inbox(box) {
  const items = [...box.messages].reverse().map((m) => el("li", { "data-event": m.event || "" },
    el("details", {},
      el("summary", {},
        el("span", { class: "tag" }, humanize(m.event || "mail")),
        el("span", { class: "muted" }, dateTime(m.at), " "),
        m.subject),
      el("pre", {}, m.text)),
    trackingLink(m)));
  return el("section", { class: "inbox", "data-to": box.to }, el("h2", {}, box.to), el("ol", {}, items));
}

function trackingLink(message) {
  if (!message.tracking_path || !TOKEN_PATH.test(message.tracking_path)) return null;
  // A same-origin path checked against the token's shape: the one link built from data.
  const link = el("a", { class: "tracking-link", target: "_blank", rel: "noopener noreferrer" },
    `Tracking page for ${message.order_number || "the order"}`);
  link.href = message.tracking_path;
  return el("p", {}, link);
}
