// @ts-check
// The chat view: the open conversation's header, its messages (history loads
// as the reader scrolls up), read marks, and incoming messages and alerts.

import { ChatError, alerts, isNotice } from "../chatcore/web.js";
import { $, field, h, nameNode, setName, show } from "./dom.js";
import { paintAvatar, groupProfile } from "./avatar.js";
import { dayLabel, describe, noticeText, presenceText, sameDay, timeFmt } from "./format.js";
import { cannotSend, historyPage, isText, isVerified, mediaOf, readable, readKey } from "./e2e.js";
import { messageFrom, typingText, userStopped } from "./typing.js";
import {
  MAX_SHOWN,
  SHOWN,
  contactOf,
  conv,
  convName,
  directWith,
  flush,
  invalidate,
  isMuted,
  learnConversation,
  needUsers,
  onRender,
  openConv,
  pageVisible,
  state,
  userName,
} from "./store.js";
import { discardPending, editPending, loadDraft, saveDraft } from "./composer.js";
import { announce, dismissToast, toast } from "./notify.js";
import { openCard } from "./card.js";
import { openGroup } from "./group.js";
import { openMute } from "./mute.js";
import { richText } from "./richtext.js";
import { loadReceipts, refreshTicks, ticks } from "./receipts.js";
import { decorate, inTimeline, learn, learnRelated, mentionsMe, shownOf } from "./life.js";
import { endMode } from "./compose.js";
import { TIMER_NAMES } from "./format.js";
import { afterRender, pendingBubble, senderName, withMedia } from "./mediaview.js";

const PAGE = 30;

/** The next render of the messages scrolls to the bottom. */
let stick = false;

/**
 * The reader is at the newest message: what arrives scrolls into view and the window slides along. Set from the
 * reader's scrolling, never by measuring as messages arrive (a measure per message would force a layout each).
 */
let pinned = true;

/** Where the view was scrolled to last (by the reader or by this page), to tell the reader's scrolling up. */
let lastTop = 0;

/** Scrolls the view to the newest message. */
function toBottom(/** @type {HTMLElement} */ box) {
  box.scrollTop = box.scrollHeight;
  lastTop = box.scrollTop;
}

/** The conversation the chat view last showed (switching to another starts at its newest message). */
let shownConv = "";

/** The index of the first seq above `seq` in `seqs` (ascending). */
function above(/** @type {number[]} */ seqs, /** @type {number} */ seq) {
  let lo = 0;
  let hi = seqs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((seqs[mid] ?? 0) <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The messages of `c` in the page, as indexes into `c.seqs`: from `from` up to, not including, `to`. */
function windowOf(/** @type {import("./store.js").Conv} */ c) {
  const to = c.end ? above(c.seqs, c.end) : c.seqs.length;
  return { from: Math.max(0, to - c.shown), to };
}

/** Adds a stored message to its conversation; `live`: it just arrived. Returns false if it was known. */
export function addMessage(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Message} */ m, /** @type {boolean} */ live) {
  if (m.from === state.me?.user) {
    // A photo on its way had a preview of its own: let go with its bubble.
    const preview = c.pending.get(m.client_id)?.media?.preview;
    if (preview) URL.revokeObjectURL(preview);
    c.pending.delete(m.client_id);
  }
  if (c.messages.has(m.seq)) return false;
  c.messages.set(m.seq, m);
  // Into the book of each message's latest state: an edit, reaction or deletion changes the message it points at.
  learn(c, m);
  const seqs = c.seqs;
  if (!seqs.length || m.seq > (seqs[seqs.length - 1] ?? 0)) seqs.push(m.seq);
  else seqs.splice(above(seqs, m.seq), 0, m.seq);
  c.lastSeq = Math.max(c.lastSeq, m.seq);
  c.lastTs = Math.max(c.lastTs, m.ts);
  if (m.content.kind !== "void" && (!c.last || m.seq >= c.last.seq)) {
    c.last = { seq: m.seq, ts: m.ts, from: m.from, kind: m.content.kind, message: m };
  }
  if (live && m.from === state.me?.user) c.readSeq = Math.max(c.readSeq, m.seq);
  return true;
}

/** Conversations being fetched (`get_conversation`). @type {Map<string, Promise<void>>} */
const fetchingConv = new Map();

/** Learns (again) what the server says of conversation `id`: kind, title, members, this user's role. */
export function refreshConversation(/** @type {string} */ id) {
  const client = state.client;
  if (!client) return Promise.resolve();
  let p = fetchingConv.get(id);
  if (p) return p;
  p = client.getConversation(id).then(
    (info) => {
      fetchingConv.delete(id);
      const c = learnConversation(info);
      // Opened before it was known (from the address): a request shows beside the Requests view.
      if (state.open === id && c.request) state.sidebar = "requests";
      needUsers(info.members.map((m) => m.user));
      if (c.kind === "direct") needUsers([c.peer]);
      invalidate("directory", "requests", "header", "messages", "history", "group", "chat");
    },
    (/** @type {unknown} */ err) => {
      fetchingConv.delete(id);
      // No such conversation for this user (an old or foreign address): nothing to show.
      if (err instanceof ChatError && err.code === "not_found" && !state.convs.get(id)?.known) {
        if (state.open === id) closeChat();
        state.convs.delete(id);
        invalidate("directory", "requests");
      }
    },
  );
  fetchingConv.set(id, p);
  return p;
}

/** What a notice changes in the page's state: members and roles (fetched anew), and whether this user is still in. */
function applyNotice(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Message} */ m) {
  const me = state.me?.user;
  const n = m.content;
  if (n.kind === "void") return;
  if ((n.kind === "member_removed" && n.user === me) || (n.kind === "member_left" && m.from === me)) {
    c.left = true;
    c.role = undefined;
    c.pending.clear();
    invalidate("chat", "header", "group");
  }
  if (n.kind === "group_updated" && n.title !== undefined) c.title = n.title;
  if (n.kind === "group_updated" && n.description !== undefined) c.description = n.description;
  if (n.kind === "group_updated" && n.history_visible !== undefined) c.historyVisible = n.history_visible;
  if (n.kind === "timer_changed") {
    c.expireAfter = n.expire_after ?? 0;
    invalidate("header");
  }
  /** @type {string[]} */
  const ids = [m.from];
  if (n.kind === "members_added") ids.push(...n.users);
  if (n.kind === "member_removed" || n.kind === "role_changed") ids.push(n.user);
  if (n.kind === "member_left" && n.new_owner) ids.push(n.new_owner);
  if (n.kind === "group_created") ids.push(...n.members);
  needUsers(ids);
  void refreshConversation(c.id);
}

/** A message new to this device, pushed or synced. */
export function onMessage(/** @type {import("./store.js").Message} */ m) {
  const me = state.me;
  const client = state.client;
  if (!me || !client) return;
  const c = conv(m.conv);
  if (!addMessage(c, m, true)) return;
  messageFrom(m.conv, m.from);
  // An alert that came before its message (an encrypted one is read first) is shown now, with the text.
  const alerted = awaitingAlert.get(`${m.conv} ${m.seq}`);
  if (alerted) {
    awaitingAlert.delete(`${m.conv} ${m.seq}`);
    alerted();
  }
  if (!c.known) void refreshConversation(c.id);
  if (isNotice(m.content)) applyNotice(c, m);
  else needUsers([m.from]);
  // A muted conversation gets no alert from the server, so the alert's +1 is counted here (no sound, no notice).
  // Edits, reactions and deletions are not unread (the server raises no alert for them either).
  const away = !(state.open === c.id && pageVisible()) && m.seq > c.readSeq;
  if (alerts(m) && m.from !== me.user && isMuted(c) && away) {
    c.unread += 1;
    invalidate("title");
  }
  if (mentionsMe(m) && away) c.mentions += 1;
  if (state.open === c.id) {
    if (!pinned) {
      if (m.from !== me.user && alerts(m)) c.newBelow += 1;
      // A reader above the newest keeps every message on screen in place: the window grows instead of sliding,
      // up to its cap; then it holds still, and what arrives waits below it (the pill, or scrolling, shows it).
      if (!c.end && c.shown < MAX_SHOWN) c.shown += 1;
      else if (!c.end) {
        const last = c.seqs.length - 1;
        c.end = (c.seqs[last] === m.seq ? c.seqs[last - 1] : c.seqs[last]) ?? 0;
      }
    }
    invalidate("messages");
    markRead(c);
  }
  invalidate("directory", "requests");
}

/** Whether the reader is at (or near) the newest message. */
function atBottom() {
  const box = $("messages");
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

/** Alerts waiting for their message, by `conv seq`: the server's alert may come first. @type {Map<string, () => void>} */
const awaitingAlert = new Map();

/** A message from someone else arrived in a conversation this device is not focused on: one more unread. */
export function onAlert(/** @type {{ conv: string, seq: number, from: string }} */ a) {
  const me = state.me;
  if (!me) return;
  const c = conv(a.conv);
  if (state.open === c.id && pageVisible()) {
    markRead(c);
    return;
  }
  if (a.seq > c.readSeq) c.unread += 1;
  invalidate("directory", "requests", "title");
  // The server raises no alert for a muted conversation; a mute set on another device a moment ago is honoured too.
  if (isMuted(c)) return;
  const notify = () => {
    const m = c.messages.get(a.seq);
    // Not here yet, or not read yet (an encrypted message is decrypted first): announced when it comes.
    if (!m || (m.content.kind === "encrypted" && !state.reads.has(m.id))) {
      awaitingAlert.set(`${a.conv} ${a.seq}`, notify);
      // Bounded: an alert whose message never comes is forgotten after a hundred others.
      if (awaitingAlert.size > 100) awaitingAlert.delete(awaitingAlert.keys().next().value ?? "");
      return;
    }
    const text = m ? readable(m).text || "New message" : "New message";
    if (c.kind === "group") announce(convName(c), `${userName(a.from)}: ${text}`, () => void openChat(c.id), c.id);
    else announce(userName(a.from), c.request ? `Message request: ${text}` : text, () => void openChat(c.id), c.id);
  };
  const client = state.client;
  if ((state.users.has(a.from) && c.known) || !client) {
    notify();
    return;
  }
  // Someone new, or a group this page has not seen: their names first (the notice waits for them, a moment at most).
  Promise.all([
    c.known ? null : refreshConversation(c.id),
    state.users.has(a.from) ? null : client.getProfile(a.from).then((e) => state.users.set(e.profile.user, { profile: e.profile, presence: e.presence }), () => {}),
  ]).then(() => {
    invalidate("directory");
    notify();
  });
}

/** Another device of this user read `conv` up to `seq`: nothing there is unread here either. */
export function onRead(/** @type {{ conv: string, seq: number }} */ r) {
  const c = state.convs.get(r.conv);
  if (!c) return;
  c.readSeq = Math.max(c.readSeq, r.seq);
  c.unread = 0;
  c.mentions = 0;
  c.divider = null;
  dismissToast(c.id);
  invalidate("directory", "requests", "title", "messages");
}

/** The open conversation is on screen: everything in it is read. */
export function markRead(/** @type {import("./store.js").Conv} */ c) {
  const client = state.client;
  if (!pageVisible() || !client) return;
  const had = c.unread + c.mentions;
  c.unread = 0;
  c.mentions = 0;
  if (c.lastSeq > c.readSeq) {
    c.readSeq = c.lastSeq;
    sendRead(c);
  }
  if (had) invalidate("directory", "requests");
  invalidate("title");
}

/** Conversations with a `read` on its way. @type {Set<string>} */
const reading = new Set();

/**
 * Tells the server that `c` is read up to `c.readSeq`: one request at a time per conversation, and when it is
 * answered, one more if more was read meanwhile. A burst of messages on screen costs a few requests, not one each
 * (which would also run into the server's request rate limit).
 */
function sendRead(/** @type {import("./store.js").Conv} */ c) {
  const client = state.client;
  if (!client || reading.has(c.id)) return;
  reading.add(c.id);
  const seq = c.readSeq;
  client.read(c.id, seq).then(
    () => {
      reading.delete(c.id);
      if (c.readSeq > seq) sendRead(c);
    },
    () => {
      reading.delete(c.id);
      // Not told: the next markRead tells it again.
      c.readSeq = 0;
    },
  );
}

/** Opens the direct conversation with `user`: the one this page knows, else the server opens it. */
export async function openChatWith(/** @type {string} */ user) {
  const client = state.client;
  if (!client) return;
  const known = directWith(user);
  if (known) return openChat(known.id);
  try {
    // Encrypted from the first message (and turned on when it was not yet): this page writes nothing in clear.
    const info = await client.openDirect(user, { encrypted: true });
    learnConversation(info);
    await openChat(info.conv);
  } catch (err) {
    // Refused (their privacy setting, a block) or failed: said, not swallowed, or the click would do nothing.
    toast(userName(user), describe(err), undefined, `open ${user}`);
  }
}

/** Opens conversation `id` (an id the server gave). */
export async function openChat(/** @type {string} */ id) {
  const me = state.me;
  const client = state.client;
  if (!me || !client) return;
  const c = conv(id);
  const previous = openConv();
  const unread = c.unread;
  if (previous !== c) {
    // An edit under way ends there (the box gets back what it held); a reply waits for its conversation.
    if (previous) endMode(previous);
    saveDraft(previous);
    userStopped();
    c.divider = null;
    c.newBelow = 0;
  }
  state.open = c.id;
  // A request shows beside the Requests view, a chat beside the chat list.
  if (c.known) state.sidebar = c.request ? "requests" : "chats";
  history.replaceState(null, "", `#chat=${encodeURIComponent(c.id)}`);
  $("panes").classList.add("show-chat");
  if (previous !== c) loadDraft(c);
  dismissToast(c.id);
  stick = true;
  invalidate("chat", "directory", "requests");
  flush();
  // The answer (a request) or the message box has the focus as soon as the chat shows, not after its history loaded:
  // what the user does meanwhile is not taken back by a late focus.
  focusAnswer(c);
  client.focus(c.id).catch(() => {});
  // Members and roles may have changed since the list was loaded; opened from the address, nothing is known yet.
  if (!c.known || c.kind === "group" || !state.users.has(c.peer)) void refreshConversation(c.id);
  if (!c.loaded) await loadOlder(c);
  // The ticks of this user's messages: what rose since the page last asked.
  loadReceipts(c);
  if (previous !== c && unread > 0) await showUnread(c, unread);
  markRead(c);
  // Opened from the address, whether it is a request was learnt meanwhile: the focus moves to the answer then.
  const active = document.activeElement;
  if (state.open === c.id && (active === document.body || active === $("request-accept") || active === $("composer-text"))) focusAnswer(c);
}

/** On a wide screen, the focus goes to a request's accept button, else to the message box (a phone keeps its keyboard down). */
function focusAnswer(/** @type {import("./store.js").Conv} */ c) {
  if (matchMedia("(min-width: 721px)").matches && !c.left) (c.request ? $("request-accept") : field("composer-text")).focus();
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
  awaitingAlert.clear();
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
    const theirs = [...c.messages.values()].filter((m) => m.from !== me && alerts(m)).sort((a, b) => b.seq - a.seq);
    const first = theirs[Math.min(count, theirs.length) - 1];
    if ((theirs.length >= count || !c.more || pages >= 10) && first) {
      c.divider = { seq: first.seq, count };
      c.end = 0;
      c.shown = Math.min(MAX_SHOWN, Math.max(c.shown, c.seqs.length - above(c.seqs, first.seq - 1) + 20));
      break;
    }
    if (!c.more || pages >= 10) return;
    await loadOlder(c, false);
  }
  if (state.open !== c.id) return;
  // The view lands on the divider, not on the newest message.
  pinned = false;
  invalidate("messages");
  flush();
  const box = $("messages");
  const divider = /** @type {HTMLElement | null} */ (box.querySelector(".unread-divider"));
  if (divider) box.scrollTop += divider.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
  lastTop = box.scrollTop;
  pinned = atBottom();
}

/** Loads the page of history before the oldest message shown (`more`: and on until the view can scroll). */
async function loadOlder(/** @type {import("./store.js").Conv} */ c, fill = true) {
  const client = state.client;
  if (!client || c.loading || (c.loaded && !c.more)) return;
  // Invited, not a member: nothing to read until the invitation is accepted.
  if (c.request && c.kind === "group") {
    c.loaded = true;
    c.more = false;
    invalidate("history");
    return;
  }
  c.loading = true;
  invalidate("history");
  try {
    const before = c.loaded ? c.seqs[0] : undefined;
    const page = await historyPage(c, before === undefined ? { limit: PAGE } : { before, limit: PAGE });
    const first = !c.loaded;
    const add = () => {
      // What the page's messages need to be shown as they are now (edits, reactions, deletions, quotes): not on the page.
      learnRelated(c, page.related ?? []);
      for (const m of page.messages) addMessage(c, m, false);
      if (!first) growUp(c, page.messages.length);
      c.more = page.more;
      c.loaded = true;
      c.loading = false;
    };
    if (state.open !== c.id) add();
    else if (first) {
      add();
      stick = true;
      invalidate("messages");
      flush();
    } else {
      // Keep what was on screen in place while older messages are added above.
      keepPlace(add);
    }
    const box = $("messages");
    // Not enough to scroll yet: load on until it is, or until the beginning.
    if (state.open === c.id && fill && c.more && box.scrollHeight <= box.clientHeight + 10) await loadOlder(c);
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

/** Loads the first (or next) page of `c`'s history (a group just joined). */
export function loadOlderOf(/** @type {import("./store.js").Conv} */ c) {
  return loadOlder(c);
}

const MEMORY_ONLY =
  "This browser keeps no data for this site (a private window?): your encryption keys last only as long as this page. " +
  "After a reload, messages sent to you before it cannot be read here.";

function renderChat() {
  const c = openConv();
  show($("chat-empty"), !c);
  show($("chat-open"), !!c);
  if (!c) return;
  // A former member reads up to where it left, and writes no more; nor does one who blocks the peer, until unblocking.
  const blocked = !c.left && c.kind === "direct" && !!c.peer && contactOf(c.peer).blocked;
  // A request is read, not answered, until accepted: the request bar (requests.js) stands in for the message box.
  // An encrypted conversation this browser cannot encrypt for (its keys do not open) is read-only: never a clear text.
  const refused = cannotSend(c);
  show($("composer"), !c.left && !blocked && !c.request && !refused);
  const note = refused ?? (c.encrypted && state.e2e.memoryOnly ? MEMORY_ONLY : "");
  $("e2e-note").textContent = note;
  show($("e2e-note"), !!note && !c.left);
  show($("chat-left"), c.left && !c.request);
  show($("chat-blocked"), blocked && !c.request);
  if (shownConv !== c.id) {
    shownConv = c.id;
    stick = true;
  }
  invalidate("header", "messages");
}

function renderChatHeader() {
  const c = openConv();
  if (!c) return;
  const muted = isMuted(c);
  show($("peer-muted"), muted);
  show($("peer-lock"), c.encrypted);
  show($("peer-verified"), c.kind === "direct" && !!c.peer && isVerified(c.peer));
  const timer = /** @type {HTMLSelectElement} */ ($("chat-timer"));
  timer.value = String(c.expireAfter);
  timer.parentElement?.classList.toggle("on", c.expireAfter > 0);
  // Any member of a direct conversation sets it, an admin of a group.
  timer.disabled = c.left || !!c.request || (c.kind === "group" && c.role !== "admin" && c.role !== "owner");
  const muteButton = $("chat-mute");
  muteButton.textContent = muted ? "Unmute" : "Mute";
  muteButton.setAttribute("aria-label", muted ? "Unmute notifications" : "Mute notifications");
  // Nothing to mute in a group this user is only invited to.
  show(muteButton, !(c.request && c.kind === "group"));
  const p = $("peer-presence");
  if (c.kind === "group") {
    paintAvatar($("peer-avatar"), groupProfile(c));
    setName($("peer-name"), convName(c));
    p.textContent =
      typingText(c) ?? (c.left ? "You are no longer a member" : c.memberCount === 1 ? "1 member" : `${c.memberCount} members`);
    p.classList.remove("online");
    $("chat-peer").title = "Group info";
  } else {
    const u = state.users.get(c.peer);
    $("chat-peer").title = "Contact card";
    if (!u) return;
    paintAvatar($("peer-avatar"), u.profile);
    setName($("peer-name"), u.profile.display_name);
    p.textContent = typingText(c) ?? presenceText(u.presence);
    p.classList.toggle("online", u.presence.online);
  }
  p.classList.toggle("typing", typingText(c) !== null);
}

function renderHistoryStatus() {
  const c = openConv();
  if (!c) return;
  $("history-status").textContent = c.loading
    ? "Loading…"
    : c.request && c.kind === "group"
      ? "Accept the invitation to read the group."
      : !c.more && c.loaded && windowOf(c).from === 0
      ? c.kind === "group"
        ? `This is the beginning of “${convName(c)}”.`
        : `This is the beginning of your conversation with ${userName(c.peer)}.`
      : "";
}

/** Emoji and nothing else (a few at most): such a message shows large. */
const EMOJI = /^(?:\p{Extended_Pictographic}|\p{Regional_Indicator}|[\u{1F3FB}-\u{1F3FF}\u200D\uFE0F\u20E3]|\s)+$/u;
function emojiOnly(/** @type {string} */ text) {
  return text.length <= 48 && EMOJI.test(text) && /\p{Extended_Pictographic}|\p{Regional_Indicator}/u.test(text);
}

/**
 * One message bubble: stored (with `seq`), or still in the outbox (`pending`, with its actions).
 * @param {{ seq?: number, client_id: string, ts: number, text: string, note?: boolean }} m m.note: the text says why the message cannot be read
 * @param {boolean} mine
 * @param {{ c: import("./store.js").Conv, p: import("./store.js").Pending } | undefined} [pending]
 * @param {{ follows: boolean, continues: boolean }} [group] in a run of one sender: after one of it, before one of it
 * @param {string} [sender] the sender's id, named above the first message of a run in a group
 * @param {import("./store.js").Conv} [stored] the conversation of this user's stored message, whose ticks it shows
 */
function bubble(m, mine, pending, group = { follows: false, continues: false }, sender = undefined, stored = undefined) {
  const status = pending?.p.status;
  const offline = state.connection !== "ready";
  /** @type {(import("./dom.js").Child)[]} */
  const meta = [];
  if (!pending) {
    if (!group.continues) meta.push(h("time", { class: "msg-time", datetime: new Date(m.ts).toISOString() }, timeFmt.format(m.ts)));
    if (stored && m.seq) meta.push(ticks(stored, m.seq));
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
  const big = !m.note && emojiOnly(m.text);
  const li = h(
    "li",
    {
      class: `msg ${mine ? "mine" : "theirs"} ${status ?? ""} ${group.follows ? "follows" : ""} ${group.continues ? "continues" : ""}`,
      dataset: m.seq ? { seq: String(m.seq), ts: String(m.ts) } : { pending: m.client_id },
    },
    sender ? h("span", { class: "msg-sender", dataset: { user: sender } }, nameNode(userName(sender))) : null,
    big
      ? h("span", { class: "msg-text emoji-only" }, m.text)
      : m.note
        ? h("span", { class: "msg-text msg-note" }, m.text)
        : h("span", { class: "msg-text" }, ...richText(m.text)),
    meta.length ? h("span", { class: "msg-meta" }, ...meta) : null,
  );
  if (!big) li.style.containIntrinsicBlockSize = `auto ${(lines(m.text) * 1.4 + 1.6).toFixed(1)}em`;
  return li;
}

/**
 * About how many lines `text` takes in a bubble: the height a bubble is given (content-visibility) until it is
 * first laid out. A bubble laid out in the task that adds it costs its whole text even off screen; one that
 * is off screen from the start is skipped, as long as the placeholders above it do not pull it into view: the
 * closer the guess, the fewer bubbles a burst lays out at once.
 */
function lines(/** @type {string} */ text) {
  // A bubble is at most 560 px wide (less on a phone); about 9 px a character.
  const perLine = Math.max(16, Math.floor(Math.min(560, innerWidth * 0.75) / 9));
  let n = 0;
  let at = 0;
  for (;;) {
    const nl = text.indexOf("\n", at);
    const len = (nl === -1 ? text.length : nl) - at;
    n += Math.max(1, Math.ceil(len / perLine));
    if (nl === -1) return n;
    at = nl + 1;
  }
}

/**
 * Rows already built, per conversation, by what they show: a new message adds one node (and rebuilds the one
 * before it when it joins its group) instead of the whole list, so long conversations stay cheap to update.
 * @type {WeakMap<import("./store.js").Conv, Map<string, HTMLElement>>}
 */
const built = new WeakMap();

/**
 * What one render may spend on new rows, in characters of their text (and 200 a row): a burst (hundreds of
 * messages at once after a reconnect, or while the page could not draw) is drawn over a few frames, none long.
 */
const BUDGET = 30_000;

/** A render left rows of the window for the next frame. */
let refill = false;

/**
 * One message of the window as rows: the day label or unread divider before it, if any, then the message or
 * notice. `key`: what the row shows (a cached node with the same key is reused); `make` builds it.
 * @typedef {{ rows: Array<{ key: string, make: () => HTMLElement, refresh?: (el: HTMLElement) => void }>, cost: number }} Unit
 */

function renderMessages() {
  const c = openConv();
  const me = state.me;
  if (!c || !me) return;
  const box = $("messages");
  if (stick) {
    pinned = true;
    c.shown = SHOWN;
    c.end = 0;
  }
  const cache = built.get(c) ?? new Map();
  /** @type {Unit[]} */
  const units = [];
  /** @type {number | null} */
  let lastDay = null;
  // Only the window is in the page: each render costs what is shown, not the whole history.
  const { from, to } = windowOf(c);
  const seqs = c.seqs.slice(from, to);
  const sameRun = (/** @type {import("./store.js").Message | undefined} */ a, /** @type {import("./store.js").Message} */ b) =>
    !!a &&
    inTimeline(a) &&
    a.from === b.from &&
    // Texts, plain or decrypted: a notice or a message that cannot be read stands alone.
    isText(a) &&
    isText(b) &&
    Math.floor(a.ts / 60_000) === Math.floor(b.ts / 60_000) &&
    c.divider?.seq !== Math.max(a.seq, b.seq);
  const group = c.kind === "group";
  for (let i = 0; i < seqs.length; i++) {
    const m = c.messages.get(seqs[i] ?? 0);
    // Edits, reactions and deletions change the message they point at; expired and hidden messages are gone.
    if (!m || !inTimeline(m)) continue;
    /** @type {Unit} */
    const unit = { rows: [], cost: 0 };
    units.push(unit);
    if (lastDay === null || !sameDay(lastDay, m.ts)) {
      const label = dayLabel(m.ts);
      unit.rows.push({ key: `day ${m.seq} ${label}`, make: () => h("li", { class: "day" }, label) });
      lastDay = m.ts;
    }
    const divider = c.divider;
    if (divider?.seq === m.seq) {
      const n = divider.count;
      unit.rows.push({
        key: `divider ${m.seq} ${n}`,
        // A list item, not a separator: <ol> allows nothing else (axe: "list").
        make: () => h("li", { class: "unread-divider" }, n === 1 ? "1 unread message" : `${n} unread messages`),
      });
    }
    if (isNotice(m.content)) {
      // A change of the group: a centred line, in order with the messages. Names may arrive later: part of the key.
      const text = noticeText(m.from, m.content) ?? "";
      unit.rows.push({
        key: `notice ${m.seq} ${text}`,
        make: () => h("li", { class: "notice-line", dataset: { seq: String(m.seq), kind: m.content.kind } }, h("span", {}, text)),
      });
    } else {
      // Runs of one sender within one minute are a run: one time label, under its last message; in a group, the
      // sender's name above its first.
      const run = { follows: sameRun(c.messages.get(seqs[i - 1] ?? 0), m), continues: sameRun(c.messages.get(seqs[i + 1] ?? 0), m) };
      const named = group && m.from !== me.user && !run.follows;
      // An encrypted message shows what this device reads of it: its text, or why not (yet); edited, its latest
      // text; deleted, "Message deleted" (ui/life.js).
      const life = shownOf(m);
      // A photo, file or voice note shows as what it is (its caption as its text), unless it was deleted.
      const media = life.view.deleted ? undefined : mediaOf(m);
      const { text, note } = media ? { text: media.kind === "image" ? (media.caption ?? "") : "", note: false } : life;
      const mine = m.from === me.user;
      unit.rows.push({
        key: `msg ${m.seq} ${run.follows} ${run.continues} ${readKey(m)}${named ? ` ${userName(m.from)}` : ""} ${life.key}`,
        make: () => {
          const li = decorate(bubble({ seq: m.seq, client_id: m.client_id, ts: m.ts, text, note }, mine, undefined, run, named ? m.from : undefined, mine ? c : undefined), c, m, life);
          return media ? withMedia(li, media, senderName(m.from)) : li;
        },
        // Ticks change in place: a row built again would be laid out anew, and one above the reader could move the view.
        refresh: mine ? (el) => refreshTicks(el, c, m.seq) : undefined,
      });
      unit.cost = text.length;
    }
    // What changed in the members' keys after this message ("Bob added a new device"), as this page saw it.
    for (const w of c.warnings) {
      if (w.seq !== m.seq) continue;
      unit.rows.push({
        key: `warning ${m.seq} ${w.ts} ${w.text}`,
        make: () => h("li", { class: "notice-line e2e-warning" }, h("span", {}, w.text)),
      });
    }
    unit.cost = unit.rows.some((r) => !cache.has(r.key)) ? unit.cost + 200 : 0;
  }
  const [a, b] = toBuild(units);
  /** @type {Map<string, HTMLElement>} */
  const used = new Map();
  /** @type {HTMLElement[]} */
  const items = [];
  for (let i = 0; i < units.length; i++) {
    for (const r of units[i]?.rows ?? []) {
      const el = i >= a && i < b ? (cache.get(r.key) ?? r.make()) : cache.get(r.key);
      if (!el) continue;
      if (i >= a && i < b) r.refresh?.(el);
      // Rows of the window left out of this render stay cached for the next.
      used.set(r.key, el);
      if (i >= a && i < b) items.push(el);
    }
  }
  built.set(c, used);
  // Unsent messages come after the newest, so only a window drawn up to it shows them.
  if (!c.end && b === units.length) for (const p of c.pending.values()) items.push(p.media ? pendingBubble(c, p) : bubble(p, true, { c, p }));
  reconcile($("message-list"), items);
  // Files of rows that left are let go; photos of rows that came are fetched.
  afterRender($("message-list"));
  if ((a > 0 || b < units.length) && !refill) {
    refill = true;
    setTimeout(() => {
      refill = false;
      invalidate("messages");
    });
  }
  invalidate("history");
  if (pinned) {
    toBottom(box);
    c.newBelow = 0;
  }
  stick = false;
  const pill = $("new-messages");
  pill.textContent = c.newBelow === 1 ? "1 new message ↓" : `${c.newBelow} new messages ↓`;
  show(pill, c.newBelow > 0);
}

/**
 * Which units of the window this render draws, [a, b): at most `BUDGET` of new rows, the rest in later frames.
 * At the bottom, the newest first (what the reader sees), and older ones above as the budget allows. Above it,
 * everything up to the newest row already drawn (what the reader scrolled to, or opened), then newer ones below
 * the view as the budget allows; when nothing is drawn yet (a conversation just opened), all of it.
 */
function toBuild(/** @type {Unit[]} */ units) {
  let spend = BUDGET;
  if (pinned) {
    let a = units.length;
    for (; a > 0; a--) {
      const cost = units[a - 1]?.cost ?? 0;
      if (cost > spend && a < units.length) break;
      spend -= cost;
    }
    return [a, units.length];
  }
  let last = -1;
  for (let i = 0; i < units.length; i++) if (units[i]?.cost === 0) last = i;
  if (last === -1) return [0, units.length];
  let b = last + 1;
  for (; b < units.length; b++) {
    const cost = units[b]?.cost ?? 0;
    if (cost > spend && b > last + 1) break;
    spend -= cost;
  }
  return [0, b];
}

/** Makes `parent`'s children `items`, in order, moving no node that stays (appends, prepends, a sliding window). */
function reconcile(/** @type {HTMLElement} */ parent, /** @type {HTMLElement[]} */ items) {
  const keep = new Set(items);
  for (const el of [...parent.children]) if (!keep.has(/** @type {HTMLElement} */ (el))) el.remove();
  let at = parent.firstElementChild;
  for (const el of items) {
    if (el === at) at = at.nextElementSibling;
    else parent.insertBefore(el, at);
  }
}

/**
 * Runs `change` (of the window or the messages in it), redraws the messages, and scrolls so that the message at
 * the top of the view stays where it was: rows added or dropped above it do not move what the reader reads.
 */
function keepPlace(/** @type {() => void} */ change) {
  const box = $("messages");
  const top = box.getBoundingClientRect().top;
  const rows = $("message-list").children;
  // The first row reaching into the view (rows are in vertical order: a binary search, not a measure of each).
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((rows[mid]?.getBoundingClientRect().bottom ?? 0) <= top) lo = mid + 1;
    else hi = mid;
  }
  // A message, not a day label (the window's first row always has one, and it goes when the window grows).
  /** @type {Element | null} */
  let anchor = rows[lo] ?? null;
  while (anchor && !(/** @type {HTMLElement} */ (anchor).dataset.seq)) anchor = anchor.nextElementSibling;
  const seq = anchor ? /** @type {HTMLElement} */ (anchor).dataset.seq : undefined;
  const before = anchor?.getBoundingClientRect().top ?? 0;
  change();
  invalidate("messages");
  flush();
  // Found again by its seq: its row may have been rebuilt (it joined the run of the message now above it).
  const after = seq ? box.querySelector(`#message-list [data-seq="${seq}"]`) : null;
  if (after) box.scrollTop += after.getBoundingClientRect().top - before;
  lastTop = box.scrollTop;
}

/** The window takes in `n` more messages above it; past its cap it drops as many at its end (below the view). */
function growUp(/** @type {import("./store.js").Conv} */ c, /** @type {number} */ n) {
  const { to } = windowOf(c);
  const rows = Math.min(c.shown + n, to);
  c.shown = rows;
  if (rows > MAX_SHOWN) {
    c.end = c.seqs[to - 1 - (rows - MAX_SHOWN)] ?? c.end;
    c.shown = MAX_SHOWN;
    pinned = false;
  }
}

/** Shows more of the messages already in memory above the view, keeping what is on screen in place. */
function showMore(/** @type {import("./store.js").Conv} */ c) {
  keepPlace(() => growUp(c, 100));
}

/** Moves a window that holds still below the newest message on by 100 messages (the reader nears its end). */
function showNewer(/** @type {import("./store.js").Conv} */ c) {
  keepPlace(() => {
    const next = above(c.seqs, c.end) - 1 + 100;
    c.end = next >= c.seqs.length - 1 ? 0 : (c.seqs[next] ?? 0);
  });
}

/** The next render of the messages scrolls to the newest message (the user sent something, or asked for it). */
export function stickToBottom() {
  stick = true;
  invalidate("messages");
}

export function wireChat() {
  const box = $("messages");
  box.addEventListener("scroll", () => {
    const c = openConv();
    if (!c) return;
    // Rows growing or going under a view at the bottom move it without the reader: only scrolling up unpins it.
    if (atBottom()) pinned = !c.end;
    else if (box.scrollTop < lastTop) pinned = false;
    lastTop = box.scrollTop;
    if (box.scrollTop < 60) {
      if (windowOf(c).from > 0) showMore(c);
      else if (c.more && c.loaded) void loadOlder(c);
    }
    // Within a screen of the end of a window that holds still: the next messages, before the reader gets there.
    if (c.end && box.scrollHeight - box.scrollTop - box.clientHeight < box.clientHeight) showNewer(c);
    if (atBottom() && !c.end) pinned = true;
    if (c.newBelow && pinned) {
      c.newBelow = 0;
      show($("new-messages"), false);
    }
  });
  // Rows that change height after a render (a bubble laid out once on screen, a font loaded, the composer's
  // height) would leave a reader at the bottom above it: the view follows while pinned.
  const follow = new ResizeObserver(() => {
    if (pinned && openConv()) toBottom(box);
  });
  follow.observe($("message-list"));
  follow.observe(box);
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
    if (!c) return;
    if (c.kind === "group") openGroup(c.id);
    else void openCard(c.peer);
  });
  const timer = /** @type {HTMLSelectElement} */ ($("chat-timer"));
  timer.replaceChildren(...TIMER_NAMES.map(([ms, name]) => h("option", { value: String(ms) }, name)));
  timer.addEventListener("change", () => {
    const c = openConv();
    const client = state.client;
    if (!c || !client) return;
    const ms = Number(timer.value);
    client.setTimer(c.id, ms || undefined).then(
      () => {
        c.expireAfter = ms;
        invalidate("header");
      },
      (/** @type {unknown} */ err) => {
        toast("Disappearing messages", describe(err), undefined, `timer ${c.id}`);
        invalidate("header");
      },
    );
  });
  $("chat-mute").addEventListener("click", () => {
    const c = openConv();
    if (c) openMute(c);
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
