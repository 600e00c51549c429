// Protocol version 6 against a real chatd: a message's receipt state as its
// sender's client keeps it, from the recipient's automatic acknowledgement
// (delivered) and its read (read), over either codec; asked again after a
// reconnect; the read-receipts setting, reciprocal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonCodec, PROTOCOL_VERSION } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { nextEvent, until } from "../support/util.mjs";

const ctx = useChatd();
const { person } = ctx;

async function contacts(a, b) {
  await a.c.contact(b.user, "request");
  await b.c.contact(a.user, "request");
}

test("the sender's client sees delivered, then read, live and after a reconnect", async () => {
  assert.ok(PROTOCOL_VERSION >= 6, "receipts came with version 6");
  const alice = await person("alice");
  const bob = await person("bob", { codec: jsonCodec });
  await contacts(alice, bob);
  const delivered = nextEvent(alice.c, "receipt", (r) => r.user === bob.user && r.delivered > 0);
  const { message } = await alice.c.send({ to: bob.user }, "hello");
  const { conv, seq } = message;
  // Bob's client acknowledges what it receives by itself.
  assert.deepEqual(await delivered, { conv, user: bob.user, delivered: seq, read: 0 });
  assert.equal(alice.c.receiptOf(conv, seq, [bob.user]).state, "delivered");
  const read = nextEvent(alice.c, "receipt", (r) => r.read >= seq);
  await bob.c.read(conv, seq);
  assert.deepEqual(await read, { conv, user: bob.user, delivered: seq, read: seq });
  assert.deepEqual(alice.c.receiptOf(conv, seq, [bob.user]), { state: "read", delivered: 1, read: 1, of: 1 });

  // Another client of Alice's (a new page) asks: everything known so far.
  const laptop = ctx.client();
  await laptop.login({ login: alice.account.username, password: alice.account.password, device: "laptop" });
  assert.deepEqual(await laptop.receipts(conv), [{ user: bob.user, delivered: seq, read: seq }]);
  assert.equal(laptop.receiptOf(conv, seq, [bob.user]).state, "read");
});

test("whoever turns read receipts off shares none and sees none; on again, both show", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await contacts(alice, bob);
  const { message: first } = await alice.c.send({ to: bob.user }, "one");
  const conv = first.conv;
  await until(() => alice.c.receiptOf(conv, first.seq, [bob.user]).state === "delivered", 10_000, "delivered");
  const privacy = await bob.c.setPrivacy({ read_receipts: false });
  assert.equal(privacy.read_receipts, false);
  await bob.c.read(conv, first.seq);
  // Bob answers; Alice reads it. Each connection keeps its order: what Bob's read caused came before his answer.
  const answer = nextEvent(alice.c, "message", ({ message }) => message.from === bob.user);
  const { message: reply } = await bob.c.send({ conv }, "two");
  await answer;
  assert.equal(alice.c.receiptOf(conv, first.seq, [bob.user]).state, "delivered", "Bob's read is not shown");
  await alice.c.read(conv, reply.seq);
  await bob.c.receipts(conv);
  assert.equal(bob.c.receiptOf(conv, reply.seq, [alice.user]).state, "delivered", "Bob sees no one's read");
  await bob.c.setPrivacy({ read_receipts: true });
  await bob.c.receipts(conv);
  assert.equal(bob.c.receiptOf(conv, reply.seq, [alice.user]).state, "read", "asked in full once on again");
  await bob.c.read(conv, reply.seq);
  await until(() => alice.c.receiptOf(conv, first.seq, [bob.user]).state === "read", 10_000, "Bob's read shown");
});
