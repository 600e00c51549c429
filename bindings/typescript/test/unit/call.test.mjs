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
