// The key directory (end-to-end encryption, first part) against a real chatd:
// keys signed with Ed25519 in Node (node:crypto) over the canonical texts of
// PROTOCOL.md "Key directory", uploaded, queried and claimed once; a forged
// signature refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign, randomBytes } from "node:crypto";
import { ChatClient, ChatError, msgpackCodec } from "../../dist/index.js";
import { startChatd } from "../support/chatd.mjs";
import { newAccount } from "../support/util.mjs";

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
  return { c, user: s.user, device: s.device };
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
