// @ts-check
// Notices of messages in other conversations: toasts, and the unread count
// in the tab title.

import { $, h, nameNode } from "./dom.js";
import { onRender, state } from "./store.js";

/**
 * A notice in the top bar: `title` (a name, isolated), a line of text, and what a click does. One per `key`
 * (a conversation): a newer one replaces it. Only the newest shows, so notices never pile up over anything.
 */
export function toast(
  /** @type {string} */ title,
  /** @type {string} */ text,
  /** @type {(() => void) | undefined} */ onclick = undefined,
  /** @type {string} */ key = title,
) {
  const el = h(
    "button",
    { type: "button", class: "toast", dataset: { key } },
    h("strong", { class: "toast-title" }, nameNode(title)),
    h("span", { class: "toast-text" }, text),
  );
  const dismiss = () => {
    el.classList.add("leaving");
    setTimeout(() => el.remove(), 200);
  };
  el.addEventListener("click", () => {
    dismiss();
    onclick?.();
  });
  $("toasts").replaceChildren(el);
  setTimeout(dismiss, 6000);
}

/** Drops the notice of `key` (its conversation was opened). */
export function dismissToast(/** @type {string} */ key) {
  for (const el of $("toasts").querySelectorAll(".toast")) if (/** @type {HTMLElement} */ (el).dataset.key === key) el.remove();
}

export function clearToasts() {
  $("toasts").replaceChildren();
}

function renderTitle() {
  let total = 0;
  if (state.screen === "app") for (const c of state.convs.values()) total += c.unread;
  document.title = total ? `(${total}) chatcore` : "chatcore";
}

onRender("title", renderTitle);
