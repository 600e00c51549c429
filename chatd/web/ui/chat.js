// @ts-check
// The chat view: the open conversation's header, its messages (history loads
// as the reader scrolls up), read marks, and incoming messages and alerts.

import { ChatError, directConversationId, peerOf } from "../chatcore/web.js";
import { $, field, h, setName, show } from "./dom.js";
import { paintAvatar } from "./avatar.js";
import { dayLabel, presenceText, sameDay, timeFmt } from "./format.js";
import { conv, flush, invalidate, onRender, openConv, pageVisible, rememberUser, state, userName } from "./store.js";
import { discardPending, editPending, loadDraft, saveDraft } from "./composer.js";
import { announce, dismissToast } from "./notify.js";
import { openCard } from "./card.js";
import { richText } from "./richtext.js";

const PAGE = 30;

/** The next render of the messages scrolls to the bottom. */
let stick = false;

/** Adds a stored message to its conversation; `live`: it just arrived. Returns false if it was known. */
export function addMessage(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Message} */ m, /** @type {boolean} */ live) {
  if (m.from === state.me?.user) c.pending.delete(m.client_id);
  if (c.messages.has(m.seq)) return false;
  c.messages.set(m.seq, m);
  c.lastSeq = Math.max(c.lastSeq, m.seq);
  c.lastTs = Math.max(c.lastTs, m.ts);
  if (live && m.from === state.me?.user) c.readSeq = Math.max(c.readSeq, m.seq);
  return true;
}

/** A message new to this device, pushed or synced. */
export function onMessage(/** @type {import("./store.js").Message} */ m) {
  const me = state.me;
  const client = state.client;
  if (!me || !client) return;
  const peer = peerOf(m.conv, me.user);
  if (!peer) return;
  const c = conv(m.conv, peer);
  if (!addMessage(c, m, true)) return;
  if (!state.users.has(peer)) {
    void client.getProfile(peer).then(
      (e) => {
        rememberUser(e);
        invalidate("directory");
      },
      () => {},
    );
  }
  if (state.open === c.id) {
    if (m.from !== me.user && !atBottom()) c.newBelow += 1;
    // A reader above the newest keeps every message on screen in place: the window grows instead of sliding.
    if (!atBottom()) c.shown += 1;
    invalidate("messages");
    markRead(c);
  }
  invalidate("directory");
}

/** Whether the reader is at (or near) the newest message. */
function atBottom() {
  const box = $("messages");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

/** A message arrived in a conversation this device is not focused on. */
export function onAlert(/** @type {{ conv: string, seq: number, from: string, unread: number }} */ a) {
  const me = state.me;
  if (!me) return;
  const peer = peerOf(a.conv, me.user);
  if (!peer) return;
  const c = conv(a.conv, peer);
  if (state.open === c.id && pageVisible()) {
    markRead(c);
    return;
  }
  c.unread = a.unread;
  invalidate("directory", "title");
  const m = c.messages.get(a.seq);
  const text = m?.content.kind === "text" ? m.content.text : "New message";
  const notify = () => announce(userName(a.from), text, () => void openChat(peer), c.id);
  const client = state.client;
  if (state.users.has(a.from) || !client) {
    notify();
    return;
  }
  // Someone new: their name first (the notice waits for it, a moment at most).
  client.getProfile(a.from).then(
    (e) => {
      rememberUser(e);
      invalidate("directory");
      notify();
    },
    notify,
  );
}

/** The open conversation is on screen: everything in it is read. */
export function markRead(/** @type {import("./store.js").Conv} */ c) {
  const client = state.client;
  if (!pageVisible() || !client) return;
  const had = c.unread;
  c.unread = 0;
  if (c.lastSeq > c.readSeq) {
    const seq = c.lastSeq;
    c.readSeq = seq;
    client.read(c.id, seq).catch(() => {
      c.readSeq = 0;
    });
  }
  if (had) invalidate("directory");
  invalidate("title");
}

/** Opens the conversation with `peer`. */
export async function openChat(/** @type {string} */ peer) {
  const me = state.me;
  const client = state.client;
  if (!me || !client) return;
  const c = conv(directConversationId(me.user, peer), peer);
  const previous = openConv();
  const unread = c.unread;
  if (previous !== c) {
    saveDraft(previous);
    c.divider = null;
    c.newBelow = 0;
  }
  state.open = c.id;
  history.replaceState(null, "", `#chat=${encodeURIComponent(peer)}`);
  $("panes").classList.add("show-chat");
  if (previous !== c) loadDraft(c);
  dismissToast(c.id);
  stick = true;
  invalidate("chat", "directory");
  flush();
  client.focus(c.id).catch(() => {});
  if (!state.users.has(peer)) {
    // Opened from the address after a reload: the profile is not known yet.
    void client.getProfile(peer).then(
      (e) => {
        rememberUser(e);
        invalidate("header", "history", "directory");
      },
      () => {},
    );
  }
  if (!c.loaded) await loadOlder(c);
  if (previous !== c && unread > 0) await showUnread(c, unread);
  markRead(c);
  if (matchMedia("(min-width: 721px)").matches) field("composer-text").focus();
}

export function closeChat() {
  saveDraft(openConv());
  state.open = null;
  if (location.hash.startsWith("#chat=")) history.replaceState(null, "", location.pathname + location.search);
  $("panes").classList.remove("show-chat");
  state.client?.focus(undefined).catch(() => {});
  invalidate("chat", "directory");
}

/** No conversation open (a new user on this page). */
export function resetChat() {
  state.open = null;
  $("panes").classList.remove("show-chat");
  invalidate("chat");
}

/**
 * Marks where the `count` unread messages of `c` begin (loading older pages until they are all there, up to a few
 * hundred), and lands the view on the first of them.
 */
async function showUnread(/** @type {import("./store.js").Conv} */ c, /** @type {number} */ count) {
  const me = state.me?.user;
  for (let pages = 0; ; pages++) {
    const theirs = [...c.messages.values()].filter((m) => m.from !== me).sort((a, b) => b.seq - a.seq);
    const first = theirs[Math.min(count, theirs.length) - 1];
    if ((theirs.length >= count || !c.more || pages >= 10) && first) {
      c.divider = { seq: first.seq, count };
      c.shown = Math.max(c.shown, [...c.messages.keys()].filter((seq) => seq >= first.seq).length + 20);
      break;
    }
    if (!c.more || pages >= 10) return;
    await loadOlder(c, false);
  }
  if (state.open !== c.id) return;
  invalidate("messages");
  flush();
  const box = $("messages");
  const divider = /** @type {HTMLElement | null} */ (box.querySelector(".unread-divider"));
  if (divider) box.scrollTop += divider.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
}

/** Loads the page of history before the oldest message shown (`more`: and on until the view can scroll). */
async function loadOlder(/** @type {import("./store.js").Conv} */ c, fill = true) {
  const client = state.client;
  if (!client || c.loading || (c.loaded && !c.more)) return;
  c.loading = true;
  invalidate("history");
  try {
    const seqs = [...c.messages.keys()];
    const before = c.loaded && seqs.length ? Math.min(...seqs) : undefined;
    const page = await client.history(c.id, before === undefined ? { limit: PAGE } : { before, limit: PAGE });
    const box = $("messages");
    const fromBottom = box.scrollHeight - box.scrollTop;
    for (const m of page.messages) addMessage(c, m, false);
    if (c.loaded) c.shown += page.messages.length;
    const first = !c.loaded;
    c.more = page.more;
    c.loaded = true;
    c.loading = false;
    if (state.open === c.id) {
      if (first) stick = true;
      invalidate("messages");
      flush();
      // Keep what was on screen in place while older messages are added above.
      if (!first) box.scrollTop = box.scrollHeight - fromBottom;
      // Not enough to scroll yet: load on until it is, or until the beginning.
      if (fill && c.more && box.scrollHeight <= box.clientHeight + 10) await loadOlder(c);
    }
  } catch (err) {
    c.loading = false;
    if (err instanceof ChatError && err.code === "not_found") {
      // No message yet: the conversation begins with the first one sent.
      c.more = false;
      c.loaded = true;
    } else {
      console.warn("history failed:", err);
    }
  }
  invalidate("history");
}

function renderChat() {
  const c = openConv();
  show($("chat-empty"), !c);
  show($("chat-open"), !!c);
  if (!c) return;
  stick = true;
  invalidate("header", "messages");
}

function renderChatHeader() {
  const c = openConv();
  const u = c && state.users.get(c.peer);
  if (!u) return;
  paintAvatar($("peer-avatar"), u.profile);
  setName($("peer-name"), u.profile.display_name);
  const p = $("peer-presence");
  p.textContent = presenceText(u.presence);
  p.classList.toggle("online", u.presence.online);
}

function renderHistoryStatus() {
  const c = openConv();
  if (!c) return;
  $("history-status").textContent = c.loading
    ? "Loading…"
    : !c.more && c.loaded && c.messages.size <= c.shown
      ? `This is the beginning of your conversation with ${userName(c.peer)}.`
      : "";
}

/** Emoji and nothing else (a few at most): such a message shows large. */
const EMOJI = /^(?:\p{Extended_Pictographic}|\p{Regional_Indicator}|[\u{1F3FB}-\u{1F3FF}\u200D\uFE0F\u20E3]|\s)+$/u;
function emojiOnly(/** @type {string} */ text) {
  return text.length <= 48 && EMOJI.test(text) && /\p{Extended_Pictographic}|\p{Regional_Indicator}/u.test(text);
}

/**
 * One message bubble: stored (with `seq`), or still in the outbox (`pending`, with its actions).
 * @param {{ seq?: number, client_id: string, ts: number, text: string }} m
 * @param {boolean} mine
 * @param {{ c: import("./store.js").Conv, p: import("./store.js").Pending } | undefined} [pending]
 * @param {{ follows: boolean, continues: boolean }} [group] in a run of one sender: after one of it, before one of it
 */
function bubble(m, mine, pending, group = { follows: false, continues: false }) {
  const status = pending?.p.status;
  const offline = state.connection !== "ready";
  /** @type {(import("./dom.js").Child)[]} */
  const meta = [];
  if (!pending) {
    if (!group.continues) meta.push(h("time", { class: "msg-time", datetime: new Date(m.ts).toISOString() }, timeFmt.format(m.ts)));
  }
  else if (status === "failed") {
    const { c, p } = pending;
    meta.push(
      h("span", { class: "msg-error" }, `Not sent: ${p.error ?? ""}`),
      h("button", { type: "button", class: "link edit", onclick: () => editPending(c, p) }, "Edit"),
      h("button", { type: "button", class: "link delete", onclick: () => discardPending(c, p) }, "Delete"),
    );
  } else {
    meta.push(`${offline ? "Waiting for connection" : "Sending…"} · ${timeFmt.format(m.ts)}`);
  }
  return h(
    "li",
    {
      class: `msg ${mine ? "mine" : "theirs"} ${status ?? ""} ${group.follows ? "follows" : ""} ${group.continues ? "continues" : ""}`,
      dataset: m.seq ? { seq: String(m.seq), ts: String(m.ts) } : { pending: m.client_id },
    },
    emojiOnly(m.text) ? h("span", { class: "msg-text emoji-only" }, m.text) : h("span", { class: "msg-text" }, ...richText(m.text)),
    meta.length ? h("span", { class: "msg-meta" }, ...meta) : null,
  );
}

/**
 * Bubbles already built, per conversation, by what they show: a new message adds one node (and rebuilds the one
 * before it when it joins its group) instead of the whole list, so long conversations stay cheap to update.
 * @type {WeakMap<import("./store.js").Conv, Map<string, HTMLElement>>}
 */
const built = new WeakMap();

function renderMessages() {
  const c = openConv();
  const me = state.me;
  if (!c || !me) return;
  const box = $("messages");
  const wasAtBottom = atBottom();
  const cache = built.get(c) ?? new Map();
  /** @type {Map<string, HTMLElement>} */
  const used = new Map();
  /** The cached node for `key`, or a new one from `make`. */
  const node = (/** @type {string} */ key, /** @type {() => HTMLElement} */ make) => {
    const el = cache.get(key) ?? make();
    used.set(key, el);
    return el;
  };
  /** @type {HTMLElement[]} */
  const items = [];
  /** @type {number | null} */
  let lastDay = null;
  // Only the newest `shown` messages are in the page: each render costs what is shown, not the whole history.
  const all = [...c.messages.keys()].sort((a, b) => a - b);
  const seqs = all.length > c.shown ? all.slice(all.length - c.shown) : all;
  const sameRun = (/** @type {import("./store.js").Message | undefined} */ a, /** @type {import("./store.js").Message} */ b) =>
    !!a && a.from === b.from && Math.floor(a.ts / 60_000) === Math.floor(b.ts / 60_000) && c.divider?.seq !== Math.max(a.seq, b.seq);
  for (let i = 0; i < seqs.length; i++) {
    const m = c.messages.get(seqs[i] ?? 0);
    if (!m) continue;
    if (lastDay === null || !sameDay(lastDay, m.ts)) {
      const label = dayLabel(m.ts);
      items.push(node(`day ${m.seq} ${label}`, () => h("li", { class: "day" }, label)));
      lastDay = m.ts;
    }
    const divider = c.divider;
    if (divider?.seq === m.seq) {
      const n = divider.count;
      items.push(
        node(`divider ${m.seq} ${n}`, () =>
          h("li", { class: "unread-divider", role: "separator" }, n === 1 ? "1 unread message" : `${n} unread messages`),
        ),
      );
    }
    // Runs of one sender within one minute are a group: one time label, under its last message.
    const group = { follows: sameRun(c.messages.get(seqs[i - 1] ?? 0), m), continues: sameRun(c.messages.get(seqs[i + 1] ?? 0), m) };
    items.push(
      node(`msg ${m.seq} ${group.follows} ${group.continues}`, () => {
        const text = m.content.kind === "text" ? m.content.text : "";
        return bubble({ seq: m.seq, client_id: m.client_id, ts: m.ts, text }, m.from === me.user, undefined, group);
      }),
    );
  }
  built.set(c, used);
  for (const p of c.pending.values()) items.push(bubble(p, true, { c, p }));
  reconcile($("message-list"), items);
  invalidate("history");
  if (stick || wasAtBottom) {
    box.scrollTop = box.scrollHeight;
    c.newBelow = 0;
  }
  stick = false;
  const pill = $("new-messages");
  pill.textContent = c.newBelow === 1 ? "1 new message ↓" : `${c.newBelow} new messages ↓`;
  show(pill, c.newBelow > 0);
}

/** Makes `parent`'s children `items`, keeping the common run in place (the usual cases: appends, a sliding window). */
function reconcile(/** @type {HTMLElement} */ parent, /** @type {HTMLElement[]} */ items) {
  const kids = parent.children;
  // The window slid (the oldest shown left as new ones came): drop the nodes before the new first one.
  const first = items[0] ? Array.prototype.indexOf.call(kids, items[0]) : -1;
  for (let k = 0; k < first; k++) parent.firstElementChild?.remove();
  let i = 0;
  while (i < items.length && kids[i] === items[i]) i++;
  while (kids.length > i) parent.lastElementChild?.remove();
  parent.append(...items.slice(i));
}

/** Shows more of the messages already in memory above the view, keeping what is on screen in place. */
function showMore(/** @type {import("./store.js").Conv} */ c) {
  const box = $("messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  c.shown += 100;
  invalidate("messages");
  flush();
  box.scrollTop = box.scrollHeight - fromBottom;
}

/** The next render of the messages scrolls to the bottom (the user sent something). */
export function stickToBottom() {
  stick = true;
  invalidate("messages");
}

export function wireChat() {
  $("messages").addEventListener("scroll", () => {
    const c = openConv();
    if (!c) return;
    if ($("messages").scrollTop < 60) {
      if (c.messages.size > c.shown) showMore(c);
      else if (c.more && c.loaded) void loadOlder(c);
    }
    if (c.newBelow && atBottom()) {
      c.newBelow = 0;
      show($("new-messages"), false);
    }
  });
  $("new-messages").addEventListener("click", () => {
    const c = openConv();
    if (c) c.newBelow = 0;
    stickToBottom();
    flush();
    $("messages").focus();
  });
  $("chat-back").addEventListener("click", closeChat);
  $("chat-peer").addEventListener("click", () => {
    const c = openConv();
    if (c) void openCard(c.peer);
  });
  document.addEventListener("visibilitychange", () => {
    const client = state.client;
    if (!state.me || !client) return;
    // The server alerts for messages outside the shown conversation: a hidden page shows none.
    client.focus(pageVisible() && state.open ? state.open : undefined).catch(() => {});
    const c = openConv();
    if (c && pageVisible()) markRead(c);
  });
}

onRender("chat", renderChat);
onRender("header", renderChatHeader);
onRender("messages", renderMessages);
onRender("history", renderHistoryStatus);
