// The call helper's parts that need no browser: the glare decision, remote
// candidates buffered until the remote description, local candidates batched
// and held until the call exists on the server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CandidateBatcher, CandidateQueue, glareWinner } from "../../dist/index.js";

const cand = (n) => ({ candidate: `candidate:${n} 1 udp 1 192.0.2.1 ${5000 + n} typ host`, sdp_mid: "0", sdp_m_line_index: 0 });

test("glare: the same call wins on both sides, whichever side asks", () => {
  const a = "3f0c2a9e-0000-4000-8000-000000000001";
  const b = "7b1d4e2f-0000-4000-8000-000000000002";
  assert.equal(glareWinner(a, b), a);
  assert.equal(glareWinner(b, a), a);
  assert.equal(glareWinner(a, a), a);
});

test("remote candidates wait for the remote description, in order, then pass straight through", async () => {
  const added = [];
  const q = new CandidateQueue((c) => void added.push(c.candidate));
  await q.push([cand(1), cand(2)]);
  await q.push([cand(3)]);
  assert.equal(added.length, 0, "nothing goes in before the description");
  assert.equal(q.size, 3);
  await q.release();
  assert.deepEqual(added, [cand(1), cand(2), cand(3)].map((c) => c.candidate));
  await q.push([cand(4)]);
  assert.equal(added.at(-1), cand(4).candidate);
  assert.equal(q.size, 0);
});

test("local candidates wait until the call exists, then go in batches of at most 50", async () => {
  const sent = [];
  const b = new CandidateBatcher(async (batch) => void sent.push(batch), 5);
  for (let i = 0; i < 120; i++) b.push(cand(i));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(sent.length, 0, "not before the invite was taken");
  b.open();
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(sent.map((s) => s.length), [50, 50, 20]);
  assert.deepEqual(sent.flat().map((c) => c.candidate), Array.from({ length: 120 }, (_, i) => cand(i).candidate));
  b.push({ candidate: "" });
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(sent.at(-1), [{ candidate: "" }], "the end of candidates is sent too");
  b.close();
  b.push(cand(999));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(sent.length, 4, "nothing after close");
});

// -- the Phone with a fake client and peer connection: what it sends in glare

class FakePC {
  constructor(config) {
    this.config = config;
    this.connectionState = "new";
    this.currentRemoteDescription = null;
    this.added = [];
  }
  addTrack() {}
  async createOffer() {
    return { type: "offer", sdp: "v=0 offer" };
  }
  async createAnswer() {
    return { type: "answer", sdp: "v=0 answer" };
  }
  async setLocalDescription() {}
  async setRemoteDescription(d) {
    this.currentRemoteDescription = d;
  }
  async addIceCandidate(c) {
    this.added.push(c);
  }
  close() {
    this.connectionState = "closed";
  }
}

const noMedia = async () => ({ getTracks: () => [], getAudioTracks: () => [], getVideoTracks: () => [] });

function fakeClient() {
  const handlers = new Map();
  const sent = [];
  const client = {
    session: { user: "alice", device: "A1" },
    sent,
    on(type, h) {
      handlers.set(type, [...(handlers.get(type) ?? []), h]);
      return () => {};
    },
    emit(type, payload) {
      for (const h of handlers.get(type) ?? []) h(payload);
    },
    async iceServers() {
      return { servers: [] };
    },
    invite: null,
    async callInvite(conv, call, media, signal) {
      sent.push({ type: "invite", call, signal });
      return client.invite(call);
    },
    async callRinging(call) {
      sent.push({ type: "ringing", call });
    },
    async callAnswer(call, signal) {
      sent.push({ type: "answer", call, signal });
      return { call, state: "active", answered_by: "A1" };
    },
    async callCandidates(call, signal) {
      sent.push({ type: "candidates", call, signal });
    },
    async callHangup(call, reason) {
      sent.push({ type: "hangup", call, reason });
      return { call, state: "ended", reason };
    },
  };
  return client;
}

const theirCall = (id) => ({
  call: id, conv: "c1", caller: "bob", caller_device: "B1", callee: "alice", media: "voice", state: "ringing", started_at: 1,
});

test("glare: an invite refused because the peer's call stands answers that call instead", async () => {
  const { ChatError, Phone } = await import("../../dist/index.js");
  const client = fakeClient();
  const phone = new Phone(client, { RTCPeerConnection: FakePC, getUserMedia: noMedia });
  client.invite = async () => {
    // Bob's invite reached chatd first: his call rings here while ours is on its way, then ours is refused.
    client.emit("call", theirCall("bob-call"));
    client.emit("callsignal", { call: "bob-call", device: "B1", sdp: "v=0 bob offer" });
    throw new ChatError("limit_reached", "you are in a call already");
  };
  const call = await phone.start("c1", "bob", "voice");
  assert.equal(call.id, "bob-call", "the call that stands is the one taken");
  assert.equal(phone.current, call);
  const answer = client.sent.find((s) => s.type === "answer");
  assert.deepEqual(answer, { type: "answer", call: "bob-call", signal: { sdp: "v=0 answer" } });
  assert.equal(call.pc.currentRemoteDescription.sdp, "v=0 bob offer");
  assert.ok(!client.sent.some((s) => s.type === "hangup" && s.call === "bob-call"), "Bob's call is not declined");
});

test("glare: should both calls stand, both sides keep the lower id", async () => {
  const { Phone } = await import("../../dist/index.js");
  for (const [mine, theirs] of [["a-low", "b-high"], ["b-high", "a-low"]]) {
    const client = fakeClient();
    const phone = new Phone(client, { RTCPeerConnection: FakePC, getUserMedia: noMedia });
    const realUUID = crypto.randomUUID;
    crypto.randomUUID = () => mine;
    client.invite = async (id) => {
      client.emit("call", theirCall(theirs));
      client.emit("callsignal", { call: theirs, device: "B1", sdp: "v=0 bob offer" });
      return { ...theirCall(id), caller: "alice", callee: "bob", caller_device: "A1" };
    };
    try {
      const call = await phone.start("c1", "bob", "voice");
      assert.equal(call.id, "a-low", `${mine} vs ${theirs}`);
      if (mine === "a-low") assert.ok(client.sent.some((s) => s.type === "hangup" && s.call === "b-high" && s.reason === "declined"));
      else {
        assert.ok(client.sent.some((s) => s.type === "hangup" && s.call === "b-high"), "our own losing call is dropped");
        assert.ok(client.sent.some((s) => s.type === "answer" && s.call === "a-low"), "and theirs answered");
      }
    } finally {
      crypto.randomUUID = realUUID;
    }
  }
});

test("the remote end's candidates before the offer is applied wait for it", async () => {
  const { Phone } = await import("../../dist/index.js");
  const client = fakeClient();
  const phone = new Phone(client, { RTCPeerConnection: FakePC, getUserMedia: noMedia });
  let incoming;
  phone.on("incoming", (c) => (incoming = c));
  // Candidates and the offer before the call's state (a signal may overtake it): kept, then applied in order.
  client.emit("callsignal", { call: "x", device: "B1", candidates: [cand(1)] });
  client.emit("call", theirCall("x"));
  client.emit("callsignal", { call: "x", device: "B1", sdp: "v=0 offer" });
  client.emit("callsignal", { call: "x", device: "B1", candidates: [cand(2), { candidate: "" }] });
  assert.ok(incoming, "it rings");
  assert.ok(client.sent.some((s) => s.type === "ringing" && s.call === "x"));
  await incoming.answer();
  assert.deepEqual(incoming.pc.added.map((c) => c?.candidate), [cand(1).candidate, cand(2).candidate, undefined]);
});

test("a sealed signal names its call: one sealed for another call is dropped", async () => {
  const { Phone } = await import("../../dist/index.js");
  const client = fakeClient();
  const sealer = {
    sealedFor: [],
    async seal(user, devices, data) {
      this.sealedFor.push(JSON.parse(new TextDecoder().decode(data)));
      return [{ device: "B1", payload: "x" }];
    },
    async unseal(_from, sealed) {
      return new TextEncoder().encode(sealed);
    },
  };
  const phone = new Phone(client, { RTCPeerConnection: FakePC, getUserMedia: noMedia, sealer, encrypted: () => true });
  let incoming;
  phone.on("incoming", (c) => (incoming = c));
  client.emit("call", theirCall("y"));
  // The server replays the offer of an earlier call "old" in call "y": dropped; the right one is taken.
  client.emit("callsignal", { call: "y", device: "B1", sealed: JSON.stringify({ call: "old", sdp: "v=0 replayed" }) });
  client.emit("callsignal", { call: "y", device: "B1", sealed: JSON.stringify({ call: "y", sdp: "v=0 offer" }) });
  await incoming.answer();
  assert.equal(incoming.pc.currentRemoteDescription.sdp, "v=0 offer");
  assert.deepEqual(sealer.sealedFor[0], { call: "y", sdp: "v=0 answer" }, "the answer names its call");
  const answer = client.sent.find((s) => s.type === "answer");
  assert.deepEqual(answer.signal, { sealed: [{ device: "B1", payload: "x" }] });
});

// -- ICE restart: a peer connection whose state the test sets, and that tracks offers and answers

class RestartPC extends FakePC {
  constructor(config) {
    super(config);
    this.signalingState = "stable";
    this.offers = [];
    this.ufrag = 1;
  }
  async createOffer(options) {
    this.offers.push(options ?? {});
    if (options?.iceRestart) this.ufrag++;
    return { type: "offer", sdp: `v=0 offer ufrag${this.ufrag}` };
  }
  async createAnswer() {
    return { type: "answer", sdp: `v=0 answer ufrag${this.ufrag}` };
  }
  async setLocalDescription(d) {
    if (d.type === "rollback") this.rollbacks = (this.rollbacks ?? 0) + 1;
    this.signalingState = d.type === "offer" ? "have-local-offer" : "stable";
  }
  async setRemoteDescription(d) {
    this.currentRemoteDescription = d;
    if (d.type === "offer") this.ufrag++;
    this.signalingState = d.type === "offer" ? "have-remote-offer" : "stable";
  }
  /** The state changes, as the browser would say it. */
  become(state) {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }
}

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

/** Alice's answered, connected outgoing call to Bob's device B1. */
async function connectedCall(options) {
  const { Phone } = await import("../../dist/index.js");
  const client = fakeClient();
  client.invite = async (id) => ({ ...theirCall(id), caller: "alice", callee: "bob", caller_device: "A1" });
  const phone = new Phone(client, { RTCPeerConnection: RestartPC, getUserMedia: noMedia, ...options });
  const call = await phone.start("c1", "bob", "voice");
  client.emit("call", { ...theirCall(call.id), caller: "alice", callee: "bob", caller_device: "A1", state: "active", answered_by: "B1" });
  client.emit("callsignal", { call: call.id, device: "B1", sdp: "v=0 bob answer" });
  await wait(0);
  call.pc.become("connected");
  assert.equal(call.phase, "connected");
  return { client, phone, call };
}

test("a broken path: the caller restarts ICE after a while, the answer is applied, and the call goes on", async () => {
  const { client, call } = await connectedCall({ restartAfterMs: 20, reconnectMs: 5000 });
  const phases = [];
  call.on("phase", (p) => phases.push(p));
  call.pc.become("disconnected");
  assert.equal(call.phase, "reconnecting");
  assert.equal(call.pc.offers.length, 1, "not at once: a disconnected path may come back by itself");
  await wait(60);
  assert.deepEqual(call.pc.offers.at(-1), { iceRestart: true });
  const restart = client.sent.filter((s) => s.type === "candidates" && s.signal.sdp);
  assert.deepEqual(restart.map((s) => s.signal.sdp), ["v=0 offer ufrag2"], "the new offer goes to the other side");
  client.emit("callsignal", { call: call.id, device: "B1", sdp: "v=0 bob answer 2" });
  await wait(0);
  assert.equal(call.pc.currentRemoteDescription.sdp, "v=0 bob answer 2");
  assert.equal(call.pc.signalingState, "stable");
  call.pc.become("connected");
  assert.deepEqual(phases, ["reconnecting", "connected"]);
  assert.ok(!client.sent.some((s) => s.type === "hangup"), "the call goes on");
  await call.hangup();
});

test("a failed path is restarted at once; a path that stays broken ends the call as failed", async () => {
  const { client, call } = await connectedCall({ restartAfterMs: 10_000, reconnectMs: 80 });
  call.pc.become("failed");
  await wait(10);
  assert.deepEqual(call.pc.offers.at(-1), { iceRestart: true }, "failed: no waiting");
  await wait(120);
  assert.equal(call.phase, "ended");
  assert.equal(call.reason, "failed");
  assert.ok(client.sent.some((s) => s.type === "hangup" && s.reason === "failed"));
});

test("the device that answered answers the caller's restart offer, and never restarts by itself", async () => {
  const { Phone } = await import("../../dist/index.js");
  const client = fakeClient();
  const phone = new Phone(client, { RTCPeerConnection: RestartPC, getUserMedia: noMedia, restartAfterMs: 10, reconnectMs: 5000 });
  let incoming;
  phone.on("incoming", (c) => (incoming = c));
  client.emit("call", theirCall("z"));
  client.emit("callsignal", { call: "z", device: "B1", sdp: "v=0 offer" });
  await incoming.answer();
  incoming.pc.become("connected");
  incoming.pc.become("disconnected");
  assert.equal(incoming.phase, "reconnecting");
  await wait(40);
  assert.equal(incoming.pc.offers.length, 0, "the callee waits for the caller's offer");
  // The first offer again (a late copy) is not a restart; a new one from the caller's device is.
  client.emit("callsignal", { call: "z", device: "B1", sdp: "v=0 offer" });
  client.emit("callsignal", { call: "z", device: "B9", sdp: "v=0 offer from elsewhere" });
  await wait(0);
  assert.equal(client.sent.filter((s) => s.type === "candidates" && s.signal.sdp).length, 0);
  client.emit("callsignal", { call: "z", device: "B1", sdp: "v=0 offer ufrag2" });
  await wait(0);
  assert.equal(incoming.pc.currentRemoteDescription.sdp, "v=0 offer ufrag2");
  const answers = client.sent.filter((s) => s.type === "candidates" && s.signal.sdp);
  assert.equal(answers.length, 1);
  assert.match(answers[0].signal.sdp, /^v=0 answer/);
  incoming.pc.become("connected");
  assert.equal(incoming.phase, "connected");
  await incoming.hangup();
});

test("a restart whose answer never comes is taken back and made again; one that cannot be sent too", async () => {
  const { client, call } = await connectedCall({ restartAfterMs: 10, restartEveryMs: 40, reconnectMs: 5000 });
  const offersSent = () => client.sent.filter((s) => s.type === "candidates" && s.signal.sdp).map((s) => s.signal.sdp);
  call.pc.become("disconnected");
  await wait(30);
  assert.deepEqual(offersSent(), ["v=0 offer ufrag2"]);
  // Its answer was lost (Bob's connection was down): the next one rolls it back and offers anew.
  await wait(50);
  assert.equal(call.pc.rollbacks, 1);
  assert.deepEqual(offersSent(), ["v=0 offer ufrag2", "v=0 offer ufrag3"]);
  // The server cannot be reached for a while: the offer is taken back at once, and tried again later.
  const real = client.callCandidates;
  client.callCandidates = async () => {
    throw new Error("offline");
  };
  await wait(45);
  assert.ok(call.pc.rollbacks >= 3, `the pending one and each one not sent: ${call.pc.rollbacks}`);
  assert.equal(call.pc.signalingState, "stable");
  assert.equal(offersSent().length, 2, "nothing went out meanwhile");
  client.callCandidates = real;
  await wait(50);
  assert.ok(offersSent().length >= 3, "tried again once it could be sent");
  client.emit("callsignal", { call: call.id, device: "B1", sdp: "v=0 bob answer 3" });
  await wait(0);
  call.pc.become("connected");
  const before = call.pc.offers.length;
  await wait(100);
  assert.equal(call.pc.offers.length, before, "no restart once media flows");
  assert.equal(call.phase, "connected");
  await call.hangup();
});

test("two restarts asked at once make one offer", async () => {
  const { client, call } = await connectedCall({ restartAfterMs: 10_000, reconnectMs: 5000 });
  await Promise.all([call.restartIce(), call.restartIce(), call.restartIce()]);
  assert.equal(client.sent.filter((s) => s.type === "candidates" && s.signal.sdp).length, 1);
  await call.hangup();
});

test("a call this device holds but this page does not know (it was reloaded) is hung up; another device's is not", async () => {
  const { Phone } = await import("../../dist/index.js");
  const client = fakeClient();
  const phone = new Phone(client, { RTCPeerConnection: RestartPC, getUserMedia: noMedia });
  const elsewhere = [];
  phone.on("elsewhere", (info) => elsewhere.push(info.call));
  // Answered on this device (A1) before the reload: the server tells it on sign-in.
  client.emit("call", { ...theirCall("lost"), state: "active", answered_by: "A1" });
  // Placed from this device before the reload.
  client.emit("call", { ...theirCall("placed"), caller: "alice", caller_device: "A1", callee: "bob", state: "active", answered_by: "B1" });
  // Answered on another device of Alice's: not this page's business.
  client.emit("call", { ...theirCall("other"), state: "active", answered_by: "A2" });
  await wait(0);
  assert.deepEqual(
    client.sent.filter((s) => s.type === "hangup").map((s) => [s.call, s.reason]),
    [["lost", "failed"], ["placed", "failed"]],
  );
  assert.deepEqual(elsewhere, ["other"]);
  assert.equal(phone.current, undefined);
});

test("the server's word that this device is back restarts a reconnecting call at once", async () => {
  const { client, call } = await connectedCall({ restartAfterMs: 10_000, reconnectMs: 5000 });
  call.pc.become("disconnected");
  assert.equal(call.pc.offers.length, 1);
  client.emit("call", { ...theirCall(call.id), caller: "alice", caller_device: "A1", callee: "bob", state: "active", answered_by: "B1" });
  await wait(0);
  assert.deepEqual(call.pc.offers.at(-1), { iceRestart: true });
  assert.equal(call.phase, "reconnecting", "still reconnecting until media flows");
  await call.hangup();
});

test("a call another page of this device holds is left alone; one ringing here that a second page answered stops", async () => {
  const { Phone } = await import("../../dist/index.js");
  const client = fakeClient();
  const phone = new Phone(client, { RTCPeerConnection: RestartPC, getUserMedia: noMedia, heldElsewhere: (id) => id === "tab2" });
  client.emit("call", { ...theirCall("tab2"), state: "active", answered_by: "A1" });
  await wait(0);
  assert.deepEqual(client.sent.filter((s) => s.type === "hangup"), [], "another tab of this device has it");
  // A call rings on this page; another page of this device (A1 too) answers it.
  let incoming;
  phone.on("incoming", (c) => (incoming = c));
  client.emit("call", theirCall("ring"));
  client.emit("call", { ...theirCall("ring"), state: "active", answered_by: "A1" });
  assert.equal(incoming.phase, "ended");
  assert.equal(incoming.reason, "elsewhere");
  assert.ok(!client.sent.some((s) => s.type === "hangup" && s.call === "ring"), "not hung up: it goes on on the other page");
});
