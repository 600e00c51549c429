// @ts-check
// Which screen is up (splash, the signed-out forms, the signed-in app), and
// the signed-in header.

import { $, setName, show } from "./dom.js";
import { paintAvatar } from "./avatar.js";
import { flush, invalidate, onRender, state } from "./store.js";

/** @typedef {"signin" | "signup" | "forgot" | "reset"} AuthView */

const view = {
  /** @type {AuthView} */
  auth: "signin",
  notice: "",
  splash: "Connecting…",
};

export function showSplash(/** @type {string} */ text) {
  state.screen = "splash";
  view.splash = text;
  invalidate("screen");
}

/** Shows the signed-out screen on `which` form, with an optional notice above it; focuses its first field. */
export function showAuth(/** @type {AuthView} */ which, notice = "") {
  state.screen = "auth";
  view.auth = which;
  view.notice = notice;
  invalidate("screen", "title");
  flush();
  /** @type {HTMLElement | null} */ (document.querySelector(`#auth form[data-view="${which}"] input`))?.focus();
}

export function showApp() {
  state.screen = "app";
  invalidate("screen", "me");
}

/** Updates the splash line while it shows (e.g. the server cannot be reached). */
export function splashText(/** @type {string} */ text) {
  view.splash = text;
  invalidate("screen");
}

function renderScreen() {
  show($("splash"), state.screen === "splash");
  show($("auth"), state.screen === "auth");
  show($("app"), state.screen === "app");
  $("splash-text").textContent = view.splash;
  if (state.screen !== "auth") return;
  for (const f of /** @type {NodeListOf<HTMLFormElement>} */ (document.querySelectorAll("#auth form"))) show(f, f.dataset.view === view.auth);
  show($("auth-tabs"), view.auth === "signin" || view.auth === "signup");
  for (const tab of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll("#auth-tabs .tab"))) {
    tab.setAttribute("aria-pressed", String(tab.dataset.view === view.auth));
  }
  // The code field only when no reset link brought the token.
  show($("reset-code-field"), view.auth === "reset" && !state.resetToken);
  const n = $("auth-notice");
  n.textContent = view.notice;
  show(n, !!view.notice);
}

function renderMe() {
  const me = state.me;
  if (!me) return;
  paintAvatar($("me-avatar"), me.profile);
  setName($("me-name"), me.profile.display_name);
}

onRender("screen", renderScreen);
onRender("me", renderMe);
