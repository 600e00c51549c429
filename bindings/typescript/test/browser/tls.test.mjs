// The web client over https:// and wss:// from a chatd serving TLS, in
// headless Chromium that trusts exactly that certificate's key (no blanket
// --ignore-certificate-errors).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { startChatd } from "../support/chatd.mjs";
import { launchBrowser } from "../support/browser.mjs";
import { makeCertificate } from "../support/tls.mjs";
import { newAccount } from "../support/util.mjs";

let pki;
let chatd;
let browser;

before(async () => {
  pki = makeCertificate();
  chatd = await startChatd(pki.args);
  browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${pki.spki}`]);
});

after(async () => {
  await browser?.close();
  await chatd?.stop();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

test("over https:// and wss://: two users sign up and chat", async () => {
  assert.match(chatd.httpUrl, /^https:\/\//);
  const pages = [];
  const accounts = [newAccount("tlsann"), newAccount("tlsben")];
  for (const account of accounts) {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(10_000);
    const res = await page.goto(chatd.httpUrl + "/");
    assert.equal(res.status(), 200);
    assert.equal(res.headers()["strict-transport-security"], "max-age=31536000");
    await page.click("#tab-signup");
    for (const field of ["username", "display_name", "email", "phone", "password"]) {
      await page.fill(`#signup-${field}`, account[field]);
    }
    await page.click("#signup-form button[type=submit]");
    await page.locator("#app").waitFor({ state: "visible" });
    await page.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
    pages.push(page);
  }
  const [ann, ben] = pages;
  await ann.fill("#search", accounts[1].username);
  await ann.locator(`#directory button.person[data-username="${accounts[1].username}"]`).click();
  await ann.locator("#chat-open").waitFor({ state: "visible" });
  await ann.fill("#composer-text", "Hello over TLS");
  await ann.press("#composer-text", "Enter");
  await ben.locator("#toasts .toast", { hasText: "Hello over TLS" }).first().waitFor({ state: "visible" });
});
