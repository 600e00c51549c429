// @ts-check
// The conversation list and directory: people found by the search, with
// those one has chatted with first (latest activity first), unread badges,
// presence and the last message.

import { directConversationId, peerOf } from "../chatcore/web.js";
import { $, field, h, nameNode, show } from "./dom.js";
import { avatar } from "./avatar.js";
import { presenceText } from "./format.js";
import { addMessage, markRead, openChat } from "./chat.js";
import { conv, invalidate, onRender, openConv, pageVisible, rememberUser, state } from "./store.js";

/** Runs a directory search (`append`: the next page of the last one). */
export async function loadDirectory(/** @type {string} */ query, append = false) {
  const client = state.client;
  if (!client || !state.me) return;
  const seq = ++state.searchSeq;
  try {
    const page = await client.searchUsers(query, { limit: 50, ...(append && state.directoryNext ? { after: state.directoryNext } : {}) });
    if (seq !== state.searchSeq) return; // a newer search won
    for (const entry of page.users) rememberUser(entry);
    const ids = page.users.map((u) => u.profile.user).filter((id) => id !== state.me?.user);
    state.directory = append ? [...state.directory, ...ids] : ids;
    state.directoryNext = page.next;
    state.directoryLoaded = true;
    invalidate("directory");
  } catch (err) {
    console.warn("search failed:", err);
  }
}

/** Unread counts and last messages of every conversation. */
export async function loadConversations() {
  const client = state.client;
  const me = state.me;
  if (!client || !me) return;
  try {
    const list = await client.conversations();
    /** @type {string[]} */
    const missing = [];
    for (const s of list) {
      const peer = s.peer ?? peerOf(s.conv, me.user);
      if (!peer) continue;
      const c = conv(s.conv, peer);
      c.unread = state.open === s.conv && pageVisible() ? 0 : s.unread;
      c.lastSeq = Math.max(c.lastSeq, s.last_seq);
      if (s.last) addMessage(c, s.last, false);
      if (!state.users.has(peer)) missing.push(peer);
    }
    await Promise.all(missing.map((id) => client.getProfile(id).then(rememberUser, () => {})));
    invalidate("directory", "title");
    const open = openConv();
    if (open) markRead(open);
  } catch (err) {
    console.warn("conversations failed:", err);
  }
}

/** Forgets the search (a new user on this page). */
export function resetDirectory() {
  field("search").value = "";
  state.query = "";
  state.directory = [];
  state.directoryLoaded = false;
  invalidate("directory");
}

/** People to list: the search result, with those one has chatted with first (latest activity first). */
function directoryOrder() {
  const me = state.me;
  if (!me) return [];
  const ids = [...state.directory];
  if (!state.query) {
    for (const c of state.convs.values()) if (c.lastTs && !ids.includes(c.peer) && state.users.has(c.peer)) ids.push(c.peer);
  }
  const activity = (/** @type {string} */ id) => state.convs.get(directConversationId(me.user, id))?.lastTs ?? 0;
  return ids
    .map((id, i) => ({ id, i, t: activity(id) }))
    .sort((a, b) => b.t - a.t || a.i - b.i)
    .map((x) => x.id);
}

function previewOf(/** @type {import("./store.js").Conv} */ c) {
  const seqs = [...c.messages.keys()];
  if (!seqs.length) return null;
  const m = c.messages.get(Math.max(...seqs));
  if (!m) return null;
  return (m.from === state.me?.user ? "You: " : "") + (m.content.kind === "text" ? m.content.text : "");
}

function renderDirectory() {
  const me = state.me;
  if (!me) return;
  const ids = directoryOrder();
  $("directory").replaceChildren(
    ...ids.map((id) => {
      const u = state.users.get(id);
      if (!u) return "";
      const c = state.convs.get(directConversationId(me.user, id));
      const unread = c?.unread ?? 0;
      const preview = c ? previewOf(c) : null;
      const open = !!state.open && !!c && state.open === c.id;
      return h(
        "li",
        { class: "person-item" },
        h(
          "button",
          {
            type: "button",
            class: `person ${open ? "active" : ""} ${unread ? "has-unread" : ""}`,
            dataset: { user: id, username: u.profile.username },
            "aria-current": open ? "true" : undefined,
            onclick: () => void openChat(id),
          },
          avatar(u.profile, u.presence),
          h(
            "span",
            { class: "person-text" },
            h(
              "span",
              { class: "person-line" },
              h("span", { class: "person-name" }, nameNode(u.profile.display_name)),
              h("span", { class: `presence ${u.presence.online ? "online" : ""}` }, presenceText(u.presence)),
            ),
            h(
              "span",
              { class: "person-line" },
              h("span", { class: "person-sub" }, preview ?? `@${u.profile.username}`),
              unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
            ),
          ),
        ),
      );
    }),
  );
  // Only once a search has answered: before, "Nobody found." would be a lie.
  const empty = $("directory-empty");
  empty.textContent = state.query ? "Nobody found." : "Nobody else is here yet.";
  show(empty, ids.length === 0 && state.directoryLoaded);
  show($("directory-more"), !!state.directoryNext);
}

/** A watched user came online or left. */
export function onPresence(/** @type {import("./store.js").Presence} */ p) {
  const u = state.users.get(p.user);
  if (!u) return;
  u.presence = p;
  invalidate("directory", "card");
  if (openConv()?.peer === p.user) invalidate("header");
}

export function wireDirectory() {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const search = field("search");
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.query = search.value.trim();
      state.directoryLoaded = false;
      void loadDirectory(state.query);
    }, 200);
  });
  $("directory-more").addEventListener("click", () => void loadDirectory(state.query, true));
  // "last seen 3 min ago" ages; people who signed up meanwhile appear (no push announces them).
  setInterval(() => {
    if (!state.me) return;
    invalidate("directory", "header");
    if (pageVisible() && !state.directoryNext) void loadDirectory(state.query);
  }, 20_000);
  document.addEventListener("visibilitychange", () => {
    if (state.me && pageVisible()) void loadDirectory(state.query);
  });
}

onRender("directory", renderDirectory);
