// Devices against a real chatd: the list (names, times, keys, the current
// one), renaming, revoking another device (it is signed out as revoked, its
// token no longer resumes) and one's own (a logout), the `deviceschanged`
// event, and another user's devices out of reach. A client not told a
// device name names the device after itself ("chatcore-ts/0.1").
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatError } from "../../dist/index.js";
import { useChatd } from "../support/chatd.mjs";
import { collect, nextEvent, until } from "../support/util.mjs";

const { client, person } = useChatd();

/** Another signed-in device of `p`, named `name`. */
async function device(p, name) {
  const c = client({ reconnect: false });
  const session = await c.login({ login: p.account.username, password: p.account.password, device: name });
  return { c, session };
}

const code = (p) => p.then(() => "ok", (e) => (e instanceof ChatError ? e.code : String(e)));

test("devices are listed with their names, times, keys and the current one, and renamed by their user only", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  const phone = await device(alice, "  Phone ");

  const list = await alice.c.devices();
  assert.deepEqual(
    list.map((d) => [d.device, d.name, d.keys, d.current]),
    [
      [alice.session.device, "chatcore-ts/0.1", false, true],
      [phone.session.device, "Phone", false, false],
    ],
  );
  for (const d of list) {
    assert.equal(typeof d.created_at, "number");
    assert.ok(d.last_active >= d.created_at);
  }
  assert.ok(list[0].created_at <= list[1].created_at, "oldest first");
  assert.deepEqual(
    (await phone.c.devices()).map((d) => d.current),
    [false, true],
    "current is the asking device",
  );

  const told = nextEvent(phone.c, "deviceschanged", (e) => e.user === alice.user);
  await alice.c.renameDevice(phone.session.device, "Work phone");
  await told;
  assert.deepEqual((await alice.c.devices()).map((d) => d.name), ["chatcore-ts/0.1", "Work phone"]);
  assert.equal(await code(alice.c.renameDevice(phone.session.device, "x".repeat(65))), "invalid_argument");
  assert.equal(await code(alice.c.renameDevice("not/a device", "Phone")), "invalid_argument");

  // Bob can touch none of Alice's devices.
  assert.equal(await code(bob.c.renameDevice(phone.session.device, "Mine")), "not_found");
  assert.equal(await code(bob.c.revokeDevice(phone.session.device)), "not_found");
  assert.deepEqual((await bob.c.devices()).map((d) => d.device), [bob.session.device]);
  assert.deepEqual((await alice.c.devices()).map((d) => d.name), ["chatcore-ts/0.1", "Work phone"], "nothing changed");
});

test("revoking a device signs it out at once and tells the user's partners; revoking one's own is a logout", async () => {
  const alice = await person("alice");
  const bob = await person("bob");
  await bob.c.createGroup({ title: "Tea", members: [alice.user] });
  const phone = await device(alice, "Phone");
  const token = phone.c.session.token;
  const bobTold = collect(bob.c, "deviceschanged");

  const revoked = nextEvent(phone.c, "signedout");
  await alice.c.revokeDevice(phone.session.device);
  assert.equal((await revoked).reason, "revoked");
  await until(() => bobTold.some((e) => e.user === alice.user), 10_000, "bob told of the revocation");
  assert.deepEqual((await alice.c.devices()).map((d) => d.device), [alice.session.device]);
  assert.equal(await code(alice.c.revokeDevice(phone.session.device)), "not_found", "gone already");

  const again = client({ reconnect: false });
  assert.equal(await code(again.resume(token)), "unauthenticated", "its token no longer resumes");

  const count = bobTold.length;
  const out = nextEvent(alice.c, "signedout");
  await alice.c.revokeDevice(alice.session.device);
  assert.equal((await out).reason, "logout");
  await until(() => bobTold.length > count, 10_000, "bob told of the logout");
});
