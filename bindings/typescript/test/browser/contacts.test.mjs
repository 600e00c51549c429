// Contacts, blocks and privacy in the web client, three people in three
// browser contexts (and a second device of Alice's) against one real chatd:
// Alice asks Bob from his card; Bob sees the badge and accepts in the
// Contacts dialog; both list each other. Bob blocks Carol from the chat
// header (asked first): his composer makes way for a notice, Carol's next
// message is refused with the server's words, Bob finds her in the Blocked
// list and unblocks her. Alice's privacy settings change on one device and
// show on the other; Carol, no contact of hers, is then told why a chat with
// Alice does not open. The steps run in order and share the pages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startChatd } from "../support/chatd.mjs";
import { axeViolations, launchBrowser, screenshot, serveMissingFromDisk, signUpIn, watchConsole } from "../support/browser.mjs";
import { newAccount } from "../support/util.mjs";

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** What chatd says to whoever a block or a privacy setting turns away (chatcore::contacts::REFUSED). */
const REFUSED = "this user does not accept this from you";

let chatd;
let browser;
const problems = [];
/** name -> { account, context, page } */
const users = {};

before(async () => {
  chatd = await startChatd();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await chatd?.stop();
});


async function newPage(label) {
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = await context.newPage();
  watchConsole(page, label, problems);
  page.setDefaultTimeout(10_000);
  await page.goto(chatd.httpUrl + "/");
  return { context, page };
}

async function signUp(name) {
  const account = newAccount(name);
  const { context, page } = await newPage(name);
  await signUpIn(page, account);
  users[name] = { account, context, page };
  return users[name];
}

async function openDirect(page, username) {
  await page.locator(`#directory button.person[data-username="${username}"]`).click();
  await page.locator(`#directory button.person.active[data-username="${username}"]`).waitFor();
}

async function send(page, text) {
  await page.fill("#composer-text", text);
  await page.press("#composer-text", "Enter");
}

const row = (page, name) => page.locator(`#contacts-list li.contact-row[data-username="${users[name].account.username}"]`);

async function openContacts(page, tab) {
  await page.click("#contacts-button");
  await page.locator("#contacts").waitFor({ state: "visible" });
  if (tab) await page.click(`#contacts-tab-${tab}`);
}

async function closeDialog(page, id) {
  await page.keyboard.press("Escape");
  await page.locator(`#${id}`).waitFor({ state: "hidden" });
}

test("set-up: three people sign up", async () => {
  await Promise.all(["alice", "bob", "carol"].map(signUp));
});

test("Alice asks Bob from his card: the button follows the state", async () => {
  const { page } = users.alice;
  await openDirect(page, users.bob.account.username);
  await page.click("#chat-peer");
  await page.locator("#card").waitFor({ state: "visible" });
  const action = page.locator("#card-contact-action");
  await action.filter({ hasText: "Add contact" }).waitFor();
  assert.equal(await page.locator("#card-contact-block").textContent(), "Block");
  assert.deepEqual(await axeViolations(page, "contact card"), []);
  await action.click();
  await action.filter({ hasText: "Cancel request" }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), "card-contact-action", "the focus stays on the button");
  await screenshot(page, "contact-card-request");
  await closeDialog(page, "card");
  // The header of the direct chat says the same.
  await page.locator("#chat-contact-action", { hasText: "Cancel request" }).waitFor();
  await openContacts(page, "outgoing");
  await row(page, "bob").waitFor();
  await closeDialog(page, "contacts");
});

test("Bob sees the badge live and accepts in the Contacts dialog; both list each other as contacts", async () => {
  const { page: bob } = users.bob;
  const { page: alice } = users.alice;
  await bob.locator("#contacts-badge", { hasText: "1" }).waitFor();
  assert.equal(await bob.getAttribute("#contacts-button", "aria-label"), "Contacts, 1 request");
  // Opened by keyboard: it opens on the requests, which have the focus.
  await bob.focus("#contacts-button");
  await bob.keyboard.press("Enter");
  await bob.locator("#contacts").waitFor({ state: "visible" });
  assert.equal(await bob.getAttribute("#contacts-tab-incoming", "aria-pressed"), "true");
  assert.equal(await bob.evaluate(() => document.activeElement?.id), "contacts-tab-incoming");
  await row(bob, "alice").waitFor();
  assert.deepEqual(await axeViolations(bob, "contacts dialog, requests"), []);
  await screenshot(bob, "contacts-requests");
  await row(bob, "alice").locator('button[data-action="accept"]').click();
  await row(bob, "alice").waitFor({ state: "detached" });
  await bob.locator("#contacts-badge").waitFor({ state: "hidden" });
  await bob.click("#contacts-tab-contacts");
  await row(bob, "alice").locator(".presence").waitFor();
  assert.deepEqual(await axeViolations(bob, "contacts dialog, contacts"), []);
  await screenshot(bob, "contacts");
  await closeDialog(bob, "contacts");
  // Alice: her request became a contact, by the push.
  await alice.locator("#chat-contact-action").waitFor({ state: "hidden" });
  assert.equal(await alice.locator("#chat-contact-state").textContent(), "Contact");
  await openContacts(alice, "contacts");
  await row(alice, "bob").waitFor();
  await alice.click("#contacts-tab-outgoing");
  await alice.locator("#contacts-empty", { hasText: "No requests sent." }).waitFor();
  await closeDialog(alice, "contacts");
});

test("Bob blocks Carol from the chat header: asked first, then a notice instead of the composer; Carol's message is refused", async () => {
  const { page: bob } = users.bob;
  const { page: carol } = users.carol;
  await openDirect(carol, users.bob.account.username);
  await send(carol, "Hi Bob");
  await carol.locator("#message-list .msg.mine", { hasText: "Hi Bob" }).waitFor();
  // Carol is no contact of Bob's: her message is a request, which Bob accepts before anything else.
  await bob.click("#requests-button");
  await bob.locator(`#requests-list button.person[data-username="${users.carol.account.username}"]`).click();
  await bob.locator("#message-list .msg", { hasText: "Hi Bob" }).waitFor();
  await bob.click("#request-accept");
  await bob.locator("#composer").waitFor({ state: "visible" });
  await bob.locator(`#directory button.person.active[data-username="${users.carol.account.username}"]`).waitFor();
  await bob.click("#chat-contact-block");
  await bob.locator("#block-confirm").waitFor({ state: "visible" });
  assert.match(await bob.locator("#block-question").textContent(), new RegExp(`Block ${users.carol.account.display_name}\\?`));
  assert.equal(await bob.evaluate(() => document.activeElement?.id), "block-no", "the safe answer has the focus");
  assert.deepEqual(await axeViolations(bob, "block confirmation"), []);
  await screenshot(bob, "block-confirm");
  // Escape says no, and the focus goes back to the button.
  await closeDialog(bob, "block-confirm");
  assert.equal(await bob.evaluate(() => document.activeElement?.id), "chat-contact-block");
  assert.ok(await bob.locator("#composer").isVisible());
  await bob.click("#chat-contact-block");
  await bob.click("#block-yes");
  await bob.locator("#block-confirm").waitFor({ state: "hidden" });
  await bob.locator("#chat-blocked", { hasText: "You blocked this user. Unblock to write." }).waitFor();
  assert.equal(await bob.locator("#composer").isVisible(), false);
  assert.equal(await bob.locator("#chat-contact-block").textContent(), "Unblock");
  assert.deepEqual(await axeViolations(bob, "blocked chat"), []);
  await screenshot(bob, "chat-blocked");
  // Carol is told nothing, until she writes: the server's refusal shows on her message.
  assert.equal(await carol.locator("#chat-blocked").isVisible(), false);
  await send(carol, "Are you there?");
  await carol.locator("#message-list .msg.failed", { hasText: "Are you there?" }).locator(".msg-error", { hasText: REFUSED }).waitFor();
});

test("Bob finds Carol in the Blocked list and unblocks her: both can write again", async () => {
  const { page: bob } = users.bob;
  const { page: carol } = users.carol;
  await openContacts(bob, "blocked");
  await row(bob, "carol").waitFor();
  assert.deepEqual(await axeViolations(bob, "blocked list"), []);
  await screenshot(bob, "contacts-blocked");
  await row(bob, "carol").locator('button[data-action="unblock"]').click();
  await row(bob, "carol").waitFor({ state: "detached" });
  await bob.locator("#contacts-empty", { hasText: "You block nobody." }).waitFor();
  await closeDialog(bob, "contacts");
  await bob.locator("#composer").waitFor({ state: "visible" });
  assert.equal(await bob.locator("#chat-blocked").isVisible(), false);
  await send(bob, "Sorry Carol");
  await carol.locator("#message-list .msg", { hasText: "Sorry Carol" }).waitFor();
});

test("Alice's privacy settings: changed on one device, shown live on the other", async () => {
  const { page: alice, account } = users.alice;
  const { page: other } = await newPage("alice-2");
  await other.fill("#signin-login", account.username);
  await other.fill("#signin-password", account.password);
  await other.click("#signin-form button[type=submit]");
  await other.locator("#app").waitFor({ state: "visible" });
  users.alice2 = { page: other };
  await other.click("#settings-button");
  await other.locator("#settings").waitFor({ state: "visible" });
  assert.ok(await other.isChecked("#privacy-direct-everyone"));
  assert.ok(await other.isChecked("#privacy-presence-everyone"));

  await alice.click("#settings-button");
  await alice.locator("#settings").waitFor({ state: "visible" });
  await alice.check("#privacy-direct-contacts");
  await alice.locator("#privacy-status", { hasText: "Saved." }).waitFor();
  await alice.check("#privacy-presence-nobody");
  await alice.locator("#privacy-status", { hasText: "Saved." }).waitFor();
  assert.match(await alice.locator("#privacy-hint").textContent(), /if you hide your online status from someone, you do not see theirs/);
  assert.deepEqual(await axeViolations(alice, "settings with privacy"), []);
  await screenshot(alice, "settings-privacy");
  await closeDialog(alice, "settings");

  await other.waitForFunction(() => /** @type {HTMLInputElement} */ (document.getElementById("privacy-presence-nobody")).checked);
  assert.ok(await other.isChecked("#privacy-direct-contacts"));
  await closeDialog(other, "settings");
});

test("a chat that cannot be opened says why (Carol is no contact of Alice's)", async () => {
  const { page: carol } = users.carol;
  const a = users.alice.account;
  await carol.fill("#search", a.username);
  await carol.locator(`#directory button.person[data-username="${a.username}"]`).click();
  const toast = carol.locator("#toasts .toast", { hasText: a.display_name });
  await toast.locator(".toast-text", { hasText: REFUSED }).waitFor();
  assert.equal(await carol.locator(`#directory button.person.active[data-username="${a.username}"]`).count(), 0);
});

test("phone width and dark mode: the Contacts dialog and a direct chat's header", async () => {
  const { page: bob } = users.bob;
  await bob.setViewportSize(PHONE);
  await bob.emulateMedia({ colorScheme: "dark" });
  // A phone shows the list or the chat: back to the list, where the Contacts button is.
  if (await bob.locator("#chat-back").isVisible()) await bob.click("#chat-back");
  await openContacts(bob, "contacts");
  await row(bob, "alice").waitFor();
  const fits = await bob.evaluate(() => document.getElementById("contacts").getBoundingClientRect().right <= innerWidth);
  assert.ok(fits, "the dialog fits in 390 px");
  assert.deepEqual(await axeViolations(bob, "contacts dialog, phone, dark"), []);
  await screenshot(bob, "contacts-phone-dark");
  await closeDialog(bob, "contacts");
  await bob.locator(`#directory button.person[data-username="${users.carol.account.username}"]`).click();
  await bob.locator("#peer-name", { hasText: users.carol.account.display_name }).waitFor();
  await bob.locator("#chat-contact-block").waitFor();
  const header = await bob.evaluate(() => {
    const h = document.querySelector("#chat-open .chat-header");
    return h ? h.scrollWidth <= h.clientWidth + 1 : false;
  });
  assert.ok(header, "the chat header does not overflow at 390 px");
  assert.deepEqual(await axeViolations(bob, "chat, phone, dark"), []);
  await screenshot(bob, "chat-contact-phone-dark");
  await bob.setViewportSize(DESKTOP);
  await bob.emulateMedia({ colorScheme: "light" });
});

test("no uncaught errors or CSP violations", () => {
  assert.deepEqual(problems, []);
});
