// Profile and group pictures in the web client, two people in two browser contexts against one real chatd: Alice
// picks a picture from her card with the keyboard (a 300×200 PNG with four coloured bands and a tEXt chunk), the
// page crops it to its centre square, scales and re-encodes it, uploads it and sets it; Bob's directory, chat list,
// chat header and contact card show it (a square <img> whose pixels are the picture's middle bands), downloaded
// once, with the token in a header only, and with no text chunk or EXIF left (the bytes Alice's page uploaded). Alice removes it: Bob sees initials
// again, pushed (profile_changed), no reload. Alice sets a picture on a group: Bob's list and header show it, and
// his group dialog (he is no admin) offers no picture controls. Signing out revokes the pictures' object URLs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { crc32, deflateSync } from "node:zlib";
import { createHash } from "node:crypto";
import { startChatd } from "../support/chatd.mjs";
import { axeViolations, launchBrowser, makeContacts, screenshot, serveMissingFromDisk, signUpIn, watchConsole } from "../support/browser.mjs";
import { newAccount, until } from "../support/util.mjs";

const DESKTOP = { width: 1280, height: 800 };
const MARKER = "SECRET-avatar-marker-0451";

let chatd;
let browser;
const problems = [];
/** name -> { account, context, page, media: { url, auth, body }[], uploads: { id, size, sha256 }[] } */
const users = {};

before(async () => {
  chatd = await startChatd();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await chatd?.stop();
});

/** A PNG of `w`×`h` whose pixel (x, y) is `colour(x, y)` ([r, g, b]), with a tEXt chunk holding MARKER. */
function png(w, h, colour) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    const row = y * (w * 3 + 1);
    for (let x = 0; x < w; x++) raw.set(colour(x, y), row + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("tEXt", Buffer.from(`Comment\0${MARKER}`, "latin1")),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const GREEN = [0, 160, 0];
const RED = [220, 0, 0];
const BLUE = [0, 0, 220];
const YELLOW = [230, 220, 0];
const MAGENTA = [200, 0, 200];
const CYAN = [0, 190, 190];
/** 300×200: bands green | red | blue | yellow at x 0, 50, 150, 250. Its centre square (x 50–250) is red | blue. */
const PROFILE_PNG = png(300, 200, (x) => (x < 50 ? GREEN : x < 150 ? RED : x < 250 ? BLUE : YELLOW));
/** 200×300: bands cyan | magenta | cyan at y 0, 50, 250: its centre square is all magenta. */
const GROUP_PNG = png(200, 300, (_x, y) => (y < 50 || y >= 250 ? CYAN : MAGENTA));

const hasMarkers = (buf) =>
  ["tEXt", "eXIf", "Exif", MARKER].filter((m) => buf.includes(Buffer.from(m, "latin1"))).concat(
    // A JPEG APP1 (EXIF/XMP) segment.
    buf.includes(Buffer.from([0xff, 0xe1])) ? ["APP1"] : [],
  );

async function signUp(name) {
  const account = newAccount(name);
  const context = await browser.newContext({ viewport: DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  await serveMissingFromDisk(context, chatd.httpUrl);
  const page = await context.newPage();
  watchConsole(page, name, problems);
  page.setDefaultTimeout(10_000);
  const user = { account, context, page, media: [], uploads: [] };
  // What the page fetches of /media: the address, the Authorization header, the bytes.
  page.on("response", async (res) => {
    const url = res.url();
    // The media endpoint only (POST /media, GET /media/{id}), not the web client's own ui/media*.js modules.
    const path = new URL(url).pathname;
    if (path !== "/media" && !path.startsWith("/media/")) return;
    const req = res.request();
    if (req.method() === "POST") {
      // The server's answer says what it stored: its id, size and SHA-256.
      user.uploads.push(await res.json().catch(() => ({})));
      return;
    }
    user.media.push({ url, auth: (await req.allHeaders()).authorization ?? "", body: await res.body().catch(() => Buffer.alloc(0)) });
  });
  await page.goto(chatd.httpUrl + "/");
  await signUpIn(page, account);
  users[name] = user;
  return user;
}

/** What the <img> of the avatar `selector` shows: its decoded size, and the colours at fractions of its width and height. */
async function pictureOf(page, selector, points) {
  const img = page.locator(`${selector} img`);
  await img.waitFor({ state: "attached" });
  await page.waitForFunction((sel) => {
    const el = document.querySelector(`${sel} img`);
    return el instanceof HTMLImageElement && el.complete && el.naturalWidth > 0;
  }, selector);
  return img.evaluate((el, points) => {
    const c = document.createElement("canvas");
    c.width = el.naturalWidth;
    c.height = el.naturalHeight;
    const ctx = c.getContext("2d");
    ctx.drawImage(el, 0, 0);
    const colours = points.map(([fx, fy]) => Array.from(ctx.getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data.slice(0, 3)));
    return { width: el.naturalWidth, height: el.naturalHeight, src: el.src, colours };
  }, points);
}

function assertColour(actual, expected, what) {
  const off = Math.max(...actual.map((v, i) => Math.abs(v - expected[i])));
  assert.ok(off <= 48, `${what}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`);
}

/** Checks the avatar `selector` shows Alice's profile picture: square, at most 512, red left, blue right (no green or yellow: the centre). */
async function assertProfilePicture(page, selector) {
  const p = await pictureOf(page, selector, [
    [0.01, 0.5],
    [0.25, 0.5],
    [0.75, 0.5],
    [0.99, 0.5],
  ]);
  assert.equal(p.width, p.height, `${selector}: square`);
  assert.ok(p.width <= 512 && p.width >= 100, `${selector}: ${p.width} px a side`);
  assert.match(p.src, /^blob:/, "shown from an object URL");
  assertColour(p.colours[0], RED, `${selector} left edge (the green band is cropped off)`);
  assertColour(p.colours[1], RED, `${selector} left`);
  assertColour(p.colours[2], BLUE, `${selector} right`);
  assertColour(p.colours[3], BLUE, `${selector} right edge (the yellow band is cropped off)`);
  return p;
}

const aliceRow = (page) => `#directory button.person[data-username="${users.alice.account.username}"] .avatar`;

test("set-up: Alice and Bob sign up", async () => {
  await Promise.all(["alice", "bob"].map(signUp));
  await users.bob.page.locator(aliceRow(users.bob.page)).waitFor();
  assert.equal(await users.bob.page.getAttribute(aliceRow(users.bob.page), "data-picture"), "none");
});

test("Alice picks a picture from her card with the keyboard, crops it to its centre and sets it", async () => {
  const { page } = users.alice;
  await page.click("#me-button");
  await page.locator("#profile-picture").waitFor({ state: "visible" });
  assert.equal(await page.locator("#profile-picture-remove").isVisible(), false, "nothing to remove yet");
  assert.deepEqual(await axeViolations(page, "own card with the picture section"), []);
  // The button opens the file picker from the keyboard: Enter on it clicks the file input with the user's
  // activation, which is what a browser asks to open its picker. (Playwright's "filechooser" event is not
  // reliable enough in headless Chromium to wait for: the file is then given to the input directly.)
  await page.evaluate(() => {
    const input = document.getElementById("profile-picture-file");
    input.addEventListener("click", (ev) => {
      ev.preventDefault();
      document.body.dataset.pickerAsked = String(navigator.userActivation.isActive);
    }, { once: true });
  });
  await page.focus("#profile-picture-change");
  await page.keyboard.press("Enter");
  await page.locator('body[data-picker-asked="true"]').waitFor({ state: "attached" });
  await page.setInputFiles("#profile-picture-file", { name: "me.png", mimeType: "image/png", buffer: PROFILE_PNG });
  await page.locator("#picture-crop").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => document.activeElement?.id), "picture-crop-canvas", "the crop takes the focus");
  assert.deepEqual(await axeViolations(page, "crop dialog"), []);
  await screenshot(page, "picture-crop");
  // The preview is the centre square: red on the left, blue on the right.
  const preview = await page.$eval("#picture-crop-canvas", (c) => {
    const ctx = c.getContext("2d");
    return [0.02, 0.98].map((f) => Array.from(ctx.getImageData(Math.floor(f * c.width), c.height / 2, 1, 1).data.slice(0, 3)));
  });
  assertColour(preview[0], RED, "preview left");
  assertColour(preview[1], BLUE, "preview right");
  // The arrow keys move the crop (5% of its side a press, kept inside the picture): to the right edge, and back.
  const edges = () =>
    page.$eval("#picture-crop-canvas", (c) =>
      [0.02, 0.98].map((f) => Array.from(c.getContext("2d").getImageData(Math.floor(f * c.width), c.height / 2, 1, 1).data.slice(0, 3))),
    );
  for (let i = 0; i < 6; i++) await page.keyboard.press("ArrowRight");
  const moved = await edges();
  assertColour(moved[0], RED, "moved: left");
  assertColour(moved[1], YELLOW, "moved to the right edge: the yellow band shows");
  for (let i = 0; i < 5; i++) await page.keyboard.press("ArrowLeft");
  const back = await edges();
  assertColour(back[0], RED, "back: left");
  assertColour(back[1], BLUE, "back in the centre: right");
  await page.click("#picture-crop-use");
  await page.locator("#picture-crop").waitFor({ state: "hidden" });
  await page.locator("#profile-picture-status", { hasText: "Picture changed." }).waitFor();
  await page.locator("#profile-picture-remove").waitFor({ state: "visible" });
  await screenshot(page, "picture-profile");
  assert.equal(users.alice.uploads.length, 1, "one upload");
  assert.match(users.alice.uploads[0].id ?? "", /^[0-9a-f]{32}$/);
  // Her own avatars show it from the bytes she uploaded, without downloading them.
  await assertProfilePicture(page, "#card-avatar");
  await assertProfilePicture(page, "#me-avatar");
  assert.equal(users.alice.media.length, 0, "no download of her own new picture");
  await page.keyboard.press("Escape");
  await page.locator("#card").waitFor({ state: "hidden" });
});

test("Bob's directory shows it (pushed, no reload): a square picture of the centre, downloaded once, the token in a header only, no text or EXIF", async () => {
  const { page } = users.bob;
  const p = await assertProfilePicture(page, aliceRow(page));
  assert.equal(await page.getAttribute(aliceRow(page), "data-picture"), "shown");
  const downloads = users.bob.media;
  assert.equal(downloads.length, 1, "one download");
  const [d] = downloads;
  assert.match(d.url, /\/media\/[0-9a-f]{32}$/, "the address is the media id alone");
  assert.doesNotMatch(d.url, new RegExp(users.bob.account.username + "|token|\\?"), "nothing else in the address");
  assert.match(d.auth, /^Bearer \S+$/, "the token travels in the Authorization header");
  assert.deepEqual([...d.body.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  assert.deepEqual(hasMarkers(d.body), [], "what Bob downloaded carries no text chunk, EXIF or marker");
  // ...and it is what Alice's page uploaded, byte for byte (the server's SHA-256 of the upload).
  const [up] = users.alice.uploads;
  assert.ok(d.url.endsWith(`/media/${up.id}`));
  assert.equal(createHash("sha256").update(d.body).digest("hex"), up.sha256);
  assert.equal(d.body.length, up.size);
  assert.equal(p.width, 200, "a 200-pixel crop is not scaled up");
});

test("Bob's chat list, chat header and contact card show it, from the one download", async () => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  await makeContacts(users.alice, users.bob);
  await alice.locator(`#directory button.person[data-username="${users.bob.account.username}"]`).click();
  await alice.fill("#composer-text", "Look, a picture");
  await alice.press("#composer-text", "Enter");
  await alice.locator("#message-list .msg.mine", { hasText: "Look, a picture" }).waitFor();
  const convRow = `#directory button.person[data-conv][data-username="${users.alice.account.username}"]`;
  await bob.locator(convRow).waitFor();
  await assertProfilePicture(bob, `${convRow} .avatar`);
  await bob.locator(convRow).click();
  await assertProfilePicture(bob, "#peer-avatar");
  await bob.click("#chat-peer");
  await bob.locator("#card").waitFor({ state: "visible" });
  await assertProfilePicture(bob, "#card-avatar");
  assert.equal(await bob.locator("#profile-picture").isVisible(), false, "no picture controls on someone else's card");
  await screenshot(bob, "picture-card");
  await bob.keyboard.press("Escape");
  await bob.locator("#card").waitFor({ state: "hidden" });
  assert.equal(users.bob.media.length, 1, "still one download for every avatar that shows it");
});

test("Alice removes her picture: Bob sees her initials again, pushed", async () => {
  const { page } = users.alice;
  await page.click("#me-button");
  await page.locator("#profile-picture-remove").waitFor({ state: "visible" });
  await page.click("#profile-picture-remove");
  await page.locator("#profile-picture-status", { hasText: "Picture removed." }).waitFor();
  await page.locator("#profile-picture-remove").waitFor({ state: "hidden" });
  assert.equal(await page.locator("#card-avatar img").count(), 0);
  await page.keyboard.press("Escape");
  const { page: bob } = users.bob;
  const convRow = `#directory button.person[data-conv][data-username="${users.alice.account.username}"] .avatar`;
  await bob.locator(`${convRow}[data-picture="none"]`).waitFor();
  await bob.locator(`#peer-avatar[data-picture="none"]`).waitFor();
  assert.equal(await bob.locator(`${convRow} img`).count(), 0);
  assert.equal(await bob.locator("#peer-avatar img").count(), 0);
  assert.equal((await bob.textContent("#peer-avatar"))?.trim().length, 2, "initials");
});

test("a picture id whose file is no raster image (an SVG) is downloaded once and shows initials, never the file", async () => {
  const { page, account } = users.alice;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>`;
  // Set through the binding by a second session of Alice's (as another client could), not the page's picker.
  const id = await page.evaluate(
    async ({ login, password, svg }) => {
      const { ChatClient } = await import("/chatcore/web.js");
      const c = new ChatClient({ url: `ws://${location.host}/ws`, autoSync: false, reconnect: false });
      try {
        await c.login({ login, password, device: "test set-up" });
        const { id } = await c.upload(new TextEncoder().encode(svg));
        await c.updateProfile({ avatar: id });
        await c.logout();
        return id;
      } finally {
        c.close();
      }
    },
    { login: account.username, password: account.password, svg },
  );
  const { page: bob } = users.bob;
  const row = `#directory button.person[data-conv][data-username="${account.username}"] .avatar`;
  await bob.locator(`${row}[data-media="${id}"]`).waitFor({ state: "attached" });
  await until(() => users.bob.media.some((d) => d.url.endsWith(`/media/${id}`)), 10_000, "Bob's page asked for it");
  await bob.waitForTimeout(200);
  assert.equal(await bob.locator(`${row} img`).count(), 0, "no <img> for it");
  assert.equal(await bob.getAttribute(row, "data-picture"), "media");
  assert.equal(users.bob.media.filter((d) => d.url.endsWith(`/media/${id}`)).length, 1, "asked for once");
  await page.click("#me-button");
  await page.locator("#profile-picture-remove").waitFor({ state: "visible" });
  await page.click("#profile-picture-remove");
  await page.locator("#profile-picture-status", { hasText: "Picture removed." }).waitFor();
  await page.keyboard.press("Escape");
  await bob.locator(`${row}[data-picture="none"]`).waitFor({ state: "attached" });
});

test("Alice sets a group picture: Bob's chat list and header show it; Bob (no admin) has no picture controls", async () => {
  const { page: alice } = users.alice;
  const { page: bob } = users.bob;
  await alice.click("#new-group-button");
  await alice.locator("#new-group").waitFor({ state: "visible" });
  await alice.fill("#newgroup-title", "Painters");
  await alice.fill("#newgroup-search", users.bob.account.username);
  await alice.check(`#newgroup-results input[data-username="${users.bob.account.username}"]`);
  await alice.click("#newgroup-form button[type=submit]");
  await alice.locator("#new-group").waitFor({ state: "hidden" });
  await alice.locator("#peer-name", { hasText: "Painters" }).waitFor();
  await alice.click("#chat-peer");
  await alice.locator("#group").waitFor({ state: "visible" });
  await alice.locator("#group-picture").waitFor({ state: "visible" });
  assert.deepEqual(await axeViolations(alice, "group dialog with the picture section"), []);
  await alice.setInputFiles("#group-picture-file", { name: "group.png", mimeType: "image/png", buffer: GROUP_PNG });
  await alice.locator("#picture-crop").waitFor({ state: "visible" });
  await alice.click("#picture-crop-use");
  await alice.locator("#group-picture-status", { hasText: "Picture changed." }).waitFor();
  const magenta = async (page, selector) => {
    const p = await pictureOf(page, selector, [
      [0.5, 0.01],
      [0.5, 0.99],
    ]);
    assert.equal(p.width, p.height, `${selector}: square`);
    assert.ok(p.width <= 512);
    assertColour(p.colours[0], MAGENTA, `${selector} top (the cyan band is cropped off)`);
    assertColour(p.colours[1], MAGENTA, `${selector} bottom`);
  };
  await magenta(alice, "#group-avatar");
  await alice.keyboard.press("Escape");
  await magenta(alice, "#peer-avatar");
  const groupRow = bob.locator("#directory button.person.group", { hasText: "Painters" });
  await groupRow.waitFor();
  await magenta(bob, "#directory button.person.group .avatar");
  await groupRow.click();
  await magenta(bob, "#peer-avatar");
  await bob.click("#chat-peer");
  await bob.locator("#group").waitFor({ state: "visible" });
  await magenta(bob, "#group-avatar");
  assert.equal(await bob.locator("#group-picture").isVisible(), false, "a member without a role changes no picture");
  await bob.keyboard.press("Escape");
  const groupDownload = users.bob.media.at(-1);
  assert.deepEqual(hasMarkers(groupDownload.body), []);
  // After a reload the chat list has it from the server's list of conversations.
  await bob.reload();
  await bob.locator("#app").waitFor({ state: "visible" });
  await magenta(bob, "#directory button.person.group .avatar");
});

test("signing out revokes the pictures' object URLs", async () => {
  const { page } = users.bob;
  const src = await page.getAttribute("#peer-avatar img", "src");
  assert.match(src ?? "", /^blob:/);
  // Loaded as an image (the page's CSP lets no fetch read a blob: address, only <img>).
  const load = (u) => {
    const img = new Image();
    img.src = u;
    return img.decode().then(() => "alive", () => "revoked");
  };
  assert.equal(await page.evaluate(load, src), "alive", "alive while signed in");
  await page.click("#signout");
  await page.click("#signout-keep");
  await page.locator("#auth").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(load, src), "revoked");
});

test("no uncaught errors and no Content-Security-Policy violations in any page", () => {
  assert.deepEqual(problems, []);
});
