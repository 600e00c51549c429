// @ts-check
// Profile and group pictures: picked from a file, cropped to a square here (centred at first; dragged, moved with
// the arrow keys, zoomed), scaled down to at most 512×512 on a canvas and re-encoded as JPEG, which keeps the
// pixels and nothing else the file carried (EXIF with a GPS position, PNG text chunks, comments), then uploaded
// (`POST /media`) and set as the picture (`update_profile` / `update_group` with `avatar`; an empty one removes it).
// Pictures are not end-to-end encrypted: every signed-in user who has the id may read them (docs/PROTOCOL.md,
// like a profile is to one's contacts in Signal), so the plain image is uploaded.

import { $, dialog, show } from "./dom.js";
import { describe } from "./format.js";
import { invalidate, onRender, rememberUser, state } from "./store.js";
import { paintAvatar, rememberPicture } from "./avatar.js";
import { refreshConversation } from "./chat.js";

/** The largest side of an uploaded picture, in pixels (a smaller crop keeps its size: nothing is scaled up). */
export const PICTURE_SIZE = 512;
const JPEG_QUALITY = 0.86;
const MAX_ZOOM = 4;

/** Thrown for a file that is no picture this browser can read. */
class NotAPicture extends Error {}

/**
 * Shows the crop dialog for `file`; resolves with the square JPEG (at most PICTURE_SIZE a side), or null when the
 * user cancels. Rejects with NotAPicture when the browser cannot decode the file.
 */
async function cropPicture(/** @type {File} */ file) {
  /** @type {ImageBitmap} */
  let bmp;
  try {
    bmp = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    throw new NotAPicture("This file is not a picture this browser can read (try a JPEG or PNG).");
  }
  const d = dialog("picture-crop");
  const canvas = /** @type {HTMLCanvasElement} */ ($("picture-crop-canvas"));
  const zoom = /** @type {HTMLInputElement} */ ($("picture-crop-zoom"));
  const W = bmp.width;
  const H = bmp.height;
  const base = Math.min(W, H);
  // The crop: a square of side base/z centred on (cx, cy), in the picture's pixels, always inside it.
  let z = 1;
  let cx = W / 2;
  let cy = H / 2;
  const side = () => base / z;
  const draw = () => {
    const s = side();
    cx = Math.min(Math.max(cx, s / 2), W - s / 2);
    cy = Math.min(Math.max(cy, s / 2), H - s / 2);
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.imageSmoothingQuality = "high";
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bmp, cx - s / 2, cy - s / 2, s, s, 0, 0, canvas.width, canvas.height);
  };
  const setZoom = (/** @type {number} */ v) => {
    z = Math.min(Math.max(v, 1), MAX_ZOOM);
    zoom.value = String(z);
    draw();
  };
  /** Moves the crop by a fraction of its side (keys) or by canvas pixels (dragging). */
  const move = (/** @type {number} */ dx, /** @type {number} */ dy) => {
    cx += dx;
    cy += dy;
    draw();
  };
  zoom.value = "1";
  draw();
  return new Promise((/** @type {(b: Blob | null) => void} */ resolve, reject) => {
    const ac = new AbortController();
    const on = { signal: ac.signal };
    let settled = false;
    const done = (/** @type {Blob | null} */ blob, /** @type {unknown} */ err = undefined) => {
      if (settled) return;
      settled = true;
      ac.abort();
      if (d.open) d.close();
      bmp.close();
      if (err) reject(err);
      else resolve(blob);
    };
    /** @type {{ x: number, y: number } | null} */
    let drag = null;
    canvas.addEventListener(
      "pointerdown",
      (ev) => {
        drag = { x: ev.clientX, y: ev.clientY };
        canvas.setPointerCapture(ev.pointerId);
      },
      on,
    );
    canvas.addEventListener(
      "pointermove",
      (ev) => {
        if (!drag) return;
        // Dragging the picture right shows more of its left: the crop moves the other way.
        const scale = side() / (canvas.clientWidth || canvas.width);
        move(-(ev.clientX - drag.x) * scale, -(ev.clientY - drag.y) * scale);
        drag = { x: ev.clientX, y: ev.clientY };
      },
      on,
    );
    for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, () => (drag = null), on);
    canvas.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        setZoom(z * (ev.deltaY < 0 ? 1.1 : 1 / 1.1));
      },
      { signal: ac.signal, passive: false },
    );
    canvas.addEventListener(
      "keydown",
      (ev) => {
        const step = side() * 0.05;
        /** @type {Record<string, () => void>} */
        const keys = {
          ArrowLeft: () => move(-step, 0),
          ArrowRight: () => move(step, 0),
          ArrowUp: () => move(0, -step),
          ArrowDown: () => move(0, step),
          "+": () => setZoom(z * 1.1),
          "=": () => setZoom(z * 1.1),
          "-": () => setZoom(z / 1.1),
        };
        const act = keys[ev.key];
        if (!act) return;
        ev.preventDefault();
        act();
      },
      on,
    );
    zoom.addEventListener("input", () => setZoom(Number(zoom.value)), on);
    $("picture-crop-cancel").addEventListener("click", () => done(null), on);
    // Escape, or the dialog closed any other way: cancelled.
    d.addEventListener("close", () => done(null), on);
    d.addEventListener("click", (ev) => ev.target === d && done(null), on);
    $("picture-crop-use").addEventListener(
      "click",
      () => {
        encode(bmp, cx, cy, side()).then(
          (blob) => done(blob),
          (err) => done(null, err),
        );
      },
      on,
    );
    d.showModal();
    canvas.focus();
  });
}

/** The square of side `s` centred on (cx, cy) of `bmp`, scaled to at most PICTURE_SIZE, as a JPEG. */
function encode(/** @type {ImageBitmap} */ bmp, /** @type {number} */ cx, /** @type {number} */ cy, /** @type {number} */ s) {
  const out = Math.max(1, Math.min(PICTURE_SIZE, Math.round(s)));
  const c = document.createElement("canvas");
  c.width = out;
  c.height = out;
  const ctx = c.getContext("2d");
  if (!ctx) return Promise.reject(new Error("This browser cannot draw the picture."));
  ctx.imageSmoothingQuality = "high";
  // JPEG has no transparency: what was transparent becomes white, not black.
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out, out);
  ctx.drawImage(bmp, cx - s / 2, cy - s / 2, s, s, 0, 0, out, out);
  return new Promise((/** @type {(b: Blob) => void} */ resolve, reject) =>
    c.toBlob((b) => (b ? resolve(b) : reject(new Error("This browser cannot encode the picture."))), "image/jpeg", JPEG_QUALITY),
  );
}

/**
 * One picture section (`prefix`: "profile" or "group"): its buttons, the file picker, and what happens once a
 * picture is chosen (`set` with a media id; "" removes it).
 */
function wireSection(/** @type {string} */ prefix, /** @type {(id: string) => Promise<void>} */ set) {
  const input = /** @type {HTMLInputElement} */ ($(`${prefix}-picture-file`));
  const change = /** @type {HTMLButtonElement} */ ($(`${prefix}-picture-change`));
  const remove = /** @type {HTMLButtonElement} */ ($(`${prefix}-picture-remove`));
  const status = $(`${prefix}-picture-status`);
  const error = $(`${prefix}-picture-error`);
  const busy = (/** @type {boolean} */ on) => {
    change.disabled = on;
    remove.disabled = on;
  };
  const fail = (/** @type {unknown} */ err) => {
    status.textContent = "";
    error.textContent = err instanceof NotAPicture ? err.message : describe(err);
    show(error, true);
  };
  change.addEventListener("click", () => {
    show(error, false);
    status.textContent = "";
    input.click();
  });
  input.addEventListener("change", async () => {
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    /** @type {Blob | null} */
    let blob;
    try {
      blob = await cropPicture(file);
    } catch (err) {
      fail(err);
      change.focus();
      return;
    }
    change.focus();
    if (!blob) return;
    const client = state.client;
    if (!client) return;
    busy(true);
    status.textContent = "Uploading the picture…";
    try {
      const { id } = await client.upload(blob);
      // Shown from the bytes this page has: no download of what it just uploaded.
      rememberPicture(id, blob);
      await set(id);
      status.textContent = "Picture changed.";
    } catch (err) {
      fail(err);
    } finally {
      busy(false);
    }
  });
  remove.addEventListener("click", async () => {
    show(error, false);
    busy(true);
    try {
      await set("");
      status.textContent = "Picture removed.";
      change.focus();
    } catch (err) {
      fail(err);
    } finally {
      busy(false);
    }
  });
}

/** The group whose dialog is open. */
function dialogGroup() {
  const id = dialog("group").dataset.conv;
  return (id && state.convs.get(id)) || null;
}

/** One's own card: the picture section, and the avatar as it is now. */
function renderProfilePicture() {
  const d = dialog("card");
  const me = state.me;
  const mine = d.open && !!me && d.dataset.user === me.user;
  show($("profile-picture"), mine);
  if (!mine || !me) return;
  paintAvatar($("card-avatar"), me.profile);
  show($("profile-picture-remove"), !!me.profile.avatar);
}

/** The group dialog: the picture section for admins. */
function renderGroupPicture() {
  const c = dialogGroup();
  const admin = !!c && !c.left && (c.role === "admin" || c.role === "owner");
  show($("group-picture"), admin);
  if (c) show($("group-picture-remove"), admin && !!c.avatar);
}

export function wirePictures() {
  wireSection("profile", async (avatar) => {
    const client = state.client;
    if (!client) return;
    const entry = await client.updateProfile({ avatar });
    rememberUser(entry);
    if (state.me) state.me.profile = entry.profile;
    invalidate("me", "directory", "header", "card", "contacts", "group", "messages");
  });
  wireSection("group", async (avatar) => {
    const client = state.client;
    const c = dialogGroup();
    if (!client || !c) return;
    await client.updateGroup(c.id, { avatar });
    c.avatar = avatar;
    invalidate("directory", "header", "group", "requests");
    await refreshConversation(c.id);
  });
  // A new card or group dialog starts without the last one's messages.
  for (const [id, prefix] of [["card", "profile"], ["group", "group"]]) {
    dialog(id).addEventListener("close", () => {
      $(`${prefix}-picture-status`).textContent = "";
      show($(`${prefix}-picture-error`), false);
    });
  }
}

onRender("card", renderProfilePicture);
onRender("group", renderGroupPicture);
