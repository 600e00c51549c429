// @ts-check
// Message requests and group invitations (protocol version 4, PROTOCOL.md):
// what waits for this user's answer, in a Requests view
// of the sidebar apart from the chat list (with a count on its button). A
// message request opens like a chat, its messages read-only, with a bar in
// place of the message box: Accept, Delete, Block (or block and report). A
// group invitation shows the group, who invited and how many are in it, with
// Accept and Decline. `invited` and `answered` pushes, and messages starting
// a request, update the views live; the list is loaded again after every
// sign-in or resume.

import { ChatError } from "../chatcore/web.js";
import { $, h, nameNode, show } from "./dom.js";
import { avatar, groupProfile } from "./avatar.js";
import { clip, describe, ENCRYPTED_TEXT } from "./format.js";
import { readable } from "./e2e.js";
import { closeChat, loadOlderOf, markRead, openChat, refreshConversation } from "./chat.js";
import { confirmBlock } from "./contacts.js";
import { loadConversations } from "./directory.js";
import { toast } from "./notify.js";
import {
  convName,
  flush,
  invalidate,
  learnConversation,
  learnSummary,
  needUsers,
  onRender,
  openConv,
  pageVisible,
  requestConvs,
  state,
} from "./store.js";

/** @typedef {import("./store.js").Conv} Conv */
/** @typedef {import("./store.js").ConversationSummary} ConversationSummary */

/** Every part that shows whether a conversation waits for an answer. @type {import("./store.js").Part[]} */
const SHOWN_IN = ["requests", "directory", "chat", "header", "title"];

/** The requests list, page after page (after every sign-in or resume: pushes may have been missed). */
export async function loadRequests() {
  const client = state.client;
  const me = state.me;
  if (!client || !me) return;
  try {
    const list = await client.allConversations(50, "requests");
    if (state.me !== me) return;
    const listed = new Set(list.map((s) => s.conv));
    // Answered meanwhile on another device (or accepted by becoming contacts): the server knows which way.
    for (const c of requestConvs()) {
      if (listed.has(c.id)) continue;
      c.request = null;
      void refreshConversation(c.id);
    }
    /** @type {string[]} */
    const senders = [];
    for (const s of list) {
      const seen = state.convs.get(s.conv)?.lastSeq ?? 0;
      const c = learnSummary(s);
      if (state.open === s.conv && pageVisible()) c.unread = 0;
      else if (s.last_seq >= seen) c.unread = s.unread;
      if (s.last) senders.push(s.last.from);
    }
    needUsers(senders);
    state.requestsLoaded = true;
    invalidate(...SHOWN_IN);
  } catch (err) {
    console.warn("requests failed:", err);
  }
}

/** Forgets the view (signed out, or another user on this page). */
export function resetRequests() {
  state.requestsLoaded = false;
  state.sidebar = "chats";
  invalidate(...SHOWN_IN);
}

/** Push: this user was invited to a group; it waits in the Requests view. */
export function onInvited(/** @type {ConversationSummary} */ s) {
  const c = learnSummary(s);
  invalidate(...SHOWN_IN);
  const by = s.request?.by;
  toast(convName(c), `${by ? (by.display_name || by.username) : "Someone"} invited you to this group.`, () => void openRequest(c.id), c.id);
}

/** Push: this user answered a request on another device. */
export function onAnswered(/** @type {{ conv: string, accepted: boolean }} */ a) {
  const c = state.convs.get(a.conv);
  if (!c) return;
  if (a.accepted) {
    c.request = null;
    // A group joined: its log is readable from now on.
    if (c.kind === "group") {
      c.loaded = false;
      c.more = true;
      if (state.open === c.id) void loadOlderOf(c);
    }
    void refreshConversation(c.id);
    void loadConversations();
  } else {
    forget(c);
  }
  invalidate(...SHOWN_IN);
}

/** A declined request: its messages are no longer this user's to read; it leaves the page. */
function forget(/** @type {Conv} */ c) {
  if (state.open === c.id) closeChat();
  state.convs.delete(c.id);
  invalidate(...SHOWN_IN);
}

/** Shows the sidebar's Requests view (`focus`: moves the focus to its heading). */
export function showRequests(focus = true) {
  state.sidebar = "requests";
  invalidate("requests");
  flush();
  if (focus) $("requests-heading").focus();
}

/** Back to the chat list. */
function showChats() {
  state.sidebar = "chats";
  invalidate("requests", "directory");
  flush();
  $("requests-button").hidden ? $("search").focus() : $("requests-button").focus();
}

/** Opens a request (the Requests view stays in the sidebar). */
export async function openRequest(/** @type {string} */ id) {
  state.sidebar = "requests";
  invalidate("requests");
  await openChat(id);
}

function requestRow(/** @type {Conv} */ c) {
  const by = c.request?.by;
  if (!by) return "";
  const open = state.open === c.id;
  const byName = by.display_name || by.username;
  const group = c.kind === "group";
  const m = c.last?.message;
  const preview =
    m && (m.content.kind === "text" || m.content.kind === "encrypted")
      ? readable(m).text
      : c.last?.kind === "encrypted"
        ? ENCRYPTED_TEXT
        : c.last?.preview;
  const members = c.memberCount === 1 ? "1 member" : `${c.memberCount} members`;
  return h(
    "li",
    { class: "person-item" },
    h(
      "button",
      {
        type: "button",
        class: `person request ${group ? "group" : ""} ${open ? "active" : ""} ${c.unread ? "has-unread" : ""}`,
        dataset: { conv: c.id, user: by.user, username: by.username, kind: c.kind },
        "aria-current": open ? "true" : undefined,
        onclick: () => void openRequest(c.id),
      },
      group ? avatar(groupProfile(c), undefined) : avatar(by, undefined),
      h(
        "span",
        { class: "person-text" },
        h(
          "span",
          { class: "person-line" },
          h("span", { class: "person-name" }, nameNode(group ? convName(c) : byName)),
          h("span", { class: "request-kind" }, group ? "Invitation" : "Message request"),
        ),
        group
          ? h("span", { class: "person-line" }, h("span", { class: "person-sub" }, "Invited by ", nameNode(byName), ` · ${members}`))
          : h(
              "span",
              { class: "person-line" },
              h("span", { class: "person-sub" }, preview ? clip(preview, 160) : `@${by.username}`),
              c.unread ? h("span", { class: "badge", "aria-label": `${c.unread} unread` }, String(c.unread)) : null,
            ),
      ),
    ),
  );
}

function setText(/** @type {HTMLElement} */ el, /** @type {string} */ text) {
  if (el.textContent !== text) el.textContent = text;
}

function renderRequests() {
  const list = state.me ? requestConvs() : [];
  const n = list.length;
  const requests = state.sidebar === "requests";
  show($("requests-button"), n > 0 && !requests);
  // Drawn on every message (the count may change): the DOM is written only when what it says changes.
  setText($("requests-badge"), String(n));
  setText($("requests-count"), n === 1 ? ", 1 waiting" : `, ${n} waiting`);
  show($("chats-view"), !requests);
  show($("requests-view"), requests);
  if (!requests) return;
  $("requests-list").replaceChildren(...list.map(requestRow));
  const empty = $("requests-empty");
  empty.textContent = state.requestsLoaded ? "No message requests or invitations." : "Loading…";
  show(empty, n === 0);
}

/** The bar in place of the message box while `c` waits for an answer. */
function renderRequestBar() {
  const c = openConv();
  const r = c?.request;
  show($("request-bar"), !!r);
  if (!c || !r) return;
  const byName = r.by.display_name || r.by.username;
  const group = c.kind === "group";
  const text = $("request-text");
  if (group) {
    text.replaceChildren(nameNode(byName), " invited you to ", nameNode(convName(c)), ".");
    $("request-hint").textContent = `${c.memberCount === 1 ? "1 member" : `${c.memberCount} members`}. You join and read the group only if you accept.`;
  } else {
    text.replaceChildren(nameNode(byName), ` (@${r.by.username}) wants to message you.`);
    $("request-hint").textContent = "They are not one of your contacts. Accept to reply; until then they cannot see when you are online.";
  }
  $("request-delete").textContent = group ? "Decline" : "Delete";
  show($("request-block"), !group);
}

/** Runs an answer from the request bar; a refusal shows in the bar. */
async function answer(/** @type {(c: Conv) => Promise<void>} */ run) {
  const c = openConv();
  if (!c?.request) return;
  const error = $("request-error");
  show(error, false);
  const buttons = /** @type {NodeListOf<HTMLButtonElement>} */ ($("request-bar").querySelectorAll("button"));
  for (const b of buttons) b.disabled = true;
  try {
    await run(c);
  } catch (err) {
    // Withdrawn meanwhile (an admin removed the invitation; nobody is told), or answered on another device.
    if (err instanceof ChatError && err.code === "not_found") {
      forget(c);
      $("requests-status").textContent = "That request is no longer there.";
      focusNextRequest();
      return;
    }
    error.textContent = describe(err);
    show(error, true);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

/** After a request left the list: the focus goes to the next one, or back to the list. */
function focusNextRequest() {
  flush();
  const next = /** @type {HTMLElement | null} */ ($("requests-list").querySelector("button.person"));
  if (next && matchMedia("(min-width: 721px)").matches) next.focus();
  else if (state.sidebar === "requests") $("requests-heading").focus();
}

export function wireRequests() {
  $("requests-button").addEventListener("click", () => showRequests());
  $("requests-back").addEventListener("click", showChats);
  // Searching is for chats and people.
  $("search").addEventListener("input", () => {
    if (state.sidebar === "requests") {
      state.sidebar = "chats";
      invalidate("requests", "directory");
    }
  });
  $("request-accept").addEventListener("click", () =>
    void answer(async (c) => {
      const client = state.client;
      if (!client) return;
      const info = await client.accept(c.id);
      learnConversation(info);
      if (c.kind === "group") {
        // A member now: its log from where the group lets new members read.
        c.loaded = false;
        c.more = true;
        needUsers(info.members.map((m) => m.user));
        void loadOlderOf(c);
      }
      state.sidebar = "chats";
      invalidate(...SHOWN_IN, "messages", "history", "group");
      flush();
      markRead(c);
      void loadConversations();
      $("requests-status").textContent = "";
      $("composer-text").focus();
    }),
  );
  $("request-delete").addEventListener("click", () =>
    void answer(async (c) => {
      const client = state.client;
      if (!client) return;
      const name = convName(c);
      const group = c.kind === "group";
      await client.decline(c.id);
      forget(c);
      $("requests-status").textContent = group ? `Invitation to ${name} declined.` : `Request from ${name} deleted.`;
      focusNextRequest();
    }),
  );
  $("request-block").addEventListener("click", () => {
    const c = openConv();
    const by = c?.request?.by.user;
    if (!c || !by) return;
    // Blocking from a request deletes it too; "Block and report" tells the operator first.
    confirmBlock(by, {
      conv: c.id,
      after: async () => {
        const client = state.client;
        if (!client || !c.request) return;
        const name = convName(c);
        await client.decline(c.id);
        forget(c);
        $("requests-status").textContent = `${name} was blocked; the request was deleted.`;
        focusNextRequest();
      },
    });
  });
}

onRender("requests", renderRequests);
onRender("chat", renderRequestBar);
onRender("header", renderRequestBar);

