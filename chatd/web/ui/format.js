// @ts-check
// Human texts: the protocol's codes in words, times, presence, device names.

import { ChatError } from "../chatcore/web.js";
import { serverNow, state, userName } from "./store.js";

/** Password rules (`weak_password` violations). @type {Record<string, string>} */
export const VIOLATIONS = {
  too_short: "Use at least 10 characters.",
  too_long: "Use at most 128 characters.",
  contains_username: "Don’t build it from your username.",
  contains_email: "Don’t build it from your email address.",
  common: "This is one of the most common passwords.",
  too_guessable: "Too easy to guess: add more words or unusual characters.",
};

/** `conflict`, by field. @type {Record<string, string>} */
export const TAKEN = {
  username: "This username is already taken.",
  email: "An account with this email address already exists.",
  phone: "An account with this phone number already exists.",
};

/** `invalid_argument`, by field. @type {Record<string, string>} */
export const INVALID = {
  username: "Use 3–32 letters, digits, _ . or -.",
  email: "This is not a valid email address.",
  phone: "Use the international form: + or 00, then 8–15 digits.",
  display_name: "Use 1–64 characters, without control or invisible formatting characters.",
  about: "Use at most 256 characters, without control or invisible formatting characters.",
  password: "This password cannot be used.",
  new_password: "This password cannot be used.",
  title: "Use 1–100 characters, without control or invisible formatting characters.",
  description: "Use at most 1,000 characters, without control or invisible formatting characters.",
  members: "Someone among the members no longer exists.",
};

/** A user's name in a notice: "you" for oneself. */
function who(/** @type {string} */ id, capital = false) {
  if (id === state.me?.user) return capital ? "You" : "you";
  return userName(id);
}

/** A list of names: "Bob", "Bob and Carol", "Bob, Carol and Dave". */
function names(/** @type {string[]} */ ids) {
  const n = ids.map((id) => who(id));
  return n.length <= 1 ? (n[0] ?? "nobody") : `${n.slice(0, -1).join(", ")} and ${n[n.length - 1]}`;
}

const ROLE_NAMES = { owner: "the owner", admin: "an admin", member: "a member" };

/**
 * A notice in words, as the timeline and the list show it: "Alice added Bob", "Bob left", "Carol is now an admin",
 * "Alice changed the title to …". Null for a void entry (shows nothing).
 * @param {string} from who made the change
 * @param {import("../chatcore/web.js").NoticeContent} c
 */
export function noticeText(from, c) {
  const by = who(from, true);
  switch (c.kind) {
    case "group_created":
      return `${by} created the group “${c.title}”${c.members.length ? ` and added ${names(c.members)}` : ""}`;
    case "members_added":
      return `${by} added ${names(c.users)}`;
    case "member_joined":
      return `${by} joined with an invite link`;
    case "member_removed":
      return `${by} removed ${names([c.user])}`;
    case "member_left":
      return c.new_owner ? `${by} left; ${names([c.new_owner])} ${c.new_owner === state.me?.user ? "are" : "is"} now the owner` : `${by} left`;
    case "role_changed": {
      const subject = who(c.user, true);
      const verb = c.user === state.me?.user ? "are" : "is";
      return `${subject} ${verb} now ${ROLE_NAMES[c.role]}`;
    }
    case "group_updated": {
      /** @type {string[]} */
      const parts = [];
      if (c.title !== undefined) parts.push(`changed the title to “${c.title}”`);
      if (c.description !== undefined) parts.push(c.description ? "changed the description" : "removed the description");
      if (c.avatar !== undefined) parts.push(c.avatar ? "changed the picture" : "removed the picture");
      if (c.history_visible !== undefined) parts.push(c.history_visible ? "showed the history to new members" : "hid the history from new members");
      return `${by} ${parts.join(", ") || "changed the group"}`;
    }
    case "encryption_enabled":
      return `${by} turned on end-to-end encryption`;
    case "timer_changed":
      return c.expire_after ? `${by} set disappearing messages to ${timerName(c.expire_after)}` : `${by} turned off disappearing messages`;
    case "call":
      return callText(from, c);
    case "void":
      return null;
  }
}

/**
 * A call's entry in words, from this user's side: "Outgoing video call · 2:05", "Missed voice call", ...
 * @param {string} from the caller
 * @param {{ media: "voice" | "video", outcome: string, duration_ms?: number }} c
 */
export function callText(from, c) {
  const mine = from === state.me?.user;
  const kind = c.media === "video" ? "video call" : "voice call";
  if (c.duration_ms !== undefined) {
    const s = Math.floor(c.duration_ms / 1000);
    const length = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    return `${mine ? "Outgoing" : "Incoming"} ${kind} · ${length}`;
  }
  switch (c.outcome) {
    case "missed":
      return mine ? `${kind[0]?.toUpperCase()}${kind.slice(1)} · no answer` : `Missed ${kind}`;
    case "busy":
      return mine ? `${kind[0]?.toUpperCase()}${kind.slice(1)} · busy` : `Missed ${kind} (you were in another call)`;
    case "declined":
      return mine ? `${kind[0]?.toUpperCase()}${kind.slice(1)} · declined` : `Declined ${kind}`;
    case "cancelled":
      return mine ? `Cancelled ${kind}` : `Missed ${kind}`;
    default:
      return `${kind[0]?.toUpperCase()}${kind.slice(1)} · failed`;
  }
}

/** The disappearing-message timers (PROTOCOL.md, *Message life*) by name; 0: off. */
export const TIMER_NAMES = /** @type {const} */ ([
  [0, "Off"],
  [3_600_000, "1 hour"],
  [86_400_000, "1 day"],
  [604_800_000, "1 week"],
  [7_776_000_000, "90 days"],
]);

/** A timer in words ("1 day"). */
export function timerName(/** @type {number} */ ms) {
  return TIMER_NAMES.find(([v]) => v === ms)?.[1] ?? `${Math.round(ms / 3_600_000)} hours`;
}

/** What a message shows in place of its text when this page cannot read it (end-to-end encrypted). */
export const ENCRYPTED_TEXT = "🔒 Encrypted message";

/**
 * A media message in words, for the list's preview and for its bubble until this page shows media ("📷 Photo:
 * caption", "📎 File: name", "🎤 Voice message"); `undefined` for any other content.
 * @param {{ kind: string, caption?: string, name?: string }} content
 */
export function mediaText(content) {
  switch (content.kind) {
    case "image":
      return content.caption ? `📷 Photo: ${content.caption}` : "📷 Photo";
    case "file":
      return `📎 File: ${content.name ?? ""}`;
    case "voice":
      return "🎤 Voice message";
    default:
      return undefined;
  }
}

const sizeNumber = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 1 });

/** A file's size for people: "812 bytes", "12.5 KB", "3.2 MB" (powers of 1024, as file managers mostly count). */
export function sizeText(/** @type {number} */ bytes) {
  if (bytes < 1024) return bytes === 1 ? "1 byte" : `${bytes} bytes`;
  const units = ["KB", "MB", "GB"];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${sizeNumber.format(v)} ${units[u]}`;
}

/** A notice in words when only its kind is known (the list's summary of an entry not loaded yet). */
export function noticeKindText(/** @type {string} */ from, /** @type {string} */ kind) {
  const by = who(from, true);
  /** @type {Record<string, string>} */
  const texts = {
    group_created: `${by} created the group`,
    members_added: `${by} added members`,
    member_joined: `${by} joined`,
    member_removed: `${by} removed a member`,
    member_left: `${by} left`,
    role_changed: `${by} changed a role`,
    group_updated: `${by} changed the group`,
    encryption_enabled: `${by} turned on end-to-end encryption`,
    timer_changed: `${by} changed the disappearing messages`,
    call: "Call",
  };
  // A kind this page does not know yet (a newer server): it is not shown as text.
  return texts[kind] ?? "Encrypted message";
}

function duration(/** @type {number} */ ms) {
  const s = Math.ceil(ms / 1000);
  if (s < 90) return `${s} seconds`;
  const m = Math.ceil(s / 60);
  return m < 90 ? `${m} minutes` : `${Math.ceil(m / 60)} hours`;
}

/** One line for any error that is not tied to a field. */
export function describe(/** @type {unknown} */ err) {
  // End-to-end failures (a mistyped recovery key, keys that do not verify) say what happened in their message.
  if (err instanceof Error && err.name === "E2eError") return err.message;
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

export const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const shortDayFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });

export function sameDay(/** @type {number} */ a, /** @type {number} */ b) {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

export function dayLabel(/** @type {number} */ ts) {
  const now = serverNow();
  if (sameDay(ts, now)) return "Today";
  if (sameDay(ts, now - 86_400_000)) return "Yesterday";
  return dayFmt.format(ts);
}

export function presenceText(/** @type {import("./store.js").Presence | undefined} */ p) {
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

export function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
  return os ? `${browser} on ${os}` : browser;
}

/**
 * `text` cut to about `max` UTF-16 units with an ellipsis, never inside a surrogate pair: for one-line previews,
 * where laying out a 16 KB message only to hide it behind an ellipsis costs the page a long task.
 */
export function clip(/** @type {string} */ text, /** @type {number} */ max) {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text[max - 1] ?? "") ? max - 1 : max;
  return `${text.slice(0, end)}…`;
}
