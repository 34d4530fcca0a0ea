// The login form shared by the dispatcher page and the dock screen.
import { $, setText } from "./dom.js";
import { login, session } from "./api.js";

/**
 * Show the login form until someone logs in, then the app. `onLogin` runs with the role
 * every time a session starts (also for a token kept in sessionStorage); `onLogout` when
 * it ends, before the form comes back.
 */
export function setupLogin({ onLogin, onLogout, allowedRoles = null }) {
  const form = $("#login-form");
  const app = $("#app");
  const error = $("#login-error");
  const submit = $("#login-submit");

  function showLogin(message = "") {
    app.hidden = true;
    form.hidden = false;
    setText(error, message);
    error.hidden = !message;
    $("#password").value = "";
    $("#username").focus();
  }

  function showApp() {
    form.hidden = true;
    app.hidden = false;
    setText(error, "");
    error.hidden = true;
    onLogin(session.role);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    setText(error, "");
    try {
      const result = await login($("#username").value.trim(), $("#password").value);
      if (allowedRoles && !allowedRoles.includes(result.role) && result.role !== "admin") {
        session.clear();
        showLogin(`A ${result.role} user cannot use this screen.`);
        return;
      }
      showApp();
    } catch (err) {
      showLogin(err.status === 401 ? "Wrong username or password." : `Login failed: ${err.message}`);
    } finally {
      submit.disabled = false;
    }
  });

  window.addEventListener("tracklane:unauthorized", (event) => {
    onLogout?.();
    showLogin(event.detail?.message || "Your session ended; log in again.");
  });

  for (const button of document.querySelectorAll("[data-action=logout]")) {
    button.addEventListener("click", () => {
      session.clear();
      onLogout?.();
      showLogin("Logged out.");
    });
  }

  if (session.token) showApp();
  else showLogin();
}
