// Sealed call signals in an end-to-end encrypted conversation, through a real
// chatd with the TypeScript SecureChat: the caller seals the offer for each
// device of the callee with Olm (sealSignal), each device opens its own
// (openSignal), the answer and candidates come back sealed for the caller's
// device. The server refuses plain signals there, and what it carries holds no
// SDP in clear.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatError } from "../../dist/index.js";
import { MemoryStore, SecureChat, generateStoreKey } from "../../dist/e2e/index.js";
import { useChatd } from "../support/chatd.mjs";
import { newAccount, nextEvent } from "../support/util.mjs";

const ctx = useChatd();
const enc = (v) => new TextEncoder().encode(JSON.stringify(v));
const dec = (b) => JSON.parse(new TextDecoder().decode(b));

async function device(signIn) {
  const c = ctx.client({ reconnect: false });
  const secure = new SecureChat(c, { store: new MemoryStore(), key: await generateStoreKey() });
  const session = await signIn(c);
  await secure.start();
  return { c, secure, user: session.user, device: session.device };
}

test("a sealed invite, answer and candidates round trip in an encrypted conversation", async () => {
  const aliceAccount = newAccount("alice");
  const bobAccount = newAccount("bob");
  const alice = await device((c) => c.register(aliceAccount));
  const bob1 = await device((c) => c.register(bobAccount));
  const bob2 = await device((c) => c.login({ login: bobAccount.username, password: bobAccount.password, device: "Tablet" }));
  await alice.c.contact(bob1.user, "request");
  await bob1.c.contact(alice.user, "request");
  const conv = (await alice.c.openDirect(bob1.user, { encrypted: true })).conv;

  const offerSdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=fingerprint:sha-256 AA:BB\r\n";
  await assert.rejects(
    alice.c.callInvite(conv, crypto.randomUUID(), "video", { sdp: offerSdp }),
    (e) => e instanceof ChatError && e.code === "invalid_argument",
    "plain signals are refused in an encrypted conversation",
  );

  const call = crypto.randomUUID();
  const sealed = await alice.secure.sealSignal(bob1.user, undefined, enc({ sdp: offerSdp }), conv);
  assert.deepEqual(sealed.map((s) => s.device).sort(), [bob1.device, bob2.device].sort(), "one payload per device of the callee");
  for (const s of sealed) assert.ok(!atob(s.payload).includes("fingerprint"), "no SDP in clear");
  const offers = [bob1, bob2].map((b) => nextEvent(b.c, "callsignal", (f) => f.call === call));
  const ringing = await alice.c.callInvite(conv, call, "video", { sealed });
  assert.equal(ringing.state, "ringing");
  for (const [i, b] of [bob1, bob2].entries()) {
    const frame = await offers[i];
    assert.equal(frame.sdp, undefined);
    assert.equal(frame.device, alice.device);
    assert.deepEqual(dec(await b.secure.openSignal({ user: alice.user, device: frame.device }, frame.sealed)), { sdp: offerSdp });
  }

  // Candidates from the caller before the answer, sealed for every device.
  const cands = [{ candidate: "candidate:1 1 udp 1 192.0.2.1 5000 typ host", sdp_mid: "0", sdp_m_line_index: 0 }];
  const early = nextEvent(bob2.c, "callsignal", (f) => f.call === call);
  await alice.c.callCandidates(call, { sealed: await alice.secure.sealSignal(bob1.user, undefined, enc({ candidates: cands }), conv) });
  const earlyFrame = await early;
  assert.deepEqual(dec(await bob2.secure.openSignal({ user: alice.user, device: earlyFrame.device }, earlyFrame.sealed)), { candidates: cands });

  // The tablet answers, sealed for the caller's device only.
  const answerSdp = "v=0\r\na=fingerprint:sha-256 CC:DD\r\n";
  const answered = nextEvent(alice.c, "callsignal", (f) => f.call === call);
  const active = await bob2.c.callAnswer(call, { sealed: await bob2.secure.sealSignal(alice.user, [alice.device], enc({ sdp: answerSdp }), conv) });
  assert.equal(active.answered_by, bob2.device);
  const answer = await answered;
  assert.equal(answer.device, bob2.device);
  assert.deepEqual(dec(await alice.secure.openSignal({ user: bob2.user, device: answer.device }, answer.sealed)), { sdp: answerSdp });

  // A payload sealed for another device does not open here.
  const forBob1 = (await alice.secure.sealSignal(bob1.user, [bob1.device], enc({ x: 1 }), conv))[0];
  await assert.rejects(bob2.secure.openSignal({ user: alice.user, device: alice.device }, forBob1.payload));

  const back = nextEvent(alice.c, "callsignal", (f) => f.call === call);
  await bob2.c.callCandidates(call, { sealed: await bob2.secure.sealSignal(alice.user, [alice.device], enc({ candidates: cands }), conv) });
  const backFrame = await back;
  assert.deepEqual(dec(await alice.secure.openSignal({ user: bob2.user, device: backFrame.device }, backFrame.sealed)), { candidates: cands });

  assert.equal((await alice.c.callHangup(call)).reason, "hangup");
  for (const d of [alice, bob1, bob2]) {
    d.secure.close();
    d.c.close();
  }
});
