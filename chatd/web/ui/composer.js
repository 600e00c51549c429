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
import { openJson, sealJson, sendText, userSlot } from "./e2e.js";
import { userStopped, userWrites } from "./typing.js";
import { composeMode, endMode, takeMentions } from "./compose.js";
import { saveEdit } from "./msgmenu.js";

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
    // Encrypted (anew on each attempt) when the conversation is; never sent in clear by fallback.
    const { message } = await sendText(c, p.text, p.client_id, { ...(p.rel ? { rel: p.rel } : {}), ...(p.mentions ? { mentions: p.mentions } : {}) });
    c.pending.delete(p.client_id);
    // Our own ciphertext reads as what we wrote.
    if (message.content.kind === "encrypted" && state.secure) state.reads.set(message.id, state.secure.decryptMessage(message).body);
    addMessage(c, message, true);
    void outbox.remove(p.client_id);
  } catch (err) {
    if (err instanceof ChatError && TRANSIENT.has(err.code)) {
      p.status = "waiting";
    } else {
      // Refused for good: kept, marked, for the user to edit or delete (shown so once kept, so a reload shows it too).
      p.status = "failed";
      p.error = describe(err);
      await keep(c, p);
    }
  } finally {
    sendEnded();
  }
  if (state.open === c.id) invalidate("messages");
  invalidate("directory");
}

/** Puts (or updates) `p` in the outbox, its text sealed. */
async function keep(/** @type {import("./store.js").Conv} */ c, /** @type {import("./store.js").Pending} */ p) {
  const user = state.me?.user;
  if (!user) return;
  const inside = {
    text: p.text,
    ...(p.status === "failed" && p.error ? { failed: p.error } : {}),
    ...(p.rel ? { rel: p.rel } : {}),
    ...(p.mentions ? { mentions: p.mentions } : {}),
  };
  try {
    await outbox.put({ client_id: p.client_id, user, conv: c.id, ts: p.ts, sealed: await sealJson(user, inside) });
  } catch (e) {
    // Not kept (no key, storage refused): the message stays in the page and is sent as long as the page lives.
    console.warn("chatcore: outbox entry not kept:", e);
  }
}

/** Sends every message that waits for the connection (it is back). */
export function flushOutbox() {
  // A photo, file or voice note on its way is its own (ui/media.js): a failed one waits for the user's Retry.
  for (const c of state.convs.values()) for (const p of c.pending.values()) if (p.status === "waiting" && !c.left && !p.media) void sendPending(c, p);
}

/** After a sign-in or reload: the user's unsent messages back in their conversations, and on their way. */
export async function restoreOutbox() {
  const me = state.me;
  if (!me) return;
  const { sealed, legacy } = await outbox.entries(me.user);
  /** @type {{ client_id: string, conv: string, ts: number, text: string, failed?: string, rel?: import("../chatcore/web.js").Rel, mentions?: string[] }[]} */
  const found = [...legacy];
  const clear = new Set(legacy.map((e) => e.client_id));
  for (const e of sealed) {
    try {
      const inside = await openJson(me.user, e.sealed);
      if (typeof inside?.text !== "string") throw new Error("not an outbox entry");
      found.push({
        client_id: e.client_id,
        conv: e.conv,
        ts: e.ts,
        text: inside.text,
        ...(typeof inside.failed === "string" ? { failed: inside.failed } : {}),
        ...(inside.rel?.kind === "reply" && typeof inside.rel.target === "string" ? { rel: { kind: "reply", target: inside.rel.target } } : {}),
        ...(Array.isArray(inside.mentions) ? { mentions: inside.mentions.filter((/** @type {unknown} */ x) => typeof x === "string") } : {}),
      });
    } catch (err) {
      // Sealed under a key this browser no longer has (its keys were removed at a sign-out): it cannot be read back.
      console.warn("chatcore: an unsent message could not be read back:", err);
      void outbox.remove(e.client_id);
    }
  }
  for (const e of found) {
    if (state.me !== me) return;
    const c = conv(e.conv);
    if (c.pending.has(e.client_id)) continue;
    /** @type {import("./store.js").Pending} */
    const p = { client_id: e.client_id, text: e.text, ts: e.ts, status: e.failed ? "failed" : "waiting" };
    if (e.failed) p.error = e.failed;
    if (e.rel) p.rel = e.rel;
    if (e.mentions?.length) p.mentions = e.mentions;
    c.pending.set(p.client_id, p);
    // Kept in clear by an earlier version: sealed now, and the clear copy deleted once the sealed one is kept.
    if (clear.has(e.client_id)) void keep(c, p).then(() => outbox.forgetLegacy(e.client_id));
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

// -- drafts: one per conversation, kept sealed in IndexedDB (per user, ui/e2e.js) so neither opening another
// conversation nor a reload loses what was typed, and no one reads them off the disk.

/** Where an earlier version kept drafts in clear (read once, then removed). */
const LEGACY_DRAFTS = "chatcore.drafts.";

/** A save under way, and whether the drafts changed since it began: one save at a time, the last state wins. */
let saving = false;
let dirty = false;

function persistDrafts() {
  const me = state.me;
  if (!me) return;
  dirty = true;
  // The page says whether what was typed is kept yet (`saving` / `saved`): a reload before then loses the last keys.
  document.body.dataset.drafts = "saving";
  if (saving) return;
  saving = true;
  void (async () => {
    while (dirty && state.me === me) {
      dirty = false;
      try {
        await userSlot(me.user, "drafts").save(await sealJson(me.user, Object.fromEntries(state.drafts)));
      } catch (e) {
        // Storage refused: the drafts stay in memory for this page.
        console.warn("chatcore: drafts not kept:", e);
      }
    }
    saving = false;
    document.body.dataset.drafts = "saved";
  })();
}

/** Reads the signed-in user's drafts (after a sign-in or reload) into `state.drafts` and the open composer. */
export async function restoreDrafts() {
  state.drafts.clear();
  const me = state.me;
  if (!me) return;
  /** @type {Record<string, unknown>} */
  let saved = {};
  try {
    const bytes = await userSlot(me.user, "drafts").load();
    if (bytes) saved = await openJson(me.user, bytes);
  } catch (e) {
    console.warn("chatcore: drafts not read back:", e);
  }
  let legacy = {};
  try {
    legacy = JSON.parse(localStorage.getItem(LEGACY_DRAFTS + me.user) ?? "{}");
  } catch {
    // A damaged entry: nothing to take over.
  }
  if (state.me !== me) return;
  // What was typed meanwhile wins over what was kept.
  for (const [conv, text] of Object.entries({ ...legacy, ...saved })) {
    if (typeof text === "string" && text && !state.drafts.has(conv)) state.drafts.set(conv, text);
  }
  if (Object.keys(legacy).length) {
    persistDrafts();
    localStorage.removeItem(LEGACY_DRAFTS + me.user);
  }
  const c = openConv();
  if (c && !field("composer-text").value) loadDraft(c);
}

/** Forgets the drafts of `user` (signed out). */
export async function forgetDrafts(/** @type {string} */ user) {
  state.drafts.clear();
  localStorage.removeItem(LEGACY_DRAFTS + user);
  try {
    await userSlot(user, "drafts").save(await sealJson(user, {}));
  } catch {
    // Nothing was kept.
  }
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

export function renderCount() {
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
export function autoGrow() {
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
    userStopped();
    const mode = composeMode(c);
    if (mode?.mode === "edit") {
      // An edit: saved as a new entry pointing at the message (unchanged: nothing to save).
      endMode(c);
      if (text !== mode.text) void saveEdit(c, mode.target, text);
      return;
    }
    const mentions = takeMentions(c, text);
    /** @type {import("./store.js").Pending} */
    const p = { client_id: newClientId(), text, ts: Date.now(), status: "waiting" };
    if (mode?.mode === "reply") p.rel = { kind: "reply", target: mode.target };
    if (mentions.length) p.mentions = mentions;
    if (mode) endMode(c);
    c.pending.set(p.client_id, p);
    input.value = "";
    saveDraft(c);
    autoGrow();
    renderCount();
    stickToBottom();
    // Into the outbox first: from here on, neither a dead link nor a reload loses it.
    void keep(c, p).then(() => sendPending(c, p));
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
    const c = openConv();
    saveDraft(c);
    // The others see "typing…" while there is text (the composer shows only where this user may write).
    if (c && !c.left && !c.request) userWrites(c.id, !!input.value.trim());
  });
}
