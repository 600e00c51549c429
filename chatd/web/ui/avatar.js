// @ts-check
// Avatars: a profile or group picture, or initials on a colour while there is none, while it loads, or when it
// cannot be shown. A picture is loaded by its media id only (never a URL or a path), from this server, with this
// session's token in the Authorization header (ChatClient.download: never a token in a URL), and shown from an
// object URL this page made. Each id is downloaded once for the page's life, however many avatars show it (ids
// are immutable: a new picture is a new id); signing out revokes the URLs and forgets them.

import { h } from "./dom.js";
import { ChatError } from "../chatcore/web.js";
import { state } from "./store.js";

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

/**
 * The largest picture fetched (1 MiB; what this client uploads is a 512×512 JPEG, about 50–150 KB): a bigger file
 * under an avatar id is not downloaded whole (one byte past the limit is asked for, to tell), and shows initials.
 */
const MAX_PICTURE_BYTES = 1 << 20;

/** After a failed download, how long before an avatar that shows the id asks again. */
const RETRY_MS = 60_000;

/**
 * The pictures of this page, by media id: `url` once loaded, `failedAt` after a failure, `loading` meanwhile.
 * @type {Map<string, { url?: string, failedAt?: number, loading?: boolean }>}
 */
const pictures = new Map();

/** Bumped at sign-out: a download that started before puts nothing in the cache after. */
let generation = 0;

/**
 * The image type of `bytes` by their signature: JPEG, PNG, GIF or WebP; null for anything else (an SVG or HTML is
 * never shown, whatever its sender called it).
 */
function imageType(/** @type {Uint8Array} */ b) {
  const at = (/** @type {number} */ i, /** @type {number[]} */ sig) => sig.every((x, j) => b[i + j] === x);
  if (at(0, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (at(0, [0x47, 0x49, 0x46, 0x38])) return "image/gif";
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return "image/webp";
  return null;
}

/** Every avatar on the page that shows picture `id` (the id matched MEDIA_ID, so it is safe in a selector). */
function avatarsOf(/** @type {string} */ id) {
  return /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll(`.avatar[data-media="${id}"]`));
}

/** Downloads picture `id` once, then shows it in every avatar waiting for it. */
async function load(/** @type {string} */ id) {
  const client = state.client;
  if (!client || !state.me) return;
  const entry = { loading: true };
  pictures.set(id, entry);
  const gen = generation;
  /** @type {string | undefined} */
  let url;
  /**
   * When it failed, for a retry RETRY_MS later; never retried (the bytes of an id never change) when they are too
   * large or no image, or when the server has no such file.
   */
  let failedAt = Number.POSITIVE_INFINITY;
  try {
    const bytes = await client.download(id, { range: [0, MAX_PICTURE_BYTES] });
    const type = imageType(bytes);
    if (bytes.byteLength <= MAX_PICTURE_BYTES && type) url = URL.createObjectURL(new Blob([/** @type {Uint8Array<ArrayBuffer>} */ (bytes)], { type }));
  } catch (err) {
    // Initials stay; after a network error or a rate limit, another avatar showing this id asks again later.
    if (!(err instanceof ChatError && (err.code === "not_found" || err.code === "invalid_argument"))) failedAt = Date.now();
  }
  if (gen !== generation) {
    if (url) URL.revokeObjectURL(url);
    return;
  }
  pictures.set(id, url ? { url } : { failedAt });
  if (url) for (const el of avatarsOf(id)) showPicture(el, id);
}

/** Puts the loaded picture `id` in `el` in place of the initials (the presence dot stays on top). */
function showPicture(/** @type {HTMLElement} */ el, /** @type {string} */ id) {
  const url = pictures.get(id)?.url;
  if (!url || el.dataset.media !== id || el.querySelector("img")) return;
  const img = h("img", { src: url, alt: "", draggable: "false" });
  // Not an image this browser can decode after all: initials, and no second try for the page's life.
  img.addEventListener("error", () => {
    const entry = pictures.get(id);
    if (entry?.url !== url) return;
    URL.revokeObjectURL(url);
    pictures.set(id, { failedAt: Number.POSITIVE_INFINITY });
    for (const a of avatarsOf(id)) {
      a.querySelector("img")?.replaceWith(initialsNode(a.dataset.initials ?? "?"));
      a.dataset.picture = "none";
    }
  });
  const text = el.querySelector(".avatar-initials");
  if (text) text.replaceWith(img);
  else el.prepend(img);
  el.dataset.picture = "shown";
}

function initialsNode(/** @type {string} */ text) {
  return h("span", { class: "avatar-initials" }, text);
}

/**
 * A picture this page just uploaded (`blob`, under media `id`): shown from it at once, no download.
 */
export function rememberPicture(/** @type {string} */ id, /** @type {Blob} */ blob) {
  if (!MEDIA_ID.test(id) || pictures.get(id)?.url) return;
  pictures.set(id, { url: URL.createObjectURL(blob) });
}

/** Sign-out: every picture's object URL is revoked and forgotten (a download under way is dropped when it ends). */
export function forgetPictures() {
  generation++;
  for (const entry of pictures.values()) if (entry.url) URL.revokeObjectURL(entry.url);
  pictures.clear();
}

/**
 * Fills an avatar element: the picture of `profile.avatar` once loaded, initials on a colour until then, when
 * there is none, or when it cannot be loaded. `data-picture`: "none", "media" (a picture is loading or failed) or
 * "shown".
 */
export function paintAvatar(
  /** @type {HTMLElement} */ el,
  /** @type {{ user: string, username: string, display_name: string, avatar?: string }} */ profile,
) {
  const id = profile.avatar && MEDIA_ID.test(profile.avatar) ? profile.avatar : "";
  const text = initials(profile.display_name || profile.username);
  el.style.backgroundColor = PALETTE[hash(profile.user) % PALETTE.length] ?? "";
  el.dataset.initials = text;
  // The same picture already shown: left as it is (no flicker on every render).
  if (id && el.dataset.media === id && el.querySelector("img")) return;
  el.replaceChildren(initialsNode(text));
  el.dataset.picture = id ? "media" : "none";
  if (!id) {
    delete el.dataset.media;
    return;
  }
  el.dataset.media = id;
  const entry = pictures.get(id);
  if (entry?.url) showPicture(el, id);
  else if (!entry || (!entry.loading && entry.failedAt !== undefined && Date.now() - entry.failedAt > RETRY_MS)) void load(id);
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

/** A group as avatar.js paints it: its picture, or the title's initials on the group's colour. */
export function groupProfile(/** @type {{ id: string, title: string, avatar?: string }} */ c) {
  return { user: c.id, username: "", display_name: c.title || "Group", about: "", avatar: c.avatar ?? "" };
}
