// @ts-check
// A message's text as DOM nodes, with the formatting people type in every
// messenger: links (http, https and mailto only, opened with
// rel="noopener noreferrer"), *bold*, _italic_, `code` and ``` fenced code
// blocks ```. Nothing is ever parsed as HTML: every piece of the text ends up
// in a text node, so "<b>" shows as the four characters it is. Long runs
// without a space get break opportunities (<wbr>), which change nothing of
// the text but spare the browser a line-breaking cost that grows with the
// square of the run's length.

import { h } from "./dom.js";

const FENCE = /```(?:[^\S\n]*\n)?([\s\S]*?)```/g;
// One pass over the text for the inline marks, in order of precedence.
const INLINE = /(`[^`\n]+`)|(\*[^\s*](?:[^*\n]*[^\s*])?\*)|(_[^\s_](?:[^_\n]*[^\s_])?_)|((?:https?:\/\/|mailto:)[^\s<>"]+)/gi;
const WORDLIKE = /[\p{L}\p{N}_*]/u;
const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
/** Runs without a space this long or longer get a <wbr> every `CHUNK` characters or so. */
const RUN = /\S{64,}/g;
const CHUNK = 32;
const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The nodes for `text`: code blocks, then inline marks within the rest. */
export function richText(/** @type {string} */ text) {
  /** @type {(Node | string)[]} */
  const out = [];
  let last = 0;
  for (const m of text.matchAll(FENCE)) {
    const at = m.index ?? 0;
    if (at > last) inline(text.slice(last, at), out);
    out.push(h("pre", { class: "code-block" }, h("code", {}, (m[1] ?? "").replace(/\n$/, ""))));
    last = at + m[0].length;
  }
  if (last < text.length) inline(text.slice(last), out);
  return out;
}

/** Appends the nodes of `text` (no fenced blocks in it) to `out`. */
function inline(/** @type {string} */ text, /** @type {(Node | string)[]} */ out) {
  let last = 0;
  for (const m of text.matchAll(INLINE)) {
    const at = m.index ?? 0;
    let token = m[0];
    const before = text[at - 1] ?? "";
    const after = text[at + token.length] ?? "";
    /** @type {Node | null} */
    let node = null;
    if (m[1]) {
      node = h("code", {}, wrappable(token.slice(1, -1)));
    } else if (m[2] || m[3]) {
      // *bold* and _italic_ only as whole words: snake_case_names and 2*3*4 stay as they are.
      if (!WORDLIKE.test(before) && !WORDLIKE.test(after)) node = h(m[2] ? "strong" : "em", {}, wrappable(token.slice(1, -1)));
    } else if (m[4]) {
      token = trimLink(token);
      node = link(token);
    }
    if (!node) continue;
    if (at > last) out.push(...wrappable(text.slice(last, at)));
    out.push(node);
    last = at + token.length;
  }
  if (last < text.length) out.push(...wrappable(text.slice(last)));
}

/**
 * `text`, with a <wbr> about every `CHUNK` characters inside runs of 64 or more without a space (between whole
 * graphemes, so no emoji or accented letter is cut). Browsers wrap such a run anywhere (overflow-wrap), but finding
 * where costs them the square of its length: 16,000 letters in a row took a second to lay out, 2,000 took 15 ms.
 * A <wbr> is only a place where a line may break: it adds nothing to the text as read, copied or searched.
 * @returns {(Node | string)[]}
 */
export function wrappable(/** @type {string} */ text) {
  if (text.length < 64) return [text];
  /** @type {(Node | string)[]} */
  const out = [];
  /** @type {Intl.Segments | null} */
  let segments = null;
  let last = 0;
  for (const m of text.matchAll(RUN)) {
    const end = (m.index ?? 0) + m[0].length;
    segments ??= graphemes.segment(text);
    for (let at = (m.index ?? 0) + CHUNK; at < end - CHUNK / 2; at += CHUNK) {
      // The next boundary between graphemes, at or after `at`.
      const g = segments.containing(at);
      const cut = !g || g.index === at ? at : g.index + g.segment.length;
      if (cut <= last || cut >= end) continue;
      out.push(text.slice(last, cut), document.createElement("wbr"));
      last = cut;
      at = cut;
    }
  }
  out.push(text.slice(last));
  return out;
}

/** A URL without the punctuation that ends the sentence around it (a closing bracket only if unbalanced). */
function trimLink(/** @type {string} */ url) {
  for (;;) {
    const end = url.at(-1) ?? "";
    if (/[.,;:!?'*_]/.test(end)) url = url.slice(0, -1);
    else if (end === ")" && (url.match(/\(/g)?.length ?? 0) < (url.match(/\)/g)?.length ?? 0)) url = url.slice(0, -1);
    else return url;
  }
}

/** A safe link, or null for anything that is not a valid http, https or mailto URL. */
function link(/** @type {string} */ text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (!LINK_PROTOCOLS.has(url.protocol)) return null;
  return h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" }, wrappable(text));
}
