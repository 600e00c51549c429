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

/** Another conversation was opened. */
export function clearDraftOnSwitch() {
  field("composer-text").value = "";
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
    const text = input.value.trim();
    if (!c || !text) return;
    /** @type {import("./store.js").Pending} */
    const p = { client_id: newClientId(), text, ts: serverNow(), status: "sending" };
    c.pending.set(p.client_id, p);
    input.value = "";
    autoGrow();
    void sendPending(c, p);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form("composer").requestSubmit();
    }
  });
  input.addEventListener("input", autoGrow);
}
