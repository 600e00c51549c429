// Protocol version 7 against a real chatd, through the TypeScript binding: replies, edits, reactions and deletions
// (with the server's refusals), history's `related`, mentions counted in `conversations`, and the
// disappearing-message timer with its notice. LifeBook, fed what a client receives, shows each message as it is.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatError, LifeBook, MAX_REACTIONS } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { nextEvent } from "../support/util.mjs";

const { person } = useChatd();

const code = (p) => p.then(() => "ok", (e) => (e instanceof ChatError ? e.code : String(e)));

async function contacts(a, b) {
  await a.c.contact(b.user, "request");
  await b.c.contact(a.user, "request");
}

/** The next pushed entry of `conv` on `c` that `pred` accepts. */
const pushed = (c, conv, pred = () => true) => nextEvent(c, "message", (e) => e.message.conv === conv && pred(e.message)).then((e) => e.message);

const text = (m) => (m.content.kind === "text" ? m.content.text : undefined);

test("two people: reply, edit, react, delete round trips, refusals, and history's related", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await contacts(alice, bob);
  const { message: hello } = await alice.c.send({ to: bob.user }, "hello");
  const conv = hello.conv;

  // An edit by its sender: pushed to Bob with its rel. Bob may not edit Alice's message.
  const bobGetsEdit = pushed(bob.c, conv, (m) => m.rel?.kind === "edit");
  const { message: edit } = await alice.c.send({ conv }, "hello!", { rel: { kind: "edit", target: hello.id } });
  assert.deepEqual((await bobGetsEdit).rel, { kind: "edit", target: hello.id });
  assert.equal(await code(bob.c.send({ conv }, "hijacked", { rel: { kind: "edit", target: hello.id } })), "forbidden");

  // A reaction; the same client id again is the same reaction (duplicate); a text that is no emoji is refused.
  const aliceGetsReaction = pushed(alice.c, conv, (m) => m.rel?.kind === "reaction");
  const { message: thumbs } = await bob.c.send({ conv }, "👍", { clientId: "react-1", rel: { kind: "reaction", target: hello.id } });
  assert.equal(text(await aliceGetsReaction), "👍");
  const again = await bob.c.send({ conv }, "👍", { clientId: "react-1", rel: { kind: "reaction", target: hello.id } });
  assert.equal(again.duplicate, true);
  assert.equal(again.message.seq, thumbs.seq);
  assert.equal(await code(bob.c.send({ conv }, "nice", { rel: { kind: "reaction", target: hello.id } })), "invalid_argument");
  assert.equal(await code(bob.c.send({ conv }, "x", { rel: { kind: "edit", target: "0190f7a3-0000-7000-8000-00000000dead" } })), "not_found");

  // A reply, quoting it; then more messages, so that a short page holds the reply but not what it quotes.
  const aliceGetsReply = pushed(alice.c, conv, (m) => m.rel?.kind === "reply");
  const { message: reply } = await bob.c.send({ conv }, "hi back", { rel: { kind: "reply", target: hello.id } });
  assert.equal((await aliceGetsReply).id, reply.id);
  const { message: later } = await alice.c.send({ conv }, "later");
  await alice.c.send({ conv }, "even later");
  const page = await bob.c.history(conv, { limit: 3 });
  assert.deepEqual(page.messages.map(text), ["hi back", "later", "even later"]);
  const related = new Map(page.related.map((m) => [m.id, m]));
  for (const m of [hello, edit, thumbs]) assert.ok(related.has(m.id), `related holds ${text(m)}`);
  const book = new LifeBook({ me: bob.user });
  for (const m of [...page.messages, ...page.related]) book.apply(m, text(m));
  assert.deepEqual(book.view(reply.id).replyTo, hello.id);
  const quoted = book.view(hello.id);
  assert.equal(quoted.text, "hello!");
  assert.equal(quoted.edited, true);
  assert.deepEqual(quoted.reactions, [{ emoji: "👍", users: [bob.user], mine: thumbs.id }]);

  // At most 20 live reactions per member and message; taking one back makes room.
  const emoji = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗", "😙", "😚", "🙂", "🤗", "🤩"];
  assert.equal(MAX_REACTIONS, 20);
  const mine = [];
  for (const e of emoji.slice(0, MAX_REACTIONS)) mine.push((await bob.c.send({ conv }, e, { rel: { kind: "reaction", target: later.id } })).message);
  assert.equal(await code(bob.c.send({ conv }, emoji[20], { rel: { kind: "reaction", target: later.id } })), "limit_reached");
  await bob.c.deleteMessage(conv, mine[0].id);
  assert.equal(await code(bob.c.send({ conv }, emoji[20], { rel: { kind: "reaction", target: later.id } })), "ok");
  assert.equal(await code(alice.c.deleteMessage(conv, mine[1].id)), "forbidden", "someone else's reaction");

  // Deletion for everyone: pushed; the store keeps tombstones of the message, its edit and its reaction.
  const bobGetsDelete = pushed(bob.c, conv, (m) => m.rel?.kind === "delete");
  assert.equal(await code(bob.c.deleteMessage(conv, hello.id)), "forbidden", "not his");
  const { message: deletion } = await alice.c.deleteMessage(conv, hello.id);
  assert.deepEqual((await bobGetsDelete).content, { kind: "deleted" });
  assert.equal(await code(alice.c.deleteMessage(conv, hello.id)), "not_found", "deleted already");
  assert.equal(await code(bob.c.send({ conv }, "👍", { rel: { kind: "reaction", target: hello.id } })), "not_found");
  const after = await bob.c.history(conv, { limit: 3, before: later.seq });
  const all = new Map([...after.messages, ...after.related].map((m) => [m.id, m]));
  for (const m of [hello, edit, thumbs]) assert.deepEqual(all.get(m.id)?.content, { kind: "deleted" }, `${text(m)} is a tombstone`);
  assert.ok(all.has(deletion.id), "the deletion is related to its target");
  const fresh = new LifeBook({ me: bob.user });
  for (const m of all.values()) fresh.apply(m, text(m));
  assert.equal(fresh.view(hello.id).deleted, true);
  assert.deepEqual(fresh.view(hello.id).reactions, []);
  assert.equal(fresh.view(reply.id).text, "hi back", "the reply stays");

  // Edits, reactions and deletions are not unread: Bob has "hello", the two "later" messages as unread, not more.
  const summary = (await bob.c.conversations()).conversations.find((s) => s.conv === conv);
  assert.equal(summary.unread, 3);
  assert.equal(summary.last.rel, "delete");
});

test("three people: a target of another conversation, mentions counted, admins delete, the timer and its notice", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const carol = await person("carol");
  await contacts(alice, bob);
  const g = await alice.c.createGroup({ title: "Life", members: [bob.user, carol.user] });
  const { message: inGroup } = await alice.c.send({ conv: g.conv }, "in the group");
  const { message: dm } = await bob.c.send({ to: alice.user }, "just us");
  assert.equal(await code(bob.c.send({ conv: dm.conv }, "👍", { rel: { kind: "reaction", target: inGroup.id } })), "not_found", "another conversation's message");

  // Mentions: counted for whom they name, until read; the sender and non-members are dropped.
  const { message: ping } = await alice.c.send({ conv: g.conv }, "@Bob look", { mentions: [bob.user, alice.user, "0190f7a2-0000-7000-8000-00000000beef"] });
  assert.deepEqual(ping.mentions, [bob.user, alice.user, "0190f7a2-0000-7000-8000-00000000beef"], "as sent");
  const summaryOf = async (p) => (await p.c.conversations()).conversations.find((s) => s.conv === g.conv);
  assert.equal((await summaryOf(bob)).mentions, 1);
  assert.ok(!(await summaryOf(carol)).mentions, "carol is not mentioned");
  await alice.c.send({ conv: g.conv }, "👀", { rel: { kind: "reaction", target: ping.id } });
  assert.equal((await summaryOf(bob)).mentions, 1, "a reaction is no mention");
  await bob.c.read(g.conv, (await summaryOf(bob)).last_seq);
  assert.ok(!(await summaryOf(bob)).mentions, "read: no unread mention");

  // In a group, admins delete anyone's message; a member only their own.
  const { message: bobs } = await bob.c.send({ conv: g.conv }, "oops");
  assert.equal(await code(carol.c.deleteMessage(g.conv, bobs.id)), "forbidden");
  assert.equal(await code(alice.c.deleteMessage(g.conv, bobs.id)), "ok", "the owner deletes it");
  const { message: carols } = await carol.c.send({ conv: g.conv }, "mine");
  assert.equal(await code(carol.c.deleteMessage(g.conv, carols.id)), "ok");

  // The timer: admins of a group; a notice for everyone; then each message carries expires_at.
  assert.equal(await code(carol.c.setTimer(g.conv, 86_400_000)), "forbidden");
  assert.equal(await code(alice.c.setTimer(g.conv, 12345)), "invalid_argument");
  const bobGetsNotice = pushed(bob.c, g.conv, (m) => m.content.kind === "timer_changed");
  const seq = await alice.c.setTimer(g.conv, 86_400_000);
  assert.ok(seq > 0);
  const notice = await bobGetsNotice;
  assert.deepEqual(notice.content, { kind: "timer_changed", expire_after: 86_400_000 });
  assert.equal(notice.from, alice.user);
  assert.equal(await alice.c.setTimer(g.conv, 86_400_000), 0, "already so");
  assert.equal((await summaryOf(carol)).expire_after, 86_400_000);
  const { message: fleeting } = await carol.c.send({ conv: g.conv }, "gone tomorrow");
  assert.equal(fleeting.expires_at, fleeting.ts + 86_400_000);
  const book = new LifeBook({ now: () => fleeting.ts + 86_400_000 });
  book.apply(fleeting, "gone tomorrow");
  assert.equal(book.view(fleeting.id).deleted, true, "expired on the book's clock");
  const off = pushed(bob.c, g.conv, (m) => m.content.kind === "timer_changed" && m.seq > notice.seq);
  await alice.c.setTimer(g.conv, undefined);
  assert.deepEqual((await off).content, { kind: "timer_changed" });
  assert.equal((await summaryOf(carol)).expire_after, undefined);
});
