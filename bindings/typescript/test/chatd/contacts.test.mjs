// Protocol version 3 against a real chatd: contact requests pushed to every
// device of both users, a block (the blocked user's sends refused, presence
// hidden both ways), and privacy settings synced between a user's devices.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatError, jsonCodec } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { collect, nextEvent } from "../support/util.mjs";

const { client, person } = useChatd();

/** Another signed-in device of `p`. */
async function device(p, name, options = {}) {
  const c = client({ device: name, ...options });
  await c.login({ login: p.account.username, password: p.account.password });
  return c;
}

/** The next `contact` event on `c` about `user`. */
const contactEvent = (c, user) => nextEvent(c, "contact", (info) => info.profile.user === user);

const code = (p) => p.then(() => "ok", (e) => (e instanceof ChatError ? e.code : String(e)));

test("a contact request reaches both devices of the other user, who accepts on one; everyone's view follows", async () => {
  const alice = await person("alice");
  const bob = await person("bob", { codec: jsonCodec });
  const bobPhone = await device(bob, "phone");
  const aliceEvents = collect(alice.c, "contact");

  // Alice asks: both of Bob's devices hear of it; her own connection has only the reply.
  const onLaptop = contactEvent(bob.c, alice.user);
  const onPhone = contactEvent(bobPhone, alice.user);
  const asked = await alice.c.contact(bob.user, "request");
  assert.equal(asked.state, "outgoing");
  assert.equal(asked.blocked, false);
  assert.equal(asked.profile.user, bob.user);
  assert.equal(typeof asked.since, "number");
  for (const pushed of [await onLaptop, await onPhone]) {
    assert.equal(pushed.state, "incoming");
    assert.equal(pushed.blocked, false);
    assert.equal(pushed.profile.username, alice.account.username);
  }
  assert.equal(await code(alice.c.contact(bob.user, "request")), "conflict", "asking again while pending");
  const incoming = await bob.c.contacts("incoming");
  assert.deepEqual(incoming.contacts.map((c) => [c.profile.user, c.state]), [[alice.user, "incoming"]]);
  assert.equal(incoming.next, undefined);
  assert.deepEqual((await alice.c.contacts("outgoing", { limit: 10 })).contacts.map((c) => c.profile.user), [bob.user]);

  // Bob accepts on his phone: his laptop and Alice hear of it.
  const aliceHears = contactEvent(alice.c, bob.user);
  const laptopHears = nextEvent(bob.c, "contact", (info) => info.profile.user === alice.user && info.state === "contact");
  const accepted = await bobPhone.contact(alice.user, "accept");
  assert.equal(accepted.state, "contact");
  assert.equal((await aliceHears).state, "contact");
  await laptopHears;

  // The list shows each contact with presence (both share it with everyone by default).
  const { contacts } = await alice.c.contacts("contacts");
  assert.equal(contacts.length, 1);
  assert.equal(contacts[0].profile.user, bob.user);
  assert.equal(contacts[0].state, "contact");
  assert.equal(contacts[0].presence?.online, true);
  await alice.c.ping();
  assert.deepEqual(aliceEvents.map((c) => c.state), ["contact"], "no event for the connection's own request");
});

test("a block: the blocked user cannot send, and each sees the other offline, never seen", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  // They talk, so each connection watches the other's presence.
  const { message } = await bob.c.send({ to: alice.user }, "hello Alice");
  const conv = message.conv;
  // Bob is not her contact: Alice accepts his message request before she replies.
  await alice.c.accept(conv);
  await alice.c.send({ conv }, "hi Bob");
  const bobBefore = await bob.c.getProfile(alice.user);
  assert.equal(bobBefore.presence.online, true);

  const bobSeesAlice = nextEvent(bob.c, "presence", (p) => p.user === alice.user);
  const aliceSeesBob = nextEvent(alice.c, "presence", (p) => p.user === bob.user);
  const bobContactEvents = collect(bob.c, "contact");
  const blocked = await alice.c.block(bob.user);
  assert.equal(blocked.blocked, true);
  assert.equal(blocked.state, "none");
  assert.equal(await code(alice.c.block(bob.user)), "conflict", "blocked already");

  // The blocker's presence as the blocked user now sees it, and the other way round: offline, without last_seen.
  for (const p of [await bobSeesAlice, await aliceSeesBob]) {
    assert.equal(p.online, false);
    assert.equal("last_seen" in p, false, JSON.stringify(p));
  }
  const seen = (await bob.c.getProfile(alice.user)).presence;
  assert.deepEqual(seen, { user: alice.user, online: false });

  // Bob's send is refused; Alice's too (she is told to unblock first). The history stays.
  const refused = await bob.c.send({ conv }, "are you there?").catch((e) => e);
  assert.ok(refused instanceof ChatError, String(refused));
  assert.equal(refused.code, "forbidden");
  assert.equal(refused.request, "send");
  assert.equal(await code(alice.c.send({ conv }, "bye")), "forbidden");
  assert.equal((await bob.c.history(conv)).messages.length, 2);
  await bob.c.ping();
  assert.deepEqual(bobContactEvents, [], "the blocked user is not told");

  const list = await alice.c.contacts("blocked");
  assert.deepEqual(list.contacts.map((c) => [c.profile.user, c.blocked]), [[bob.user, true]]);

  // Unblocked: presence is back and the conversation takes messages again.
  const back = nextEvent(bob.c, "presence", (p) => p.user === alice.user && p.online);
  const unblocked = await alice.c.unblock(bob.user);
  assert.equal(unblocked.blocked, false);
  await back;
  await bob.c.send({ conv }, "back again");
  assert.equal(await code(alice.c.unblock(bob.user)), "not_found", "not blocked any more");
});

test("privacy settings: in the session, changed on one device, pushed to the other as a `privacy` event", async () => {
  const alice = await person("alice");
  assert.deepEqual(alice.session.privacy, { direct: "everyone", groups: "everyone", presence: "everyone" });
  const phone = await device(alice, "phone", { codec: jsonCodec });
  assert.deepEqual(phone.session?.privacy, { direct: "everyone", groups: "everyone", presence: "everyone" });
  const laptopEvents = collect(alice.c, "privacy");

  const pushed = nextEvent(phone, "privacy");
  const now = await alice.c.setPrivacy({ presence: "contacts" });
  assert.deepEqual(now, { direct: "everyone", groups: "everyone", presence: "contacts" });
  assert.deepEqual(alice.c.session?.privacy, now, "the session follows the reply");
  assert.deepEqual(await pushed, now);
  assert.deepEqual(phone.session?.privacy, now, "and the push, on the other device");

  const again = nextEvent(alice.c, "privacy");
  const want = { direct: "contacts", groups: "contacts", presence: "contacts" };
  assert.deepEqual(await phone.setPrivacy({ direct: "contacts", groups: "contacts" }), want);
  assert.deepEqual(await again, want);
  assert.deepEqual(alice.c.session?.privacy, want);
  await alice.c.ping();
  assert.equal(laptopEvents.length, 1, "no event for the connection's own change");

  // `direct: nobody` is the server's refusal; an unknown value never leaves the client.
  const bad = await alice.c.setPrivacy({ direct: "nobody" }).catch((e) => e);
  assert.equal(bad.code, "invalid_argument");
  assert.equal(bad.field, "direct");
  const badGroups = await alice.c.setPrivacy({ groups: "nobody" }).catch((e) => e);
  assert.equal(badGroups.code, "invalid_argument");
  assert.equal(badGroups.field, "groups");
  assert.equal(await code(alice.c.setPrivacy({ presence: "friends" })), "invalid_argument");

  // A new sign-in carries the settings; a stranger may no longer start a direct conversation.
  const laptop = await device(alice, "laptop");
  assert.deepEqual(laptop.session?.privacy, want);
  const stranger = await person("stranger");
  assert.equal(await code(stranger.c.openDirect(alice.user)), "forbidden");
});
