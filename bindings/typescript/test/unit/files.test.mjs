// Files of an encrypted conversation (E2E.md, *Files*) against tests/vectors/files.json, which the Rust client
// writes: the same key and nonce seal the same bytes in both, each opens what the other sealed, and the encrypted
// photo's content encodes to exactly the bytes the Rust client puts inside a ciphertext (and reads back).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { canonicalContent, decodeMsgpack, decryptFile, encodeMsgpack, encryptFile, encryptFileWith } from "../../dist/index.js";

const vectors = JSON.parse(readFileSync(new URL("../../../../tests/vectors/files.json", import.meta.url), "utf8"));
const b64 = (s) => new Uint8Array(Buffer.from(s, "base64"));
const hex = (b) => Buffer.from(b).toString("hex");

test("a file sealed in Rust opens here, and the same key and nonce seal the same bytes", async () => {
  const f = vectors.file;
  const opened = await decryptFile(b64(f.sealed), { key: f.key, iv: f.iv, sha256: f.sha256 });
  assert.deepEqual(Buffer.from(opened), Buffer.from(b64(f.plain)));
  const { ciphertext, encryption } = await encryptFileWith(b64(f.key), b64(f.iv), b64(f.plain));
  assert.equal(Buffer.from(ciphertext).toString("base64").replace(/=+$/, ""), f.sealed);
  assert.deepEqual(encryption, { key: f.key, iv: f.iv, sha256: f.sha256 });
});

test("an encrypted photo's content is the same bytes in both clients", () => {
  const c = vectors.content;
  assert.equal(hex(encodeMsgpack(canonicalContent(c.value))), c.msgpack);
  assert.deepEqual(canonicalContent(decodeMsgpack(Buffer.from(c.msgpack, "hex"))), canonicalContent(c.value));
  assert.ok(Buffer.from(c.msgpack, "hex")[0] >= 0x80 && Buffer.from(c.msgpack, "hex")[0] <= 0x8f, "a fixmap, never text");
});

test("a changed file, a wrong key or a bad key is refused, and nothing of it returned", async () => {
  const plain = new TextEncoder().encode("voice note");
  const { ciphertext, encryption } = await encryptFile(plain);
  const other = await encryptFile(plain);
  assert.notEqual(hex(ciphertext), hex(other.ciphertext), "a fresh key and nonce each time");
  const flipped = ciphertext.slice();
  flipped[0] ^= 1;
  await assert.rejects(decryptFile(flipped, encryption), /SHA-256/);
  await assert.rejects(decryptFile(ciphertext, { ...other.encryption, sha256: encryption.sha256 }), /does not decrypt/);
  await assert.rejects(decryptFile(ciphertext, { ...encryption, key: "AAAA" }), /32 bytes/);
  assert.deepEqual(await decryptFile(ciphertext, encryption), plain);
});
