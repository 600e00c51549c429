// Video calls in the web client: Alice and Bob, each in a headless Chromium
// context with the fake camera and microphone (320x240 at 15 fps, so that two
// calls' encoders and decoders fit two cores), against a real chatd that hands
// out TURN credentials for a private coturn. The conversation is end-to-end
// encrypted (the web client's default), so every SDP and candidate travels
// sealed with Olm. Alice calls Bob from the chat header, Bob's call screen
// rings and he accepts; both sides' RTCPeerConnection.getStats() show inbound
// audio and video bytes, and decoded video frames, growing between two
// samples, while Bob's other device (phone-sized) rang and stopped ("Answered
// on another device"); Alice hangs up and the call ends on both sides. Then the same with
// both pages forced through TURN (`?ice=relay`): the selected candidate pair
// is a relay one, and media flows through it. A declined call, a refused
// microphone (explained), and glare (both call at once: one call stands and
// connects); no call button in a group.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startChatd } from "../support/chatd.mjs";
import { FAKE_MEDIA, axeViolations, launchBrowser, screenshot, serveMissingFromDisk, signUpIn, watchConsole } from "../support/browser.mjs";
import { newAccount } from "../support/util.mjs";

const SECRET = "calls-browser-test-secret";
const VIDEO = "video=320x240@15";
const root = mkdtempSync(join(tmpdir(), "chatcore-calls-web-"));
let coturn;
let chatd;
let browser;
const problems = [];
const timings = {};

/** A free UDP port on loopback. */
async function freeUdpPort() {
  const s = createSocket("udp4");
  await new Promise((resolve) => s.bind(0, "127.0.0.1", resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Whether a STUN Binding request to 127.0.0.1:`port` is answered within `ms`. */
async function stunAnswers(port, ms = 300) {
  const s = createSocket("udp4");
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0001, 0);
  header.writeUInt32BE(0x2112a442, 4);
  randomBytes(12).copy(header, 8);
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      s.on("message", (msg) => {
        clearTimeout(timer);
        resolve(msg.readUInt16BE(0) === 0x0101);
      });
      s.on("error", () => resolve(false));
      s.send(header, port, "127.0.0.1");
    });
  } finally {
    s.close();
  }
}

let turnPort = 0;

/** Starts coturn on `turnPort` (with the secret chatd's credentials are made with) and waits until it answers. */
async function startCoturn() {
  coturn = spawn(
    "turnserver",
    [
      "-n", "--no-cli", "--no-tls", "--no-dtls", "--simple-log",
      "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", String(turnPort),
      "--use-auth-secret", "--static-auth-secret", SECRET, "--realm", "chatcore.test", "--allow-loopback-peers",
      "--min-port", "49152", "--max-port", "65535", "--log-file", "stdout",
    ],
    { stdio: "ignore" },
  );
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    ready = await stunAnswers(turnPort);
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, `coturn did not answer on port ${turnPort}`);
}

/** Stops coturn at once (SIGKILL: its relays vanish as with a network that went away). */
async function killCoturn() {
  const dead = new Promise((resolve) => coturn.once("exit", resolve));
  coturn.kill("SIGKILL");
  await dead;
}

before(async () => {
  turnPort = await freeUdpPort();
  await startCoturn();
  const port = turnPort;
  const secretFile = join(root, "turn-secret");
  writeFileSync(secretFile, `${SECRET}\n`);
  chatd = await startChatd(["--turn-url", `turn:127.0.0.1:${port}?transport=udp`, "--turn-secret-file", secretFile]);
  browser = await launchBrowser([...FAKE_MEDIA, "--autoplay-policy=no-user-gesture-required"]);
});

after(async () => {
  await browser?.close().catch(() => {});
  await chatd?.stop();
  coturn?.kill();
  rmSync(root, { recursive: true, force: true });
  if (Object.keys(timings).length > 0) console.log("calls browser test timings (ms):", JSON.stringify(timings));
});

const PHONE = { width: 390, height: 844 };

async function person(name, server = chatd, viewport = { width: 1280, height: 800 }) {
  const account = newAccount(name);
  const phone = viewport.width < 720;
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "UTC", hasTouch: phone, isMobile: phone });
  await serveMissingFromDisk(context, server.httpUrl);
  const page = await context.newPage();
  watchConsole(page, name, problems);
  page.setDefaultTimeout(20_000);
  await page.goto(`${server.httpUrl}/?${VIDEO}`);
  await signUpIn(page, account);
  return { account, context, page };
}

/** Another device (a browser context of its own) of `of`'s account, signed in. */
async function otherDevice(of, name, viewport) {
  const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "UTC", hasTouch: true, isMobile: true });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = await context.newPage();
  watchConsole(page, name, problems);
  page.setDefaultTimeout(20_000);
  await page.goto(`${chatd.httpUrl}/?${VIDEO}`);
  await page.fill("#signin-login", of.account.username);
  await page.fill("#signin-password", of.account.password);
  await page.click("#signin-form button[type=submit]");
  await page.locator("#app").waitFor({ state: "visible" });
  await page.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  return { account: of.account, context, page };
}

/**
 * A direct chat that both accepted: `x` writes, `y` accepts the request and answers; `x`'s chat is open (with its call
 * buttons in the header unless `header` is false).
 */
async function acceptedChat(x, y, header = true) {
  await x.page.fill("#search", y.account.username);
  await x.page.locator(`#directory button.person[data-username="${y.account.username}"]`).click();
  await x.page.locator("#peer-lock").waitFor({ state: "visible" });
  await send(x.page, "call me?");
  await y.page.locator(`#directory button.person[data-username="${x.account.username}"]`).click();
  await bubble(y.page, "call me?").waitFor();
  await y.page.click("#request-accept");
  await send(y.page, "calling you");
  await bubble(x.page, "calling you").waitFor();
  if (header) await x.page.locator("#call-video").waitFor({ state: "visible" });
}

const bubble = (page, text) => page.locator("#message-list li.msg .msg-text:not(.msg-note)", { hasText: text });

async function send(page, text) {
  await page.fill("#composer-text", text);
  await page.press("#composer-text", "Enter");
  await page.locator("#message-list li.msg.mine:not([data-pending])", { hasText: text }).waitFor();
}

/** What the page's call receives and which path it takes, from RTCPeerConnection.getStats(). */
function inbound(page) {
  return page.evaluate(async () => {
    const call = /** @type {any} */ (window).chatcoreCall?.();
    if (!call?.pc) return null;
    const out = { audioBytes: 0, videoBytes: 0, framesDecoded: 0, audioPackets: 0, localType: "", remoteType: "" };
    const stats = await call.pc.getStats();
    let pairId = "";
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        out.audioBytes += s.bytesReceived ?? 0;
        out.audioPackets += s.packetsReceived ?? 0;
      }
      if (s.type === "inbound-rtp" && s.kind === "video") {
        out.videoBytes += s.bytesReceived ?? 0;
        out.framesDecoded += s.framesDecoded ?? 0;
      }
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId ? stats.get(pairId) : undefined;
    if (pair) {
      out.localType = stats.get(pair.localCandidateId)?.candidateType ?? "";
      out.remoteType = stats.get(pair.remoteCandidateId)?.candidateType ?? "";
    }
    return out;
  });
}

/** Asserts that `page`'s call receives audio and video that grow between two samples a second and a half apart. */
async function mediaFlows(page, who) {
  // The first packets, then two samples: the counts must grow between them.
  const deadline = Date.now() + 15_000;
  let first = await inbound(page);
  while (!(first?.audioBytes > 0 && first?.framesDecoded > 0) && Date.now() < deadline) {
    await page.waitForTimeout(200);
    first = await inbound(page);
  }
  await page.waitForTimeout(1500);
  const second = await inbound(page);
  assert.ok(first && second, `${who} has a call with a peer connection`);
  assert.ok(second.audioBytes > first.audioBytes && first.audioBytes > 0, `${who} receives audio: ${JSON.stringify([first, second])}`);
  assert.ok(second.videoBytes > first.videoBytes && first.videoBytes > 0, `${who} receives video: ${JSON.stringify([first, second])}`);
  assert.ok(second.framesDecoded > first.framesDecoded, `${who} decodes video frames: ${JSON.stringify([first, second])}`);
  return second;
}

/**
 * Alice calls Bob (video) from the chat header; Bob accepts; media flows both ways; Alice hangs up. `tablet`, another
 * device of Bob's (phone-sized), rings too and stops when he answers on the first.
 */
async function videoCall(alice, bob, label, tablet) {
  const a = alice.page;
  const b = bob.page;
  const t0 = Date.now();
  await a.locator("#call-video").click();
  await a.locator("#call[open]").waitFor();
  // Bob's device rings: the call screen with the caller's name and the accept buttons.
  await b.locator("#call[open] #call-status", { hasText: "Incoming video call" }).waitFor();
  await b.locator("#call-name", { hasText: alice.account.display_name }).waitFor();
  assert.equal((await b.locator("#call-name").textContent())?.trim(), alice.account.display_name);
  await a.locator("#call-status", { hasText: "Ringing…" }).waitFor();
  // Bob's device rings; Alice hears the ringback meanwhile.
  const tones = () => Promise.all([a, b].map((p) => p.evaluate(() => /** @type {any} */ (window).chatcoreCallTone())));
  assert.deepEqual(await tones(), ["ringback", "ring"]);
  if (tablet) {
    const t = tablet.page;
    await t.locator("#call[open] #call-status", { hasText: "Incoming video call" }).waitFor();
    // At phone width the whole screen is the call, its buttons within reach.
    const box = await t.locator("#call").boundingBox();
    const viewport = t.viewportSize();
    assert.ok(box && viewport && box.width <= viewport.width && box.height <= viewport.height, `the call screen fits: ${JSON.stringify(box)}`);
    for (const id of ["#call-accept-video", "#call-accept-voice", "#call-decline"]) {
      const b2 = await t.locator(id).boundingBox();
      assert.ok(b2 && b2.x >= 0 && b2.x + b2.width <= viewport.width && b2.y + b2.height <= viewport.height, `${id} is on screen`);
    }
    await screenshot(t, "call-incoming-phone");
    assert.deepEqual(await axeViolations(t, "incoming call (phone)"), []);
  }
  await b.locator("#call-accept-video").click();
  if (tablet) {
    await tablet.page.locator("#call-status", { hasText: "Answered on another device" }).waitFor();
    await tablet.page.locator("#call").waitFor({ state: "hidden", timeout: 10_000 });
  }
  // Connected: both screens count the call's duration, and neither tone plays.
  for (const p of [a, b]) await p.locator("#call-status", { hasText: /^\d+:\d\d$/ }).waitFor();
  assert.deepEqual(await tones(), [null, null]);
  timings[`${label}: connected`] = Date.now() - t0;
  await a.locator("#call-remote:not([hidden])").waitFor();
  await b.locator("#call-remote:not([hidden])").waitFor();
  const [seenByAlice, seenByBob] = await Promise.all([mediaFlows(a, "Alice"), mediaFlows(b, "Bob")]);
  timings[`${label}: media checked`] = Date.now() - t0;
  if (label === "direct") {
    await screenshot(a, "call-video");
    assert.deepEqual(await axeViolations(a, "in a video call"), []);
    // Mute and camera off stop what the tracks send, and say so; pressed again, they send again.
    const tracks = () => a.evaluate(() => {
      const local = /** @type {any} */ (window).chatcoreCall()?.local;
      return { audio: local.getAudioTracks()[0].enabled, video: local.getVideoTracks()[0].enabled };
    });
    await a.locator("#call-mute").click();
    await a.locator("#call-camera").click();
    assert.deepEqual(await tracks(), { audio: false, video: false });
    assert.equal(await a.locator("#call-mute").getAttribute("aria-pressed"), "true");
    assert.equal(await a.locator("#call-camera").textContent(), "Camera on");
    await a.locator("#call-mute").click();
    await a.locator("#call-camera").click();
    assert.deepEqual(await tracks(), { audio: true, video: true });
  }
  await a.locator("#call-hangup").click();
  for (const p of [a, b]) await p.waitForFunction(() => /** @type {any} */ (window).chatcoreCall?.() === null);
  await b.locator("#call-status", { hasText: "Call ended" }).waitFor();
  // The screen goes down by itself after its last words.
  for (const p of [a, b]) await p.locator("#call").waitFor({ state: "hidden", timeout: 10_000 });
  timings[`${label}: ended`] = Date.now() - t0;
  return { seenByAlice, seenByBob };
}

test("Alice video-calls Bob in their encrypted chat: he answers, media flows both ways, a hangup ends it on both; then the same through TURN", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const tablet = await otherDevice(bob, "bob-tablet", { width: 390, height: 844 });
  const a = alice.page;
  const b = bob.page;
  await acceptedChat(alice, bob);
  assert.ok(await a.locator("#call-voice").isVisible(), "a voice call button too");
  // chatd has a TURN server: no warning that calls across networks may fail.
  const direct = await videoCall(alice, bob, "direct", tablet);
  assert.equal(await a.locator("#call-note").isVisible(), false);
  await tablet.context.close();
  assert.notEqual(direct.seenByAlice.localType, "relay", "without a forced relay the path is direct");

  // The timeline has the call once it ended, on both sides.
  await a.locator("#message-list li", { hasText: /Outgoing video call · \d+:\d\d/ }).first().waitFor();
  await b.locator("#message-list li", { hasText: /Incoming video call · \d+:\d\d/ }).first().waitFor();

  // The same forced through the TURN relay: every candidate is a relay one, so media crosses coturn.
  for (const p of [a, b]) {
    await p.goto(`${chatd.httpUrl}/?ice=relay&${VIDEO}`);
    await p.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  }
  await a.locator(`#directory button.person[data-username="${bob.account.username}"]`).click();
  await a.locator("#call-video").waitFor({ state: "visible" });
  const relayed = await videoCall(alice, bob, "relay");
  assert.equal(relayed.seenByAlice.localType, "relay", "Alice's selected pair is a relay one");
  assert.equal(relayed.seenByBob.localType, "relay", "Bob's selected pair is a relay one");

  assert.deepEqual(problems, []);
});

test("a call through TURN whose relay goes away shows Reconnecting… on both sides, restarts ICE and goes on once the relay is back", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const a = alice.page;
  const b = bob.page;
  await acceptedChat(alice, bob);
  for (const p of [a, b]) {
    await p.goto(`${chatd.httpUrl}/?ice=relay&${VIDEO}`);
    await p.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  }
  await a.locator(`#directory button.person[data-username="${bob.account.username}"]`).click();
  await a.locator("#call-video").click();
  await b.locator("#call[open] #call-status", { hasText: "Incoming video call" }).waitFor();
  await b.locator("#call-accept-video").click();
  for (const p of [a, b]) await p.locator("#call-status", { hasText: /^\d+:\d\d$/ }).waitFor();
  const before = await mediaFlows(a, "Alice");
  assert.equal(before.localType, "relay");
  // What each side's call goes through from now on, and the ICE credentials the other side uses.
  const watch = (p) =>
    p.evaluate(() => {
      const w = /** @type {any} */ (window);
      const call = w.chatcoreCall();
      w.phasesSeen = [];
      call.on("phase", (phase) => w.phasesSeen.push(phase));
    });
  const ufrag = (p) =>
    p.evaluate(() => /a=ice-ufrag:(\S+)/.exec(/** @type {any} */ (window).chatcoreCall().pc.currentRemoteDescription.sdp)?.[1]);
  await Promise.all([watch(a), watch(b)]);
  const ufrags = await Promise.all([ufrag(a), ufrag(b)]);

  // The relay goes away: no packet passes, and after a few seconds both sides say so.
  await killCoturn();
  await a.locator("#call-status", { hasText: "Reconnecting…" }).waitFor({ timeout: 20_000 });
  await startCoturn();
  const relayBack = Date.now();
  // The caller's device restarts ICE through the relay that came back; media flows again on both sides.
  for (const p of [a, b]) await p.locator("#call-status", { hasText: /^\d+:\d\d$/ }).waitFor({ timeout: 30_000 });
  timings["relay back: connected again"] = Date.now() - relayBack;
  // Video decodes again from the next key frame (what was lost meanwhile is not waited for). The restarted
  // transport's statistics start again from zero.
  for (const p of [a, b]) {
    const deadline = Date.now() + 20_000;
    let last = -1;
    for (;;) {
      const now = (await inbound(p))?.framesDecoded ?? 0;
      if (last >= 0 && now > last) break;
      assert.ok(Date.now() < deadline, "video decodes again");
      last = now;
      await p.waitForTimeout(500);
    }
  }
  timings["relay back: video decodes again"] = Date.now() - relayBack;
  const [seenByAlice, seenByBob] = await Promise.all([mediaFlows(a, "Alice"), mediaFlows(b, "Bob")]);
  assert.equal(seenByAlice.localType, "relay");
  assert.equal(seenByBob.localType, "relay");
  for (const [p, who, was] of [[a, "Alice", ufrags[0]], [b, "Bob", ufrags[1]]]) {
    const phases = await p.evaluate(() => /** @type {any} */ (window).phasesSeen);
    assert.deepEqual(phases.slice(0, 1), ["reconnecting"], `${who}'s call said it was reconnecting: ${phases}`);
    assert.equal(phases.at(-1), "connected", `${who}'s call is connected again: ${phases}`);
    assert.notEqual(await ufrag(p), was, `${who}'s peer has new ICE credentials: ICE was restarted`);
  }
  await a.locator("#call-hangup").click();
  for (const p of [a, b]) await p.waitForFunction(() => /** @type {any} */ (window).chatcoreCall?.() === null);
  assert.deepEqual(problems, []);
});

test("a page reloaded mid-call ends the call on both sides at once, not after the other side's wait for media", async () => {
  const ann = await person("ann");
  const ben = await person("ben");
  const a = ann.page;
  const b = ben.page;
  await acceptedChat(ann, ben);
  await a.locator("#call-voice").click();
  await b.locator("#call[open] #call-status", { hasText: "Incoming voice call" }).waitFor();
  await b.locator("#call-accept-voice").click();
  for (const p of [a, b]) await p.locator("#call-status", { hasText: /^\d+:\d\d$/ }).waitFor();
  const t0 = Date.now();
  await b.reload();
  await b.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  // Ben's page signed in again and learnt of a call it no longer has: it hung it up. Ann reads why, well before the
  // 30 s her device would wait for media to come back.
  await a.locator("#call-status", { hasText: "The call ended: the connection was lost" }).waitFor({ timeout: 10_000 });
  timings["reload: ended on the other side"] = Date.now() - t0;
  await a.waitForFunction(() => /** @type {any} */ (window).chatcoreCall?.() === null);
  assert.equal(await b.locator("#call").isVisible(), false, "nothing rings or shows on the reloaded page");
  // The conversation has the call, ended.
  await a.locator("#message-list li", { hasText: /Outgoing voice call/ }).first().waitFor();
  assert.deepEqual(problems, []);
});

test("two tabs of one browser ring; the one that answers holds the call, the other stops ringing and leaves it alone", async () => {
  const cat = await person("cat");
  const dan = await person("dan");
  await acceptedChat(dan, cat);
  // A second tab of Cat's: the same session, so the same device.
  const tab = await cat.context.newPage();
  watchConsole(tab, "cat-tab", problems);
  tab.setDefaultTimeout(20_000);
  await tab.goto(`${chatd.httpUrl}/?${VIDEO}`);
  await tab.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  await dan.page.locator("#call-voice").click();
  for (const p of [cat.page, tab]) await p.locator("#call[open] #call-status", { hasText: "Incoming voice call" }).waitFor();
  await cat.page.locator("#call-accept-voice").click();
  await tab.locator("#call-status", { hasText: "Answered on another device" }).waitFor();
  for (const p of [cat.page, dan.page]) await p.locator("#call-status", { hasText: /^\d+:\d\d$/ }).waitFor();
  assert.equal(await tab.evaluate(() => /** @type {any} */ (window).chatcoreCallTone()), null, "the other tab stopped ringing");
  // The tab in the call says so; the other tab, told of the call after a reconnection, would leave it alone.
  const id = await cat.page.evaluate(() => /** @type {any} */ (window).chatcoreCall().id);
  const held = (p) => p.evaluate((id) => /** @type {any} */ (window).chatcoreCallHeldElsewhere(id), id);
  assert.deepEqual(await Promise.all([held(cat.page), held(tab)]), [false, true]);
  await dan.page.locator("#call-hangup").click();
  await cat.page.waitForFunction(() => /** @type {any} */ (window).chatcoreCall?.() === null);
  await tab.waitForFunction((id) => !(/** @type {any} */ (window).chatcoreCallHeldElsewhere(id)), id, { timeout: 5000 });
  await tab.close();
  assert.deepEqual(problems, []);
});

test("a declined call, a refused microphone explained, and both calling at once: one call stands and connects", async () => {
  const carol = await person("carol");
  const dave = await person("dave");
  const c = carol.page;
  const d = dave.page;
  await acceptedChat(carol, dave);

  // Dave declines: Carol reads so, and both screens go.
  await c.locator("#call-voice").click();
  await d.locator("#call-status", { hasText: "Incoming voice call" }).waitFor();
  assert.equal(await d.locator("#call-accept-video").isVisible(), false, "a voice call is answered with the voice");
  await c.locator("#call-status", { hasText: "Ringing…" }).waitFor();
  assert.equal(await c.evaluate(() => /** @type {any} */ (window).chatcoreCallTone()), "ringback");
  await d.locator("#call-decline").click();
  await c.locator("#call-status", { hasText: "declined the call" }).waitFor();
  // The ringback stops with the call, and the ringtone on the side that declined.
  for (const p of [c, d]) assert.equal(await p.evaluate(() => /** @type {any} */ (window).chatcoreCallTone()), null);
  for (const p of [c, d]) await p.locator("#call").waitFor({ state: "hidden", timeout: 10_000 });

  // The browser refuses the microphone: the call screen says what to do, and nothing rang.
  await c.evaluate(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
  });
  await c.locator("#call-voice").click();
  await c.locator("#call-error", { hasText: "Access to your microphone was refused" }).waitFor();
  await c.locator("#call-close").click();
  await c.locator("#call").waitFor({ state: "hidden" });
  // No camera: said as such, with the way out (a voice call).
  await c.evaluate(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Requested device not found", "NotFoundError"));
  });
  await c.locator("#call-video").click();
  await c.locator("#call-error", { hasText: "No camera or microphone was found. Plug one in, or make a voice call." }).waitFor();
  await c.locator("#call-close").click();
  await c.locator("#call").waitFor({ state: "hidden" });
  assert.equal(await d.locator("#call").isVisible(), false);
  await c.reload();
  await c.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  await c.locator(`#directory button.person[data-username="${dave.account.username}"]`).click();
  await c.locator("#call-voice").waitFor({ state: "visible" });

  // Glare: both call at once. chatd keeps one of the two calls; the side refused answers it.
  const t0 = Date.now();
  // (Clicked in the page, not at the button's place: the other side's incoming call may cover it by then.)
  await Promise.all([c, d].map((p) => p.evaluate(() => document.getElementById("call-voice")?.click())));
  for (const p of [c, d]) await p.locator("#call-status", { hasText: /^\d+:\d\d$/ }).waitFor();
  timings["glare: connected"] = Date.now() - t0;
  const ids = await Promise.all([c, d].map((p) => p.evaluate(() => /** @type {any} */ (window).chatcoreCall?.()?.id)));
  assert.ok(ids[0] && ids[0] === ids[1], `one call on both sides: ${ids}`);
  // Dave signs out in the call: it ends on both sides at once (not after the server's grace time).
  const dialogs = d.locator("#call");
  await d.keyboard.press("Escape");
  assert.ok(await dialogs.isVisible(), "Escape does not drop a call");
  await d.evaluate(() => document.getElementById("signout")?.click());
  await d.locator("#signout-keep").click();
  await d.locator("#auth").waitFor({ state: "visible" });
  for (const p of [c, d]) await p.waitForFunction(() => /** @type {any} */ (window).chatcoreCall?.() === null, undefined, { timeout: 5000 });
  await c.locator("#call-status", { hasText: "Call ended" }).waitFor();
  assert.deepEqual(problems, []);
});

test("at phone width someone not in one's contacts is called from their card: the header has no room beside Add contact and Block", async () => {
  const ivy = await person("ivy", chatd, PHONE);
  const jon = await person("jon", chatd, PHONE);
  const i = ivy.page;
  const j = jon.page;
  await acceptedChat(ivy, jon, false);

  // Accepted, still not contacts: the header holds Add contact and Block, the call buttons are on the card.
  await i.locator("#chat-contact-action", { hasText: "Add contact" }).waitFor();
  assert.equal(await i.locator("#call-voice").isVisible(), false, "the header has no room for them");
  await i.click("#chat-peer");
  await i.locator("#card[open] #card-call-voice").waitFor();
  for (const id of ["#card-call-voice", "#card-call-video"]) {
    const box = await i.locator(id).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `${id} is on screen: ${JSON.stringify(box)}`);
  }
  await screenshot(i, "card-call-phone");
  assert.deepEqual(await axeViolations(i, "contact card with call buttons (phone)"), []);
  await i.locator("#card-call-voice").click();
  await i.locator("#card").waitFor({ state: "hidden" });
  await j.locator("#call[open] #call-status", { hasText: "Incoming voice call" }).waitFor();
  await j.locator("#call-decline").click();
  await i.locator("#call-status", { hasText: "declined the call" }).waitFor();
  for (const p of [i, j]) await p.locator("#call").waitFor({ state: "hidden", timeout: 10_000 });

  // One's own card has no call buttons.
  await i.evaluate(() => document.getElementById("me-button")?.click());
  await i.locator("#card[open] #profile-form").waitFor();
  assert.equal(await i.locator("#card-call-voice").isVisible(), false);
  assert.deepEqual(problems, []);
});

test("a device of the callee that comes back while the call rings rings too, and answers it", async () => {
  const kim = await person("kim");
  const lee = await person("lee");
  await acceptedChat(kim, lee);
  const tablet = await otherDevice(lee, "lee-tablet", { width: 390, height: 844 });
  const t = tablet.page;
  // Lee's tablet goes away (its page closed); Kim's client knows its keys and seals the offer for it too.
  await t.goto("about:blank");
  await kim.page.locator("#call-voice").click();
  await lee.page.locator("#call[open] #call-status", { hasText: "Incoming voice call" }).waitFor();
  // It comes back while the call rings: it rings as well, and takes the call.
  await t.goto(`${chatd.httpUrl}/?${VIDEO}`);
  await t.locator("#call[open] #call-status", { hasText: "Incoming voice call" }).waitFor();
  // The page just loaded: the caller's name shows once the profile came (a moment after the ring).
  await t.locator("#call-name", { hasText: kim.account.display_name }).waitFor();
  assert.equal((await t.locator("#call-name").textContent())?.trim(), kim.account.display_name);
  await t.locator("#call-accept-voice").click();
  for (const p of [kim.page, t]) await p.locator("#call-status", { hasText: /^\d+:\d\d$/ }).waitFor();
  await lee.page.locator("#call-status", { hasText: "Answered on another device" }).waitFor();
  await kim.page.locator("#call-hangup").click();
  for (const p of [kim.page, t]) await p.waitForFunction(() => /** @type {any} */ (window).chatcoreCall?.() === null);
  await tablet.context.close();
  assert.deepEqual(problems, []);
});

test("no call button in a group: group calls are not there yet", async () => {
  const carol = await person("erin");
  const dave = await person("frank");
  const c = carol.page;
  await c.click("#new-group-button");
  await c.fill("#newgroup-title", "Tea");
  await c.fill("#newgroup-search", dave.account.username);
  await c.check(`#newgroup-results input[data-username="${dave.account.username}"]`);
  await c.click("#newgroup-form button[type=submit]");
  await c.locator("#peer-name", { hasText: "Tea" }).waitFor();
  assert.equal(await c.locator("#call-video").isVisible(), false);
  assert.equal(await c.locator("#call-voice").isVisible(), false);
});

test("without TURN, a call on one network connects over host candidates, and the call screen says calls across networks may fail", async () => {
  const plain = await startChatd();
  try {
    const gina = await person("gina", plain);
    const hal = await person("hal", plain);
    await acceptedChat(gina, hal);
    const g = gina.page;
    const h = hal.page;
    await g.locator("#call-voice").click();
    await g.locator("#call-note", { hasText: "calls across networks may fail" }).waitFor();
    await h.locator("#call-accept-voice").click();
    for (const p of [g, h]) await p.locator("#call-status", { hasText: /^\d+:\d\d$/ }).waitFor();
    const stats = await inbound(h);
    assert.equal(stats?.localType, "host", `a direct path: ${JSON.stringify(stats)}`);
    await g.locator("#call-hangup").click();
    for (const p of [g, h]) await p.waitForFunction(() => /** @type {any} */ (window).chatcoreCall?.() === null);
    assert.deepEqual(problems, []);
  } finally {
    await plain.stop();
  }
});
