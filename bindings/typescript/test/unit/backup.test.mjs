// The key backup of the TypeScript binding (src/e2e/backup.ts, a port of
// chatcore_client::e2e::backup): the recovery key's text and its checks, the
// derivations, and the machine's backup operations between two devices of a
// user in memory (create, batch, restore, unseal the master key), with
// tampered or misplaced keys refused one by one as E2eErrors.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BACKUP_V1,
  E2eError,
  Machine,
  RecoveryKey,
  backupKeyText,
  decodeBase64,
  encodeBase64,
  generateStoreKey,
  seal,
} from "../../dist/e2e/index.js";
import { hkdf } from "../../dist/e2e/backup.js";
import { pack, unpack } from "../../dist/e2e/formats.js";
import { loadVodozemac } from "../../dist/vodozemac.js";

const vz = await loadVodozemac();
const T0 = 1_700_000_000_000;
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const enc = new TextEncoder();
const dec = new TextDecoder();

function isCode(code, message = /./) {
  return (e) => {
    assert.ok(e instanceof E2eError, `not an E2eError: ${e?.stack ?? e}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  };
}

/** Crockford base32 written independently of the binding (for hand-made recovery keys). */
function base32(bytes) {
  let bits = "";
  for (const b of bytes) bits += b.toString(2).padStart(8, "0");
  while (bits.length % 5) bits += "0";
  return bits.match(/.{5}/g).map((x) => ALPHABET[parseInt(x, 2)]).join("");
}

const hex = (bytes) => Buffer.from(bytes).toString("hex");

test("a recovery key's text is 11 groups of 5 Crockford characters and reads back", () => {
  const zero = RecoveryKey.fromBytes(new Uint8Array(32));
  const text = zero.toText();
  assert.equal(text.length, 55 + 10);
  assert.match(text, /^([0-9A-HJKMNP-TV-Z]{5} ){10}[0-9A-HJKMNP-TV-Z]{5}$/);
  assert.ok(text.startsWith("04000"), text);
  // 0x01, 32 zero bytes, parity 0x01: the same as an independent encoder.
  const raw = new Uint8Array(34);
  raw[0] = 1;
  raw[33] = 1;
  assert.equal(text.replaceAll(" ", ""), base32(raw));
  for (let i = 0; i < 20; i++) {
    const key = RecoveryKey.generate();
    const t = key.toText();
    assert.equal(RecoveryKey.parse(t).toText(), t);
    // Case, spaces and dashes do not matter; O, I and L read as 0, 1, 1.
    const sloppy = t.toLowerCase().replaceAll(" ", "-").replaceAll("0", "o").replaceAll("1", "l");
    assert.equal(RecoveryKey.parse(`  ${sloppy}\n`).toText(), t);
  }
  // Never printed.
  const key = RecoveryKey.generate();
  assert.equal(String(key), "RecoveryKey(..)");
  assert.equal(JSON.stringify({ key }), '{"key":"RecoveryKey(..)"}');
  assert.deepEqual(Object.keys(key), []);
});

test("a mistyped recovery key is refused before anything is tried with it", () => {
  const text = RecoveryKey.generate().toText();
  const chars = text.replaceAll(" ", "");
  // Every single wrong character is caught: by the version, the parity, or the padding of the last character.
  for (let i = 0; i < chars.length; i++) {
    for (const c of ALPHABET) {
      if (c === chars[i]) continue;
      const typo = chars.slice(0, i) + c + chars.slice(i + 1);
      assert.throws(() => RecoveryKey.parse(typo), isCode("recovery_key", /recovery key is not valid: it is mistyped/), `${i} ${c}`);
    }
  }
  // Two characters swapped.
  const swapped = chars[1] + chars[0] + chars.slice(2);
  if (swapped !== chars) assert.throws(() => RecoveryKey.parse(swapped), isCode("recovery_key"));
  assert.throws(() => RecoveryKey.parse(chars.slice(1)), isCode("recovery_key", /54 characters, not 55/));
  assert.throws(() => RecoveryKey.parse(chars + "0"), isCode("recovery_key", /56 characters, not 55/));
  assert.throws(() => RecoveryKey.parse(""), isCode("recovery_key", /0 characters/));
  assert.throws(() => RecoveryKey.parse("U" + chars.slice(1)), isCode("recovery_key", /"U" is not a character/));
  assert.throws(() => RecoveryKey.parse("é" + chars.slice(1)), isCode("recovery_key", /not a character/));
  assert.throws(() => RecoveryKey.parse("😀" + chars.slice(1)), isCode("recovery_key", /not a character/));
  assert.throws(() => RecoveryKey.fromBytes(new Uint8Array(31)), isCode("recovery_key"));
});

test("the parity byte and the version byte are checked", () => {
  const r = crypto.getRandomValues(new Uint8Array(32));
  const raw = new Uint8Array(34);
  raw[0] = 1;
  raw.set(r, 1);
  raw[33] = raw.subarray(0, 33).reduce((a, b) => a ^ b, 0);
  const good = base32(raw);
  assert.equal(RecoveryKey.parse(good).toText().replaceAll(" ", ""), good);
  assert.equal(RecoveryKey.parse(good).toText(), RecoveryKey.fromBytes(r).toText());
  raw[33] ^= 0x40;
  assert.throws(() => RecoveryKey.parse(base32(raw)), isCode("recovery_key", /its check does not match/));
  raw[33] ^= 0x40;
  raw[0] = 2;
  raw[33] ^= 3; // parity still right: the version alone is wrong
  assert.throws(() => RecoveryKey.parse(base32(raw)), isCode("recovery_key", /unknown version/));
  // Non-zero padding bits in the last character.
  raw[0] = 1;
  raw[33] ^= 3;
  const last = ALPHABET.indexOf(good[54]);
  const padded = good.slice(0, 54) + ALPHABET[last | 1];
  assert.throws(() => RecoveryKey.parse(padded), isCode("recovery_key", /last character is wrong/));
});

test("HKDF without salt is RFC 5869's, and the backup key is the X25519 key of the derived secret", async () => {
  // RFC 5869 test case 3 (no salt, no info): the first 32 bytes.
  const okm = await hkdf(new Uint8Array(0), new Uint8Array(22).fill(0x0b), new Uint8Array(0));
  assert.equal(hex(okm), "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
  // Node's own X25519 and HKDF, independently of WebCrypto's import path.
  const { createPrivateKey, createPublicKey, hkdfSync } = await import("node:crypto");
  const r = crypto.getRandomValues(new Uint8Array(32));
  const secret = Buffer.from(hkdfSync("sha256", r, Buffer.alloc(0), "chatcore-backup-curve25519-v1", 32));
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), secret]);
  const jwk = createPublicKey(createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" })).export({ format: "jwk" });
  const expected = encodeBase64(Buffer.from(jwk.x, "base64url"));
  assert.equal(await RecoveryKey.fromBytes(r).publicKey(), expected);
});

/** Alice's first device (with the master key) and a second, fresh device that knows her master key from the directory. */
function alice() {
  const a1 = Machine.createWith(vz, "alice", "a1");
  a1.keysToUpload({ one_time: 0, fallback_unused: false });
  a1.markKeysPublished();
  const master = a1.createMasterKey();
  const a2 = Machine.createWith(vz, "alice", "a2");
  const directory = () => ({
    user: "alice",
    masterKey: master.masterKey,
    devices: [
      { user: "alice", device: "a1", keys: a1.identityKeys(), master_signature: master.deviceSignature },
      { user: "alice", device: "a2", keys: a2.identityKeys() },
    ],
  });
  a1.receiveDeviceKeys(directory());
  a2.receiveDeviceKeys(directory());
  return { a1, a2, master };
}

/** What the server stores for a created backup. */
function serverBackup(created, version = "1") {
  return { version, algorithm: created.algorithm, auth_data: created.authData, count: 0, etag: 0, created_at: T0 };
}

/** Encrypts `text` in `conv` on `m` (no other member: its own inbound copy is the key to back up). */
function say(m, conv, text) {
  const r = m.encrypt(conv, [], enc.encode(text), T0);
  assert.equal(r.type, "ready");
  return r.value.content;
}

test("keys backed up by one device are restored on a fresh one, which then reads and signs itself", async () => {
  const { a1, a2 } = alice();
  const recovery = RecoveryKey.generate();
  const created = await a1.createBackup(recovery);
  assert.equal(created.algorithm, BACKUP_V1);
  // auth_data: the MessagePack map {public_key, signature, sealed_master} in that order, signed by the master key.
  const auth = unpack(decodeBase64(created.authData));
  assert.deepEqual(Object.keys(auth), ["public_key", "signature", "sealed_master"]);
  assert.equal(auth.public_key, await recovery.publicKey());
  assert.ok(vz.verifyEd25519(a1.masterKey("alice"), enc.encode(backupKeyText("alice", auth.public_key)), auth.signature));
  assert.equal(auth.sealed_master.length, 12 + 32 + 16);

  const info = serverBackup(created);
  assert.equal(await a1.backupBatch(), null, "nothing before a backup is adopted");
  a1.adoptBackup(info);
  assert.equal(a1.backupVersion(), "1");
  const m1 = say(a1, "g:1", "first");
  const m2 = say(a1, "g:2", "second");
  assert.equal(a1.keysNotBackedUp(), 2);
  // At most `limit` per batch; each session goes once.
  const b1 = await a1.backupBatch(1);
  assert.equal(b1.keys.length, 1);
  a1.markBackedUp(b1);
  const b2 = await a1.backupBatch(1000);
  assert.equal(b2.keys.length, 1);
  a1.markBackedUp(b2);
  assert.equal(await a1.backupBatch(), null);
  assert.equal(a1.keysNotBackedUp(), 0);
  const keys = [...b1.keys, ...b2.keys];
  for (const k of keys) {
    assert.equal(k.first_index, 0);
    assert.equal(k.forwarded, 0);
    assert.equal(k.verified, true, "a1 is signed by the master key");
    assert.equal(decodeBase64(k.data).length > 32 + 12 + 16, true);
  }
  assert.deepEqual(keys.map((k) => k.conv).sort(), ["g:1", "g:2"]);
  // The batch state survives a save.
  const storeKey = await generateStoreKey();
  const a1b = await Machine.fromBytes(await a1.toBytes(storeKey), storeKey);
  assert.equal(a1b.backupVersion(), "1");
  assert.equal(await a1b.backupBatch(), null);

  // The fresh device reads nothing, then restores.
  assert.equal(a2.decrypt("g:1", "m1", "alice", m1).type, "waiting");
  assert.equal(a2.deviceTrust("alice", "a2"), "unverified");
  const results = await a2.restoreBackupKeys(RecoveryKey.parse(recovery.toText()), info, keys);
  assert.equal(results.length, 2);
  for (const r of results) {
    assert.ok("ok" in r, r.error?.message);
    assert.equal(r.ok.type, "room_key");
    assert.equal(r.ok.forwarded, true);
  }
  assert.ok(results.some((r) => r.ok.waiting), "the message that waited is told");
  for (const [conv, id, content, text] of [["g:1", "m1", m1, "first"], ["g:2", "m2", m2, "second"]]) {
    const d = a2.decrypt(conv, id, "alice", content);
    assert.equal(d.type, "plain");
    assert.equal(dec.decode(d.content), text);
    assert.equal(d.forwarded, true, "read as from the key backup");
  }
  // Restoring again is harmless.
  for (const r of await a2.restoreBackupKeys(recovery, info, keys)) assert.ok("ok" in r);

  assert.equal(a2.hasMasterKey(), false);
  await a2.unsealMasterKey(recovery, info);
  assert.equal(a2.hasMasterKey(), true);
  assert.equal(a2.masterKey("alice"), a1.masterKey("alice"));
  const signature = a2.signOwnDevice();
  assert.equal(a2.deviceTrust("alice", "a2"), "verified");
  // The signature verifies for a1 too, through the directory.
  const changes = a1.receiveDeviceKeys({
    user: "alice",
    masterKey: { key: a1.masterKey("alice"), signature: "" },
    devices: [
      { user: "alice", device: "a1", keys: a1.identityKeys() },
      { user: "alice", device: "a2", keys: a2.identityKeys(), master_signature: signature },
    ],
  });
  assert.ok(changes.some((c) => c.type === "signed" && c.device.device === "a2"), JSON.stringify(changes));
  assert.equal(a1.deviceTrust("alice", "a2"), "verified");

  // a2 follows the backup: what it restored is not uploaded again, what it makes is.
  a2.adoptBackup(info);
  const again = await a2.restoreBackupKeys(recovery, info, keys);
  assert.ok(again.every((r) => "ok" in r));
  assert.equal(await a2.backupBatch(), null);
  say(a2, "g:3", "third");
  const b3 = await a2.backupBatch();
  assert.equal(b3.keys.length, 1);
  assert.equal(b3.keys[0].conv, "g:3");
});

test("tampered, moved or malformed backed-up keys are refused one by one as E2eErrors", async () => {
  const { a1, a2 } = alice();
  const recovery = RecoveryKey.generate();
  const info = serverBackup(await a1.createBackup(recovery));
  a1.adoptBackup(info);
  const m1 = say(a1, "g:1", "first");
  say(a1, "g:2", "second");
  const { keys } = await a1.backupBatch();
  const [k1, k2] = keys;
  const flipped = decodeBase64(k1.data);
  flipped[40] ^= 1;
  const tampered = { ...k1, data: encodeBase64(flipped) };
  const moved = { ...k1, conv: "g:other" };
  const renamed = { ...k1, session: k2.session };
  const short = { ...k1, data: encodeBase64(decodeBase64(k1.data).subarray(0, 50)) };
  const notBase64 = { ...k1, data: "***" };
  const weak = { ...k1, data: encodeBase64(new Uint8Array([...new Uint8Array(32), ...decodeBase64(k1.data).subarray(32)])) };
  const results = await a2.restoreBackupKeys(recovery, info, [tampered, moved, renamed, short, notBase64, weak, k2]);
  const codes = results.map((r) => ("error" in r ? r.error.code : "ok"));
  assert.deepEqual(codes, ["misbound", "misbound", "misbound", "malformed", "malformed", "malformed", "ok"]);
  for (const r of results.slice(0, 6)) assert.ok(r.error instanceof E2eError);
  assert.equal(a2.decrypt("g:1", "m1", "alice", m1).type, "waiting", "nothing of the refused key was imported");
  // The untouched one imports alone.
  const ok = await a2.restoreBackupKeys(recovery, info, [k1]);
  assert.ok("ok" in ok[0]);
  assert.equal(dec.decode(a2.decrypt("g:1", "m1", "alice", m1).content), "first");
});

test("a backup that the recovery key does not open, or that the master key did not sign, is refused as a whole", async () => {
  const { a1, a2 } = alice();
  const recovery = RecoveryKey.generate();
  const created = await a1.createBackup(recovery);
  const info = serverBackup(created);
  a1.adoptBackup(info);
  say(a1, "g:1", "first");
  const { keys } = await a1.backupBatch();

  await assert.rejects(a2.restoreBackupKeys(RecoveryKey.generate(), info, keys), isCode("wrong_recovery_key"));
  await assert.rejects(a2.unsealMasterKey(RecoveryKey.generate(), info), isCode("wrong_recovery_key"));
  // Another user's master key signed it (the server swapped the backup).
  const { a1: mallory } = alice();
  const swapped = serverBackup(await mallory.createBackup(recovery));
  assert.throws(() => a2.adoptBackup(swapped), isCode("bad_signature", /not signed by the user's master key/));
  await assert.rejects(a2.restoreBackupKeys(recovery, swapped, keys), isCode("bad_signature"));
  // A sealed master key altered: the public key and signature still match, the seal does not open.
  const auth = unpack(decodeBase64(created.authData));
  auth.sealed_master[20] ^= 1;
  const altered = { ...info, auth_data: encodeBase64(pack(auth)) };
  await assert.rejects(a2.unsealMasterKey(recovery, altered), isCode("wrong_recovery_key"));
  assert.equal(a2.hasMasterKey(), false);
  // Malformed auth_data, another algorithm.
  assert.throws(() => a2.adoptBackup({ ...info, auth_data: "!!" }), isCode("malformed"));
  assert.throws(() => a2.adoptBackup({ ...info, auth_data: encodeBase64(pack({ public_key: 1 })) }), isCode("malformed"));
  assert.throws(() => a2.adoptBackup({ ...info, auth_data: encodeBase64(new Uint8Array([0xc1])) }), isCode("malformed"));
  assert.throws(() => a2.adoptBackup({ ...info, algorithm: "other.v9" }), isCode("unsupported"));
  // A device without the master key cannot make one; one that does not know the master key cannot check one.
  await assert.rejects(a2.createBackup(recovery), isCode("no_master_key"));
  const stranger = Machine.createWith(vz, "alice", "a9");
  assert.throws(() => stranger.adoptBackup(info), isCode("bad_signature", /master key is unknown/));
});

test("a new backup version starts afresh, and a state saved before backups existed loads without one", async () => {
  const { a1 } = alice();
  const recovery = RecoveryKey.generate();
  const info = serverBackup(await a1.createBackup(recovery));
  a1.adoptBackup(info);
  say(a1, "g:1", "first");
  a1.markBackedUp(await a1.backupBatch());
  assert.equal(a1.keysNotBackedUp(), 0);
  a1.adoptBackup(info);
  assert.equal(a1.keysNotBackedUp(), 0, "the same version again changes nothing");
  const next = serverBackup(await a1.createBackup(RecoveryKey.generate()), "2");
  a1.adoptBackup(next);
  assert.equal(a1.backupVersion(), "2");
  assert.equal(a1.keysNotBackedUp(), 1, "everything goes to the new version");
  // A batch made for version 1 does not mark anything in version 2.
  a1.adoptBackup(info);
  const old = await a1.backupBatch();
  a1.adoptBackup(next);
  a1.markBackedUp(old);
  assert.equal(a1.keysNotBackedUp(), 1);

  const storeKey = await generateStoreKey();
  const map = unpack(a1.snapshot());
  assert.equal(map.backup.version, "2");
  delete map.backup;
  const loaded = await Machine.fromBytes(await seal(pack(map), storeKey), storeKey);
  assert.equal(loaded.backupVersion(), undefined);
  assert.equal(await loaded.backupBatch(), null);
  a1.forgetBackup();
  assert.equal(a1.backupVersion(), undefined);
  assert.equal(a1.keysNotBackedUp(), 0);
});
