// A message's life in the web client (PROTOCOL.md, *Message life*), two people in real Chromium against a real
// chatd, in their end-to-end encrypted chat: Bob reacts with the keyboard and Alice sees the chip live; Alice
// edits (Up in the empty box) and Bob sees the new text and "edited"; Bob replies and Alice sees the quote; Alice
// deletes for everyone and Bob sees "Message deleted" in its place, the quote too; Bob's reload shows the same
// state from history. Then "Delete for me" (hidden on his devices, his phone too, after a reload too) and the disappearing
// messages setting with its notice line. axe-core finds nothing serious with the menu and picker open.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startChatd } from "../support/chatd.mjs";
import { axeViolations, launchBrowser, makeContacts, screenshot, serveMissingFromDisk, signUpIn, watchConsole } from "../support/browser.mjs";
import { newAccount } from "../support/util.mjs";

const DESKTOP = { width: 1100, height: 720 };

let chatd;
let browser;
const problems = [];
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

async function openChatWith(page, other) {
  const r = page.locator(`#directory button.person[data-username="${other.username}"]`);
  if (!(await r.isVisible())) {
    await page.fill("#search", other.username);
    await r.waitFor();
  }
  await r.click();
  await page.locator("#chat-open").waitFor({ state: "visible" });
  if (await page.locator("#search").isVisible()) await page.fill("#search", "");
}

async function send(page, text) {
  await page.fill("#composer-text", text);
  await page.press("#composer-text", "Enter");
  await page.locator("#message-list .msg.mine:not(.sending):not(.waiting)", { hasText: text }).last().waitFor();
}

/** The bubble saying `text` (mine or theirs). */
const bubble = (page, text, who = "") => page.locator(`#message-list .msg${who ? `.${who}` : ""}`, { hasText: text }).last();

/** Opens the menu of `msg` and picks `item` by its label. */
async function menu(page, msg, item) {
  await msg.hover();
  await msg.locator(".msg-actions").click();
  await page.locator(".msg-menu [role=menuitem]", { hasText: item }).first().click();
}

test("reactions, edits, replies and deletion show live on both sides, and after a reload", async () => {
  const [{ page: alice }, { page: bob }] = await Promise.all([signUp("alice"), signUp("bob")]);
  await makeContacts(users.alice, users.bob);
  await openChatWith(alice, users.bob.account);
  await openChatWith(bob, users.alice.account);

  await send(alice, "Lunch at noon?");
  const onBob = bubble(bob, "Lunch at noon?", "theirs");
  await onBob.waitFor();

  // Bob reacts 👍 with the keyboard: Tab to the message's menu button, Enter, down to React, Enter on 👍.
  await onBob.locator(".msg-actions").focus();
  await bob.keyboard.press("Enter");
  await bob.locator(".msg-menu [role=menuitem]").first().waitFor();
  assert.deepEqual(await bob.locator(".msg-menu [role=menuitem]").allTextContents(), ["Reply", "React", "Delete for me"], "not his: no edit, no delete for everyone");
  assert.equal(await bob.evaluate(() => document.activeElement?.textContent), "Reply", "the menu takes the focus");
  await bob.keyboard.press("ArrowDown");
  await bob.keyboard.press("Enter");
  await bob.locator(".reaction-picker .picker-emoji").first().waitFor();
  assert.deepEqual(await axeViolations(bob, "bob, picker open"), []);
  assert.equal(await bob.evaluate(() => document.activeElement?.getAttribute("aria-label")), "React 👍");
  await bob.keyboard.press("Enter");
  const mine = alice.locator("#message-list .msg.mine", { hasText: "Lunch" }).last();
  await mine.locator(".reaction", { hasText: "👍" }).waitFor();
  assert.equal(await mine.locator(".reaction .reaction-count").textContent(), "1");
  assert.match(await mine.locator(".reaction").getAttribute("title"), /Bob Tester/);
  assert.equal(await onBob.locator(".reaction.mine").getAttribute("aria-pressed"), "true");
  assert.equal(await alice.locator("#message-list .msg").count(), 1, "the reaction is no message of its own");

  // Alice edits it: Up in the empty box, new text, Enter.
  await alice.focus("#composer-text");
  await alice.keyboard.press("ArrowUp");
  assert.equal(await alice.inputValue("#composer-text"), "Lunch at noon?");
  await alice.locator("#compose-context", { hasText: "Editing" }).waitFor();
  await alice.fill("#composer-text", "Lunch at one?");
  await alice.press("#composer-text", "Enter");
  await bob.locator("#message-list .msg.theirs", { hasText: "Lunch at one?" }).waitFor();
  const edited = bubble(bob, "Lunch at one?", "theirs");
  assert.equal(await edited.locator(".msg-edited").textContent(), "edited");
  assert.equal(await bob.locator("#message-list .msg", { hasText: "noon" }).count(), 0, "the old text is gone");
  assert.equal(await edited.locator(".reaction", { hasText: "👍" }).count(), 1, "the reaction stays");
  assert.equal(await alice.inputValue("#composer-text"), "", "the box is empty again");
  await alice.locator("#compose-context").waitFor({ state: "hidden" });

  // Bob replies: the composer shows the quoted line; the sent message shows it above its text.
  await menu(bob, edited, "Reply");
  await bob.locator("#compose-context", { hasText: "Lunch at one?" }).waitFor();
  assert.match(await bob.locator("#compose-context-label").textContent(), /Replying to Alice Tester/);
  await bob.fill("#composer-text", "Sounds good");
  await bob.press("#composer-text", "Enter");
  const reply = bubble(alice, "Sounds good", "theirs");
  await reply.waitFor();
  assert.equal(await reply.locator(".quote .quote-text").textContent(), "Lunch at one?");
  // The quote scrolls to (and focuses) its message.
  await reply.locator(".quote").click();
  assert.equal(await alice.evaluate(() => document.activeElement?.textContent?.includes("Lunch at one?")), true);

  // A second message, reacted to and edited: its state must come back after the reload too.
  await send(alice, "Second thought");
  const second = bubble(bob, "Second thought", "theirs");
  await second.waitFor();
  await menu(bob, second, "React");
  await bob.locator('.reaction-picker [aria-label="React ❤️"]').click();
  await bubble(alice, "Second thought", "mine").locator(".reaction", { hasText: "❤️" }).waitFor();
  await menu(alice, bubble(alice, "Second thought", "mine"), "Edit");
  await alice.fill("#composer-text", "Second thought, edited");
  await alice.press("#composer-text", "Enter");
  await bubble(bob, "Second thought, edited", "theirs").locator(".msg-edited").waitFor();

  // Alice deletes the first for everyone (two steps): Bob sees "Message deleted" in its place, its chip gone.
  await menu(alice, mine, "Delete for everyone");
  await alice.locator(".msg-menu [data-action=delete]", { hasText: "sure?" }).click();
  await bob.locator("#message-list .msg.deleted", { hasText: "Message deleted" }).waitFor();
  const order = await bob.locator("#message-list .msg .msg-text").allTextContents();
  assert.deepEqual(order, ["Message deleted", "Sounds good", "Second thought, edited"], "in its place");
  assert.equal(await bob.locator("#message-list .msg.deleted .reaction").count(), 0, "its reactions are gone");
  await bob.locator("#message-list .msg.mine .quote-text", { hasText: "Message deleted" }).waitFor();
  await screenshot(bob, "life");

  // A reload shows the same, from history and its related entries.
  await bob.reload();
  await bob.locator('body[data-e2e="ready"]').waitFor({ state: "attached", timeout: 20_000 });
  await bob.locator("#message-list .msg", { hasText: "Second thought, edited" }).waitFor();
  assert.deepEqual(await bob.locator("#message-list .msg .msg-text").allTextContents(), ["Message deleted", "Sounds good", "Second thought, edited"]);
  const again = bubble(bob, "Second thought, edited", "theirs");
  assert.equal(await again.locator(".msg-edited").count(), 1);
  assert.equal(await again.locator(".reaction.mine", { hasText: "❤️" }).count(), 1);
  assert.equal(await bob.locator("#message-list .msg.mine .quote-text").textContent(), "Message deleted");

  // Clicking his own chip takes his reaction back.
  await again.locator(".reaction.mine").click();
  await bubble(alice, "Second thought, edited", "mine").locator(".reaction").waitFor({ state: "detached" });

  // Delete for me: hidden on Bob's devices (his phone is told, end-to-end encrypted), after a reload too; Alice
  // still sees it. The phone signed in after the message was sent, so it knows it by its place, not its text.
  const seq = await again.getAttribute("data-seq");
  assert.ok(seq, "the bubble names its seq");
  const phoneContext = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(phoneContext, chatd.httpUrl);
  const phone = await phoneContext.newPage();
  watchConsole(phone, "bob's phone", problems);
  phone.setDefaultTimeout(10_000);
  await phone.goto(chatd.httpUrl + "/");
  await phone.fill("#signin-login", users.bob.account.username);
  await phone.fill("#signin-password", users.bob.account.password);
  await phone.click("#signin-form button[type=submit]");
  await phone.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
  await openChatWith(phone, users.alice.account);
  await phone.locator(`#message-list [data-seq="${seq}"]`).waitFor();
  await menu(bob, again, "Delete for me");
  await bob.locator("#message-list .msg", { hasText: "Second thought" }).waitFor({ state: "detached" });
  await phone.locator(`#message-list [data-seq="${seq}"]`).waitFor({ state: "detached" });
  await phoneContext.close();
  await bob.reload();
  await bob.locator("#message-list .msg", { hasText: "Sounds good" }).waitFor();
  assert.equal(await bob.locator("#message-list .msg", { hasText: "Second thought" }).count(), 0);
  assert.equal(await bubble(alice, "Second thought, edited", "mine").count(), 1);

  // Disappearing messages: Alice sets a day; both see the notice line.
  await alice.selectOption("#chat-timer", String(86_400_000));
  await bob.locator("#message-list .notice-line", { hasText: "set disappearing messages to 1 day" }).waitFor();
  await alice.locator("#message-list .notice-line", { hasText: "You set disappearing messages to 1 day" }).waitFor();
  // Bob's header learns the timer from the notice.
  await bob.waitForFunction(() => /** @type {HTMLSelectElement} */ (document.getElementById("chat-timer")).value === "86400000");
  assert.deepEqual(await axeViolations(alice, "alice"), []);
  assert.deepEqual(problems, []);
});

/** Alice's group with Bob, made through the binding the page serves (a short second session of hers). */
async function groupOf(page, owner, member, title) {
  return page.evaluate(
    async ({ login, password, member, title }) => {
      const { ChatClient } = await import("/chatcore/web.js");
      const c = new ChatClient({ url: `ws://${location.host}/ws`, autoSync: false, reconnect: false });
      try {
        await c.login({ login, password, device: "test set-up" });
        const { users } = await c.searchUsers(member);
        const id = users.find((u) => u.profile.username === member)?.profile.user;
        const g = await c.createGroup({ title, members: [id] });
        await c.logout();
        return g.conv;
      } finally {
        c.close();
      }
    },
    { login: owner.username, password: owner.password, member: member.username, title },
  );
}

test("mentions in a group: @ offers the members, the mentioned one gets the @ badge and a highlight; a reaction is a preview, not unread", async () => {
  const { page: alice, account: aliceAcc } = users.alice;
  const { page: bob, account: bobAcc } = users.bob;
  const conv = await groupOf(alice, aliceAcc, bobAcc, "Lunch club");
  const groupRow = (page) => page.locator(`#directory button.person[data-conv="${conv}"]`);
  await groupRow(alice).click();
  await alice.locator("#chat-open").waitFor({ state: "visible" });
  // Bob keeps his chat with Alice open: the group's messages arrive elsewhere.
  await groupRow(bob).waitFor();

  await alice.locator("#message-list .notice-line").first().waitFor();
  await alice.focus("#composer-text");
  await alice.keyboard.type("@bo");
  const option = alice.locator("#mention-list [role=option]", { hasText: "Bob Tester" });
  await option.waitFor();
  assert.equal(await option.getAttribute("aria-selected"), "true");
  assert.equal(await alice.getAttribute("#composer-text", "aria-activedescendant"), await option.getAttribute("id"));
  await alice.keyboard.press("Enter");
  await alice.locator("#mention-list").waitFor({ state: "hidden" });
  assert.match(await alice.inputValue("#composer-text"), /^@Bob Tester \d+ $/);
  await alice.keyboard.type("table for two?");
  await alice.keyboard.press("Enter");
  await alice.locator("#message-list .msg.mine:not(.sending):not(.waiting)", { hasText: "table for two?" }).waitFor();

  await groupRow(bob).locator(".mention-badge", { hasText: "@" }).waitFor();
  await groupRow(bob).click();
  const ping = bob.locator("#message-list .msg.theirs.mentions-me", { hasText: "table for two?" });
  await ping.waitFor();
  await groupRow(bob).locator(".mention-badge").waitFor({ state: "detached" });

  // Alice goes back to her chat with Bob; Bob reacts in the group: her list says so, with no unread badge.
  await alice.locator(`#directory button.person[data-username="${bobAcc.username}"]`).click();
  await ping.hover();
  await ping.locator(".msg-actions").click();
  await bob.locator(".msg-menu [role=menuitem]", { hasText: "React" }).click();
  await bob.locator('.reaction-picker [aria-label="React 😂"]').click();
  await ping.locator(".reaction", { hasText: "😂" }).waitFor();
  await groupRow(alice).locator(".person-sub", { hasText: /^Bob Tester \d+ reacted 😂$/ }).waitFor();
  assert.equal(await groupRow(alice).locator(".badge").count(), 0, "a reaction is not unread");
  assert.deepEqual(problems, []);
});

test("a photo sent by another client (uploaded with progress) shows as what it is, in the list and in the chat", async () => {
  const { page: alice, account: aliceAcc } = users.alice;
  const { page: bob, account: bobAcc } = users.bob;
  const conv = await groupOf(alice, aliceAcc, bobAcc, "Photo club");
  // Alice's other client (not this page) uploads a picture and sends it into the group by its media id.
  await alice.evaluate(
    async ({ login, password, conv }) => {
      const { ChatClient } = await import("/chatcore/web.js");
      const c = new ChatClient({ url: `ws://${location.host}/ws`, autoSync: false, reconnect: false });
      try {
        await c.login({ login, password, device: "camera" });
        const png = new Uint8Array(300_000);
        png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
        // The page uploads through XMLHttpRequest, the one way a browser tells how far an upload is.
        let xhrSends = 0;
        const send = XMLHttpRequest.prototype.send;
        XMLHttpRequest.prototype.send = function (...args) {
          xhrSends += 1;
          return send.apply(this, args);
        };
        const progress = [];
        const up = await c.upload(png, { onProgress: (sent, total) => progress.push([sent, total]) });
        XMLHttpRequest.prototype.send = send;
        if (xhrSends !== 1) throw new Error(`${xhrSends} XMLHttpRequest uploads`);
        const last = progress.at(-1);
        if (!last || last[0] !== png.length || last[1] !== png.length) throw new Error(`progress ${JSON.stringify(progress)}`);
        if (progress.some(([sent, total], i) => total !== png.length || (i > 0 && sent < progress[i - 1][0]))) {
          throw new Error(`progress that falls or changes its total: ${JSON.stringify(progress)}`);
        }
        const content = { kind: "image", media: up.id, mime: "image/png", width: 2, height: 1, size: up.size, caption: "the view" };
        await c.send({ conv }, content, { media: [up.id] });
        await c.logout();
      } finally {
        c.close();
      }
    },
    { login: aliceAcc.username, password: aliceAcc.password, conv },
  );
  const row = bob.locator(`#directory button.person[data-conv="${conv}"]`);
  await row.locator("text=📷 Photo: the view").waitFor();
  await row.click();
  // In the chat, the photo itself (its caption under it): downloaded in clear from this plain group, where the bytes
  // (a PNG signature and zeros) turn out to be no picture, which the bubble says.
  const photo = bob.locator("#message-list .msg.theirs.has-media", { hasText: "the view" });
  await photo.locator('.media-photo[data-state="failed"]', { hasText: "This photo could not be shown." }).waitFor();
  assert.deepEqual(problems, []);
});
