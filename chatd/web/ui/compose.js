// @ts-check
// The composer's modes and mentions: replying to a message (the quoted line above the message box, with a cancel
// button), editing one of this user's messages (its text in the box; Enter saves, Escape cancels; Up in an empty
// box edits the last one), and `@` in a group, which offers the members to mention (arrow keys, Enter or Tab to
// pick, Escape to close). ui/composer.js asks this module what the message it sends is (reply, edit, mentions).

import { standsAlone } from "../chatcore/web.js";
import { $, field, h, show } from "./dom.js";
import { invalidate, onRender, openConv, state, userName } from "./store.js";
import { inTimeline, quoteOf } from "./life.js";
import { canEdit } from "./msgmenu.js";
import { autoGrow, renderCount, saveDraft } from "./composer.js";

/** @typedef {import("./store.js").Message} Message */
/** @typedef {import("./store.js").Conv} Conv */

/**
 * What the composer of each conversation does: reply to `target`, or edit it (`draft`: what the box held before,
 * given back when the edit ends; `text`: the text being edited, to tell whether it changed).
 * @typedef {{ mode: "reply", target: string } | { mode: "edit", target: string, draft: string, text: string }} Mode
 */

/** @type {Map<string, Mode>} */
const modes = new Map();

/** Names picked from the mention list, per conversation: `@Name` in the text mentions the user. @type {Map<string, Map<string, string>>} */
const picked = new Map();

/** What the composer of `c` does now: null for a new message. */
export function composeMode(/** @type {Conv} */ c) {
  return modes.get(c.id) ?? null;
}

function box() {
  return /** @type {HTMLTextAreaElement} */ (field("composer-text"));
}

/** The composer replies to `m`. */
export function startReply(/** @type {Conv} */ c, /** @type {Message} */ m) {
  endMode(c);
  modes.set(c.id, { mode: "reply", target: m.id });
  invalidate("compose");
  box().focus();
}

/** The composer edits `m`, whose text is `text` now. */
export function startEdit(/** @type {Conv} */ c, /** @type {Message} */ m, /** @type {string} */ text) {
  endMode(c);
  const input = box();
  modes.set(c.id, { mode: "edit", target: m.id, draft: input.value, text });
  input.value = text;
  autoGrow();
  renderCount();
  invalidate("compose");
  input.focus();
  input.setSelectionRange(text.length, text.length);
}

/** Ends the reply or edit of `c` (sent, or cancelled): an edit gives the box back what it held before. */
export function endMode(/** @type {Conv} */ c) {
  const mode = modes.get(c.id);
  if (!mode) return;
  modes.delete(c.id);
  if (mode.mode === "edit" && state.open === c.id) {
    box().value = mode.draft;
    autoGrow();
    renderCount();
    saveDraft(c);
  }
  invalidate("compose");
}

/** The members `text` mentions (picked from the list, their `@Name` still in the text); forgets the picks. */
export function takeMentions(/** @type {Conv} */ c, /** @type {string} */ text) {
  const names = picked.get(c.id);
  picked.delete(c.id);
  if (!names) return [];
  return [...new Set([...names].filter(([name]) => text.includes(`@${name}`)).map(([, id]) => id))];
}

/** Edits this user's last message that may still be edited (Up in an empty composer). */
function editLast(/** @type {Conv} */ c) {
  for (let i = c.seqs.length - 1; i >= 0; i--) {
    const m = c.messages.get(c.seqs[i] ?? 0);
    if (!m || !inTimeline(m) || !standsAlone(m) || m.from !== state.me?.user) continue;
    const v = state.life.view(m.id, state.me?.user);
    if (!canEdit(c, m, v)) return false;
    startEdit(c, m, v.text ?? "");
    return true;
  }
  return false;
}

function renderCompose() {
  const c = openConv();
  const bar = $("compose-context");
  const mode = c ? modes.get(c.id) : undefined;
  show(bar, !!mode);
  const input = box();
  input.placeholder = mode?.mode === "edit" ? "Edit message" : "Message";
  $("composer-send").textContent = mode?.mode === "edit" ? "Save" : "Send";
  if (!c || !mode) return;
  const q = quoteOf(mode.target);
  $("compose-context-label").textContent = mode.mode === "edit" ? "Editing" : q.name ? `Replying to ${q.name}` : "Replying to";
  $("compose-context-text").textContent = mode.mode === "edit" ? (mode.text.split("\n")[0] ?? "") : q.line;
  $("compose-cancel").setAttribute("aria-label", mode.mode === "edit" ? "Cancel editing" : "Cancel reply");
}

// -- mentions

/** The open mention list: the candidates, the one chosen, and where the `@` is in the text. */
/** @type {{ users: string[], at: number, index: number, start: number } | null} */
let list = null;

function closeList() {
  list = null;
  const ul = $("mention-list");
  show(ul, false);
  ul.replaceChildren();
  box().removeAttribute("aria-activedescendant");
}

/** After each keystroke: an `@word` just before the caret in a group offers the members whose name begins so. */
function offerMentions() {
  const c = openConv();
  const input = box();
  const before = input.value.slice(0, input.selectionStart ?? input.value.length);
  const match = /(^|\s)@([^\s@]{0,30})$/.exec(before);
  if (!c || c.kind !== "group" || !c.members || !match) {
    closeList();
    return;
  }
  const query = (match[2] ?? "").toLowerCase();
  const me = state.me?.user;
  const users = c.members
    .map((m) => m.user)
    .filter((u) => u !== me)
    .filter((u) => {
      const p = state.users.get(u)?.profile;
      const names = [userName(u), p?.username ?? ""].map((n) => n.toLowerCase());
      return !query || names.some((n) => n.startsWith(query) || n.split(/\s+/).some((w) => w.startsWith(query)));
    })
    .slice(0, 8);
  if (!users.length) {
    closeList();
    return;
  }
  list = { users, at: before.length - (match[2] ?? "").length - 1, index: Math.min(list?.index ?? 0, users.length - 1), start: before.length };
  drawList();
}

function drawList() {
  if (!list) return;
  const l = list;
  const ul = $("mention-list");
  ul.replaceChildren(
    ...l.users.map((u, i) =>
      h(
        "li",
        {
          role: "option",
          id: `mention-option-${i}`,
          "aria-selected": i === l.index ? "true" : "false",
          class: i === l.index ? "active" : "",
          // The box keeps the focus: a click picks without blurring it.
          onmousedown: (/** @type {MouseEvent} */ ev) => ev.preventDefault(),
          onclick: () => pick(i),
        },
        h("span", { class: "mention-name" }, userName(u)),
        state.users.get(u) ? h("span", { class: "mention-username" }, `@${state.users.get(u)?.profile.username}`) : null,
      ),
    ),
  );
  show(ul, true);
  box().setAttribute("aria-activedescendant", `mention-option-${l.index}`);
}

/** Puts `@Name ` in place of the `@word` typed, and remembers whom it names. */
function pick(/** @type {number} */ i) {
  const c = openConv();
  const l = list;
  const user = l?.users[i];
  if (!c || !l || !user) return;
  const input = box();
  const name = userName(user);
  input.value = `${input.value.slice(0, l.at)}@${name} ${input.value.slice(l.start)}`;
  const caret = l.at + name.length + 2;
  input.setSelectionRange(caret, caret);
  let names = picked.get(c.id);
  if (!names) {
    names = new Map();
    picked.set(c.id, names);
  }
  names.set(name, user);
  closeList();
  autoGrow();
  renderCount();
  saveDraft(c);
}

export function wireCompose() {
  const input = box();
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", "mention-list");
  $("compose-cancel").addEventListener("click", () => {
    const c = openConv();
    if (c) endMode(c);
    input.focus();
  });
  input.addEventListener("input", offerMentions);
  input.addEventListener("blur", () => setTimeout(() => document.activeElement !== input && closeList(), 150));
  // Before the composer's own keys (Enter sends): the mention list and the modes take theirs first.
  $("composer").addEventListener(
    "keydown",
    (ev) => {
      if (ev.target !== input || ev.isComposing) return;
      const c = openConv();
      if (list) {
        const l = list;
        if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          l.index = (l.index + (ev.key === "ArrowDown" ? 1 : -1) + l.users.length) % l.users.length;
          drawList();
        } else if (ev.key === "Enter" || ev.key === "Tab") pick(l.index);
        else if (ev.key === "Escape") closeList();
        else return;
        ev.preventDefault();
        ev.stopPropagation();
        return;
      }
      if (!c) return;
      if (ev.key === "Escape" && modes.has(c.id)) {
        ev.preventDefault();
        ev.stopPropagation();
        endMode(c);
      } else if (ev.key === "ArrowUp" && !input.value && !ev.shiftKey && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
        if (editLast(c)) ev.preventDefault();
      }
    },
    true,
  );
}

onRender("compose", renderCompose);
