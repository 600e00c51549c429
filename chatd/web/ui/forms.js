// @ts-check
// Form plumbing shared by the sign-in, sign-up, reset and profile forms:
// errors next to their field, a busy state while a request runs.

import { ChatError } from "../chatcore/web.js";
import { $, h, show } from "./dom.js";
import { describe, INVALID, TAKEN, VIOLATIONS } from "./format.js";

export function clearErrors(/** @type {HTMLFormElement} */ form) {
  for (const el of form.querySelectorAll(".field-error, .form-error")) {
    el.replaceChildren();
    show(/** @type {HTMLElement} */ (el), false);
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** Shows `lines` under the field `<prefix>-<field>`; false when there is no such field. */
export function fieldError(/** @type {string} */ prefix, /** @type {string} */ name, /** @type {string[]} */ lines) {
  const el = document.getElementById(`${prefix}-${name}-error`);
  const input = document.getElementById(`${prefix}-${name}`);
  if (!el) return false;
  el.replaceChildren(...lines.map((t) => (el.tagName === "UL" ? h("li", {}, t) : t)));
  show(el, true);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  return true;
}

/** Shows an error next to its field when it names one, else under the form. */
export function showError(/** @type {string} */ prefix, /** @type {unknown} */ err) {
  if (err instanceof ChatError) {
    if (err.code === "weak_password") {
      // Every broken rule, each in words, next to the password field.
      const lines = err.violations.length ? err.violations.map((v) => VIOLATIONS[v] ?? v) : [err.message];
      if (fieldError(prefix, "password", lines)) return;
    }
    if (err.code === "conflict" && err.field && fieldError(prefix, err.field, [TAKEN[err.field] ?? err.message])) return;
    if ((err.code === "invalid_argument" || err.code === "too_large") && err.field) {
      const name = err.field === "new_password" ? "password" : err.field;
      const text = err.code === "too_large" ? "That is too long." : (INVALID[err.field] ?? err.message);
      if (fieldError(prefix, name, [text])) return;
    }
  }
  const el = $(`${prefix}-error`);
  el.textContent = describe(err);
  show(el, true);
}

/** Runs `work` with the form's submit button disabled and its errors cleared. */
export async function submitting(/** @type {HTMLFormElement} */ form, /** @type {() => Promise<void>} */ work) {
  const button = /** @type {HTMLButtonElement | null} */ (form.querySelector("button[type=submit]"));
  clearErrors(form);
  if (button) button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    await work();
  } finally {
    if (button) button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

/** The form's fields as strings. @returns {Record<string, string>} */
export function values(/** @type {HTMLFormElement} */ form) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = typeof v === "string" ? v : "";
  return out;
}
