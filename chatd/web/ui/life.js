// @ts-check
// A message's life after it was sent (PROTOCOL.md, *Message life*): replies, edits, reactions, deletions and
// disappearing messages, as the timeline shows them. Every entry of a conversation goes into the binding's
// LifeBook (state.life) with what this device reads of it; edits, reactions and deletions are entries of their
// own that the timeline does not show: they change the message they point at. Here: which entries the timeline
// shows, what a message shows now (its latest text, "edited", "Message deleted", its quote and reaction chips),
// the list's preview of an edit, reaction or deletion, messages hidden on this device ("Delete for me") and the
// timer that drops expired messages from the page. The message menu is ui/msgmenu.js, the composer's reply and
// edit modes and mentions ui/compose.js.

import { standsAlone } from "../chatcore/web.js";
import { h, nameNode } from "./dom.js";
import { invalidate, serverNow, state, userName } from "./store.js";
import { isText, onOwnDevices, readable, tellOwnDevices } from "./e2e.js";
import { toast } from "./notify.js";
import { messageButton, toggleReaction } from "./msgmenu.js";

/** @typedef {import("./store.js").Message} Message */
/** @typedef {import("./store.js").Conv} Conv */
/** @typedef {import("../chatcore/web.js").MessageView} MessageView */

/** Takes entry `m` of `c` into the book, with its text if this device reads it; a deletion scrubs its target here. */
export function learn(/** @type {Conv} */ c, /** @type {Message} */ m) {
  state.life.apply(m, isText(m) ? readable(m).text : undefined);
  if (m.rel?.kind === "delete") scrub(c, m.rel.target);
  // The composer's quoted line may be of the message this changes.
  if (m.rel) invalidate("compose");
  scheduleExpiry();
}

/** Takes in a history page's `related` entries: into the book only (they are not on the page). */
export function learnRelated(/** @type {Conv} */ c, /** @type {Message[]} */ related) {
  for (const m of related) learn(c, m);
}

/** No copy of a deleted (or expired) message's content stays in the page: its text and what this device read of it. */
function scrub(/** @type {Conv} */ c, /** @type {string} */ id) {
  const m = state.life.get(id);
  if (!m) return;
  state.reads.delete(id);
  const stored = c.messages.get(m.seq);
  if (stored?.id === id && stored.content.kind !== "deleted") c.messages.set(m.seq, { ...stored, content: { kind: "deleted" } });
  if (c.last?.message?.id === id) c.last = { ...c.last, message: c.messages.get(m.seq) };
}

/** Whether the timeline shows entry `m`: not an edit, reaction or deletion, not hidden here, not expired. */
export function inTimeline(/** @type {Message} */ m) {
  if (m.content.kind === "void") return false;
  if (m.rel && m.rel.kind !== "reply") return false;
  if (m.expires_at !== undefined && m.expires_at <= serverNow()) return false;
  return !isHidden(m.id);
}

/**
 * What message `m` shows now: its text (the latest edit's; "Message deleted"), whether that is a note, its view,
 * and a key that changes whenever any of it does (the timeline's row cache).
 */
export function shownOf(/** @type {Message} */ m) {
  const v = state.life.view(m.id, state.me?.user);
  const { text, note } = v.deleted
    ? { text: "Message deleted", note: true }
    : v.edited && v.text !== undefined
      ? { text: v.text, note: false }
      : readable(m);
  const quote = v.replyTo ? quoteOf(v.replyTo) : null;
  const key = [
    v.deleted ? "D" : "",
    v.edited ? `E${text}` : "",
    v.reactions.map((r) => `${r.emoji}${r.users.join(",")}${r.mine ? "*" : ""}`).join(";"),
    quote ? `Q${quote.name}|${quote.line}` : "",
  ].join(" ");
  return { text, note, view: v, quote, key };
}

/** A quoted message's first line and sender ("Message deleted", "Not available" when it is gone or not loaded). */
export function quoteOf(/** @type {string} */ id) {
  const v = state.life.view(id, state.me?.user);
  if (!v.message) return { name: "", line: "Not available", id, seq: 0 };
  const name = v.message.from === state.me?.user ? "You" : userName(v.message.from);
  if (v.deleted) return { name, line: "Message deleted", id, seq: v.message.seq };
  const text = v.text ?? readable(v.message).text;
  return { name, line: (text.split("\n")[0] ?? "").slice(0, 200), id, seq: v.message.seq };
}

/**
 * Adds to a message's row what its life shows: the quote above its text, "edited", the reaction chips under it,
 * the menu button, and marks (deleted, mentions this user).
 */
export function decorate(/** @type {HTMLElement} */ li, /** @type {Conv} */ c, /** @type {Message} */ m, /** @type {ReturnType<typeof shownOf>} */ s) {
  const me = state.me?.user;
  const v = s.view;
  li.dataset.id = m.id;
  if (v.deleted) li.classList.add("deleted");
  if (me && m.from !== me && m.mentions?.includes(me)) li.classList.add("mentions-me");
  const textNode = li.querySelector(".msg-text");
  if (s.quote && textNode) {
    const q = s.quote;
    textNode.before(
      h(
        "button",
        {
          type: "button",
          class: "quote",
          title: "Show the quoted message",
          onclick: () => showMessage(c, q.id),
        },
        h("span", { class: "visually-hidden" }, "In reply to "),
        q.name ? h("span", { class: "quote-name" }, nameNode(q.name)) : null,
        h("span", { class: "quote-text" }, q.line),
      ),
    );
  }
  let meta = li.querySelector(".msg-meta");
  if (!meta) {
    meta = h("span", { class: "msg-meta" });
    li.append(meta);
  }
  if (v.edited) meta.prepend(h("span", { class: "msg-edited" }, "edited"));
  if (v.reactions.length) {
    const chips = h(
      "span",
      { class: "reactions", role: "group", "aria-label": "Reactions" },
      ...v.reactions.map((r) => {
        const who = r.users.map((u) => (u === me ? "You" : userName(u))).join(", ");
        return h(
          "button",
          {
            type: "button",
            class: `reaction ${r.mine ? "mine" : ""}`,
            title: who,
            "aria-pressed": r.mine ? "true" : "false",
            "aria-label": `${r.emoji} ${r.users.length}: ${who}${r.mine ? ". Take your reaction back" : `. React ${r.emoji}`}`,
            dataset: { emoji: r.emoji },
            onclick: () => void toggleReaction(c, m, r.emoji),
          },
          h("span", { class: "reaction-emoji" }, r.emoji),
          h("span", { class: "reaction-count" }, String(r.users.length)),
        );
      }),
    );
    meta.before(chips);
  }
  meta.append(messageButton(c, m, v));
  return li;
}

/** Scrolls to message `id` of `c` and focuses it, if it is in the page; else says it is not. */
export function showMessage(/** @type {Conv} */ c, /** @type {string} */ id) {
  const el = /** @type {HTMLElement | null} */ (document.querySelector(`#message-list [data-id="${CSS.escape(id)}"]`));
  if (!el || state.open !== c.id) {
    toast("Quoted message", state.life.get(id) ? "Scroll up to see it: it is not loaded here." : "It is not available.", undefined, "quote");
    return;
  }
  el.scrollIntoView({ block: "center" });
  el.tabIndex = -1;
  el.focus({ preventScroll: true });
  el.classList.add("flash");
  setTimeout(() => el.classList.remove("flash"), 1500);
}

/**
 * The chat list's line for a newest entry that is an edit, a reaction or a deletion ("Bob reacted 👍", "Message
 * deleted"); null for any other (shown as before).
 * @param {import("./store.js").Last} last
 * @param {string} prefix "You: ", "Bob: " or ""
 */
export function lifePreview(last, prefix) {
  const m = last.message;
  const rel = m?.rel?.kind ?? last.rel;
  const mine = last.from === state.me?.user;
  const by = mine ? "You" : userName(last.from);
  if (m && !m.rel && (m.content.kind === "deleted" || (m.expires_at !== undefined && m.expires_at <= serverNow()))) return "Message deleted";
  if (m && !m.rel && state.life.view(m.id).edited) return prefix + (shownOf(m).text || "Edited a message");
  switch (rel) {
    case "reaction": {
      const emoji = m ? state.life.textOf(m.id) : last.preview;
      return emoji ? `${by} reacted ${emoji}` : `${by} reacted`;
    }
    case "delete":
      return "Message deleted";
    case "edit": {
      const text = m ? state.life.textOf(m.id) : last.preview;
      return text ? `${prefix}${text}` : `${by} edited a message`;
    }
    default:
      return null;
  }
}

// -- Delete for me: hidden on this user's devices (this browser's storage, and the user's other devices told through
// an end-to-end encrypted to-device payload), never told to the server.

const HIDDEN = "chatcore.hidden.";
/** The most ids kept: the oldest go first. */
const HIDDEN_MAX = 5000;
/** @type {{ user: string, ids: Set<string> } | null} */
let hidden = null;

function hiddenSet() {
  const user = state.me?.user ?? "";
  if (hidden?.user !== user) {
    /** @type {string[]} */
    let ids = [];
    try {
      const saved = JSON.parse(localStorage.getItem(HIDDEN + user) ?? "[]");
      if (Array.isArray(saved)) ids = saved.filter((x) => typeof x === "string");
    } catch {
      // Damaged: nothing hidden.
    }
    hidden = { user, ids: new Set(ids) };
  }
  return hidden.ids;
}

/** Whether this user hid message `id` on this device. */
export function isHidden(/** @type {string} */ id) {
  return hiddenSet().has(id);
}

/** The kind of the payload that tells the user's other devices what it hid. */
const HIDE = "chatcore.hide";

onOwnDevices(HIDE, (value) => {
  const ids = Array.isArray(value?.ids) ? value.ids.filter((/** @type {unknown} */ x) => typeof x === "string") : [];
  hideHere(ids);
});

/** Hides message `id` on the user's devices: here (kept in this browser across reloads), and on the others. */
export function hideForMe(/** @type {string} */ id) {
  hideHere([id]);
  void tellOwnDevices(HIDE, { ids: [id] });
}

/** Hides messages `hide` on this device. */
function hideHere(/** @type {string[]} */ hide) {
  if (hide.length === 0) return;
  const ids = hiddenSet();
  for (const id of hide) ids.add(id);
  const list = [...ids].slice(-HIDDEN_MAX);
  try {
    localStorage.setItem(HIDDEN + (state.me?.user ?? ""), JSON.stringify(list));
  } catch {
    // Storage refused: hidden for this page only.
  }
  invalidate("messages", "directory");
}

// -- Disappearing messages: each entry's copy leaves the page at its `expires_at` (the server removes its own).

/** @type {ReturnType<typeof setTimeout> | undefined} */
let expiryTimer;
let expiryAt = 0;

/** Sets the timer for the next entry to expire (called whenever entries come). */
export function scheduleExpiry() {
  const next = state.life.nextExpiry();
  if (next === undefined) return;
  if (expiryTimer !== undefined && expiryAt <= next) return;
  clearTimeout(expiryTimer);
  expiryAt = next;
  // setTimeout takes at most 2^31-1 ms (about 24 days); a later expiry is looked at again then.
  expiryTimer = setTimeout(dropExpired, Math.min(Math.max(0, next - serverNow()) + 50, 2 ** 31 - 1));
}

/** Drops what expired from the page (its text and what this device read of it), and redraws. */
function dropExpired() {
  expiryTimer = undefined;
  let changed = false;
  for (const m of state.life.expiredEntries()) {
    const c = state.convs.get(m.conv);
    if (c) scrub(c, m.id);
    state.life.forget(m.id);
    changed = true;
  }
  if (changed) invalidate("messages", "directory");
  scheduleExpiry();
}

/** Whether `m` mentions this user (in a conversation not on screen: one more unread mention). */
export function mentionsMe(/** @type {Message} */ m) {
  const me = state.me?.user;
  return !!me && m.from !== me && !!m.mentions?.includes(me) && standsAlone(m);
}
