// Message requests and group invitations in the web client, three people in
// three browser contexts against one real chatd. Bob, no contact of Alice's,
// writes to her: the message waits in her Requests view (a count on its
// button, not in the chat list); she opens it, reads it with an accept bar in
// place of the message box, accepts, and the chat moves to her list and she
// replies. Carol sets "Who can add me to groups" to contacts; Bob adds her to
// a group, which invites her instead (his group screen says so); she accepts
// and joins; she declines another invitation, and one Bob withdraws is gone
// when she answers it. Carol's first message to Alice is deleted; her next one is
// blocked and reported (the `report` frame goes out), and her next message is
// refused. The steps run in order and share the pages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startChatd } from "../support/chatd.mjs";
import { axeViolations, launchBrowser, screenshot, serveMissingFromDisk, signUpIn, watchConsole } from "../support/browser.mjs";
import { newAccount } from "../support/util.mjs";

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
/** What chatd says to whoever a block or a privacy setting turns away (chatcore::contacts::REFUSED). */
const REFUSED = "this user does not accept this from you";
const GROUP = "Book club";

let chatd;
let browser;
const problems = [];
/** name -> { account, context, page, sent } (`sent`: the text frames the page's WebSockets sent) */
const users = {};

before(async () => {
  chatd = await startChatd();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await chatd?.stop();
});

async function signUp(name) {
  const account = newAccount(name);
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = await context.newPage();
  watchConsole(page, name, problems);
  page.setDefaultTimeout(10_000);
  const sent = [];
  page.on("websocket", (ws) => ws.on("framesent", (f) => typeof f.payload === "string" && sent.push(f.payload)));
  await page.goto(chatd.httpUrl + "/");
  await signUpIn(page, account);
  users[name] = { account, context, page, sent };
  return users[name];
}

/** Opens the direct chat with `name` from the directory (searched) and waits until it is the open chat. */
async function openDirect(page, name) {
  const username = users[name].account.username;
  await page.fill("#search", username);
  await page.locator(`#directory button.person[data-username="${username}"]`).click();
  await page.locator("#peer-name", { hasText: users[name].account.display_name }).waitFor();
  await page.fill("#search", "");
}

async function send(page, text) {
  await page.fill("#composer-text", text);
  await page.press("#composer-text", "Enter");
  await page.locator("#message-list .msg.mine", { hasText: text }).last().waitFor();
}

const msg = (page, text) => page.locator("#message-list .msg", { hasText: text });
const requestRow = (page, name) => page.locator(`#requests-list button.person[data-username="${users[name].account.username}"]`);
/** A conversation's row in the chat list (people of the directory without one have no `data-conv`). */
const chatRow = (page, name) => page.locator(`#directory button.person[data-conv][data-username="${users[name].account.username}"]`);

async function closeDialog(page, id) {
  await page.keyboard.press("Escape");
  await page.locator(`#${id}`).waitFor({ state: "hidden" });
}

test("set-up: three people sign up", async () => {
  await Promise.all(["alice", "bob", "carol"].map(signUp));
});

test("Bob's first message waits in Alice's Requests view, counted on its button, not in her chats", async () => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  await openDirect(bob, "alice");
  await send(bob, "Hi Alice, we met at the book fair 📚");
  await alice.locator("#requests-badge", { hasText: "1" }).waitFor();
  await alice.getByRole("button", { name: /^Requests\W*1 waiting$/ }).waitFor();
  assert.equal(await chatRow(alice, "bob").count(), 0, "not in the chat list");
  // By keyboard: the view opens with the focus on its heading.
  await alice.focus("#requests-button");
  await alice.keyboard.press("Enter");
  await alice.locator("#requests-view").waitFor({ state: "visible" });
  assert.equal(await alice.evaluate(() => document.activeElement?.id), "requests-heading");
  await requestRow(alice, "bob").filter({ hasText: "we met at the book fair" }).waitFor();
  assert.match(await requestRow(alice, "bob").textContent(), /Message request/);
  assert.deepEqual(await axeViolations(alice, "requests view"), []);
  await screenshot(alice, "requests");
});

test("Alice opens the request: read-only with an accept bar; she accepts, the chat moves to her list (on her other device too), and she replies", async () => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  // Alice's second device, signed in meanwhile: the request waits there too.
  const context = await browser.newContext({ viewport: PHONE, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const phone = await context.newPage();
  watchConsole(phone, "alice's phone", problems);
  phone.setDefaultTimeout(10_000);
  await phone.goto(chatd.httpUrl + "/");
  await phone.fill("#signin-login", users.alice.account.username);
  await phone.fill("#signin-password", users.alice.account.password);
  await phone.click("#signin-form button[type=submit]");
  await phone.locator("#requests-badge", { hasText: "1" }).waitFor();

  await requestRow(alice, "bob").click();
  await msg(alice, "we met at the book fair").waitFor();
  await alice.locator("#request-bar").waitFor({ state: "visible" });
  assert.equal(await alice.locator("#composer").isVisible(), false, "no message box before accepting");
  assert.match(await alice.locator("#request-text").textContent(), new RegExp(`${users.bob.account.display_name} .*wants to message you`));
  assert.equal(await alice.evaluate(() => document.activeElement?.id), "request-accept", "the answer has the focus");
  assert.deepEqual(await alice.locator("#request-bar button:visible").allTextContents(), ["Accept", "Delete", "Block"]);
  assert.deepEqual(await axeViolations(alice, "request opened"), []);
  await screenshot(alice, "request-open");

  await alice.keyboard.press("Enter");
  await alice.locator("#composer").waitFor({ state: "visible" });
  assert.equal(await alice.locator("#request-bar").isVisible(), false);
  assert.equal(await alice.evaluate(() => document.activeElement?.id), "composer-text");
  await alice.locator("#requests-view").waitFor({ state: "hidden" });
  await chatRow(alice, "bob").locator(".person-sub", { hasText: "we met at the book fair" }).waitFor();
  await alice.locator("#requests-button").waitFor({ state: "hidden" });
  await send(alice, "Hi Bob! Lovely to hear from you");
  await msg(bob, "Lovely to hear from you").waitFor();
  // The other device follows (the `answered` push): no request left, the chat in its list.
  await phone.locator("#requests-button").waitFor({ state: "hidden" });
  await chatRow(phone, "bob").waitFor();
  await context.close();
});

test("Carol lets only her contacts add her to groups; Bob's add invites her, and his group screen says so", async () => {
  const { page: carol } = users.carol;
  const { page: bob } = users.bob;
  await carol.click("#settings-button");
  await carol.locator("#settings").waitFor({ state: "visible" });
  assert.ok(await carol.isChecked("#privacy-groups-everyone"));
  await carol.check("#privacy-groups-contacts");
  await carol.locator("#privacy-status", { hasText: "Saved." }).waitFor();
  assert.deepEqual(await axeViolations(carol, "settings with the groups setting"), []);
  await closeDialog(carol, "settings");

  // Bob makes a group with Alice (who lets anyone add her), then adds Carol from the group screen.
  await bob.click("#new-group-button");
  await bob.locator("#new-group").waitFor({ state: "visible" });
  await bob.fill("#newgroup-title", GROUP);
  await bob.fill("#newgroup-search", users.alice.account.username);
  await bob.check(`#newgroup-results input[data-username="${users.alice.account.username}"]`);
  await bob.click("#newgroup-form button[type=submit]");
  await bob.locator("#new-group").waitFor({ state: "hidden" });
  await bob.locator("#peer-presence", { hasText: "2 members" }).waitFor();
  await bob.click("#chat-peer");
  await bob.locator("#group").waitFor({ state: "visible" });
  await bob.fill("#groupadd-search", users.carol.account.username);
  await bob.check(`#groupadd-results input[data-username="${users.carol.account.username}"]`);
  await bob.click("#group-add-button");
  await bob.locator("#group-add-status", { hasText: `Invited ${users.carol.account.display_name}` }).waitFor();
  await bob.locator(`#group-invited li[data-user]`, { hasText: users.carol.account.display_name }).waitFor();
  assert.equal(await bob.locator("#group-members li.member").count(), 2, "invited, not a member");
  assert.deepEqual(await axeViolations(bob, "group screen with an invitation"), []);
  await closeDialog(bob, "group");
});

test("Carol's invitation: the group, who invited and how many are in it; she accepts and joins", async () => {
  const { page: carol } = users.carol;
  const { page: bob } = users.bob;
  await carol.locator("#requests-badge", { hasText: "1" }).waitFor();
  await carol.click("#requests-button");
  const row = carol.locator("#requests-list button.person.group", { hasText: GROUP });
  await row.locator(".person-sub", { hasText: `Invited by ${users.bob.account.display_name} · 2 members` }).waitFor();
  assert.match(await row.textContent(), /Invitation/);
  await row.click();
  await carol.locator("#request-text", { hasText: `${users.bob.account.display_name} invited you to ${GROUP}.` }).waitFor();
  await carol.locator("#request-hint", { hasText: "2 members" }).waitFor();
  assert.deepEqual(await carol.locator("#request-bar button:visible").allTextContents(), ["Accept", "Decline"]);
  await carol.locator("#history-status", { hasText: "Accept the invitation to read the group." }).waitFor();
  assert.equal(await carol.locator("#chat-mute").isVisible(), false);
  assert.deepEqual(await axeViolations(carol, "group invitation"), []);
  await screenshot(carol, "group-invitation");

  await carol.click("#request-accept");
  await carol.locator("#composer").waitFor({ state: "visible" });
  await carol.locator("#message-list .notice-line", { hasText: "joined" }).waitFor();
  await carol.locator("#directory button.person.group", { hasText: GROUP }).waitFor();
  await send(carol, "Thanks for having me");
  await msg(bob, "Thanks for having me").waitFor();
  await bob.click("#chat-peer");
  await bob.locator("#group").waitFor({ state: "visible" });
  await bob.locator("#group-members li.member", { hasText: users.carol.account.display_name }).waitFor();
  await bob.locator("#group-invited-section").waitFor({ state: "hidden" });
  await closeDialog(bob, "group");
});

test("an invitation declined; another withdrawn by the admin before Carol answers: her answer says it is gone", async () => {
  const { page: carol } = users.carol;
  const { page: bob } = users.bob;
  const other = "Quiet corner";
  await bob.click("#new-group-button");
  await bob.locator("#new-group").waitFor({ state: "visible" });
  await bob.fill("#newgroup-title", other);
  await bob.fill("#newgroup-search", users.carol.account.username);
  await bob.check(`#newgroup-results input[data-username="${users.carol.account.username}"]`);
  await bob.click("#newgroup-form button[type=submit]");
  await bob.locator("#new-group").waitFor({ state: "hidden" });
  await bob.locator("#toasts .toast", { hasText: `Invited ${users.carol.account.display_name}` }).waitFor();
  await bob.locator("#peer-presence", { hasText: "1 member" }).waitFor();

  const row = carol.locator("#requests-list button.person.group", { hasText: other });
  await carol.locator("#requests-badge", { hasText: "1" }).waitFor();
  await carol.click("#requests-button");
  await row.click();
  await carol.click("#request-delete");
  await row.waitFor({ state: "detached" });
  await carol.locator("#requests-status", { hasText: `Invitation to ${other} declined.` }).waitFor();

  // Invited again from the group screen, then withdrawn there: nobody tells Carol, whose answer finds it gone.
  await bob.click("#chat-peer");
  await bob.locator("#group").waitFor({ state: "visible" });
  await bob.fill("#groupadd-search", users.carol.account.username);
  await bob.check(`#groupadd-results input[data-username="${users.carol.account.username}"]`);
  await bob.click("#group-add-button");
  await bob.locator("#group-add-status", { hasText: `Invited ${users.carol.account.display_name}` }).waitFor();
  await row.click();
  await carol.locator("#request-bar").waitFor({ state: "visible" });
  await bob.locator('#group-invited button[data-action="withdraw"]').click();
  await bob.locator("#group-invited-section").waitFor({ state: "hidden" });
  await closeDialog(bob, "group");
  await carol.click("#request-accept");
  await carol.locator("#requests-status", { hasText: "That request is no longer there." }).waitFor();
  await row.waitFor({ state: "detached" });
  await carol.locator("#chat-empty").waitFor({ state: "visible" });
});

test("Alice deletes Carol's request: it leaves the view; Carol's next message is a request again", async () => {
  const { page: alice } = users.alice;
  const { page: carol } = users.carol;
  await openDirect(carol, "alice");
  await send(carol, "Want to buy some miracle tea?");
  await alice.locator("#requests-badge", { hasText: "1" }).waitFor();
  await alice.click("#requests-button");
  await requestRow(alice, "carol").click();
  await msg(alice, "miracle tea").waitFor();
  await alice.click("#request-delete");
  await requestRow(alice, "carol").waitFor({ state: "detached" });
  await alice.locator("#requests-status", { hasText: `Request from ${users.carol.account.display_name} deleted.` }).waitFor();
  await alice.locator("#requests-empty", { hasText: "No message requests or invitations." }).waitFor();
  await alice.locator("#chat-empty").waitFor({ state: "visible" });
  assert.equal(await chatRow(alice, "carol").count(), 0);

  await send(carol, "Really, it cures everything");
  await requestRow(alice, "carol").filter({ hasText: "cures everything" }).waitFor();
});

test("phone width and dark mode: Alice blocks and reports Carol from the request; Carol's next message is refused", async () => {
  const { page: alice, sent } = users.alice;
  const { page: carol } = users.carol;
  await alice.setViewportSize(PHONE);
  await alice.emulateMedia({ colorScheme: "dark" });
  assert.deepEqual(await axeViolations(alice, "requests view, phone, dark"), []);
  await requestRow(alice, "carol").click();
  await msg(alice, "cures everything").waitFor();
  assert.equal(await msg(alice, "miracle tea").count(), 0, "the deleted request's message is gone");
  await alice.locator("#request-bar").waitFor({ state: "visible" });
  const fits = await alice.evaluate(() => {
    const bar = document.getElementById("request-bar");
    return bar.getBoundingClientRect().right <= innerWidth && bar.scrollWidth <= bar.clientWidth + 1;
  });
  assert.ok(fits, "the request bar fits in 390 px");
  assert.deepEqual(await axeViolations(alice, "request, phone, dark"), []);
  await screenshot(alice, "request-phone-dark");

  const carolId = await requestRow(alice, "carol").getAttribute("data-user");
  const conv = await requestRow(alice, "carol").getAttribute("data-conv");
  await alice.click("#request-block");
  await alice.locator("#block-confirm").waitFor({ state: "visible" });
  await alice.locator("#block-report").waitFor({ state: "visible" });
  assert.deepEqual(await axeViolations(alice, "block and report, phone, dark"), []);
  await alice.click("#block-report");
  await alice.locator("#block-confirm").waitFor({ state: "hidden" });
  await alice.locator("#requests-status", { hasText: "blocked and reported" }).waitFor();
  await alice.locator("#requests-view").waitFor({ state: "visible" });
  await requestRow(alice, "carol").waitFor({ state: "detached" });
  const report = sent.map((t) => JSON.parse(t)).find((f) => f.type === "report");
  assert.ok(report, "a report frame went out");
  assert.equal(report.user, carolId);
  assert.equal(report.conv, conv);

  await send(carol, "Hello?");
  await carol.locator("#message-list .msg.failed", { hasText: "Hello?" }).locator(".msg-error", { hasText: REFUSED }).waitFor();
  await alice.setViewportSize(DESKTOP);
  await alice.emulateMedia({ colorScheme: "light" });
});

test("no uncaught errors or CSP violations", () => {
  assert.deepEqual(problems, []);
});
