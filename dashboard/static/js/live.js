// One WebSocket to /api/v1/live (docs/live-map.md): auth as the first message, then a
// subscription that may be replaced at any time; reconnects with backoff.
//
// Events: "state" (detail: "connecting" | "live" | "down" | "refused"), "frame" (detail:
// the frame), "resync" (re-read the REST state: once subscribed after every connect, since
// changes made while disconnected were never streamed, and on a resync frame).
import { endSession, session } from "./api.js";

const MIN_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;

export class LiveClient extends EventTarget {
  constructor(subscription = {}) {
    super();
    this.subscription = subscription;
    this.socket = null;
    this.state = "down";
    this.backoff = MIN_BACKOFF_MS;
    this.timer = null;
    this.stopped = true;
    this.awaitingSync = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "logged out");
    this.socket = null;
    this.setState("down");
  }

  /** Replace the subscription (sent now if connected, else on the next connect). */
  subscribe(subscription) {
    this.subscription = subscription;
    if (this.state === "live") this.send({ type: "subscribe", ...subscription });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  setState(state, reason = "") {
    this.state = state;
    this.reason = reason;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  connect() {
    if (this.stopped || !session.token) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}/api/v1/live`);
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    this.setState("connecting");
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "auth", token: session.token }));
    });
    socket.addEventListener("message", (event) => this.onMessage(event));
    socket.addEventListener("close", (event) => this.onClose(socket, event));
  }

  onMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === "ready") {
      this.backoff = MIN_BACKOFF_MS;
      this.awaitingSync = true;
      this.send({ type: "subscribe", ...this.subscription });
      this.setState("live");
    } else if (message.type === "resync") {
      this.dispatchEvent(new CustomEvent("resync", { detail: message.reason || "resync" }));
    } else if (message.type === "subscribed" || message.type === "error") {
      if (message.type === "error") console.warn("live: the server refused the subscription:", message.detail);
      // Changes between the page's REST read and this subscription were never streamed:
      // read the REST state once more, now that nothing is missed any longer.
      if (this.awaitingSync) {
        this.awaitingSync = false;
        this.dispatchEvent(new CustomEvent("resync", { detail: "connected" }));
      }
    } else {
      this.dispatchEvent(new CustomEvent("frame", { detail: message }));
    }
  }

  onClose(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.stopped) return;
    if (event.code === 4401) {
      endSession("Your session ended (the live stream refused the token); log in again.");
      this.stop();
      return;
    }
    if (event.code === 4403) {
      // The role may not watch: retrying will not help soon, but a slow retry costs little.
      this.setState("refused", "this role may not watch the live stream");
      this.retry(MAX_BACKOFF_MS);
      return;
    }
    this.setState("down", event.reason || `closed (${event.code})`);
    this.retry();
  }

  retry(delay) {
    clearTimeout(this.timer);
    const wait = delay ?? this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    // Jitter, so that many screens do not all come back in the same millisecond.
    this.timer = setTimeout(() => this.connect(), wait * (0.8 + Math.random() * 0.4));
  }
}
