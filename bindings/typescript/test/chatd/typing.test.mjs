// Protocol version 5 against a real chatd: `typing` reaches the other member
// as an event with the server's ttl (both codecs), the typist hears nothing of
// itself, and a stop is pushed as such.
import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonCodec, PROTOCOL_VERSION } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { collect, nextEvent } from "../support/util.mjs";

const { person } = useChatd(["--typing-ttl-ms", "4000"]);

test("a member who types is shown to the other, with the server's ttl, in either codec", async () => {
  assert.ok(PROTOCOL_VERSION >= 5);
  const alice = await person("alice");
  const bob = await person("bob", { codec: jsonCodec });
  await alice.c.contact(bob.user, "request");
  await bob.c.contact(alice.user, "request");
  const { message } = await alice.c.send({ to: bob.user }, "hello");
  const conv = message.conv;
  const own = collect(alice.c, "typing");

  const started = nextEvent(bob.c, "typing", (t) => t.typing);
  await alice.c.typing(conv, true);
  assert.deepEqual(await started, { conv, user: alice.user, typing: true, ttl_ms: 4000 });
  const stopped = nextEvent(bob.c, "typing", (t) => !t.typing);
  await alice.c.typing(conv, false);
  assert.deepEqual(await stopped, { conv, user: alice.user, typing: false, ttl_ms: 4000 });

  // Bob answers the other way, over JSON.
  const back = nextEvent(alice.c, "typing");
  await bob.c.typing(conv, true);
  assert.equal((await back).user, bob.user);
  assert.deepEqual(
    own.filter((t) => t.user === alice.user),
    [],
    "the typist is not told of itself",
  );
});
