// The binding against a real chatd process (see test/support/chatd.mjs).
// Node 20 needs --experimental-websocket for its global WebSocket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { ChatClient, ChatError, jsonCodec, msgpackCodec } from "../../dist/index.js";
import { startChatd } from "../support/chatd.mjs";
import { makeCertificate } from "../support/tls.mjs";
import { collect, newAccount, nextEvent, until } from "../support/util.mjs";

let chatd;
const clients = [];

before(async () => {
  chatd = await startChatd();
});

after(async () => {
  for (const c of clients) c.close();
  const status = await chatd?.stop();
  assert.equal(status?.code, 0, `chatd exits cleanly on SIGTERM (${JSON.stringify(status)})`);
});

/** A client that the test run closes at the end. */
function client(options = {}) {
  const c = new ChatClient({
    url: chatd.wsUrl,
    codec: msgpackCodec,
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    requestTimeoutMs: 10_000,
    ...options,
  });
  clients.push(c);
  return c;
}

/**
 * A WebSocket whose connection the test can cut, optionally swallowing replies first (`muted`) or frames it sends
 * (`dropSent(data)` true).
 */
function cuttableWebSocket() {
  const sockets = [];
  class CuttableWebSocket {
    constructor(url, protocols) {
      this.inner = new WebSocket(url, protocols);
      this.muted = false;
      this.dropSent = null;
      sockets.push(this);
    }
    get readyState() { return this.inner.readyState; }
    get protocol() { return this.inner.protocol; }
    get binaryType() { return this.inner.binaryType; }
    set binaryType(v) { this.inner.binaryType = v; }
    send(data) {
      if (this.dropSent?.(data)) return; // lost on the way
      this.inner.send(data);
    }
    close(code, reason) { this.inner.close(code, reason); }
    addEventListener(type, fn) {
      this.inner.addEventListener(type, (ev) => {
        if (type === "message" && this.muted) return; // lost on the way
        fn(ev);
      });
    }
  }
  return {
    WebSocket: CuttableWebSocket,
    last: () => sockets.at(-1),
    count: () => sockets.length,
  };
}

test("two clients chat, in both codecs, with live pushes, unread counts and history", async () => {
  const alice = client({ codec: msgpackCodec });
  const bob = client({ codec: jsonCodec });
  const a = await alice.register(newAccount("alice"));
  const b = await bob.register(newAccount("bob"));
  assert.ok(a.token && b.token);
  assert.equal(alice.state, "ready");

  // The directory finds bob by username prefix and by display-name word.
  const found = await alice.searchUsers(b.profile.username.slice(0, 6));
  assert.ok(found.users.some((u) => u.profile.user === b.user && u.presence.online));
  const byName = await alice.searchUsers("bob");
  assert.ok(byName.users.some((u) => u.profile.user === b.user));

  const bobGets = nextEvent(bob, "message", (e) => e.message.from === a.user);
  const bobAlert = nextEvent(bob, "alert");
  const sent = await alice.send({ to: b.user }, "Hello, Bob! 👋");
  assert.equal(sent.duplicate, false);
  assert.equal(sent.message.conv, (await alice.openDirect(b.user)).conv, "the first send opened the direct conversation");
  assert.equal(sent.message.seq, 1);
  const got = await bobGets;
  assert.equal(got.source, "push");
  assert.deepEqual(got.message, sent.message, "the recipient receives what the sender stored");
  const alert = await bobAlert;
  assert.equal(alert.conv, sent.message.conv);
  assert.equal(alert.seq, 1);

  // Alice is not Bob's contact: her first message is a request, listed apart, that Bob answers before replying.
  assert.deepEqual((await bob.conversations()).conversations, [], "a request is not in the main list");
  const [request] = (await bob.requests()).conversations;
  assert.equal(request.conv, sent.message.conv);
  assert.equal(request.request.by.user, a.user, "the request names its sender");
  assert.equal((await bob.send({ conv: sent.message.conv }, "too early").catch((e) => e)).code, "forbidden");
  const accepted = await bob.accept(sent.message.conv);
  assert.equal(accepted.conv, sent.message.conv);
  assert.equal(accepted.request, undefined);
  assert.deepEqual((await bob.requests()).conversations, []);

  // Bob opens the chat: no alert for messages there, and he replies.
  await bob.focus(sent.message.conv);
  const alertsWhileFocused = collect(bob, "alert");
  const aliceGets = nextEvent(alice, "message", (e) => e.message.from === b.user);
  const reply = await bob.send({ conv: sent.message.conv }, "Hi Alice");
  assert.equal(reply.message.seq, 2);
  assert.equal((await aliceGets).message.content.text, "Hi Alice");
  const third = nextEvent(bob, "message", (e) => e.message.seq === 3);
  await alice.send({ to: b.user }, "How are you?");
  await third;
  assert.equal(alertsWhileFocused.length, 0, "no alert for the focused conversation");

  let convs = (await bob.conversations()).conversations;
  assert.equal(convs.length, 1);
  assert.equal(convs[0].kind, "direct");
  assert.equal(convs[0].peer.user, a.user, "a direct summary carries the peer's profile");
  assert.equal(convs[0].peer.display_name, a.profile.display_name);
  assert.equal(convs[0].members, 2);
  assert.equal(convs[0].last_seq, 3);
  assert.equal(convs[0].unread, 2);
  assert.deepEqual({ ...convs[0].last, ts: 0 }, { seq: 3, ts: 0, from: a.user, kind: "text", preview: "How are you?" });
  await bob.read(sent.message.conv, 3);
  convs = (await bob.conversations()).conversations;
  assert.equal(convs[0].unread, 0);

  // History pages backwards.
  const newest = await alice.history(sent.message.conv, { limit: 2 });
  assert.deepEqual(newest.messages.map((m) => m.seq), [2, 3]);
  assert.equal(newest.more, true);
  const older = await alice.history(sent.message.conv, { before: 2, limit: 2 });
  assert.deepEqual(older.messages.map((m) => m.seq), [1]);
  assert.equal(older.more, false);

  // Profiles.
  const updated = await bob.updateProfile({ about: "Can we fix it?" });
  assert.equal(updated.profile.about, "Can we fix it?");
  const card = await alice.getProfile(b.user);
  assert.equal(card.profile.about, "Can we fix it?");
  assert.equal(card.profile.display_name, b.profile.display_name);
  assert.ok(await alice.ping() >= 0);
});

test("presence is pushed to a user watching the directory", async () => {
  const carol = client();
  const dave = client();
  const acc = newAccount("dave");
  await carol.register(newAccount("carol"));
  const d = await dave.register(acc);
  await carol.searchUsers(acc.username);
  const offline = nextEvent(carol, "presence", (p) => p.user === d.user && !p.online);
  dave.close();
  const p = await offline;
  assert.equal(typeof p.last_seen, "number");
  const online = nextEvent(carol, "presence", (p) => p.user === d.user && p.online);
  const again = client();
  await again.login({ login: acc.email, password: acc.password });
  await online;
});

test("offline delivery: what was sent meanwhile arrives by sync after resume, then on a new device", async () => {
  const erin = client();
  const frank = client({ syncPageSize: 2 });
  const e = await erin.register(newAccount("erin"));
  const frankAccount = newAccount("frank");
  const f = await frank.register(frankAccount);
  await erin.send({ to: f.user }, "before");
  // A message request (erin is not frank's contact): listed apart, delivered all the same.
  await until(async () => (await frank.requests()).conversations.length === 1, 5000, "frank's message request");
  frank.close(); // offline

  for (const text of ["one", "two", "three", "four", "five"]) await erin.send({ to: f.user }, text);

  // The same device comes back with its token: exactly the five, in order, by sync (pages of 2).
  const back = client({ token: f.token, syncPageSize: 2, autoSync: false });
  const delivered = collect(back, "message");
  await back.connect();
  assert.equal(back.session.device, f.device, "resume keeps the device");
  const synced = await back.sync();
  assert.deepEqual(synced.map((m) => m.content.text), ["one", "two", "three", "four", "five"]);
  assert.ok(delivered.every((d) => d.source === "sync"));
  assert.deepEqual(await back.sync(), [], "everything was acknowledged: a second sync is empty");

  // A new device starts with nothing acknowledged: its first sync is the whole history.
  const phone = client({ syncPageSize: 2 });
  const all = collect(phone, "message");
  const session = nextEvent(phone, "session");
  await phone.login({ login: frankAccount.username, password: frankAccount.password, device: "Phone" });
  await session;
  await until(() => all.length === 6, 5000, "the whole history on the new device");
  assert.deepEqual(all.map((d) => d.message.seq), [1, 2, 3, 4, 5, 6]);
  assert.ok(e.user);
});

test("a new device with newDeviceHistory: latest syncs only what arrives after sign-in, and pages history on demand", async () => {
  const gina = client();
  const hugo = client();
  const g = await gina.register(newAccount("gina"));
  const hugoAccount = newAccount("hugo");
  const h = await hugo.register(hugoAccount);
  for (let i = 1; i <= 12; i++) await gina.send({ to: h.user }, `old ${i}`);
  const group = await gina.createGroup({ title: "Old news", members: [h.user] });
  await gina.send({ conv: group.conv }, "old in the group");
  // The group in the main list, gina's direct messages (a request: they are not contacts) in the requests list.
  await until(async () => (await hugo.conversations()).conversations.length === 1, 5000, "hugo's group");
  await until(async () => (await hugo.requests()).conversations.length === 1, 5000, "hugo's message request");

  const tablet = client({ newDeviceHistory: "latest", syncPageSize: 5 });
  const delivered = collect(tablet, "message");
  const session = nextEvent(tablet, "session");
  await tablet.login({ login: hugoAccount.username, password: hugoAccount.password, device: "Tablet" });
  await session;
  // The skip and the first sync run in turn: once a sync after them returns nothing, nothing old was fetched.
  assert.deepEqual(await tablet.sync(), []);
  assert.deepEqual(delivered, [], "no old message reached the new device");

  // What arrives from now on is delivered (pushed, and acknowledged: a resumed sync does not return it).
  const live = nextEvent(tablet, "message", (d) => d.message.content.text === "new");
  await gina.send({ to: h.user }, "new");
  assert.equal((await live).message.seq, 13);
  // Older history is there on demand, newest page first.
  const dm = (await tablet.allConversations(undefined, "requests")).find((c) => c.kind === "direct");
  const newest = await tablet.history(dm.conv, { limit: 5 });
  assert.deepEqual(newest.messages.map((m) => m.seq), [9, 10, 11, 12, 13]);
  assert.equal(newest.more, true);
  const older = await tablet.history(dm.conv, { before: 9, limit: 5 });
  assert.deepEqual(older.messages.map((m) => m.seq), [4, 5, 6, 7, 8]);
  await until(async () => {
    const again = client({ token: tablet.session.token, autoSync: false });
    await again.connect();
    const rest = await again.sync();
    again.close();
    return rest.length === 0;
  }, 5000, "the live message acknowledged");

  // Without the option a new device still gets everything (the default is unchanged).
  const laptop = client({ syncPageSize: 5 });
  const all = collect(laptop, "message");
  await laptop.login({ login: hugoAccount.username, password: hugoAccount.password, device: "Laptop" });
  await until(() => all.length === 15, 5000, "the whole history on the default device");
  assert.ok(g.user);
});

test("profile changes are pushed to watchers and to the user's other devices; registrations to the unfiltered directory", async () => {
  const ivy = client();
  const jack = client();
  const jackAccount = newAccount("jack");
  await ivy.register(newAccount("ivy"));
  const j = await jack.register(jackAccount);
  const jackPhone = client();
  await jackPhone.login({ login: jackAccount.username, password: jackAccount.password, device: "Phone" });
  await ivy.searchUsers(jackAccount.username);

  const seen = nextEvent(ivy, "profile", (p) => p.user === j.user);
  const mine = nextEvent(jackPhone, "profile", (p) => p.user === j.user);
  const changed = await jack.updateProfile({ display_name: "Jack Sprat", about: "No fat" });
  assert.deepEqual(await seen, changed.profile);
  assert.deepEqual(await mine, changed.profile);
  assert.equal(jackPhone.session.profile.display_name, "Jack Sprat", "the session's own card follows");

  // The unfiltered first page hears of new users; a filtered view does not.
  await ivy.searchUsers("");
  await jack.searchUsers(jackAccount.username);
  const jackHeard = collect(jack, "newuser");
  const kimAccount = newAccount("kim");
  const announced = nextEvent(ivy, "newuser", (e) => e.profile.username === kimAccount.username);
  const kim = client();
  const k = await kim.register(kimAccount);
  const entry = await announced;
  assert.equal(entry.profile.user, k.user);
  assert.equal(entry.presence.online, true);
  await jack.ping();
  assert.deepEqual(jackHeard, []);
});

test("a send retried with its client_id is stored once, also across a lost connection", async () => {
  const gina = client();
  const hank = client();
  await gina.register(newAccount("gina"));
  const h = await hank.register(newAccount("hank"));

  // Explicit retry by the application.
  const first = await gina.send({ to: h.user }, "once", { clientId: "retry-me-1" });
  const second = await gina.send({ to: h.user }, "once", { clientId: "retry-me-1" });
  assert.equal(first.duplicate, false);
  assert.equal(second.duplicate, true);
  assert.equal(second.message.seq, first.message.seq);
  assert.equal(second.message.id, first.message.id);

  // The reply is lost and the connection drops: the client resends by itself after resuming.
  const cut = cuttableWebSocket();
  const ivy = client({ WebSocket: cut.WebSocket });
  await ivy.register(newAccount("ivy"));
  const pushes = collect(hank, "message");
  cut.last().muted = true;
  const sending = ivy.send({ to: h.user }, "survives a lost reply");
  await until(() => pushes.length === 1, 5000, "the message to be stored and pushed");
  const sockets = cut.count();
  const resumed = nextEvent(ivy, "session", (s) => s.resumed);
  cut.last().close(3000, "test cut");
  const result = await sending;
  await resumed;
  assert.ok(cut.count() > sockets, "the client reconnected");
  assert.equal(result.duplicate, true, "the resend was recognised by its client_id");
  assert.equal(result.message.seq, pushes[0].message.seq);
  const hist = await hank.history(result.message.conv);
  assert.equal(hist.messages.filter((m) => m.content.text === "survives a lost reply").length, 1);
});

test("acks lost on a dying link: after the reconnect, sync gets past what was pushed already and delivers the rest", async () => {
  const cut = cuttableWebSocket();
  const jill = client({ WebSocket: cut.WebSocket, codec: jsonCodec, syncPageSize: 2 });
  const kai = client();
  const j = await jill.register(newAccount("jill"));
  await kai.register(newAccount("kai"));
  const got = collect(jill, "message");
  // Jill's acks never reach the server: the cursor stays before what she received by push.
  cut.last().dropSent = (data) => typeof data === "string" && JSON.parse(data).type === "ack";
  for (const text of ["p1", "p2", "p3"]) await kai.send({ to: j.user }, text);
  await until(() => got.length === 3, 5000, "three pushes");
  // Then nothing crosses: what Kai sends now is only in the store.
  cut.last().muted = true;
  cut.last().dropSent = () => true;
  for (const text of ["q1", "q2", "q3", "q4", "q5"]) await kai.send({ to: j.user }, text);
  const resumed = nextEvent(jill, "session", (s) => s.resumed);
  jill.dropConnection();
  await resumed;
  // Sync pages (of 2) begin with p2 and p3 again, which ask for no new ack of their own: the acks sent again
  // after the resume move the cursor, and sync goes on to the five.
  await until(() => got.length === 8, 5000, "what was sent while the link was dead, by sync");
  assert.deepEqual(
    got.map((d) => d.message.content.text),
    ["p1", "p2", "p3", "q1", "q2", "q3", "q4", "q5"],
  );
  assert.deepEqual(got.slice(3).map((d) => d.source), ["sync", "sync", "sync", "sync", "sync"]);
  await until(async () => {
    const again = client({ token: jill.session.token, autoSync: false });
    await again.connect();
    const rest = await again.sync();
    again.close();
    return rest.length === 0;
  }, 5000, "everything acknowledged in the end");
});

test("errors surface with their protocol codes", async () => {
  const c = client();
  const taken = newAccount("judy");
  await c.register(taken);

  const weak = await client().register({ ...newAccount("kim"), password: "password" }).catch((e) => e);
  assert.ok(weak instanceof ChatError);
  assert.equal(weak.code, "weak_password");
  assert.ok(weak.violations.includes("too_short"), String(weak.violations));
  assert.ok(weak.violations.includes("common"), String(weak.violations));
  assert.equal(weak.request, "register");

  const fresh = newAccount("lou");
  for (const [field, value] of [
    ["username", taken.username.toUpperCase()],
    ["email", taken.email],
    ["phone", taken.phone],
  ]) {
    const err = await client().register({ ...newAccount("lou"), [field]: value }).catch((e) => e);
    assert.equal(err.code, "conflict", `${field}: ${err.message}`);
    assert.equal(err.field, field);
  }

  const anon = client();
  const unauth = await anon.conversations().catch((e) => e);
  assert.equal(unauth.code, "unauthenticated");
  const wrong = await anon.login({ login: taken.username, password: "not the password at all" }).catch((e) => e);
  assert.equal(wrong.code, "unauthenticated");
  const badToken = await client({ token: "no-such-token" }).connect().catch((e) => e);
  assert.equal(badToken.code, "unauthenticated");

  const bad = await c.register(fresh).catch((e) => e);
  assert.equal(bad.code, "forbidden", "a connection carries one account");
  const self = await c.send({ to: c.me }, "to myself").catch((e) => e);
  assert.equal(self.code, "invalid_argument");
  const nobody = await c.send({ to: "0190f7a2-6c1e-7b3a-9f00-000000000000" }, "hi").catch((e) => e);
  assert.equal(nobody.code, "not_found");
  const other = await client().register(newAccount("max"));
  const long = await c.send({ to: other.user }, "x".repeat(20_000)).catch((e) => e);
  assert.equal(long.code, "too_large", "the server refuses text over 16 KiB");
  const huge = await c.send({ to: other.user }, "x".repeat(70_000)).catch((e) => e);
  assert.equal(huge.code, "too_large", "the client refuses frames over 64 KiB before sending");
  assert.equal(c.state, "ready", "and the connection goes on");
});

test("password reset by mailed token revokes the other sessions", async () => {
  const acc = newAccount("mia");
  const mia = client();
  await mia.register(acc);
  const signedOut = nextEvent(mia, "signedout");

  const anon = client();
  await anon.requestPasswordReset(acc.email);
  const { token } = await chatd.waitForResetToken(acc.email);
  const weak = await anon.confirmPasswordReset(token, "short").catch((e) => e);
  assert.equal(weak.code, "weak_password", "the rules apply; the token is not used up");
  const newPassword = "copper kettle meadow 1987 sings";
  await anon.confirmPasswordReset(token, newPassword);
  const reused = await anon.confirmPasswordReset(token, newPassword).catch((e) => e);
  assert.equal(reused.code, "not_found", "the token is single-use");

  assert.equal((await signedOut).reason, "revoked");
  const old = await client().login({ login: acc.username, password: acc.password }).catch((e) => e);
  assert.equal(old.code, "unauthenticated");
  const s = await client().login({ login: acc.username, password: newPassword });
  assert.equal(s.profile.username, acc.username);
});

test("logout ends the session and the token stops working", async () => {
  const acc = newAccount("ned");
  const ned = client();
  const s = await ned.register(acc);
  const closed = nextEvent(ned, "close");
  await ned.logout();
  const { code, willReconnect } = await closed;
  assert.equal(code, 1000);
  assert.equal(willReconnect, false);
  assert.equal(ned.session, null);
  const again = await client({ token: s.token }).connect().catch((e) => e);
  assert.equal(again.code, "unauthenticated");
});

test("over wss://: a chatd serving TLS, its CA trusted by Node", async () => {
  const pki = makeCertificate();
  const tlsChatd = await startChatd(pki.args);
  try {
    assert.match(tlsChatd.wsUrl, /^wss:\/\//);
    // Node reads NODE_EXTRA_CA_CERTS at start-up only: the client runs in a child process.
    const script = `
      import { ChatClient, msgpackCodec } from ${JSON.stringify(new URL("../../dist/index.js", import.meta.url).href)};
      import { newAccount, nextEvent } from ${JSON.stringify(new URL("../support/util.mjs", import.meta.url).href)};
      const url = process.env.CHATD_WSS_URL;
      const open = () => new ChatClient({ url, codec: msgpackCodec, reconnect: false, requestTimeoutMs: 10000 });
      const alice = open(), bob = open();
      const a = await alice.register(newAccount("tlsalice"));
      const b = await bob.register(newAccount("tlsbob"));
      const got = nextEvent(bob, "message", (e) => e.message.from === a.user);
      await alice.send({ to: b.user }, "sealed");
      const { message } = await got;
      console.log("delivered over wss:", message.content.text ?? message.content);
      alice.close(); bob.close();
    `;
    const wsFlag = process.execArgv.filter((a) => a === "--experimental-websocket");
    const child = spawn(process.execPath, [...wsFlag, "--input-type=module", "-e", script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.caPath, CHATD_WSS_URL: tlsChatd.wsUrl },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await new Promise((resolve) => child.once("exit", resolve));
    clearTimeout(timer);
    assert.equal(code, 0, out);
    assert.match(out, /delivered over wss: sealed/);
  } finally {
    assert.equal((await tlsChatd.stop()).code, 0);
    rmSync(pki.dir, { recursive: true, force: true });
  }
});

test("iceServers: STUN alone, and TURN with a credential of coturn's use-auth-secret scheme for this user", async () => {
  const { createHmac } = await import("node:crypto");
  const { writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const secretFile = join(tmpdir(), `chatd-turn-secret-${process.pid}`);
  writeFileSync(secretFile, "binding test secret\n");
  const turnChatd = await startChatd([
    "--turn-url", "stun:stun.example.org:3478",
    "--turn-url", "turn:turn.example.org:3478?transport=udp",
    "--turn-secret-file", secretFile,
    "--turn-ttl-secs", "3600",
  ]);
  try {
    const c = new ChatClient({ url: turnChatd.wsUrl, codec: msgpackCodec, reconnect: false, requestTimeoutMs: 10_000 });
    const session = await c.register(newAccount("iceuser"));
    const before = Math.floor(Date.now() / 1000);
    const { servers, expiresAt } = await c.iceServers();
    assert.deepEqual(servers[0], { urls: ["stun:stun.example.org:3478"] });
    const turn = servers[1];
    assert.deepEqual(turn.urls, ["turn:turn.example.org:3478?transport=udp"]);
    const [expiry, user] = turn.username.split(":");
    assert.equal(user, session.user);
    assert.ok(Number(expiry) >= before + 3600 && Number(expiry) <= before + 3602, `${expiry} is an hour from ${before}`);
    assert.equal(expiresAt, Number(expiry) * 1000);
    // The credential as coturn checks it, computed here independently of chatd.
    assert.equal(turn.credential, createHmac("sha1", "binding test secret").update(turn.username).digest("base64"));
    c.close();
    // The shared chatd has no ICE servers: an empty list, no expiry.
    const plain = client();
    await plain.register(newAccount("icenone"));
    assert.deepEqual(await plain.iceServers(), { servers: [] });
  } finally {
    rmSync(secretFile, { force: true });
    assert.equal((await turnChatd.stop()).code, 0);
  }
});
