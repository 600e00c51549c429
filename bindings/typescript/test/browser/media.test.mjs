// Photos, files and voice notes in the web client, two people in real Chromium against a real chatd that keeps
// uploads in a directory this test reads, in their end-to-end encrypted chat (as the web client makes it).
// Alice attaches a PNG carrying an eXIf and a tEXt chunk (a "GPS" marker) with a caption: Bob sees its thumbnail,
// opens it in the viewer, and the bytes his page downloaded and decrypted are a PNG scaled down to 2560 px with
// neither chunk nor the marker. Alice drops a file on the chat (a synthetic drop with a DataTransfer): Bob
// downloads it, byte for byte. Alice records a voice note from Chromium's fake microphone: Bob sees its waveform,
// plays it to its end and seeks in it. The chat list says what each one is. No stored blob holds the file's
// marker or the PNG's bytes (the server keeps ciphertext). A pasted image whose upload is cancelled leaves no
// bubble and sends nothing; a failed upload says so and goes out on Retry. axe-core finds nothing serious with
// the viewer open.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { startChatd } from "../support/chatd.mjs";
import { FAKE_MEDIA, axeViolations, launchBrowser, makeContacts, screenshot, serveMissingFromDisk, signUpIn, walkFiles, watchConsole } from "../support/browser.mjs";
import { newAccount, until } from "../support/util.mjs";

const DESKTOP = { width: 1100, height: 760 };
const mediaDir = mkdtempSync(join(tmpdir(), "chatcore-media-web-"));

let chatd;
let browser;
const problems = [];
const users = {};

before(async () => {
  chatd = await startChatd(["--media", `dir:${mediaDir}`]);
  browser = await launchBrowser(FAKE_MEDIA);
});

after(async () => {
  await browser?.close();
  await chatd?.stop();
  rmSync(mediaDir, { recursive: true, force: true });
});

// -- a PNG that says where it was taken

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** A `w` x `h` RGB PNG (a gradient) with an eXIf chunk and a tEXt chunk, both holding `marker`. */
function pngWithMetadata(w, h, marker) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) raw.set([(x * 7) & 255, (y * 5) & 255, ((x + y) * 3) & 255], row + 1 + x * 3);
  }
  // A big-endian TIFF header with an empty IFD, then the marker (as a GPS tag's value would sit there).
  const exif = Buffer.concat([Buffer.from([0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0]), Buffer.from(marker)]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("eXIf", exif),
    chunk("tEXt", Buffer.from(`GPSLocation\0${marker}`, "latin1")),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** The chunk types of a PNG (throws if it is not one). */
function pngChunks(bytes) {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
  const types = [];
  for (let at = 8; at < bytes.length; ) {
    const len = bytes.readUInt32BE(at);
    types.push(bytes.subarray(at + 4, at + 8).toString("latin1"));
    at += 12 + len;
  }
  return types;
}

// -- pages

async function signUp(name) {
  const account = newAccount(name);
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC", permissions: ["microphone"], acceptDownloads: true });
  await serveMissingFromDisk(context, chatd.httpUrl);
  // Every Blob the page shows from an object URL, so that the test reads the very bytes it shows.
  await context.addInitScript(() => {
    const create = URL.createObjectURL;
    const revoke = URL.revokeObjectURL;
    const blobs = new Map();
    const revoked = new Set();
    Object.defineProperty(window, "__blobs", { value: blobs });
    Object.defineProperty(window, "__revoked", { value: revoked });
    URL.createObjectURL = (b) => {
      const url = create.call(URL, b);
      blobs.set(url, b);
      return url;
    };
    URL.revokeObjectURL = (url) => {
      revoked.add(url);
      revoke.call(URL, url);
    };
  });
  const page = await context.newPage();
  watchConsole(page, name, problems);
  page.setDefaultTimeout(15_000);
  await page.goto(chatd.httpUrl + "/");
  await signUpIn(page, account);
  users[name] = { account, context, page };
  return users[name];
}

async function openChatWith(page, other) {
  const r = page.locator(`#directory button.person[data-username="${other.username}"]`);
  if (!(await r.isVisible())) {
    await page.fill("#search", other.username);
    await r.waitFor();
  }
  await r.click();
  await page.locator("#chat-open").waitFor({ state: "visible" });
  if (await page.locator("#search").isVisible()) await page.fill("#search", "");
}

/** The bytes of the Blob behind object URL `url` in `page`. */
async function blobBytes(page, url) {
  const b64 = await page.evaluate(async (url) => {
    const blob = window.__blobs.get(url);
    if (!blob) throw new Error(`no Blob recorded for ${url}`);
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }, url);
  return Buffer.from(b64, "base64");
}

/** How many blob files chatd keeps. */
const storedBlobs = () => walkFiles(mediaDir).filter((f) => statSync(f).isFile());

const marker = `GPS-51.5007N-0.1246W-${Math.random().toString(36).slice(2, 10)}`;
const png = pngWithMetadata(3000, 200, marker);
const fileMarker = `FILE-MARKER-${Math.random().toString(36).slice(2, 10)}`;
const fileBytes = Buffer.from(`${fileMarker}\n${"notes about the trip, line after line\n".repeat(130)}${fileMarker}\n`);

test("a photo, a file and a voice note go encrypted from Alice to Bob: shown, opened, downloaded, played", async () => {
  const [{ page: alice }, { page: bob }] = await Promise.all([signUp("alice"), signUp("bob")]);
  await makeContacts(users.alice, users.bob);
  await openChatWith(alice, users.bob.account);
  await openChatWith(bob, users.alice.account);
  // The chat the web client made is end-to-end encrypted.
  await alice.locator("#peer-lock").waitFor();
  const aliceRow = bob.locator(`#directory button.person[data-username="${users.alice.account.username}"]`);

  // -- the photo, through the attach button's file picker, with a caption
  assert.ok(png.includes(Buffer.from(marker)), "the PNG carries the marker");
  const chooser = alice.waitForEvent("filechooser");
  await alice.click("#attach-button");
  await (await chooser).setFiles({ name: "holiday.png", mimeType: "image/png", buffer: png });
  await alice.locator("#attach[open]").waitFor();
  assert.equal(await alice.textContent("#attach-heading"), "Send a photo");
  await alice.fill("#attach-caption", "At the beach");
  await alice.click("#attach-send");
  await alice.locator("#attach").waitFor({ state: "hidden" });
  await alice.locator("#message-list .msg.mine:not([data-pending]) .media-photo").waitFor();

  const photo = bob.locator("#message-list .msg.theirs.has-media", { hasText: "At the beach" });
  await photo.waitFor();
  // The inline thumbnail shows at once (a data: image from the message), the photo once downloaded and decrypted.
  assert.match((await photo.locator(".media-thumb").getAttribute("src")) ?? "", /^data:image\/jpeg;base64,[A-Za-z0-9+/]+$/);
  await photo.locator('.media-photo[data-state="loaded"]').waitFor();
  await aliceRow.locator(".person-sub", { hasText: "📷 Photo: At the beach" }).waitFor();

  // The viewer: opened from the photo, the full image in it, closed with Escape, the focus back on the photo.
  await photo.locator(".media-open").click();
  await bob.locator('#viewer[open][data-state="loaded"]').waitFor();
  assert.equal(await bob.evaluate(() => document.activeElement?.id), "viewer-close");
  const src = await bob.getAttribute("#viewer-image", "src");
  assert.match(src ?? "", /^blob:/);
  const shownBytes = await blobBytes(bob, src);
  const chunks = pngChunks(shownBytes);
  // The image and how to render it, nothing else: no text, EXIF, time or colour profile (which may name a device).
  const rendering = ["IHDR", "PLTE", "tRNS", "IDAT", "IEND", "sRGB", "gAMA", "cHRM", "pHYs"];
  assert.deepEqual(chunks.filter((t) => !rendering.includes(t)), [], "only the image's own chunks");
  for (const t of ["eXIf", "tEXt", "zTXt", "iTXt", "tIME"]) assert.ok(!chunks.includes(t), `no ${t} chunk in what Bob got: ${chunks}`);
  assert.ok(!shownBytes.includes(Buffer.from(marker)), "the marker did not travel");
  assert.ok(!shownBytes.equals(png), "not the original bytes");
  // Scaled down to 2560 px on its long side, its proportions kept.
  assert.deepEqual([shownBytes.readUInt32BE(16), shownBytes.readUInt32BE(20)], [2560, 171]);
  assert.deepEqual(
    await bob.evaluate(() => {
      const img = /** @type {HTMLImageElement} */ (document.getElementById("viewer-image"));
      return [img.naturalWidth, img.naturalHeight, img.alt];
    }),
    [2560, 171, "Photo: At the beach"],
  );
  const a11y = await axeViolations(bob, "viewer open");
  await screenshot(bob, "media-viewer");
  await bob.keyboard.press("Escape");
  await bob.locator("#viewer").waitFor({ state: "hidden" });
  assert.equal(await bob.evaluate(() => document.activeElement?.classList.contains("media-open")), true, "focus back on the photo");
  // The viewer's object URL is revoked once it closed (the dialog's close event comes a task after it hides).
  await bob.waitForFunction((u) => window.__revoked.has(u), src, { timeout: 5000 });

  // -- the file, dropped on the chat (a synthetic drop carrying a DataTransfer)
  await alice.evaluate(
    ({ b64, name }) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], name, { type: "text/plain" }));
      const target = document.getElementById("messages");
      for (const type of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    },
    { b64: fileBytes.toString("base64"), name: "trip notes.txt" },
  );
  await alice.locator("#attach[open]").waitFor();
  assert.equal(await alice.textContent("#attach-heading"), "Send a file");
  assert.equal(await alice.isVisible("#attach-caption"), false, "no caption for a file");
  await alice.click("#attach-send");
  await alice.locator("#message-list .msg.mine:not([data-pending]) .media-file").waitFor();
  const file = bob.locator("#message-list .msg.theirs .media-file", { hasText: "trip notes.txt" });
  await file.waitFor();
  const kb = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 1 }).format(fileBytes.length / 1024);
  assert.equal(await file.locator(".media-file-size").textContent(), `${kb} KB`);
  await aliceRow.locator(".person-sub", { hasText: "📎 File: trip notes.txt" }).waitFor();
  const download = bob.waitForEvent("download");
  await file.getByRole("button", { name: "Download trip notes.txt" }).click();
  const d = await download;
  assert.equal(d.suggestedFilename(), "trip notes.txt");
  assert.ok(readFileSync(await d.path()).equals(fileBytes), "Bob saved the very bytes Alice dropped");

  // -- the voice note, recorded from the fake microphone for about 1.5 s
  await alice.click("#record-button");
  await alice.locator("#recording").waitFor();
  assert.equal(await alice.getAttribute("#record-button", "aria-pressed"), "true");
  await alice.waitForTimeout(1600);
  assert.match((await alice.textContent("#recording-time")) ?? "", /^Recording 0:0[12]$/);
  await alice.click("#record-button");
  await alice.locator("#recording").waitFor({ state: "hidden" });
  await alice.locator("#message-list .msg.mine:not([data-pending]) .media-voice").waitFor();
  const voice = bob.locator("#message-list .msg.theirs .media-voice");
  await voice.waitFor();
  await aliceRow.locator(".person-sub", { hasText: "🎤 Voice message" }).waitFor();
  assert.equal(await voice.locator(".voice-bar").count(), 64, "a 64-sample waveform");
  const heights = await voice.locator(".voice-bar").evaluateAll((bars) => bars.map((b) => b.style.height));
  assert.ok(new Set(heights).size > 1, `a waveform that is not flat: ${heights}`);
  const total = Number(await voice.locator(".voice-seek").getAttribute("max"));
  assert.ok(total >= 1200 && total <= 2500, `duration ${total} ms`);
  // Played (four times as fast) until the audio element ends; the bars fill as it plays.
  await voice.evaluate((el) => {
    const audio = el.querySelector("audio");
    audio.defaultPlaybackRate = 4;
    window.__voiceEnded = new Promise((resolve) => audio.addEventListener("ended", () => resolve(true), { once: true }));
    window.__played = 0;
    audio.addEventListener("timeupdate", () => (window.__played = Math.max(window.__played, el.querySelectorAll(".voice-bar.played").length)));
  });
  await voice.getByRole("button", { name: /^Play the voice message from / }).click();
  assert.equal(await bob.evaluate(() => window.__voiceEnded), true);
  assert.ok((await bob.evaluate(() => window.__played)) > 0, "the waveform filled as it played");
  await voice.getByRole("button", { name: /^Play the voice message from / }).waitFor();
  // Seeking: the seek bar moves the audio in the downloaded file.
  const at = await voice.evaluate(async (el) => {
    const seek = el.querySelector(".voice-seek");
    const audio = el.querySelector("audio");
    seek.value = String(Math.round(Number(seek.max) / 2));
    seek.dispatchEvent(new Event("input", { bubbles: true }));
    await new Promise((r) => setTimeout(r, 300));
    return { time: audio.currentTime * 1000, want: Number(seek.value), src: audio.src };
  });
  assert.match(at.src, /^blob:/);
  assert.ok(Math.abs(at.time - at.want) < 150, `seeked to ${at.time} ms, asked ${at.want}`);

  await screenshot(bob, "media-chat");

  // After a reload, the history decrypts to the same three: photo (loaded), file and voice note.
  await bob.reload();
  await bob.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  await bob.locator('#message-list .msg.theirs .media-photo[data-state="loaded"]').waitFor();
  await bob.locator("#message-list .msg.theirs .media-file", { hasText: "trip notes.txt" }).waitFor();
  await bob.locator("#message-list .msg.theirs .media-voice").waitFor();

  // -- what the server keeps: ciphertext, never the file or the photo
  const blobs = storedBlobs();
  assert.ok(blobs.length >= 3, `${blobs.length} stored blobs`);
  const pngPart = png.subarray(png.length - 400, png.length - 12);
  for (const f of blobs) {
    const bytes = readFileSync(f);
    assert.ok(!bytes.includes(Buffer.from(fileMarker)), `${f} holds the file's marker`);
    assert.ok(!bytes.includes(Buffer.from(marker)), `${f} holds the photo's marker`);
    assert.ok(!bytes.includes(pngPart), `${f} holds the PNG's bytes`);
    assert.ok(!bytes.includes(fileBytes.subarray(100, 400)), `${f} holds the file's bytes`);
  }
  assert.deepEqual(a11y, []);
  assert.deepEqual(problems, []);
});

test("a pasted image whose upload is cancelled leaves no bubble and sends nothing; a failed one goes out on Retry", async () => {
  const { page: alice, context } = users.alice;
  const { page: bob } = users.bob;
  const before = storedBlobs().length;
  const bobCount = await bob.locator("#message-list .msg").count();
  const tiny = pngWithMetadata(40, 30, marker);

  /** Pastes `bytes` as an image into the message box. */
  const paste = (bytes) =>
    alice.evaluate((b64) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], "image.png", { type: "image/png" }));
      const box = document.getElementById("composer-text");
      box.focus();
      box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
    }, bytes.toString("base64"));

  // The upload is held on its way (the bubble shows its progress and a Cancel), and let go to the server after the
  // Cancel: an upload the page did not abort would be stored then, and its message sent.
  let held = 0;
  let release = () => {};
  const released = new Promise((resolve) => (release = resolve));
  await context.route("**/media", async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    held += 1;
    await released;
    await route.continue().catch(() => {});
  });
  await paste(tiny);
  await alice.locator("#attach[open]").waitFor();
  assert.equal(await alice.textContent("#attach-heading"), "Send a photo");
  await alice.click("#attach-send");
  const pending = alice.locator("#message-list .msg[data-pending]");
  await pending.locator("progress.upload-progress").waitFor();
  await until(() => held === 1, 5000, "the upload to start");
  await pending.getByRole("button", { name: "Cancel sending the photo" }).click();
  await pending.waitFor({ state: "detached" });
  release();
  await context.unroute("**/media");
  // Nothing reaches Bob, nothing is stored, and Alice's chat has no trace of it.
  await alice.waitForTimeout(1000);
  assert.equal(await bob.locator("#message-list .msg").count(), bobCount);
  assert.equal(storedBlobs().length, before);
  assert.equal(await alice.locator("#message-list .msg[data-pending]").count(), 0);

  // An upload refused on its way says so, and goes out when the user retries.
  await context.route("**/media", (route) =>
    route.request().method() === "POST" ? route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"unavailable","message":"down"}' }) : route.continue(),
  );
  await paste(tiny);
  await alice.locator("#attach[open]").waitFor();
  await alice.fill("#attach-caption", "second try");
  await alice.click("#attach-send");
  const failed = alice.locator("#message-list .msg.failed[data-pending]");
  await failed.locator(".msg-error", { hasText: "Not sent:" }).waitFor();
  await context.unroute("**/media");
  await failed.getByRole("button", { name: "Retry" }).click();
  await alice.locator("#message-list .msg.mine:not([data-pending])", { hasText: "second try" }).waitFor();
  await bob.locator("#message-list .msg.theirs.has-media", { hasText: "second try" }).waitFor();
  assert.equal(storedBlobs().length, before + 1);
  assert.deepEqual(problems, []);
});
