// @ts-check
// Settings kept in this browser (localStorage): the theme (applied before
// the first render: app.js imports this module first, so a dark page never
// flashes light), the message sound, and desktop notifications (the browser's
// permission is asked from a button here, never on load).

import { $, dialog } from "./dom.js";

const THEME_KEY = "chatcore.theme";
const SOUND_KEY = "chatcore.sound";

/** Whether new messages make a sound (on unless turned off). */
export function soundOn() {
  return localStorage.getItem(SOUND_KEY) !== "off";
}

/** Whether desktop notifications may be shown. */
export function notificationsAllowed() {
  return typeof Notification === "function" && Notification.permission === "granted";
}

function renderNotifySettings() {
  const status = $("notify-status");
  const button = /** @type {HTMLButtonElement} */ ($("notify-permission"));
  const perm = typeof Notification === "function" ? Notification.permission : "unsupported";
  status.textContent =
    perm === "granted"
      ? "Desktop notifications are on while this page is in the background."
      : perm === "denied"
        ? "Notifications are blocked for this site in the browser's settings."
        : perm === "unsupported"
          ? "This browser cannot show notifications."
          : "Get a notification when a message arrives while this page is in the background.";
  button.hidden = perm !== "default";
  /** @type {HTMLInputElement} */ ($("notify-sound")).checked = soundOn();
}

/** @typedef {"system" | "light" | "dark"} Theme */

/** @returns {Theme} */
export function theme() {
  const t = localStorage.getItem(THEME_KEY);
  return t === "light" || t === "dark" ? t : "system";
}

/** Follows the system (prefers-color-scheme) unless the user chose light or dark. */
function applyTheme(/** @type {Theme} */ t) {
  if (t === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

export function setTheme(/** @type {Theme} */ t) {
  if (t === "system") localStorage.removeItem(THEME_KEY);
  else localStorage.setItem(THEME_KEY, t);
  applyTheme(t);
}

export function wireSettings() {
  const d = dialog("settings");
  $("settings-button").addEventListener("click", () => {
    const current = /** @type {HTMLInputElement} */ ($(`theme-${theme()}`));
    current.checked = true;
    d.showModal();
    current.focus();
  });
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (d.querySelectorAll('input[name="theme"]'))) {
    input.addEventListener("change", () => {
      if (input.checked) setTheme(/** @type {Theme} */ (input.value));
    });
  }
  d.addEventListener("click", (ev) => {
    if (ev.target === d) d.close();
  });
  $("settings-button").addEventListener("click", renderNotifySettings);
  $("notify-permission").addEventListener("click", () => {
    void Notification.requestPermission().then(renderNotifySettings, renderNotifySettings);
  });
  const sound = /** @type {HTMLInputElement} */ ($("notify-sound"));
  sound.addEventListener("change", () => {
    if (sound.checked) localStorage.removeItem(SOUND_KEY);
    else localStorage.setItem(SOUND_KEY, "off");
  });
}

applyTheme(theme());
