// Groups in the web client, four people in four browser contexts against one
// real chatd: Alice makes a group with Bob and Carol from the new-group
// dialog; they chat with names above the messages and notices in the
// timeline; Alice removes Carol, whose page then stops receiving the group;
// Bob leaves; roles and the title change from the group dialog; Carol comes
// back by an invite link, a revoked link says so; a muted group raises no
// notice; an admin shows the history to new members, and only those added
// afterwards read what was said before them. The steps run in order and share
// the pages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startChatd } from "../support/chatd.mjs";
import { axeViolations, launchBrowser, screenshot, serveMissingFromDisk, signUpIn, watchConsole } from "../support/browser.mjs";
import { newAccount } from "../support/util.mjs";

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

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


async function signUp(name) {
  const account = newAccount(name);
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = await context.newPage();
  watchConsole(page, name, problems);
  page.setDefaultTimeout(10_000);
  await page.goto(chatd.httpUrl + "/");
  await signUpIn(page, account);
  users[name] = { account, context, page };
  return users[name];
}

/** Opens the direct chat with `username` from the directory and waits until it is the open chat: the page asks
 * the server for the conversation first, and whatever is sent before then goes to the chat still open. */
async function openDirect(page, username) {
  await page.locator(`#directory button.person[data-username="${username}"]`).click();
  await page.locator(`#directory button.person.active[data-username="${username}"]`).waitFor();
}

const groupRow = (page, title) => page.locator("#directory button.person.group", { hasText: title });
const notice = (page, text) => page.locator("#message-list .notice-line", { hasText: text });
const msg = (page, text) => page.locator("#message-list .msg", { hasText: text });

async function send(page, text) {
  await page.fill("#composer-text", text);
  await page.press("#composer-text", "Enter");
  await page.locator("#message-list .msg.mine", { hasText: text }).last().waitFor();
}

async function openGroupDialog(page) {
  await page.click("#chat-peer");
  await page.locator("#group").waitFor({ state: "visible" });
}

async function closeDialog(page, id) {
  await page.keyboard.press("Escape");
  await page.locator(`#${id}`).waitFor({ state: "hidden" });
}

/** The member row of `name` in the open group dialog. */
const memberRow = (page, name) => page.locator("#group-members li.member", { hasText: users[name].account.display_name });

const TITLE = "Tea party";

test("set-up: four people sign up", async () => {
  await Promise.all(["alice", "bob", "carol", "dave"].map(signUp));
});

test("new group: a name is required (said on its field); members are picked from the directory search", async () => {
  const { page } = users.alice;
  await page.click("#new-group-button");
  await page.locator("#new-group").waitFor({ state: "visible" });
  await page.click("#newgroup-form button[type=submit]");
  await page.locator("#newgroup-title-error").waitFor({ state: "visible" });
  assert.equal(await page.getAttribute("#newgroup-title", "aria-invalid"), "true");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "newgroup-title", "the field at fault has the focus");
  assert.ok(await page.locator("#new-group").isVisible(), "the dialog stays open");
  await page.fill("#newgroup-title", TITLE);
  await page.fill("#newgroup-description", "Mad hatters only");
  for (const name of ["bob", "carol"]) {
    await page.fill("#newgroup-search", users[name].account.username);
    await page.check(`#newgroup-results input[data-username="${users[name].account.username}"]`);
  }
  assert.equal(await page.locator("#newgroup-chosen .chip").count(), 2, "both chosen, across two searches");
  assert.deepEqual(await axeViolations(page, "new group dialog"), []);
  await screenshot(page, "new-group");
  await page.click("#newgroup-form button[type=submit]");
  await page.locator("#new-group").waitFor({ state: "hidden" });
  await page.locator("#peer-name", { hasText: TITLE }).waitFor();
  await page.locator("#peer-presence", { hasText: "3 members" }).waitFor();
  assert.match(page.url(), /#chat=/);
  assert.doesNotMatch(page.url(), /dm%3A|dm:/);
});

test("all three chat: the list shows the group, the timeline the \"added\" notice, names above others' messages", async () => {
  const { page: alice, account: a } = users.alice;
  const { page: bob } = users.bob;
  const { page: carol } = users.carol;
  const added = `${a.display_name} created the group “${TITLE}” and added`;
  await notice(alice, "You created the group").waitFor();
  for (const page of [bob, carol]) {
    const row = groupRow(page, TITLE);
    await row.waitFor();
    assert.match(await row.textContent(), /3 members/);
    await row.click();
    await notice(page, added).waitFor();
  }
  await send(alice, "Welcome to the party");
  await send(bob, "Thanks, Alice");
  await send(carol, "Hello both");
  // Names above the messages of others, never above one's own.
  await msg(alice, "Thanks, Alice").locator(".msg-sender", { hasText: users.bob.account.display_name }).waitFor();
  await msg(alice, "Hello both").locator(".msg-sender", { hasText: users.carol.account.display_name }).waitFor();
  await msg(bob, "Welcome to the party").locator(".msg-sender", { hasText: a.display_name }).waitFor();
  await msg(carol, "Thanks, Alice").locator(".msg-sender", { hasText: users.bob.account.display_name }).waitFor();
  assert.equal(await msg(alice, "Welcome to the party").locator(".msg-sender").count(), 0);
  await screenshot(alice, "group-chat");
});

test("Alice removes Carol: Carol sees her removal, and nothing sent after it reaches her page", async () => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  const { page: carol, account: c } = users.carol;
  await openGroupDialog(alice);
  await memberRow(alice, "carol").waitFor();
  assert.equal(await memberRow(alice, "alice").locator(".role-badge").textContent(), "Owner");
  assert.deepEqual(await axeViolations(alice, "group dialog"), []);
  await screenshot(alice, "group-dialog");
  await memberRow(alice, "carol").locator('button[data-action="remove"]').click();
  await memberRow(alice, "carol").waitFor({ state: "detached" });
  await closeDialog(alice, "group");
  await notice(alice, `You removed ${c.display_name}`).waitFor();
  await notice(carol, "removed you").waitFor();
  await carol.locator("#chat-left").waitFor({ state: "visible" });
  assert.equal(await carol.locator("#composer").isVisible(), false, "no composer for a removed member");
  await send(bob, "after the removal");
  await msg(alice, "after the removal").waitFor();
  await carol.waitForTimeout(1500);
  assert.equal(await msg(carol, "after the removal").count(), 0, "a message after the removal never reaches Carol's page");
  assert.equal(await carol.locator("#directory").textContent().then((t) => t.includes("after the removal")), false);
  // She still reads what was said before.
  assert.equal(await msg(carol, "Hello both").count(), 1);
});

test("Bob leaves: the others see it, and Bob can no longer write", async () => {
  const { page: bob, account: b } = users.bob;
  const { page: alice } = users.alice;
  await openGroupDialog(bob);
  assert.equal(await bob.locator("#group-form").isVisible(), false, "a member does not edit the group");
  assert.equal(await bob.locator("#group-invite-section").isVisible(), false);
  await bob.click("#group-leave");
  await bob.click("#group-leave-yes");
  await bob.locator("#group").waitFor({ state: "hidden" });
  await bob.locator("#chat-left").waitFor({ state: "visible" });
  await notice(alice, `${b.display_name} left`).waitFor();
  await alice.locator("#peer-presence", { hasText: "1 member" }).waitFor();
});

test("roles and settings: Alice adds Dave and makes him an admin; Dave renames the group; Alice sees it all", async () => {
  const { page: alice } = users.alice;
  const { page: dave, account: d } = users.dave;
  await openGroupDialog(alice);
  await alice.fill("#groupadd-search", d.username);
  await alice.check(`#groupadd-results input[data-username="${d.username}"]`);
  await alice.click("#group-add-button");
  await memberRow(alice, "dave").waitFor();
  await memberRow(alice, "dave").locator('button[data-action="promote"]').click();
  await memberRow(alice, "dave").locator(".role-badge", { hasText: "Admin" }).waitFor();
  await closeDialog(alice, "group");
  await notice(alice, `You added ${d.display_name}`).waitFor();
  await notice(alice, `${d.display_name} is now an admin`).waitFor();

  await groupRow(dave, TITLE).click();
  await notice(dave, "You are now an admin").waitFor();
  await openGroupDialog(dave);
  await dave.locator("#group-form").waitFor({ state: "visible" });
  // An error is shown on its field: a title made of invisible characters only.
  await dave.fill("#group-title", "\u200b");
  await dave.click("#group-form button[type=submit]");
  await dave.locator("#group-title-error").waitFor({ state: "visible" });
  await dave.fill("#group-title", "Mad tea party");
  await dave.click("#group-form button[type=submit]");
  await dave.locator("#group-edit-status", { hasText: "Saved." }).waitFor();
  await closeDialog(dave, "group");
  await notice(alice, `${d.display_name} changed the title to “Mad tea party”`).waitFor();
  await alice.locator("#peer-name", { hasText: "Mad tea party" }).waitFor();
  await groupRow(alice, "Mad tea party").waitFor();
});

test("invite link: Carol comes back by it; once revoked, it says it is not valid", async () => {
  const { page: alice } = users.alice;
  const { page: carol, account: c } = users.carol;
  const { page: bob } = users.bob;
  await openGroupDialog(alice);
  await alice.click("#group-invite-create");
  await alice.locator("#group-invite-row").waitFor({ state: "visible" });
  const link = await alice.locator("#group-invite-link").inputValue();
  assert.match(link, /\/#join=[A-Za-z0-9_-]+$/);
  await users.alice.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: chatd.httpUrl });
  await alice.click("#group-invite-copy");
  await alice.locator("#group-invite-status", { hasText: "Link copied." }).waitFor();
  assert.equal(await alice.evaluate(() => navigator.clipboard.readText()), link);
  await closeDialog(alice, "group");
  await carol.goto(link);
  await carol.locator("#peer-name", { hasText: "Mad tea party" }).waitFor();
  await carol.locator("#composer").waitFor({ state: "visible" });
  assert.doesNotMatch(carol.url(), /#join=/, "the token leaves the address");
  await notice(alice, `${c.display_name} joined with an invite link`).waitFor();
  await send(carol, "I am back");
  await msg(alice, "I am back").waitFor();

  await openGroupDialog(alice);
  await alice.click("#group-invite-revoke");
  await alice.locator("#group-invite-status", { hasText: "revoked" }).waitFor();
  await closeDialog(alice, "group");
  await bob.goto(link);
  await bob.locator("#join").waitFor({ state: "visible" });
  assert.match(await bob.locator("#join-text").textContent(), /not valid/);
  assert.deepEqual(await axeViolations(bob, "invalid invite link"), []);
  await bob.click("#join-ok");
  // A made-up token says the same.
  await bob.goto(chatd.httpUrl + "/#join=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  await bob.locator("#join").waitFor({ state: "visible" });
  assert.match(await bob.locator("#join-text").textContent(), /not valid/);
  await bob.click("#join-ok");
});

test("mute: a muted group raises no notice, shows a bell, and unmuting brings notices back", async () => {
  const { page: alice, account: a } = users.alice;
  const { page: carol } = users.carol;
  await carol.click("#chat-mute");
  await carol.locator("#mute").waitFor({ state: "visible" });
  assert.deepEqual(await axeViolations(carol, "mute dialog"), []);
  await carol.click("#mute-8h");
  await carol.locator("#mute").waitFor({ state: "hidden" });
  await carol.locator("#peer-muted").waitFor({ state: "visible" });
  assert.equal(await carol.textContent("#chat-mute"), "Unmute");
  // Carol looks at another conversation: messages in the group would raise a notice, unless muted.
  await carol.fill("#search", a.username);
  await openDirect(carol, a.username);
  await carol.fill("#search", "");
  await groupRow(carol, "Mad tea party").locator(".muted-icon").waitFor();
  await send(alice, "quiet please");
  await groupRow(carol, "Mad tea party").locator(".person-sub", { hasText: "quiet please" }).waitFor();
  await carol.waitForTimeout(800);
  assert.equal(await carol.locator("#toasts .toast", { hasText: "quiet please" }).count(), 0, "no notice for a muted group");
  assert.equal(await groupRow(carol, "Mad tea party").locator(".badge").textContent(), "1", "still counted unread");

  await groupRow(carol, "Mad tea party").click();
  await carol.click("#chat-mute");
  await carol.locator("#peer-muted").waitFor({ state: "hidden" });
  await openDirect(carol, a.username);
  await send(alice, "loud again");
  await carol.locator("#toasts .toast", { hasText: "loud again" }).waitFor();
});

test("keyboard: the group dialog opens from the header by Enter, Escape closes it back to the header; ownership handed over", async () => {
  const { page: alice } = users.alice;
  const { page: dave, account: d } = users.dave;
  await groupRow(alice, "Mad tea party").click();
  await alice.focus("#chat-peer");
  await alice.keyboard.press("Enter");
  await alice.locator("#group").waitFor({ state: "visible" });
  await alice.keyboard.press("Escape");
  await alice.locator("#group").waitFor({ state: "hidden" });
  assert.equal(await alice.evaluate(() => document.activeElement?.id), "chat-peer", "focus back on the button that opened it");
  // The owner hands ownership to Dave (an admin): she is an admin now, and he may set roles.
  await openGroupDialog(alice);
  await memberRow(alice, "dave").locator('button[data-action="owner"]').click();
  await memberRow(alice, "dave").locator(".role-badge", { hasText: "Owner" }).waitFor();
  await memberRow(alice, "alice").locator(".role-badge", { hasText: "Admin" }).waitFor();
  assert.equal(await memberRow(alice, "carol").locator('button[data-action="promote"]').count(), 0, "an admin sets no roles");
  await closeDialog(alice, "group");
  await notice(alice, `${d.display_name} is now the owner`).waitFor();
  await notice(dave, "You are now the owner").waitFor();
  await openGroupDialog(dave);
  await memberRow(dave, "carol").locator('button[data-action="promote"]').waitFor();
  await closeDialog(dave, "group");
});

test("unread: +1 per alert on every device of the user, cleared on the others when one device reads", async () => {
  const { page: dave, account: d } = users.dave;
  const { page: carol, account: c } = users.carol;
  // Dave's second device: a phone-sized page signed in to the same account.
  const context = await browser.newContext({ viewport: PHONE, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const phone = await context.newPage();
  watchConsole(phone, "dave's phone", problems);
  phone.setDefaultTimeout(10_000);
  try {
    await phone.goto(chatd.httpUrl + "/");
    await phone.fill("#signin-login", d.username);
    await phone.fill("#signin-password", d.password);
    await phone.click("#signin-form button[type=submit]");
    await phone.locator("#app").waitFor({ state: "visible" });
    await groupRow(phone, "Mad tea party").waitFor();
    // Dave's desktop shows the group; Carol writes to Dave directly: both devices count it. She is no contact of
    // his, so it is a message request: counted in the Requests view.
    await carol.fill("#search", d.username);
    await openDirect(carol, d.username);
    await carol.fill("#search", "");
    await send(carol, "one for Dave");
    await send(carol, "two for Dave");
    for (const page of [dave, phone]) {
      await page.locator("#requests-badge", { hasText: "1" }).waitFor();
      await page.click("#requests-button");
    }
    const badge = (page) => page.locator(`#requests-list button.person[data-username="${c.username}"] .badge`);
    await badge(dave).filter({ hasText: "2" }).waitFor();
    await badge(phone).filter({ hasText: "2" }).waitFor();
    // Dave reads on the desktop: the phone's count goes too (the read push), without a reload.
    await dave.locator(`#requests-list button.person[data-username="${c.username}"]`).click();
    await msg(dave, "two for Dave").waitFor();
    await badge(dave).waitFor({ state: "detached" });
    await badge(phone).waitFor({ state: "detached" });
    assert.equal(await phone.title(), "chatcore", "no unread count left in the phone's title");
  } finally {
    await context.close();
  }
});

test("phone width: the group screens fit 390 px and pass axe-core", async () => {
  const { page } = users.alice;
  await page.setViewportSize(PHONE);
  await groupRow(page, "Mad tea party").click().catch(() => {});
  await page.locator("#chat-open").waitFor({ state: "visible" });
  await openGroupDialog(page);
  const overflow = await page.evaluate(() => {
    const d = document.getElementById("group");
    return d.scrollWidth - d.clientWidth;
  });
  assert.ok(overflow <= 1, `the group dialog scrolls sideways by ${overflow}px`);
  const box = await page.locator("#group").boundingBox();
  assert.ok(box.width <= 390 && box.height <= 844, JSON.stringify(box));
  assert.deepEqual(await axeViolations(page, "group dialog, phone"), []);
  await screenshot(page, "group-dialog-phone");
  await closeDialog(page, "group");
  await page.click("#chat-mute");
  await page.locator("#mute").waitFor({ state: "visible" });
  assert.deepEqual(await axeViolations(page, "mute dialog, phone"), []);
  await closeDialog(page, "mute");
  await page.click("#chat-back");
  await page.click("#new-group-button");
  await page.locator("#new-group").waitFor({ state: "visible" });
  const wide = await page.evaluate(() => {
    const d = document.getElementById("new-group");
    return { overflow: d.scrollWidth - d.clientWidth, right: d.getBoundingClientRect().right };
  });
  assert.ok(wide.overflow <= 1 && wide.right <= 390, `the new-group dialog fits the phone: ${JSON.stringify(wide)}`);
  assert.deepEqual(await axeViolations(page, "new group dialog, phone"), []);
  await closeDialog(page, "new-group");
  await page.setViewportSize(DESKTOP);
});

test("typing in a group: the others see who writes, by name, until the message comes", async () => {
  const { page: alice, account: a } = users.alice;
  const { page: carol } = users.carol;
  await groupRow(alice, "Mad tea party").click();
  await alice.locator("#peer-name", { hasText: "Mad tea party" }).waitFor();
  await groupRow(carol, "Mad tea party").click();
  await carol.locator("#peer-name", { hasText: "Mad tea party" }).waitFor();
  await alice.fill("#composer-text", "a slow thought");
  await carol.locator("#peer-presence.typing", { hasText: `${a.display_name} is typing…` }).waitFor();
  await alice.press("#composer-text", "Enter");
  await msg(carol, "a slow thought").waitFor();
  await carol.waitForFunction(() => !document.querySelector("#peer-presence")?.classList.contains("typing"));
});

test("history in an encrypted group: new members read from their joining on, and what came before says so", async () => {
  const { page: alice } = users.alice;
  const { page: carol } = users.carol;
  const { page: erin, account: e } = await signUp("erin");
  await groupRow(alice, "Mad tea party").click();
  await alice.locator("#peer-name", { hasText: "Mad tea party" }).waitFor();
  // Made in the web client, the group is end-to-end encrypted: the lock, and no history choice to make.
  await alice.locator("#peer-lock").waitFor({ state: "visible" });
  await send(alice, "said before Erin");

  await groupRow(carol, "Mad tea party").click();
  await openGroupDialog(carol);
  await carol.locator("#group-history-note", { hasText: "End-to-end encrypted: new members read only what is sent after they join" }).waitFor();
  assert.equal(await carol.locator("#group-history").isVisible(), false, "a member does not change it");
  await closeDialog(carol, "group");
  await openGroupDialog(alice);
  // The earlier messages' keys are not shared with new members: an admin has nothing to turn on either.
  await alice.locator("#group-history-note", { hasText: "End-to-end encrypted" }).waitFor();
  assert.equal(await alice.locator("#group-history").isVisible(), false);
  assert.deepEqual(await axeViolations(alice, "group dialog of an encrypted group"), []);
  await alice.fill("#groupadd-search", e.username);
  await alice.check(`#groupadd-results input[data-username="${e.username}"]`);
  await alice.click("#group-add-button");
  await alice.locator("#group-members li.member", { hasText: e.display_name }).waitFor();
  await closeDialog(alice, "group");
  await send(alice, "said after Erin joined");

  await groupRow(erin, "Mad tea party").click();
  await notice(erin, "added you").waitFor();
  await msg(erin, "said after Erin joined").waitFor();
  assert.equal(await msg(erin, "said before Erin").count(), 0, "Erin reads from her joining on");
});

test("no uncaught errors and no Content-Security-Policy violations in any page", () => {
  assert.deepEqual(problems, []);
});
