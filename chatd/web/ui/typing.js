// @ts-check
// "Alice is typing…": who writes in which conversation (the server's `typing`
// pushes), and telling the others while this user writes. Nothing of it is
// stored: each state lasts the push's `ttl_ms` unless renewed, and a message
// from the typist ends it.

import { invalidate, state, userName } from "./store.js";

/**
 * How often this page says again that the user is still writing: half of the state's life as the pushes of others
 * give it (the server's default is 6 s), at most every 2.5 s until one came.
 */
let refreshMs = 2500;

/** conv -> user -> the timer that ends their typing. @type {Map<string, Map<string, ReturnType<typeof setTimeout>>>} */
const typists = new Map();

function end(/** @type {string} */ conv, /** @type {string} */ user) {
  const users = typists.get(conv);
  const timer = users?.get(user);
  if (!users || timer === undefined) return;
  clearTimeout(timer);
  users.delete(user);
  if (!users.size) typists.delete(conv);
  if (state.open === conv) invalidate("header");
}

/** A `typing` push: `user` writes in `conv` (for `ttl_ms`), or stopped. */
export function onTyping(/** @type {{ conv: string, user: string, typing: boolean, ttl_ms: number }} */ t) {
  end(t.conv, t.user);
  refreshMs = Math.max(500, Math.min(2500, Math.floor(t.ttl_ms / 2)));
  if (!t.typing || t.user === state.me?.user) return;
  let users = typists.get(t.conv);
  if (!users) {
    users = new Map();
    typists.set(t.conv, users);
  }
  users.set(
    t.user,
    setTimeout(() => end(t.conv, t.user), t.ttl_ms),
  );
  if (state.open === t.conv) invalidate("header");
}

/** A message from `user` in `conv`: they are done writing it. */
export function messageFrom(/** @type {string} */ conv, /** @type {string} */ user) {
  end(conv, user);
}

/** What the header says of who writes in `conv` now, or null: "typing…" in a direct chat, names in a group. */
export function typingText(/** @type {import("./store.js").Conv} */ c) {
  const users = [...(typists.get(c.id)?.keys() ?? [])];
  if (!users.length) return null;
  if (c.kind === "direct") return "typing…";
  const names = users.map(userName);
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} more are typing…`;
}

/** Forgets every typist (signed out). */
export function resetTyping() {
  for (const users of typists.values()) for (const timer of users.values()) clearTimeout(timer);
  typists.clear();
  sent = { conv: "", at: 0 };
}

// -- this user's own typing

/** The conversation the page last said this user writes in, and when. */
let sent = { conv: "", at: 0 };

/** The composer of `conv` holds text (`writing`) or was emptied: tells the others, at most every `refreshMs`. */
export function userWrites(/** @type {string} */ conv, /** @type {boolean} */ writing) {
  const client = state.client;
  if (!client) return;
  if (!writing) {
    userStopped();
    return;
  }
  const now = Date.now();
  if (sent.conv === conv && now - sent.at < refreshMs) return;
  if (sent.conv && sent.conv !== conv) userStopped();
  sent = { conv, at: now };
  // A hint: a failure (offline, not allowed here) changes nothing the user sees.
  client.typing(conv, true).catch(() => {});
}

/** This user stopped writing (sent, emptied the composer, left the conversation). */
export function userStopped() {
  const client = state.client;
  const conv = sent.conv;
  sent = { conv: "", at: 0 };
  if (client && conv) client.typing(conv, false).catch(() => {});
}
