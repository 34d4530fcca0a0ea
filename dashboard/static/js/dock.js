// The dock screen (dock.html?site=wh1&door=door-3): the door's last scans, then every new
// verdict fills the screen, green for a go-ahead and red for a refusal, until it is quiet.
import { ApiError, api, session } from "./api.js";
import { setupLogin } from "./auth.js";
import { $, el, replace, setText } from "./dom.js";
import { clock, humanize } from "./format.js";
import { LiveClient } from "./live.js";
import { isGoodVerdict } from "./verdicts.js";

const QUIET_MS = 8000; // back to neutral after this long without a scan
const POLL_MS = 3000; // REST polling while the live stream is down
const KEEP = 10;
const IDLE_TEXT = "Ready: scan a package";

const params = new URLSearchParams(location.search);
const site = params.get("site") || "";
const door = params.get("door") || "";
const doorKey = `${site}/${door}`;
const screen = $("#dock-screen");
const seen = new Set();
let quietTimer = null;
let pollTimer = null;
let restOk = true;
let audio = null;

const live = new LiveClient({ streams: ["scans"], doors: [doorKey] });
live.addEventListener("state", showStatus);
live.addEventListener("resync", () => load({ announce: true }));
live.addEventListener("frame", (e) => {
  if (e.detail.type === "scans") receive(e.detail.items || [], { announce: true });
});

setText($("#login-door"), site && door ? `Door ${door} at ${site}` : "");
setText($("#dock-door"), site && door ? `${site} · ${door}` : "No door chosen");

function showStatus() {
  const status = $("#live-status");
  const state = live.state === "live" ? "live" : restOk ? "polling" : "offline";
  status.setAttribute("data-state", state);
  setText($("[data-field=text]", status), {
    live: "Live", polling: "Live updates unavailable, retrying", offline: "Offline, retrying",
  }[state]);
}

function toScan(outcome) {
  // A REST outcome (DoorOutcome) in the shape of a live `scans` item.
  return { ...outcome, code: outcome.code ?? outcome.package_sscc, site, door };
}

/** New scans, newest first or in any order: list them; announce the newest (a refusal wins). */
function receive(items, { announce }) {
  const fresh = items.filter((s) => s.door === door && s.site === site && !(s.event_id && seen.has(s.event_id)));
  if (!fresh.length) return;
  fresh.sort((a, b) => String(a.decided_at).localeCompare(String(b.decided_at)));
  const list = $("#dock-recent");
  $(".empty", list)?.remove();
  for (const s of fresh) {
    if (s.event_id) seen.add(s.event_id);
    list.prepend(row(s));
  }
  while (list.children.length > KEEP) list.lastElementChild.remove();
  if (announce) {
    const bad = fresh.filter((s) => !isGoodVerdict(s.verdict));
    show((bad.length ? bad : fresh).at(-1));
  }
}

function row(s) {
  return el("li", { class: isGoodVerdict(s.verdict) ? "good" : "bad", "data-verdict": s.verdict },
    `${clock(s.decided_at)}  ${humanize(s.verdict)}`, s.order_number ? `  ${s.order_number}` : "",
    s.code ? `  ${s.code}` : "");
}

function show(s) {
  const good = isGoodVerdict(s.verdict);
  screen.setAttribute("data-verdict", s.verdict);
  screen.classList.remove("verdict-idle", "verdict-ok", "verdict-bad");
  screen.classList.add(good ? "verdict-ok" : "verdict-bad");
  setText($("#dock-verdict-text"), humanize(s.verdict));
  setText($("#dock-order"), s.order_number || "");
  setText($("#dock-code"), s.code || "");
  setText($("#dock-message"), s.message || "");
  beep(good);
  clearTimeout(quietTimer);
  quietTimer = setTimeout(idle, QUIET_MS);
}

function idle() {
  screen.setAttribute("data-verdict", "idle");
  screen.classList.remove("verdict-ok", "verdict-bad");
  screen.classList.add("verdict-idle");
  setText($("#dock-verdict-text"), IDLE_TEXT);
}

function beep(good) {
  try {
    audio ??= new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = good ? "sine" : "square";
    osc.frequency.value = good ? 880 : 220;
    gain.gain.value = 0.15;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + (good ? 0.15 : 0.6));
  } catch {
    // no sound on this device: the colour says it
  }
}

/** Read the door; with `announce`, scans not seen before are shown as new verdicts. */
async function load({ announce }) {
  if (!site || !door) {
    setText($("#dock-message"), "Open this page as dock.html?site=<site>&door=<door>.");
    return;
  }
  try {
    const d = await api(`/docks/${encodeURIComponent(site)}/${encodeURIComponent(door)}`, { params: { recent: KEEP } });
    restOk = true;
    setText($("#dock-trip"), d.trip_id
      ? `Trip ${d.trip_id}${d.vehicle_name ? ` · ${d.vehicle_name}` : ""}` : "No trip assigned");
    receive((d.recent || []).map(toScan), { announce });
  } catch (err) {
    restOk = err instanceof ApiError;
    if (err instanceof ApiError && err.status === 404) setText($("#dock-trip"), "No trip assigned to this door yet");
    else if (err instanceof ApiError && err.status !== 401) setText($("#dock-trip"), err.message);
  }
  if (!$("#dock-recent").children.length) replace($("#dock-recent"), el("li", { class: "empty" }, "No scans yet"));
  showStatus();
}

setupLogin({
  allowedRoles: ["dock", "dispatcher", "viewer"],
  async onLogin() {
    seen.clear();
    replace($("#dock-recent"));
    idle();
    await load({ announce: false });
    live.subscribe({ streams: ["scans"], doors: [doorKey] });
    live.start();
    clearInterval(pollTimer);
    pollTimer = setInterval(() => { if (live.state !== "live" && session.token) load({ announce: true }); }, POLL_MS);
  },
  onLogout() {
    live.stop();
    clearInterval(pollTimer);
    clearTimeout(quietTimer);
  },
});
