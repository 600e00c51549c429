// @ts-check
// Avatars: initials on a colour. A picture would be loaded by its media id,
// with this session, from this server; until the server serves media, no
// picture is ever requested (so nothing can point this page at another site).

import { h } from "./dom.js";

/** Avatar colours, each dark enough for white initials (contrast at least 4.5:1). */
const PALETTE = ["#3461c9", "#b4472a", "#2b7a52", "#8e44a8", "#8a5a00", "#1d6f80", "#ad3558", "#5257c2"];

function hash(/** @type {string} */ s) {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
  return x >>> 0;
}

/** Up to two letters: of the first and last words, where a word is letters and digits (punctuation is no initial). */
export function initials(/** @type {string} */ name) {
  const words = name.match(/[\p{L}\p{N}][\p{L}\p{N}\p{M}]*/gu) ?? [];
  const picked = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return picked.map((w) => (Array.from(w ?? "")[0] ?? "").toUpperCase()).join("") || "?";
}

/**
 * A profile picture is a media id (16–64 of A-Z a-z 0-9 _ -), never a URL or path: the server refuses anything
 * else, and the page loads nothing else even if an old record holds it.
 */
const MEDIA_ID = /^[A-Za-z0-9_-]{16,64}$/;

/** Fills an avatar element with initials on a colour. */
export function paintAvatar(/** @type {HTMLElement} */ el, /** @type {import("./store.js").Profile} */ profile) {
  el.replaceChildren();
  el.style.backgroundColor = PALETTE[hash(profile.user) % PALETTE.length] ?? "";
  el.dataset.picture = profile.avatar && MEDIA_ID.test(profile.avatar) ? "media" : "none";
  el.append(initials(profile.display_name || profile.username));
}

/** A new avatar, with a presence dot when `presence` is given. */
export function avatar(
  /** @type {import("./store.js").Profile} */ profile,
  /** @type {import("./store.js").Presence | undefined} */ presence,
  extra = "",
) {
  const el = h("span", { class: `avatar ${extra}`, "aria-hidden": "true" });
  paintAvatar(el, profile);
  if (presence) el.append(h("span", { class: `dot ${presence.online ? "online" : ""}` }));
  return el;
}

/** A group as avatar.js paints it: the title's initials on the group's colour. */
export function groupProfile(/** @type {{ id: string, title: string }} */ c) {
  return { user: c.id, username: "", display_name: c.title || "Group", about: "" };
}
