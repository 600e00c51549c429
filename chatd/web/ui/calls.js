// @ts-check
// Voice and video calls (PROTOCOL.md "Calls"), between the two members of a direct conversation: the header's call
// buttons, the incoming-call screen with its ringtone (made with WebAudio: no sound file), the outgoing "Calling…" /
// "Ringing…" screen and the in-call screen (remote and local video, mute, camera, output device, duration, hang up).
// The binding's Phone (chatcore/call.js) does the WebRTC and the signalling; in an end-to-end encrypted conversation
// (all this page makes) the SDP and candidates are sealed per device with Olm (ui/e2e.js's SecureChat), so the server
// can neither read nor swap the DTLS fingerprints. When the media path breaks mid-call the screen says
// "Reconnecting…" while the caller's device restarts ICE (the Phone does it; also when the browser comes back
// online). No group calls yet: groups have no call button.
//
// Debugging aids, in the page's address: `?ice=relay` forces every call through TURN (iceTransportPolicy "relay");
// `?video=320x240@15` sets the camera's size and frame rate. `window.chatcoreCall()` is the call on now (its `pc`
// is the RTCPeerConnection, for getStats()).

import { ChatError, Phone } from "../chatcore/web.js";
import { $, dialog, setName, show } from "./dom.js";
import { paintAvatar } from "./avatar.js";
import { contactOf, directWith, invalidate, needUsers, onRender, openConv, pageVisible, state, userName } from "./store.js";
import { notificationsAllowed } from "./settings.js";
import { afterE2eStart, cannotSend } from "./e2e.js";
import { describe } from "./format.js";

/** @typedef {import("../chatcore/web.js").Call} Call */
/** @typedef {import("../chatcore/web.js").CallMedia} CallMedia */
/** @typedef {import("./store.js").Conv} Conv */

/** @type {Phone | null} */
let phone = null;
/** The call on screen (also once ended, while its last words show). @type {Call | null} */
let shown = null;
/** Why the last call could not start (a permission refused, no camera), shown on the call screen. */
let problem = "";
/** @type {ReturnType<typeof setInterval> | undefined} */
let ticker;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let closer;

const params = new URLSearchParams(location.search);

/** The camera constraints: `?video=WxH@fps` (a debugging aid), else a size phones and links cope with. */
function videoConstraints() {
  const m = /^(\d+)x(\d+)(?:@(\d+))?$/.exec(params.get("video") ?? "");
  if (!m) return { width: { ideal: 640 }, height: { ideal: 480 } };
  return { width: { ideal: Number(m[1]) }, height: { ideal: Number(m[2]) }, ...(m[3] ? { frameRate: { ideal: Number(m[3]) } } : {}) };
}

// Tabs of one browser share the session, so they are one device: when the tab in a call loses its connection for a
// moment and another tab signs in first, that tab is told of the call, which it does not have. The tab in a call
// says so in localStorage every second (and stops when the call ends or the tab goes), so that the other leaves the
// call alone; a reloaded tab finds no such word and hangs up the call it lost.
const HELD_KEY = "chatcore.call-held";
const tabId = crypto.randomUUID();
/** @type {ReturnType<typeof setInterval> | undefined} */
let holding;
/** The call this tab says it holds (the one on screen), until it ends. @type {Call | null} */
let marked = null;

/** Says in localStorage that this tab holds the marked call, or takes the word back once it ended. */
function refreshMark() {
  const call = marked;
  if (!call) return;
  if (call.over) {
    marked = null;
    clearInterval(holding);
    holding = undefined;
    dropMark();
    return;
  }
  // Ringing here is not holding it: every tab rings, the one that answers holds it.
  if (call.phase !== "incoming") localStorage.setItem(HELD_KEY, JSON.stringify({ call: call.id, tab: tabId, at: Date.now() }));
}

/** Marks `call` as this tab's while it lasts: every second, and at once when it is answered here or ends. */
function holdMark(/** @type {Call} */ call) {
  marked = call;
  call.on("phase", () => {
    if (marked === call) refreshMark();
  });
  refreshMark();
  holding ??= setInterval(refreshMark, 1000);
}

function dropMark() {
  try {
    const held = JSON.parse(localStorage.getItem(HELD_KEY) ?? "null");
    if (held?.tab === tabId) localStorage.removeItem(HELD_KEY);
  } catch {
    localStorage.removeItem(HELD_KEY);
  }
}

/** Whether another tab of this browser said, less than 3 s ago, that it holds `call`. */
function heldElsewhere(/** @type {string} */ call) {
  try {
    const held = JSON.parse(localStorage.getItem(HELD_KEY) ?? "null");
    return !!held && held.call === call && held.tab !== tabId && Date.now() - held.at < 3000;
  } catch {
    return false;
  }
}

/** Gives `client` a phone (one per client): incoming calls ring from now on. */
export function attachPhone(/** @type {import("./store.js").ChatClient} */ client) {
  phone?.close();
  phone = new Phone(client, {
    // A call in an encrypted conversation seals its signals with Olm; a conversation this page does not know yet is
    // taken as encrypted (every conversation it makes is), and an incoming call seals as its caller did.
    encrypted: (conv) => state.convs.get(conv)?.encrypted ?? true,
    sealer: {
      seal: async (user, devices, data, conv) => (await secure()).sealSignal(user, devices, data, conv),
      unseal: async (from, sealed) => (await secure()).openSignal(from, sealed),
    },
    video: videoConstraints(),
    iceTransportPolicy: params.get("ice") === "relay" ? "relay" : "all",
    heldElsewhere,
  });
  phone.on("incoming", (call) => {
    needUsers([call.peer], "header");
    present(call);
    notifyHidden(call);
  });
}

/** While the page is hidden, a desktop notification (if allowed) says who calls; it goes when the call stops ringing. */
function notifyHidden(/** @type {Call} */ call) {
  if (pageVisible() || !notificationsAllowed()) return;
  try {
    const n = new Notification(userName(call.peer), {
      body: call.media === "video" ? "Incoming video call" : "Incoming voice call",
      tag: `call:${call.id}`,
      requireInteraction: true,
    });
    n.addEventListener("click", () => {
      window.focus();
      n.close();
    });
    call.on("phase", (phase) => {
      if (phase !== "incoming") n.close();
    });
  } catch {
    // Notifications only from a service worker here: the ringtone and the call screen remain.
  }
}

/** The SecureChat, once started: a call that rings while the page opens its keys waits for them. */
async function secure() {
  if (state.e2e.status === "starting") await new Promise((resolve) => afterE2eStart(() => resolve(undefined)));
  if (!state.secure || state.e2e.status !== "ready") throw new Error("end-to-end encryption is not ready in this browser");
  return state.secure;
}

/**
 * Ends this device's call (the user signs out): hung up while the session still can, else ended here and by the
 * server once the connection is gone. The phone stays with the client, for the next sign-in.
 */
export async function endCalls() {
  const call = phone?.current;
  // Ended here at once; the server is told within two seconds or not at all (it then ends the call itself).
  if (call) await Promise.race([call.hangup(), new Promise((resolve) => setTimeout(resolve, 2000))]);
  finish();
}

/** Calls the peer of the direct conversation `c`. */
async function callPeer(/** @type {Conv | null} */ c, /** @type {CallMedia} */ media) {
  if (!phone || !c || !callable(c)) return;
  if (phone.current && !phone.current.over) return;
  problem = "";
  const starting = phone.start(c.id, c.peer, media);
  // The screen shows at once ("Calling…"), the call object as soon as the phone has it.
  const call = phone.current;
  if (call) present(call);
  try {
    const placed = await starting;
    if (placed !== call) present(placed);
  } catch (e) {
    problem = failureText(e, media);
    if (!shown) openScreen();
    render();
  }
}

/** What went wrong, in words: the browser's media errors above all. */
function failureText(/** @type {unknown} */ e, /** @type {CallMedia} */ media) {
  const what = media === "video" ? "camera and microphone" : "microphone";
  const name = e instanceof Error || (typeof DOMException !== "undefined" && e instanceof DOMException) ? e.name : "";
  switch (name) {
    case "NotAllowedError":
      return `Access to your ${what} was refused. Allow it for this site (the icon beside the address, or the system's privacy settings), then call again.`;
    case "NotFoundError":
    case "OverconstrainedError":
      return media === "video"
        ? "No camera or microphone was found. Plug one in, or make a voice call."
        : "No microphone was found. Plug one in, then call again.";
    case "NotReadableError":
      return `Your ${what} is in use by another app, or does not work. Close the other app, then call again.`;
    case "SecurityError":
      return "Calls need a secure page (https).";
  }
  if (e instanceof ChatError) {
    if (e.code === "limit_reached") return "You are in another call already (here or on another device).";
    return `The call did not start: ${describe(e)}`;
  }
  return `The call did not start: ${e instanceof Error ? e.message : String(e)}`;
}

/** Puts `call` on the screen and follows it. */
function present(/** @type {Call} */ call) {
  shown = call;
  holdMark(call);
  if (closer !== undefined) clearTimeout(closer);
  closer = undefined;
  call.on("phase", (phase) => {
    if (shown !== call) return;
    toneFor(call);
    if (phase === "ended") {
      // The last words stay a moment; a problem stays until closed.
      closer = setTimeout(() => {
        if (!problem) finish();
      }, 2500);
    }
    render();
  });
  call.on("local", (stream) => {
    if (shown === call) attach(/** @type {HTMLVideoElement} */ ($("call-local")), stream);
    render();
  });
  call.on("remote", (stream) => {
    if (shown === call) attach(/** @type {HTMLVideoElement} */ ($("call-remote")), stream);
    render();
  });
  if (call.local) attach(/** @type {HTMLVideoElement} */ ($("call-local")), call.local);
  if (call.remote) attach(/** @type {HTMLVideoElement} */ ($("call-remote")), call.remote);
  openScreen();
  toneFor(call);
  render();
}

function attach(/** @type {HTMLVideoElement} */ el, /** @type {MediaStream} */ stream) {
  if (el.srcObject !== stream) el.srcObject = stream;
  void el.play().catch(() => {});
}

function openScreen() {
  const d = dialog("call");
  if (!d.open) d.showModal();
  if (ticker === undefined) ticker = setInterval(renderStatus, 1000);
  void listOutputs();
}

/** Takes the call screen down. */
function finish() {
  tone.stop();
  if (closer !== undefined) clearTimeout(closer);
  closer = undefined;
  if (ticker !== undefined) clearInterval(ticker);
  ticker = undefined;
  shown = null;
  problem = "";
  for (const id of ["call-remote", "call-local"]) /** @type {HTMLVideoElement} */ ($(id)).srcObject = null;
  const d = dialog("call");
  if (d.open) d.close();
}

/** How long since `ms` (ms since the epoch), as m:ss or h:mm:ss. */
function duration(/** @type {number} */ since) {
  const s = Math.max(0, Math.floor((Date.now() - since) / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** Why a call ended, as the person on this side reads it. */
function endedText(/** @type {Call} */ call) {
  switch (call.reason) {
    case "elsewhere":
      return "Answered on another device";
    case "declined":
      return call.direction === "outgoing" ? `${userName(call.peer)} declined the call` : "Call declined";
    case "busy":
      return `${userName(call.peer)} is in another call`;
    case "missed":
      return call.direction === "outgoing" ? "No answer" : "Missed call";
    case "cancelled":
      return call.direction === "outgoing" ? "Call cancelled" : "Missed call";
    case "failed":
      // Once media flowed, what failed is the connection (it broke for good, or the other page was reloaded).
      return call.connectedAt ? "The call ended: the connection was lost" : "The call failed: the two devices could not connect";
    case "gone":
      return "The call ended: the connection was lost";
    default:
      return call.connectedAt ? `Call ended · ${duration(call.connectedAt)}` : "Call ended";
  }
}

function statusText() {
  const call = shown;
  if (!call) return problem ? "Call failed" : "Starting the call…";
  switch (call.phase) {
    case "calling":
      return "Calling…";
    case "ringing":
      return "Ringing…";
    case "incoming":
      return call.media === "video" ? "Incoming video call" : "Incoming voice call";
    case "connecting":
      return "Connecting…";
    case "connected":
      return duration(call.connectedAt ?? Date.now());
    case "reconnecting":
      return "Reconnecting…";
    case "ended":
      return endedText(call);
  }
}

function renderStatus() {
  $("call-status").textContent = statusText();
}

/** Whether the last ICE servers lack a TURN relay (calls across networks may then fail). */
function withoutTurn() {
  const servers = phone?.lastIceServers;
  return !!servers && !servers.some((s) => s.urls.some((u) => u.startsWith("turn:") || u.startsWith("turns:")));
}

function render() {
  const d = dialog("call");
  if (!d.open) return;
  const call = shown;
  const peer = call?.peer ?? openConv()?.peer ?? "";
  const u = state.users.get(peer);
  if (u) paintAvatar($("call-avatar"), u.profile);
  setName($("call-name"), peer ? userName(peer) : "");
  renderStatus();
  const phase = call?.phase ?? (problem ? "ended" : "calling");
  const live = phase !== "ended" && phase !== "incoming";
  const remoteVideo = !!call?.remote?.getVideoTracks().length && (phase === "connected" || phase === "connecting" || phase === "reconnecting");
  const localVideo = !!call && call.hasVideo && live;
  show($("call-remote"), remoteVideo);
  show($("call-local"), localVideo);
  d.classList.toggle("with-video", remoteVideo);
  show($("call-info"), true);
  $("call-info").classList.toggle("over-video", remoteVideo);
  const err = $("call-error");
  err.textContent = problem;
  show(err, !!problem);
  show($("call-note"), live && withoutTurn());
  show($("call-incoming"), phase === "incoming");
  show($("call-accept-video"), phase === "incoming" && call?.media === "video");
  $("call-accept-voice").textContent = call?.media === "video" ? "Voice only" : "Accept";
  show($("call-active"), live);
  show($("call-ended"), phase === "ended");
  const mute = $("call-mute");
  mute.setAttribute("aria-pressed", String(!!call?.muted));
  mute.textContent = call?.muted ? "Unmute" : "Mute";
  const camera = $("call-camera");
  show(camera, !!call?.hasVideo);
  camera.setAttribute("aria-pressed", String(!!call?.cameraOff));
  camera.textContent = call?.cameraOff ? "Camera on" : "Camera off";
  $("call-hangup").textContent = phase === "calling" || phase === "ringing" ? "Cancel" : "Hang up";
}

// -- output device (where the browser lets a page choose: HTMLMediaElement.setSinkId)

async function listOutputs() {
  const select = /** @type {HTMLSelectElement} */ ($("call-output"));
  const supported = "setSinkId" in HTMLMediaElement.prototype && !!navigator.mediaDevices?.enumerateDevices;
  show($("call-output-field"), false);
  if (!supported) return;
  try {
    const outputs = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audiooutput");
    if (outputs.length < 2) return;
    select.replaceChildren(
      ...outputs.map((d, i) => {
        const o = document.createElement("option");
        o.value = d.deviceId;
        o.textContent = d.label || (d.deviceId === "default" ? "Default output" : `Output ${i + 1}`);
        return o;
      }),
    );
    show($("call-output-field"), true);
  } catch {
    // No list: the default output plays.
  }
}

// -- the tones, made with WebAudio: the ringtone of an incoming call (two tones, on for a second, off for two) and
// the ringback the caller hears while the other side rings (one tone, on for a second, off for four)

/** @typedef {"ring" | "ringback"} Tone */

const tone = (() => {
  /** @type {AudioContext | null} */
  let ctx = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let timer;
  /** @type {Tone | null} */
  let playing = null;
  function burst(/** @type {number[]} */ freqs, /** @type {number} */ volume) {
    if (!ctx) return;
    const t = ctx.currentTime;
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0, t);
    gain.gain.linearRampToValueAtTime(volume, t + 0.05);
    gain.gain.setValueAtTime(volume, t + 0.95);
    gain.gain.linearRampToValueAtTime(0, t + 1);
    gain.connect(ctx.destination);
    for (const f of freqs) {
      const osc = ctx.createOscillator();
      osc.frequency.value = f;
      osc.connect(gain);
      osc.start(t);
      osc.stop(t + 1);
    }
  }
  return {
    /** Plays `kind` (in place of the other). */
    start(/** @type {Tone} */ kind) {
      if (playing === kind) return;
      this.stop();
      try {
        ctx ??= new AudioContext();
        void ctx.resume().catch(() => {});
      } catch {
        return;
      }
      const play = kind === "ring" ? () => burst([440, 480], 0.12) : () => burst([425], 0.06);
      play();
      timer = setInterval(play, kind === "ring" ? 3000 : 5000);
      playing = kind;
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      if (playing) void ctx?.suspend().catch(() => {});
      playing = null;
    },
    /** What plays now. */
    get playing() {
      return playing;
    },
  };
})();

/** The tone for `call` in its phase: the ringtone while it rings here, the ringback while the other side rings. */
function toneFor(/** @type {Call} */ call) {
  if (call.phase === "incoming") tone.start("ring");
  else if (call.phase === "ringing" && call.direction === "outgoing") tone.start("ringback");
  else tone.stop();
}

// -- the header's buttons

/** Whether this page can call in `c`: the two members of a direct conversation (no group calls yet), both in it. */
function callable(/** @type {Conv | null} */ c) {
  return !!c && c.kind === "direct" && !!c.peer && !c.left && !c.request && !contactOf(c.peer).blocked && !cannotSend(c);
}

function renderCallButtons() {
  const can = callable(openConv());
  show($("call-voice"), can);
  show($("call-video"), can);
}

/** The contact card's call buttons: for someone this user has a direct conversation with that can call. */
function renderCardCalls() {
  const d = dialog("card");
  const user = d.dataset.user;
  show($("card-calls"), d.open && !!user && user !== state.me?.user && callable(directWith(user)));
}

/** Calls from the contact card: the card goes, the call screen comes. */
function callFromCard(/** @type {CallMedia} */ media) {
  const d = dialog("card");
  const c = directWith(d.dataset.user ?? "");
  d.close();
  void callPeer(c, media);
}

export function wireCalls() {
  $("call-voice").addEventListener("click", () => void callPeer(openConv(), "voice"));
  $("call-video").addEventListener("click", () => void callPeer(openConv(), "video"));
  $("card-call-voice").addEventListener("click", () => callFromCard("voice"));
  $("card-call-video").addEventListener("click", () => callFromCard("video"));
  $("call-accept-voice").addEventListener("click", () => {
    const call = shown;
    if (call?.phase === "incoming") void call.answer("voice").catch((e) => fail(call, e, "voice"));
  });
  $("call-accept-video").addEventListener("click", () => {
    const call = shown;
    if (call?.phase === "incoming") void call.answer("video").catch((e) => fail(call, e, "video"));
  });
  $("call-decline").addEventListener("click", () => void shown?.decline());
  $("call-hangup").addEventListener("click", () => void shown?.hangup());
  // Back online after the network went (or changed): the caller's device need not wait for the old path to fail.
  window.addEventListener("online", () => {
    if (shown && !shown.over) void shown.restartIce().catch(() => {});
  });
  $("call-close").addEventListener("click", finish);
  $("call-mute").addEventListener("click", () => {
    shown?.setMuted(!shown.muted);
    render();
  });
  $("call-camera").addEventListener("click", () => {
    shown?.setCameraOff(!shown.cameraOff);
    render();
  });
  $("call-output").addEventListener("change", () => {
    const el = /** @type {HTMLVideoElement & { setSinkId?: (id: string) => Promise<void> }} */ ($("call-remote"));
    void el.setSinkId?.(/** @type {HTMLSelectElement} */ ($("call-output")).value).catch(() => {});
  });
  // Escape does not drop a call: hanging up is a button.
  dialog("call").addEventListener("cancel", (ev) => {
    if (shown && !shown.over) ev.preventDefault();
    else finish();
  });
  onRender("card", renderCardCalls);
  onRender("header", () => {
    renderCallButtons();
    renderCardCalls();
    // The caller's name and picture, once the profile came.
    render();
  });
  /** @type {any} */ (window).chatcoreCall = () => phone?.current ?? null;
  // The tab goes (or reloads): its word that it holds a call goes with it.
  window.addEventListener("pagehide", dropMark);
  // For the tests: whether another tab holds `call`.
  /** @type {any} */ (window).chatcoreCallHeldElsewhere = heldElsewhere;
  // Which tone plays ("ring", "ringback" or null): for the tests, which cannot listen.
  /** @type {any} */ (window).chatcoreCallTone = () => tone.playing;
}

function fail(/** @type {Call} */ call, /** @type {unknown} */ e, /** @type {CallMedia} */ media) {
  if (shown !== call) return;
  // Taken on another device first: the phase says so already.
  if (e instanceof ChatError && e.code === "not_found") return;
  problem = failureText(e, media);
  render();
  invalidate("header");
}
