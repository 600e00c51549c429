// @ts-check
// Media in the timeline: a photo's bubble (its thumbnail at once, blurred, then the photo), the photo viewer, a
// file's bubble (name, size, Download), a voice note's player (play/pause, its waveform filling as it plays, a
// seek bar), and the bubble of a media message on its way (progress, cancel, retry). Files are fetched through
// ui/media.js (the token in a header, decrypted here) and shown from object URLs, each revoked once its node has
// left the page. Everything the sender wrote (a caption, a file name) goes in as text.

import { $, dialog, h } from "./dom.js";
import { sizeText, timeFmt } from "./format.js";
import { state, userName } from "./store.js";
import { cancelMedia, discardMedia, fetchMedia, retryMedia } from "./media.js";

/** @typedef {import("../chatcore/web.js").MediaContent} MediaContent */
/** @typedef {import("./store.js").Conv} Conv */
/** @typedef {import("./store.js").Pending} Pending */

/** The largest a photo shows in a bubble, in CSS pixels. */
const BUBBLE_W = 280;
const BUBBLE_H = 320;

// -- object URLs: one per node that shows a file, revoked when the node has left the page

/** Nodes showing a file, and how to let it go. @type {Map<HTMLElement, { url: string, release: () => void }>} */
const shown = new Map();

/** An object URL for `blob` shown by `owner` (its earlier one revoked). */
function urlFor(/** @type {HTMLElement} */ owner, /** @type {Blob} */ blob, /** @type {() => void} */ release) {
  const old = shown.get(owner);
  if (old) URL.revokeObjectURL(old.url);
  const url = URL.createObjectURL(blob);
  shown.set(owner, { url, release });
  return url;
}

/**
 * After the timeline is drawn: the files of nodes no longer in the page are let go (their URLs revoked), and the
 * photos of nodes in the page that have none (new, or back after leaving) are fetched.
 */
export function afterRender(/** @type {HTMLElement} */ list) {
  for (const [owner, { url, release }] of shown) {
    if (owner.isConnected) continue;
    URL.revokeObjectURL(url);
    shown.delete(owner);
    release();
  }
  for (const el of list.querySelectorAll(".media-photo[data-state=idle]")) load(/** @type {HTMLElement} */ (el));
}

/** Lets every file go (signed out, or a conversation closed). */
export function releaseAll() {
  for (const [, { url, release }] of shown) {
    URL.revokeObjectURL(url);
    release();
  }
  shown.clear();
}

/** What each photo node shows. @type {WeakMap<HTMLElement, MediaContent>} */
const contentOf = new WeakMap();

/** A photo's box `w` x `h` scaled to fit a bubble. */
function boxOf(/** @type {number} */ w, /** @type {number} */ h) {
  const scale = Math.min(1, BUBBLE_W / Math.max(1, w), BUBBLE_H / Math.max(1, h));
  return { w: Math.max(48, Math.round(w * scale)), h: Math.max(48, Math.round(h * scale)) };
}

/** The height a media bubble takes, for the timeline's placeholder size (chat.js). */
export function mediaHeight(/** @type {MediaContent} */ content) {
  if (content.kind === "image") return boxOf(content.width, content.height).h + 40;
  return content.kind === "voice" ? 90 : 80;
}

/** Fetches the photo of a photo node and shows it over its thumbnail. */
function load(/** @type {HTMLElement} */ box) {
  const content = contentOf.get(box);
  const img = /** @type {HTMLImageElement | null} */ (box.querySelector(".media-full"));
  const status = /** @type {HTMLElement | null} */ (box.querySelector(".media-status"));
  if (!content || !img || !status) return;
  box.dataset.state = "loading";
  status.replaceChildren();
  fetchMedia(content).then(
    (blob) => {
      if (!box.isConnected) {
        box.dataset.state = "idle";
        return;
      }
      img.src = urlFor(box, blob, () => {
        img.removeAttribute("src");
        box.dataset.state = "idle";
      });
      img.decode().then(
        () => (box.dataset.state = "loaded"),
        () => failed(box, "This photo could not be shown."),
      );
    },
    (/** @type {unknown} */ err) => {
      console.warn("chatcore: a photo was not loaded:", err);
      failed(box, "The photo could not be loaded.");
    },
  );
}

/** Says in a photo node why its photo is not there, with a retry. */
function failed(/** @type {HTMLElement} */ box, /** @type {string} */ why) {
  box.dataset.state = "failed";
  const status = box.querySelector(".media-status");
  status?.replaceChildren(
    h("span", {}, why),
    h("button", { type: "button", class: "ghost small", onclick: () => load(box) }, "Retry"),
  );
}

/** The thumbnail of a photo as a data: address, if it is one (base64 only: nothing else goes into the address). */
function thumbUrl(/** @type {MediaContent} */ content) {
  if (content.kind !== "image" || !content.thumbnail || !/^[A-Za-z0-9+/]+$/.test(content.thumbnail)) return undefined;
  return `data:image/jpeg;base64,${content.thumbnail}`;
}

/** A photo in a bubble: the thumbnail at once, the photo once fetched; a click opens the viewer. */
function photoNode(/** @type {Extract<MediaContent, { kind: "image" }>} */ content, /** @type {string} */ from) {
  const { w, h: height } = boxOf(content.width, content.height);
  const thumb = thumbUrl(content);
  const label = content.caption ? `Photo: ${content.caption}` : `Photo from ${from}`;
  const open = h(
    "button",
    { type: "button", class: "media-open", "aria-label": `Open ${label.charAt(0).toLowerCase()}${label.slice(1)}`, onclick: () => openViewer(content, from) },
    thumb ? h("img", { class: "media-thumb", src: thumb, alt: "" }) : null,
    h("img", { class: "media-full", alt: "" }),
  );
  open.style.width = `${w}px`;
  open.style.height = `${height}px`;
  const box = h("div", { class: "media media-photo", dataset: { state: "idle", media: content.media } }, open, h("span", { class: "media-status", role: "status" }));
  contentOf.set(box, content);
  return box;
}

/** A file in a bubble: its name, size and type, and a button that saves it. */
function fileNode(/** @type {Extract<MediaContent, { kind: "file" }>} */ content) {
  const status = h("span", { class: "media-status", role: "status" });
  const button = h("button", { type: "button", class: "ghost small media-save" }, "Download");
  button.setAttribute("aria-label", `Download ${content.name}`);
  button.addEventListener("click", () => void save(content, content.name, button, status));
  return h(
    "div",
    { class: "media media-file", dataset: { media: content.media } },
    h("span", { class: "media-file-icon", "aria-hidden": "true" }, "📄"),
    h("span", { class: "media-file-body" }, h("bdi", { class: "media-file-name" }, content.name), h("span", { class: "media-file-size" }, sizeText(content.size))),
    button,
    status,
  );
}

/** Fetches a file and hands it to the browser to save as `name`. */
async function save(/** @type {MediaContent} */ content, /** @type {string} */ name, /** @type {HTMLButtonElement} */ button, /** @type {HTMLElement} */ status) {
  button.disabled = true;
  status.textContent = "Downloading…";
  try {
    const blob = await fetchMedia(content);
    const url = URL.createObjectURL(blob);
    // The name is the sender's: the browser makes it a safe file name; nothing of it is read as markup.
    const a = h("a", { href: url, download: name || "file", hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    // The browser has taken the bytes by then.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    status.textContent = "";
  } catch (err) {
    console.warn("chatcore: a file was not downloaded:", err);
    status.textContent = "The download failed. Try again.";
  } finally {
    button.disabled = false;
  }
}

/** m:ss */
function clock(/** @type {number} */ ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** A voice note: play/pause, its waveform filling as it plays, a seek bar, its length. */
function voiceNode(/** @type {Extract<MediaContent, { kind: "voice" }>} */ content, /** @type {string} */ from) {
  const total = content.duration_ms;
  const samples = content.waveform?.length ? content.waveform : Array.from({ length: 32 }, () => 96);
  const bars = samples.map((v) => {
    const bar = h("span", { class: "voice-bar" });
    bar.style.height = `${Math.round(12 + (Math.min(255, Math.max(0, v)) / 255) * 88)}%`;
    return bar;
  });
  const wave = h("span", { class: "voice-wave", "aria-hidden": "true" }, ...bars);
  const audio = h("audio", { class: "voice-audio", preload: "none" });
  const time = h("span", { class: "voice-time" }, clock(total));
  const seek = /** @type {HTMLInputElement} */ (
    h("input", { type: "range", class: "voice-seek", min: "0", max: String(total), step: "100", value: "0", "aria-label": `Position in the voice message from ${from}` })
  );
  seek.setAttribute("aria-valuetext", `0:00 of ${clock(total)}`);
  // Drawn in CSS: the emoji font would colour ▶ in its own way.
  const icon = h("span", { class: "voice-icon play", "aria-hidden": "true" });
  const play = h("button", { type: "button", class: "voice-play", "aria-label": `Play the voice message from ${from}` }, icon);
  const box = h("div", { class: "media media-voice", dataset: { media: content.media, state: "idle" } }, play, h("span", { class: "voice-track" }, wave, seek), time, audio, h("span", { class: "media-status", role: "status" }));
  const status = /** @type {HTMLElement} */ (box.lastElementChild);

  const show = (/** @type {number} */ at) => {
    const part = total ? Math.min(1, at / total) : 0;
    const upTo = Math.round(part * bars.length);
    bars.forEach((b, i) => b.classList.toggle("played", i < upTo));
    seek.value = String(Math.round(at));
    seek.setAttribute("aria-valuetext", `${clock(at)} of ${clock(total)}`);
    time.textContent = at > 0 ? clock(at) : clock(total);
  };
  /** @type {Promise<boolean> | null} */
  let loading = null;
  const ready = () => {
    if (audio.src) return Promise.resolve(true);
    loading ??= fetchMedia(content).then(
      (blob) => {
        loading = null;
        audio.src = urlFor(box, blob, () => {
          audio.pause();
          audio.removeAttribute("src");
          audio.load();
          box.dataset.state = "idle";
        });
        box.dataset.state = "loaded";
        status.textContent = "";
        return true;
      },
      (/** @type {unknown} */ err) => {
        loading = null;
        console.warn("chatcore: a voice message was not loaded:", err);
        status.textContent = "The voice message could not be loaded. Try again.";
        return false;
      },
    );
    return loading;
  };
  play.addEventListener("click", async () => {
    if (!audio.paused) {
      audio.pause();
      return;
    }
    if (!(await ready())) return;
    audio.play().catch((/** @type {unknown} */ e) => {
      console.warn("chatcore: a voice message did not play:", e);
      status.textContent = "This browser cannot play this voice message.";
    });
  });
  seek.addEventListener("input", async () => {
    const at = Number(seek.value);
    show(at);
    if (!(await ready())) return;
    audio.currentTime = at / 1000;
  });
  audio.addEventListener("play", () => {
    icon.className = "voice-icon pause";
    play.setAttribute("aria-label", `Pause the voice message from ${from}`);
    box.classList.add("playing");
  });
  audio.addEventListener("pause", () => {
    icon.className = "voice-icon play";
    play.setAttribute("aria-label", `Play the voice message from ${from}`);
    box.classList.remove("playing");
  });
  audio.addEventListener("timeupdate", () => show(audio.currentTime * 1000));
  audio.addEventListener("ended", () => show(0));
  return box;
}

/** The node a media message shows in its bubble; `from`: the sender's name. */
export function mediaNode(/** @type {MediaContent} */ content, /** @type {string} */ from) {
  switch (content.kind) {
    case "image":
      return photoNode(content, from);
    case "file":
      return fileNode(content);
    case "voice":
      return voiceNode(content, from);
  }
}

/** Puts a media message's node into its bubble `li`, above its caption (and under its quote). */
export function withMedia(/** @type {HTMLElement} */ li, /** @type {MediaContent} */ content, /** @type {string} */ from) {
  li.classList.add("has-media", `media-${content.kind}-msg`);
  const text = li.querySelector(".msg-text");
  const node = mediaNode(content, from);
  if (text) text.before(node);
  else li.prepend(node);
  li.style.containIntrinsicBlockSize = `auto ${mediaHeight(content)}px`;
  return li;
}

// -- the viewer

/** The node that opened the viewer, which gets the focus back when it closes. @type {HTMLElement | null} */
let opener = null;

/** Opens the viewer on a photo: its thumbnail at once, the photo once fetched. */
export function openViewer(/** @type {Extract<MediaContent, { kind: "image" }>} */ content, /** @type {string} */ from) {
  const viewer = dialog("viewer");
  const img = /** @type {HTMLImageElement} */ ($("viewer-image"));
  const status = $("viewer-status");
  opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  $("viewer-title").textContent = content.caption || `Photo from ${from}`;
  img.alt = content.caption ? `Photo: ${content.caption}` : `Photo from ${from}`;
  img.width = content.width;
  img.height = content.height;
  const thumb = thumbUrl(content);
  if (thumb) img.src = thumb;
  else img.removeAttribute("src");
  viewer.dataset.state = "loading";
  viewer.dataset.media = content.media;
  status.textContent = "Loading…";
  const save = /** @type {HTMLButtonElement} */ ($("viewer-save"));
  save.onclick = () => void saveFrom(content);
  if (!viewer.open) viewer.showModal();
  $("viewer-close").focus();
  fetchMedia(content).then(
    (blob) => {
      if (!viewer.open || viewer.dataset.media !== content.media) return;
      img.src = urlFor(viewer, blob, () => {});
      img.decode().then(
        () => {
          viewer.dataset.state = "loaded";
          status.textContent = "";
        },
        () => {
          viewer.dataset.state = "failed";
          status.textContent = "This photo could not be shown.";
        },
      );
    },
    () => {
      viewer.dataset.state = "failed";
      status.textContent = "The photo could not be loaded.";
    },
  );
}

/** Saves the viewer's photo. */
async function saveFrom(/** @type {MediaContent} */ content) {
  const ext = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp" }[content.mime] ?? "bin";
  await save(content, `photo.${ext}`, /** @type {HTMLButtonElement} */ ($("viewer-save")), $("viewer-status"));
}

/** The viewer's close button and its closing (Escape too: the dialog's own): the photo let go, the focus back. */
export function wireViewer() {
  const viewer = dialog("viewer");
  $("viewer-close").addEventListener("click", () => viewer.close());
  // A click on the backdrop (the dialog itself, outside the photo and its bar) closes it too.
  viewer.addEventListener("click", (ev) => {
    if (ev.target === viewer) viewer.close();
  });
  viewer.addEventListener("close", () => {
    const img = /** @type {HTMLImageElement} */ ($("viewer-image"));
    img.removeAttribute("src");
    const kept = shown.get(viewer);
    if (kept) URL.revokeObjectURL(kept.url);
    shown.delete(viewer);
    delete viewer.dataset.media;
    if (opener?.isConnected) opener.focus();
    opener = null;
  });
}

// -- the bubble of a media message on its way

/** Each pending media message's bubble, and the state it was drawn for. @type {WeakMap<Pending, { key: string, el: HTMLElement }>} */
const pendingBubbles = new WeakMap();

/** What a pending media message is, in words (its bubble's label). */
function what(/** @type {Pending} */ p) {
  const k = p.media?.content.kind;
  return k === "image" ? "photo" : k === "voice" ? "voice message" : "file";
}

/** The bubble of a media message on its way: what it is, its progress and Cancel; failed, why, Retry and Remove. */
export function pendingBubble(/** @type {Conv} */ c, /** @type {Pending} */ p) {
  const media = p.media;
  if (!media) throw new Error("not a media message");
  const uploading = p.status !== "failed" && !!media.abort;
  const key = `${p.status} ${uploading} ${p.error ?? ""} ${state.connection}`;
  const cached = pendingBubbles.get(p);
  if (cached?.key === key) return cached.el;
  const content = media.content;
  /** @type {HTMLElement} */
  let body;
  if (content.kind === "image" && media.preview) {
    const { w, h: height } = boxOf(content.width, content.height);
    const img = h("img", { class: "media-full", src: media.preview, alt: content.caption ? `Photo: ${content.caption}` : "Photo" });
    img.style.width = `${w}px`;
    img.style.height = `${height}px`;
    body = h("div", { class: "media media-photo", dataset: { state: "loaded" } }, img);
  } else if (content.kind === "voice") {
    body = h("div", { class: "media media-file" }, h("span", { class: "media-file-icon", "aria-hidden": "true" }, "🎤"), h("span", { class: "media-file-body" }, h("span", { class: "media-file-name" }, "Voice message"), h("span", { class: "media-file-size" }, clock(content.duration_ms))));
  } else {
    const name = content.kind === "file" ? content.name : "Photo";
    body = h("div", { class: "media media-file" }, h("span", { class: "media-file-icon", "aria-hidden": "true" }, "📄"), h("span", { class: "media-file-body" }, h("bdi", { class: "media-file-name" }, name), h("span", { class: "media-file-size" }, sizeText(content.size))));
  }
  /** @type {import("./dom.js").Child[]} */
  const meta = [];
  if (p.status === "failed") {
    meta.push(
      h("span", { class: "msg-error", role: "alert" }, `Not sent: ${p.error ?? ""}`),
      h("button", { type: "button", class: "link retry", onclick: () => retryMedia(c, p) }, "Retry"),
      h("button", { type: "button", class: "link delete", onclick: () => discardMedia(c, p) }, "Remove"),
    );
  } else if (uploading) {
    const bar = h("progress", { class: "upload-progress", max: String(media.total || 1), value: String(media.sent), "aria-label": `Uploading the ${what(p)}` });
    meta.push(
      bar,
      h("button", { type: "button", class: "link cancel", "aria-label": `Cancel sending the ${what(p)}`, onclick: () => cancelMedia(c, p) }, "Cancel"),
    );
  } else {
    meta.push(`${state.connection !== "ready" ? "Waiting for connection" : "Sending…"} · ${timeFmt.format(p.ts)}`);
  }
  const caption = content.kind === "image" && content.caption ? h("span", { class: "msg-text" }, content.caption) : null;
  const el = h(
    "li",
    { class: `msg mine has-media ${p.status}`, dataset: { pending: p.client_id } },
    body,
    caption,
    h("span", { class: "msg-meta" }, ...meta),
  );
  pendingBubbles.set(p, { key, el });
  return el;
}

/** The name a sender goes by in a media label ("You" for this user). */
export function senderName(/** @type {string} */ user) {
  return user === state.me?.user ? "you" : userName(user);
}
