// SecureChat (src/e2e/secure.ts) over a stand-in ChatClient, for what a real
// server cannot show deterministically: to-device payloads are acknowledged
// only after the state is saved (and not at all when the save fails), a
// message that arrives before its key is `waiting` and comes again as
// `decrypted`, nothing is sent for a conversation that is not encrypted, and
// a store that does not open is an error, not a fresh start.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Machine, MemoryStore, SecureChat, encodeBase64, generateStoreKey, E2eError } from "../../dist/e2e/index.js";
import { loadVodozemac } from "../../dist/vodozemac.js";

const vz = await loadVodozemac();
const enc = new TextEncoder();

/** A ChatClient stand-in: a key directory, the calls made, and pushes emitted by hand. */
function fakeClient(user, device) {
  const handlers = new Map();
  const directory = new Map(); // user -> { devices: Map(device -> DeviceKeysInfo), master }
  const calls = [];
  const entry = (u) => {
    if (!directory.has(u)) directory.set(u, { devices: new Map(), master: undefined });
    return directory.get(u);
  };
  return {
    calls,
    directory,
    publish(info) {
      entry(info.user).devices.set(info.device, info);
    },
    session: { user, device, token: "t", keys: { one_time: 0, fallback_unused: false } },
    on(type, h) {
      handlers.set(type, h);
      return () => handlers.delete(type);
    },
    emit(type, payload) {
      handlers.get(type)?.(payload);
    },
    async queryKeysAndMasters(users) {
      calls.push(["query", users]);
      const devices = users.flatMap((u) => [...(directory.get(u)?.devices.values() ?? [])]);
      const masterKeys = users.filter((u) => directory.get(u)?.master).map((u) => ({ user: u, master_key: directory.get(u).master }));
      return { devices, masterKeys };
    },
    async uploadKeys(keys) {
      calls.push(["upload", keys]);
      const e = entry(user);
      const d = e.devices.get(device) ?? { user, device, keys: keys.identity };
      for (const s of keys.signatures ?? []) if (s.device === device) d.master_signature = s.signature;
      e.devices.set(device, d);
      if (keys.masterKey) e.master = keys.masterKey;
      this.oneTimeKeys = [...(this.oneTimeKeys ?? []), ...(keys.oneTimeKeys ?? [])];
      return { oneTime: 50, fallbackUnused: true };
    },
    async ackToDevice(acks) {
      // A save still held when an acknowledgement leaves is the bug this stand-in catches.
      if (this.store?.waiting.length) calls.push(["ack before save", acks.map((a) => a.id)]);
      calls.push(["ack", acks.map((a) => a.id)]);
    },
    async getConversation(conv) {
      calls.push(["get_conversation", conv]);
      return { conv, encrypted: conv.startsWith("enc"), members: [{ user }, { user: "bob" }] };
    },
    async send() {
      calls.push(["send"]);
      throw new Error("nothing may be sent here");
    },
  };
}

/** A store whose saves wait for `release()` while `hold` is set, and fail while `failing` is set. */
class GatedStore extends MemoryStore {
  hold = false;
  failing = false;
  saves = 0;
  waiting = [];
  held = new Promise((r) => (this.onHeld = r));
  async save(bytes) {
    if (this.hold) {
      const go = new Promise((r) => this.waiting.push(r));
      this.onHeld();
      await go;
    }
    if (this.failing) throw new Error("disk full");
    this.saves += 1;
    return super.save(bytes);
  }
  release() {
    this.hold = false;
    for (const r of this.waiting.splice(0)) r();
  }
}

/** Alice's SecureChat on a fake client, and Bob's machine with an Olm channel to her. */
async function setup() {
  const client = fakeClient("alice", "a1");
  const store = new GatedStore();
  client.store = store;
  const secure = new SecureChat(client, { store, key: await generateStoreKey(), now: () => 1_700_000_000_000 });
  const events = { custom: [], message: [], decrypted: [], error: [] };
  for (const type of Object.keys(events)) secure.on(type, (e) => events[type].push(e));
  await secure.start();
  const bob = Machine.createWith(vz, "bob", "b1");
  client.publish({ user: "bob", device: "b1", keys: bob.identityKeys() });
  bob.receiveDeviceKeys({ user: "alice", devices: [...client.directory.get("alice").devices.values()] });
  const alice = { user: "alice", device: "a1" };
  const claim = bob.receiveClaimedKeys([alice], [{ user: "alice", device: "a1", key: client.oneTimeKeys[0] }], 0);
  assert.deepEqual(claim, []);
  let n = 0;
  const toDevice = (out) => ({ id: out.id, from_user: "bob", from_device: "b1", kind: out.kind, payload: encodeBase64(out.payload), ts: 1 + n++ });
  return { client, store, secure, events, bob, alice, toDevice };
}

test("start publishes the identity, one-time keys and a new master key, saved before the upload", async () => {
  const { client, store, secure } = await setup();
  const upload = client.calls.find((c) => c[0] === "upload")[1];
  assert.ok(upload.identity && upload.masterKey && upload.oneTimeKeys.length === 50 && upload.fallbackKey);
  assert.equal(upload.signatures[0].device, "a1");
  assert.ok(store.saves >= 2);
  assert.equal(secure.machine.hasMasterKey(), true);
  assert.equal(secure.deviceTrust("alice", "a1"), "verified");
});

test("to-device payloads are acknowledged only after the state is saved, and not when the save fails", async () => {
  const { client, store, secure, events, bob, alice, toDevice } = await setup();
  const first = bob.encryptToDevice(alice, "call", new Uint8Array([1]), 0).value;
  store.hold = true;
  client.emit("todevice", [toDevice(first)]);
  // Processed (Bob's keys queried, the payload read), but the save waits: no acknowledgement yet.
  await store.held;
  assert.ok(!client.calls.some((c) => c[0] === "ack"), "acknowledged before the save");
  store.release();
  await secure.idle();
  assert.deepEqual(client.calls.filter((c) => c[0].startsWith("ack")), [["ack", [first.id]]]);
  assert.equal(events.custom.length, 1);
  assert.deepEqual(events.custom[0].from, { user: "bob", device: "b1" });

  // A save that fails: the payload is processed but not acknowledged (the server delivers it again), and said so.
  const second = bob.encryptToDevice(alice, "call", new Uint8Array([2]), 0).value;
  store.failing = true;
  client.emit("todevice", [toDevice(second)]);
  await secure.idle();
  assert.equal(client.calls.filter((c) => c[0] === "ack").length, 1, "no acknowledgement without a save");
  assert.ok(events.error.some((e) => e.context === "to-device payloads not processed" && /disk full/.test(e.error.message)));
  // A refused payload (forged) is acknowledged once saved, and reported.
  store.failing = false;
  const forged = { ...toDevice(bob.encryptToDevice(alice, "call", new Uint8Array([3]), 0).value), payload: encodeBase64(new Uint8Array([0x80])) };
  client.emit("todevice", [forged]);
  await secure.idle();
  assert.deepEqual(client.calls.filter((c) => c[0] === "ack").at(-1), ["ack", [forged.id]]);
  assert.ok(events.error.some((e) => e.context === "a to-device payload was refused" && e.error.code === "malformed"));
});

test("a message that arrives before its key waits, then comes as decrypted", async () => {
  const { client, secure, events, bob, alice, toDevice } = await setup();
  bob.receiveDeviceKeys({ user: "alice", devices: [...client.directory.get("alice").devices.values()] });
  const sent = bob.encrypt("enc:1", [alice], enc.encode("early bird"), 0).value;
  const content = sent.content;
  const message = {
    id: "m1",
    conv: "enc:1",
    seq: 1,
    from: "bob",
    client_id: "c1",
    ts: 1,
    content: { kind: "encrypted", algorithm: content.algorithm, device: content.device, session: content.session, ciphertext: encodeBase64(content.ciphertext) },
  };
  client.emit("message", { message, source: "push" });
  await secure.idle();
  assert.equal(events.message.length, 1);
  assert.equal(events.message[0].body.type, "waiting");
  assert.equal(events.message[0].text, undefined);
  client.emit("todevice", sent.toDevice.map(toDevice));
  await secure.idle();
  assert.equal(events.decrypted.length, 1);
  assert.equal(events.decrypted[0].text, "early bird");
  assert.equal(events.decrypted[0].body.sender.device, "b1");
  // A tampered copy under another id is undecryptable, with a reason; nothing crashes.
  const tampered = { ...message, id: "m2", content: { ...message.content, ciphertext: message.content.ciphertext.slice(0, -4) + "AAAA" } };
  const read = secure.decryptMessage(tampered);
  assert.equal(read.body.type, "undecryptable");
  assert.ok(read.body.reason.length > 0);
  const replayed = secure.decryptMessage({ ...message, id: "m3" });
  assert.equal(replayed.body.type, "undecryptable");
  assert.equal(replayed.body.code, "replayed");
});

test("nothing is sent for a conversation that is not encrypted", async () => {
  const { client, secure } = await setup();
  await assert.rejects(secure.sendEncrypted("plain:1", "secret"), (e) => e instanceof E2eError && e.code === "refused");
  assert.ok(!client.calls.some((c) => c[0] === "send"));
});

test("a saved state that does not open is an error, and nothing is overwritten", async () => {
  const store = new MemoryStore();
  await store.save(new Uint8Array([0x43, 0x43, 0x45, 0x57, 1, ...new Uint8Array(40)]));
  const client = fakeClient("alice", "a1");
  const secure = new SecureChat(client, { store, key: await generateStoreKey() });
  await assert.rejects(secure.start(), (e) => e.code === "store_decrypt");
  assert.equal((await store.load()).length, 45);
  assert.ok(!client.calls.some((c) => c[0] === "upload"));
  // Not signed in: refused.
  const nobody = { ...fakeClient("x", "y"), session: null };
  await assert.rejects(new SecureChat(nobody, { store: new MemoryStore(), key: await generateStoreKey() }).start(), (e) => e.code === "refused");
});

test("a start whose upload failed is retried with the same keys, saved before the upload", async () => {
  const client = fakeClient("alice", "a1");
  const upload = client.uploadKeys;
  let fail = true;
  client.uploadKeys = async function (keys) {
    client.calls.push(["upload attempt", keys]);
    if (fail) throw new Error("connection lost");
    return upload.call(this, keys);
  };
  const secure = new SecureChat(client, { store: new MemoryStore(), key: await generateStoreKey() });
  await assert.rejects(secure.start(), /connection lost/);
  fail = false;
  await secure.start();
  const [first, second] = client.calls.filter((c) => c[0] === "upload attempt").map((c) => c[1]);
  assert.equal(second.identity.signing_key, first.identity.signing_key, "the same identity");
  assert.equal(second.masterKey.key, first.masterKey.key, "the same master key");
  assert.deepEqual(second.oneTimeKeys, first.oneTimeKeys, "the same one-time keys");
});
