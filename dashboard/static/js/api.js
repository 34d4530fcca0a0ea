// REST calls with the session token from sessionStorage. A 401 anywhere ends the session:
// the page hears "tracklane:unauthorized" and shows the login form with the reason.

const TOKEN_KEY = "tracklane.token";
const ROLE_KEY = "tracklane.role";

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.path = path;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get role() { return sessionStorage.getItem(ROLE_KEY); },
  save(token, role) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(ROLE_KEY, role || "");
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ROLE_KEY);
  },
};

/** The session ended (401, or a WebSocket closed with 4401). */
export function endSession(message) {
  if (!session.token) return;
  session.clear();
  window.dispatchEvent(new CustomEvent("tracklane:unauthorized", { detail: { message } }));
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) search.append(key, String(v));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function problemDetail(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    return response.statusText;
  }
}

/** GET/POST an /api/v1 path; returns the parsed JSON (null for 204). */
export async function api(path, { method = "GET", params, body, signal } = {}) {
  const url = `/api/v1${path}${query(params)}`;
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    const detail = await problemDetail(response);
    endSession(`Signed out: ${detail}`);
    throw new ApiError(401, detail, path);
  }
  if (!response.ok) throw new ApiError(response.status, await problemDetail(response), path);
  if (response.status === 204) return null;
  return response.json();
}

export async function login(username, password) {
  const response = await fetch("/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!response.ok) throw new ApiError(response.status, await problemDetail(response), "/auth/login");
  const body = await response.json();
  session.save(body.access_token, body.role);
  return body;
}

export async function loadConfig() {
  try {
    const response = await fetch("/dashboard/config.json");
    if (response.ok) return await response.json();
  } catch {
    // no config: a map without tiles
  }
  return { tile_url: "", tile_attribution: "" };
}
