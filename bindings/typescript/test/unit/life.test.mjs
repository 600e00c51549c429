import { test } from "node:test";
import assert from "node:assert/strict";
import { LifeBook } from "../../dist/index.js";

let seq = 0;
/** An entry of conversation "c": `id`, from `from`, with `rel` and extra fields. */
function entry(id, from, rel, extra = {}) {
  seq++;
  return {
    id,
    conv: "c",
    seq: extra.seq ?? seq,
    from,
    client_id: `cid-${id}`,
    ts: 1000 + seq,
    ...(rel ? { rel: { kind: rel[0], target: rel[1] } } : {}),
    ...(extra.expires_at !== undefined ? { expires_at: extra.expires_at } : {}),
    content: rel?.[0] === "delete" || extra.deleted ? { kind: "deleted" } : { kind: "text", text: extra.text ?? id },
  };
}

/** Every order of `items`. */
function* orders(items) {
  if (items.length <= 1) {
    yield items;
    return;
  }
  for (let i = 0; i < items.length; i++) {
    for (const rest of orders([...items.slice(0, i), ...items.slice(i + 1)])) yield [items[i], ...rest];
  }
}

test("a message, its edits and reactions give the same view whatever order they arrive in", () => {
  const list = [
    [entry("m", "alice"), "hello"],
    [entry("e1", "alice", ["edit", "m"], { seq: 10 }), "hello!"],
    [entry("e2", "alice", ["edit", "m"], { seq: 12 }), "hello!!"],
    [entry("r1", "bob", ["reaction", "m"], { seq: 11 }), "👍"],
    [entry("r2", "carol", ["reaction", "m"], { seq: 13 }), "👍"],
  ];
  let first;
  for (const order of orders(list)) {
    const book = new LifeBook({ me: "bob" });
    for (const [m, text] of order) book.apply(m, text);
    const v = book.view("m");
    first ??= v;
    assert.deepEqual(v, first);
  }
  assert.equal(first.text, "hello!!", "the latest edit by seq wins, not the last to arrive");
  assert.equal(first.edited, true);
  assert.equal(first.deleted, false);
  assert.deepEqual(first.reactions, [{ emoji: "👍", users: ["bob", "carol"], mine: "r1" }]);
});

test("reactions by several users: grouped by emoji in order of first use, each user once; mine per viewer", () => {
  const book = new LifeBook();
  book.apply(entry("m", "alice"), "hi");
  book.apply(entry("r1", "bob", ["reaction", "m"]), "❤️");
  book.apply(entry("r2", "carol", ["reaction", "m"]), "👍");
  book.apply(entry("r3", "alice", ["reaction", "m"]), "❤️");
  book.apply(entry("r4", "bob", ["reaction", "m"]), "👍");
  book.apply(entry("r5", "bob", ["reaction", "m"]), "👍");
  assert.deepEqual(book.view("m", "bob").reactions, [
    { emoji: "❤️", users: ["bob", "alice"], mine: "r1" },
    { emoji: "👍", users: ["carol", "bob"], mine: "r4" },
  ]);
  assert.deepEqual(book.view("m", "carol").reactions.map((r) => r.mine), [undefined, "r2"]);
  assert.equal(book.view("m").reactions[0]?.mine, undefined, "no viewer: nothing is mine");
  // A reaction whose text is not known (not decrypted yet) is not counted until it is.
  book.apply(entry("r6", "dave", ["reaction", "m"], { text: "x" }));
  assert.equal(book.view("m", "bob").reactions.length, 2);
  book.apply({ ...book.get("r6") }, "😂");
  assert.deepEqual(book.view("m", "bob").reactions.at(-1), { emoji: "😂", users: ["dave"] });
});

test("toggles: reacting again with the same emoji takes back one's own reaction", () => {
  const book = new LifeBook({ me: "bob" });
  book.apply(entry("m", "alice"), "hi");
  assert.equal(book.myReaction("m", "👍"), undefined, "not reacted: react");
  assert.equal(book.apply(entry("r1", "bob", ["reaction", "m"]), "👍"), "m", "a reaction changes its target");
  assert.equal(book.myReaction("m", "👍"), "r1", "reacted: delete r1");
  assert.equal(book.myReaction("m", "👍", "carol"), undefined);
  assert.equal(book.apply(entry("d1", "bob", ["delete", "r1"])), "m", "taking a reaction back changes its message");
  assert.equal(book.myReaction("m", "👍"), undefined);
  assert.deepEqual(book.view("m").reactions, []);
  // The deletion may arrive before the reaction (a related page): still taken back.
  const late = new LifeBook({ me: "bob" });
  late.apply(entry("d2", "bob", ["delete", "r2"]));
  late.apply(entry("r2", "bob", ["reaction", "m2"]), "👍");
  late.apply(entry("m2", "alice"), "x");
  assert.deepEqual(late.view("m2").reactions, []);
});

test("a deletion removes the text, edits and reactions; a tombstone reads as deleted too; replies keep their target", () => {
  for (const order of orders(["m", "e", "r", "d"])) {
    const book = new LifeBook({ me: "bob" });
    const all = {
      m: [entry("m", "alice"), "hi"],
      e: [entry("e", "alice", ["edit", "m"]), "hi!"],
      r: [entry("r", "bob", ["reaction", "m"]), "👍"],
      d: [entry("d", "alice", ["delete", "m"])],
    };
    for (const k of order) book.apply(...all[k]);
    const v = book.view("m");
    assert.equal(v.deleted, true);
    assert.equal(v.text, undefined);
    assert.equal(v.edited, false);
    assert.deepEqual(v.reactions, []);
  }
  const book = new LifeBook();
  book.apply(entry("t", "alice", undefined, { deleted: true }));
  assert.equal(book.view("t").deleted, true, "the store's tombstone");
  book.apply(entry("q", "bob", ["reply", "t"]), "what did you say?");
  const reply = book.view("q");
  assert.equal(reply.replyTo, "t");
  assert.equal(reply.text, "what did you say?");
  assert.equal(book.view("missing").message, undefined, "a quote not loaded: no message");
  assert.equal(book.view("missing").deleted, false);
});

test("edits: only the sender's count; an edit told before its text is known keeps the original shown", () => {
  const book = new LifeBook();
  book.apply(entry("m", "alice"), "one");
  book.apply(entry("x", "mallory", ["edit", "m"]), "forged");
  assert.equal(book.view("m").text, "one");
  assert.equal(book.view("m").edited, false);
  book.apply(entry("e", "alice", ["edit", "m"]));
  assert.equal(book.view("m").text, "one", "not decrypted yet");
  book.apply(book.get("e"), "two");
  assert.equal(book.view("m").text, "two");
  assert.equal(book.view("m").edited, true);
});

test("expired entries read as deleted, on the book's clock; the next expiry and the expired entries", () => {
  let now = 5000;
  const book = new LifeBook({ me: "bob", now: () => now });
  book.apply(entry("m", "alice", undefined, { expires_at: 6000 }), "soon gone");
  book.apply(entry("n", "alice", undefined, { expires_at: 9000 }), "later");
  book.apply(entry("r", "bob", ["reaction", "n"], { expires_at: 7000 }), "👍");
  assert.equal(book.view("m").deleted, false);
  assert.equal(book.nextExpiry(), 6000);
  now = 6000;
  const v = book.view("m");
  assert.equal(v.deleted, true);
  assert.equal(v.expired, true);
  assert.equal(v.text, undefined);
  assert.deepEqual(book.expiredEntries().map((m) => m.id), ["m"]);
  book.forget("m");
  assert.deepEqual(book.expiredEntries(), []);
  assert.equal(book.view("m").deleted, true, "forgotten: still gone");
  assert.equal(book.nextExpiry(), 7000);
  now = 7000;
  assert.deepEqual(book.view("n").reactions, [], "an expired reaction is gone");
  assert.equal(book.view("n").text, "later");
});
