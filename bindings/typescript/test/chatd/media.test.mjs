// Media (protocol 8) against a real chatd, through the TypeScript binding: a file uploaded over HTTP with the
// session token, a photo message listing it, the recipient downloading it whole and by range; the refusals (no
// session, too large, an unknown file listed in a message).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ChatClient, ChatError } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { nextEvent } from "../support/util.mjs";

const { person, client } = useChatd(["--max-media-bytes", "200000"]);

const code = (p) => p.then(() => "ok", (e) => (e instanceof ChatError ? e.code : String(e)));

test("a photo is uploaded, sent by its id, and downloaded by the other side whole and by range", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await alice.c.contact(bob.user, "request");
  await bob.c.contact(alice.user, "request");
  const bytes = Uint8Array.from({ length: 150_000 }, (_, i) => (i * 31) % 256);
  const up = await alice.c.upload(bytes);
  assert.match(up.id, /^[0-9a-f]{32}$/);
  assert.equal(up.size, bytes.length);
  assert.equal(up.sha256, createHash("sha256").update(bytes).digest("hex"));

  const content = { kind: "image", media: up.id, mime: "image/png", width: 300, height: 200, size: bytes.length, caption: "the view" };
  const arrives = nextEvent(bob.c, "message", (e) => e.message.content.kind === "image");
  const { message } = await alice.c.send({ to: bob.user }, content, { media: [up.id] });
  assert.deepEqual(message.media, [up.id]);
  const got = (await arrives).message;
  assert.deepEqual(got.media, [up.id]);
  assert.deepEqual(got.content, content);

  const whole = await bob.c.download(up.id);
  assert.deepEqual(whole, bytes);
  const part = await bob.c.download(up.id, { range: [1000, 1999] });
  assert.deepEqual(part, bytes.slice(1000, 2000));
  const tail = await bob.c.download(up.id, { range: [149_990] });
  assert.deepEqual(tail, bytes.slice(149_990));

  // Refused: too large, a file nobody uploaded, a malformed id, and no session at all.
  assert.equal(await code(alice.c.upload(new Uint8Array(200_001))), "too_large");
  const missing = "0123456789abcdef0123456789abcdef";
  const photo = { ...content, media: missing };
  assert.equal(await code(alice.c.send({ conv: message.conv }, photo, { media: [missing] })), "not_found");
  assert.equal(await code(bob.c.download(missing)), "not_found");
  assert.equal(await code(bob.c.download("../etc/passwd")), "invalid_argument");
  const stranger = client();
  assert.equal(await code(stranger.download(up.id)), "unauthenticated");
});

test("a client that never signed in is told to sign in before it uploads", async () => {
  const c = new ChatClient({ url: "ws://127.0.0.1:9/ws" });
  assert.equal(await code(c.upload(new Uint8Array(3))), "unauthenticated");
});
