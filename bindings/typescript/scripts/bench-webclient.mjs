// Benchmark: the web client's longest main-thread task while 10,000 hostile
// messages arrive (huge text, control characters, direction overrides,
// zero-width joiners, emoji runs, HTML). Target: under 50 ms.
//
//   cd bindings/typescript && npm run build && cargo build -p chatd
//   node --experimental-websocket scripts/bench-webclient.mjs [count]
//
// A real chatd (rate limits raised so one sender may send this much), Alice in
// headless Chromium with the chat open, Bob a Node ChatClient sending in
// batches. Long tasks come from the browser's PerformanceObserver('longtask').
import { ChatClient } from "../dist/index.js";
import { startChatd } from "../test/support/chatd.mjs";
import { launchBrowser } from "../test/support/browser.mjs";
import { newAccount } from "../test/support/util.mjs";

const COUNT = Number(process.argv[2] ?? 10_000);
const TEXTS = [
  "A".repeat(2_000),
  "ctrl \u0001\u0007\u001b[31m red \u007f end",
  "\u202Egnp.exe\u202C and \u2067right\u2069 to left",
  "👨\u200D👩\u200D👧\u200D👦 zero\u200Bwidth\u200C\u200Djoiners\uFEFF",
  "😀".repeat(200),
  '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>',
  "see https://example.com/a_b?x=1 *bold* _it_ `code`",
  "short",
];

const chatd = await startChatd(["--send-bytes-per-minute", "1000000000", "--frames-per-second", "100000", "--frame-burst", "100000"]);
const browser = await launchBrowser();
try {
  const alice = newAccount("alice");
  const bob = newAccount("bob");
  const sender = new ChatClient({ url: chatd.wsUrl });
  const bobSession = await sender.register(bob);

  const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  await page.addInitScript(() => {
    window.__longest = 0;
    window.__longtasks = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__longtasks++;
        window.__longest = Math.max(window.__longest, e.duration);
      }
    }).observe({ type: "longtask", buffered: false });
  });
  await page.goto(chatd.httpUrl + "/");
  await page.click("#tab-signup");
  for (const f of ["username", "display_name", "email", "phone", "password"]) await page.fill(`#signup-${f}`, alice[f]);
  await page.click("#signup-form button[type=submit]");
  await page.locator("#app").waitFor({ state: "visible" });
  await page.fill("#search", bob.username);
  await page.locator(`#directory button[data-username="${bob.username}"]`).click();
  await page.locator("#chat-open").waitFor({ state: "visible" });
  await page.evaluate(() => {
    window.__longest = 0;
    window.__longtasks = 0;
  });
  const me = (await page.evaluate(() => localStorage.getItem("chatcore.token"))) && alice.username;
  void me;
  const aliceId = (await sender.searchUsers(alice.username)).users[0].profile.user;

  const started = Date.now();
  const BATCH = 50;
  for (let i = 0; i < COUNT; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(COUNT, i + BATCH); j++) batch.push(sender.send({ to: aliceId }, `${j} ${TEXTS[j % TEXTS.length]}`));
    await Promise.all(batch);
  }
  const sent = Date.now() - started;
  // The newest message on screen (the page shows a window of the newest few hundred, not all 10,000).
  await page.waitForFunction(
    (last) => [...document.querySelectorAll("#message-list .msg .msg-text")].some((t) => t.textContent?.startsWith(last)),
    `${COUNT - 1} `,
    { timeout: 600_000, polling: 500 },
  );
  const shown = Date.now() - started;
  const result = await page.evaluate(() => ({
    longest: window.__longest,
    longtasks: window.__longtasks,
    pwned: "__pwned" in window,
    inPage: document.querySelectorAll("#message-list .msg").length,
  }));
  console.log(
    `${COUNT} messages: sent in ${(sent / 1000).toFixed(1)} s, all shown after ${(shown / 1000).toFixed(1)} s; ` +
      `longest main-thread task ${result.longest.toFixed(0)} ms (target < 50), ${result.longtasks} tasks over 50 ms; ` +
      `${result.inPage} bubbles in the page; markup injected: ${result.pwned}`,
  );
  void bobSession;
  sender.close();
} finally {
  await browser.close();
  await chatd.stop();
}
