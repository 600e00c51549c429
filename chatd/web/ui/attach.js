// @ts-check
// Files into a conversation: the composer's attach button (a file picker), files dropped on the chat, an image
// pasted into it. Each opens the attach dialog (what will be sent, a photo's caption, Send or Cancel); sending goes
// through ui/media.js. And voice notes: the record button records from the microphone (press to start, press
// again to stop and send; Cancel drops the recording), showing how long it runs.

import { $, dialog, field, form, h, show } from "./dom.js";
import { sizeText } from "./format.js";
import { openConv, state } from "./store.js";
import { forgetFetched, isPhoto, prepareFile, prepareVoice, sendMedia } from "./media.js";
import { cannotSend } from "./e2e.js";
import { toast } from "./notify.js";
import { releaseAll, wireViewer } from "./mediaview.js";

/** The most files one attach sends (one message each). */
const MAX_FILES = 10;

/** The files the attach dialog offers to send, and the previews it made of them. @type {{ files: File[], urls: string[] }} */
const offered = { files: [], urls: [] };

/** Whether files can be sent to the open conversation now (the composer shows). */
function canSend() {
  const c = openConv();
  return !!c && !$("composer").hidden && !c.left && !c.request && !cannotSend(c);
}

/** Opens the attach dialog on `files` (from the picker, a drop or a paste). */
export function offerFiles(/** @type {File[]} */ files) {
  if (!files.length || !canSend()) return;
  const d = dialog("attach");
  forgetOffered();
  const list = files.slice(0, MAX_FILES);
  offered.files = list;
  const photos = list.filter(isPhoto);
  $("attach-heading").textContent =
    list.length > 1 ? `Send ${list.length} files` : photos.length ? "Send a photo" : "Send a file";
  $("attach-list").replaceChildren(
    ...list.map((f) => {
      if (isPhoto(f)) {
        // The picked file itself, shown here only (the one sent is encoded again, without its metadata).
        const url = URL.createObjectURL(f);
        offered.urls.push(url);
        return h("li", { class: "attach-item" }, h("img", { class: "attach-thumb", src: url, alt: `Photo ${f.name}` }), h("span", { class: "attach-size" }, sizeText(f.size)));
      }
      return h(
        "li",
        { class: "attach-item" },
        h("span", { class: "media-file-icon", "aria-hidden": "true" }, "📄"),
        h("bdi", { class: "attach-name" }, f.name || "file"),
        h("span", { class: "attach-size" }, sizeText(f.size)),
      );
    }),
  );
  // A caption for one photo (several files go as they are).
  const captioned = list.length === 1 && photos.length === 1;
  show($("attach-caption-field"), captioned);
  field("attach-caption").value = "";
  show($("attach-error"), false);
  if (files.length > MAX_FILES) {
    $("attach-error").textContent = `Only the first ${MAX_FILES} files are sent at once.`;
    show($("attach-error"), true);
  }
  setBusy(false);
  d.showModal();
  (captioned ? field("attach-caption") : $("attach-send")).focus();
}

function setBusy(/** @type {boolean} */ busy) {
  /** @type {HTMLButtonElement} */ ($("attach-send")).disabled = busy;
  $("attach-send").textContent = busy ? "Preparing…" : "Send";
}

function forgetOffered() {
  for (const url of offered.urls) URL.revokeObjectURL(url);
  offered.urls = [];
  offered.files = [];
}

/** Prepares the offered files (photos encoded again here) and sends each as a message of the open conversation. */
async function sendOffered() {
  const c = openConv();
  const files = offered.files;
  if (!c || !files.length) return;
  const caption = field("attach-caption").value;
  setBusy(true);
  try {
    const prepared = [];
    for (const f of files) prepared.push(await prepareFile(f, files.length === 1 ? caption : ""));
    dialog("attach").close();
    for (const m of prepared) sendMedia(c, m);
  } catch (err) {
    console.warn("chatcore: files not prepared:", err);
    $("attach-error").textContent = "These files could not be read. Pick them again.";
    show($("attach-error"), true);
    setBusy(false);
  }
}

/** Files a drag carries (not text or a link being dragged). */
function carriesFiles(/** @type {DragEvent} */ ev) {
  return !!ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
}

// -- voice notes

/**
 * The recording under way: its recorder and microphone stream, when it began, the ticking clock, and the
 * conversation it goes to.
 * @type {{ recorder: MediaRecorder, stream: MediaStream, chunks: Blob[], started: number, timer: ReturnType<typeof setInterval>, conv: import("./store.js").Conv, send: boolean } | null}
 */
let recording = null;

/** The longest voice note, in ms: the recording stops and is sent then. */
const MAX_RECORDING = 10 * 60_000;

function clock(/** @type {number} */ ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function renderRecording() {
  const on = !!recording;
  const button = $("record-button");
  button.setAttribute("aria-pressed", String(on));
  button.setAttribute("aria-label", on ? "Stop and send the voice message" : "Record a voice message");
  button.title = on ? "Stop and send" : "Record a voice message";
  button.classList.toggle("recording-on", on);
  show($("recording"), on);
  $("composer").classList.toggle("is-recording", on);
  if (recording) $("recording-time").textContent = `Recording ${clock(performance.now() - recording.started)}`;
}

/** Starts recording from the microphone (the browser asks the user first). */
async function startRecording() {
  const c = openConv();
  if (!c || recording || !canSend()) return;
  /** @type {MediaStream} */
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    toast("Voice message", err instanceof DOMException && err.name === "NotAllowedError"
      ? "The microphone is blocked for this site. Allow it in the browser to record."
      : "No microphone could be used.", undefined, "record");
    return;
  }
  const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
  /** @type {Blob[]} */
  const chunks = [];
  recorder.addEventListener("dataavailable", (ev) => {
    if (ev.data.size) chunks.push(ev.data);
  });
  const timer = setInterval(() => {
    if (recording && performance.now() - recording.started >= MAX_RECORDING) stopRecording(true);
    else renderRecording();
  }, 250);
  const rec = { recorder, stream, chunks, started: performance.now(), timer, conv: c, send: false };
  recording = rec;
  recorder.addEventListener("stop", () => void finished(rec));
  recorder.start(250);
  renderRecording();
}

/** Ends the recording: sent (`send`) or dropped. */
function stopRecording(/** @type {boolean} */ send) {
  const rec = recording;
  if (!rec) return;
  rec.send = send;
  recording = null;
  clearInterval(rec.timer);
  if (rec.recorder.state !== "inactive") rec.recorder.stop();
  else void finished(rec);
  renderRecording();
  if (!$("composer").hidden) $("record-button").focus();
}

/** The recorder has stopped: the microphone is let go, and the note sent if it is to be. */
async function finished(/** @type {NonNullable<typeof recording>} */ rec) {
  for (const t of rec.stream.getTracks()) t.stop();
  if (!rec.send || !rec.chunks.length) return;
  const elapsed = Math.round(performance.now() - rec.started);
  const blob = new Blob(rec.chunks, { type: rec.recorder.mimeType || rec.chunks[0]?.type || "audio/webm" });
  sendMedia(rec.conv, await prepareVoice(blob, elapsed));
}

/**
 * Signed out: the recording under way is dropped, uploads under way stop, and nothing of the files this page
 * fetched (and decrypted) stays in it.
 */
export function resetMedia() {
  stopRecording(false);
  for (const c of state.convs.values()) for (const p of c.pending.values()) p.media?.abort?.abort();
  for (const id of ["attach", "viewer"]) if (dialog(id).open) dialog(id).close();
  forgetFetched();
  releaseAll();
}

export function wireAttach() {
  wireViewer();
  const input = /** @type {HTMLInputElement} */ ($("attach-input"));
  $("attach-button").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const files = [...(input.files ?? [])];
    input.value = "";
    offerFiles(files);
  });
  form("attach-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void sendOffered();
  });
  $("attach-cancel").addEventListener("click", () => dialog("attach").close());
  dialog("attach").addEventListener("close", () => {
    forgetOffered();
    if (!$("composer").hidden) field("composer-text").focus();
  });
  // Dropped on the open chat: offered like picked files.
  const pane = $("chat-open");
  let depth = 0;
  pane.addEventListener("dragenter", (ev) => {
    if (!carriesFiles(ev) || !canSend()) return;
    depth += 1;
    pane.classList.add("drop-target");
  });
  pane.addEventListener("dragover", (ev) => {
    if (!carriesFiles(ev) || !canSend()) return;
    ev.preventDefault();
    if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
  });
  pane.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) pane.classList.remove("drop-target");
  });
  pane.addEventListener("drop", (ev) => {
    depth = 0;
    pane.classList.remove("drop-target");
    if (!ev.dataTransfer?.files.length) return;
    ev.preventDefault();
    offerFiles([...ev.dataTransfer.files]);
  });
  // An image pasted into the message box (a screenshot): offered as a photo. Pasted text stays text.
  pane.addEventListener("paste", (ev) => {
    const files = [...(ev.clipboardData?.files ?? [])];
    if (!files.length) return;
    ev.preventDefault();
    offerFiles(files);
  });
  $("record-button").addEventListener("click", () => {
    if (recording) stopRecording(true);
    else void startRecording();
  });
  $("record-cancel").addEventListener("click", () => stopRecording(false));
  // The files shown in the timeline are let go with it when the page is hidden for good.
  window.addEventListener("pagehide", releaseAll);
}
