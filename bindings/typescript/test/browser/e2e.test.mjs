// End-to-end encryption in the web client: two people, each in a headless
// Chromium of their own (a profile on disk), against a real chatd on SQLite.
// Alice writes to Bob: the chat is encrypted without anyone asking (the lock),
// both read each other, both see the same safety number and Alice marks Bob
// verified; after a reload Alice still reads the history and her draft. Then
// the scans: none of the texts typed is in the server's database nor anywhere
// in either browser's profile (IndexedDB, Local Storage, caches), while a
// control string put there in clear is found, so the scans do read those files.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startChatd } from "../support/chatd.mjs";
import { launchWithProfile, screenshot, serveMissingFromDisk, watchConsole } from "../support/browser.mjs";
import { newAccount } from "../support/util.mjs";

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

async function signUp(name) {
  const account = newAccount(name);
  const profile = join(root, `profile-${name}`);
  const context = await launchWithProfile(profile, { viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = context.pages()[0] ?? (await context.newPage());
  watchConsole(page, name, problems);
  page.setDefaultTimeout(20_000);
  await page.goto(chatd.httpUrl + "/");
  await page.click("#tab-signup");
  for (const f of ["username", "display_name", "email", "phone", "password"]) await page.fill(`#signup-${f}`, account[f]);
  await page.click("#signup-form button[type=submit]");
  await page.locator("#app").waitFor({ state: "visible" });
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
  await a.waitForTimeout(300);

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
  assert.ok(secrets.length >= 3, "the chat test ran first");
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
