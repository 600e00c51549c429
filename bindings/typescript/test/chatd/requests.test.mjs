// Protocol version 4 against a real chatd: message requests (a first message
// from someone who is not a contact), group invitations (an add by someone the
// user's `groups` setting does not admit), the `invited` and `answered` pushes,
// and reports.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatError, jsonCodec } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { collect, nextEvent, until } from "../support/util.mjs";

const { client, person } = useChatd();

/** Another signed-in device of `p`. */
async function device(p, name, options = {}) {
  const c = client(options);
  await c.login({ login: p.account.username, password: p.account.password, device: name });
  return c;
}

const code = (p) => p.then(() => "ok", (e) => (e instanceof ChatError ? e.code : String(e)));

test("a message request: listed apart, read-only until accepted on one device (answered on the other); presence hidden meanwhile", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const phone = await device(bob, "Phone", { codec: jsonCodec });

  const bobGets = nextEvent(bob.c, "message", (e) => e.message.from === alice.user);
  const { message } = await alice.c.send({ to: bob.user }, "Hi, we met at the fair");
  const conv = message.conv;
  assert.equal((await bobGets).message.content.text, "Hi, we met at the fair", "the recipient receives a request's messages");

  const [r] = (await bob.c.requests()).conversations;
  assert.equal(r.conv, conv);
  assert.equal(r.kind, "direct");
  assert.equal(r.request.by.user, alice.user);
  assert.equal(r.request.by.display_name, alice.account.display_name);
  assert.equal(typeof r.request.at, "number");
  assert.equal(r.last.preview, "Hi, we met at the fair");
  assert.deepEqual((await bob.c.conversations()).conversations, [], "not in the main list");
  assert.deepEqual((await bob.c.conversations({ list: "main" })).conversations, []);
  assert.equal((await bob.c.getConversation(conv)).request.by.user, alice.user);
  assert.deepEqual((await bob.c.history(conv)).messages.map((m) => m.content.text), ["Hi, we met at the fair"]);
  // The sender's side is an ordinary conversation.
  assert.equal((await alice.c.conversations()).conversations[0].conv, conv);
  assert.deepEqual((await alice.c.requests()).conversations, []);

  // Bob writes only after accepting; Alice sees Bob offline and never seen until then.
  const refused = await bob.c.send({ conv }, "who are you?").catch((e) => e);
  assert.ok(refused instanceof ChatError);
  assert.equal(refused.code, "forbidden");
  assert.match(refused.message, /accept/);
  assert.deepEqual((await alice.c.getProfile(bob.user)).presence, { user: bob.user, online: false });

  const answered = nextEvent(phone, "answered");
  const ownAnswers = collect(bob.c, "answered");
  const info = await bob.c.accept(conv);
  assert.equal(info.conv, conv);
  assert.equal(info.request, undefined);
  assert.deepEqual(await answered, { conv, accepted: true }, "the other device is told");
  assert.equal((await bob.c.conversations()).conversations[0].conv, conv);
  assert.deepEqual((await bob.c.requests()).conversations, []);
  await until(async () => (await alice.c.getProfile(bob.user)).presence.online, 5000, "Bob's presence shown to Alice");
  const aliceGets = nextEvent(alice.c, "message", (e) => e.message.from === bob.user);
  await bob.c.send({ conv }, "Oh hi!");
  assert.equal((await aliceGets).message.content.text, "Oh hi!");
  assert.equal(await code(bob.c.accept(conv)), "not_found", "nothing waits any more");
  await bob.c.ping();
  assert.deepEqual(ownAnswers, [], "no event for the connection's own answer");
});

test("a deleted request: its messages are gone for the recipient; a later message makes it a request again; open_direct accepts", async () => {
  const eve = await person("eve");
  const bob = await person("bob");
  const { message } = await eve.c.send({ to: bob.user }, "Buy miracle tea");
  const conv = message.conv;
  await until(async () => (await bob.c.requests()).conversations.length === 1, 5000, "the request");
  await bob.c.decline(conv);
  assert.deepEqual((await bob.c.requests()).conversations, [], "it left the list");
  assert.deepEqual((await bob.c.conversations()).conversations, []);
  const history = await bob.c.history(conv).then((h) => h.messages, (e) => e.code);
  assert.ok(Array.isArray(history) ? history.length === 0 : history === "not_found" || history === "forbidden", String(history));

  // Eve is not told; her next message is a request again, alone.
  await eve.c.send({ conv }, "Second chance?");
  const again = await until(async () => (await bob.c.requests()).conversations[0], 5000, "the request again");
  assert.equal(again.conv, conv);
  assert.equal(again.last.preview, "Second chance?");
  assert.deepEqual((await bob.c.history(conv)).messages.map((m) => m.content.text), ["Second chance?"]);

  // Opening the direct conversation with the sender accepts it.
  assert.equal((await bob.c.openDirect(eve.user)).conv, conv);
  assert.deepEqual((await bob.c.requests()).conversations, []);
  await bob.c.send({ conv }, "Fine, what is it?");
});

test("becoming contacts accepts a message request", async () => {
  const carol = await person("carol");
  const dan = await person("dan");
  const { message } = await carol.c.send({ to: dan.user }, "Can we be contacts?");
  await until(async () => (await dan.c.requests()).conversations.length === 1, 5000, "the request");
  await carol.c.contact(dan.user, "request");
  await dan.c.contact(carol.user, "accept");
  assert.deepEqual((await dan.c.requests()).conversations, []);
  await dan.c.send({ conv: message.conv }, "Sure");
});

test("reports: about a user, optionally a conversation and a reason; checked, then stored", async () => {
  const eve = await person("eve");
  const bob = await person("bob");
  const { message } = await eve.c.send({ to: bob.user }, "Sells miracle tea");
  await until(async () => (await bob.c.requests()).conversations.length === 1, 5000, "the request");
  await bob.c.report(eve.user, message.conv, "Spam");
  await bob.c.report(eve.user); // a repeat replaces it
  assert.equal(await code(bob.c.report(bob.user)), "invalid_argument", "not oneself");
  assert.equal(await code(bob.c.report(eve.user, undefined, "x".repeat(501))), "invalid_argument", "500 characters at most");
  assert.equal(await code(bob.c.report("0190f7a2-6c1e-7b3a-9f00-000000000000")), "not_found");
  const stranger = await person("stranger");
  assert.notEqual(await code(stranger.c.report(eve.user, message.conv)), "ok", "only a conversation the reporter is in");
  await bob.c.block(eve.user);
  await bob.c.decline(message.conv);
});

test("group invitations: a user with groups=contacts is invited, not added; accepts on one device, declines another; an invitation is withdrawn", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const carol = await person("carol");
  const phone = await device(carol, "Phone");
  assert.equal((await carol.c.setPrivacy({ groups: "contacts" })).groups, "contacts");
  assert.equal(carol.c.session.privacy.groups, "contacts");

  // At creation: Bob is added, Carol invited.
  const invitedPush = nextEvent(carol.c, "invited");
  const phoneInvited = nextEvent(phone, "invited");
  const carolMessages = collect(carol.c, "message");
  const g = await alice.c.createGroup({ title: "Tea party", members: [bob.user, carol.user] });
  assert.deepEqual(g.members.map((m) => m.user), [alice.user, bob.user]);
  assert.deepEqual(g.invited, [carol.user]);
  const pushed = await invitedPush;
  assert.equal(pushed.conv, g.conv);
  assert.equal(pushed.kind, "group");
  assert.equal(pushed.title, "Tea party");
  assert.equal(pushed.request.by.user, alice.user);
  assert.equal((await phoneInvited).conv, g.conv, "every device of the invited user");
  const [listed] = (await carol.c.requests()).conversations;
  assert.equal(listed.conv, g.conv);
  assert.equal(listed.request.by.user, alice.user);
  assert.deepEqual((await carol.c.conversations()).conversations, [], "not a member: not in the main list");
  const asked = await carol.c.getConversation(g.conv);
  assert.equal(asked.request.by.user, alice.user);
  assert.deepEqual((await bob.c.getConversation(g.conv)).invited, [carol.user], "members see open invitations");

  // Until she answers she receives nothing of the group and cannot write to it.
  await alice.c.send({ conv: g.conv }, "Before Carol");
  assert.equal(await code(carol.c.send({ conv: g.conv }, "me too?")), "forbidden");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(carolMessages.filter((e) => e.message.conv === g.conv), []);

  // Accepted on the laptop: she joins (a member_joined notice), the phone is told.
  const aliceSeesJoin = nextEvent(alice.c, "message", (e) => e.message.conv === g.conv && e.message.content.kind === "member_joined");
  const phoneAnswered = nextEvent(phone, "answered");
  const joined = await carol.c.accept(g.conv);
  assert.equal(joined.role, "member");
  assert.equal(joined.request, undefined);
  assert.equal((await aliceSeesJoin).message.from, carol.user);
  assert.deepEqual(await phoneAnswered, { conv: g.conv, accepted: true });
  assert.equal((await carol.c.conversations()).conversations[0].conv, g.conv);
  assert.equal((await alice.c.getConversation(g.conv)).invited, undefined, "no open invitation left");
  await carol.c.send({ conv: g.conv }, "Hello all");

  // add_members: invited only, so no notice (seq 0), then declined.
  const dave = await person("dave");
  await dave.c.setPrivacy({ groups: "contacts" });
  const daveInvited = nextEvent(dave.c, "invited");
  const added = await alice.c.addMembers(g.conv, [dave.user]);
  assert.deepEqual(added, { seq: 0, invited: [dave.user] });
  assert.equal((await daveInvited).request.by.user, alice.user);
  await dave.c.decline(g.conv);
  assert.deepEqual((await dave.c.requests()).conversations, []);
  assert.equal(await code(dave.c.accept(g.conv)), "not_found", "declined: nothing to accept");
  assert.equal((await alice.c.getConversation(g.conv)).invited, undefined);

  // A contact's add is an add; a stranger's an invitation, which an admin withdraws with remove_member.
  const erin = await person("erin");
  await erin.c.setPrivacy({ groups: "contacts" });
  await erin.c.contact(alice.user, "request");
  await alice.c.contact(erin.user, "accept");
  const frank = await person("frank");
  await frank.c.setPrivacy({ groups: "contacts" });
  const mixed = await alice.c.addMembers(g.conv, [erin.user, frank.user]);
  assert.ok(mixed.seq > 0, "Erin was added: a notice");
  assert.deepEqual(mixed.invited, [frank.user]);
  await until(async () => (await frank.c.requests()).conversations.length === 1, 5000, "Frank's invitation");
  await alice.c.removeMember(g.conv, frank.user);
  assert.equal((await alice.c.getConversation(g.conv)).invited, undefined, "withdrawn");
  await until(async () => (await frank.c.requests()).conversations.length === 0, 5000, "the invitation gone");
});
