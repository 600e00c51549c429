// vodozemac's WebAssembly in headless Chromium, loaded the browser's way by
// dist/vodozemac.js: the glue fetches the .wasm beside itself and compiles it
// while streaming (application/wasm). The package folder is served by a
// small static server here (chatd serves the same files from chatd/web/vodozemac/,
// checked by webclient.test.mjs), so this needs no chatd.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync, realpathSync } from "node:fs";
import { extname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { launchBrowser } from "../support/browser.mjs";

const pkg = fileURLToPath(new URL("../../", import.meta.url));
const roots = [join(pkg, "dist"), realpathSync(join(pkg, "vodozemac"))];
const TYPES = { ".js": "text/javascript; charset=utf-8", ".wasm": "application/wasm", ".html": "text/html; charset=utf-8" };

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (url.pathname === "/") {
    res.writeHead(200, { "content-type": TYPES[".html"] }).end("<!doctype html><link rel=icon href=\"data:,\"><title>vodozemac</title>");
    return;
  }
  try {
    const file = realpathSync(join(pkg, decodeURIComponent(url.pathname)));
    if (!roots.some((r) => file.startsWith(r + sep))) throw new Error("outside");
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await launchBrowser();
after(async () => {
  await browser.close();
  server.close();
});

test("the browser loads vodozemac beside its glue and runs Olm and Megolm", async () => {
  const page = await browser.newPage();
  const console = [];
  page.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.push(`pageerror: ${e.message}`));
  await page.goto(`${base}/`);
  const result = await page.evaluate(async () => {
    const { loadVodozemac, isVodozemacError } = await import("/dist/vodozemac.js");
    const vz = await loadVodozemac();
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const alice = new vz.Account();
    const bob = new vz.Account();
    bob.generateOneTimeKeys(1);
    const toBob = alice.createOutboundSession(bob.curve25519Key, bob.oneTimeKeys()[0].key);
    const m = toBob.encrypt(enc.encode("hello from the browser"));
    const inbound = bob.createInboundSession(alice.curve25519Key, m.messageType, m.body);
    const toAlice = inbound.takeSession();
    const r = toAlice.encrypt(enc.encode("and back"));
    const group = new vz.GroupSession();
    const reader = new vz.InboundGroupSession(group.sessionKey);
    const c = group.encrypt(enc.encode("to the group"));
    const tampered = c.slice();
    tampered[tampered.length - 1] ^= 1;
    let code;
    try {
      reader.decrypt(tampered);
    } catch (e) {
      code = isVodozemacError(e) ? e.code : String(e);
    }
    return {
      olm: dec.decode(inbound.plaintext),
      reply: dec.decode(toBob.decrypt(r.messageType, r.body)),
      megolm: dec.decode(reader.decrypt(c).plaintext),
      tampered: code,
      wasmFetched: performance.getEntriesByType("resource").some((e) => e.name.endsWith("/vodozemac/vodozemac_wasm_bg.wasm")),
    };
  });
  assert.deepEqual(result, {
    olm: "hello from the browser",
    reply: "and back",
    megolm: "to the group",
    tampered: "decrypt",
    wasmFetched: true,
  });
  // No fallback from streaming compilation, no error of any kind.
  assert.deepEqual(console.filter((l) => !l.startsWith("debug")), []);
  await page.close();
});
