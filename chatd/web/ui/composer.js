// @ts-check
// The composer: what the user types, and sending it (each message keeps its
// client id on every attempt, so a retry is never stored twice).

import { newClientId } from "../chatcore/web.js";
import { field, form } from "./dom.js";
import { describe } from "./format.js";
import { invalidate, openConv, serverNow, state } from "./store.js";
import { addMessage, stickToBottom } from "./chat.js";

/** Sends (or re-sends) a message of ours. */
export async function sendPending(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Pending} */ p) {
  const client = state.client;
  if (!client) return;
  p.status = "sending";
  if (state.open === c.id) stickToBottom();
  try {
    // The same client_id on every attempt: a retry is never stored twice.
    const { message } = await client.send(c.peer, p.text, { clientId: p.client_id });
    c.pending.delete(p.client_id);
    addMessage(c, message, true);
  } catch (err) {
    p.status = "failed";
    p.error = describe(err);
  }
  if (state.open === c.id) stickToBottom();
  invalidate("directory");
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
    if (!c || !text.trim()) return;
    /** @type {import("./store.js").Pending} */
    const p = { client_id: newClientId(), text, ts: serverNow(), status: "sending" };
    c.pending.set(p.client_id, p);
    input.value = "";
    saveDraft(c);
    autoGrow();
    void sendPending(c, p);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form("composer").requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    autoGrow();
    saveDraft(openConv());
  });
}
