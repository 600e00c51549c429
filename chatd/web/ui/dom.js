// @ts-check
// DOM helpers. Text from users and peers only ever goes in as text nodes
// (h()'s string children, textContent): never as HTML.

/** The element with this id (the page's static skeleton has them all). */
export function $(/** @type {string} */ id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el;
}

/** An <input> or <textarea> by id. */
export function field(/** @type {string} */ id) {
  return /** @type {HTMLInputElement | HTMLTextAreaElement} */ ($(id));
}

/** A <form> by id. */
export function form(/** @type {string} */ id) {
  return /** @type {HTMLFormElement} */ ($(id));
}

/** A <dialog> by id. */
export function dialog(/** @type {string} */ id) {
  return /** @type {HTMLDialogElement} */ ($(id));
}

/**
 * @typedef {Node | string | null | undefined | false} Child
 * @typedef {Record<string, string | number | boolean | null | undefined | Record<string, string> | ((ev: any) => void)>} Attrs
 */

/**
 * Creates an element: h("li", { class: "x", onclick }, child, "text").
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = String(v);
    else if (k === "dataset" && typeof v === "object") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function show(/** @type {HTMLElement} */ el, /** @type {boolean} */ visible) {
  el.hidden = !visible;
}

/** A name someone chose, isolated from the text around it, so right-to-left or mixed text cannot reorder its neighbours. */
export function nameNode(/** @type {string} */ name) {
  return h("bdi", {}, name);
}

/** Shows `name` in `el` (a heading, a label), isolated. */
export function setName(/** @type {HTMLElement} */ el, /** @type {string} */ name) {
  el.replaceChildren(nameNode(name));
}
