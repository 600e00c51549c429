// The web client behaving as people expect a messenger to: nothing a user
// typed is lost, notices never cover controls, the reader's place is kept.
// Three users (alice, bob, carol) in three browser contexts against one real
// chatd; the steps run in order and share them. Each step drives the page as
// a user would (clicks at coordinates, keys) and failed before its fix.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startChatd } from "../support/chatd.mjs";
import { axeViolations, launchBrowser, makeContacts, screenshot, serveMissingFromDisk, signUpIn, watchConsole } from "../support/browser.mjs";
import { newAccount } from "../support/util.mjs";
import { startProxy } from "../support/proxy.mjs";


/** axe-core's serious and critical violations on the page as it is now, one line each. */

const DESKTOP = { width: 1100, height: 720 };

let chatd;
let browser;
const problems = [];
/** name -> { account, context, page } */
const users = {};

/** In front of chatd: the dead-link test pauses it. */
let proxy;

before(async () => {
  proxy = await startProxy();
  chatd = await startChatd(["--allowed-origin", proxy.url]);
  proxy.target = chatd.addr;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await chatd?.stop();
  await proxy?.close();
});

async function signUp(name, options = {}) {
  const account = newAccount(name);
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC", ...options });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = await context.newPage();
  watchConsole(page, name, problems);
  page.setDefaultTimeout(10_000);
  await page.goto(chatd.httpUrl + "/");
  await signUpIn(page, account);
  users[name] = { account, context, page };
  return users[name];
}

const row = (page, username) => page.locator(`#directory button.person[data-username="${username}"]`);

/** Opens the chat with `other` from the directory (searching for them first). */
async function openChatWith(page, other) {
  const r = row(page, other.username);
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
  await page.locator("#message-list .msg.mine", { hasText: text }).last().waitFor();
}

/** Waits until the page's fonts (the local "Emoji" face among them) are loaded. */
async function document_fonts_ready(page) {
  await page.evaluate(async () => {
    await document.fonts.load("48px Emoji", "😀");
    await document.fonts.ready;
  });
}

async function waitForText(page, selector, text) {
  await page.locator(selector, { hasText: text }).first().waitFor({ state: "visible" });
}

/** Every visible control (buttons, fields, links) that a notice overlaps, by a short description. */
async function coveredControls(page, noticeSelector) {
  return page.evaluate((sel) => {
    const notices = [...document.querySelectorAll(sel)].map((n) => n.getBoundingClientRect());
    const covered = [];
    for (const el of document.querySelectorAll("button, input, textarea, a[href], select")) {
      if (el.closest(sel) || el.offsetParent === null) continue;
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height) continue;
      for (const n of notices) {
        if (r.left < n.right && n.left < r.right && r.top < n.bottom && n.top < r.bottom) {
          covered.push(`${el.tagName.toLowerCase()}#${el.id || el.className}`);
        }
      }
    }
    return covered;
  }, noticeSelector);
}

test("set-up: three people sign up", async () => {
  await Promise.all([signUp("alice"), signUp("bob"), signUp("carol")]);
  // Contacts: their first messages to one another are chats, not message requests (requests.test.mjs has those).
  await makeContacts(users.alice, users.bob);
  await makeContacts(users.alice, users.carol);
  await makeContacts(users.bob, users.carol);
});

test("a notice never covers the Send button; a draft survives switching conversations", async () => {
  const { page: alice } = users.alice;
  const { page: bob, account: bobAcc } = users.bob;
  const { page: carol } = users.carol;
  await openChatWith(alice, bobAcc);
  await openChatWith(carol, users.alice.account);
  await alice.fill("#composer-text", "See you at eight");
  // Carol writes while Alice is about to press Send: a notice shows on Alice's page.
  await send(carol, "Are you coming tonight?");
  await waitForText(alice, "#toasts .toast", "Are you coming tonight?");
  assert.deepEqual(await coveredControls(alice, "#toasts .toast"), [], "controls covered by a notice");
  // A click where Send is lands on Send, and sends the draft.
  const box = await alice.locator("#composer-send").boundingBox();
  await alice.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await waitForText(bob, "#toasts .toast, #message-list .msg", "See you at eight");
  await waitForText(alice, "#message-list .msg.mine", "See you at eight");
  assert.equal(await alice.inputValue("#composer-text"), "");

  // A draft stays with its conversation while another one is opened.
  await alice.fill("#composer-text", "  half a thought,\nsecond line");
  await openChatWith(alice, users.carol.account);
  assert.equal(await alice.inputValue("#composer-text"), "", "Carol's chat has its own (empty) draft");
  await alice.fill("#composer-text", "for Carol");
  await openChatWith(alice, bobAcc);
  assert.equal(await alice.inputValue("#composer-text"), "  half a thought,\nsecond line");
  await openChatWith(alice, users.carol.account);
  assert.equal(await alice.inputValue("#composer-text"), "for Carol");
});

test("a reload keeps the open conversation (in the address) and every draft", async () => {
  const { page: alice } = users.alice;
  // The drafts are sealed and kept asynchronously: reloaded once they are.
  await alice.locator('body[data-drafts="saved"]').waitFor({ state: "attached" });
  await alice.reload();
  await alice.locator("#chat-open").waitFor({ state: "visible" });
  await waitForText(alice, "#peer-name", users.carol.account.display_name);
  const composerHolds = (text) => alice.waitForFunction((t) => document.querySelector("#composer-text")?.value === t, text);
  await composerHolds("for Carol");
  await openChatWith(alice, users.bob.account);
  await composerHolds("  half a thought,\nsecond line");
  // Sent as typed: the leading spaces stay.
  await alice.press("#composer-text", "Enter");
  await waitForText(users.bob.page, "#toasts .toast", "half a thought");
  const sent = await alice.locator("#message-list .msg.mine .msg-text").last().textContent();
  assert.equal(sent, "  half a thought,\nsecond line");
});

test("opening a conversation with unread messages lands on the first unread, below a divider", async () => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  await openChatWith(alice, users.carol.account);
  await openChatWith(bob, users.alice.account);
  for (let i = 1; i <= 40; i++) await send(bob, `unread ${i}`);
  await waitForText(alice, `#directory button[data-username="${users.bob.account.username}"] .badge`, "40");
  await openChatWith(alice, users.bob.account);
  const divider = alice.locator("#message-list .unread-divider");
  await divider.waitFor({ state: "visible" });
  assert.match(await divider.textContent(), /40 unread messages/);
  // The message after the divider is the first unread, and the view starts there, not at the bottom.
  const next = await divider.evaluate((el) => el.nextElementSibling?.querySelector(".msg-text")?.textContent);
  assert.equal(next, "unread 1");
  const place = await alice.evaluate(() => {
    const box = document.getElementById("messages").getBoundingClientRect();
    const d = document.querySelector("#message-list .unread-divider").getBoundingClientRect();
    return { top: d.top - box.top, height: box.height };
  });
  assert.ok(place.top >= 0 && place.top < place.height / 3, `the divider near the top of the view: ${JSON.stringify(place)}`);
});

test("reading older messages, new ones do not move the view: a pill counts them", async () => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  const box = alice.locator("#messages");
  await box.evaluate((el) => {
    el.scrollTop = 200;
  });
  await alice.waitForTimeout(300); // older pages may load above; the view stays on the same messages
  const anchor = await alice.evaluate(() => {
    const box = document.getElementById("messages").getBoundingClientRect();
    const first = [...document.querySelectorAll("#message-list .msg")].find((m) => m.getBoundingClientRect().top >= box.top);
    return { text: first.textContent, top: first.getBoundingClientRect().top };
  });
  for (let i = 1; i <= 3; i++) await send(bob, `while reading ${i}`);
  const pill = alice.locator("#new-messages");
  await waitForText(alice, "#new-messages", "3 new messages");
  const after = await alice.evaluate((text) => {
    const el = [...document.querySelectorAll("#message-list .msg")].find((m) => m.textContent === text);
    return el.getBoundingClientRect().top;
  }, anchor.text);
  assert.ok(Math.abs(after - anchor.top) < 2, `the view moved by ${after - anchor.top}px`);
  await screenshot(alice, "new-messages-pill");
  await pill.click();
  await alice.waitForFunction(() => {
    const el = document.getElementById("messages");
    return el.scrollHeight - el.scrollTop - el.clientHeight < 4;
  });
  await pill.waitFor({ state: "hidden" });
  // At the bottom, a new message shows at once, without a pill.
  await send(bob, "and now at the bottom");
  await waitForText(alice, "#message-list .msg.theirs", "and now at the bottom");
  assert.equal(await pill.isVisible(), false);
});

test("a dead link is shown within 10 s; the outbox survives a reload and sends once when the link is back", async () => {
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  try {
    const page = await context.newPage();
    watchConsole(page, "alice via proxy", problems);
    page.setDefaultTimeout(10_000);
    await page.goto(proxy.url + "/");
    await page.fill("#signin-login", users.alice.account.username);
    await page.fill("#signin-password", users.alice.account.password);
    await page.click("#signin-form button[type=submit]");
    await page.locator("#app").waitFor({ state: "visible" });
    // A new device: its keys published before the link drops (what it sends is encrypted for Bob's device then).
    await page.locator('body[data-e2e="ready"]').waitFor({ state: "attached", timeout: 20_000 });
    await openChatWith(page, users.bob.account);

    // The Wi-Fi drops: the socket stays open, nothing crosses it.
    proxy.pause();
    const sentAt = Date.now();
    await page.fill("#composer-text", "sent on a dead link");
    await page.press("#composer-text", "Enter");
    await waitForText(page, "#message-list .msg.mine", "sent on a dead link");
    await page.locator('#conn[data-state="offline"]').waitFor({ state: "visible", timeout: 10_000 });
    assert.ok(Date.now() - sentAt < 10_000, `offline shown after ${Date.now() - sentAt} ms`);
    await waitForText(page, "#message-list .msg.mine", "Waiting for connection");
    await screenshot(page, "offline");

    // A reload while offline (it completes when the link is back): the message is in IndexedDB, not in the page.
    const reloading = page.reload();
    await page.waitForTimeout(500);
    // The old connection died with what it held (the send among it): only the outbox can deliver the message.
    proxy.resume({ cut: true });
    await reloading;
    await page.locator("#app").waitFor({ state: "visible", timeout: 20_000 });
    const bob = users.bob.page;
    await openChatWith(bob, users.alice.account);
    // The reloaded page signs in, opens its keys and then sends from its outbox: on a loaded machine that takes
    // longer than a live send (Alice's own copy below has the same 20 s).
    await bob.locator("#message-list .msg.theirs", { hasText: "sent on a dead link" }).first().waitFor({ timeout: 20_000 });
    await page.locator("#message-list .msg.mine:not([data-pending])", { hasText: "sent on a dead link" }).waitFor({ timeout: 20_000 });
    // Sent once: one copy on each side, after a moment for any duplicate to arrive.
    await page.waitForTimeout(500);
    const count = (p) => p.locator("#message-list .msg", { hasText: "sent on a dead link" }).count();
    assert.equal(await count(bob), 1, "bob has it once");
    assert.equal(await count(page), 1, "alice has it once");
    const left = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const req = indexedDB.open("chatcore");
          req.onsuccess = () => {
            // The sealed entries, and those an earlier version kept in clear.
            const tx = req.result.transaction(["outbox-sealed", "outbox"]);
            const sealed = tx.objectStore("outbox-sealed").count();
            const clear = tx.objectStore("outbox").count();
            tx.oncomplete = () => resolve(sealed.result + clear.result);
          };
        }),
    );
    assert.equal(left, 0, "the outbox is empty");
  } finally {
    await context.close();
  }
});

test("a message read back from the outbox before the conversation list came is sent encrypted, never in clear", async () => {
  // After a reload the outbox goes out as soon as the session is back; the conversation it is for may not be known
  // yet (the lists come later). Its text must wait to learn that the conversation is encrypted, not go out in clear.
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  try {
    let dropSends = true;
    let holdLists = false;
    const inClear = [];
    await context.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((data) => {
        const frame = typeof data === "string" ? JSON.parse(data) : null;
        if (frame?.type === "send") {
          if (frame.content?.kind !== "encrypted") inClear.push(frame);
          // Lost on the way (as with a dead link): the message stays in the outbox.
          if (dropSends) return;
        }
        server.send(data);
      });
      server.onMessage((data) => {
        const frame = typeof data === "string" ? JSON.parse(data) : null;
        // After the reload, what tells the page about its conversations comes late (a slow server, a long list).
        if (holdLists && (frame?.type === "conversations" || frame?.type === "conversation")) {
          setTimeout(() => ws.send(data), 3_000);
          return;
        }
        ws.send(data);
      });
    });
    const page = await context.newPage();
    watchConsole(page, "alice, late lists", problems);
    page.setDefaultTimeout(10_000);
    await page.goto(chatd.httpUrl + "/");
    await page.fill("#signin-login", users.alice.account.username);
    await page.fill("#signin-password", users.alice.account.password);
    await page.click("#signin-form button[type=submit]");
    await page.locator('body[data-e2e="ready"]').waitFor({ state: "attached", timeout: 20_000 });
    await openChatWith(page, users.bob.account);
    await page.fill("#composer-text", "kept through a slow reload");
    await page.press("#composer-text", "Enter");
    await waitForText(page, "#message-list .msg.mine", "kept through a slow reload");
    await page.waitForFunction(() => document.querySelector("#message-list .msg.mine[data-pending]"));
    // Encrypted and sent, and lost: give the send a moment to reach the route.
    await page.waitForTimeout(1_000);
    dropSends = false;
    holdLists = true;
    await page.reload();
    const bob = users.bob.page;
    await openChatWith(bob, users.alice.account);
    const seen = await bob
      .locator("#message-list .msg.theirs", { hasText: "kept through a slow reload" })
      .first()
      .waitFor({ timeout: 20_000 })
      .then(() => true, () => false);
    assert.deepEqual(inClear.map((f) => f.content), [], "no message went out in clear");
    assert.ok(seen, "bob reads the message");
  } finally {
    await context.close();
  }
});

test("a message refused for good stays, marked, with Edit and Delete", async () => {
  const { page: alice, context } = users.alice;
  // A send the server refuses for good (`forbidden`, as for a group one was removed from meanwhile). Protocol
  // v2 gives a page no address that reaches such a refusal by itself (ids are opaque, the page hides the composer
  // of a group it left), so the server's reply to the next send is replaced on its way back (the chat is
  // encrypted: its text is not in the frame); everything else passes through unchanged.
  let refuseNext = false;
  await context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((data) => {
      const frame = typeof data === "string" ? JSON.parse(data) : null;
      if (frame?.type === "send" && refuseNext) {
        refuseNext = false;
        ws.send(JSON.stringify({ type: "error", id: frame.id, code: "forbidden", message: "you are not a member of this group" }));
        return;
      }
      server.send(data);
    });
    server.onMessage((data) => ws.send(data));
  });
  await openChatWith(alice, users.bob.account);
  await alice.reload();
  await alice.locator("#chat-open").waitFor({ state: "visible" });
  // What the outbox still held at the reload goes out first: the refusal is for the next message only.
  await alice.waitForFunction(
    () => document.querySelector("#message-list li.msg") && !document.querySelector("#message-list li[data-pending]"),
  );
  await alice.fill("#composer-text", "a note to myself");
  refuseNext = true;
  await alice.press("#composer-text", "Enter");
  const failed = alice.locator("#message-list .msg.failed", { hasText: "a note to myself" });
  await failed.waitFor();
  assert.match(await failed.textContent(), /Not sent/);
  // It survives a reload (still in the outbox, still marked), then Edit gives the text back.
  await alice.reload();
  await failed.waitFor();
  // Dispatched, not clicked at coordinates: right after a reload the rows above still fill in over a few frames,
  // and under a loaded machine a coordinate click raced that layout (once in CI the click missed Edit).
  await failed.locator("button.edit").dispatchEvent("click");
  assert.equal(await alice.inputValue("#composer-text"), "a note to myself");
  // The page redraws once per animation frame: wait for it, do not race it.
  await failed.waitFor({ state: "detached" });
  refuseNext = true;
  await alice.press("#composer-text", "Enter");
  await failed.waitFor();
  await failed.locator("button.delete").click();
  await failed.waitFor({ state: "detached" });
  await alice.reload();
  await alice.locator("#chat-open").waitFor({ state: "visible" });
  await alice.waitForTimeout(300);
  assert.equal(await failed.count(), 0, "deleted for good");
  await alice.fill("#composer-text", "");
  await openChatWith(alice, users.carol.account);
});

test("over-long text: counted in bytes as the server does, refused inline, and kept", async () => {
  const { page: alice } = users.alice;
  await openChatWith(alice, users.carol.account);
  const before = await alice.locator("#message-list .msg").count();
  // A paste of 20,000 characters is not cut.
  await alice.fill("#composer-text", "");
  await alice.focus("#composer-text");
  await alice.keyboard.insertText("a".repeat(20_000));
  assert.equal((await alice.inputValue("#composer-text")).length, 20_000, "nothing cut from a paste");
  // 9,000 "é" are 9,000 characters but 18,000 UTF-8 bytes: over the server's 16 KiB.
  await alice.fill("#composer-text", "é".repeat(9_000));
  await waitForText(alice, "#composer-count", "18,000");
  await alice.press("#composer-text", "Enter");
  await waitForText(alice, "#composer-error", "too long");
  assert.equal(await alice.getAttribute("#composer-text", "aria-invalid"), "true");
  assert.equal(await alice.inputValue("#composer-text"), "é".repeat(9_000), "the text is kept");
  await alice.waitForTimeout(300);
  assert.equal(await alice.locator("#message-list .msg").count(), before, "nothing was sent");
  // Near the limit the counter shows what is left; under it, the message goes.
  await alice.fill("#composer-text", "é".repeat(8_000));
  await waitForText(alice, "#composer-count", "384");
  assert.equal(await alice.locator("#composer-error").isVisible(), false);
  await alice.press("#composer-text", "Enter");
  await alice.locator("#message-list .msg.mine:not([data-pending])", { hasText: "é".repeat(50) }).last().waitFor();
  assert.equal(await alice.locator("#composer-count").isVisible(), false, "no counter far from the limit");
});

test("links are clickable and safe; *bold*, _italic_, `code` and fenced blocks render, HTML never", async () => {
  const { page: alice } = users.alice;
  const { page: carol } = users.carol;
  await openChatWith(alice, users.carol.account);
  await openChatWith(carol, users.alice.account);
  const text =
    "see https://example.com/a_b?x=1&y=(2). *bold* _it_ snake_case_name `co*de*` <b>no</b> javascript:alert(1) mailto:x@example.com\n```\nlet x = 1;\n```";
  await send(carol, "see https://example.com");
  await carol.fill("#composer-text", text);
  await carol.press("#composer-text", "Enter");
  const msg = alice.locator("#message-list .msg.theirs", { hasText: "snake_case_name" }).last();
  await msg.waitFor();
  const links = await msg.locator("a").evaluateAll((as) => as.map((a) => [a.getAttribute("href"), a.rel, a.target, a.textContent]));
  assert.deepEqual(links, [
    ["https://example.com/a_b?x=1&y=(2)", "noopener noreferrer", "_blank", "https://example.com/a_b?x=1&y=(2)"],
    ["mailto:x@example.com", "noopener noreferrer", "_blank", "mailto:x@example.com"],
  ]);
  assert.equal(await msg.locator("strong").textContent(), "bold");
  assert.deepEqual(await msg.locator("em").allTextContents(), ["it"], "snake_case_name is not italic");
  assert.equal(await msg.locator(":not(pre) > code").textContent(), "co*de*");
  assert.equal(await msg.locator("pre code").textContent(), "let x = 1;");
  assert.equal(await msg.locator("b").count(), 0, "<b> is text");
  assert.match(await msg.textContent(), /<b>no<\/b> javascript:alert\(1\)/);
});

test("bad input from a peer or a paste renders as text and keeps the layout", async () => {
  const { page: alice } = users.alice;
  const { page: carol } = users.carol;
  const nasty = [
    "A".repeat(16_000),
    "ctrl \u0001\u0007\u001b[31m red \u007f end",
    "\u202Egnp.exe\u202C and \u2067right\u2069 to left",
    "👨\u200D👩\u200D👧\u200D👦 zero\u200Bwidth\u200C\u200Djoiners\uFEFF",
    "😀".repeat(4_000),
    '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script><style>*{display:none}</style>',
  ];
  await openChatWith(alice, users.carol.account);
  await openChatWith(carol, users.alice.account);
  for (const t of nasty) {
    await carol.fill("#composer-text", t);
    await carol.press("#composer-text", "Enter");
  }
  await waitForText(alice, "#message-list .msg.theirs", "<img src=x");
  const check = await alice.evaluate(() => {
    const list = document.getElementById("message-list");
    const box = document.getElementById("messages").getBoundingClientRect();
    const wide = [...list.querySelectorAll(".msg")].filter((m) => m.getBoundingClientRect().right > box.right + 1).length;
    return {
      markup: list.querySelectorAll("img, script, style, iframe").length,
      pwned: "__pwned" in window,
      wide,
      pageWidth: document.documentElement.scrollWidth,
      viewport: innerWidth,
      sendVisible: (() => {
        const r = document.getElementById("composer-send").getBoundingClientRect();
        return r.bottom <= innerHeight && r.right <= innerWidth && r.width > 0;
      })(),
    };
  });
  assert.deepEqual(check, { markup: 0, pwned: false, wide: 0, pageWidth: check.viewport, viewport: check.viewport, sendVisible: true });
  // The conversation list previews a long message clipped, not laid out whole behind an ellipsis (a long task per
  // arrival in a flood).
  await carol.fill("#composer-text", "B".repeat(5_000));
  await carol.press("#composer-text", "Enter");
  await waitForText(alice, "#message-list .msg.theirs", "BBBB");
  const preview = await alice.evaluate(() =>
    [...document.querySelectorAll("#directory .person-sub")].map((e) => e.textContent ?? "").find((t) => t.includes("BBBB")),
  );
  assert.ok(preview && preview.length <= 170 && preview.endsWith("…"), `clipped preview: ${preview?.length} characters`);
  // A paste of 10,000 emoji stays in the composer (over the limit), and the page keeps its shape.
  await alice.fill("#composer-text", "");
  await alice.focus("#composer-text");
  await alice.keyboard.insertText("😀".repeat(10_000));
  await waitForText(alice, "#composer-count", "too many");
  assert.equal(await alice.evaluate(() => document.documentElement.scrollWidth), DESKTOP.width);
  await screenshot(alice, "bad-input");
  await alice.fill("#composer-text", "");
});

test("messages of one sender within a minute are grouped under one time label", async () => {
  const { page: alice } = users.alice;
  const { page: carol } = users.carol;
  await openChatWith(alice, users.carol.account);
  for (const t of ["one", "two", "three"]) await send(carol, `group ${t}`);
  await waitForText(alice, "#message-list .msg.theirs", "group three");
  const runs = await alice.evaluate(() =>
    [...document.querySelectorAll("#message-list li")].map((li) => ({
      // Lines between messages (a day, the unread divider, a notice such as "turned on end-to-end encryption").
      day: li.classList.contains("day") || li.classList.contains("unread-divider") || li.classList.contains("notice-line"),
      theirs: li.classList.contains("theirs"),
      minute: Math.floor(Number(li.dataset.ts) / 60_000),
      time: !!li.querySelector(".msg-time"),
    })),
  );
  let pairs = 0;
  for (let i = 0; i < runs.length; i++) {
    const a = runs[i];
    const b = runs[i + 1];
    if (a.day) continue;
    const same = b && !b.day && b.theirs === a.theirs && b.minute === a.minute;
    if (same) pairs++;
    assert.equal(a.time, !same, `message ${i}: a time label only at the end of its group`);
  }
  assert.ok(pairs >= 1, "three quick messages make a group");
});

test("the first message from someone new is announced with their name", async () => {
  const { page: alice } = users.alice;
  await openChatWith(alice, users.carol.account);
  const dave = await signUp("dave");
  await openChatWith(dave.page, users.alice.account);
  await send(dave.page, "Hello from a stranger");
  await waitForText(alice, "#toasts .toast", "Hello from a stranger");
  assert.equal(await alice.locator("#toasts .toast .toast-title").textContent(), dave.account.display_name);
});

test("emoji render in colour, and an emoji-only message shows large", async () => {
  const { page: alice } = users.alice;
  const { page: carol } = users.carol;
  await openChatWith(alice, users.carol.account);
  await openChatWith(carol, users.alice.account);
  await send(carol, "🎉👍");
  await send(carol, "party 🎉");
  await waitForText(alice, "#message-list .msg.theirs", "party 🎉");
  const big = alice.locator("#message-list .msg.theirs .msg-text", { hasText: "🎉👍" }).last();
  const sizes = await big.evaluate((el) => {
    const mixed = [...document.querySelectorAll("#message-list .msg-text")].find((m) => m.textContent === "party 🎉");
    return { only: parseFloat(getComputedStyle(el).fontSize), mixed: parseFloat(getComputedStyle(mixed).fontSize) };
  });
  assert.ok(sizes.only >= 2 * sizes.mixed, `emoji-only ${sizes.only}px vs ${sizes.mixed}px`);
  // The font stack names the colour emoji fonts (fallback alone may pick a monochrome font that has the glyph),
  // and text drawn with it has colour pixels, not a monochrome outline.
  const family = await big.evaluate((el) => getComputedStyle(el).fontFamily);
  for (const font of ["Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji"]) assert.ok(family.includes(font), `${font} in ${family}`);
  // 😀 is also in DejaVu Sans (monochrome), the usual sans-serif of Linux: the one that failed.
  await document_fonts_ready(alice);
  for (const emoji of ["🎉", "😀", "❤️"]) {
    const colourful = await big.evaluate((el, emoji) => {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 64;
      const ctx = canvas.getContext("2d");
      ctx.font = `48px ${getComputedStyle(el).fontFamily}`;
      ctx.textBaseline = "top";
      ctx.fillStyle = "#000";
      ctx.fillText(emoji, 4, 4);
      const px = ctx.getImageData(0, 0, 64, 64).data;
      let colour = 0;
      for (let i = 0; i < px.length; i += 4) {
        const [r, g, b, a] = [px[i], px[i + 1], px[i + 2], px[i + 3]];
        if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) colour++;
      }
      return colour;
    }, emoji);
    assert.ok(colourful > 50, `${emoji}: only ${colourful} coloured pixels, a monochrome emoji font`);
  }
});

test("small things: initials are letters, no \"Nobody found.\" before a search, a favicon", async () => {
  // Initials from letters and digits only.
  const { page: dave, account } = users.dave;
  await dave.click("#me-button");
  await dave.locator("#profile-form").waitFor({ state: "visible" });
  await dave.fill("#profile-display_name", "Dave L. <b>x</b>");
  await dave.click("#profile-form button[type=submit]");
  await dave.locator("#card").waitFor({ state: "hidden" });
  // Redrawn on the next animation frame.
  await dave.waitForFunction(() => document.querySelector("#me-avatar")?.textContent === "DB");
  assert.equal(await dave.textContent("#me-avatar"), "DB");
  assert.equal(await dave.textContent("#me-name"), "Dave L. <b>x</b>", "markup in a name is text");
  void account;

  // Signing in, the list is never announced as empty before the search has answered.
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  try {
    await context.addInitScript(() => {
      window.__emptyShown = false;
      new MutationObserver(() => {
        const el = document.getElementById("directory-empty");
        if (el && !el.hidden && document.getElementById("app") && !document.getElementById("app").hidden) window.__emptyShown = true;
      }).observe(document, { subtree: true, attributes: true, childList: true });
    });
    const page = await context.newPage();
    watchConsole(page, "empty check", problems);
    await page.goto(chatd.httpUrl + "/");
    await page.fill("#signin-login", users.bob.account.username);
    await page.fill("#signin-password", users.bob.account.password);
    await page.click("#signin-form button[type=submit]");
    await row(page, users.alice.account.username).waitFor();
    assert.equal(await page.evaluate(() => window.__emptyShown), false, '"Nobody found." showed before any search');
  } finally {
    await context.close();
  }

  const icon = await fetch(`${chatd.httpUrl}/favicon.ico`);
  assert.equal(icon.status, 200);
  assert.match(icon.headers.get("content-type") ?? "", /^image\//);
  await icon.arrayBuffer();
});

test("ticks: one when stored, two when her device has it, blue when she reads it; with read receipts off, none turn blue", async () => {
  const { page: alice } = users.alice;
  const { page: carol } = users.carol;
  // Carol is online with another chat open: her device gets Alice's message, she does not read it yet.
  await openChatWith(carol, users.bob.account);
  await openChatWith(alice, users.carol.account);
  await send(alice, "tick tock");
  const first = alice.locator("#message-list .msg.mine", { hasText: "tick tock" }).last();
  await first.locator(".ticks.delivered").waitFor();
  assert.equal(await first.locator(".ticks").getAttribute("aria-label"), "Delivered");
  assert.equal(await first.locator(".ticks").textContent(), "✓✓");
  await openChatWith(carol, users.alice.account);
  await first.locator(".ticks.read").waitFor();
  assert.equal(await first.locator(".ticks").getAttribute("aria-label"), "Read");
  await screenshot(alice, "ticks-read");

  // Carol turns read receipts off in settings.
  await carol.click("#settings-button");
  await carol.locator("#settings").waitFor({ state: "visible" });
  assert.ok(await carol.isChecked("#privacy-read-receipts"), "on by default");
  await carol.uncheck("#privacy-read-receipts");
  await carol.locator("#privacy-status", { hasText: "Saved." }).waitFor();
  await carol.keyboard.press("Escape");
  await carol.locator("#settings").waitFor({ state: "hidden" });
  await openChatWith(carol, users.bob.account);
  await send(alice, "are you there?");
  const second = alice.locator("#message-list .msg.mine", { hasText: "are you there?" }).last();
  await second.locator(".ticks.delivered").waitFor();
  // She opens the chat (reading it) and answers: her read went out before her answer, on one connection.
  await openChatWith(carol, users.alice.account);
  await send(carol, "yes, reading quietly");
  await alice.locator("#message-list .msg.theirs", { hasText: "yes, reading quietly" }).waitFor();
  assert.equal(await second.locator(".ticks").getAttribute("aria-label"), "Delivered", "her read is not shown");
  assert.equal(await first.locator(".ticks").getAttribute("aria-label"), "Read", "what was shown stays");
  // Alice reads Carol's answer (her chat is open), but Carol, who shares none, is shown none.
  const answer = carol.locator("#message-list .msg.mine", { hasText: "yes, reading quietly" }).last();
  await answer.locator(".ticks.delivered").waitFor();
  await send(alice, "ok!");
  await carol.locator("#message-list .msg.theirs", { hasText: "ok!" }).waitFor();
  assert.equal(await answer.locator(".ticks").getAttribute("aria-label"), "Delivered");
  // On again: Alice's read of the answer shows.
  await carol.click("#settings-button");
  await carol.check("#privacy-read-receipts");
  await carol.locator("#privacy-status", { hasText: "Saved." }).waitFor();
  await carol.keyboard.press("Escape");
  await openChatWith(carol, users.bob.account);
  await openChatWith(carol, users.alice.account);
  await answer.locator(".ticks.read").waitFor();
});

test("dark mode follows the system; a manual choice in settings wins and is kept", async () => {
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC", colorScheme: "dark" });
  try {
    const page = await context.newPage();
    watchConsole(page, "dark", problems);
    page.setDefaultTimeout(10_000);
    await page.goto(chatd.httpUrl + "/");
    /** Relative luminance of the page background and of the panels, 0 (black) to 1 (white). */
    const luminance = () =>
      page.evaluate(() => {
        const lum = (css) => {
          const [r, g, b] = css.match(/\d+(\.\d+)?/g).slice(0, 3).map((v) => Number(v) / 255);
          const f = (c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const panel = document.querySelector(".auth-card:not([hidden]), .sidebar");
        return { page: lum(getComputedStyle(document.documentElement).backgroundColor), panel: lum(getComputedStyle(panel).backgroundColor) };
      });
    let l = await luminance();
    assert.ok(l.page < 0.05 && l.panel < 0.05, `dark by the system: ${JSON.stringify(l)}`);
    await page.fill("#signin-login", users.alice.account.username);
    await page.fill("#signin-password", users.alice.account.password);
    await page.click("#signin-form button[type=submit]");
    await page.locator("#app").waitFor({ state: "visible" });
    await openChatWith(page, users.bob.account);
    l = await luminance();
    assert.ok(l.page < 0.05 && l.panel < 0.05, `dark signed in: ${JSON.stringify(l)}`);
    await screenshot(page, "chat-dark");

    await page.click("#settings-button");
    await page.locator("#settings").waitFor({ state: "visible" });
    await page.check("#theme-light");
    await page.keyboard.press("Escape");
    l = await luminance();
    assert.ok(l.page > 0.7 && l.panel > 0.9, `light by choice: ${JSON.stringify(l)}`);
    await page.reload();
    await page.locator("#app").waitFor({ state: "visible" });
    l = await luminance();
    assert.ok(l.page > 0.7, `the choice is kept: ${JSON.stringify(l)}`);
    await page.click("#settings-button");
    await page.check("#theme-system");
    await page.keyboard.press("Escape");
    l = await luminance();
    assert.ok(l.page < 0.05, `back to the system's: ${JSON.stringify(l)}`);
  } finally {
    await context.close();
  }
});

test("desktop notifications while the page is hidden (permission from a button), a sound that can be turned off, the count in title and favicon", async () => {
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await context.grantPermissions(["notifications"], { origin: chatd.httpUrl });
  // Records what the page does: notifications shown, chimes started; and lets the test hide the page.
  await context.addInitScript(() => {
    window.__notes = [];
    window.__sounds = 0;
    const Real = window.Notification;
    window.Notification = class extends Real {
      constructor(title, options) {
        super(title, options);
        window.__notes.push({ title, body: options?.body });
      }
    };
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (...args) {
      window.__sounds++;
      return start.apply(this, args);
    };
    let hidden = false;
    Object.defineProperty(document, "visibilityState", { get: () => (hidden ? "hidden" : "visible") });
    Object.defineProperty(document, "hidden", { get: () => hidden });
    window.__hide = (h) => {
      hidden = h;
      document.dispatchEvent(new Event("visibilitychange"));
    };
  });
  try {
    const page = await context.newPage();
    watchConsole(page, "notifications", problems);
    page.setDefaultTimeout(10_000);
    await page.goto(chatd.httpUrl + "/");
    await page.fill("#signin-login", users.bob.account.username);
    await page.fill("#signin-password", users.bob.account.password);
    await page.click("#signin-form button[type=submit]");
    await page.locator("#app").waitFor({ state: "visible" });
    await page.click("#settings-button");
    await waitForText(page, "#notify-status", "Desktop notifications are on");
    assert.equal(await page.isChecked("#notify-sound"), true, "sound on by default");
    await page.keyboard.press("Escape");
    const { page: carol } = users.carol;
    await openChatWith(carol, users.bob.account);

    await page.evaluate(() => window.__hide(true));
    await send(carol, "are you there, Bob?");
    await page.waitForFunction(() => window.__notes.length === 1);
    const [note] = await page.evaluate(() => window.__notes);
    assert.equal(note.title, users.carol.account.display_name);
    assert.equal(note.body, "are you there, Bob?");
    assert.ok((await page.evaluate(() => window.__sounds)) > 0, "a chime");
    await page.waitForFunction(() => /^\(\d+\) chatcore$/.test(document.title));
    await page.waitForFunction(() => document.getElementById("favicon").href.startsWith("data:image/png"));

    // Sound off: the next one is silent.
    await page.evaluate(() => window.__hide(false));
    await page.click("#settings-button");
    await page.uncheck("#notify-sound");
    await page.keyboard.press("Escape");
    const before = await page.evaluate(() => window.__sounds);
    await page.evaluate(() => window.__hide(true));
    await send(carol, "still there?");
    await page.waitForFunction(() => window.__notes.length === 2);
    assert.equal(await page.evaluate(() => window.__sounds), before, "no sound once turned off");
  } finally {
    await context.close();
  }
});

test("keyboard: a skip link to the message box, Enter sends and keeps focus, Escape closes dialogs back to their button", async () => {
  const { page: alice } = users.alice;
  await openChatWith(alice, users.bob.account);
  // The skip link is the first stop of the page, before the top bar.
  await alice.focus("#me-button");
  await alice.keyboard.press("Shift+Tab");
  assert.equal(await alice.evaluate(() => document.activeElement?.id), "skip-link", "the first Tab stop");
  assert.ok(await alice.locator("#skip-link").isVisible(), "visible when focused");
  await alice.keyboard.press("Enter");
  assert.equal(await alice.evaluate(() => document.activeElement?.id), "composer-text");
  await alice.keyboard.type("typed without a mouse");
  await alice.keyboard.press("Enter");
  await waitForText(alice, "#message-list .msg.mine", "typed without a mouse");
  assert.equal(await alice.evaluate(() => document.activeElement?.id), "composer-text", "focus stays in the composer");
  for (const [button, dlg] of [["#chat-peer", "#card"], ["#settings-button", "#settings"]]) {
    await alice.focus(button);
    await alice.keyboard.press("Enter");
    await alice.locator(dlg).waitFor({ state: "visible" });
    await alice.keyboard.press("Escape");
    await alice.locator(dlg).waitFor({ state: "hidden" });
    assert.equal(await alice.evaluate(() => "#" + document.activeElement?.id), button, `focus back on ${button}`);
  }
});

test("accessibility: axe-core finds nothing serious or critical on any screen, light, dark or phone", async () => {
  const found = [];
  for (const [scheme, viewport] of [["light", DESKTOP], ["dark", DESKTOP], ["light", { width: 390, height: 780 }]]) {
    const context = await browser.newContext({ viewport, locale: "en-GB", timezoneId: "UTC", colorScheme: scheme });
    const tag = `${scheme} ${viewport.width}px`;
    try {
      const page = await context.newPage();
      watchConsole(page, "axe", problems);
      page.setDefaultTimeout(10_000);
      await page.goto(chatd.httpUrl + "/");
      await page.locator("#signin-form").waitFor({ state: "visible" });
      found.push(...(await axeViolations(page, `${tag} sign-in`)));
      await page.click("#tab-signup");
      found.push(...(await axeViolations(page, `${tag} sign-up`)));
      await page.click("#tab-signin");
      await page.click("#forgot-link");
      found.push(...(await axeViolations(page, `${tag} forgot`)));
      await page.click("#forgot-form .back-to-signin");
      await page.fill("#signin-login", users.bob.account.username);
      await page.fill("#signin-password", users.bob.account.password);
      await page.click("#signin-form button[type=submit]");
      await page.locator("#app").waitFor({ state: "visible" });
      await page.locator('body[data-e2e="ready"]').waitFor({ state: "attached", timeout: 20_000 });
      await row(page, users.alice.account.username).waitFor();
      found.push(...(await axeViolations(page, `${tag} directory`)));
      await openChatWith(page, users.alice.account);
      await send(page, `checking ${tag} with axe`);
      // A notice showing, with its button.
      await openChatWith(users.carol.page, users.bob.account);
      await send(users.carol.page, `axe ${tag}`);
      await page.locator("#toasts .toast").waitFor();
      await page.waitForTimeout(300); // its 0.18 s fade-in over: contrast is judged as people see it
      assert.deepEqual(await coveredControls(page, "#toasts .toast"), [], `${tag}: a notice covers controls`);
      found.push(...(await axeViolations(page, `${tag} chat`)));
      await page.click("#chat-peer");
      await page.locator("#card").waitFor({ state: "visible" });
      found.push(...(await axeViolations(page, `${tag} contact card`)));
      await page.keyboard.press("Escape");
      await page.click("#settings-button");
      await page.locator("#settings").waitFor({ state: "visible" });
      found.push(...(await axeViolations(page, `${tag} settings`)));
      await page.keyboard.press("Escape");
    } finally {
      await context.close();
    }
  }
  assert.deepEqual(found, []);
});

test("the code in the reset mail can be entered in the page", async () => {
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  try {
    const page = await context.newPage();
    watchConsole(page, "reset by code", problems);
    page.setDefaultTimeout(10_000);
    await page.goto(chatd.httpUrl + "/");
    await page.click("#forgot-link");
    const { account } = users.carol;
    await page.fill("#forgot-email", account.email);
    await page.click("#forgot-form button[type=submit]");
    await page.locator("#reset-code").waitFor({ state: "visible" });
    const { token } = await chatd.waitForResetToken(account.email);
    await page.fill("#reset-code", "not-the-code");
    await page.fill("#reset-password", "a brand new lantern 9 sky");
    await page.click("#reset-form button[type=submit]");
    await waitForText(page, "#reset-code-error", "wrong");
    await page.fill("#reset-code", token);
    await page.click("#reset-form button[type=submit]");
    await waitForText(page, "#auth-notice", "Your password was changed");
    await page.fill("#signin-login", account.username);
    await page.fill("#signin-password", "a brand new lantern 9 sky");
    await page.click("#signin-form button[type=submit]");
    await page.locator("#app").waitFor({ state: "visible" });
  } finally {
    await context.close();
  }
});

test("no uncaught errors and no Content-Security-Policy violations in any page", () => {
  assert.deepEqual([...new Set(problems)], []);
});
