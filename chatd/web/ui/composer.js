// @ts-check
// The composer: what the user types, and sending it (each message keeps its
// client id on every attempt, so a retry is never stored twice).

import { ChatError, newClientId } from "../chatcore/web.js";
import { $, field, form, show } from "./dom.js";
import { describe } from "./format.js";
import { conv, invalidate, openConv, state } from "./store.js";
import { addMessage, stickToBottom } from "./chat.js";
import { sendEnded, sendStarted } from "./connection.js";
import * as outbox from "./outbox.js";

/** Failures that pass: the message waits for the connection and goes out by itself. */
const TRANSIENT = new Set(["disconnected", "timeout", "closed", "unavailable", "rate_limited", "internal"]);

/**
 * Sends (or re-sends) a message of ours from the outbox. It stays in the outbox (IndexedDB) until the server
 * has stored it; the same client_id on every attempt means a repeat is never stored twice.
 */
export async function sendPending(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Pending} */ p) {
  const client = state.client;
  if (!client || p.status === "sending") return;
  p.status = "sending";
  delete p.error;
  if (state.open === c.id) stickToBottom();
  sendStarted();
  try {
    const { message } = await client.send({ conv: c.id }, p.text, { clientId: p.client_id });
    c.pending.delete(p.client_id);
    addMessage(c, message, true);
    void outbox.remove(p.client_id);
  } catch (err) {
    if (err instanceof ChatError && TRANSIENT.has(err.code)) {
      p.status = "waiting";
    } else {
      // Refused for good: kept, marked, for the user to edit or delete.
      p.status = "failed";
      p.error = describe(err);
      void outbox.put(entryOf(c, p));
    }
  } finally {
    sendEnded();
  }
  if (state.open === c.id) invalidate("messages");
  invalidate("directory");
}

/** @returns {import("./outbox.js").Entry} */
function entryOf(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Pending} */ p) {
  /** @type {import("./outbox.js").Entry} */
  const e = { client_id: p.client_id, user: state.me?.user ?? "", conv: c.id, text: p.text, ts: p.ts };
  if (p.status === "failed" && p.error) e.failed = p.error;
  return e;
}

/** Sends every message that waits for the connection (it is back). */
export function flushOutbox() {
  for (const c of state.convs.values()) for (const p of c.pending.values()) if (p.status === "waiting" && !c.left) void sendPending(c, p);
}

/** After a sign-in or reload: the user's unsent messages back in their conversations, and on their way. */
export async function restoreOutbox() {
  const me = state.me;
  if (!me) return;
  for (const e of await outbox.entries(me.user)) {
    if (state.me !== me) return;
    const c = conv(e.conv);
    if (c.pending.has(e.client_id)) continue;
    /** @type {import("./store.js").Pending} */
    const p = { client_id: e.client_id, text: e.text, ts: e.ts, status: e.failed ? "failed" : "waiting" };
    if (e.failed) p.error = e.failed;
    c.pending.set(p.client_id, p);
  }
  invalidate("messages", "directory");
  flushOutbox();
}

/** Drops a message the server refused (the user deleted it). */
export function discardPending(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Pending} */ p) {
  c.pending.delete(p.client_id);
  void outbox.remove(p.client_id);
  invalidate("messages");
}

/** Puts a refused message back in the composer to be changed and sent anew. */
export function editPending(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Pending} */ p) {
  const input = field("composer-text");
  input.value = input.value ? `${p.text}\n${input.value}` : p.text;
  discardPending(c, p);
  saveDraft(c);
  autoGrow();
  renderCount();
  input.focus();
}

// -- drafts: one per conversation, kept in localStorage (per user) so neither
// opening another conversation nor a reload loses what was typed.

const DRAFTS_KEY = "chatcore.drafts.";

function persistDrafts() {
  const me = state.me;
  if (!me) return;
  const key = DRAFTS_KEY + me.user;
  try {
    if (state.drafts.size) localStorage.setItem(key, JSON.stringify(Object.fromEntries(state.drafts)));
    else localStorage.removeItem(key);
  } catch {
    // Storage full or refused: the drafts stay in memory for this page.
  }
}

/** Reads the signed-in user's drafts (after a sign-in or reload). */
export function restoreDrafts() {
  state.drafts.clear();
  const me = state.me;
  if (!me) return;
  try {
    const saved = JSON.parse(localStorage.getItem(DRAFTS_KEY + me.user) ?? "{}");
    for (const [conv, text] of Object.entries(saved)) if (typeof text === "string" && text) state.drafts.set(conv, text);
  } catch {
    // A damaged entry: no drafts.
  }
}

/** Forgets the drafts of `user` (signed out). */
export function forgetDrafts(/** @type {string} */ user) {
  state.drafts.clear();
  localStorage.removeItem(DRAFTS_KEY + user);
}

/** Keeps what the composer holds as the draft of `c`. */
export function saveDraft(/** @type {import("./store.js").Conv | null} */ c) {
  if (!c) return;
  const text = field("composer-text").value;
  if (text) state.drafts.set(c.id, text);
  else state.drafts.delete(c.id);
  persistDrafts();
}

/** Puts the draft of `c` into the composer. */
export function loadDraft(/** @type {import("./store.js").Conv} */ c) {
  field("composer-text").value = state.drafts.get(c.id) ?? "";
  autoGrow();
  renderCount();
}

// -- length: the server takes at most 16 KiB of UTF-8 per text (PROTOCOL.md), so the composer counts bytes
// as the server does: 9,000 "é" are 18,000 bytes. Nothing is cut; a text over the limit is refused here,
// inline, and stays in the composer.

const MAX_TEXT_BYTES = 16 * 1024;
/** The counter shows from this many bytes on. */
const COUNT_FROM = MAX_TEXT_BYTES - 2 * 1024;
const utf8 = new TextEncoder();
const number = new Intl.NumberFormat("en-GB");

/** UTF-8 length of `text`, exact when it matters: a text of n UTF-16 units has at most 3n bytes, so short ones are not encoded. */
function byteLength(/** @type {string} */ text) {
  return text.length * 3 < COUNT_FROM ? text.length : utf8.encode(text).length;
}

function renderCount() {
  const input = field("composer-text");
  const bytes = byteLength(input.value);
  const count = $("composer-count");
  const over = bytes > MAX_TEXT_BYTES;
  show(count, bytes >= COUNT_FROM);
  count.classList.toggle("over", over);
  count.textContent = over
    ? `${number.format(bytes)} of ${number.format(MAX_TEXT_BYTES)} bytes: ${number.format(bytes - MAX_TEXT_BYTES)} too many`
    : `${number.format(MAX_TEXT_BYTES - bytes)} bytes left`;
  if (!over) clearComposerError();
}

function clearComposerError() {
  show($("composer-error"), false);
  field("composer-text").removeAttribute("aria-invalid");
}

/** Grows the composer with its text (up to the CSS max-height); natural height when empty or hidden. */
function autoGrow() {
  const t = field("composer-text");
  t.style.height = "";
  if (t.value && t.offsetParent !== null) t.style.height = `${Math.min(t.scrollHeight + 2, 160)}px`;
}

export function wireComposer() {
  const input = /** @type {HTMLTextAreaElement} */ (field("composer-text"));
  form("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const c = openConv();
    // Sent as typed (leading spaces and all); blank text is not sent.
    const text = input.value;
    if (!c || c.left || !text.trim()) return;
    if (byteLength(text) > MAX_TEXT_BYTES) {
      const err = $("composer-error");
      err.textContent = "This message is too long to send. Shorten it or split it in parts; your text stays here.";
      show(err, true);
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    /** @type {import("./store.js").Pending} */
    const p = { client_id: newClientId(), text, ts: Date.now(), status: "waiting" };
    c.pending.set(p.client_id, p);
    input.value = "";
    saveDraft(c);
    autoGrow();
    renderCount();
    stickToBottom();
    // Into the outbox first: from here on, neither a dead link nor a reload loses it.
    void outbox.put(entryOf(c, p)).then(() => sendPending(c, p));
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form("composer").requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    autoGrow();
    renderCount();
    saveDraft(openConv());
  });
}
