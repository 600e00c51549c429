// The chatcore web client. Plain ES module, no framework, no bundler: chatd
// serves it with index.html and style.css, and the binding's browser build in
// ./chatcore/ (compiled from bindings/typescript; do not edit those files).
//
// Everything goes through the protocol (JSON codec over /ws) via ChatClient;
// the session token is kept in localStorage so a reload resumes the session.
//
// Layout of this file: texts -> small DOM helpers -> state -> client events ->
// auth screens -> directory -> chat -> contact card -> toasts -> boot.

import { ChatClient, ChatError, directConversationId, newClientId, peerOf } from "./chatcore/web.js";

const TOKEN_KEY = "chatcore.token";
const PAGE = 30;

// ---------------------------------------------------------------------------
// Human texts for the protocol's codes.

/** Password rules (`weak_password` violations). */
const VIOLATIONS = {
  too_short: "Use at least 10 characters.",
  too_long: "Use at most 128 characters.",
  contains_username: "Don’t build it from your username.",
  contains_email: "Don’t build it from your email address.",
  common: "This is one of the most common passwords.",
  too_guessable: "Too easy to guess: add more words or unusual characters.",
};

/** `conflict`, by field. */
const TAKEN = {
  username: "This username is already taken.",
  email: "An account with this email address already exists.",
  phone: "An account with this phone number already exists.",
};

/** `invalid_argument`, by field. */
const INVALID = {
  username: "Use 3–32 letters, digits, _ . or -.",
  email: "This is not a valid email address.",
  phone: "Use the international form: + or 00, then 8–15 digits.",
  display_name: "Use 1–64 characters, without control or invisible formatting characters.",
  about: "Use at most 256 characters, without control or invisible formatting characters.",
  password: "This password cannot be used.",
  new_password: "This password cannot be used.",
};

function duration(ms) {
  const s = Math.ceil(ms / 1000);
  if (s < 90) return `${s} seconds`;
  const m = Math.ceil(s / 60);
  return m < 90 ? `${m} minutes` : `${Math.ceil(m / 60)} hours`;
}

/** One line for any error that is not tied to a field. */
function describe(err) {
  if (!(err instanceof ChatError)) return "Something went wrong. Please try again.";
  switch (err.code) {
    case "rate_limited":
      return err.retryAfterMs ? `Too many attempts. Try again in ${duration(err.retryAfterMs)}.` : "Too many attempts. Try again later.";
    case "unavailable":
      return "The server is busy. Please try again in a moment.";
    case "disconnected":
    case "timeout":
      return "Cannot reach the server. Check your connection and try again.";
    case "too_large":
      return "That is too long.";
    case "limit_reached":
      return "This account is open in too many places. Close it somewhere else, then try again.";
    case "internal":
      return "The server had a problem. Please try again.";
    default:
      return err.message;
  }
}

// ---------------------------------------------------------------------------
// DOM helpers. User text only ever goes in through textContent.

const $ = (id) => document.getElementById(id);

/** Creates an element: h("li", { class: "x", onclick }, child, "text"). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function show(el, visible) {
  el.hidden = !visible;
}

const PALETTE = ["#5b8def", "#e0795b", "#49a078", "#b565c9", "#d9a13b", "#4aa5b8", "#d35d7b", "#7a7fd6"];

function hash(s) {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
  return x >>> 0;
}

function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => Array.from(w)[0].toUpperCase()).join("") || "?";
}

/**
 * A profile picture is a media id (16–64 of A-Z a-z 0-9 _ -), never a URL or path: the server refuses anything
 * else, and the page loads nothing else even if an old record holds it.
 */
const MEDIA_ID = /^[A-Za-z0-9_-]{16,64}$/;

/**
 * Fills an avatar element with initials on a colour. A picture would be loaded by its media id, with this
 * session, from this server; until the server serves media, no picture is ever requested (so nothing can
 * point this page at another site, and nothing is requested again and again).
 */
function paintAvatar(el, profile) {
  el.replaceChildren();
  el.style.backgroundColor = PALETTE[hash(profile.user) % PALETTE.length];
  el.dataset.picture = profile.avatar && MEDIA_ID.test(profile.avatar) ? "media" : "none";
  el.append(initials(profile.display_name || profile.username));
}

/** A name someone chose, isolated from the text around it, so right-to-left or mixed text cannot reorder its neighbours. */
function nameNode(name) {
  return h("bdi", {}, name);
}

/** Shows `name` in `el` (a heading, a label), isolated. */
function setName(el, name) {
  el.replaceChildren(nameNode(name));
}

function avatar(profile, presence, extra = "") {
  const el = h("span", { class: `avatar ${extra}`, "aria-hidden": "true" });
  paintAvatar(el, profile);
  if (presence) el.append(h("span", { class: `dot ${presence.online ? "online" : ""}` }));
  return el;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const shortDayFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });

/** Server time now (server timestamps compared with a skewed local clock would lie). */
function serverNow() {
  return Date.now() + (state.client?.clockOffsetMs ?? 0);
}

function sameDay(a, b) {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

function dayLabel(ts) {
  const now = serverNow();
  if (sameDay(ts, now)) return "Today";
  if (sameDay(ts, now - 86_400_000)) return "Yesterday";
  return dayFmt.format(ts);
}

function presenceText(p) {
  if (!p) return "";
  if (p.online) return "online";
  if (p.last_seen == null) return "offline";
  const ago = serverNow() - p.last_seen;
  if (ago < 60_000) return "last seen just now";
  if (ago < 3_600_000) return `last seen ${Math.floor(ago / 60_000)} min ago`;
  if (sameDay(p.last_seen, serverNow())) return `last seen today at ${timeFmt.format(p.last_seen)}`;
  if (sameDay(p.last_seen, serverNow() - 86_400_000)) return `last seen yesterday at ${timeFmt.format(p.last_seen)}`;
  return `last seen ${shortDayFmt.format(p.last_seen)}`;
}

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} on ${os}` : browser;
}

// ---------------------------------------------------------------------------
// State.

/**
 * @typedef {{ id: string, peer: string, messages: Map<number, any>, pending: Map<string, any>,
 *   unread: number, lastSeq: number, readSeq: number, lastTs: number, more: boolean, loaded: boolean, loading: boolean }} Conv
 */
const state = {
  /** @type {ChatClient | null} */
  client: null,
  /** The signed-in session. */
  me: null,
  /** user id -> { profile, presence } */
  users: new Map(),
  /** User ids of the latest directory search, in its order. */
  directory: [],
  directoryNext: undefined,
  query: "",
  searchSeq: 0,
  /** @type {Map<string, Conv>} */
  convs: new Map(),
  /** The conversation on screen. */
  open: null,
  resetToken: null,
};

function conv(id, peer) {
  let c = state.convs.get(id);
  if (!c) {
    c = { id, peer, messages: new Map(), pending: new Map(), unread: 0, lastSeq: 0, readSeq: 0, lastTs: 0, more: true, loaded: false, loading: false };
    state.convs.set(id, c);
  }
  return c;
}

function userName(id) {
  const u = state.users.get(id);
  return u ? u.profile.display_name || u.profile.username : "Someone";
}

function rememberUser(entry) {
  state.users.set(entry.profile.user, { profile: entry.profile, presence: entry.presence });
}

function visible() {
  return document.visibilityState === "visible";
}

// ---------------------------------------------------------------------------
// The client and its events.

function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

function createClient(token) {
  const client = new ChatClient({ url: wsUrl(), token: token ?? undefined, clientName: "chatcore-web/0.1", device: deviceName() });
  client.on("session", ({ session }) => onSession(session));
  client.on("signedout", ({ reason }) => onSignedOut(reason));
  client.on("message", ({ message }) => onMessage(message));
  client.on("presence", (p) => onPresence(p));
  client.on("alert", (a) => onAlert(a));
  client.on("state", (s) => renderConnection(s));
  client.on("error", (e) => console.warn("chatcore:", e.code, e.message));
  state.client = client;
  return client;
}

function onSession(session) {
  const first = state.me?.user !== session.user;
  state.me = session;
  localStorage.setItem(TOKEN_KEY, session.token);
  state.users.set(session.user, { profile: session.profile, presence: { user: session.user, online: true, last_seen: null } });
  if (first) {
    state.convs.clear();
    state.open = null;
  }
  enterApp(first);
}

function onSignedOut(reason) {
  localStorage.removeItem(TOKEN_KEY);
  state.me = null;
  state.users.clear();
  state.convs.clear();
  state.directory = [];
  state.open = null;
  $("panes").classList.remove("show-chat");
  $("toasts").replaceChildren();
  if ($("card").open) $("card").close();
  const notice =
    reason === "revoked"
      ? "You were signed out because your password was changed."
      : reason === "expired"
        ? "Your session has ended. Please sign in again."
        : "";
  showAuth("signin", notice);
}

function renderConnection(s) {
  const el = $("conn");
  const text = { ready: "", connected: "", connecting: "Connecting…", reconnecting: "Reconnecting…", disconnected: "Offline", closed: "Offline" }[s] ?? "";
  el.textContent = text;
  el.dataset.state = s;
  if (!$("splash").hidden && s === "reconnecting") $("splash-text").textContent = "Cannot reach the server. Retrying…";
}

// ---------------------------------------------------------------------------
// Screens.

function showSplash(text) {
  $("splash-text").textContent = text;
  show($("splash"), true);
  show($("auth"), false);
  show($("app"), false);
}

function showAuth(view, notice = "") {
  show($("splash"), false);
  show($("app"), false);
  show($("auth"), true);
  document.title = "chatcore";
  for (const form of document.querySelectorAll("#auth form")) show(form, form.dataset.view === view);
  const tabs = view === "signin" || view === "signup";
  show($("auth-tabs"), tabs);
  for (const tab of document.querySelectorAll("#auth-tabs .tab")) tab.setAttribute("aria-pressed", String(tab.dataset.view === view));
  const n = $("auth-notice");
  n.textContent = notice;
  show(n, !!notice);
  const first = document.querySelector(`#auth form[data-view="${view}"] input`);
  first?.focus();
}

function enterApp(first) {
  // A reset link opened while signed in: the reset form stays on screen.
  if (resetTokenFromHash()) return;
  show($("splash"), false);
  show($("auth"), false);
  show($("app"), true);
  renderMe();
  if (first) {
    $("search").value = "";
    state.query = "";
    $("panes").classList.remove("show-chat");
    renderChat();
  }
  // After every sign-in or resume: unread counts, and presence that may have changed meanwhile.
  void loadConversations();
  void loadDirectory(state.query);
}

function renderMe() {
  const me = state.me;
  paintAvatar($("me-avatar"), me.profile);
  setName($("me-name"), me.profile.display_name);
}

// -- form errors --------------------------------------------------------------

function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error, .form-error")) {
    el.replaceChildren();
    show(el, false);
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function fieldError(prefix, field, lines) {
  const el = $(`${prefix}-${field}-error`);
  const input = $(`${prefix}-${field}`);
  if (!el) return false;
  el.replaceChildren(...lines.map((t) => (el.tagName === "UL" ? h("li", {}, t) : t)));
  show(el, true);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  return true;
}

/** Shows an error next to its field when it names one, else under the form. */
function showError(prefix, err) {
  if (err instanceof ChatError) {
    if (err.code === "weak_password") {
      // Every broken rule, each in words, next to the password field.
      const lines = err.violations.length ? err.violations.map((v) => VIOLATIONS[v] ?? v) : [err.message];
      if (fieldError(prefix, "password", lines)) return;
    }
    if (err.code === "conflict" && err.field && fieldError(prefix, err.field, [TAKEN[err.field] ?? err.message])) return;
    if ((err.code === "invalid_argument" || err.code === "too_large") && err.field) {
      const field = err.field === "new_password" ? "password" : err.field;
      const text = err.code === "too_large" ? "That is too long." : INVALID[err.field] ?? err.message;
      if (fieldError(prefix, field, [text])) return;
    }
  }
  const el = $(`${prefix}-error`);
  el.textContent = describe(err);
  show(el, true);
}

async function submitting(form, work) {
  const button = form.querySelector("button[type=submit]");
  clearErrors(form);
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    await work();
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

function values(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// -- auth forms -----------------------------------------------------------------

function ensureClient() {
  if (!state.client || state.client.state === "closed") createClient(null);
  return state.client;
}

function wireAuth() {
  for (const tab of document.querySelectorAll("#auth-tabs .tab")) {
    tab.addEventListener("click", () => showAuth(tab.dataset.view));
  }
  $("forgot-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    $("forgot-email").value = $("signin-login").value.includes("@") ? $("signin-login").value : $("forgot-email").value;
    showAuth("forgot");
  });
  for (const a of document.querySelectorAll(".back-to-signin")) {
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      if (location.hash) history.replaceState(null, "", location.pathname + location.search);
      state.resetToken = null;
      if (state.me) enterApp(false);
      else showAuth("signin");
    });
  }

  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const v = values(form);
    void submitting(form, async () => {
      if (!v.login.trim() || !v.password) {
        showError("signin", new ChatError("invalid_argument", "Enter your username or email and your password."));
        return;
      }
      try {
        await ensureClient().login({ login: v.login.trim(), password: v.password });
        form.reset();
      } catch (err) {
        if (err instanceof ChatError && err.code === "unauthenticated") {
          showError("signin", new ChatError("unauthenticated", "Wrong username, email or password."));
        } else {
          showError("signin", err);
        }
      }
    });
  });

  $("signup-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const v = values(form);
    void submitting(form, async () => {
      const missing = ["username", "display_name", "email", "phone", "password"].filter((k) => !String(v[k] ?? "").trim());
      if (missing.length) {
        for (const k of missing) fieldError("signup", k, ["Required."]);
        $(`signup-${missing[0]}`).focus();
        return;
      }
      try {
        await ensureClient().register({
          username: v.username.trim(),
          email: v.email.trim(),
          phone: v.phone.trim(),
          display_name: v.display_name.trim(),
          password: v.password,
        });
        form.reset();
      } catch (err) {
        // The form keeps what was typed: only the faulty field is marked.
        showError("signup", err);
      }
    });
  });

  $("forgot-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const v = values(form);
    void submitting(form, async () => {
      if (!v.email.trim()) {
        fieldError("forgot", "email", ["Enter the email address of your account."]);
        return;
      }
      try {
        await ensureClient().requestPasswordReset(v.email.trim());
        showAuth("signin", `If an account uses ${v.email.trim()}, a link to reset its password is on its way. Check your mail.`);
      } catch (err) {
        showError("forgot", err);
      }
    });
  });

  $("reset-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const v = values(form);
    void submitting(form, async () => {
      try {
        await ensureClient().confirmPasswordReset(state.resetToken ?? "", v.new_password);
        state.resetToken = null;
        form.reset();
        history.replaceState(null, "", location.pathname + location.search);
        if (state.me) {
          // Signed in here (as that account, the server's 4001 close signs this page out too).
          enterApp(false);
          toast("Password changed", "The password of that account was changed.");
        } else {
          showAuth("signin", "Your password was changed. Sign in with the new one.");
        }
      } catch (err) {
        if (err instanceof ChatError && err.code === "not_found") {
          showError("reset", new ChatError("not_found", "This reset link is invalid, already used or expired. Ask for a new one."));
        } else {
          showError("reset", err);
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------
// Directory.

async function loadDirectory(query, append = false) {
  const client = state.client;
  if (!client || !state.me) return;
  const seq = ++state.searchSeq;
  try {
    const page = await client.searchUsers(query, { limit: 50, after: append ? state.directoryNext : undefined });
    if (seq !== state.searchSeq) return; // a newer search won
    for (const entry of page.users) rememberUser(entry);
    const ids = page.users.map((u) => u.profile.user).filter((id) => id !== state.me?.user);
    state.directory = append ? [...state.directory, ...ids] : ids;
    state.directoryNext = page.next;
    renderDirectory();
  } catch (err) {
    console.warn("search failed:", err);
  }
}

async function loadConversations() {
  try {
    const list = await state.client.conversations();
    const missing = [];
    for (const s of list) {
      const peer = s.peer ?? peerOf(s.conv, state.me.user);
      if (!peer) continue;
      const c = conv(s.conv, peer);
      c.unread = state.open === s.conv && visible() ? 0 : s.unread;
      c.lastSeq = Math.max(c.lastSeq, s.last_seq);
      if (s.last) addMessage(c, s.last, false);
      if (!state.users.has(peer)) missing.push(peer);
    }
    await Promise.all(missing.map((id) => state.client.getProfile(id).then(rememberUser, () => {})));
    renderDirectory();
    updateTitle();
    const open = state.open && state.convs.get(state.open);
    if (open) markRead(open);
  } catch (err) {
    console.warn("conversations failed:", err);
  }
}

/** People to list: the search result, with those one has chatted with first (latest activity first). */
function directoryOrder() {
  const ids = [...state.directory];
  if (!state.query) {
    for (const c of state.convs.values()) if (c.lastTs && !ids.includes(c.peer) && state.users.has(c.peer)) ids.push(c.peer);
  }
  const activity = (id) => state.convs.get(directConversationId(state.me.user, id))?.lastTs ?? 0;
  return ids
    .map((id, i) => ({ id, i, t: activity(id) }))
    .sort((a, b) => b.t - a.t || a.i - b.i)
    .map((x) => x.id);
}

function previewOf(c) {
  const seqs = [...c.messages.keys()];
  if (!seqs.length) return null;
  const m = c.messages.get(Math.max(...seqs));
  return (m.from === state.me.user ? "You: " : "") + (m.content.kind === "text" ? m.content.text : "");
}

function renderDirectory() {
  if (!state.me) return;
  const list = $("directory");
  const ids = directoryOrder();
  list.replaceChildren(
    ...ids.map((id) => {
      const u = state.users.get(id);
      if (!u) return null;
      const c = state.convs.get(directConversationId(state.me.user, id));
      const unread = c?.unread ?? 0;
      const preview = c ? previewOf(c) : null;
      const open = state.open && c && state.open === c.id;
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
            onclick: () => openChat(id),
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
  show($("directory-empty"), ids.length === 0);
  show($("directory-more"), !!state.directoryNext);
}

function onPresence(p) {
  const u = state.users.get(p.user);
  if (!u) return;
  u.presence = p;
  renderDirectory();
  if (state.open && state.convs.get(state.open)?.peer === p.user) renderChatHeader();
  if ($("card").open && $("card").dataset.user === p.user) $("card-presence").textContent = presenceText(p);
}

function wireDirectory() {
  let timer;
  $("search").addEventListener("input", (ev) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.query = ev.target.value.trim();
      void loadDirectory(state.query);
    }, 200);
  });
  $("directory-more").addEventListener("click", () => void loadDirectory(state.query, true));
  // "last seen 3 min ago" ages; people who signed up meanwhile appear (no push announces them).
  setInterval(() => {
    if (!state.me) return;
    renderDirectory();
    if (state.open) renderChatHeader();
    if (visible() && !state.directoryNext) void loadDirectory(state.query);
  }, 20_000);
}

// ---------------------------------------------------------------------------
// Chat.

/** Adds a stored message to its conversation; `live`: it just arrived. */
function addMessage(c, m, live) {
  if (m.from === state.me?.user) c.pending.delete(m.client_id);
  if (c.messages.has(m.seq)) return false;
  c.messages.set(m.seq, m);
  c.lastSeq = Math.max(c.lastSeq, m.seq);
  c.lastTs = Math.max(c.lastTs, m.ts);
  if (live && m.from === state.me?.user) c.readSeq = Math.max(c.readSeq, m.seq);
  return true;
}

function onMessage(m) {
  if (!state.me) return;
  const peer = peerOf(m.conv, state.me.user);
  if (!peer) return;
  const c = conv(m.conv, peer);
  if (!addMessage(c, m, true)) return;
  if (!state.users.has(peer)) {
    void state.client.getProfile(peer).then((e) => {
      rememberUser(e);
      renderDirectory();
    }, () => {});
  }
  if (state.open === c.id) {
    renderMessages({ stick: true });
    markRead(c);
  }
  renderDirectory();
}

function onAlert(a) {
  if (!state.me) return;
  const peer = peerOf(a.conv, state.me.user);
  if (!peer) return;
  const c = conv(a.conv, peer);
  if (state.open === c.id && visible()) {
    markRead(c);
    return;
  }
  c.unread = a.unread;
  renderDirectory();
  updateTitle();
  const m = c.messages.get(a.seq);
  toast(userName(a.from), m?.content.kind === "text" ? m.content.text : "New message", () => openChat(peer));
}

function updateTitle() {
  let total = 0;
  for (const c of state.convs.values()) total += c.unread;
  document.title = total ? `(${total}) chatcore` : "chatcore";
}

/** The open conversation is on screen: everything in it is read. */
function markRead(c) {
  if (!visible()) return;
  const had = c.unread;
  c.unread = 0;
  if (c.lastSeq > c.readSeq) {
    const seq = c.lastSeq;
    c.readSeq = seq;
    state.client.read(c.id, seq).catch(() => {
      c.readSeq = 0;
    });
  }
  if (had) renderDirectory();
  updateTitle();
}

async function openChat(peer) {
  if (!state.me) return;
  const c = conv(directConversationId(state.me.user, peer), peer);
  const changed = state.open !== c.id;
  state.open = c.id;
  $("panes").classList.add("show-chat");
  if (changed) {
    $("composer-text").value = "";
    autoGrow();
  }
  renderChat();
  renderDirectory();
  state.client.focus(c.id).catch(() => {});
  if (!c.loaded) await loadOlder(c);
  markRead(c);
  if (matchMedia("(min-width: 721px)").matches) $("composer-text").focus();
}

function closeChat() {
  state.open = null;
  $("panes").classList.remove("show-chat");
  state.client?.focus(undefined).catch(() => {});
  renderChat();
  renderDirectory();
}

async function loadOlder(c) {
  if (c.loading || (c.loaded && !c.more)) return;
  c.loading = true;
  renderHistoryStatus();
  try {
    const seqs = [...c.messages.keys()];
    const before = c.loaded && seqs.length ? Math.min(...seqs) : undefined;
    const page = await state.client.history(c.id, { before, limit: PAGE });
    const box = $("messages");
    const fromBottom = box.scrollHeight - box.scrollTop;
    for (const m of page.messages) addMessage(c, m, false);
    const first = !c.loaded;
    c.more = page.more;
    c.loaded = true;
    c.loading = false;
    if (state.open === c.id) {
      renderMessages({ stick: first });
      // Keep what was on screen in place while older messages are added above.
      if (!first) box.scrollTop = box.scrollHeight - fromBottom;
      // Not enough to scroll yet: load on until it is, or until the beginning.
      if (c.more && box.scrollHeight <= box.clientHeight + 10) await loadOlder(c);
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
  renderHistoryStatus();
}

function renderChat() {
  const c = state.open && state.convs.get(state.open);
  show($("chat-empty"), !c);
  show($("chat-open"), !!c);
  if (!c) return;
  renderChatHeader();
  renderMessages({ stick: true });
}

function renderChatHeader() {
  const c = state.convs.get(state.open);
  const u = c && state.users.get(c.peer);
  if (!u) return;
  paintAvatar($("peer-avatar"), u.profile);
  setName($("peer-name"), u.profile.display_name);
  const p = $("peer-presence");
  p.textContent = presenceText(u.presence);
  p.classList.toggle("online", u.presence.online);
}

function renderHistoryStatus() {
  const c = state.open && state.convs.get(state.open);
  const el = $("history-status");
  if (!c) return;
  el.textContent = c.loading ? "Loading…" : !c.more && c.loaded ? `This is the beginning of your conversation with ${userName(c.peer)}.` : "";
}

function bubble(m, mine, status, onRetry) {
  const text = m.content?.kind === "text" ? m.content.text : m.text;
  return h(
    "li",
    { class: `msg ${mine ? "mine" : "theirs"} ${status ?? ""}`, dataset: m.seq ? { seq: String(m.seq) } : { pending: m.client_id } },
    h("span", { class: "msg-text", title: status === "failed" ? m.error : undefined }, text),
    h(
      "span",
      { class: "msg-meta" },
      status === "sending" ? "Sending…" : status === "failed" ? "Not sent" : timeFmt.format(m.ts),
      status === "failed" ? h("button", { type: "button", class: "link retry", onclick: onRetry }, "Retry") : null,
    ),
  );
}

function renderMessages({ stick }) {
  const c = state.open && state.convs.get(state.open);
  if (!c) return;
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const me = state.me.user;
  const items = [];
  let lastDay = null;
  const seqs = [...c.messages.keys()].sort((a, b) => a - b);
  for (const seq of seqs) {
    const m = c.messages.get(seq);
    if (lastDay === null || !sameDay(lastDay, m.ts)) {
      items.push(h("li", { class: "day" }, dayLabel(m.ts)));
      lastDay = m.ts;
    }
    items.push(bubble(m, m.from === me));
  }
  for (const p of c.pending.values()) items.push(bubble(p, true, p.status, () => void sendPending(c, p)));
  $("message-list").replaceChildren(...items);
  renderHistoryStatus();
  if (stick || atBottom) box.scrollTop = box.scrollHeight;
}

async function sendPending(c, p) {
  p.status = "sending";
  renderMessages({ stick: true });
  try {
    // The same client_id on every attempt: a retry is never stored twice.
    const { message } = await state.client.send(c.peer, p.text, { clientId: p.client_id });
    c.pending.delete(p.client_id);
    addMessage(c, message, true);
  } catch (err) {
    p.status = "failed";
    p.error = describe(err);
  }
  if (state.open === c.id) renderMessages({ stick: true });
  renderDirectory();
}

/** Grows the composer with its text (up to the CSS max-height); natural height when empty or hidden. */
function autoGrow() {
  const t = $("composer-text");
  t.style.height = "";
  if (t.value && t.offsetParent !== null) t.style.height = `${Math.min(t.scrollHeight + 2, 160)}px`;
}

function wireChat() {
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const c = state.open && state.convs.get(state.open);
    const input = $("composer-text");
    const text = input.value.trim();
    if (!c || !text) return;
    const p = { client_id: newClientId(), text, ts: serverNow(), status: "sending" };
    c.pending.set(p.client_id, p);
    input.value = "";
    autoGrow();
    void sendPending(c, p);
  });
  $("composer-text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("composer-text").addEventListener("input", autoGrow);
  $("messages").addEventListener("scroll", () => {
    const c = state.open && state.convs.get(state.open);
    if (c && $("messages").scrollTop < 60 && c.more && c.loaded) void loadOlder(c);
  });
  $("chat-back").addEventListener("click", closeChat);
  $("chat-peer").addEventListener("click", () => {
    const c = state.convs.get(state.open);
    if (c) void openCard(c.peer);
  });
  $("me-button").addEventListener("click", () => void openCard(state.me.user));
  $("signout").addEventListener("click", () => void signOut());
  document.addEventListener("visibilitychange", () => {
    if (!state.me || !state.client) return;
    // The server alerts for messages outside the shown conversation: a hidden page shows none.
    state.client.focus(visible() && state.open ? state.open : undefined).catch(() => {});
    const c = state.open && state.convs.get(state.open);
    if (c && visible()) markRead(c);
    if (visible()) void loadDirectory(state.query);
  });
}

async function signOut() {
  try {
    await state.client.logout();
  } catch {
    // Unreachable server: forget the session here anyway.
    state.client.close();
    state.client = null;
    onSignedOut("logout");
  }
}

// ---------------------------------------------------------------------------
// Contact card and own profile.

async function openCard(user) {
  const dialog = $("card");
  const mine = user === state.me.user;
  let entry = state.users.get(user);
  try {
    entry = await state.client.getProfile(user);
    rememberUser(entry);
  } catch (err) {
    if (!entry) {
      toast("Contact card", describe(err));
      return;
    }
  }
  dialog.dataset.user = user;
  paintAvatar($("card-avatar"), entry.profile);
  setName($("card-name"), entry.profile.display_name);
  $("card-username").textContent = `@${entry.profile.username}`;
  $("card-presence").textContent = mine ? "This is you" : presenceText(entry.presence);
  $("card-about").textContent = entry.profile.about || (mine ? "" : "No about text yet.");
  show($("card-message"), !mine);
  const form = $("profile-form");
  show(form, mine);
  if (mine) {
    clearErrors(form);
    form.elements.display_name.value = entry.profile.display_name;
    form.elements.about.value = entry.profile.about;
  }
  if (!dialog.open) dialog.showModal();
}

function wireCard() {
  $("card-message").addEventListener("click", () => {
    const user = $("card").dataset.user;
    $("card").close();
    void openChat(user);
  });
  $("profile-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const v = values(form);
    void submitting(form, async () => {
      try {
        const entry = await state.client.updateProfile({ display_name: v.display_name.trim(), about: v.about });
        rememberUser(entry);
        state.me.profile = entry.profile;
        renderMe();
        $("card").close();
      } catch (err) {
        showError("profile", err);
      }
    });
  });
  // A click on the backdrop closes the dialog.
  $("card").addEventListener("click", (ev) => {
    if (ev.target === $("card")) $("card").close();
  });
}

// ---------------------------------------------------------------------------
// Toasts: a message arrived in another conversation.

function toast(title, text, onclick) {
  const el = h(
    "button",
    { type: "button", class: "toast", role: "status" },
    h("strong", { class: "toast-title" }, nameNode(title)),
    h("span", { class: "toast-text" }, text),
  );
  const dismiss = () => {
    el.classList.add("leaving");
    setTimeout(() => el.remove(), 200);
  };
  el.addEventListener("click", () => {
    dismiss();
    onclick?.();
  });
  $("toasts").append(el);
  while ($("toasts").children.length > 3) $("toasts").firstElementChild.remove();
  setTimeout(dismiss, 6000);
}

// ---------------------------------------------------------------------------
// Boot.

function resetTokenFromHash() {
  const m = /^#reset=([A-Za-z0-9_-]+)$/.exec(location.hash);
  return m ? m[1] : null;
}

function route() {
  const reset = resetTokenFromHash();
  if (reset) {
    state.resetToken = reset;
    showAuth("reset");
    return true;
  }
  if (location.hash === "#forgot" && !state.me) {
    showAuth("forgot");
    return true;
  }
  return false;
}

function boot() {
  wireAuth();
  wireDirectory();
  wireChat();
  wireCard();
  window.addEventListener("hashchange", () => void route());
  const token = localStorage.getItem(TOKEN_KEY);
  if (route()) {
    if (!state.client) createClient(null);
    return;
  }
  if (!token) {
    createClient(null);
    showAuth("signin");
    return;
  }
  showSplash("Connecting…");
  createClient(token)
    .connect()
    .catch((err) => {
      // unauthenticated: `signedout` already showed the sign-in screen. Otherwise the client retries by itself.
      if (!(err instanceof ChatError) || err.code !== "unauthenticated") $("splash-text").textContent = "Cannot reach the server. Retrying…";
    });
}

boot();
