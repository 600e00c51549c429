// @ts-check
// Settings kept in this browser (localStorage): the theme. Applied before
// the first render (app.js imports this module first), so a dark page never
// flashes light.

import { $, dialog } from "./dom.js";

const THEME_KEY = "chatcore.theme";

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
}

applyTheme(theme());
