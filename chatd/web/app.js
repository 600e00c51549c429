// @ts-check
// The chatcore web client. Plain ES modules, no framework, no bundler: chatd
// serves them with index.html and style.css, and the binding's browser build
// in ./chatcore/ (compiled from bindings/typescript; do not edit those files).
//
// Everything goes through the protocol (JSON codec over /ws) via ChatClient; every conversation this page makes
// is end-to-end encrypted (ui/e2e.js, on the binding's SecureChat and vodozemac in WebAssembly).
// This file boots the page; the rest lives in ./ui/, one module per screen or
// concern, around one state store (ui/store.js, which says how rendering works):
//
//   store.js       the state, and invalidate() -> one render pass per frame
//   dom.js         h() and friends: DOM nodes, never HTML strings
//   format.js      texts for error codes, times, presence
//   avatar.js      avatars: the profile or group picture (downloaded once per media id), else initials on a colour
//   forms.js       field errors, busy forms
//   shell.js       which screen shows (splash, signed out, signed in), own name
//   session.js     the ChatClient and its session events
//   auth.js        sign in, sign up, forgotten password, reset
//   directory.js   the chat list (conversations from the server) and people search
//   chat.js        the open conversation: header, messages, history, read marks
//   richtext.js    a message's text as nodes: links, *bold*, _italic_, `code`
//   composer.js    typing and sending
//   card.js        contact card and own profile
//   notify.js      toasts, unread count in the title
//   connection.js  the connection banner, and the ping that finds a dead link
//   outbox.js      unsent messages in IndexedDB
//   settings.js    settings kept in this browser: the theme
//   group.js       new group, the group dialog (members, roles, invite link), joining by a link
//   mute.js        muting a conversation for a while or for good
//   contacts.js    contacts and requests, blocking, privacy settings
//   requests.js    message requests and group invitations: the Requests view, accepting, deleting, blocking
//   e2e.js         end-to-end encryption: the keys this browser keeps, reading and sending encrypted messages,
//                  safety numbers, verified contacts, warnings when a member's keys change
//   trust.js       the contact card's safety number and devices; one's own devices (rename, verify, sign out)
//   backup.js      the encrypted key backup: turning it on, restoring with the recovery key
//   typing.js      "typing…": who writes where, and telling the others while this user writes
//   life.js        a message's life: its latest edit, reactions, deletion, quote, expiry, "Delete for me"
//   msgmenu.js     the message menu: reply, react (the picker), edit, delete for everyone or for this device
//   compose.js     the composer's reply and edit modes, and @mentions in groups
//   media.js       photos, files and voice notes: made ready (photos stripped), encrypted, uploaded, fetched back
//   mediaview.js   their bubbles, the photo viewer, the voice player, the bubble of one on its way
//   attach.js      attaching, dropping and pasting files (the attach dialog), recording voice notes
//   picture.js     changing one's own or a group's picture: pick, crop to a square, scale, re-encode, upload, set
//   calls.js       voice and video calls in a direct conversation: the call buttons, ringing, the call screen

import { wireSettings } from "./ui/settings.js";
import { ChatError } from "./chatcore/web.js";
import { TOKEN_KEY, createClient } from "./ui/session.js";
import { route, wireAuth } from "./ui/auth.js";
import { wireDirectory } from "./ui/directory.js";
import { wireChat } from "./ui/chat.js";
import { wireComposer } from "./ui/composer.js";
import { wireCard } from "./ui/card.js";
import { showAuth, showSplash, splashText } from "./ui/shell.js";
import { $, dialog } from "./ui/dom.js";
import { signOut } from "./ui/session.js";
import { openCard } from "./ui/card.js";
import { state } from "./ui/store.js";
import { wireConnection } from "./ui/connection.js";
import { joinFromLink, wireGroups } from "./ui/group.js";
import { wireMute } from "./ui/mute.js";
import { wireContacts } from "./ui/contacts.js";
import { wireRequests } from "./ui/requests.js";
import { wireTrust } from "./ui/trust.js";
import { wireBackup } from "./ui/backup.js";
import { wireCompose } from "./ui/compose.js";
import { wireMessageMenu } from "./ui/msgmenu.js";
import { wireAttach } from "./ui/attach.js";
import { wirePictures } from "./ui/picture.js";
import { wireCalls } from "./ui/calls.js";

function boot() {
  wireAuth();
  wireDirectory();
  wireChat();
  wireComposer();
  wireCard();
  wireConnection();
  wireSettings();
  wireGroups();
  wireMute();
  wireContacts();
  wireRequests();
  wireTrust();
  wireBackup();
  wireCompose();
  wireMessageMenu();
  wireAttach();
  wirePictures();
  wireCalls();
  $("me-button").addEventListener("click", () => {
    if (state.me) void openCard(state.me.user);
  });
  // Signing out asks whether this browser keeps the end-to-end keys (ui/e2e.js).
  const confirmSignOut = dialog("signout-confirm");
  $("signout").addEventListener("click", () => confirmSignOut.showModal());
  $("signout-keep").addEventListener("click", () => {
    confirmSignOut.close();
    void signOut(false);
  });
  $("signout-forget").addEventListener("click", () => {
    confirmSignOut.close();
    void signOut(true);
  });
  $("signout-cancel").addEventListener("click", () => confirmSignOut.close());
  // The skip link: to the message box when a conversation is open, else to the search.
  $("skip-link").addEventListener("click", (ev) => {
    ev.preventDefault();
    const target = state.open ? $("composer-text") : $("search");
    target.focus();
  });
  window.addEventListener("hashchange", () => void route());
  const token = localStorage.getItem(TOKEN_KEY);
  // An invite link: its token waits for the session (joined in session.js once signed in).
  void joinFromLink();
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
      if (!(err instanceof ChatError) || err.code !== "unauthenticated") splashText("Cannot reach the server. Retrying…");
    });
}

boot();
