// @ts-check
// The one place holding the client's state, and the one way to show it: code
// changes `state`, then calls `invalidate(part, ...)`; the parts' renderers
// (registered by the screens with `onRender`) run once, together, before the
// next frame, reading only `state`. `flush()` renders at once when a caller
// needs the DOM up to date (focus, scroll).

/** @typedef {import("../chatcore/web.js").ChatClient} ChatClient */
/** @typedef {import("../chatcore/web.js").Session} Session */
/** @typedef {import("../chatcore/web.js").Message} Message */
/** @typedef {import("../chatcore/web.js").Profile} Profile */
/** @typedef {import("../chatcore/web.js").Presence} Presence */
/** @typedef {import("../chatcore/web.js").DirectoryEntry} DirectoryEntry */

/**
 * A message of ours not yet stored by the server, in the outbox: on its way ("sending"), waiting for the
 * connection ("waiting"), or refused for good ("failed", with why). `ts`: the local clock when it was written.
 * @typedef {{ client_id: string, text: string, ts: number, status: "sending" | "waiting" | "failed", error?: string }} Pending
 */

/**
 * A conversation as this page knows it.
 * @typedef {{
 *   id: string,
 *   peer: string,
 *   messages: Map<number, Message>,
 *   pending: Map<string, Pending>,
 *   unread: number,
 *   lastSeq: number,
 *   readSeq: number,
 *   lastTs: number,
 *   more: boolean,
 *   loaded: boolean,
 *   loading: boolean,
 *   divider: { seq: number, count: number } | null,
 *   newBelow: number,
 *   shown: number,
 * }} Conv
 */

/** @typedef {{ profile: Profile, presence: Presence }} User */

/**
 * The parts of the page that render from state.
 * @typedef {"screen" | "me" | "directory" | "chat" | "header" | "messages" | "history" | "connection" | "title" | "card"} Part
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
  /** The token of a password-reset link. @type {string | null} */
  resetToken: null,
};

/** How many of the newest messages a conversation shows at first; scrolling up shows more (then loads more). */
export const SHOWN = 300;

/** The conversation `id` with `peer`, created empty on first use. */
export function conv(/** @type {string} */ id, /** @type {string} */ peer) {
  let c = state.convs.get(id);
  if (!c) {
    c = {
      id,
      peer,
      messages: new Map(),
      pending: new Map(),
      unread: 0,
      lastSeq: 0,
      readSeq: 0,
      lastTs: 0,
      more: true,
      loaded: false,
      loading: false,
      divider: null,
      newBelow: 0,
      shown: SHOWN,
    };
    state.convs.set(id, c);
  }
  return c;
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

export function pageVisible() {
  return document.visibilityState === "visible";
}

/** Server time now (server timestamps compared with a skewed local clock would lie). */
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
    // Whichever comes first: a hidden page gets no frames, and its title must still count the unread.
    requestAnimationFrame(() => scheduled && flush());
    setTimeout(() => scheduled && flush(), 100);
  }
}

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
const ORDER = ["screen", "connection", "me", "directory", "chat", "header", "messages", "history", "card", "title"];
