// @ts-check
// The connection: a banner saying whether messages can go out, and a
// watchdog that finds a dead link. After a Wi-Fi drop the socket stays
// "open" while nothing crosses it, and a browser notices only minutes later;
// so the page pings (the protocol's ping): within a few seconds while a send
// waits for its reply, otherwise as a keepalive every 25 s at most. An
// unanswered ping drops the connection, and the client reconnects and
// resumes; the outbox sends what waits once the session is back.

import { $, show } from "./dom.js";
import { invalidate, onRender, state } from "./store.js";

/** Idle keepalive: one ping per this many ms at most. */
const KEEPALIVE_MS = 25_000;
/** How long an idle ping may take. */
const KEEPALIVE_TIMEOUT_MS = 10_000;
/** With a send in flight: ping this soon after it started, and give the pong this long (3 + 5 < 10 s). */
const SENDING_CHECK_MS = 3_000;
const SENDING_TIMEOUT_MS = 5_000;

let inflight = 0;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;
let due = Infinity;
let checking = false;
/** Shows "back online" until this time. */
let backUntil = 0;
let wasOffline = false;

/** A send went out: the link is checked soon if its reply is slow. */
export function sendStarted() {
  inflight += 1;
  schedule(SENDING_CHECK_MS);
}

export function sendEnded() {
  inflight = Math.max(0, inflight - 1);
}

/** Arms the next check `ms` from now, unless one is due sooner. */
function schedule(/** @type {number} */ ms) {
  const at = Date.now() + ms;
  if (timer !== undefined && due <= at) return;
  clearTimeout(timer);
  due = at;
  timer = setTimeout(() => {
    timer = undefined;
    due = Infinity;
    void check();
  }, ms);
}

async function check() {
  const client = state.client;
  if (!client || client.state !== "ready" || checking) return;
  checking = true;
  const limit = inflight ? SENDING_TIMEOUT_MS : KEEPALIVE_TIMEOUT_MS;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let t;
  const alive = await Promise.race([
    client.ping().then(
      () => true,
      () => false,
    ),
    new Promise((resolve) => {
      t = setTimeout(() => resolve(false), limit);
    }),
  ]);
  clearTimeout(t);
  checking = false;
  if (!alive && state.client === client && client.state === "ready") client.dropConnection();
  schedule(inflight ? SENDING_CHECK_MS : KEEPALIVE_MS);
}

/** The client reported a new state. */
export function onConnectionState(/** @type {import("../chatcore/web.js").ConnectionState} */ s) {
  state.connection = s;
  if (s === "reconnecting" || s === "disconnected") wasOffline = true;
  if (s === "ready") {
    if (wasOffline) {
      backUntil = Date.now() + 3_000;
      setTimeout(() => invalidate("connection"), 3_050);
    }
    wasOffline = false;
    schedule(inflight ? SENDING_CHECK_MS : KEEPALIVE_MS);
  }
  invalidate("connection", "messages");
}

function renderConnection() {
  const el = $("conn");
  const signedIn = state.screen === "app";
  /** @type {[string, string] | null} */
  let banner = null;
  if (signedIn && (state.connection === "reconnecting" || state.connection === "disconnected" || state.connection === "closed")) {
    banner = ["offline", "You are offline. Reconnecting… Messages you send meanwhile go out when the connection is back."];
  } else if (signedIn && state.connection === "connecting") {
    banner = ["connecting", "Connecting…"];
  } else if (signedIn && state.connection === "ready" && Date.now() < backUntil) {
    banner = ["back", "Back online."];
  }
  show(el, !!banner);
  el.dataset.state = banner?.[0] ?? state.connection;
  el.textContent = banner?.[1] ?? "";
}

export function wireConnection() {
  // The system says the network is back (or changed): check the link now rather than at the next keepalive.
  window.addEventListener("online", () => schedule(0));
}

onRender("connection", renderConnection);
