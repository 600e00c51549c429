// The key directory (end-to-end encryption, first part) against a real chatd:
// keys signed with Ed25519 in Node (node:crypto) over the canonical texts of
// PROTOCOL.md "Key directory", uploaded, queried and claimed once; a forged
// signature refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign, randomBytes } from "node:crypto";
import { ChatClient, ChatError, msgpackCodec } from "../../dist/index.js";
import { startChatd } from "../support/chatd.mjs";
import { newAccount, nextEvent, collect, until } from "../support/util.mjs";

let chatd;
const clients = [];

before(async () => {
  chatd = await startChatd();
});

after(async () => {
  for (const c of clients) c.close();
  await chatd?.stop();
});

async function person(name) {
  const account = newAccount(name);
  const c = new ChatClient({ url: chatd.wsUrl, codec: msgpackCodec, requestTimeoutMs: 10_000 });
  clients.push(c);
  const s = await c.register(account);
  return { c, user: s.user, device: s.device, token: s.token, account };
}

/** The same device again on a new connection (a reload): resumes with its token. */
async function reconnect(p) {
  p.c.close();
  const c = new ChatClient({ url: chatd.wsUrl, codec: msgpackCodec, requestTimeoutMs: 10_000 });
  clients.push(c);
  return { ...p, c };
}

const b64 = (buf) => Buffer.from(buf).toString("base64").replace(/=+$/, "");
const code = (p) => p.then(() => "ok", (e) => (e instanceof ChatError ? e.code : String(e)));

/** A device's Ed25519 key pair and its signed identity. */
function identityOf(p) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const signing = b64(Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url"));
  const agreement = b64(randomBytes(32));
  const text = `chatcore-device-keys-v1\n${p.user}\n${p.device}\nolm.v1\n${signing}\n${agreement}`;
  const signature = b64(sign(null, Buffer.from(text), privateKey));
  return { privateKey, identity: { algorithm: "olm.v1", signing_key: signing, agreement_key: agreement, signature } };
}

function oneTimeKey(p, keys, id) {
  const key = b64(randomBytes(32));
  const text = `chatcore-one-time-key-v1\n${p.user}\n${p.device}\n${id}\n${key}`;
  return { id, key, signature: b64(sign(null, Buffer.from(text), keys.privateKey)) };
}

test("keys signed by the device are uploaded, shown, and claimed once, then the fallback", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const keys = identityOf(alice);
  const counts = await alice.c.uploadKeys({
    identity: keys.identity,
    oneTimeKeys: [oneTimeKey(alice, keys, "k1"), oneTimeKey(alice, keys, "k2")],
    fallbackKey: oneTimeKey(alice, keys, "fb"),
  });
  assert.deepEqual(counts, { oneTime: 2, fallbackUnused: true });

  const [shown] = await bob.c.queryKeys([alice.user]);
  assert.equal(shown.device, alice.device);
  assert.deepEqual(shown.keys, keys.identity);

  const claims = [];
  for (let i = 0; i < 3; i++) claims.push(...(await bob.c.claimKeys([{ user: alice.user, device: alice.device }])));
  assert.deepEqual(
    claims.map((c) => [c.key.id, c.fallback === true]).sort(),
    [["fb", true], ["k1", false], ["k2", false]],
    "each one-time key once, then the fallback",
  );
  assert.deepEqual(await alice.c.uploadKeys({}), { oneTime: 0, fallbackUnused: false });

  // A key signed by someone else's key is refused; so is another identity.
  const other = identityOf(alice);
  assert.equal(await code(alice.c.uploadKeys({ oneTimeKeys: [oneTimeKey(alice, other, "k3")] })), "invalid_argument");
  assert.equal(await code(alice.c.uploadKeys({ identity: other.identity })), "conflict");
});

/** An Ed25519 key pair as unpadded base64 of its public key. */
function ed25519() {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  return { privateKey, key: b64(Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url")) };
}

test("a master key signed in Node vouches for the devices it signs", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const keys = identityOf(alice);
  const master = ed25519();
  const masterKey = {
    key: master.key,
    signature: b64(sign(null, Buffer.from(`chatcore-master-key-v1\n${alice.user}\n${master.key}`), master.privateKey)),
  };
  const vouch = (by) => ({
    device: alice.device,
    signature: b64(
      sign(
        null,
        Buffer.from(
          `chatcore-device-signature-v1\n${alice.user}\n${alice.device}\n${keys.identity.signing_key}\n${keys.identity.agreement_key}`,
        ),
        by.privateKey,
      ),
    ),
  });
  // Signed by another key than the master key: refused, nothing stored.
  assert.equal(
    await code(alice.c.uploadKeys({ identity: keys.identity, masterKey, signatures: [vouch(ed25519())] })),
    "invalid_argument",
  );
  let shown = await bob.c.queryKeysAndMasters([alice.user]);
  assert.deepEqual(shown.masterKeys, [], "nothing of the refused upload");
  // The first device uploads its identity, the master key and its signature at once.
  await alice.c.uploadKeys({ identity: keys.identity, masterKey, signatures: [vouch(master)] });
  shown = await bob.c.queryKeysAndMasters([alice.user]);
  assert.deepEqual(shown.masterKeys, [{ user: alice.user, master_key: masterKey }]);
  assert.equal(shown.devices.length, 1);
  assert.equal(shown.devices[0].master_signature, vouch(master).signature, "the device is verified");
});

test("to-device payloads arrive live and after a reconnect until acknowledged", async () => {
  const alice = await person("alice");
  let bob = await person("bob");
  await bob.c.uploadKeys({ identity: identityOf(bob).identity });
  const payload = (text) => b64(Buffer.from(text));
  const live = nextEvent(bob.c, "todevice");
  const sent = await alice.c.sendToDevice("olm.v1", [{ user: bob.user, device: bob.device, id: "p1", payload: payload("first") }]);
  assert.deepEqual(sent, { queued: 1, undelivered: [] });
  const [first] = await live;
  assert.deepEqual(
    [first.id, first.from_user, first.from_device, first.kind, Buffer.from(first.payload, "base64").toString()],
    ["p1", alice.user, alice.device, "olm.v1", "first"],
  );
  // Unknown devices are answered, not queued.
  const none = await alice.c.sendToDevice("olm.v1", [{ user: bob.user, device: "no-such-device", id: "p2", payload: payload("x") }]);
  assert.deepEqual(none, { queued: 0, undelivered: [{ user: bob.user, device: "no-such-device", reason: "unknown" }] });

  // Not acknowledged: it comes again after a reconnect, with what arrived meanwhile.
  bob = await reconnect(bob);
  await alice.c.sendToDevice("olm.v1", [{ user: bob.user, device: bob.device, id: "p3", payload: payload("while away") }]);
  const got = collect(bob.c, "todevice");
  await bob.c.resume(bob.token);
  await until(() => got.flat().length >= 2, 10_000, "the waiting payloads");
  assert.deepEqual(got.flat().map((m) => m.id), ["p1", "p3"], "oldest first");
  await bob.c.ackToDevice(got.flat().map((m) => ({ from_device: m.from_device, id: m.id })));
  bob = await reconnect(bob);
  const again = collect(bob.c, "todevice");
  await bob.c.resume(bob.token);
  await bob.c.ping();
  assert.deepEqual(again, [], "acknowledged payloads never come again");
});

test("an encrypted conversation takes ciphertext and refuses plain text", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const conv = await alice.c.openDirect(bob.user, { encrypted: true });
  assert.equal(conv.encrypted, true);
  assert.equal(await code(alice.c.send({ conv: conv.conv }, "plain text")), "invalid_argument");
  const content = {
    kind: "encrypted",
    algorithm: "megolm.v1",
    device: alice.device,
    session: b64(randomBytes(32)),
    ciphertext: b64(randomBytes(120)),
  };
  const arrived = nextEvent(bob.c, "message", ({ message }) => message.content.kind === "encrypted");
  await alice.c.send({ conv: conv.conv }, content);
  const { message } = await arrived;
  assert.deepEqual(message.content, content, "delivered as sent");
  // Another device's name in the envelope is refused.
  assert.equal(await code(alice.c.send({ conv: conv.conv }, { ...content, device: bob.device })), "invalid_argument");
});

test("a key backup is reached by the user's other devices alone, pages its keys, and goes stale when replaced", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  assert.equal(await alice.c.getBackup(), null, "no backup yet");
  const v1 = await alice.c.createBackup("chatcore.backup.v1", "sealed");
  assert.equal(v1.count, 0);
  const keys = Array.from({ length: 5 }, (_, i) => ({
    conv: `g:${i % 2}`,
    session: `s${i}`,
    first_index: i,
    forwarded: 0,
    verified: false,
    data: b64(randomBytes(48)),
  }));
  const stored = await alice.c.putBackupKeys(v1.version, keys);
  assert.equal(stored.count, 5);
  assert.notEqual(stored.etag, v1.etag);

  // Alice's second device (a fresh sign-in) reads them back, page by page, in order.
  const laptop = new ChatClient({ url: chatd.wsUrl, codec: msgpackCodec, requestTimeoutMs: 10_000 });
  clients.push(laptop);
  await laptop.login({ login: alice.account.username, password: alice.account.password, device: "laptop" });
  const found = await laptop.getBackup();
  assert.equal(found?.version, v1.version);
  const read = [];
  let after;
  for (;;) {
    const page = await laptop.getBackupKeys(v1.version, after, 2);
    read.push(...page.keys);
    if (!page.more) break;
    after = { conv: page.keys.at(-1).conv, session: page.keys.at(-1).session };
  }
  const order = (k) => `${k.conv}/${k.session}`;
  assert.deepEqual(read.map(order), keys.map(order).sort());
  assert.deepEqual(read.find((k) => k.session === "s3"), keys[3]);

  // Bob reaches none of it.
  assert.equal(await bob.c.getBackup(), null);
  assert.equal(await code(bob.c.getBackupKeys(v1.version)), "not_found");
  assert.equal(await code(bob.c.putBackupKeys(v1.version, keys.slice(0, 1))), "not_found");

  // The laptop makes a new backup: the phone's version is stale.
  const v2 = await laptop.createBackup("chatcore.backup.v1", "sealed again");
  assert.equal(await code(alice.c.putBackupKeys(v1.version, keys.slice(0, 1))), "not_found");
  assert.equal((await alice.c.getBackup())?.version, v2.version);
  assert.equal((await alice.c.getBackupKeys(v2.version)).keys.length, 0);
  assert.equal((await alice.c.updateBackup(v2.version, "resealed")).auth_data, "resealed");
  await alice.c.deleteBackup(v2.version);
  assert.equal(await laptop.getBackup(), null);
});
