import { test } from "node:test";
import assert from "node:assert/strict";
import { ReceiptBook } from "../../dist/index.js";

const r = (user, delivered, read) => ({ user, delivered, read });

test("marks only rise, each covering every earlier seq; a message's state among the others", () => {
  const book = new ReceiptBook();
  assert.deepEqual(book.status("g", 5, ["bob", "carol"]), { state: "sent", delivered: 0, read: 0, of: 2 });
  assert.equal(book.apply("g", r("bob", 6, 0)), true);
  assert.equal(book.apply("g", r("bob", 4, 0)), false, "a lower mark changes nothing");
  assert.deepEqual(book.status("g", 5, ["bob", "carol"]), { state: "sent", delivered: 1, read: 0, of: 2 });
  book.apply("g", r("carol", 5, 5));
  assert.deepEqual(book.status("g", 5, ["bob", "carol"]), { state: "delivered", delivered: 2, read: 1, of: 2 });
  assert.deepEqual(book.status("g", 6, ["bob", "carol"]), { state: "sent", delivered: 1, read: 0, of: 2 }, "a later message");
  book.apply("g", r("bob", 6, 6));
  assert.equal(book.status("g", 5, ["bob", "carol"]).state, "read");
  assert.equal(book.status("g", 5, []).state, "sent", "alone in the conversation: nobody to tell");
  assert.deepEqual(book.get("other", "bob"), r("bob", 0, 0), "conversations apart");
});

test("a read of 0 is the sharing turned off: the read mark is forgotten; delivery stays", () => {
  const book = new ReceiptBook();
  book.apply("d", r("bob", 3, 3));
  assert.equal(book.apply("d", r("bob", 4, 0)), true);
  assert.deepEqual(book.get("d", "bob"), r("bob", 4, 0));
  assert.equal(book.status("d", 3, ["bob"]).state, "delivered");
});

test("answers: until is kept per conversation; a full answer clears read marks it does not show; ask all again", () => {
  const book = new ReceiptBook();
  assert.equal(book.until("d"), undefined);
  assert.deepEqual(book.asked(), []);
  book.apply("d", r("carol", 2, 2));
  assert.deepEqual(book.take("d", [r("bob", 7, 5)], 1000, true), ["carol", "bob"], "who changed");
  assert.equal(book.until("d"), 1000);
  assert.deepEqual(book.asked(), ["d"]);
  assert.deepEqual(book.get("d", "carol"), r("carol", 2, 0), "not listed by a full answer: nothing read to show");
  assert.deepEqual(book.take("d", [r("bob", 8, 5)], 2000, false), ["bob"]);
  assert.deepEqual(book.take("d", [r("bob", 8, 5)], 3000, false), [], "told twice: nothing changed");
  assert.deepEqual(book.status("d", 5, ["bob"], false), { state: "delivered", delivered: 1, read: 0, of: 1 }, "reads not counted");
  assert.deepEqual(book.marks("d"), [r("carol", 2, 0), r("bob", 8, 5)]);
  book.askAllAgain();
  assert.equal(book.until("d"), undefined);
  assert.deepEqual(book.asked(), ["d"], "still asked again after a reconnect");
  book.clear();
  assert.deepEqual(book.marks("d"), []);
});
