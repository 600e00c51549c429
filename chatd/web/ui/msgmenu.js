// @ts-check
// The message menu (the "⋯" button on each message, shown on hover and focus, reached with Tab; or a right-click)
// and what it does: Reply, React (a small picker), Edit, Delete for everyone, Delete for me. Edits and reactions
// go out through the same path as any text (ui/e2e.js: encrypted in an encrypted conversation, with `rel` in the
// clear beside the ciphertext); a deletion carries no content.

import { newClientId, standsAlone } from "../chatcore/web.js";
import { h } from "./dom.js";
import { describe } from "./format.js";
import { invalidate, serverNow, state } from "./store.js";
import { isText, sendText } from "./e2e.js";
import { addMessage } from "./chat.js";
import { toast } from "./notify.js";
import { hideForMe } from "./life.js";
import { startEdit, startReply } from "./compose.js";

/** @typedef {import("./store.js").Message} Message */
/** @typedef {import("./store.js").Conv} Conv */
/** @typedef {import("../chatcore/web.js").MessageView} MessageView */

/** How long after sending a message its sender may edit it (chatd's default `--edit-window-ms`). */
export const EDIT_WINDOW_MS = 24 * 3600 * 1000;

/** The reactions offered at once; any other emoji can be typed. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

/** Whether this user may write in `c` now. */
function canWrite(/** @type {Conv} */ c) {
  return !c.left && !c.request;
}

/** Whether `m` is this user's and may still be edited. */
export function canEdit(/** @type {Conv} */ c, /** @type {Message} */ m, /** @type {MessageView} */ v) {
  return canWrite(c) && m.from === state.me?.user && standsAlone(m) && !v.deleted && isText(m) && serverNow() - m.ts < EDIT_WINDOW_MS;
}

/** Whether this user may delete `m` for everyone: its sender, or an admin of the group. */
function canDelete(/** @type {Conv} */ c, /** @type {Message} */ m, /** @type {MessageView} */ v) {
  if (v.deleted || !canWrite(c)) return false;
  return m.from === state.me?.user || (c.kind === "group" && (c.role === "admin" || c.role === "owner"));
}

/** The stored message sent, kept as what it says (our own ciphertext reads as what we wrote), and shown. */
function took(/** @type {Conv} */ c, /** @type {Message} */ message, /** @type {string | undefined} */ text) {
  if (message.content.kind === "encrypted" && state.secure) state.reads.set(message.id, state.secure.decryptMessage(message).body);
  addMessage(c, message, true);
  if (text !== undefined) state.life.apply(message, text);
  invalidate("messages", "directory");
}

/** Sends `text` pointing at `target` (an edit or a reaction). */
async function sendRel(/** @type {Conv} */ c, /** @type {"edit" | "reaction"} */ kind, /** @type {string} */ target, /** @type {string} */ text) {
  try {
    const { message } = await sendText(c, text, newClientId(), { rel: { kind, target } });
    took(c, message, text);
    return true;
  } catch (err) {
    toast(kind === "edit" ? "Not edited" : "Reaction not sent", describe(err), undefined, `life ${target}`);
    return false;
  }
}

/** Deletes `target` (a message, or this user's reaction) for everyone. */
async function deleteForAll(/** @type {Conv} */ c, /** @type {string} */ target) {
  const client = state.client;
  if (!client) return;
  try {
    const { message } = await client.deleteMessage(c.id, target);
    took(c, message, undefined);
  } catch (err) {
    toast("Not deleted", describe(err), undefined, `life ${target}`);
  }
}

/** Saves `text` as the new text of `m`. */
export function saveEdit(/** @type {Conv} */ c, /** @type {string} */ target, /** @type {string} */ text) {
  return sendRel(c, "edit", target, text);
}

/** Reacts to `m` with `emoji`, or takes this user's reaction with it back (reacting again toggles it off). */
export async function toggleReaction(/** @type {Conv} */ c, /** @type {Message} */ m, /** @type {string} */ emoji) {
  if (!canWrite(c)) return;
  const mine = state.life.myReaction(m.id, emoji, state.me?.user);
  if (mine) await deleteForAll(c, mine);
  else await sendRel(c, "reaction", m.id, emoji);
}

// -- the menu

/** The open menu or picker, and the button to give the focus back to. @type {{ el: HTMLElement, opener: HTMLElement } | null} */
let open = null;

function closeMenu(restore = true) {
  if (!open) return;
  const { el, opener } = open;
  open = null;
  el.remove();
  opener.setAttribute("aria-expanded", "false");
  if (restore && opener.isConnected) opener.focus();
}

/** Places `el` (fixed) by `anchor`, inside the window. */
function place(/** @type {HTMLElement} */ el, /** @type {HTMLElement} */ anchor) {
  document.body.append(el);
  const r = anchor.getBoundingClientRect();
  const w = el.offsetWidth;
  const hgt = el.offsetHeight;
  el.style.left = `${Math.max(4, Math.min(innerWidth - w - 4, r.right - w))}px`;
  el.style.top = `${r.bottom + hgt + 4 < innerHeight ? r.bottom + 4 : Math.max(4, r.top - hgt - 4)}px`;
}

/** Arrow keys move between `items`, Escape closes, Tab leaves. */
function menuKeys(/** @type {HTMLElement} */ el, /** @type {() => HTMLElement[]} */ items) {
  el.addEventListener("keydown", (ev) => {
    const list = items();
    const at = list.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    const move = (/** @type {number} */ i) => {
      ev.preventDefault();
      list[(i + list.length) % list.length]?.focus();
    };
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      closeMenu();
    } else if (ev.key === "Tab") closeMenu(false);
    else if (ev.key === "ArrowDown" || ev.key === "ArrowRight") {
      if (!(ev.target instanceof HTMLInputElement)) move(at + 1);
    } else if (ev.key === "ArrowUp" || ev.key === "ArrowLeft") {
      if (!(ev.target instanceof HTMLInputElement)) move(at - 1);
    } else if (ev.key === "Home") move(0);
    else if (ev.key === "End") move(list.length - 1);
  });
}

document.addEventListener("pointerdown", (ev) => {
  if (open && !open.el.contains(/** @type {Node} */ (ev.target)) && ev.target !== open.opener) closeMenu(false);
});

/** The "⋯" button of message `m`: its menu. */
export function messageButton(/** @type {Conv} */ c, /** @type {Message} */ m, /** @type {MessageView} */ v) {
  const button = h("button", {
    type: "button",
    class: "msg-actions",
    "aria-label": "Message actions",
    "aria-haspopup": "menu",
    "aria-expanded": "false",
    title: "Reply, react, edit, delete",
  });
  button.textContent = "⋯";
  button.addEventListener("click", () => {
    if (open?.opener === button) closeMenu();
    else openMenu(c, m, v, button);
  });
  return button;
}

/** Opens the menu of `m` by `opener`. */
function openMenu(/** @type {Conv} */ c, /** @type {Message} */ m, /** @type {MessageView} */ v, /** @type {HTMLElement} */ opener) {
  closeMenu(false);
  /** @type {[string, string, () => void][]} */
  const actions = [];
  const act = (/** @type {() => void} */ f) => () => {
    closeMenu(false);
    f();
  };
  if (!v.deleted && canWrite(c)) {
    actions.push(["reply", "Reply", act(() => startReply(c, m))]);
    actions.push(["react", "React", () => openPicker(c, m, opener)]);
  }
  if (canEdit(c, m, v)) actions.push(["edit", "Edit", act(() => startEdit(c, m, v.text ?? ""))]);
  if (canDelete(c, m, v)) {
    actions.push([
      "delete",
      "Delete for everyone",
      () => {
        // Two steps: the first click asks, the second deletes.
        const item = /** @type {HTMLElement | null} */ (menu.querySelector('[data-action="delete"]'));
        if (item && item.dataset.confirm !== "yes") {
          item.dataset.confirm = "yes";
          item.textContent = "Delete for everyone: sure?";
          item.focus();
          return;
        }
        closeMenu();
        void deleteForAll(c, m.id);
      },
    ]);
  }
  actions.push([
    "hide",
    "Delete for me",
    act(() => {
      hideForMe(m.id);
      toast("Deleted for you", "Hidden on this device only: the others, and your other devices, still see it.", undefined, `hide ${m.id}`);
      document.getElementById("messages")?.focus();
    }),
  ]);
  const menu = h(
    "div",
    { class: "msg-menu", role: "menu", "aria-label": "Message actions" },
    ...actions.map(([key, label, f]) => h("button", { type: "button", role: "menuitem", dataset: { action: key }, onclick: f }, label)),
  );
  menuKeys(menu, () => [.../** @type {NodeListOf<HTMLElement>} */ (menu.querySelectorAll("button"))]);
  open = { el: menu, opener };
  opener.setAttribute("aria-expanded", "true");
  place(menu, opener);
  /** @type {HTMLElement | null} */ (menu.querySelector("button"))?.focus();
}

/** One grapheme, and an emoji: what the server takes as a reaction in a plain conversation. */
function oneEmoji(/** @type {string} */ text) {
  const t = text.trim();
  const segs = [...new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(t)];
  return segs.length === 1 && /\p{Extended_Pictographic}|\p{Regional_Indicator}/u.test(t) ? t : null;
}

/** The reaction picker of `m`: the quick reactions, and any emoji typed. */
function openPicker(/** @type {Conv} */ c, /** @type {Message} */ m, /** @type {HTMLElement} */ opener) {
  closeMenu(false);
  const pick = (/** @type {string} */ emoji) => {
    closeMenu();
    void toggleReaction(c, m, emoji);
  };
  const input = h("input", { type: "text", class: "picker-input", "aria-label": "Any emoji", placeholder: "Any emoji", maxlength: "16" });
  const error = h("span", { class: "picker-error", role: "alert" });
  const other = h(
    "form",
    {
      class: "picker-other",
      onsubmit: (/** @type {SubmitEvent} */ ev) => {
        ev.preventDefault();
        const emoji = oneEmoji(input.value);
        if (emoji) pick(emoji);
        else error.textContent = "One emoji, please.";
      },
    },
    input,
    h("button", { type: "submit", class: "ghost small" }, "React"),
  );
  const picker = h(
    "div",
    { class: "reaction-picker", role: "dialog", "aria-label": "React to the message" },
    h(
      "div",
      { class: "picker-quick" },
      ...QUICK_REACTIONS.map((e) => {
        const mine = !!state.life.myReaction(m.id, e, state.me?.user);
        return h(
          "button",
          { type: "button", class: `picker-emoji ${mine ? "mine" : ""}`, "aria-label": mine ? `Take back ${e}` : `React ${e}`, "aria-pressed": mine ? "true" : "false", onclick: () => pick(e) },
          e,
        );
      }),
    ),
    other,
    error,
  );
  menuKeys(picker, () => [.../** @type {NodeListOf<HTMLElement>} */ (picker.querySelectorAll(".picker-emoji"))]);
  open = { el: picker, opener };
  opener.setAttribute("aria-expanded", "true");
  place(picker, opener);
  /** @type {HTMLElement | null} */ (picker.querySelector(".picker-emoji"))?.focus();
}

/** A right-click on a message opens its menu (as the button does). */
export function wireMessageMenu() {
  document.getElementById("message-list")?.addEventListener("contextmenu", (ev) => {
    const li = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (ev.target).closest?.("li.msg"));
    const button = /** @type {HTMLElement | null} */ (li?.querySelector(".msg-actions"));
    if (!button || window.getSelection()?.toString()) return;
    ev.preventDefault();
    button.click();
  });
}
