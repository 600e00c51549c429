// @ts-check
// Human texts: the protocol's codes in words, times, presence, device names.

import { ChatError } from "../chatcore/web.js";
import { serverNow } from "./store.js";

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
};

function duration(/** @type {number} */ ms) {
  const s = Math.ceil(ms / 1000);
  if (s < 90) return `${s} seconds`;
  const m = Math.ceil(s / 60);
  return m < 90 ? `${m} minutes` : `${Math.ceil(m / 60)} hours`;
}

/** One line for any error that is not tied to a field. */
export function describe(/** @type {unknown} */ err) {
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
