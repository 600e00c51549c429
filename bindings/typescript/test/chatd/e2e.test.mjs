// End-to-end encrypted conversations through a real chatd with the
// TypeScript SecureChat (src/e2e/secure.ts), as chatd/tests/e2e/encrypted.rs
// runs them with the Rust SecureClient: two users with two devices each,
// direct and group; a removed member and a revoked device read nothing sent
// afterwards; a second device verified by the first reads the earlier history
// through forwarded keys, an unverified one does not; the state survives a
// restart of a device; a fresh device that no other device verified restores
// the history from the encrypted key backup with the recovery key, and signs
// itself with the master key sealed in it. Every wait is for an event,
// bounded by a timeout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore, MemoryStore, RecoveryKey, SecureChat, generateStoreKey } from "../../dist/e2e/index.js";
import { decryptFile, encryptFile } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { newAccount } from "../support/util.mjs";

const ctx = useChatd();
const T = 15_000;

/** Starts the secure layer of a client about to sign in with `signIn`; records what the device reads. */
async function secureDevice(name, signIn, options = {}) {
  const c = ctx.client({ reconnect: false, ...(options.client ?? {}) });
  const secure = new SecureChat(c, { store: options.store ?? new MemoryStore(), key: options.key ?? (await generateStoreKey()) });
  const dev = { name, c, secure, read: [], errors: [], waiters: new Set(), devices: [] };
  const seen = (m) => {
    if (m.text === undefined) return;
    dev.read.push({ conv: m.message.conv, text: m.text, body: m.body });
    for (const w of [...dev.waiters]) w();
  };
  secure.on("message", seen);
  secure.on("decrypted", seen);
  secure.on("error", (e) => dev.errors.push(`${e.context}: ${e.error.message}`));
  secure.on("devices", (changes) => {
    dev.devices.push(...changes);
    for (const w of [...dev.waiters]) w();
  });
  const session = await signIn(c);
  await secure.start();
  return Object.assign(dev, { user: session.user, device: session.device, token: session.token });
}

async function firstDevice(name) {
  const account = newAccount(name);
  const dev = await secureDevice(`${name}1`, (c) => c.register(account));
  return Object.assign(dev, { account });
}

async function otherDevice(first, name, options) {
  const { username, password } = first.account;
  const dev = await secureDevice(name, (c) => c.login({ login: username, password, device: name }), options);
  return Object.assign(dev, { account: first.account });
}

async function contacts(a, b) {
  await a.c.contact(b.user, "request");
  await b.c.contact(a.user, "request");
}

/** Resolves once `dev` read `text` in `conv` (live, or once its key came). */
function reads(dev, conv, text) {
  return until(dev, () => dev.read.some((r) => r.conv === conv && r.text === text), `read ${JSON.stringify(text)}`);
}

/** Resolves once `dev` saw a device change that satisfies `pred`. */
function seesChange(dev, pred) {
  return until(dev, () => dev.devices.some(pred), "saw the device change");
}

/** Resolves once `has()` holds, checked at each event of `dev`. */
function until(dev, has, what) {
  if (has()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      dev.waiters.delete(check);
      reject(new Error(`${dev.name} never ${what}; errors: ${dev.errors.join("; ")}`));
    }, T);
    const check = () => {
      if (!has()) return;
      clearTimeout(timer);
      dev.waiters.delete(check);
      resolve();
    };
    dev.waiters.add(check);
  });
}

/** The whole history of `conv` as `dev` reads it. */
async function history(dev, conv) {
  const { messages, more } = await dev.secure.history(conv, { limit: 200 });
  assert.equal(more, false);
  return messages;
}

const texts = (page) => page.filter((m) => m.body.type === "text").map((m) => m.text);

test("two users with two devices each chat encrypted, direct and in a group", async () => {
  const alice1 = await firstDevice("alice");
  const alice2 = await otherDevice(alice1, "alice2");
  const bob1 = await firstDevice("bob");
  const bob2 = await otherDevice(bob1, "bob2");
  const carol1 = await firstDevice("carol");
  await contacts(alice1, bob1);
  await contacts(alice1, carol1);

  const dm = (await alice1.c.openDirect(bob1.user, { encrypted: true })).conv;
  const sent = await alice1.secure.sendEncrypted(dm, "zebra-dm-1 alice1 to bob");
  assert.equal(sent.message.content.kind, "encrypted", "the server got ciphertext");
  assert.ok(!JSON.stringify(sent.message.content).includes("zebra"));
  await Promise.all([alice2, bob1, bob2].map((d) => reads(d, dm, "zebra-dm-1 alice1 to bob")));
  await bob2.secure.sendEncrypted(dm, "zebra-dm-2 bob2 to alice");
  await Promise.all([alice1, alice2, bob1].map((d) => reads(d, dm, "zebra-dm-2 bob2 to alice")));
  await alice2.secure.sendEncrypted(dm, "zebra-dm-3 alice2 answers");
  await Promise.all([alice1, bob1, bob2].map((d) => reads(d, dm, "zebra-dm-3 alice2 answers")));
  // The history reads back on every device, the sender's own included.
  assert.deepEqual(texts(await history(alice1, dm)), ["zebra-dm-1 alice1 to bob", "zebra-dm-2 bob2 to alice", "zebra-dm-3 alice2 answers"]);

  const group = (await alice1.c.createGroup({ title: "Secret tea", members: [bob1.user, carol1.user], encrypted: true })).conv;
  await alice1.secure.sendEncrypted(group, "zebra-group-1 alice1 to all");
  await Promise.all([alice2, bob1, bob2, carol1].map((d) => reads(d, group, "zebra-group-1 alice1 to all")));
  await carol1.secure.sendEncrypted(group, "zebra-group-2 carol1 to all");
  await Promise.all([alice1, alice2, bob1, bob2].map((d) => reads(d, group, "zebra-group-2 carol1 to all")));

  // Nothing is sent in clear by fallback: a conversation that is not encrypted is refused.
  const plain = (await bob1.c.openDirect(alice1.user, {})).conv;
  assert.equal(plain, dm, "the direct conversation is the encrypted one");
  const clearGroup = (await alice1.c.createGroup({ title: "Open", members: [bob1.user] })).conv;
  await assert.rejects(alice1.secure.sendEncrypted(clearGroup, "zebra-never"), (e) => e.code === "refused" && /not encrypted/.test(e.message));
  assert.ok(!(await alice1.c.history(clearGroup)).messages.some((m) => JSON.stringify(m).includes("zebra-never")));

  // Safety numbers: the same on both sides and on the other own device.
  const ab = await alice1.secure.safetyNumber(bob1.user);
  assert.match(ab, /^(\d{5} ){11}\d{5}$/);
  assert.equal(await bob1.secure.safetyNumber(alice1.user), ab);
  assert.equal(await alice2.secure.safetyNumber(bob1.user), ab);
  for (const d of [alice1, alice2, bob1, bob2, carol1]) {
    assert.deepEqual(d.errors, [], d.name);
  }
});

test("a file in an encrypted conversation is sealed before upload and its key travels only in the ciphertext", async () => {
  const dora = await firstDevice("dora");
  const eve = await firstDevice("eve");
  await contacts(dora, eve);
  const dm = (await dora.c.openDirect(eve.user, { encrypted: true })).conv;
  const bytes = new TextEncoder().encode("the plaintext bytes of a voice note ".repeat(100));
  const { ciphertext, encryption } = await encryptFile(bytes);
  const up = await dora.c.upload(ciphertext);
  assert.equal(up.sha256, encryption.sha256, "the server stored the ciphertext");
  const content = { kind: "voice", media: up.id, mime: "audio/webm", duration_ms: 1500, waveform: [0, 90, 255, 12], size: bytes.length, encryption };
  const arrives = new Promise((resolve) => eve.secure.on("message", (m) => m.body.type === "media" && resolve(m)));
  const onServer = new Promise((resolve) => eve.c.on("message", (e) => e.message.conv === dm && resolve(e.message)));
  // Refused before anything is sent: a file without its key, one not in the envelope it makes.
  await assert.rejects(dora.secure.sendMedia(dm, { ...content, encryption: undefined }), /must be encrypted/);
  await dora.secure.sendMedia(dm, content);
  const got = await arrives;
  assert.deepEqual(got.body.content, content);
  assert.deepEqual(got.message.media, [up.id], "listed in the envelope");
  const raw = await onServer;
  assert.equal(raw.content.kind, "encrypted", "the server saw ciphertext only");
  assert.ok(!JSON.stringify(raw).includes(encryption.key), "no key in what the server relayed");
  const downloaded = await eve.c.download(up.id);
  assert.deepEqual(await decryptFile(downloaded, got.body.content.encryption), bytes);
  // The server refuses a key sent in the clear.
  await assert.rejects(dora.c.send({ conv: dm }, content, { media: [up.id] }), (e) => e.code === "invalid_argument" || e.code === "forbidden");
});

test("a member removed from the group cannot read later messages", async () => {
  const alice1 = await firstDevice("alice");
  const bob1 = await firstDevice("bob");
  const bob2 = await otherDevice(bob1, "bob2");
  const carol1 = await firstDevice("carol");
  await contacts(alice1, bob1);
  await contacts(alice1, carol1);
  const group = (await alice1.c.createGroup({ title: "Tea", members: [bob1.user, carol1.user], encrypted: true })).conv;
  const before = await alice1.secure.sendEncrypted(group, "zebra-before");
  await Promise.all([bob1, bob2, carol1].map((d) => reads(d, group, "zebra-before")));

  await alice1.c.removeMember(group, bob1.user);
  const after = await alice1.secure.sendEncrypted(group, "zebra-after removal");
  assert.notEqual(after.message.content.session, before.message.content.session, "the removal rotated the session");
  await reads(carol1, group, "zebra-after removal");
  // Bob's devices never got the new key: even given the ciphertext, they cannot read it.
  for (const bob of [bob1, bob2]) {
    const attempt = bob.secure.decryptMessage(after.message);
    assert.equal(attempt.body.type, "waiting", `${bob.name}: ${JSON.stringify(attempt.body)}`);
    assert.ok(!bob.read.some((r) => r.text.includes("after removal")));
  }
  // Carol's messages leave Bob's devices out too.
  await carol1.secure.sendEncrypted(group, "zebra-carol after removal");
  await reads(alice1, group, "zebra-carol after removal");
  const page = await history(carol1, group);
  const last = page.at(-1).message;
  for (const bob of [bob1, bob2]) assert.notEqual(bob.secure.decryptMessage(last).body.type, "text");
});

test("a revoked device gets nothing after the revocation", async () => {
  const alice1 = await firstDevice("alice");
  const bob1 = await firstDevice("bob");
  const bob2 = await otherDevice(bob1, "bob2");
  await contacts(alice1, bob1);
  const dm = (await alice1.c.openDirect(bob1.user, { encrypted: true })).conv;
  const first = await alice1.secure.sendEncrypted(dm, "zebra-to both bob devices");
  await Promise.all([bob1, bob2].map((d) => reads(d, dm, "zebra-to both bob devices")));

  const signedOut = new Promise((resolve) => bob2.c.on("signedout", resolve));
  await bob1.c.revokeDevice(bob2.device);
  assert.deepEqual(await signedOut, { reason: "revoked" });
  const second = await alice1.secure.sendEncrypted(dm, "zebra-after revocation");
  assert.notEqual(second.message.content.session, first.message.content.session, "the revocation rotated the session");
  await reads(bob1, dm, "zebra-after revocation");
  // The revoked device's state holds no key for it.
  assert.equal(bob2.secure.decryptMessage(second.message).body.type, "waiting");
  // Bob's own next message leaves bob2 out as well.
  const fromBob = await bob1.secure.sendEncrypted(dm, "zebra-bob after revocation");
  await reads(alice1, dm, "zebra-bob after revocation");
  assert.equal(bob2.secure.decryptMessage(fromBob.message).body.type, "waiting");
});

test("a second device verified by the first reads earlier history through forwarded keys; an unverified one does not", async () => {
  const alice1 = await firstDevice("alice");
  const bob1 = await firstDevice("bob");
  await contacts(alice1, bob1);
  const dm = (await alice1.c.openDirect(bob1.user, { encrypted: true })).conv;
  const earlier = ["zebra-old 1", "zebra-old 2"];
  await alice1.secure.sendEncrypted(dm, earlier[0]);
  await bob1.secure.sendEncrypted(dm, earlier[1]);
  await reads(alice1, dm, earlier[1]);
  const ab = await alice1.secure.safetyNumber(bob1.user);

  const alice2 = await otherDevice(alice1, "alice2");
  const alice3 = await otherDevice(alice1, "alice3");
  // "Alice added a new device", on her first device and at her contact's.
  for (const d of [alice2, alice3]) {
    const added = (c) => c.type === "added" && c.device.user === alice1.user && c.device.device === d.device;
    await Promise.all([seesChange(alice1, added), seesChange(bob1, added)]);
  }
  for (const d of [alice2, alice3]) {
    assert.deepEqual(texts(await history(d, dm)), [], `${d.name} reads history before it was verified`);
    assert.equal(alice1.secure.deviceTrust(alice1.user, d.device), "unverified");
  }
  const gotMaster = new Promise((resolve) => alice2.secure.on("masterkey", resolve));
  await alice1.secure.verifyDevice(alice2.device);
  await Promise.all(earlier.map((t) => reads(alice2, dm, t)));
  assert.deepEqual((await gotMaster).from, { user: alice1.user, device: alice1.device });
  assert.equal(alice2.secure.machine.hasMasterKey(), true);
  const page = await history(alice2, dm);
  assert.deepEqual(texts(page), earlier);
  assert.ok(page.filter((m) => m.body.type === "text").every((m) => m.body.forwarded), "the keys came forwarded");
  assert.equal(alice1.secure.deviceTrust(alice1.user, alice2.device), "verified");

  // The unverified alice3 got none of it.
  await alice3.secure.idle();
  assert.deepEqual(texts(await history(alice3, dm)), []);
  assert.ok(!alice3.read.some((r) => r.text.startsWith("zebra-old")));
  // New messages reach every current device, verified or not; the safety number did not change.
  await alice2.secure.sendEncrypted(dm, "zebra-new from alice2");
  await Promise.all([alice1, alice3, bob1].map((d) => reads(d, dm, "zebra-new from alice2")));
  assert.equal(await alice2.secure.safetyNumber(bob1.user), ab);
  assert.equal(await bob1.secure.safetyNumber(alice1.user), ab);
  // alice2 holds the master key now: it verifies alice3, which then reads the history too.
  await alice2.secure.verifyDevice(alice3.device);
  await Promise.all(earlier.map((t) => reads(alice3, dm, t)));
});

test("a device restarted from its file store keeps its keys and reads on", async () => {
  const dir = mkdtempSync(join(tmpdir(), "e2e-chatd-"));
  try {
    const key = await generateStoreKey();
    const store = new FileStore(join(dir, "bob.state"));
    const alice1 = await firstDevice("alice");
    const account = newAccount("bob");
    const bob = await secureDevice("bob", (c) => c.register(account), { store, key });
    await contacts(alice1, bob);
    const dm = (await alice1.c.openDirect(bob.user, { encrypted: true })).conv;
    await alice1.secure.sendEncrypted(dm, "zebra-before restart");
    await reads(bob, dm, "zebra-before restart");
    await bob.secure.idle();
    const signingKey = bob.secure.machine.identityKeys().signing_key;
    bob.secure.close();
    bob.c.close();
    // The same device again (resumed with its token), its state loaded from the file.
    const again = await secureDevice("bob again", (c) => c.resume(bob.token), { store, key });
    assert.equal(again.device, bob.device);
    assert.equal(again.secure.machine.identityKeys().signing_key, signingKey, "the same identity");
    assert.deepEqual(texts(await history(again, dm)), ["zebra-before restart"], "the old key was kept");
    await alice1.secure.sendEncrypted(dm, "zebra-after restart");
    await reads(again, dm, "zebra-after restart");
    // A wrong key opens nothing and overwrites nothing.
    const wrong = ctx.client({ reconnect: false });
    await wrong.resume(bob.token);
    await assert.rejects(SecureChat.start(wrong, { store, key: await generateStoreKey() }), (e) => e.code === "store_decrypt");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a conversation key lost with the link is sent again by the next attempt, after a restart too", async () => {
  const store = new MemoryStore();
  const key = await generateStoreKey();
  const account = newAccount("alice");
  const alice = await secureDevice("alice", (c) => c.register(account), { store, key });
  const bob = await firstDevice("bob");
  await contacts(alice, bob);
  const dm = (await alice.c.openDirect(bob.user, { encrypted: true })).conv;
  // The link dies just as the room key goes out: the send_to_device never reaches the server.
  const realSendToDevice = alice.c.sendToDevice.bind(alice.c);
  alice.c.sendToDevice = (...args) => {
    alice.c.close();
    return realSendToDevice(...args);
  };
  await assert.rejects(alice.secure.sendEncrypted(dm, "zebra-dead link", { clientId: "dead-link-1" }));
  await alice.secure.idle();
  alice.secure.close();
  // The page reloads: the same device, its state as saved, sends the message again from its outbox.
  const again = await secureDevice("alice again", (c) => c.resume(alice.token), { store, key });
  assert.equal(again.device, alice.device);
  await again.secure.sendEncrypted(dm, "zebra-dead link", { clientId: "dead-link-1" });
  await reads(bob, dm, "zebra-dead link");
  const page = await history(bob, dm);
  assert.deepEqual(texts(page), ["zebra-dead link"], "stored once, readable");
});

test("an application payload over Olm reaches the one device it is for", async () => {
  const alice1 = await firstDevice("alice");
  const bob1 = await firstDevice("bob");
  const bob2 = await otherDevice(bob1, "bob2");
  await contacts(alice1, bob1);
  const got = new Promise((resolve) => bob2.secure.on("custom", resolve));
  const elsewhere = [];
  bob1.secure.on("custom", (c) => elsewhere.push(c));
  await alice1.secure.sendCustom({ user: bob1.user, device: bob2.device }, "call.offer", new Uint8Array([1, 2, 3]));
  const custom = await got;
  assert.deepEqual(custom.from, { user: alice1.user, device: alice1.device });
  assert.equal(custom.kind, "call.offer");
  assert.deepEqual([...custom.data], [1, 2, 3]);
  await bob1.secure.idle();
  assert.deepEqual(elsewhere, []);
});

test("a fresh device that no other device verified restores the history from the key backup and is verified by it", async () => {
  const alice1 = await firstDevice("alice");
  const bob1 = await firstDevice("bob");
  const carol1 = await firstDevice("carol");
  await contacts(alice1, bob1);
  await contacts(alice1, carol1);
  const group = (await alice1.c.createGroup({ title: "Backed up", members: [bob1.user, carol1.user], encrypted: true })).conv;
  const dm = (await alice1.c.openDirect(bob1.user, { encrypted: true })).conv;
  // Keys made before the backup is turned on go up with it; later ones as they are made or received.
  await alice1.secure.sendEncrypted(group, "zebra-b1 before the backup");
  await Promise.all([bob1, carol1].map((d) => reads(d, group, "zebra-b1 before the backup")));
  assert.equal(await alice1.secure.hasBackup(), false);
  assert.equal(alice1.secure.backupVersion, undefined);
  // A device without the master key cannot make the backup.
  const alice2Early = await otherDevice(alice1, "alice-early");
  await assert.rejects(alice2Early.secure.enableBackup(), (e) => e.code === "no_master_key");

  const recoveryKey = await alice1.secure.enableBackup();
  assert.match(recoveryKey, /^([0-9A-HJKMNP-TV-Z]{5} ){10}[0-9A-HJKMNP-TV-Z]{5}$/);
  assert.equal(await alice1.secure.hasBackup(), true);
  assert.ok(alice1.secure.backupVersion !== undefined);
  const said = [
    [bob1, group, "zebra-b2 bob in the group"],
    [carol1, group, "zebra-b3 carol in the group"],
    [alice1, group, "zebra-b4 alice again"],
    [bob1, dm, "zebra-b5 bob direct"],
    [alice1, dm, "zebra-b6 alice direct"],
  ];
  for (const [from, conv, text] of said) {
    await from.secure.sendEncrypted(conv, text);
    if (from !== alice1) await reads(alice1, conv, text);
  }
  await alice1.secure.idle();
  const backup = await alice1.c.getBackup();
  // Sessions: alice's in the group and the DM, bob's in both, carol's; alice-early's none (it never sent).
  assert.equal(backup.count, 5, "every session once");
  assert.equal(alice1.secure.machine.keysNotBackedUp(), 0);
  assert.equal(backup.version, alice1.secure.backupVersion);
  // The other device follows the backup too: it backs up what it received, which the server already has.
  await alice2Early.secure.idle();

  // Every device lost: a new sign-in, nothing verified it, it reads nothing yet.
  const alice2 = await otherDevice(alice1, "alice-new", { store: new MemoryStore() });
  assert.deepEqual(texts(await history(alice2, group)), []);
  assert.notEqual(alice2.secure.deviceTrust(alice1.user, alice2.device), "verified");
  assert.equal(await alice2.secure.hasBackup(), true);
  // A typo is refused before anything is tried; another backup's key does not open it.
  const chars = recoveryKey.replaceAll(" ", "");
  const typo = chars.slice(0, 10) + (chars[10] === "A" ? "B" : "A") + chars.slice(11);
  await assert.rejects(alice2.secure.restoreBackup(typo), (e) => e.code === "recovery_key" && /mistyped/.test(e.message));
  await assert.rejects(alice2.secure.restoreBackup(RecoveryKey.generate().toText()), (e) => e.code === "wrong_recovery_key");
  assert.equal(alice2.secure.machine.hasMasterKey(), false);

  const restored = await alice2.secure.restoreBackup(recoveryKey.toLowerCase());
  assert.deepEqual(restored, { imported: 5, refused: 0, verified: true });
  assert.equal(alice2.secure.machine.hasMasterKey(), true);
  assert.equal(alice2.secure.deviceTrust(alice1.user, alice2.device), "verified");
  assert.equal(alice2.secure.backupVersion, backup.version);
  const groupPage = await history(alice2, group);
  assert.deepEqual(texts(groupPage), ["zebra-b1 before the backup", "zebra-b2 bob in the group", "zebra-b3 carol in the group", "zebra-b4 alice again"]);
  assert.ok(groupPage.filter((m) => m.body.type === "text").every((m) => m.body.forwarded), "read as from the key backup");
  assert.deepEqual(texts(await history(alice2, dm)), ["zebra-b5 bob direct", "zebra-b6 alice direct"]);

  // The peer sees the restored device as verified (the master key signed it), and it reads on.
  await bob1.secure.sendEncrypted(group, "zebra-b7 after the restore");
  await reads(alice2, group, "zebra-b7 after the restore");
  assert.equal(bob1.secure.deviceTrust(alice1.user, alice2.device), "verified");
  // "Alice's new device is verified", on her other device.
  await seesChange(alice1, (c) => c.type === "signed" && c.device.device === alice2.device);
  assert.equal(alice1.secure.deviceTrust(alice1.user, alice2.device), "verified");
  // Bob's session is the one restored (the new device got it at a later index): nothing new to back up.
  await alice2.secure.idle();
  assert.equal(alice2.secure.machine.keysNotBackedUp(), 0);
  assert.equal((await alice2.c.getBackup()).count, 5);
  // The new device backs up the session it makes, without uploading the restored ones again.
  await alice2.secure.sendEncrypted(group, "zebra-b8 from the new device");
  await Promise.all([alice1, bob1, carol1].map((d) => reads(d, group, "zebra-b8 from the new device")));
  assert.equal(alice2.secure.machine.keysNotBackedUp(), 0);
  assert.equal((await alice2.c.getBackup()).count, 6);
  // It holds the master key now: it verifies the next device, which then reads what was sent before it existed.
  // (It got alice1's group session at a later index when it joined: the first message is before its key.)
  const first = (await history(alice2Early, group)).find((m) => m.body.type !== "text" && m.body.type !== "clear");
  assert.equal(first?.body.code, "before_key");
  const gotMaster = new Promise((resolve) => alice2Early.secure.on("masterkey", resolve));
  await alice2.secure.verifyDevice(alice2Early.device);
  await gotMaster;
  await alice2Early.secure.idle();
  assert.ok(texts(await history(alice2Early, group)).includes("zebra-b1 before the backup"));
  for (const d of [alice1, bob1, carol1, alice2, alice2Early]) {
    assert.deepEqual(d.errors, [], d.name);
  }
});
