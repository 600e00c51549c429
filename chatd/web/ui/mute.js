// @ts-check
// Muting a conversation from its header: for 8 hours, a week, or until
// unmuted. The server then raises no alert for it (so no sound and no
// notification); the list marks it with a crossed-out bell.

import { $, dialog, show } from "./dom.js";
import { describe } from "./format.js";
import { invalidate, isMuted, serverNow, state } from "./store.js";

const HOUR = 3_600_000;
/** @type {Record<string, number>} how long each choice mutes (0: until unmuted) */
const CHOICES = { "8h": 8 * HOUR, "1w": 7 * 24 * HOUR, always: 0 };

/** The conversation the dialog is about. @type {import("./store.js").Conv | null} */
let target = null;

/** The header's mute button: unmutes a muted conversation at once, else asks for how long. */
export function openMute(/** @type {import("./store.js").Conv} */ c) {
  if (isMuted(c)) {
    void unmute(c);
    return;
  }
  target = c;
  const d = dialog("mute");
  show($("mute-error"), false);
  d.showModal();
  /** @type {HTMLButtonElement} */ ($("mute-8h")).focus();
}

async function mute(/** @type {import("./store.js").Conv} */ c, /** @type {number} */ ms) {
  const client = state.client;
  if (!client) return;
  const until = ms ? serverNow() + ms : undefined;
  try {
    await client.mute(c.id, until);
    c.muted = true;
    c.mutedUntil = until ?? 0;
    dialog("mute").close();
    invalidate("header", "directory");
    // Back to the button that opened the dialog (now "Unmute").
    $("chat-mute").focus();
  } catch (err) {
    const e = $("mute-error");
    e.textContent = describe(err);
    show(e, true);
  }
}

async function unmute(/** @type {import("./store.js").Conv} */ c) {
  const client = state.client;
  if (!client) return;
  try {
    await client.unmute(c.id);
    c.muted = false;
    c.mutedUntil = 0;
    invalidate("header", "directory");
  } catch (err) {
    console.warn("unmute failed:", err);
  }
}

export function wireMute() {
  const d = dialog("mute");
  for (const [key, ms] of Object.entries(CHOICES)) {
    $(`mute-${key}`).addEventListener("click", () => {
      if (target) void mute(target, ms);
    });
  }
  d.addEventListener("click", (ev) => {
    if (ev.target === d) d.close();
  });
  // A timed mute ends by itself: the bell goes when it does.
  setInterval(() => {
    if (state.me && [...state.convs.values()].some((c) => c.muted && c.mutedUntil && c.mutedUntil <= serverNow())) {
      for (const c of state.convs.values()) if (c.muted && c.mutedUntil && c.mutedUntil <= serverNow()) c.muted = false;
      invalidate("header", "directory");
    }
  }, 30_000);
}
