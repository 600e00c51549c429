// @ts-check
// The one place holding the client's state, and the one way to show it: code
// changes `state`, then calls `invalidate(part, ...)`; the parts' renderers
// (registered by the screens with `onRender`) run once, together, before the
// next frame, reading only `state`. `flush()` renders at once when a caller
// needs the DOM up to date (focus, scroll).

import { LifeBook } from "../chatcore/web.js";

/** @typedef {import("../chatcore/web.js").ChatClient} ChatClient */
/** @typedef {import("../chatcore/web.js").Session} Session */
/** @typedef {import("../chatcore/web.js").Message} Message */
/** @typedef {import("../chatcore/web.js").Profile} Profile */
/** @typedef {import("../chatcore/web.js").Presence} Presence */
/** @typedef {import("../chatcore/web.js").DirectoryEntry} DirectoryEntry */
/** @typedef {import("../chatcore/web.js").MemberInfo} MemberInfo */
/** @typedef {import("../chatcore/web.js").Role} Role */
/** @typedef {import("../chatcore/web.js").ConversationInfo} ConversationInfo */
/** @typedef {import("../chatcore/web.js").ConversationSummary} ConversationSummary */
/** @typedef {import("../chatcore/web.js").ContactInfo} ContactInfo */
/** @typedef {import("../chatcore/web.js").RequestInfo} RequestInfo */

/**
 * The newest entry of a conversation as the list previews it: from the server's summary (`preview` only for
 * text), or the message itself once this page has it.
 * `rel`: how it relates to an earlier message (an edit, a reaction, a deletion: the list says what it did).
 * @typedef {{ seq: number, ts: number, from: string, kind: string, rel?: string, preview?: string, message?: Message }} Last
 */

/**
 * A message of ours not yet stored by the server, in the outbox: on its way ("sending"), waiting for the
 * connection ("waiting"), or refused for good ("failed", with why). `ts`: the local clock when it was written.
 * `rel`: a reply's target; `mentions`: the members it mentions (both kept with it in the outbox). `media`: a photo,
 * file or voice note on its way (ui/media.js; kept in the page only, never in the outbox).
 * @typedef {{ client_id: string, text: string, ts: number, status: "sending" | "waiting" | "failed", error?: string, rel?: import("../chatcore/web.js").Rel, mentions?: string[], media?: import("./media.js").PendingMedia }} Pending
 */

/**
 * A conversation as this page knows it. Its id comes from the server and is never built or parsed here.
 * `known`: kind, title and peer have been learnt (from `conversations` or `get_conversation`).
 * `peer`: the other user of a direct conversation ("" for a group). `avatar`: a group's picture (a media id; "": none). `members`: the member list, once fetched.
 * `left`: this user left or was removed; it reads up to there. `muted`: no alerts, until `mutedUntil` (0: always).
 * `historyVisible`: members added to the group from now on read its history from the start.
 * `encrypted`: end-to-end encrypted (every conversation this page makes is); its messages are read through ui/e2e.js.
 * `warnings`: what this page saw change in the members' keys ("Bob added a new device"), shown in the timeline
 * after the message it came after (`seq`); kept for this page only.
 * `request`: what waits for this user's answer here: a message request (`by` wrote first; this user reads but
 * does not write until accepting) or a group invitation (`by` invited; this user is not a member yet). Such a
 * conversation is in the Requests view, not in the chat list. `invited`: a group's open invitations (user ids).
 * `mentions`: how many of the unread mention this user. `expireAfter`: the disappearing-message timer (ms; 0: off).
 * `seqs`: the keys of `messages`, ascending (kept as messages come, so a render never sorts the history).
 * The window of messages in the page: the `shown` messages up to seq `end`, or up to the newest while `end` is 0.
 * @typedef {{
 *   id: string,
 *   known: boolean,
 *   kind: "direct" | "group",
 *   peer: string,
 *   title: string,
 *   description: string,
 *   avatar: string,
 *   historyVisible: boolean,
 *   encrypted: boolean,
 *   warnings: { seq: number, ts: number, text: string }[],
 *   memberCount: number,
 *   members: MemberInfo[] | null,
 *   role: Role | undefined,
 *   left: boolean,
 *   muted: boolean,
 *   mutedUntil: number,
 *   request: RequestInfo | null,
 *   invited: string[],
 *   last: Last | null,
 *   messages: Map<number, Message>,
 *   seqs: number[],
 *   pending: Map<string, Pending>,
 *   unread: number,
 *   mentions: number,
 *   expireAfter: number,
 *   lastSeq: number,
 *   readSeq: number,
 *   lastTs: number,
 *   more: boolean,
 *   loaded: boolean,
 *   loading: boolean,
 *   divider: { seq: number, count: number } | null,
 *   newBelow: number,
 *   shown: number,
 *   end: number,
 * }} Conv
 */

/** @typedef {{ profile: Profile, presence: Presence }} User */

/** @typedef {import("../chatcore/e2e/index.js").SecureChat} SecureChat */
/** @typedef {import("../chatcore/e2e/index.js").SecureBody} SecureBody */

/**
 * End-to-end encryption in this page: `starting` (opening the keys), `ready`, or `failed` (`error` says why; encrypted
 * conversations are then read-only here and nothing is sent, never in clear). `memoryOnly`: this browser keeps no
 * keys (no IndexedDB, e.g. a private mode), so they last as long as the page. `since`: when this device signed in
 * (0 until known): what was sent before it can be read only with keys from another device or the backup.
 * @typedef {{ status: "off" | "starting" | "ready" | "failed", memoryOnly: boolean, error: string, since: number }} E2e
 */

/**
 * The parts of the page that render from state.
 * @typedef {"screen" | "me" | "directory" | "chat" | "header" | "messages" | "history" | "connection" | "title" | "card" | "group" | "contacts" | "privacy" | "requests" | "backup" | "compose"} Part
 */

export const state = {
  /** @type {ChatClient | null} */
  client: null,
  /** @type {"splash" | "auth" | "app"} */
  screen: "splash",
  /** The connection as the client reports it. @type {import("../chatcore/web.js").ConnectionState} */
  connection: "disconnected",
  /** The signed-in session. @type {Session | null} */
  me: null,
  /** user id -> profile and presence. @type {Map<string, User>} */
  users: new Map(),
  /** User ids of the latest directory search, in its order. @type {string[]} */
  directory: [],
  /** @type {string | undefined} */
  directoryNext: undefined,
  /** Whether a directory search has answered yet (no "Nobody found." before). */
  directoryLoaded: false,
  query: "",
  searchSeq: 0,
  /** @type {Map<string, Conv>} */
  convs: new Map(),
  /** Unsent text per conversation id. @type {Map<string, string>} */
  drafts: new Map(),
  /** The conversation on screen. @type {string | null} */
  open: null,
  /**
   * This user's view of each pair that is more than nothing (a contact, a request either way, a block), from the
   * `contacts` lists at sign-in, then the replies and `contact` pushes. A user not in it: no link.
   * @type {Map<string, ContactInfo>}
   */
  contacts: new Map(),
  /** Whether the lists have answered (before, a card cannot say "Add contact" truthfully). */
  contactsLoaded: false,
  /** Whether the requests list has answered since sign-in. */
  requestsLoaded: false,
  /** What the sidebar shows: the chat list, or the message requests and group invitations. @type {"chats" | "requests"} */
  sidebar: /** @type {"chats" | "requests"} */ ("chats"),
  /** The token of a password-reset link. @type {string | null} */
  resetToken: null,
  /** The encrypted side of the client, once signed in. @type {SecureChat | null} */
  secure: null,
  /** @type {E2e} */
  e2e: { status: "off", memoryOnly: false, error: "", since: 0 },
  /** What this device reads of each encrypted message it has, by message id. @type {Map<string, SecureBody>} */
  reads: new Map(),
  /**
   * Each message's latest state (edits, reactions, deletions, expiry: ui/life.js), on the server's clock.
   * @type {LifeBook}
   */
  life: new LifeBook({ now: () => serverNow() }),
};

/** How many of the newest messages a conversation shows at first; scrolling up shows more (then loads more). */
export const SHOWN = 300;

/**
 * The most messages in the page at once. Past it the window holds still (new messages wait below it, counted by
 * the pill) or drops the side the reader moves away from: layout and style cost what the page holds.
 */
export const MAX_SHOWN = 600;

/** The conversation `id`, created empty (not yet `known`) on first use. */
export function conv(/** @type {string} */ id) {
  let c = state.convs.get(id);
  if (!c) {
    c = {
      id,
      known: false,
      kind: "direct",
      peer: "",
      title: "",
      description: "",
      avatar: "",
      historyVisible: false,
      encrypted: false,
      warnings: [],
      memberCount: 0,
      members: null,
      role: undefined,
      left: false,
      muted: false,
      mutedUntil: 0,
      request: null,
      invited: [],
      last: null,
      messages: new Map(),
      seqs: [],
      pending: new Map(),
      unread: 0,
      mentions: 0,
      expireAfter: 0,
      lastSeq: 0,
      readSeq: 0,
      lastTs: 0,
      more: true,
      loaded: false,
      loading: false,
      divider: null,
      newBelow: 0,
      shown: SHOWN,
      end: 0,
    };
    state.convs.set(id, c);
  }
  return c;
}

/** The direct conversation with `user`, if this page knows it. */
export function directWith(/** @type {string} */ user) {
  for (const c of state.convs.values()) if (c.kind === "direct" && c.peer === user) return c;
  return null;
}

/** Takes in what the server says of a conversation (a `conversation` reply). */
export function learnConversation(/** @type {ConversationInfo} */ info) {
  const c = conv(info.conv);
  c.known = true;
  c.kind = info.kind;
  c.title = info.title ?? "";
  c.description = info.description ?? "";
  c.avatar = info.avatar ?? "";
  c.historyVisible = info.history_visible;
  c.encrypted = !!info.encrypted;
  c.members = info.members;
  c.memberCount = info.members.length;
  c.role = info.kind === "group" ? info.role : undefined;
  c.left = info.kind === "group" && info.role === undefined;
  if (info.kind === "direct") c.peer = info.members.find((m) => m.user !== state.me?.user)?.user ?? c.peer;
  c.lastSeq = Math.max(c.lastSeq, info.last_seq);
  c.expireAfter = info.expire_after ?? 0;
  c.invited = info.invited ?? [];
  learnRequest(c, info.request);
  // Invited, not a member: nothing of the group is this user's to read yet (not "left" either).
  if (c.request && c.kind === "group") c.left = false;
  return c;
}

/** Takes in a conversation's summary (from `conversations`). */
export function learnSummary(/** @type {ConversationSummary} */ s) {
  const c = conv(s.conv);
  c.known = true;
  c.kind = s.kind;
  c.title = s.title ?? "";
  c.avatar = s.avatar ?? "";
  c.encrypted = !!s.encrypted;
  c.memberCount = s.members;
  c.role = s.role;
  c.left = !!s.left;
  c.muted = !!s.muted;
  c.mutedUntil = s.muted_until ?? 0;
  c.expireAfter = s.expire_after ?? 0;
  learnRequest(c, s.request);
  if (s.peer) {
    c.peer = s.peer.user;
    const u = state.users.get(s.peer.user);
    if (u) u.profile = s.peer;
    else state.users.set(s.peer.user, { profile: s.peer, presence: { user: s.peer.user, online: false } });
  }
  c.lastSeq = Math.max(c.lastSeq, s.last_seq);
  if (s.last && (!c.last || s.last.seq >= c.last.seq)) {
    c.last = { ...s.last, message: c.messages.get(s.last.seq) };
    c.lastTs = Math.max(c.lastTs, s.last.ts);
  }
  return c;
}

/** Takes in what waits for this user's answer in `c` (absent: nothing), and the profile of who asked. */
export function learnRequest(/** @type {Conv} */ c, /** @type {RequestInfo | undefined} */ r) {
  c.request = r ?? null;
  if (!r) return;
  const u = state.users.get(r.by.user);
  if (u) u.profile = r.by;
  else state.users.set(r.by.user, { profile: r.by, presence: { user: r.by.user, online: false } });
}

/** The conversations waiting for this user's answer, newest first. */
export function requestConvs() {
  return [...state.convs.values()].filter((c) => c.request).sort((a, b) => Math.max(b.lastTs, b.request?.at ?? 0) - Math.max(a.lastTs, a.request?.at ?? 0));
}

/** Whether alerts of `c` are muted now. */
export function isMuted(/** @type {Conv} */ c) {
  return c.muted && (c.mutedUntil === 0 || c.mutedUntil > serverNow());
}

/** The name of a conversation: a group's title, or the peer's name. */
export function convName(/** @type {Conv} */ c) {
  return c.kind === "group" ? c.title || "Group" : userName(c.peer);
}

/** The conversation on screen, if any. */
export function openConv() {
  return (state.open && state.convs.get(state.open)) || null;
}

/** The name to show for a user id ("Someone" only while the profile is unknown). */
export function userName(/** @type {string} */ id) {
  const u = state.users.get(id);
  return u ? u.profile.display_name || u.profile.username : "Someone";
}

export function rememberUser(/** @type {DirectoryEntry} */ entry) {
  state.users.set(entry.profile.user, { profile: entry.profile, presence: entry.presence });
}

/** Takes in this user's view of a pair (a `contacts` entry, a reply or a push): the link, and the profile with it. */
export function learnContact(/** @type {ContactInfo} */ info) {
  const id = info.profile.user;
  if (info.state === "none" && !info.blocked) state.contacts.delete(id);
  else state.contacts.set(id, info);
  const u = state.users.get(id);
  if (u) {
    u.profile = info.profile;
    if (info.presence) u.presence = info.presence;
  } else state.users.set(id, { profile: info.profile, presence: info.presence ?? { user: id, online: false } });
}

/** This user's view of the pair with `user`. */
export function contactOf(/** @type {string} */ user) {
  return state.contacts.get(user) ?? { state: /** @type {const} */ ("none"), blocked: false };
}

/** Profiles being fetched. @type {Set<string>} */
const fetching = new Set();

/** Fetches the profiles of the users in `ids` this page does not know yet, then redraws `parts`. */
export function needUsers(/** @type {Iterable<string>} */ ids, /** @type {Part[]} */ ...parts) {
  const client = state.client;
  if (!client) return;
  for (const id of ids) {
    if (!id || state.users.has(id) || fetching.has(id)) continue;
    fetching.add(id);
    client.getProfile(id).then(
      (e) => {
        fetching.delete(id);
        rememberUser(e);
        invalidate("directory", "header", "messages", "group", ...parts);
      },
      () => fetching.delete(id),
    );
  }
}

export function pageVisible() {
  return document.visibilityState === "visible";
}

/**
 * Server time now (server timestamps compared with a skewed local clock would lie).
 * @returns {number}
 */
export function serverNow() {
  return Date.now() + (state.client?.clockOffsetMs ?? 0);
}

// -- rendering ----------------------------------------------------------------

/** @type {Map<Part, Array<() => void>>} */
const renderers = new Map();
/** @type {Set<Part>} */
const dirty = new Set();
let scheduled = false;

/** Registers how `part` is drawn from state. */
export function onRender(/** @type {Part} */ part, /** @type {() => void} */ fn) {
  // A part left out of ORDER would never be drawn: said at once, not found later as a screen that stays blank.
  if (!ORDER.includes(part)) throw new Error(`store.js: the part "${part}" is not in ORDER`);
  const list = renderers.get(part) ?? [];
  list.push(fn);
  renderers.set(part, list);
}

/**
 * Marks parts as out of date; they are redrawn together before the next frame (so a burst of messages arriving in
 * one frame costs one render), or within 100 ms while the page is hidden (no frames then).
 */
export function invalidate(/** @type {Part[]} */ ...parts) {
  for (const p of parts) dirty.add(p);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(() => scheduled && flush());
    // A hidden page gets no frames, and its title must still count the unread. Only then: a visible page whose
    // frames come late is busy, and a render between frames would be drawn again at the next one.
    if (!pageVisible()) later();
  }
}

function later() {
  setTimeout(() => scheduled && flush(), 100);
}

// Hidden with a render waiting for a frame that will not come.
document.addEventListener("visibilitychange", () => {
  if (scheduled && !pageVisible()) later();
});

/** Redraws every out-of-date part now. */
export function flush() {
  scheduled = false;
  // A renderer may invalidate parts after it (the chat view its header): they are drawn in the same flush.
  for (let round = 0; dirty.size && round < 4; round++) {
    const parts = ORDER.filter((p) => dirty.has(p));
    dirty.clear();
    for (const p of parts) for (const fn of renderers.get(p) ?? []) fn();
  }
}

/** Screens before what they contain. @type {Part[]} */
const ORDER = ["screen", "connection", "me", "directory", "requests", "chat", "header", "messages", "compose", "history", "card", "group", "contacts", "privacy", "backup", "title"];
