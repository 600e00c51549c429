// vodozemac in WebAssembly (chatd/web/vodozemac/, loaded by src/vodozemac.ts
// as Node loads it): Olm and Megolm round trips, pickles, bad input that
// must throw without breaking the instance, and fixtures written by native
// vodozemac (bindings/vodozemac-wasm/examples/fixtures.rs, checked natively
// by its tests/api.rs) read here, so the wasm build and the Rust client's
// build agree on every format.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { isVodozemacError, loadVodozemac } from "../../dist/vodozemac.js";

const vz = await loadVodozemac();
const enc = new TextEncoder();
const dec = new TextDecoder();
const KEY = new Uint8Array(32).fill(7);
const OTHER_KEY = new Uint8Array(32).fill(8);
const fixtures = JSON.parse(
  readFileSync(new URL("../../../vodozemac-wasm/tests/fixtures.json", import.meta.url), "utf8"),
);

/** Asserts that `fn` throws a VodozemacError with `code` (or one of them) and a message matching `message`. */
function throwsCode(fn, code, message = /./) {
  assert.throws(fn, (e) => {
    assert.ok(isVodozemacError(e), `not a VodozemacError: ${e}`);
    assert.ok([code].flat().includes(e.code), `code ${e.code}: ${e.message}`);
    assert.match(e.message, message);
    return true;
  });
}

/** Alice opens an Olm session to Bob with one of his one-time keys; Bob reads the first message. */
function pair() {
  const alice = new vz.Account();
  const bob = new vz.Account();
  bob.generateOneTimeKeys(1);
  const [otk] = bob.oneTimeKeys();
  bob.markKeysAsPublished();
  const toBob = alice.createOutboundSession(bob.curve25519Key, otk.key);
  const first = toBob.encrypt(enc.encode("hello bob"));
  assert.equal(first.messageType, 0);
  const inbound = bob.createInboundSession(alice.curve25519Key, first.messageType, first.body);
  assert.equal(dec.decode(inbound.plaintext), "hello bob");
  const toAlice = inbound.takeSession();
  return { alice, bob, toBob, toAlice };
}

test("loading twice gives the same instance", async () => {
  assert.equal(await loadVodozemac(), vz);
});

test("Olm: two accounts exchange messages both ways", () => {
  const { toBob, toAlice } = pair();
  assert.equal(toBob.sessionId, toAlice.sessionId);
  const second = toBob.encrypt(enc.encode("still pre-key"));
  assert.equal(second.messageType, 0);
  assert.ok(toAlice.matchesPreKeyMessage(second.messageType, second.body));
  assert.equal(dec.decode(toAlice.decrypt(second.messageType, second.body)), "still pre-key");
  for (let i = 0; i < 3; i++) {
    const reply = toAlice.encrypt(enc.encode(`reply ${i}`));
    assert.equal(reply.messageType, 1);
    assert.equal(toAlice.matchesPreKeyMessage(reply.messageType, reply.body), false);
    assert.equal(dec.decode(toBob.decrypt(reply.messageType, reply.body)), `reply ${i}`);
    const back = toBob.encrypt(enc.encode(`back ${i}`));
    assert.equal(back.messageType, 1);
    assert.equal(dec.decode(toAlice.decrypt(back.messageType, back.body)), `back ${i}`);
  }
});

test("Megolm: the session key reads all, a later export reads only from its index", () => {
  const outbound = new vz.GroupSession();
  const sessionKey = outbound.sessionKey;
  const messages = [0, 1, 2, 3].map((i) => outbound.encrypt(enc.encode(`message ${i}`)));
  assert.equal(outbound.messageIndex, 4);
  const inbound = new vz.InboundGroupSession(sessionKey);
  assert.equal(inbound.sessionId, outbound.sessionId);
  assert.equal(inbound.firstKnownIndex, 0);
  messages.forEach((m, i) => {
    const d = inbound.decrypt(m);
    assert.equal(d.messageIndex, i);
    assert.equal(dec.decode(d.plaintext), `message ${i}`);
  });
  const later = vz.InboundGroupSession.import(inbound.exportAt(2));
  assert.equal(later.firstKnownIndex, 2);
  assert.equal(later.sessionId, outbound.sessionId);
  for (const i of [0, 1]) {
    assert.throws(
      () => later.decrypt(messages[i]),
      (e) => isVodozemacError(e) && e.code === "unknown_index" && e.firstKnownIndex === 2 && e.messageIndex === i,
    );
  }
  assert.equal(dec.decode(later.decrypt(messages[2]).plaintext), "message 2");
  assert.equal(later.exportAt(1), undefined);
  assert.equal(vz.InboundGroupSession.import(later.exportAtFirstKnownIndex()).firstKnownIndex, 2);
});

test("pickles round-trip, and another key throws a clear error", () => {
  const { alice, toBob, toAlice } = pair();
  const account = vz.Account.fromPickle(alice.pickle(KEY), KEY);
  assert.equal(account.ed25519Key, alice.ed25519Key);
  assert.equal(account.curve25519Key, alice.curve25519Key);
  throwsCode(() => vz.Account.fromPickle(alice.pickle(KEY), OTHER_KEY), "pickle", /account pickle does not load with this key/);
  throwsCode(() => alice.pickle(new Uint8Array(31)), "invalid_argument", /32 bytes, not 31/);

  const session = vz.Session.fromPickle(toBob.pickle(KEY), KEY);
  const m = session.encrypt(enc.encode("from the pickle"));
  assert.equal(dec.decode(toAlice.decrypt(m.messageType, m.body)), "from the pickle");
  throwsCode(() => vz.Session.fromPickle(toBob.pickle(KEY), OTHER_KEY), "pickle", /session pickle/);

  const outbound = new vz.GroupSession();
  const inbound = new vz.InboundGroupSession(outbound.sessionKey);
  const outbound2 = vz.GroupSession.fromPickle(outbound.pickle(KEY), KEY);
  const inbound2 = vz.InboundGroupSession.fromPickle(inbound.pickle(KEY), KEY);
  assert.equal(dec.decode(inbound2.decrypt(outbound2.encrypt(enc.encode("pickled"))).plaintext), "pickled");
  throwsCode(() => vz.GroupSession.fromPickle(outbound.pickle(KEY), OTHER_KEY), "pickle");
  throwsCode(() => vz.InboundGroupSession.fromPickle(inbound.pickle(KEY), OTHER_KEY), "pickle");
  // Tampered text, and a pickle of another kind.
  const text = inbound.pickle(KEY);
  const flipped = text.slice(0, 20) + (text[20] === "A" ? "B" : "A") + text.slice(21);
  throwsCode(() => vz.InboundGroupSession.fromPickle(flipped, KEY), "pickle");
  throwsCode(() => vz.Session.fromPickle(alice.pickle(KEY), KEY), "pickle");
});

test("a tampered ciphertext throws, and the instance still works afterwards", () => {
  const outbound = new vz.GroupSession();
  const inbound = new vz.InboundGroupSession(outbound.sessionKey);
  const m = outbound.encrypt(enc.encode("genuine"));
  for (const at of [1, 10, m.length - 1]) {
    const tampered = m.slice();
    tampered[at] ^= 1;
    // Byte 1 is in the header (the index's field): either it no longer decodes or it fails its checks.
    throwsCode(() => inbound.decrypt(tampered), at === 1 ? ["invalid_message", "decrypt", "unknown_index"] : "decrypt");
  }
  throwsCode(() => inbound.decrypt(new vz.GroupSession().encrypt(enc.encode("other session"))), "decrypt");
  assert.equal(dec.decode(inbound.decrypt(m).plaintext), "genuine");

  const { toBob, toAlice } = pair();
  const o = toBob.encrypt(enc.encode("olm genuine"));
  const tampered = o.body.slice();
  tampered[tampered.length - 1] ^= 1;
  throwsCode(() => toAlice.decrypt(o.messageType, tampered), "decrypt", /does not decrypt/);
  assert.equal(dec.decode(toAlice.decrypt(o.messageType, o.body)), "olm genuine");

  // The whole instance keeps working: new objects, new sessions.
  const again = pair();
  const r = again.toAlice.encrypt(enc.encode("still alive"));
  assert.equal(dec.decode(again.toBob.decrypt(r.messageType, r.body)), "still alive");
});

test("malformed input throws a VodozemacError, never aborts the instance", () => {
  const account = new vz.Account();
  throwsCode(() => account.createOutboundSession("not base64!", account.curve25519Key), "invalid_key", /identity key/);
  throwsCode(() => account.createOutboundSession(account.curve25519Key, "AAAA"), "invalid_key", /one-time key/);
  throwsCode(() => account.createInboundSession(account.curve25519Key, 0, new Uint8Array([1, 2, 3])), "invalid_message");
  throwsCode(() => account.createInboundSession(account.curve25519Key, 5, new Uint8Array(0)), "invalid_argument");
  throwsCode(() => account.generateOneTimeKeys(1_000_000), "invalid_argument", /at most 50/);
  throwsCode(() => new vz.InboundGroupSession("garbage"), "invalid_key");
  throwsCode(() => vz.InboundGroupSession.import(""), "invalid_key");
  throwsCode(() => vz.Ed25519SecretKey.fromBase64("short"), "invalid_key");
  throwsCode(() => vz.verifyEd25519("bad", enc.encode("x"), "bad"), "invalid_key");
  throwsCode(() => vz.checkCurve25519Key("AAAA"), "invalid_key");
  throwsCode(() => vz.checkEd25519Key(account.curve25519Key.slice(2)), "invalid_key");
  throwsCode(() => vz.base64Decode("a="), "invalid_argument");
  // An unused inbound session can be taken once.
  const { bob, alice } = pair();
  const other = alice.createOutboundSession(bob.curve25519Key, bob.fallbackKey()?.key ?? (bob.generateFallbackKey(), bob.fallbackKey().key));
  const m = other.encrypt(enc.encode("via fallback"));
  const inbound = bob.createInboundSession(alice.curve25519Key, m.messageType, m.body);
  inbound.takeSession();
  throwsCode(() => inbound.takeSession(), "invalid_argument", /already taken/);
  // Still alive.
  const sig = account.sign(enc.encode("alive"));
  assert.ok(vz.verifyEd25519(account.ed25519Key, enc.encode("alive"), sig));
});

test("one-time and fallback keys, signatures and the master key", () => {
  const account = new vz.Account();
  assert.equal(account.maxNumberOfOneTimeKeys, 50);
  account.generateOneTimeKeys(5);
  const keys = account.oneTimeKeys();
  assert.equal(keys.length, 5);
  assert.equal(new Set(keys.map((k) => k.id)).size, 5);
  for (const k of keys) vz.checkCurve25519Key(k.key);
  assert.equal(account.fallbackKey(), undefined);
  account.generateFallbackKey();
  assert.ok(account.fallbackKey());
  account.markKeysAsPublished();
  assert.deepEqual(account.oneTimeKeys(), []);
  assert.equal(account.fallbackKey(), undefined);

  const text = enc.encode("device keys text");
  const sig = account.sign(text);
  assert.ok(vz.verifyEd25519(account.ed25519Key, text, sig));
  assert.equal(vz.verifyEd25519(account.ed25519Key, enc.encode("other text"), sig), false);

  const master = new vz.Ed25519SecretKey();
  const copy = vz.Ed25519SecretKey.fromBase64(master.toBase64());
  assert.equal(copy.publicKey, master.publicKey);
  assert.equal(copy.sign(text), master.sign(text));
  assert.ok(vz.verifyEd25519(master.publicKey, text, master.sign(text)));
  assert.equal(vz.base64Encode(new Uint8Array([255, 0])), "/wA");
  assert.deepEqual([...vz.base64Decode("/wA")], [255, 0]);
});

test("native vodozemac's output reads in wasm (fixtures from the Rust side)", () => {
  const key = vz.base64Decode(fixtures.pickle_key);
  const { olm, megolm, ed25519 } = fixtures;

  // Olm: Bob's natively pickled account opens Alice's native pre-key messages.
  const bob = vz.Account.fromPickle(olm.bob_account_pickle, key);
  assert.equal(bob.ed25519Key, olm.bob_ed25519);
  assert.equal(bob.curve25519Key, olm.bob_curve25519);
  assert.equal(bob.sign(enc.encode(olm.account_text)), olm.account_signature, "Ed25519 signatures are deterministic");
  const [first, second] = olm.messages;
  const inbound = bob.createInboundSession(olm.alice_curve25519, first.type, vz.base64Decode(first.body));
  assert.equal(dec.decode(inbound.plaintext), first.plaintext);
  const toAlice = inbound.takeSession();
  assert.equal(toAlice.sessionId, olm.session_id);
  assert.ok(toAlice.matchesPreKeyMessage(second.type, vz.base64Decode(second.body)));
  assert.equal(dec.decode(toAlice.decrypt(second.type, vz.base64Decode(second.body))), second.plaintext);
  // The other way: wasm encrypts, Alice's natively pickled session reads it.
  const alice = vz.Session.fromPickle(olm.alice_session_pickle, key);
  const reply = toAlice.encrypt(enc.encode("from wasm Bob"));
  assert.equal(dec.decode(alice.decrypt(reply.messageType, reply.body)), "from wasm Bob");

  // Megolm: the session key reads all four, the export at 2 only the last two.
  const all = new vz.InboundGroupSession(megolm.session_key);
  const later = vz.InboundGroupSession.import(megolm.export_at_2);
  const pickled = vz.InboundGroupSession.fromPickle(megolm.inbound_pickle, key);
  for (const m of megolm.messages) {
    const bytes = vz.base64Decode(m.ciphertext);
    const d = all.decrypt(bytes);
    assert.equal(d.messageIndex, m.index);
    assert.equal(dec.decode(d.plaintext), m.plaintext);
    assert.equal(dec.decode(pickled.decrypt(bytes).plaintext), m.plaintext);
    if (m.index >= 2) {
      assert.equal(dec.decode(later.decrypt(bytes).plaintext), m.plaintext);
    } else {
      throwsCode(() => later.decrypt(bytes), "unknown_index");
    }
  }
  assert.equal(all.sessionId, megolm.session_id);
  assert.equal(later.exportAtFirstKnownIndex(), megolm.export_at_2);

  // Ed25519: the native master key, loaded here, signs the same bytes.
  assert.ok(vz.verifyEd25519(ed25519.public, enc.encode(ed25519.text), ed25519.signature));
  const master = vz.Ed25519SecretKey.fromBase64(ed25519.secret);
  assert.equal(master.publicKey, ed25519.public);
  assert.equal(master.sign(enc.encode(ed25519.text)), ed25519.signature);
});
