// @ts-check
// Media messages: what the page makes of a file before it leaves (a photo decoded, scaled and encoded again, so
// that nothing of its metadata leaves with it; its thumbnail; a voice note's length and waveform), sending it
// (encrypted first in an encrypted conversation, uploaded with progress, cancelled by the user), and fetching a
// file back (downloaded with the token in a header, decrypted, kept a while as a Blob). The bubbles and the
// viewer are ui/mediaview.js; the attach button, dropping, pasting and recording ui/attach.js.

import { ChatError, decryptFile, encryptFile, newClientId } from "../chatcore/web.js";
import { describe } from "./format.js";
import { invalidate, state } from "./store.js";
import { addMessage, stickToBottom } from "./chat.js";
import { sendEnded, sendStarted } from "./connection.js";
import { afterE2eStart, cannotSend } from "./e2e.js";

/** @typedef {import("./store.js").Conv} Conv */
/** @typedef {import("./store.js").Pending} Pending */
/** @typedef {import("../chatcore/web.js").MediaContent} MediaContent */
/** @typedef {import("../chatcore/web.js").FileEncryption} FileEncryption */
/** A media content before its file has an id (each kind without `media`). */
/** @typedef {MediaContent extends infer C ? (C extends unknown ? Omit<C, "media"> : never) : never} UnsentContent */

/**
 * A media message being sent: the bytes that leave (the photo as encoded again here, the file or recording as it
 * is), the content without its media id, how far the upload is, and what cancels it. Kept in the page only: a
 * reload forgets an upload under way (the outbox keeps texts).
 * `uploaded`: the file is on the server already (a send that failed after it is retried without uploading again).
 * `preview`: an object URL of the photo for the pending bubble.
 * @typedef {{
 *   blob: Blob,
 *   content: UnsentContent,
 *   sent: number,
 *   total: number,
 *   abort: AbortController | null,
 *   uploaded?: { id: string, encryption?: FileEncryption },
 *   preview?: string,
 * }} PendingMedia
 */

/** The longest side of a photo sent, in pixels. */
export const MAX_SIDE = 2560;
/** The longest side of a thumbnail, and its largest size decoded (PROTOCOL.md: 8 KiB). */
const THUMB_SIDE = 64;
const THUMB_MAX = 8 * 1024;
/** How many samples a voice note's waveform has. */
export const WAVEFORM = 64;

/** The photo types the page encodes again (and so strips): the others (GIF, SVG, HEIC) go as files, as they are. */
const PHOTO_TYPES = new Set(["image/jpeg", "image/png", "image/webp"]);

/** Unpadded base64 of `bytes`. */
function base64(/** @type {Uint8Array} */ bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/=+$/, "");
}

/** A canvas holding `bitmap` scaled to `w` x `h` (on white with `opaque`: a JPEG has no transparency). */
function draw(/** @type {ImageBitmap} */ bitmap, /** @type {number} */ w, /** @type {number} */ h, opaque = false) {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const g = canvas.getContext("2d");
  if (!g) throw new Error("this browser cannot draw images");
  if (opaque) {
    g.fillStyle = "#ffffff";
    g.fillRect(0, 0, w, h);
  }
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = "high";
  g.drawImage(bitmap, 0, 0, w, h);
  return canvas;
}

/** The canvas encoded as `type` (the browser may fall back to PNG: the Blob's type says what it is). */
function encode(/** @type {HTMLCanvasElement} */ canvas, /** @type {string} */ type, /** @type {number} */ quality) {
  return new Promise((resolve, reject) => {
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the image could not be encoded"))), type, quality);
  });
}

/** `w` x `h` scaled down (never up) so that its longest side is at most `side`. */
function fit(/** @type {number} */ w, /** @type {number} */ h, /** @type {number} */ side) {
  const scale = Math.min(1, side / Math.max(w, h));
  return { w: Math.max(1, Math.round(w * scale)), h: Math.max(1, Math.round(h * scale)) };
}

/**
 * What leaves for `file`: a photo (JPEG, PNG, WebP) decoded with its EXIF orientation applied, scaled down to
 * {@link MAX_SIDE}, encoded again in its own format (no EXIF, GPS, text or colour-profile chunk survives a canvas),
 * with its size and a thumbnail; anything else (GIF, documents) as a file, as it is. `caption`: the photo's.
 * @returns {Promise<PendingMedia>}
 */
export async function prepareFile(/** @type {File} */ file, /** @type {string} */ caption = "") {
  if (PHOTO_TYPES.has(file.type)) {
    /** @type {ImageBitmap | null} */
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch {
      // Not decodable as an image: it goes as a file, as any document would.
    }
    if (bitmap) {
      try {
        const { w, h } = fit(bitmap.width, bitmap.height, MAX_SIDE);
        const blob = await encode(draw(bitmap, w, h), file.type, 0.85);
        const t = fit(bitmap.width, bitmap.height, THUMB_SIDE);
        const thumbCanvas = draw(bitmap, t.w, t.h, true);
        let thumbnail;
        for (const q of [0.7, 0.5, 0.3]) {
          const bytes = new Uint8Array(await (await encode(thumbCanvas, "image/jpeg", q)).arrayBuffer());
          if (bytes.length <= THUMB_MAX) {
            thumbnail = base64(bytes);
            break;
          }
        }
        /** @type {UnsentContent} */
        const content = {
          kind: "image",
          mime: blob.type || file.type,
          width: w,
          height: h,
          size: blob.size,
          ...(thumbnail ? { thumbnail } : {}),
          ...(caption.trim() ? { caption: caption.trim() } : {}),
        };
        return { blob, content, sent: 0, total: blob.size, abort: null, preview: URL.createObjectURL(blob) };
      } finally {
        bitmap.close();
      }
    }
  }
  /** @type {UnsentContent} */
  const content = { kind: "file", name: file.name || "file", mime: file.type || "application/octet-stream", size: file.size };
  return { blob: file, content, sent: 0, total: file.size, abort: null };
}

/** Whether `file` will be sent as a photo (the preview shows it, and offers a caption). */
export function isPhoto(/** @type {File} */ file) {
  return PHOTO_TYPES.has(file.type);
}

/**
 * A recorded voice note: its length and a waveform of {@link WAVEFORM} samples (0 to 255, the loudness of each
 * slice relative to the loudest), read from the decoded audio. `elapsed`: the recording's length by the clock,
 * when the audio does not decode here.
 * @returns {Promise<PendingMedia>}
 */
export async function prepareVoice(/** @type {Blob} */ blob, /** @type {number} */ elapsed) {
  let duration = elapsed;
  /** @type {number[] | undefined} */
  let waveform;
  const ctx = new AudioContext();
  try {
    const audio = await ctx.decodeAudioData(await blob.arrayBuffer());
    duration = Math.round(audio.duration * 1000);
    const data = audio.getChannelData(0);
    const per = Math.max(1, Math.floor(data.length / WAVEFORM));
    const rms = [];
    for (let i = 0; i < WAVEFORM; i++) {
      let sum = 0;
      const from = i * per;
      const to = Math.min(data.length, from + per);
      for (let j = from; j < to; j++) sum += (data[j] ?? 0) ** 2;
      rms.push(to > from ? Math.sqrt(sum / (to - from)) : 0);
    }
    const loudest = Math.max(...rms, 1e-6);
    waveform = rms.map((r) => Math.min(255, Math.round((r / loudest) * 255)));
  } catch (e) {
    console.warn("chatcore: the voice note was not decoded here (no waveform):", e);
  } finally {
    void ctx.close();
  }
  const mime = blob.type || "audio/webm";
  /** @type {UnsentContent} */
  const content = { kind: "voice", mime, duration_ms: Math.max(1, duration), size: blob.size, ...(waveform ? { waveform } : {}) };
  return { blob, content, sent: 0, total: blob.size, abort: null };
}

// -- sending

/** Puts a media message in `c`'s outbox (the page's only) and sends it. */
export function sendMedia(/** @type {Conv} */ c, /** @type {PendingMedia} */ media) {
  /** @type {Pending} */
  const p = { client_id: newClientId(), text: "", ts: Date.now(), status: "waiting", media };
  c.pending.set(p.client_id, p);
  stickToBottom();
  invalidate("messages", "directory");
  void uploadAndSend(c, p);
  return p;
}

/** Cancels a media message on its way: the upload stops, the bubble goes, nothing is sent. */
export function cancelMedia(/** @type {Conv} */ c, /** @type {Pending} */ p) {
  p.media?.abort?.abort();
  forget(c, p);
}

/** Drops `p` from the page, and its preview. */
function forget(/** @type {Conv} */ c, /** @type {Pending} */ p) {
  c.pending.delete(p.client_id);
  if (p.media?.preview) URL.revokeObjectURL(p.media.preview);
  invalidate("messages", "directory");
}

/** Tries a failed media message again (its file is uploaded again only if the upload failed). */
export function retryMedia(/** @type {Conv} */ c, /** @type {Pending} */ p) {
  if (p.status !== "failed") return;
  void uploadAndSend(c, p);
}

/** Removes a failed media message. */
export function discardMedia(/** @type {Conv} */ c, /** @type {Pending} */ p) {
  forget(c, p);
}

/** Redraws the pending bubble's progress (in place: ui/mediaview.js keeps the node). */
function progressed(/** @type {Pending} */ p) {
  const bar = p.media && document.querySelector(`#message-list [data-pending="${CSS.escape(p.client_id)}"] progress`);
  if (bar instanceof HTMLProgressElement && p.media) {
    bar.max = p.media.total || 1;
    bar.value = p.media.sent;
  }
}

/**
 * Uploads `p`'s file (encrypted first when `c` is: the server stores ciphertext, and the key travels only inside
 * the encrypted message) and sends its message. Cancelled: nothing more happens. Failed: marked, with a retry.
 */
async function uploadAndSend(/** @type {Conv} */ c, /** @type {Pending} */ p) {
  const client = state.client;
  const media = p.media;
  if (!client || !media || p.status === "sending") return;
  p.status = "sending";
  delete p.error;
  const abort = new AbortController();
  media.abort = abort;
  media.sent = 0;
  invalidate("messages");
  sendStarted();
  try {
    if (c.encrypted) {
      await new Promise((resolve) => afterE2eStart(() => resolve(undefined)));
      if (!state.secure || state.e2e.status !== "ready") throw new Error(cannotSend(c) ?? "end-to-end encryption is not ready");
    }
    if (!media.uploaded) {
      const bytes = new Uint8Array(await media.blob.arrayBuffer());
      // Encrypted here, or not at all: a file of an encrypted conversation never leaves in clear.
      const sealed = c.encrypted ? await encryptFile(bytes) : null;
      const body = sealed ? sealed.ciphertext : bytes;
      media.total = body.length;
      const up = await client.upload(body, {
        signal: abort.signal,
        onProgress: (sent, total) => {
          media.sent = sent;
          media.total = total;
          progressed(p);
        },
      });
      // The server says what it stored: a file that changed on its way would not decrypt at the other end.
      if (sealed && up.sha256 !== sealed.encryption.sha256) throw new Error("the server stored other bytes than were sent");
      media.uploaded = { id: up.id, ...(sealed ? { encryption: sealed.encryption } : {}) };
    }
    if (abort.signal.aborted || !c.pending.has(p.client_id)) return;
    // Past this point the message is on its way: it can no longer be cancelled, only deleted once sent.
    media.abort = null;
    invalidate("messages");
    const { id, encryption } = media.uploaded;
    const content = /** @type {MediaContent} */ ({ ...media.content, media: id, ...(encryption ? { encryption } : {}) });
    const secure = state.secure;
    const { message } = c.encrypted
      ? await /** @type {NonNullable<typeof secure>} */ (secure).sendMedia(c.id, content, { clientId: p.client_id })
      : await client.send({ conv: c.id }, content, { clientId: p.client_id, media: [id] });
    forget(c, p);
    if (message.content.kind === "encrypted" && state.secure) state.reads.set(message.id, state.secure.decryptMessage(message).body);
    addMessage(c, message, true);
  } catch (err) {
    if (abort.signal.aborted || !c.pending.has(p.client_id)) return;
    p.status = "failed";
    p.error = failure(err);
    media.abort = null;
  } finally {
    sendEnded();
  }
  if (state.open === c.id) invalidate("messages");
  invalidate("directory");
}

/** Why an upload or a media send failed, in words. */
function failure(/** @type {unknown} */ err) {
  if (err instanceof ChatError && err.code === "too_large") return "the file is larger than the server accepts.";
  if (err instanceof ChatError && err.code === "rate_limited") return "too many uploads: wait a moment and try again.";
  if (err instanceof TypeError) return "the upload did not get through. Check your connection and try again.";
  return describe(err);
}

// -- fetching

/** Files fetched lately, by media id (a bubble drawn again, the viewer, a second play do not download again). */
/** @type {Map<string, Promise<Blob>>} */
const fetched = new Map();
/** The most files kept. */
const KEPT = 40;

/**
 * The file of a media content as a Blob of its type: downloaded with the session's token in a header (never in an
 * address), decrypted when it came encrypted. Kept for the next ask; a failure is not kept.
 */
export function fetchMedia(/** @type {MediaContent} */ content) {
  const client = state.client;
  if (!client) return Promise.reject(new Error("signed out"));
  const hit = fetched.get(content.media);
  if (hit) {
    // The latest asked goes last: the oldest is dropped first.
    fetched.delete(content.media);
    fetched.set(content.media, hit);
    return hit;
  }
  const p = (async () => {
    const stored = await client.download(content.media);
    const bytes = content.encryption ? await decryptFile(stored, content.encryption) : stored;
    return new Blob([/** @type {BlobPart} */ (bytes)], { type: safeType(content) });
  })();
  fetched.set(content.media, p);
  p.catch(() => fetched.delete(content.media));
  while (fetched.size > KEPT) fetched.delete(fetched.keys().next().value ?? "");
  return p;
}

/**
 * The type the page gives a fetched file: the sender's word is trusted only as far as it cannot make the page run
 * anything (an image shown is a photo type, a voice note audio); anything else is bytes to save.
 */
function safeType(/** @type {MediaContent} */ content) {
  if (content.kind === "image" && PHOTO_TYPES.has(content.mime)) return content.mime;
  if (content.kind === "voice" && /^audio\/[\w.+-]+(;.*)?$/.test(content.mime)) return content.mime;
  return "application/octet-stream";
}

/** Forgets the files fetched (signed out). */
export function forgetFetched() {
  fetched.clear();
}
