// Headless Debian Chromium driven by playwright-core. Never downloads a
// browser: it runs /usr/bin/chromium (or $CHROMIUM), with a fresh profile
// (playwright's launch() makes a new temporary user-data-dir each time).
import { chromium } from "playwright-core";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export const repo = fileURLToPath(new URL("../../../../", import.meta.url));
export const webDir = join(repo, "chatd/web");
// Every run saves its screenshots under target/ (git-ignored); with
// UPDATE_SCREENSHOTS=1 they replace the committed ones in docs/screenshots/.
export const screenshotDir = process.env.UPDATE_SCREENSHOTS
  ? join(repo, "docs/screenshots")
  : join(repo, "target/screenshots");

function chromiumPath() {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) throw new Error(`${executablePath} is missing: apt-get install -y chromium`);
  return executablePath;
}

const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Flags for a test that records audio: Chromium's fake microphone (a beeping tone) and no permission prompt
 * (`launchBrowser(FAKE_MEDIA)`).
 */
export const FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"];

/** `extraArgs`: more Chromium flags, e.g. `--ignore-certificate-errors-spki-list=<spki>`. */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: [...extraArgs, ...FLAGS] });
}

/**
 * A browser whose profile lives in `userDataDir` (kept after it closes), so a test can read what the page left on
 * disk. Returns the one context of that browser; `options` as for `newContext`.
 */
export async function launchWithProfile(userDataDir, options = {}) {
  return chromium.launchPersistentContext(userDataDir, { executablePath: chromiumPath(), headless: true, args: FLAGS, ...options });
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

/**
 * FOR DEVELOPMENT ONLY (CHATCORE_WEB_FROM_DISK=1): answers requests for web
 * client files that chatd does not serve (404) from chatd/web/ on disk, so the
 * UI can be worked on before chatd embeds a new file. The test that every file
 * is served by chatd itself still fails in that case.
 */
export async function serveMissingFromDisk(context, httpUrl) {
  if (process.env.CHATCORE_WEB_FROM_DISK !== "1") return;
  // Only the files chatd answers with 404 are routed: a document fulfilled by
  // playwright has no address space, and Chromium's Local Network Access
  // checks then block its WebSocket to 127.0.0.1.
  for (const file of walkFiles(webDir)) {
    const rel = file.slice(webDir.length + 1);
    if (rel === "index.html") continue;
    const res = await fetch(`${httpUrl}/${rel}`);
    await res.arrayBuffer();
    if (res.status !== 404) continue;
    await context.route(`${httpUrl}/${rel}`, (route) =>
      route.fulfill({ status: 200, contentType: TYPES[extname(file)] ?? "application/octet-stream", body: readFileSync(file) }),
    );
  }
}

/** Every file under `dir`, recursively. */
export function walkFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walkFiles(path) : [path];
  });
}

/** Saves a screenshot as <screenshotDir>/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, `${name}.png`) });
}

/** Records uncaught page errors and Content-Security-Policy violations into `problems`. */
export function watchConsole(page, label, problems) {
  page.on("pageerror", (e) => problems.push(`${label}: uncaught ${e.message}`));
  page.on("console", (msg) => {
    const text = msg.text();
    if (msg.type() === "error" && /Content Security Policy|SyntaxError|TypeError|ReferenceError/.test(text)) {
      problems.push(`${label}: console: ${text}`);
    }
  });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** The serious and critical axe-core violations on `page`, each labelled with `label`. */
export async function axeViolations(page, label) {
  // Evaluated through DevTools, so the page's Content-Security-Policy (no inline scripts) does not stop it.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  // Colours are judged at rest: a toast fading in or out blends its text with
  // what is behind it (axe would see a contrast no reader is left with).
  await page.evaluate(async () => {
    for (let round = 0; round < 20; round++) {
      const running = document.getAnimations().filter((a) => a.playState === "running");
      if (running.length === 0) return;
      await Promise.all(running.map((a) => a.finished.catch(() => undefined)));
    }
  });
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ") + " " + (n.failureSummary ?? "").split("\n")[1]?.trim()).join(" | ")}`);
  });
  return found.map((f) => `${label}: ${f}`);
}

/**
 * Makes the users of two signed-in pages (`{ page, account }`) contacts, through the binding each page serves
 * (a short second session of each, signed out after): for tests about something else than message requests,
 * where a first message between strangers would wait for an answer.
 */
export async function makeContacts(a, b) {
  const act = (page, me, other, action) =>
    page.evaluate(
      async ({ login, password, other, action }) => {
        const { ChatClient } = await import("/chatcore/web.js");
        const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
        const c = new ChatClient({ url, autoSync: false, reconnect: false });
        try {
          await c.login({ login, password, device: "test set-up" });
          const { users } = await c.searchUsers(other);
          const id = users.find((u) => u.profile.username === other)?.profile.user;
          if (!id) throw new Error(`no user ${other}`);
          await c.contact(id, action);
          await c.logout();
        } finally {
          c.close();
        }
      },
      { login: me.username, password: me.password, other: other.username, action },
    );
  await act(a.page, a.account, b.account, "request");
  await act(b.page, b.account, a.account, "accept");
}

/**
 * Signs `account` up in `page` (on the sign-in screen) and waits until the app shows and the device's encryption
 * keys are published: whatever is sent to this user from then on is encrypted for this device too.
 */
export async function signUpIn(page, account) {
  await page.click("#tab-signup");
  for (const f of ["username", "display_name", "email", "phone", "password"]) await page.fill(`#signup-${f}`, account[f]);
  await page.click("#signup-form button[type=submit]");
  await page.locator("#app").waitFor({ state: "visible" });
  await page.locator('body[data-e2e="ready"]').waitFor({ state: "attached" });
}
