// @ts-check
// Notices of messages in other conversations: a toast in the top bar while
// the page is in view, a desktop notification (if allowed) while it is not,
// a short sound (unless turned off), and the unread count in the tab title
// and the favicon.

import { $, h, nameNode } from "./dom.js";
import { clip } from "./format.js";
import { onRender, pageVisible, state } from "./store.js";
import { notificationsAllowed, soundOn } from "./settings.js";

/**
 * A message arrived elsewhere (another conversation, or any while the page is hidden): a toast, or a desktop
 * notification while the page is hidden; and a sound. One per conversation (`key`): a newer replaces it.
 */
export function announce(/** @type {string} */ title, /** @type {string} */ text, /** @type {() => void} */ open, /** @type {string} */ key) {
  if (pageVisible() || !notificationsAllowed()) toast(title, text, open, key);
  if (!pageVisible() && notificationsAllowed()) {
    try {
      const n = new Notification(title, { body: text.length > 140 ? `${text.slice(0, 140)}…` : text, tag: key });
      n.addEventListener("click", () => {
        window.focus();
        open();
        n.close();
      });
    } catch {
      // Some browsers allow notifications only from a service worker: the toast and the title remain.
    }
  }
  if (soundOn()) chime();
}

/** @type {AudioContext | null} */
let audio = null;

/** A short two-note chime, synthesised (no sound file to load). */
function chime() {
  try {
    audio ??= new AudioContext();
    const now = audio.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.09);
      gain.gain.exponentialRampToValueAtTime(0.15, now + i * 0.09 + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.09 + 0.12);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.09);
      osc.stop(now + i * 0.09 + 0.13);
    }
  } catch {
    // No audio here: silence.
  }
}

/**
 * A notice in the top bar: `title` (a name, isolated), a line of text, and what a click does. One per `key`
 * (a conversation): a newer one replaces it. Only the newest shows, so notices never pile up over anything.
 */
export function toast(
  /** @type {string} */ title,
  /** @type {string} */ text,
  /** @type {(() => void) | undefined} */ onclick = undefined,
  /** @type {string} */ key = title,
) {
  const el = h(
    "button",
    { type: "button", class: "toast", dataset: { key } },
    h("strong", { class: "toast-title" }, nameNode(title)),
    h("span", { class: "toast-text" }, clip(text, 300)),
  );
  const dismiss = () => {
    el.classList.add("leaving");
    setTimeout(() => el.remove(), 200);
  };
  el.addEventListener("click", () => {
    dismiss();
    onclick?.();
  });
  $("toasts").replaceChildren(el);
  setTimeout(dismiss, 6000);
}

/** Drops the notice of `key` (its conversation was opened). */
export function dismissToast(/** @type {string} */ key) {
  for (const el of $("toasts").querySelectorAll(".toast")) if (/** @type {HTMLElement} */ (el).dataset.key === key) el.remove();
}

export function clearToasts() {
  $("toasts").replaceChildren();
}

function renderTitle() {
  let total = 0;
  if (state.screen === "app") for (const c of state.convs.values()) total += c.unread;
  document.title = total ? `(${total}) chatcore` : "chatcore";
  paintFavicon(total);
}

/** @type {HTMLImageElement | null} */
let baseIcon = null;
let shownCount = 0;

/** The favicon with a red badge carrying `count` (the plain icon at 0). */
function paintFavicon(/** @type {number} */ count) {
  if (count === shownCount) return;
  shownCount = count;
  const link = /** @type {HTMLLinkElement} */ ($("favicon"));
  if (!count) {
    link.href = "/favicon.ico";
    return;
  }
  const draw = () => {
    if (shownCount !== count || !baseIcon) return;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 32;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.drawImage(baseIcon, 0, 0, 32, 32);
    ctx.fillStyle = "#d92d20";
    ctx.beginPath();
    ctx.arc(22, 10, 10, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.font = "bold 14px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(count > 9 ? "9+" : String(count), 22, 11);
    link.href = canvas.toDataURL("image/png");
  };
  if (baseIcon?.complete) draw();
  else {
    baseIcon = new Image();
    baseIcon.addEventListener("load", draw);
    baseIcon.src = "/favicon.ico";
  }
}

onRender("title", renderTitle);
