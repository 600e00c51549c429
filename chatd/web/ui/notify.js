// @ts-check
// Notices of messages in other conversations: toasts, and the unread count
// in the tab title.

import { $, h, nameNode } from "./dom.js";
import { onRender, state } from "./store.js";

/** A toast: `title` (a name, isolated), a line of text, and what a click does. */
export function toast(/** @type {string} */ title, /** @type {string} */ text, /** @type {(() => void) | undefined} */ onclick = undefined) {
  const el = h(
    "button",
    { type: "button", class: "toast", role: "status" },
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
  const box = $("toasts");
  box.append(el);
  while (box.children.length > 3) box.firstElementChild?.remove();
  setTimeout(dismiss, 6000);
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
