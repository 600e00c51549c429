// @ts-check
// The chat list: conversations from the server (groups with their title and
// member count, direct ones with the peer's profile and presence), latest
// activity first, with unread badges, a muted mark and a preview of the last
// entry; then the people of the directory search not chatted with yet.

import { isNotice } from "../chatcore/web.js";
import { $, field, h, nameNode, show } from "./dom.js";
import { avatar, groupProfile } from "./avatar.js";
import { clip, ENCRYPTED_TEXT, mediaText, noticeKindText, noticeText, presenceText } from "./format.js";
import { readable } from "./e2e.js";
import { markRead, openChat, openChatWith } from "./chat.js";
import { lifePreview } from "./life.js";
import { convName, invalidate, isMuted, learnSummary, needUsers, onRender, openConv, pageVisible, rememberUser, state, userName } from "./store.js";

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

/** Every conversation (page after page): kind, title or peer, unread count, last entry, mute. */
export async function loadConversations() {
  const client = state.client;
  const me = state.me;
  if (!client || !me) return;
  try {
    const list = await client.allConversations(50);
    if (state.me !== me) return;
    /** @type {string[]} */
    const senders = [];
    for (const s of list) {
      // The server's count is taken only from a summary at least as new as what this page has seen:
      // a push that arrived while the list was on its way was counted here already, not there.
      const seen = state.convs.get(s.conv)?.lastSeq ?? 0;
      const c = learnSummary(s);
      if (state.open === s.conv && pageVisible()) c.unread = c.mentions = 0;
      else if (s.last_seq >= seen) {
        c.unread = s.unread;
        c.mentions = s.mentions ?? 0;
      }
      if (s.last) senders.push(s.last.from);
    }
    needUsers(senders);
    invalidate("directory", "title", "header", "chat");
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

/**
 * What the list shows: conversations (latest activity first; while searching, those whose name matches), then the
 * people of the search with whom there is no conversation yet, in the directory's order.
 * @returns {Array<{ c: import("./store.js").Conv } | { user: string }>}
 */
function listOrder() {
  const me = state.me;
  if (!me) return [];
  const q = state.query.toLocaleLowerCase();
  const found = new Set(state.directory);
  const convs = [...state.convs.values()]
    // Message requests and group invitations wait in the Requests view (requests.js) until accepted.
    .filter((c) => c.known && !c.request && (c.lastTs > 0 || c.id === state.open))
    .filter((c) => {
      if (!q) return true;
      if (c.kind === "direct" && found.has(c.peer)) return true;
      const u = c.kind === "direct" ? state.users.get(c.peer) : undefined;
      return convName(c).toLocaleLowerCase().includes(q) || !!u?.profile.username.toLocaleLowerCase().startsWith(q);
    })
    .sort((a, b) => b.lastTs - a.lastTs);
  const listed = new Set(convs.filter((c) => c.kind === "direct").map((c) => c.peer));
  const people = state.directory.filter((id) => !listed.has(id) && state.users.has(id)).map((user) => ({ user }));
  return [...convs.map((c) => ({ c })), ...people];
}

/** How much of a message the list's one-line preview holds (the rest would be laid out only to be hidden). */
const PREVIEW_MAX = 160;

/** The list's second line for a conversation: its newest entry, a notice in words, or a placeholder. */
function previewOf(/** @type {import("./store.js").Conv} */ c) {
  const last = c.last;
  if (!last) return null;
  const me = state.me?.user;
  const prefix = last.from === me ? "You: " : c.kind === "group" ? `${userName(last.from)}: ` : "";
  const m = last.message;
  // An edit, a reaction or a deletion: said as what it did, not as a new message.
  const life = lifePreview(last, prefix);
  if (life !== null) return clip(life, PREVIEW_MAX);
  // Encrypted: the text once this device has read it (the server's summary holds none).
  if (m?.content.kind === "encrypted") return prefix + clip(readable(m).text, PREVIEW_MAX);
  if (last.kind === "encrypted") return prefix + ENCRYPTED_TEXT;
  if (m && isNotice(m.content)) return noticeText(m.from, m.content) ?? "";
  if (m && m.content.kind === "text") return prefix + clip(m.content.text, PREVIEW_MAX);
  const media = m ? mediaText(m.content) : mediaText({ kind: last.kind });
  if (media !== undefined) return prefix + clip(media, PREVIEW_MAX);
  if (last.kind === "text") return prefix + clip(last.preview ?? "Encrypted message", PREVIEW_MAX);
  return noticeKindText(last.from, last.kind);
}

/** A crossed-out bell for a muted conversation. */
function mutedIcon() {
  return h("span", { class: "muted-icon", role: "img", "aria-label": "Muted", title: "Muted" }, "🔕");
}

function convRow(/** @type {import("./store.js").Conv} */ c) {
  const open = state.open === c.id;
  const unread = c.unread;
  const muted = isMuted(c);
  const u = c.kind === "direct" ? state.users.get(c.peer) : undefined;
  if (c.kind === "direct" && !u) return "";
  const preview = previewOf(c);
  return h(
    "li",
    { class: "person-item" },
    h(
      "button",
      {
        type: "button",
        class: `person ${c.kind === "group" ? "group" : ""} ${open ? "active" : ""} ${unread ? "has-unread" : ""} ${muted ? "muted" : ""}`,
        dataset: u ? { conv: c.id, user: c.peer, username: u.profile.username } : { conv: c.id },
        "aria-current": open ? "true" : undefined,
        onclick: () => void openChat(c.id),
      },
      u ? avatar(u.profile, u.presence) : avatar(groupProfile(c), undefined),
      h(
        "span",
        { class: "person-text" },
        h(
          "span",
          { class: "person-line" },
          h("span", { class: "person-name" }, nameNode(u ? u.profile.display_name : convName(c))),
          muted ? mutedIcon() : null,
          u
            ? h("span", { class: `presence ${u.presence.online ? "online" : ""}` }, presenceText(u.presence))
            : h("span", { class: "presence member-count" }, c.left ? "left" : c.memberCount === 1 ? "1 member" : `${c.memberCount} members`),
        ),
        h(
          "span",
          { class: "person-line" },
          h("span", { class: "person-sub" }, preview ?? (u ? `@${u.profile.username}` : "")),
          c.mentions > 0 ? h("span", { class: "badge mention-badge", title: "You were mentioned", "aria-label": "You were mentioned" }, "@") : null,
          unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
        ),
      ),
    ),
  );
}

function personRow(/** @type {string} */ id) {
  const u = state.users.get(id);
  if (!u) return "";
  return h(
    "li",
    { class: "person-item" },
    h(
      "button",
      {
        type: "button",
        class: "person",
        dataset: { user: id, username: u.profile.username },
        onclick: () => void openChatWith(id),
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
        h("span", { class: "person-line" }, h("span", { class: "person-sub" }, `@${u.profile.username}`)),
      ),
    ),
  );
}

function renderDirectory() {
  if (!state.me) return;
  const rows = listOrder();
  $("directory").replaceChildren(...rows.map((r) => ("c" in r ? convRow(r.c) : personRow(r.user))));
  // Only once a search has answered: before, "Nobody found." would be a lie.
  const empty = $("directory-empty");
  empty.textContent = state.query ? "Nobody found." : "Nobody else is here yet.";
  show(empty, rows.length === 0 && state.directoryLoaded);
  show($("directory-more"), !!state.directoryNext);
}

/** A user this page shows changed their contact card (or this user did, on another device): names, avatars, about. */
export function onProfile(/** @type {import("./store.js").Profile} */ p) {
  const u = state.users.get(p.user);
  if (u) u.profile = p;
  else state.users.set(p.user, { profile: p, presence: { user: p.user, online: false } });
  if (state.me && p.user === state.me.user) state.me.profile = p;
  invalidate("me", "directory", "header", "messages", "card", "group", "contacts");
}

/**
 * Someone registered (pushed while the list shows the unfiltered first page): listed where the directory's order
 * puts them, unless that is on a page not loaded yet.
 */
export function onNewUser(/** @type {import("./store.js").DirectoryEntry} */ entry) {
  const me = state.me;
  const id = entry.profile.user;
  if (!me || id === me.user || state.query || state.directory.includes(id)) return;
  const key = (/** @type {string} */ user) => state.users.get(user)?.profile.username.toLocaleLowerCase() ?? "";
  const name = entry.profile.username.toLocaleLowerCase();
  rememberUser(entry);
  const at = state.directory.findIndex((user) => key(user) > name);
  if (at === -1 && state.directoryNext) return; // after the loaded pages: "more" brings it
  state.directory.splice(at === -1 ? state.directory.length : at, 0, id);
  invalidate("directory");
}

/** A watched user came online or left. */
export function onPresence(/** @type {import("./store.js").Presence} */ p) {
  const u = state.users.get(p.user);
  if (!u) return;
  u.presence = p;
  invalidate("directory", "card", "group", "contacts");
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
  // "last seen 3 min ago" ages. Profile changes and new users are pushed (profile_changed, new_user): no poll.
  setInterval(() => {
    if (state.me) invalidate("directory", "header");
  }, 20_000);
  document.addEventListener("visibilitychange", () => {
    if (state.me && pageVisible()) void loadDirectory(state.query);
  });
}

onRender("directory", renderDirectory);
