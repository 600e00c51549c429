// End-to-end encryption in the web client: people, each in a headless
// Chromium of their own (a profile on disk), against a real chatd on SQLite.
// Alice writes to Bob: the chat is encrypted without anyone asking (the lock),
// both read each other, both see the same safety number and Alice marks Bob
// verified; after a reload Alice still reads the history and her draft. A
// second device of Alice's reads the history once her first one verifies it;
// she turns the key backup on, signs out everywhere, and a fresh browser reads
// the whole history again with the recovery key. A ciphertext altered on its
// way shows as such, and so does another master key for Bob shown by a lying
// server (a warning, the verified mark gone). Bob signs out keeping his keys
// and reads on after signing in again; a private window and altered stored
// keys say what they mean; Bob and a Rust client (chatcore-client's e2e_peer)
// chat encrypted with one safety number. Then the scans: none of the texts typed is in the
// server's database nor anywhere in any browser profile (IndexedDB, Local
// Storage, caches), while a control string put there in clear is found, so
// the scans do read those files.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startChatd } from "../support/chatd.mjs";
import { launchWithProfile, screenshot, serveMissingFromDisk, signUpIn, watchConsole } from "../support/browser.mjs";
import { newAccount } from "../support/util.mjs";
import { rustPeer } from "../support/peer.mjs";

const DESKTOP = { width: 1280, height: 800 };
const root = mkdtempSync(join(tmpdir(), "chatcore-e2e-web-"));
const dbPath = join(root, "chatd.db");

let chatd;
const problems = [];
/** name -> { account, context, page, profile } */
const users = {};
/** Every text typed into a page: none may reach a disk in clear. */
const secrets = [];

function secret(label) {
  const s = `${label}-${Math.random().toString(36).slice(2, 12)}`;
  secrets.push(s);
  return s;
}

before(async () => {
  chatd = await startChatd(["--store", `sqlite:${dbPath}`]);
});

after(async () => {
  for (const u of Object.values(users)) await u.context.close().catch(() => {});
  await chatd?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** A new account `name` in a browser of its own; `prepare(context)` runs before the page opens. */
async function signUp(name, prepare = async () => {}) {
  const account = newAccount(name);
  const profile = join(root, `profile-${name}`);
  const context = await launchWithProfile(profile, { viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await prepare(context);
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = context.pages()[0] ?? (await context.newPage());
  watchConsole(page, name, problems);
  page.setDefaultTimeout(20_000);
  await page.goto(chatd.httpUrl + "/");
  await signUpIn(page, account);
  users[name] = { account, context, page, profile };
  return users[name];
}

/** `name`, another browser (a profile of its own) of the user `of`: signs in there. */
async function signIn(name, of) {
  const account = users[of].account;
  const profile = join(root, `profile-${name}`);
  const context = await launchWithProfile(profile, { viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = context.pages()[0] ?? (await context.newPage());
  watchConsole(page, name, problems);
  page.setDefaultTimeout(20_000);
  page.on("dialog", (d) => void d.accept());
  await page.goto(chatd.httpUrl + "/");
  await page.fill("#signin-login", account.username);
  await page.fill("#signin-password", account.password);
  await page.click("#signin-form button[type=submit]");
  await page.locator("#app").waitFor({ state: "visible" });
  // Keys published: whatever is sent to this user from now on is encrypted for this device too.
  await page.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  users[name] = { account, context, page, profile };
  return users[name];
}

const bubble = (page, text) => page.locator("#message-list li.msg .msg-text:not(.msg-note)", { hasText: text });

async function send(page, text) {
  await page.fill("#composer-text", text);
  await page.press("#composer-text", "Enter");
  // Stored (no longer pending) and shown as text, not as a note.
  await page.locator("#message-list li.msg.mine:not([data-pending])", { hasText: text }).waitFor();
}

/** The safety number on the open chat's contact card, its digits only; the card is closed again. */
async function safetyNumber(page) {
  await page.click("#chat-peer");
  const number = page.locator("#card-safety[data-digits]");
  await number.waitFor();
  const digits = await number.getAttribute("data-digits");
  return digits;
}

test("two people chat encrypted by default: the lock, matching safety numbers, a verified mark, history after a reload", async () => {
  const alice = await signUp("alice");
  const bob = await signUp("bob");
  const a = alice.page;
  const b = bob.page;

  await a.fill("#search", bob.account.username);
  await a.locator(`#directory button.person[data-username="${bob.account.username}"]`).click();
  await a.locator("#peer-lock").waitFor({ state: "visible" });
  const first = secret("hello-bob");
  await send(a, first);

  // Bob's list shows the conversation; opened, the message reads as text, and his header has the lock too.
  await b.locator(`#directory button.person[data-username="${alice.account.username}"]`).click();
  await bubble(b, first).waitFor();
  assert.ok(await b.locator("#peer-lock").isVisible(), "Bob's header shows the lock");
  // Alice is not Bob's contact: her first message is a request, read before it is accepted, answered after.
  await b.click("#request-accept");
  const reply = secret("hello-alice");
  await send(b, reply);
  await bubble(a, reply).waitFor();

  // Bob writes: Alice's header says so, and no longer once he empties his message box.
  await b.fill("#composer-text", secret("thinking"));
  await a.locator("#peer-presence.typing", { hasText: "typing…" }).waitFor();
  await b.fill("#composer-text", "");
  await a.waitForFunction(() => !document.querySelector("#peer-presence")?.classList.contains("typing"));

  // The same safety number on both sides.
  const mine = await safetyNumber(a);
  const theirs = await safetyNumber(b);
  assert.match(mine, /^\d{60}$/);
  assert.equal(mine, theirs, "both see the same safety number");
  assert.ok(!(await a.locator("#peer-verified").isVisible()), "not verified before Alice says so");
  await a.click("#card-verify");
  await a.locator("#card-verified-state", { hasText: "Verified" }).waitFor();
  await screenshot(a, "e2e-safety-number");
  await a.keyboard.press("Escape");
  await b.keyboard.press("Escape");
  await a.locator("#peer-verified").waitFor({ state: "visible" });

  // A draft, typed and left.
  const draft = secret("draft");
  await a.fill("#composer-text", draft);
  await a.locator('body[data-drafts="saved"]').waitFor({ state: "attached" });

  // Reloaded: the session resumes, the chat reopens from the address, the history still reads, and so does the draft.
  await a.reload();
  await a.locator("#app").waitFor({ state: "visible" });
  await bubble(a, first).waitFor();
  await bubble(a, reply).waitFor();
  assert.ok(await a.locator("#peer-lock").isVisible(), "the lock after the reload");
  await a.locator("#peer-verified").waitFor({ state: "visible" });
  await a.waitForFunction((d) => document.querySelector("#composer-text")?.value === d, draft);
  assert.equal(await a.locator("#message-list .msg-note").count(), 0, "nothing unreadable after the reload");
  await screenshot(a, "e2e-chat");

  // A control string in clear, where the scans must find it: proof they read those files.
  await a.evaluate(() => {
    localStorage.setItem("chatcore.scan-control", "scan-control-in-clear");
    const req = indexedDB.open("scan-control", 1);
    req.onupgradeneeded = () => req.result.createObjectStore("s").put("scan-control-in-clear", "k");
  });
  await a.waitForTimeout(200);
  assert.deepEqual(problems, []);
});

/** The chat with `username` opened from the list (the conversation exists: it is among the user's chats). */
async function openChatWith(page, username) {
  await page.locator(`#directory button.person[data-username="${username}"]`).click();
  await page.locator(`#directory button.person.active[data-username="${username}"]`).waitFor();
}

const notes = (page) => page.locator("#message-list .msg-note");

test("a second device: Bob is told, Alice verifies and names it from the first, and it reads the earlier history", async () => {
  const [first, reply] = secrets;
  const bob = users.bob.account.username;
  const phone = (await signIn("alice-phone", "alice")).page;
  await openChatWith(phone, bob);
  // Signed in after those messages: their keys are not here yet, and the page says so rather than showing noise.
  await notes(phone).first().waitFor();
  assert.equal(await bubble(phone, first).count(), 0);

  // Bob's timeline says that Alice added a device.
  await users.bob.page.locator("#message-list .e2e-warning", { hasText: "added a new device" }).waitFor();

  // On the first device, Alice's own card lists the new device with a Verify button; she names it too.
  const a = users.alice.page;
  a.on("dialog", (d) => void (d.type() === "prompt" ? d.accept("Alice's phone") : d.accept()));
  await a.click("#me-button");
  await a.locator("#own-devices button[data-verify]").click();
  await a.locator("#own-devices button[data-verify]").waitFor({ state: "detached" });
  await a.locator("#own-devices li:not(:has-text('This device')) button", { hasText: "Rename" }).click();
  await a.locator("#own-devices li", { hasText: "Alice's phone" }).waitFor();
  await a.keyboard.press("Escape");

  await bubble(phone, first).waitFor();
  await bubble(phone, reply).waitFor();
  assert.equal(await notes(phone).count(), 0, "every earlier message reads on the verified device");
});

let recoveryKey = "";

test("key backup: a fresh browser, after the user signed out everywhere, restores the whole history with the recovery key", async () => {
  const [first, reply] = secrets;
  const bob = users.bob.account.username;
  const a = users.alice.page;
  await a.click("#settings-button");
  await a.click("#backup-enable");
  await a.locator("#backup-key").filter({ hasText: /\w/ }).waitFor();
  recoveryKey = (await a.locator("#backup-key").textContent()).trim();
  assert.match(recoveryKey, /^[0-9A-Z -]{50,}$/);
  await a.click("#backup-saved");
  await a.locator("#backup-status", { hasText: "On:" }).waitFor();
  await a.keyboard.press("Escape");
  // One more message after the backup was made: added to it as it is made.
  const later = secret("after-backup");
  await send(a, later);

  // Signed out everywhere: the phone from the first device's list (its page is signed out), then the first device,
  // which removes its keys from this browser.
  await a.click("#me-button");
  await a.locator("#own-devices li", { hasText: "Alice's phone" }).getByRole("button", { name: "Sign out" }).click();
  await a.locator("#own-devices li", { hasText: "Alice's phone" }).waitFor({ state: "detached" });
  await a.keyboard.press("Escape");
  await users["alice-phone"].page.locator("#signin-form").waitFor({ state: "visible" });
  await a.click("#signout");
  await a.click("#signout-forget");
  await a.locator("#signin-form").waitFor({ state: "visible" });

  const fresh = (await signIn("alice-new", "alice")).page;
  await openChatWith(fresh, bob);
  await notes(fresh).first().waitFor();
  await fresh.locator("#e2e-banner").waitFor({ state: "visible" });
  await fresh.click("#e2e-banner-restore");
  // A typo is refused, clearly, and changes nothing.
  const typo = recoveryKey.replace(/[0-9A-Z]/, (c) => (c === "A" ? "B" : "A"));
  await fresh.fill("#restore-key", typo);
  await fresh.click("#restore-form button[type=submit]");
  await fresh.locator("#restore-error").waitFor({ state: "visible" });
  await fresh.fill("#restore-key", recoveryKey);
  await fresh.click("#restore-form button[type=submit]");
  await fresh.locator("#backup-status", { hasText: "Restored" }).waitFor();
  await fresh.keyboard.press("Escape");
  for (const text of [first, reply, later]) await bubble(fresh, text).waitFor();
  assert.equal(await notes(fresh).count(), 0, "the whole history reads after the restore");
  await fresh.locator("#e2e-banner").waitFor({ state: "hidden" });
  await screenshot(fresh, "e2e-restored");
});

test("a ciphertext altered on its way shows as not decryptable; nothing breaks and the chat goes on", async () => {
  const bob = users.bob.page;
  const { page: alice, context } = users["alice-new"];
  // Someone between chatd and Alice's browser (or chatd itself) changes one byte of the next encrypted message.
  let tamper = false;
  await context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((data) => server.send(data));
    server.onMessage((data) => {
      const frame = typeof data === "string" ? JSON.parse(data) : null;
      // (The next test's liar: another master key for a user, self-signed, as a server could show it.)
      if (forgedMaster && frame?.type === "device_keys") {
        for (const m of frame.master_keys ?? []) if (m.user === forgedMaster.user) m.master_key = forgedMaster.key;
        ws.send(JSON.stringify(frame));
        return;
      }
      const content = frame?.type === "message" ? frame.message?.content : undefined;
      if (tamper && content?.kind === "encrypted") {
        tamper = false;
        const ct = content.ciphertext;
        const i = Math.floor(ct.length / 2);
        content.ciphertext = ct.slice(0, i) + (ct[i] === "A" ? "B" : "A") + ct.slice(i + 1);
        ws.send(JSON.stringify(frame));
        return;
      }
      ws.send(data);
    });
  });
  await alice.reload();
  await alice.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  await bubble(alice, secrets[0]).waitFor();
  tamper = true;
  const altered = secret("altered");
  await send(bob, altered);
  const note = alice.locator("#message-list .msg-note", { hasText: "could not be decrypted" });
  await note.waitFor();
  assert.equal(await bubble(alice, altered).count(), 0, "no part of an altered message is shown as its text");
  const after = secret("still-fine");
  await send(bob, after);
  await bubble(alice, after).waitFor();
});

/** When set, `device_keys` answers to Alice's new browser show `key` as the master key of `user`. */
let forgedMaster = null;

/** A master key as a lying server would show it: a new Ed25519 key, signing itself over the canonical text. */
function forgeMasterKey(user) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const b64 = (buf) => Buffer.from(buf).toString("base64").replace(/=+$/, "");
  const key = b64(Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url"));
  const signature = b64(sign(null, Buffer.from(`chatcore-master-key-v1\n${user}\n${key}`), privateKey));
  return { key, signature };
}

test("a verified contact whose safety number changes: the timeline warns and the verified mark goes", async () => {
  const alice = users["alice-new"].page;
  await alice.click("#chat-peer");
  const before = await alice.locator("#card-safety[data-digits]").getAttribute("data-digits");
  await alice.locator("#card-safety[data-digits]").waitFor();
  const bob = await alice.locator("#card").getAttribute("data-user");
  await alice.click("#card-verify");
  await alice.locator("#card-verified-state", { hasText: "Verified" }).waitFor();
  await alice.keyboard.press("Escape");
  await alice.locator("#peer-verified").waitFor({ state: "visible" });

  forgedMaster = { user: bob, key: forgeMasterKey(bob) };
  // Sending queries the members' keys: the answer now shows another master key for Bob.
  await send(alice, secret("to-a-changed-key"));
  await alice.locator("#message-list .e2e-warning", { hasText: "safety number changed. You had verified them" }).waitFor();
  await alice.locator("#peer-verified").waitFor({ state: "hidden" });
  await alice.click("#chat-peer");
  await alice.locator("#card-verified-state", { hasText: "Not verified" }).waitFor();
  assert.notEqual(await alice.locator("#card-safety[data-digits]").getAttribute("data-digits"), before, "another safety number");
  await alice.keyboard.press("Escape");
  forgedMaster = null;
});

test("signed out keeping the keys, the next sign-in in that browser reads what was read there before", async () => {
  const { page: b, account } = users.bob;
  await b.click("#signout");
  await b.click("#signout-keep");
  await b.locator("#signin-form").waitFor({ state: "visible" });
  await b.fill("#signin-login", account.username);
  await b.fill("#signin-password", account.password);
  await b.click("#signin-form button[type=submit]");
  await b.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  // A new device: without the kept keys these would say "sent before this device joined".
  await openChatWith(b, users.alice.account.username);
  for (const text of secrets.slice(0, 2)) await bubble(b, text).waitFor();
  assert.equal(await notes(b).count(), 0, "the whole history reads on the new device");
});

test("bad states are said, and never lead to clear text: no IndexedDB (a private window), keys that do not open", async () => {
  const bob = users.bob;
  // A private window: no IndexedDB. The keys live in the page; the chat says so, and works encrypted.
  const carol = await signUp("carol", (context) =>
    context.addInitScript(() => Object.defineProperty(window, "indexedDB", { value: undefined, configurable: true })),
  );
  await carol.page.fill("#search", bob.account.username);
  await carol.page.locator(`#directory button.person[data-username="${bob.account.username}"]`).click();
  await carol.page.locator("#e2e-note", { hasText: "keeps no data" }).waitFor();
  const fromPrivate = secret("from-a-private-window");
  await send(carol.page, fromPrivate);
  // A message request for Bob (Carol is not his contact): found by her name, read before it is answered.
  await bob.page.fill("#search", carol.account.username);
  await bob.page.locator(`#directory button.person[data-username="${carol.account.username}"]`).click();
  await bubble(bob.page, fromPrivate).waitFor();
  // Reloaded, the page lost the device's keys: it says so and writes nothing, rather than anything in clear.
  await carol.page.reload();
  await carol.page.locator('body[data-e2e="failed"]').waitFor({ state: "attached" });
  await carol.page.locator("#e2e-note", { hasText: "keys were lost" }).waitFor();
  assert.equal(await carol.page.locator("#composer").isVisible(), false, "no composer where nothing can be encrypted");

  // Stored keys altered on disk: they do not open, the page says so, and the chat is read-only.
  const dave = await signUp("dave");
  await dave.page.fill("#search", bob.account.username);
  await dave.page.locator(`#directory button.person[data-username="${bob.account.username}"]`).click();
  await dave.page.locator("#peer-lock").waitFor({ state: "visible" });
  await dave.page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open("chatcore-e2e");
        req.onsuccess = () => {
          const tx = req.result.transaction("states", "readwrite");
          const store = tx.objectStore("states");
          const keys = store.getAllKeys();
          keys.onsuccess = () => {
            for (const k of keys.result) if (String(k).includes("/device/")) store.put(new Uint8Array([0x43, 0x43, 0x45, 0x57, 1, ...new Array(40).fill(7)]), k);
          };
          tx.oncomplete = () => resolve(undefined);
          tx.onerror = () => reject(tx.error);
        };
      }),
  );
  await dave.page.reload();
  await dave.page.locator('body[data-e2e="failed"]').waitFor({ state: "attached" });
  await dave.page.locator("#e2e-note", { hasText: "do not open" }).waitFor();
  assert.equal(await dave.page.locator("#composer").isVisible(), false);
  assert.deepEqual(problems, []);
});

test("a browser and a Rust client chat encrypted with each other, with one safety number", async () => {
  const rust = rustPeer();
  try {
    const rusty = newAccount("rusty");
    await rust.call({ cmd: "register", url: chatd.wsUrl, ...rusty });
    const b = users.bob.page;
    await b.click("#me-button");
    // Filled once the profile came (until then the card holds whom it showed last).
    await b.locator("#card-presence", { hasText: "This is you" }).waitFor();
    const bobUser = await b.locator("#card").getAttribute("data-user");
    await b.keyboard.press("Escape");
    await rust.call({ cmd: "contact", user: bobUser, action: "request" });
    // Bob opens the chat with the Rust user (encrypted, as every chat the page makes) and accepts the request there.
    // (From the start page: Carol's message request, open until now, keeps the sidebar on the Requests view.)
    await b.goto(chatd.httpUrl + "/");
    await b.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
    await b.fill("#search", rusty.username);
    await b.locator(`#directory button.person[data-username="${rusty.username}"]`).click();
    await b.locator("#peer-lock").waitFor({ state: "visible" });
    await b.locator("#chat-contact-action", { hasText: "Accept" }).click();
    const conv = await b.evaluate(() => decodeURIComponent(location.hash.replace("#chat=", "")));
    const fromBrowser = secret("from-the-browser");
    await send(b, fromBrowser);
    await rust.reads(conv, fromBrowser);
    const fromRust = secret("from-rust");
    await rust.call({ cmd: "send", conv, text: fromRust });
    await bubble(b, fromRust).waitFor();
    const number = (await rust.call({ cmd: "safety_number", user: bobUser })).number.replace(/\D/g, "");
    await b.click("#chat-peer");
    assert.equal(await b.locator("#card-safety[data-digits]").getAttribute("data-digits"), number);
    await b.keyboard.press("Escape");
    assert.ok(!rust.messages.some((m) => m.event === "undecryptable"), JSON.stringify(rust.messages));
    assert.equal(await rust.quit(), 0);
  } finally {
    rust.kill();
  }
});

/** Every file under `dir`. */
function files(dir) {
  return readdirSync(dir, { recursive: true })
    .map((f) => join(dir, String(f)))
    .filter((f) => {
      try {
        return statSync(f).isFile();
      } catch {
        return false;
      }
    });
}

/** Which of `needles` occur in the files under `paths`, as UTF-8 or as UTF-16 (V8 keeps some strings so). */
function scan(paths, needles) {
  const found = new Set();
  for (const f of paths) {
    const bytes = readFileSync(f);
    for (const n of needles) {
      if (bytes.includes(Buffer.from(n, "utf8")) || bytes.includes(Buffer.from(n, "utf16le"))) found.add(n);
    }
  }
  return [...found];
}

test("no text typed is on any disk in clear: not in chatd's database, not in either browser profile", async () => {
  assert.ok(secrets.length >= 5, "the chat tests ran first");
  // Closed first, so that everything the browsers and chatd keep is written out.
  for (const u of Object.values(users)) await u.context.close();
  await chatd.stop();
  const profiles = Object.values(users).flatMap((u) => files(u.profile));
  assert.ok(profiles.some((f) => f.includes("IndexedDB")), "the profiles hold IndexedDB files");
  assert.deepEqual(scan(profiles, ["scan-control-in-clear"]), ["scan-control-in-clear"], "the control string is found in the profiles");
  assert.deepEqual(scan(profiles, secrets), [], "a typed text is in a browser profile in clear");
  const database = files(root).filter((f) => f.startsWith(dbPath));
  assert.deepEqual(scan(database, [users.alice.account.username]), [users.alice.account.username], "the scan reads the database");
  assert.deepEqual(scan(database, secrets), [], "a typed text is in chatd's database in clear");
});
