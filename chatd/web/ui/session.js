// @ts-check
// The ChatClient: created here, its events turned into state changes. The
// session token is kept in localStorage so a reload resumes the session.

import { ChatClient } from "../chatcore/web.js";
import { $, dialog } from "./dom.js";
import { deviceName } from "./format.js";
import { state } from "./store.js";
import { showAuth, showApp, splashText } from "./shell.js";
import { onMessage, onAlert, onRead, openChat, resetChat } from "./chat.js";
import { joinFromLink } from "./group.js";
import { flushOutbox, forgetDrafts, restoreDrafts, restoreOutbox } from "./composer.js";
import { onConnectionState } from "./connection.js";
import { onPresence, onProfile, onNewUser, loadConversations, loadDirectory, resetDirectory } from "./directory.js";
import { clearToasts } from "./notify.js";
import { forgetPictures } from "./avatar.js";
import { loadContacts, onContact, onPrivacy, resetContacts } from "./contacts.js";
import { resetTokenFromHash } from "./auth.js";
import { startE2e, stopE2e } from "./e2e.js";
import { checkBackup } from "./backup.js";
import { onTyping, resetTyping } from "./typing.js";
import { onReceipt } from "./receipts.js";
import { loadRequests, onAnswered, onInvited, resetRequests } from "./requests.js";
import { resetMedia } from "./attach.js";
import { attachPhone, endCalls } from "./calls.js";

export const TOKEN_KEY = "chatcore.token";

function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/** A new client (resuming `token` when given), wired to the page. */
export function createClient(/** @type {string | null} */ token) {
  // A sign-in is a new device, and this page keeps no messages: it starts from each conversation's newest entry
  // (PROTOCOL.md, new-device flow) and loads older history as the reader scrolls up, never the whole history at once.
  const client = new ChatClient({
    url: wsUrl(),
    token: token ?? undefined,
    clientName: "chatcore-web/0.1",
    device: deviceName(),
    newDeviceHistory: "latest",
  });
  client.on("session", ({ session, resumed }) => onSession(session, resumed));
  client.on("signedout", ({ reason }) => onSignedOut(reason));
  // Encrypted messages come through the SecureChat (ui/e2e.js), once read as far as this device can; straight from
  // the client only when there is none or it failed to start (they then show why they cannot be read).
  client.on("message", ({ message }) => {
    if (message.content.kind !== "encrypted" || !state.secure || state.e2e.status === "failed") onMessage(message);
  });
  client.on("presence", (p) => onPresence(p));
  client.on("profile", (p) => onProfile(p));
  client.on("newuser", (e) => onNewUser(e));
  client.on("alert", (a) => onAlert(a));
  client.on("read", (r) => onRead(r));
  client.on("typing", (t) => onTyping(t));
  client.on("receipt", (r) => onReceipt(r));
  client.on("contact", (c) => onContact(c));
  client.on("privacy", (p) => onPrivacy(p));
  client.on("invited", (s) => onInvited(s));
  client.on("answered", (a) => onAnswered(a));
  client.on("state", (s) => {
    if (state.screen === "splash" && s === "reconnecting") splashText("Cannot reach the server. Retrying…");
    onConnectionState(s);
  });
  client.on("error", (e) => console.warn("chatcore:", e.code, e.message));
  attachPhone(client);
  state.client = client;
  return client;
}

/** The client, made anew when there is none or it was closed. */
export function ensureClient() {
  if (!state.client || state.client.state === "closed") return createClient(null);
  return state.client;
}

function onSession(/** @type {import("./store.js").Session} */ session, /** @type {boolean} */ resumed) {
  const first = state.me?.user !== session.user;
  state.me = session;
  localStorage.setItem(TOKEN_KEY, session.token);
  state.users.set(session.user, { profile: session.profile, presence: { user: session.user, online: true } });
  if (first) {
    state.convs.clear();
    state.open = null;
    if (state.client) startE2e(state.client, session, onMessage);
    checkBackup();
    void restoreDrafts();
  }
  enterApp(first);
  // Unsent messages: read back from the outbox after a sign-in or reload, sent again after a reconnect.
  if (first) void restoreOutbox();
  else flushOutbox();
  // A reload (the session resumed) reopens the conversation the address names.
  const id = /^#chat=(.+)$/.exec(location.hash)?.[1];
  if (first && resumed && id) void openChat(decodeURIComponent(id));
  // An invite link opened signed out: joined once signed in.
  if (first) void joinFromLink();
}

/** Shows the app after a sign-in or resume (`first`: a new user on this page). */
export function enterApp(/** @type {boolean} */ first) {
  // A reset link opened while signed in: the reset form stays on screen.
  if (resetTokenFromHash()) return;
  showApp();
  if (first) {
    resetDirectory();
    resetChat();
    resetContacts();
    resetRequests();
  }
  // After every sign-in or resume: unread counts, and presence that may have changed meanwhile.
  void loadConversations();
  void loadRequests();
  void loadDirectory(state.query);
  void loadContacts();
}

/** Whether the sign-out under way forgets this device's keys in this browser (the user chose so). */
let forgetKeys = false;

function onSignedOut(/** @type {import("../chatcore/web.js").SignOutReason} */ reason) {
  localStorage.removeItem(TOKEN_KEY);
  // Drafts first: forgetting the keys deletes the slot the drafts are kept in, and a late write would make it again.
  const forget = forgetKeys;
  forgetKeys = false;
  void (state.me ? forgetDrafts(state.me.user) : Promise.resolve()).finally(() => stopE2e(forget));
  if (location.hash.startsWith("#chat=")) history.replaceState(null, "", location.pathname + location.search);
  resetMedia();
  void endCalls();
  state.me = null;
  state.users.clear();
  forgetPictures();
  state.convs.clear();
  state.directory = [];
  state.directoryLoaded = false;
  state.open = null;
  $("panes").classList.remove("show-chat");
  clearToasts();
  resetTyping();
  resetContacts();
  resetRequests();
  for (const id of ["card", "group", "new-group", "mute", "join"]) if (dialog(id).open) dialog(id).close();
  const notice =
    reason === "revoked"
      ? "You were signed out because your password was changed."
      : reason === "expired"
        ? "Your session has ended. Please sign in again."
        : "";
  showAuth("signin", notice);
}

/** Signs out; `forget`: this browser forgets this device's end-to-end keys too (else they stay, sealed). */
export async function signOut(forget = false) {
  const client = state.client;
  if (!client) return;
  forgetKeys = forget;
  await endCalls();
  try {
    await client.logout();
  } catch {
    // Unreachable server: forget the session here anyway.
    client.close();
    state.client = null;
    onSignedOut("logout");
  }
}
