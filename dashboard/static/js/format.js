// Times and small formatting helpers shared by the pages. Clock times are 24-hour, local.

export function parseTime(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function clock(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

export function shortClock(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

export function dateTime(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "";
  return date.toLocaleString([], {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
}

/** "2026-11-22T07:15" for a datetime-local input, in local time. */
export function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function ago(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "";
  const s = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export const humanize = (value) => String(value ?? "").replaceAll("_", " ");

export function speedKmh(mps) {
  return typeof mps === "number" ? `${Math.round(mps * 3.6)} km/h` : "";
}
