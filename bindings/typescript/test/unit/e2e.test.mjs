// The end-to-end machine (src/e2e/, a port of chatcore_client::e2e) between
// several devices in memory, as chatcore-client/tests/e2e.rs does it: real
// vodozemac (wasm), a small stand-in for the server's key directory and
// to-device queues, messages passed by hand. Plus the wire formats, byte for
// byte as the Rust client writes them, and the state at rest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode, decode } from "@msgpack/msgpack";
import {
  Machine,
  E2eError,
  FileStore,
  MemoryStore,
  MAX_SESSION_AGE,
  MAX_SESSION_MESSAGES,
  ONE_TIME_KEY_TARGET,
  delivered,
  decodeBase64,
  encodeBase64,
  generateStoreKey,
  safetyNumber,
} from "../../dist/e2e/index.js";
import { loadVodozemac } from "../../dist/vodozemac.js";

const vz = await loadVodozemac();
const T0 = 1_700_000_000_000;
const enc = new TextEncoder();
const dec = new TextDecoder();
const k = (user, device) => `${user}/${device}`;

/** Asserts that `fn` throws an E2eError of `code`. */
function throwsCode(fn, code, message = /./) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof E2eError, `not an E2eError: ${e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

/** The devices, the directory, the to-device queues. */
class World {
  machines = new Map();
  directory = new Map();
  masters = new Map();
  inbox = new Map();
  now = T0;

  add(user, device) {
    const m = Machine.createWith(vz, user, device);
    const upload = m.keysToUpload({ one_time: 0, fallback_unused: false });
    m.markKeysPublished();
    this.directory.set(k(user, device), { user, device, identity: upload.identity, oneTime: upload.oneTimeKeys, fallback: upload.fallbackKey });
    this.machines.set(k(user, device), m);
    return k(user, device);
  }
  m(key) {
    return this.machines.get(key);
  }
  info(key) {
    const p = this.directory.get(key);
    return { user: p.user, device: p.device, keys: p.identity };
  }
  query(user) {
    const devices = [...this.directory.values()]
      .filter((p) => p.user === user)
      .map((p) => ({ ...this.info(k(p.user, p.device)), ...(p.masterSignature ? { master_signature: p.masterSignature } : {}) }));
    return { user, ...(this.masters.has(user) ? { masterKey: this.masters.get(user) } : {}), devices };
  }
  sync(who, users) {
    return users.flatMap((u) => this.m(who).receiveDeviceKeys(this.query(u)));
  }
  syncAll() {
    const users = [...new Set([...this.directory.values()].map((p) => p.user))];
    for (const key of this.machines.keys()) this.sync(key, users);
  }
  claim(devices) {
    return devices.flatMap((d) => {
      const p = this.directory.get(k(d.user, d.device));
      if (!p) return [];
      const one = p.oneTime.pop();
      const key = one ?? p.fallback;
      return key ? [{ user: d.user, device: d.device, key, fallback: !one }] : [];
    });
  }
  ready(who, step) {
    for (let i = 0; i < 3; i++) {
      const r = step(this.m(who), this.now);
      if (r.type === "ready") return r.value;
      const failed = this.m(who).receiveClaimedKeys(r.devices, this.claim(r.devices), this.now);
      assert.deepEqual(failed, []);
    }
    assert.fail("claims did not converge");
  }
  post(from, messages) {
    const m = this.m(from);
    for (const out of messages) {
      assert.equal(out.kind, "olm.v1");
      const to = k(out.user, out.device);
      if (!this.inbox.has(to)) this.inbox.set(to, []);
      this.inbox.get(to).push(delivered(out, { user: m.user, device: m.device }, this.now));
    }
  }
  deliver(who) {
    const inbox = this.inbox.get(who) ?? [];
    this.inbox.delete(who);
    return inbox.map((msg) => {
      try {
        return { ok: this.m(who).receiveToDevice(msg, this.now) };
      } catch (error) {
        return { error };
      }
    });
  }
  deliverAll() {
    for (const key of [...this.inbox.keys()]) {
      for (const r of this.deliver(key)) if (r.error) throw r.error;
    }
  }
  members(from, users) {
    return this.m(from).devicesOf(users);
  }
  send(from, conv, users, text) {
    return this.sendTo(from, conv, this.members(from, users), text);
  }
  sendTo(from, conv, members, text) {
    const sent = this.ready(from, (m, now) => m.encrypt(conv, members, enc.encode(text), now));
    this.post(from, sent.toDevice);
    // The server took the room keys (as SecureChat confirms once `send_to_device` is answered).
    this.m(from).confirmShared(conv, sent.content.session, sent.toDevice);
    this.deliverAll();
    return sent.content;
  }
  read(who, conv, sender, content) {
    return this.m(who).decrypt(conv, idOf(content), this.m(sender)?.user ?? sender.split("/")[0], content);
  }
  readText(who, conv, sender, content) {
    const r = this.read(who, conv, sender, content);
    assert.equal(r.type, "plain", `${who} could not read`);
    assert.equal(k(r.sender.user, r.sender.device), sender);
    return dec.decode(r.content);
  }
  createMaster(key) {
    const upload = this.m(key).createMasterKey();
    this.masters.set(this.m(key).user, upload.masterKey);
    this.directory.get(key).masterSignature = upload.deviceSignature;
    return upload;
  }
  sign(signer, device) {
    const signature = this.m(signer).signDevice(this.info(device));
    this.directory.get(device).masterSignature = signature;
    return signature;
  }
  revoke(key) {
    this.directory.delete(key);
    this.machines.get(key)?.free();
    this.machines.delete(key);
    this.inbox.delete(key);
  }
}

/** The server's id of a message: one per ciphertext (a Megolm message ends with its unique signature). */
function idOf(content) {
  return Buffer.from(content.ciphertext.slice(-8)).toString("hex");
}

test("two users with two devices each read everything, their own other devices included", () => {
  const w = new World();
  const [a1, a2, b1, b2] = [w.add("alice", "a1"), w.add("alice", "a2"), w.add("bob", "b1"), w.add("bob", "b2")];
  w.syncAll();
  const c = "dm:alice:bob";
  const m1 = w.send(a1, c, ["alice", "bob"], "hello bob");
  for (const who of [a1, a2, b1, b2]) assert.equal(w.readText(who, c, a1, m1), "hello bob");
  const m2 = w.send(b2, c, ["alice", "bob"], "hi alice");
  for (const who of [a1, a2, b1, b2]) assert.equal(w.readText(who, c, b2, m2), "hi alice");
  // The second message of a session needs no new keys.
  const again = w.ready(a1, (m, now) => m.encrypt(c, w.members(a1, ["alice", "bob"]), enc.encode("x"), now));
  assert.equal(again.toDevice.length, 0);
  assert.equal(again.content.session, m1.session);
});

test("Olm channels are set up with claimed one-time keys, checked by signature", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.syncAll();
  const target = { user: "bob", device: "b1" };
  const first = w.m(a1).encryptToDevice(target, "call", new Uint8Array([1, 2]), w.now);
  assert.equal(first.type, "needs_claims");
  assert.deepEqual(first.devices, [target]);
  // A key with a forged signature opens nothing, and the device is not asked for again for ten minutes.
  const [claimed] = w.claim([target]);
  const forged = { ...claimed, key: { ...claimed.key, key: w.directory.get(b1).oneTime[0].key } };
  const failed = w.m(a1).receiveClaimedKeys([target], [forged], w.now);
  assert.equal(failed.length, 1);
  assert.equal(failed[0].error.code, "bad_signature");
  assert.deepEqual(w.m(a1).needsClaims([target], w.now), []);
  assert.deepEqual(w.m(a1).needsClaims([target], w.now + 10 * 60 * 1000), [target]);
  w.now += 10 * 60 * 1000;
  const out = w.ready(a1, (m, now) => m.encryptToDevice(target, "call", new Uint8Array([1, 2]), now));
  w.post(a1, [out]);
  const [r] = w.deliver(b1);
  assert.equal(r.ok.type, "custom");
  assert.equal(r.ok.kind, "call");
  assert.deepEqual([...r.ok.data], [1, 2]);
  assert.deepEqual(r.ok.from, { user: "alice", device: "a1" });
});

test("a redelivered to-device message is processed once", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.syncAll();
  const sent = w.ready(a1, (m, now) => m.encrypt("g", w.members(a1, ["bob"]), enc.encode("x"), now));
  const msg = delivered(sent.toDevice[0], { user: "alice", device: "a1" }, w.now);
  assert.equal(w.m(b1).receiveToDevice(msg, w.now).type, "room_key");
  assert.equal(w.m(b1).receiveToDevice(msg, w.now).type, "duplicate");
});

test("a message from an unknown device waits for its keys", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.sync(a1, ["bob"]);
  const c = "g";
  const sent = w.ready(a1, (m, now) => m.encrypt(c, w.members(a1, ["bob"]), enc.encode("early"), now));
  w.post(a1, sent.toDevice);
  // The message came before its key.
  assert.equal(w.read(b1, c, a1, sent.content).type, "waiting");
  const [r] = w.deliver(b1);
  assert.deepEqual(r.ok, { type: "deferred", user: "alice" });
  w.sync(b1, ["alice"]);
  const [retried] = w.m(b1).retryDeferred(w.now);
  assert.equal(retried.ok.type, "room_key");
  assert.equal(retried.ok.waiting, true, "the waiting message is named");
  assert.equal(w.readText(b1, c, a1, sent.content), "early");
});

test("sessions rotate when a member is removed, and the removed member cannot read later messages", () => {
  const w = new World();
  const [a1, b1, c1] = [w.add("alice", "a1"), w.add("bob", "b1"), w.add("carol", "c1")];
  w.syncAll();
  const g = "g:1";
  const before = w.send(a1, g, ["bob", "carol"], "all three");
  assert.equal(w.readText(c1, g, a1, before), "all three");
  // Carol is removed: Alice's machine learns the new member list.
  assert.equal(w.m(a1).updateMembers(g, w.members(a1, ["bob"])), true);
  const after = w.send(a1, g, ["bob"], "without carol");
  assert.notEqual(after.session, before.session, "a new session");
  assert.equal(w.readText(b1, g, a1, after), "without carol");
  assert.equal(w.read(c1, g, a1, after).type, "waiting", "carol never gets the key");
  assert.equal(w.inbox.get(c1), undefined);
  // encrypt alone (without updateMembers) rotates too when a device it was shared with is not listed.
  const next = w.send(b1, g, ["alice", "carol"], "b");
  const later = w.send(b1, g, ["alice"], "b again");
  assert.notEqual(later.session, next.session);
});

test("a room key whose send was not confirmed goes again with the next message, after a restart too", async () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.syncAll();
  const c = "d:1";
  // Encrypted with a room key for Bob, but the link died: the key never reached the server (the message neither).
  const lost = w.ready(a1, (m, now) => m.encrypt(c, w.members(a1, ["bob"]), enc.encode("lost"), now));
  assert.deepEqual(lost.toDevice.map((t) => t.device), ["b1"]);
  // The page reloads: the state as saved then.
  const key = await generateStoreKey();
  const restored = await Machine.fromBytes(await w.m(a1).toBytes(key), key);
  w.machines.get(a1).free();
  w.machines.set(a1, restored);
  // The outbox sends again with the same session: Bob gets its key again, and reads it.
  const again = w.ready(a1, (m, now) => m.encrypt(c, w.members(a1, ["bob"]), enc.encode("sent again"), now));
  assert.equal(again.content.session, lost.content.session, "the same session");
  assert.deepEqual(again.toDevice.map((t) => t.device), ["b1"], "the unconfirmed key goes again");
  w.post(a1, again.toDevice);
  w.deliverAll();
  assert.equal(w.readText(b1, c, a1, again.content), "sent again");
  // Confirmed (the server answered): not sent again, and the confirmation is saved.
  restored.confirmShared(c, again.content.session, again.toDevice);
  const saved = await Machine.fromBytes(await restored.toBytes(key), key);
  const next = saved.encrypt(c, saved.devicesOf(["bob"]), enc.encode("next"), w.now);
  assert.equal(next.type, "ready");
  assert.deepEqual(next.value.toDevice, [], "no key again once confirmed");
  assert.equal(w.readText(b1, c, a1, next.value.content), "next");
  saved.free();
  // A confirmation for an older session changes nothing, and an unconfirmed device still counts for rotation.
  restored.confirmShared(c, "not-the-session", w.members(a1, ["bob"]));
  const third = w.ready(a1, (m, now) => m.encrypt(c, w.members(a1, ["bob"]), enc.encode("third"), now));
  assert.deepEqual(third.toDevice, []);
});

test("a revoked device gets no new session", () => {
  const w = new World();
  const [a1, b1, b2] = [w.add("alice", "a1"), w.add("bob", "b1"), w.add("bob", "b2")];
  w.syncAll();
  const c = "dm";
  const first = w.send(a1, c, ["bob"], "to both");
  assert.equal(w.readText(b2, c, a1, first), "to both");
  w.revoke(b2);
  const changes = w.sync(a1, ["bob"]);
  assert.deepEqual(changes, [{ type: "removed", device: { user: "bob", device: "b2" } }]);
  const second = w.send(a1, c, ["bob"], "b1 only");
  assert.notEqual(second.session, first.session);
  assert.equal(w.readText(b1, c, a1, second), "b1 only");
});

test("sessions rotate after 100 messages and after a week", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.syncAll();
  const c = "g";
  const first = w.send(a1, c, ["bob"], "0");
  for (let i = 1; i < MAX_SESSION_MESSAGES; i++) assert.equal(w.send(a1, c, ["bob"], `${i}`).session, first.session);
  const hundredth = w.send(a1, c, ["bob"], "100");
  assert.notEqual(hundredth.session, first.session, "the 101st message uses a new session");
  assert.equal(w.readText(b1, c, a1, hundredth), "100");
  w.now += MAX_SESSION_AGE;
  const weekLater = w.send(a1, c, ["bob"], "a week later");
  assert.notEqual(weekLater.session, hundredth.session);
  assert.equal(w.readText(b1, c, a1, weekLater), "a week later");
});

test("new members read from the time they joined", () => {
  const w = new World();
  const [a1, b1, c1] = [w.add("alice", "a1"), w.add("bob", "b1"), w.add("carol", "c1")];
  w.syncAll();
  const g = "g";
  const early = w.send(a1, g, ["bob"], "before carol");
  const late = w.send(a1, g, ["bob", "carol"], "with carol");
  assert.equal(late.session, early.session, "adding a member does not rotate");
  assert.equal(w.readText(c1, g, a1, late), "with carol");
  throwsCode(() => w.read(c1, g, a1, early), "before_key", /predates/);
  assert.equal(w.readText(b1, g, a1, early), "before carol");
});

test("a later device of the same user takes over exported keys; a key for another session or sender is refused", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.syncAll();
  const c = "dm:1";
  const sent = w.send(a1, c, ["bob"], "read before the sign-out");
  assert.equal(w.readText(b1, c, a1, sent), "read before the sign-out");
  const exported = w.m(b1).exportKeys();
  assert.equal(exported.length, 1);
  // Bob signs in again: a new device, which has never been sent that key.
  const b2 = w.add("bob", "b2");
  w.syncAll();
  assert.equal(w.read(b2, c, a1, sent).type, "waiting");
  const results = w.m(b2).importKeys(exported);
  assert.equal(results[0].ok?.type, "room_key");
  assert.equal(results[0].ok.forwarded, true);
  assert.equal(w.readText(b2, c, a1, sent), "read before the sign-out");
  // An export edited to claim another session, or another sender key for a session held: refused, one by one.
  const [key] = exported;
  const wrong = w.m(b2).importKeys([{ ...key, session: "another" }, { ...key, senderKey: "AAAA" }]);
  assert.deepEqual(
    wrong.map((r) => r.error?.code),
    ["misbound", "misbound"],
  );
  assert.equal(w.readText(b2, c, a1, sent), "read before the sign-out", "the key held is unchanged");
});

test("a tampered ciphertext, a replay elsewhere and a replay under another id are refused", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.syncAll();
  const c = "g:1";
  const sent = w.send(a1, c, ["bob"], "once");
  const tampered = { ...sent, ciphertext: sent.ciphertext.slice() };
  tampered.ciphertext[20] ^= 1;
  assert.throws(() => w.read(b1, c, a1, tampered), (e) => e instanceof E2eError && ["megolm_decrypt", "malformed"].includes(e.code));
  assert.equal(w.readText(b1, c, a1, sent), "once");
  assert.equal(w.readText(b1, c, a1, sent), "once", "the same message again is fine");
  throwsCode(() => w.m(b1).decrypt(c, "another-id", "alice", sent), "replayed", /replays index 0/);
  throwsCode(() => w.m(b1).decrypt("g:2", idOf(sent), "alice", sent), "wrong_conversation");
  // Claimed by another sender: the session's key came from Alice's device.
  throwsCode(() => w.m(b1).decrypt(c, idOf(sent), "carol", { ...sent, device: "c1" }), "misbound");
  throwsCode(() => w.m(b1).decrypt(c, idOf(sent), "alice", { ...sent, algorithm: "aes" }), "unsupported");
});

test("Olm plaintexts bind sender and recipient", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1"), w.add("carol", "c1")];
  w.syncAll();
  // Carol's delivery claims Alice's device: the envelope's sender key is Alice's, not Carol's.
  const out = w.ready(a1, (m, now) => m.encryptToDevice({ user: "bob", device: "b1" }, "x", new Uint8Array(), now));
  const forged = delivered(out, { user: "carol", device: "c1" }, w.now);
  throwsCode(() => w.m(b1).receiveToDevice(forged, w.now), "misbound", /sender key/);
  // A payload of another kind is refused, and garbage is malformed, never a crash.
  throwsCode(() => w.m(b1).receiveToDevice({ ...forged, kind: "other" }, w.now), "unsupported");
  throwsCode(() => w.m(b1).receiveToDevice({ ...delivered(out, { user: "alice", device: "a1" }, w.now), id: "z", payload: new Uint8Array([0xc1]) }, w.now), "malformed");
});

test("changed device keys are rejected and the old ones kept; a forged master key is rejected", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.syncAll();
  const original = w.info(b1).keys;
  // The server shows other (validly self-signed) keys under bob's b1.
  const impostor = Machine.createWith(vz, "bob", "b1");
  w.directory.get(b1).identity = impostor.identityKeys();
  const changes = w.sync(a1, ["bob"]);
  assert.deepEqual(changes.map((c) => [c.type, c.device, c.reason]), [["rejected", "b1", "the device's identity keys changed: kept the old ones"]]);
  assert.equal(w.m(a1).state.tracked("bob", "b1").signingKey, original.signing_key);
  // A self-signature that does not verify.
  w.directory.get(b1).identity = { ...original, signature: original.signature.replace(/^./, (c) => (c === "A" ? "B" : "A")) };
  const bad = w.sync(a1, ["bob"]);
  assert.deepEqual(bad[0], { type: "rejected", user: "bob", device: "b1", reason: "the device's signature over its keys does not verify" });
  w.directory.get(b1).identity = original;
  // A master key whose self-signature does not verify is rejected, not pinned.
  w.createMaster(b1);
  const genuine = w.masters.get("bob");
  w.masters.set("bob", { key: genuine.key, signature: w.masters.get("bob").signature.replace(/^./, (c) => (c === "A" ? "B" : "A")) });
  const forgedMaster = w.sync(a1, ["bob"]);
  assert.ok(forgedMaster.some((c) => c.type === "rejected" && c.device === undefined));
  assert.equal(w.m(a1).masterKey("bob"), undefined);
  w.masters.set("bob", genuine);
  assert.deepEqual(w.sync(a1, ["bob"]).map((c) => c.type), ["signed"]);
  assert.equal(w.m(a1).masterKey("bob"), genuine.key);
  // Another master key later is adopted but reported.
  const other = Machine.createWith(vz, "bob", "b9");
  const otherMaster = other.createMasterKey().masterKey;
  w.masters.set("bob", otherMaster);
  const changed = w.sync(a1, ["bob"]);
  assert.ok(changed.some((c) => c.type === "master_key_changed" && c.old === genuine.key && c.new === otherMaster.key));
  // The old signature does not verify under the new key: b1 is unverified now.
  assert.equal(w.m(a1).deviceTrust("bob", "b1"), "unverified");
});

test("forwarded keys are accepted only from own devices the master key signed", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.createMaster(a1);
  w.syncAll();
  const c = "g";
  const old = w.send(b1, c, ["alice"], "history");
  assert.equal(w.readText(a1, c, b1, old), "history");
  // Alice's new device a2: unsigned, it gets no history.
  const a2 = w.add("alice", "a2");
  w.syncAll();
  throwsCode(() => w.m(a1).forwardKeys("a2", undefined, w.now), "refused");
  // Once a1 signs a2, a1 forwards; a2 reads the history.
  w.sign(a1, a2);
  w.syncAll();
  assert.equal(w.m(a2).deviceTrust("alice", "a1"), "verified");
  const forwarded = w.ready(a1, (m, now) => m.forwardKeys("a2", undefined, now));
  assert.ok(forwarded.length >= 1);
  w.post(a1, forwarded);
  const results = w.deliver(a2);
  assert.ok(results.every((r) => r.ok?.type === "room_key" && r.ok.forwarded));
  const read = w.read(a2, c, b1, old);
  assert.equal(read.type, "plain");
  assert.equal(read.forwarded, true);
  assert.equal(dec.decode(read.content), "history");
  // The master key goes to a2 too, so it can sign later devices.
  const master = w.ready(a1, (m, now) => m.shareMasterKey("a2", now));
  w.post(a1, [master]);
  assert.deepEqual(w.deliver(a2)[0].ok, { type: "master_key", from: { user: "alice", device: "a1" } });
  assert.equal(w.m(a2).hasMasterKey(), true);
});

test("a forward from an unverified own device or another user is refused", async () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.createMaster(a1);
  const a2 = w.add("alice", "a2");
  w.syncAll();
  // a2 is unverified: it sends a hand-made forwarded_room_key to a1.
  const { olmEncrypt } = await import("../../dist/e2e/olm.js");
  const g = new vz.GroupSession();
  const body = {
    type: "forwarded_room_key",
    conv: "g",
    session: g.sessionId,
    key: new vz.InboundGroupSession(g.sessionKey).exportAtFirstKnownIndex(),
    session_user: "bob",
    session_device: "b1",
    session_sender_key: w.info(b1).keys.agreement_key,
  };
  const fromA2 = w.ready(a2, (m, now) => {
    const c = m.needsClaims([{ user: "alice", device: "a1" }], now);
    return c.length ? { type: "needs_claims", devices: c } : { type: "ready", value: olmEncrypt(m.state, { user: "alice", device: "a1" }, body) };
  });
  w.post(a2, [fromA2]);
  const [r] = w.deliver(a1);
  assert.equal(r.error?.code, "refused", "unverified own device");
  // Bob (another user) sends the same.
  const fromBob = w.ready(b1, (m, now) => {
    const c = m.needsClaims([{ user: "alice", device: "a1" }], now);
    return c.length ? { type: "needs_claims", devices: c } : { type: "ready", value: olmEncrypt(m.state, { user: "alice", device: "a1" }, body) };
  });
  w.post(b1, [fromBob]);
  const [r2] = w.deliver(a1);
  assert.equal(r2.error?.code, "refused", "another user");
  // Nothing of that session was taken in.
  assert.equal(w.m(a1).decrypt("g", "m", "bob", { algorithm: "megolm.v1", device: "b1", session: g.sessionId, ciphertext: g.encrypt(enc.encode("x")) }).type, "waiting");
});

test("keys are topped up to the target and signed by the device", () => {
  const w = new World();
  const a1 = w.add("alice", "a1");
  const m = w.m(a1);
  const up = m.keysToUpload({ one_time: 10, fallback_unused: true });
  assert.equal(up.identity, undefined, "the identity was published");
  assert.equal(up.oneTimeKeys.length, ONE_TIME_KEY_TARGET - 10);
  assert.equal(up.fallbackKey, undefined);
  // Not yet marked published: the same keys again.
  assert.deepEqual(m.keysToUpload({ one_time: 10, fallback_unused: true }).oneTimeKeys, up.oneTimeKeys);
  const id = m.identityKeys();
  for (const key of up.oneTimeKeys) {
    assert.ok(vz.verifyEd25519(id.signing_key, enc.encode(`chatcore-one-time-key-v1\nalice\na1\n${key.id}\n${key.key}`), key.signature));
  }
  assert.ok(vz.verifyEd25519(id.signing_key, enc.encode(`chatcore-device-keys-v1\nalice\na1\nolm.v1\n${id.signing_key}\n${id.agreement_key}`), id.signature));
  m.markKeysPublished();
  const used = m.keysToUpload({ one_time: 50, fallback_unused: false });
  assert.equal(used.oneTimeKeys.length, 0);
  assert.ok(used.fallbackKey, "a used fallback key is replaced");
});

test("the master key signs itself and the device over the canonical texts", () => {
  const w = new World();
  const a1 = w.add("alice", "a1");
  const up = w.m(a1).createMasterKey();
  assert.ok(vz.verifyEd25519(up.masterKey.key, enc.encode(`chatcore-master-key-v1\nalice\n${up.masterKey.key}`), up.masterKey.signature));
  const id = w.m(a1).identityKeys();
  const text = `chatcore-device-signature-v1\nalice\na1\n${id.signing_key}\n${id.agreement_key}`;
  assert.ok(vz.verifyEd25519(up.masterKey.key, enc.encode(text), up.deviceSignature));
  throwsCode(() => w.m(a1).createMasterKey(), "refused");
  assert.equal(w.m(a1).deviceTrust("alice", "a1"), "verified");
});

test("safety numbers: the same on both sides, unchanged by new devices, as computed independently", async () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.createMaster(a1);
  w.createMaster(b1);
  w.syncAll();
  const ab = await w.m(a1).safetyNumber("bob");
  assert.equal(ab, await w.m(b1).safetyNumber("alice"));
  assert.match(ab, /^(\d{5} ){11}\d{5}$/);
  w.add("bob", "b2");
  w.syncAll();
  assert.equal(await w.m(a1).safetyNumber("bob"), ab);
  await assert.rejects(w.m(a1).safetyNumber("carol"), (e) => e.code === "refused");
  // The algorithm, with node:crypto: 5200 rounds of SHA-512, 6 chunks of 5 bytes mod 100000.
  const half = (user, master) => {
    const key = Buffer.from(decodeBase64(master));
    let h = createHash("sha512").update(Buffer.concat([Buffer.from([0, 1]), key, Buffer.from(user)])).digest();
    for (let i = 1; i < 5200; i++) h = createHash("sha512").update(Buffer.concat([h, key])).digest();
    let out = "";
    for (let c = 0; c < 30; c += 5) out += String(Number(h.readUIntBE(c, 5) % 100000)).padStart(5, "0");
    return out;
  };
  const keyA = encodeBase64(new Uint8Array(32).fill(1));
  const keyB = encodeBase64(new Uint8Array(32).fill(2));
  const [x, y] = [half("alice", keyA), half("bob", keyB)];
  const want = (x <= y ? x + y : y + x).match(/.{5}/g).join(" ");
  assert.equal(await safetyNumber("alice", keyA, "bob", keyB), want);
  assert.equal(await safetyNumber("bob", keyB, "alice", keyA), want);
});

test("the state survives a round trip and refuses a wrong key or tampering", async () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.createMaster(a1);
  w.syncAll();
  const c = "g";
  const first = w.send(a1, c, ["bob"], "before saving");
  assert.equal(w.readText(b1, c, a1, first), "before saving");
  const key = await generateStoreKey();
  const bytes = await w.m(b1).toBytes(key);
  assert.equal(dec.decode(bytes.slice(0, 4)), "CCEW");
  assert.ok(!Buffer.from(bytes).includes(Buffer.from("before saving")), "no plaintext at rest");
  // Restored: Bob still reads, and keeps his Olm sessions and replay memory.
  const restored = await Machine.fromBytes(bytes, key);
  w.machines.get(b1).free();
  w.machines.set(b1, restored);
  assert.equal(w.readText(b1, c, a1, first), "before saving");
  throwsCode(() => restored.decrypt(c, "other-id", "alice", first), "replayed");
  const second = w.send(a1, c, ["bob"], "after restoring");
  assert.equal(w.readText(b1, c, a1, second), "after restoring");
  // Alice's state with the master key and outbound session too.
  const aBytes = await w.m(a1).toBytes(key);
  const aRestored = await Machine.fromBytes(aBytes, key);
  assert.equal(aRestored.hasMasterKey(), true);
  assert.deepEqual(aRestored.identityKeys(), w.m(a1).identityKeys());
  const third = w.ready(a1, (m, now) => m.encrypt(c, w.members(a1, ["bob"]), enc.encode("x"), now));
  const thirdRestored = aRestored.encrypt(c, aRestored.devicesOf(["bob"]), enc.encode("x"), w.now);
  assert.equal(thirdRestored.value.content.session, third.content.session, "the outbound session survives");
  // Wrong key, tampered bytes, not a state, a newer format.
  await assert.rejects(Machine.fromBytes(bytes, await generateStoreKey()), (e) => e.code === "store_decrypt");
  const tampered = bytes.slice();
  tampered[tampered.length - 1] ^= 1;
  await assert.rejects(Machine.fromBytes(tampered, key), (e) => e.code === "store_decrypt");
  await assert.rejects(Machine.fromBytes(new Uint8Array([1, 2, 3]), key), (e) => e.code === "store_format");
  const newer = bytes.slice();
  newer[4] = 9;
  await assert.rejects(Machine.fromBytes(newer, key), (e) => e.code === "store_too_new");
});

test("stores: memory and an atomically replaced file", async () => {
  const mem = new MemoryStore();
  assert.equal(await mem.load(), null);
  await mem.save(new Uint8Array([1, 2]));
  assert.deepEqual([...(await mem.load())], [1, 2]);
  const dir = mkdtempSync(join(tmpdir(), "e2e-store-"));
  try {
    const file = new FileStore(join(dir, "state"));
    assert.equal(await file.load(), null);
    await file.save(new Uint8Array([3]));
    await file.save(new Uint8Array([4, 5]));
    assert.deepEqual([...(await file.load())], [4, 5]);
    assert.ok(!existsSync(join(dir, "state.tmp")), "the temporary file was renamed");
    // Two saves at once (two savers of one file) both land; nothing is left beside the state.
    await Promise.all([file.save(new Uint8Array([6])), file.save(new Uint8Array([7]))]);
    assert.ok([6, 7].includes((await file.load())[0]));
    assert.deepEqual(readdirSync(dir), ["state"], "no temporary file is left");
    await assert.rejects(new FileStore(join(dir, "missing", "state")).save(new Uint8Array([1])));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("formats: the payloads are the Rust client's, byte for byte", () => {
  const w = new World();
  const [a1, b1] = [w.add("alice", "a1"), w.add("bob", "b1")];
  w.syncAll();
  const c = "g:1";
  const sent = w.ready(a1, (m, now) => m.encrypt(c, w.members(a1, ["bob"]), new Uint8Array([7, 8]), now));
  // The to-device envelope: {type, sender_key, message_type, body: bin}, in that order.
  const envelope = decode(sent.toDevice[0].payload);
  assert.deepEqual(Object.keys(envelope), ["type", "sender_key", "message_type", "body"]);
  assert.equal(envelope.type, "olm.v1");
  assert.equal(envelope.sender_key, w.info(a1).keys.agreement_key);
  assert.equal(envelope.message_type, 0);
  assert.ok(envelope.body instanceof Uint8Array);
  // The Olm plaintext inside, as Bob decrypts it.
  const session = vz.Account.fromPickle(w.m(b1).state.account.pickle(new Uint8Array(32)), new Uint8Array(32));
  const inbound = session.createInboundSession(envelope.sender_key, 0, envelope.body);
  const plain = decode(inbound.plaintext);
  assert.deepEqual(Object.keys(plain), ["sender", "sender_device", "sender_key", "recipient", "recipient_device", "recipient_key", "type", "conv", "session", "key"]);
  assert.equal(plain.type, "room_key");
  assert.equal(plain.conv, c);
  // The Megolm plaintext: fixmap of 3, "type": "content", "conv": "g:1", "content": bin [7, 8] (chatcore-client's megolm.rs test).
  const ig = new vz.InboundGroupSession(plain.key);
  const expected = Buffer.concat([
    Buffer.from([0x83, 0xa4]), Buffer.from("type"), Buffer.from([0xa7]), Buffer.from("content"),
    Buffer.from([0xa4]), Buffer.from("conv"), Buffer.from([0xa3]), Buffer.from("g:1"),
    Buffer.from([0xa7]), Buffer.from("content"), Buffer.from([0xc4, 2, 7, 8]),
  ]);
  assert.deepEqual(Buffer.from(ig.decrypt(sent.content.ciphertext).plaintext), expected);
  assert.equal(sent.content.algorithm, "megolm.v1");
  assert.equal(sent.content.device, "a1");
  // A custom payload's data is bin.
  assert.ok(Buffer.from(encode({ data: new Uint8Array([1, 2, 3]) })).includes(Buffer.from([0xc4, 3, 1, 2, 3])));
});

test("base64 is unpadded standard and strict", () => {
  for (let n = 0; n < 10; n++) {
    const bytes = new Uint8Array(n).map((_, i) => i * 37 + 200);
    const text = encodeBase64(bytes);
    assert.equal(text, Buffer.from(bytes).toString("base64").replace(/=+$/, ""));
    assert.deepEqual([...decodeBase64(text)], [...bytes]);
  }
  assert.equal(decodeBase64("AB=="), null);
  assert.equal(decodeBase64("A"), null);
  assert.equal(decodeBase64("AB"), null, "dangling bits");
  assert.equal(decodeBase64("a-b_"), null);
});
