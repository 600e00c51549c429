// Protocol version 9 against a real chatd: call signalling through the
// binding. Both devices of the callee ring and get the offer, the first
// answer takes the call (the other device is told), candidates and the
// answer reach the caller's device, a hangup ends it on every device, and a
// call nobody answers ends as missed, written into the conversation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatError, jsonCodec, PROTOCOL_VERSION } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { nextEvent } from "../support/util.mjs";

const ctx = useChatd(["--call-ring-timeout-ms", "500", "--call-sweep-ms", "50"]);

test("two devices ring, the first answer takes the call, signals reach the right device, a hangup ends it everywhere", async () => {
  assert.equal(PROTOCOL_VERSION, 9);
  const alice = await ctx.person("alice");
  const bob = await ctx.person("bob", { codec: jsonCodec });
  await alice.c.contact(bob.user, "request");
  await bob.c.contact(alice.user, "request");
  const conv = (await alice.c.openDirect(bob.user)).conv;
  const tablet = ctx.client();
  const tabletSession = await tablet.login({ login: bob.account.username, password: bob.account.password, device: "Tablet" });

  const offers = [bob.c, tablet].map((c) => nextEvent(c, "callsignal"));
  const rings = [bob.c, tablet].map((c) => nextEvent(c, "call", (s) => s.state === "ringing"));
  const call = crypto.randomUUID();
  const ringing = await alice.c.callInvite(conv, call, "video", { sdp: "v=0 offer" });
  assert.equal(ringing.state, "ringing");
  for (const offer of await Promise.all(offers)) assert.deepEqual(offer, { call, device: alice.session.device, sdp: "v=0 offer" });
  for (const s of await Promise.all(rings)) assert.equal(s.caller, alice.user);

  const rung = nextEvent(alice.c, "call", (s) => s.ringing === true);
  await tablet.callRinging(call);
  assert.equal((await rung).state, "ringing");

  const answered = nextEvent(alice.c, "callsignal");
  const elsewhere = nextEvent(bob.c, "call", (s) => s.state === "active");
  const active = await tablet.callAnswer(call, { sdp: "v=0 answer" });
  assert.equal(active.answered_by, tabletSession.device);
  assert.deepEqual(await answered, { call, device: tabletSession.device, sdp: "v=0 answer" });
  assert.equal((await elsewhere).answered_by, tabletSession.device, "the phone stops ringing");
  await assert.rejects(bob.c.callAnswer(call, { sdp: "late" }), (e) => e instanceof ChatError && e.code === "not_found");

  const candidates = nextEvent(tablet, "callsignal");
  await alice.c.callCandidates(call, { candidates: [{ candidate: "candidate:1 1 udp 1 192.0.2.1 5000 typ host", sdp_mid: "0", sdp_m_line_index: 0 }] });
  assert.equal((await candidates).candidates?.length, 1);

  const ends = [bob.c, tablet].map((c) => nextEvent(c, "call", (s) => s.state === "ended"));
  const ended = await alice.c.callHangup(call);
  assert.equal(ended.reason, "hangup");
  for (const e of await Promise.all(ends)) assert.equal(e.reason, "hangup");
  tablet.close();
});

test("a call nobody answers ends as missed, and the callee's conversation gets it as an alert", async () => {
  const alice = await ctx.person("carol");
  const bob = await ctx.person("dave");
  await alice.c.contact(bob.user, "request");
  await bob.c.contact(alice.user, "request");
  const conv = (await alice.c.openDirect(bob.user)).conv;
  const entry = nextEvent(bob.c, "message", (e) => e.message.content.kind === "call");
  const alert = nextEvent(bob.c, "alert");
  const missed = nextEvent(alice.c, "call", (s) => s.state === "ended");
  await alice.c.callInvite(conv, crypto.randomUUID(), "voice", { sdp: "v=0" });
  assert.equal((await missed).reason, "missed");
  const { message } = await entry;
  assert.equal(message.from, alice.user);
  assert.deepEqual({ kind: message.content.kind, outcome: message.content.outcome }, { kind: "call", outcome: "missed" });
  assert.equal((await alert).conv, conv);
});
