// Interop both ways: a Rust chatcore-client SecureClient user (the
// chatcore-client example e2e_peer, driven over stdin/stdout as JSON lines)
// and TypeScript SecureChat users in one encrypted group, each reading the
// other's messages, with one safety number on both sides; a key backup made
// by the Rust client restored by a TypeScript device of the same user, and
// one made by TypeScript restored by the Rust client; a call in an encrypted direct
// conversation, each side calling the other, its signals sealed both ways. Every
// wait is for a line or an event, bounded by a timeout.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { MemoryStore, SecureChat, generateStoreKey } from "../../dist/e2e/index.js";
import { useChatd } from "../support/chatd.mjs";
import { newAccount } from "../support/util.mjs";
import { rustPeer } from "../support/peer.mjs";

const ctx = useChatd();
const T = 20_000;

/**
 * A TypeScript device of a new user (or signed in with `signIn(client)`); `reads(conv, text)` once it read that
 * message.
 */
async function tsUser(name, signIn) {
  const account = newAccount(name);
  const c = ctx.client({ reconnect: false });
  const secure = new SecureChat(c, { store: new MemoryStore(), key: await generateStoreKey() });
  const read = [];
  const errors = [];
  const waiters = new Set();
  const seen = (m) => {
    if (m.text === undefined) return;
    read.push(m);
    for (const w of [...waiters]) w();
  };
  secure.on("message", seen);
  secure.on("decrypted", seen);
  secure.on("error", (e) => errors.push(`${e.context}: ${e.error.message}`));
  const session = await (signIn ? signIn(c) : c.register(account));
  await secure.start();
  const reads = (conv, text) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const m = read.find((r) => r.message.conv === conv && r.text === text);
        if (!m) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(m);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`${name} never read ${JSON.stringify(text)}; errors: ${errors.join("; ")}`));
      }, T);
      waiters.add(check);
      check();
    });
  return { c, secure, user: session.user, device: session.device, account, reads, errors };
}

const peers = [];
after(() => {
  for (const p of peers) p.kill();
});

test("a Rust user and TypeScript users chat in one encrypted group, both ways", async () => {
  const rust = rustPeer();
  peers.push(rust);
  const account = newAccount("rusty");
  const { user: rustUser, device: rustDevice } = await rust.call({ cmd: "register", url: ctx.chatd.wsUrl, ...account });
  const alice = await tsUser("alice");
  const bob = await tsUser("bob");
  await rust.call({ cmd: "contact", user: alice.user, action: "request" });
  await alice.c.contact(rustUser, "request");
  await rust.call({ cmd: "contact", user: bob.user, action: "request" });
  await bob.c.contact(rustUser, "request");

  // The Rust user makes the group and writes first: its room keys reach the TypeScript devices over Olm.
  const { conv } = await rust.call({ cmd: "create_group", title: "Interop", members: [alice.user, bob.user] });
  await rust.call({ cmd: "send", conv, text: "zebra-from rust" });
  for (const ts of [alice, bob]) {
    const m = await ts.reads(conv, "zebra-from rust");
    assert.deepEqual(m.body.sender, { user: rustUser, device: rustDevice });
    assert.equal(m.body.trust, "verified", "the Rust user's master key signed its device");
    assert.equal(m.message.content.kind, "encrypted");
  }

  // A TypeScript user answers: the Rust client reads it, and so does the other TypeScript user.
  await alice.secure.sendEncrypted(conv, "zebra-from typescript");
  await rust.reads(conv, "zebra-from typescript");
  await bob.reads(conv, "zebra-from typescript");
  await bob.secure.sendEncrypted(conv, "zebra-from bob too");
  await rust.reads(conv, "zebra-from bob too");
  await alice.reads(conv, "zebra-from bob too");
  // Again both ways over the established sessions.
  await rust.call({ cmd: "send", conv, text: "zebra-rust again" });
  await Promise.all([alice.reads(conv, "zebra-rust again"), bob.reads(conv, "zebra-rust again")]);
  assert.ok(!rust.messages.some((m) => m.event === "undecryptable"), JSON.stringify(rust.messages));

  // One safety number, however computed.
  const fromRust = (await rust.call({ cmd: "safety_number", user: alice.user })).number;
  assert.equal(await alice.secure.safetyNumber(rustUser), fromRust);

  for (const ts of [alice, bob]) assert.deepEqual(ts.errors.filter((e) => /refused|not saved|not processed/.test(e)), []);
  assert.equal(await rust.quit(), 0);
});

test("a key backup made by the Rust client is restored by a TypeScript device of the same user", async () => {
  const rust = rustPeer();
  peers.push(rust);
  const account = newAccount("rusty");
  const { user: rustUser, device: rustDevice } = await rust.call({ cmd: "register", url: ctx.chatd.wsUrl, ...account });
  const alice = await tsUser("alice");
  await rust.call({ cmd: "contact", user: alice.user, action: "request" });
  await alice.c.contact(rustUser, "request");
  const { conv } = await rust.call({ cmd: "create_group", title: "Backed up in Rust", members: [alice.user] });
  await rust.call({ cmd: "send", conv, text: "zebra-r1 rust" });
  await alice.reads(conv, "zebra-r1 rust");
  await alice.secure.sendEncrypted(conv, "zebra-r2 alice");
  await rust.reads(conv, "zebra-r2 alice");

  const { recovery_key: recoveryKey } = await rust.call({ cmd: "enable_backup" });
  assert.match(recoveryKey, /^([0-9A-HJKMNP-TV-Z]{5} ){10}[0-9A-HJKMNP-TV-Z]{5}$/);
  await rust.call({ cmd: "send", conv, text: "zebra-r3 rust after" });
  await alice.reads(conv, "zebra-r3 rust after");

  // The Rust user signs in on a TypeScript device that no other device verified, and restores.
  const ts = await tsUser("rusty-ts", (c) => c.login({ login: account.username, password: account.password, device: "ts-restore" }));
  assert.equal(ts.user, rustUser);
  assert.deepEqual((await ts.secure.history(conv, { limit: 50 })).messages.filter((m) => m.text !== undefined), []);
  const restored = await ts.secure.restoreBackup(recoveryKey);
  assert.deepEqual(restored, { imported: 2, refused: 0, verified: true });
  assert.equal(ts.secure.machine.hasMasterKey(), true);
  const { messages } = await ts.secure.history(conv, { limit: 50 });
  const read = messages.filter((m) => m.body.type === "text");
  assert.deepEqual(
    read.map((m) => m.text),
    ["zebra-r1 rust", "zebra-r2 alice", "zebra-r3 rust after"],
  );
  assert.deepEqual(read[0].body.sender, { user: rustUser, device: rustDevice });
  assert.ok(read.every((m) => m.body.forwarded), "read as from the key backup");
  // The TypeScript device follows the Rust-made backup: nothing restored goes up again.
  assert.equal(ts.secure.backupVersion, (await ts.c.getBackup()).version);
  assert.equal(ts.secure.machine.keysNotBackedUp(), 0);

  // The peer sees the restored device verified by the Rust-made master key, and both read on.
  await alice.secure.sendEncrypted(conv, "zebra-r4 alice to all");
  await Promise.all([ts.reads(conv, "zebra-r4 alice to all"), rust.reads(conv, "zebra-r4 alice to all")]);
  assert.equal(alice.secure.deviceTrust(rustUser, ts.device), "verified");
  await ts.secure.sendEncrypted(conv, "zebra-r5 from the restored device");
  await Promise.all([alice.reads(conv, "zebra-r5 from the restored device"), rust.reads(conv, "zebra-r5 from the restored device")]);
  assert.ok(!rust.messages.some((m) => m.event === "undecryptable"), JSON.stringify(rust.messages));
  for (const t of [alice, ts]) assert.deepEqual(t.errors, []);
  assert.equal(await rust.quit(), 0);
});

test("a key backup made by TypeScript is restored by the Rust client on a new device of the same user", async () => {
  const owner = await tsUser("owner");
  const alice = await tsUser("alice");
  await owner.c.contact(alice.user, "request");
  await alice.c.contact(owner.user, "request");
  const conv = (await owner.c.createGroup({ title: "Backed up in TypeScript", members: [alice.user], encrypted: true })).conv;
  await owner.secure.sendEncrypted(conv, "zebra-t1 owner");
  await alice.reads(conv, "zebra-t1 owner");
  await alice.secure.sendEncrypted(conv, "zebra-t2 alice");
  await owner.reads(conv, "zebra-t2 alice");
  const recoveryKey = await owner.secure.enableBackup();
  await owner.secure.sendEncrypted(conv, "zebra-t3 owner after");
  await alice.reads(conv, "zebra-t3 owner after");
  await owner.secure.idle();
  assert.equal((await owner.c.getBackup()).count, 2);

  // The same user signs in on the Rust client, which no device verified, and restores with the TypeScript-made key.
  const rust = rustPeer();
  peers.push(rust);
  const { user, device } = await rust.call({
    cmd: "login",
    url: ctx.chatd.wsUrl,
    login: owner.account.username,
    password: owner.account.password,
    device: "rust-restore",
  });
  assert.equal(user, owner.user);
  assert.deepEqual((await rust.call({ cmd: "history", conv })).texts, []);
  const restored = await rust.call({ cmd: "restore_backup", recovery_key: recoveryKey });
  assert.deepEqual({ ...restored, reply: undefined }, { imported: 2, refused: 0, verified: true, reply: undefined });
  assert.deepEqual((await rust.call({ cmd: "history", conv })).texts, ["zebra-t1 owner", "zebra-t2 alice", "zebra-t3 owner after"]);
  // Verified by the master key that TypeScript made, for the peer.
  await alice.secure.sendEncrypted(conv, "zebra-t4 alice to all");
  await Promise.all([rust.reads(conv, "zebra-t4 alice to all"), owner.reads(conv, "zebra-t4 alice to all")]);
  assert.equal(alice.secure.deviceTrust(owner.user, device), "verified");
  assert.ok(!rust.messages.some((m) => m.event === "undecryptable"), JSON.stringify(rust.messages));
  for (const t of [alice, owner]) assert.deepEqual(t.errors, []);
  assert.equal(await rust.quit(), 0);
});

/** The `call_signal` pushes `client` gets; `next(call)` resolves with the first of call `call` not taken yet. */
function callSignals(client) {
  const got = [];
  client.on("callsignal", (s) => got.push(s));
  return {
    next(call) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const poll = () => {
          const i = got.findIndex((s) => s.call === call);
          if (i >= 0) return resolve(got.splice(i, 1)[0]);
          if (Date.now() - started > T) return reject(new Error(`no signal of call ${call}`));
          setTimeout(poll, 20);
        };
        poll();
      });
    },
  };
}

test("a call between TypeScript and Rust in an encrypted direct conversation, its signals sealed both ways", async () => {
  const rust = rustPeer();
  peers.push(rust);
  const account = newAccount("rusty");
  const { user: rustUser, device: rustDevice } = await rust.call({ cmd: "register", url: ctx.chatd.wsUrl, ...account });
  const alice = await tsUser("alice");
  await rust.call({ cmd: "contact", user: alice.user, action: "request" });
  await alice.c.contact(rustUser, "request");
  const conv = (await alice.c.openDirect(rustUser, { encrypted: true })).conv;
  const signals = callSignals(alice.c);
  const enc = new TextEncoder();
  const open = async (push) => JSON.parse(new TextDecoder().decode(await alice.secure.openSignal({ user: rustUser, device: push.device }, push.sealed)));

  // TypeScript calls: the offer sealed with sealSignal over the documented JSON; the Rust peer opens it.
  const call = "zebra-ts-call";
  const offer = "v=0\r\no=ts 1 1 IN IP4 127.0.0.1\r\ns=zebra-ts-offer\r\n";
  const sealed = await alice.secure.sealSignal(rustUser, undefined, enc.encode(JSON.stringify({ call, sdp: offer })), conv);
  assert.deepEqual(sealed.map((s) => s.device), [rustDevice]);
  await alice.c.callInvite(conv, call, "voice", { sealed });
  const offered = await rust.event((m) => m.event === "call_signal" && m.call === call, "opened the offer");
  assert.deepEqual({ sdp: offered.sdp, device: offered.device }, { sdp: offer, device: alice.device });

  // The Rust peer answers sealed for the calling device; TypeScript opens it with openSignal.
  const answer = "v=0\r\no=rust 2 2 IN IP4 127.0.0.1\r\ns=zebra-rust-answer\r\n";
  await rust.call({ cmd: "call_answer", call, sdp: answer });
  const answered = await signals.next(call);
  assert.equal(answered.device, rustDevice);
  assert.equal(answered.sdp, undefined, "sealed, not plain");
  assert.deepEqual(await open(answered), { call, sdp: answer });
  // Candidates both ways, in the documented field names.
  const candidates = [{ candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", sdp_mid: "0", sdp_m_line_index: 0 }, { candidate: "" }];
  await rust.call({ cmd: "call_candidates", call, candidates });
  assert.deepEqual(await open(await signals.next(call)), { call, candidates });
  const fromTs = await alice.secure.sealSignal(rustUser, [rustDevice], enc.encode(JSON.stringify({ call, candidates })), conv);
  await alice.c.callCandidates(call, { sealed: fromTs });
  const got = await rust.event((m) => m.event === "call_signal" && m.call === call && m.candidates?.length, "opened the candidates");
  assert.deepEqual(got.candidates, candidates);
  // A signal sealed for another call is dropped by the Rust side.
  const other = await alice.secure.sealSignal(rustUser, [rustDevice], enc.encode(JSON.stringify({ call: "zebra-elsewhere", sdp: offer })), conv);
  await alice.c.callCandidates(call, { sealed: other });
  const refused = await rust.event((m) => m.event === "call_signal_refused" && m.call === call, "refused the other call's signal");
  assert.match(refused.error, /another call/);
  await alice.c.callHangup(call, "hangup");

  // The Rust peer calls: TypeScript opens its offer, answers sealed, and the Rust peer opens the answer.
  const offer2 = "v=0\r\no=rust 3 3 IN IP4 127.0.0.1\r\ns=zebra-rust-offer\r\n";
  const { call: call2 } = await rust.call({ cmd: "call_invite", conv, peer: alice.user, media: "video", sdp: offer2 });
  const offered2 = await signals.next(call2);
  assert.equal(offered2.device, rustDevice);
  assert.deepEqual(await open(offered2), { call: call2, sdp: offer2 });
  const answer2 = "v=0\r\no=ts 4 4 IN IP4 127.0.0.1\r\ns=zebra-ts-answer\r\n";
  const sealedAnswer = await alice.secure.sealSignal(rustUser, [rustDevice], enc.encode(JSON.stringify({ call: call2, sdp: answer2 })), conv);
  await alice.c.callAnswer(call2, { sealed: sealedAnswer });
  const answered2 = await rust.event((m) => m.event === "call_signal" && m.call === call2, "opened the answer");
  assert.deepEqual({ sdp: answered2.sdp, device: answered2.device }, { sdp: answer2, device: alice.device });
  await rust.call({ cmd: "call_hangup", call: call2 });

  assert.deepEqual(alice.errors, []);
  assert.equal(await rust.quit(), 0);
});
