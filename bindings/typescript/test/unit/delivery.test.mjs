import { test } from "node:test";
import assert from "node:assert/strict";
import { DeliveryTracker } from "../../dist/index.js";

const m = (conv, seq) => ({ conv, seq });

test("a sync page sets the base; gap-free runs are acknowledged", () => {
  const t = new DeliveryTracker();
  assert.equal(t.receive(m("a", 5), true), true); // server cursor was 4
  assert.equal(t.receive(m("a", 6), true), true);
  assert.deepEqual(t.takeAcks(), [{ conv: "a", seq: 6 }]);
  assert.deepEqual(t.takeAcks(), [], "nothing new to acknowledge");
  assert.equal(t.receive(m("a", 6), false), false, "a push of a synced message is a duplicate");
});

test("a push beyond a gap waits for the gap", () => {
  const t = new DeliveryTracker();
  t.receive(m("a", 1), false); // seq 1: the base is 0, whatever the cursor
  t.takeAcks();
  assert.equal(t.receive(m("a", 3), false), true);
  assert.deepEqual(t.takeAcks(), [], "2 is missing: acknowledging 3 would lose it");
  assert.equal(t.receive(m("a", 2), false), true);
  assert.deepEqual(t.takeAcks(), [{ conv: "a", seq: 3 }]);
});

test("pushes with an unknown base are delivered, not acknowledged, until a sync", () => {
  const t = new DeliveryTracker();
  assert.equal(t.receive(m("b", 7), false), true);
  assert.equal(t.hasBase("b"), false);
  assert.deepEqual(t.takeAcks(), []);
  // The sync returns everything after the cursor (6): 7 is known, 8 is new.
  assert.equal(t.receive(m("b", 7), true), false);
  assert.equal(t.receive(m("b", 8), true), true);
  assert.deepEqual(t.takeAcks(), [{ conv: "b", seq: 8 }]);
});

test("an ack that failed is asked for again", () => {
  const t = new DeliveryTracker();
  t.receive(m("a", 1), true);
  const [ack] = t.takeAcks();
  t.ackFailed(ack.conv, ack.seq);
  assert.deepEqual(t.takeAcks(), [{ conv: "a", seq: 1 }]);
});

test("skipping to a seq (new-device flow) counts everything up to it as received and acknowledged", () => {
  const t = new DeliveryTracker();
  assert.equal(t.receive(m("a", 41), false), true, "a push before the skip: delivered, base unknown");
  assert.equal(t.receive(m("a", 44), false), true);
  t.skipTo("a", 42);
  assert.equal(t.hasBase("a"), true);
  assert.deepEqual(t.takeAcks(), [], "42 is acknowledged by the skip; 43 is missing");
  assert.equal(t.receive(m("a", 40), false), false, "below the skip: known");
  assert.equal(t.receive(m("a", 43), false), true);
  assert.deepEqual(t.takeAcks(), [{ conv: "a", seq: 44 }]);
  t.skipTo("a", 10);
  assert.deepEqual(t.takeAcks(), [], "a skip never goes back");
});

test("conversation ids are opaque: the binding no longer builds or parses them (protocol v2)", async () => {
  const api = await import("../../dist/index.js");
  assert.equal(api.directConversationId, undefined);
  assert.equal(api.peerOf, undefined);
});
