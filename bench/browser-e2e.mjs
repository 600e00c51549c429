// End-to-end encryption in headless Chromium, timed (not asserted: tests keep
// asserting behaviour, this script reports how long it takes).
//
//   node bench/browser-e2e.mjs [--runs N]        # N runs of each measure, 20 by default
//   CHATD_BIN=/path/to/chatd node bench/browser-e2e.mjs
//
// Starts a real chatd (in-memory store, cheap argon2, as the binding's tests
// do) and opens pages on its origin, so the Content-Security-Policy and the
// files are the ones chatd serves (it embeds chatd/web/ when it is built: the
// script refuses a binary whose files differ from chatd/web/ on disk). Inside
// the page, with performance.now():
//   1. vodozemac: importing the binding's wrapper and glue, then fetching,
//      compiling and instantiating the .wasm; cold (a fresh browser context,
//      empty cache) and warm (a second page of the same context);
//   2. a new account: register, then SecureChat.start (device keys and
//      one-time keys generated and uploaded, the master key made);
//   3. encrypting: the first message of a direct conversation (the Megolm key
//      goes to Bob's device over Olm, after claiming a one-time key) and later
//      messages, through SecureChat.sendEncrypted (server round trips
//      included), and Machine.encrypt alone (no network);
//   4. decrypting on Bob's side: SecureChat.decryptMessage and Machine.decrypt.
// Prints a Markdown table (median, p90, min in ms) and the machine it ran on.
// Uses Debian's /usr/bin/chromium (or $CHROMIUM) with the test flags of
// bindings/typescript/test/support/browser.mjs; never downloads a browser.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { launchBrowser, walkFiles, webDir } from "../bindings/typescript/test/support/browser.mjs";

const repo = fileURLToPath(new URL("../", import.meta.url));

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} wants a positive integer`);
  return n;
}
const RUNS = option("--runs", 20);
/**
 * Later messages per run (steady state); samples per run of the calls without network, each the mean of BATCH
 * calls (a Megolm session is rotated after 100 messages: 1 + STEADY + PURE * BATCH stays below).
 */
const STEADY = 3;
const PURE = 10;
const BATCH = 8;

function chatdBinary() {
  if (process.env.CHATD_BIN) return process.env.CHATD_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, "target");
  const release = join(target, "release", "chatd");
  return existsSync(release) ? release : join(target, "debug", "chatd");
}

/** chatd as bindings/typescript/test/support/chatd.mjs starts it (that module needs the binding's dist/). */
async function startChatd() {
  const bin = chatdBinary();
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: cargo build -p chatd (or set CHATD_BIN)`);
  const mailDir = mkdtempSync(join(tmpdir(), "chatd-mail-"));
  const args = ["--listen", "127.0.0.1:0", "--print-addr", "--metrics-listen", "off", "--store", "memory",
    "--mailer", `dir:${mailDir}`, "--argon2-m-kib", "8", "--log", "warn",
    // Two registrations a run, all from 127.0.0.1: past the default 30 an hour an address may make.
    "--signups-per-address-per-hour", "100000", "--signups-per-hour", "100000"];
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  const log = [];
  createInterface({ input: child.stderr }).on("line", (l) => log.push(l));
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chatd did not print its address in 20 s:\n${log.join("\n")}`)), 20_000);
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = /^\s*(127\.0\.0\.1:\d+)\s*$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`chatd exited (${code ?? signal}):\n${log.join("\n")}`));
    });
  });
  return {
    bin,
    httpUrl: `http://${addr}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(mailDir, { recursive: true, force: true });
    },
  };
}

/**
 * The files this benchmark loads (chatd/web/chatcore/ and vodozemac/) that this chatd serves otherwise than they are
 * on disk: chatd embeds chatd/web/ when it is built, so a binary older than the binding's browser build would time
 * other code. The web client's own files (app.js, ui/) are not loaded here and not compared.
 */
async function staleFiles(httpUrl) {
  const differ = [];
  for (const file of walkFiles(webDir)) {
    const rel = file.slice(webDir.length + 1);
    if (rel.endsWith(".d.ts") || !/^(chatcore|vodozemac)\//.test(rel)) continue;
    const res = await fetch(`${httpUrl}/${rel === "index.html" ? "" : rel}`);
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || !body.equals(readFileSync(file))) differ.push(rel);
  }
  return differ;
}

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return { n: s.length, median: s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2, p90: at(0.9), min: s[0] };
}

const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

// -- in the page ---------------------------------------------------------------

/** Cold or warm: the wrapper and glue modules imported, then the .wasm fetched, compiled and instantiated. */
async function timeWasmLoad(page) {
  return page.evaluate(async () => {
    const t0 = performance.now();
    const { loadVodozemac } = await import("/chatcore/vodozemac.js");
    const t1 = performance.now();
    await loadVodozemac();
    const t2 = performance.now();
    return { importMs: t1 - t0, instantiateMs: t2 - t1, totalMs: t2 - t0 };
  });
}

/** One run of measures 2 to 4 in `page`: two new users, one direct conversation. */
async function timeRun(page, alice, bob, steady, pure, batch) {
  return page.evaluate(
    async ({ alice, bob, steady, pure, batch }) => {
      const { ChatClient } = await import("/chatcore/web.js");
      const { Machine, SecureChat, MemoryStore, generateStoreKey, seal } = await import("/chatcore/e2e/index.js");
      const url = `ws://${location.host}/ws`;
      const out = { register: [], start: [], startCrypto: [], first: [], firstRead: [], later: [], laterRead: [], decryptMessage: [], machineEncrypt: [], machineDecrypt: [] };
      const people = [];
      const signUp = async (account) => {
        const client = new ChatClient({ url, reconnect: false });
        const key = await generateStoreKey();
        let t = performance.now();
        const session = await client.register(account);
        out.register.push(performance.now() - t);
        const secure = new SecureChat(client, { store: new MemoryStore(), key });
        const read = new Map();
        const waiters = new Map();
        const seen = (m) => {
          if (m.body.type !== "text") return;
          read.set(m.text, { message: m.message, at: performance.now() });
          waiters.get(m.text)?.();
        };
        secure.on("message", seen);
        secure.on("decrypted", seen);
        const errors = [];
        secure.on("error", (e) => errors.push(`${e.context}: ${e.error.message}`));
        t = performance.now();
        await secure.start();
        out.start.push(performance.now() - t);
        const person = { client, secure, user: session.user, read, waiters, errors };
        people.push(person);
        return person;
      };
      /** Resolves with when `p` read `text` (and the message), within 15 s. */
      const reads = (p, text) =>
        p.read.has(text)
          ? Promise.resolve(p.read.get(text))
          : new Promise((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`never read ${text}; errors: ${p.errors.join("; ")}`)), 15_000);
              p.waiters.set(text, () => {
                clearTimeout(timer);
                resolve(p.read.get(text));
              });
            });
      // About 64 bytes of text.
      const text = (i) => `message ${String(i).padStart(3, "0")} of the benchmark: the quick brown fox jumps`;
      try {
        // What start does without the network: a new device's keys (one-time keys to the server's target), the
        // master key, and the state sealed for the store (start seals it twice: before and after the upload).
        const key = await generateStoreKey();
        let t0 = performance.now();
        const machine = await Machine.create(`@bench-${alice.username}`, "DEVICE");
        machine.keysToUpload({ one_time: 0, fallback_unused: false });
        machine.createMasterKey();
        await seal(machine.snapshot(), key);
        out.startCrypto.push(performance.now() - t0);
        machine.free();
        const a = await signUp(alice);
        const b = await signUp(bob);
        await a.client.contact(b.user, "request");
        await b.client.contact(a.user, "request");
        const conv = (await a.client.openDirect(b.user, { encrypted: true })).conv;

        // 3. The first message: key claim, Olm to-device with the Megolm key, then the message.
        let t = performance.now();
        await a.secure.sendEncrypted(conv, text(0));
        out.first.push(performance.now() - t);
        out.firstRead.push((await reads(b, text(0))).at - t);
        for (let i = 1; i <= steady; i++) {
          t = performance.now();
          await a.secure.sendEncrypted(conv, text(i));
          out.later.push(performance.now() - t);
          out.laterRead.push((await reads(b, text(i))).at - t);
        }
        // 4. Bob decrypts a received message again (the same Megolm decrypt as on arrival). Each sample is the mean
        // of `batch` calls: performance.now() is coarsened to 0.1 ms in a page that is not cross-origin isolated.
        const received = (await reads(b, text(steady))).message;
        for (let i = 0; i < pure; i++) {
          await b.secure.idle();
          t = performance.now();
          let m;
          for (let j = 0; j < batch; j++) m = b.secure.decryptMessage(received);
          out.decryptMessage.push((performance.now() - t) / batch);
          if (m.text !== text(steady)) throw new Error(`decryptMessage read ${JSON.stringify(m.body)}`);
        }
        await b.secure.idle();
        // The machine alone, no network: Megolm encrypt of Alice's session (already shared), Megolm decrypt on Bob's.
        await a.secure.idle();
        const devices = a.secure.machine.devicesOf([a.user, b.user]);
        const bytes = new TextEncoder().encode(text(999));
        for (let i = 0; i < pure; i++) {
          const made = [];
          t = performance.now();
          for (let j = 0; j < batch; j++) made.push(a.secure.machine.encrypt(conv, devices, bytes, Date.now()));
          out.machineEncrypt.push((performance.now() - t) / batch);
          for (const r of made) if (r.type !== "ready" || r.value.toDevice.length > 0) throw new Error(`machine.encrypt: ${r.type}, a new key`);
          const got = [];
          t = performance.now();
          for (let j = 0; j < batch; j++) got.push(b.secure.machine.decrypt(conv, `bench-${i}-${j}`, a.user, made[j].value.content));
          out.machineDecrypt.push((performance.now() - t) / batch);
          for (const d of got) if (d.type !== "plain") throw new Error(`machine.decrypt: ${d.type}`);
        }
        const errors = people.flatMap((p) => p.errors);
        if (errors.length) throw new Error(errors.join("; "));
        return out;
      } finally {
        for (const p of people) {
          p.secure.close();
          p.client.close();
        }
      }
    },
    { alice, bob, steady, pure, batch },
  );
}

// -- the run -------------------------------------------------------------------

const tag = Math.random().toString(36).slice(2, 6).padEnd(4, "0");
const phoneBlock = String(Math.floor(Math.random() * 1_000_000)).padStart(6, "0");
let accounts = 0;
function newAccount(prefix) {
  accounts += 1;
  const username = `${prefix}${tag}${accounts}`;
  return {
    username,
    email: `${username}@example.test`,
    phone: `+44 7700 ${phoneBlock} ${String(accounts).padStart(3, "0")}`,
    display_name: `${prefix} ${accounts}`,
    password: `velvet harbour lantern ${accounts} quietly`,
    device: "bench",
  };
}

/** A page on chatd's origin with chatd's headers, but without the web client running (app.js is not loaded). */
async function blankPage(context, httpUrl, problems) {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`uncaught ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/.test(m.text())) problems.push(m.text());
  });
  await page.goto(`${httpUrl}/`);
  return page;
}

const loadBefore = loadavg();
const started = new Date();
const commit = execFileSync("git", ["-C", repo, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
const dirty = execFileSync("git", ["-C", repo, "status", "--porcelain", "--untracked-files=no"], { encoding: "utf8" }).trim() !== "";
const chatd = await startChatd();
const browser = await launchBrowser();
const problems = [];
const samples = new Map();
const add = (name, values) => samples.set(name, [...(samples.get(name) ?? []), ...values]);
try {
  const stale = await staleFiles(chatd.httpUrl);
  if (stale.length) throw new Error(`${chatd.bin} serves other binding files than chatd/web/ (rebuild it): ${stale.join(", ")}`);

  process.stderr.write(`vodozemac loads, ${RUNS} runs: `);
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext();
    // The web client's own script would load the binding first: it is left out so the first import here is cold.
    await context.route("**/app.js", (route) => route.abort());
    const cold = await timeWasmLoad(await blankPage(context, chatd.httpUrl, problems));
    const warm = await timeWasmLoad(await blankPage(context, chatd.httpUrl, problems));
    add("cold.import", [cold.importMs]);
    add("cold.instantiate", [cold.instantiateMs]);
    add("cold.total", [cold.totalMs]);
    add("warm.import", [warm.importMs]);
    add("warm.instantiate", [warm.instantiateMs]);
    add("warm.total", [warm.totalMs]);
    await context.close();
    process.stderr.write(".");
  }

  process.stderr.write(`\naccounts and messages, ${RUNS} runs: `);
  const context = await browser.newContext();
  await context.route("**/app.js", (route) => route.abort());
  const page = await blankPage(context, chatd.httpUrl, problems);
  // Warm up once (modules, wasm, chatd's first connections); not counted.
  await timeRun(page, newAccount("warmA"), newAccount("warmB"), 1, 1, 1);
  for (let i = 0; i < RUNS; i++) {
    const r = await timeRun(page, newAccount("alice"), newAccount("bob"), STEADY, PURE, BATCH);
    for (const [k, v] of Object.entries(r)) add(k, v);
    process.stderr.write(".");
  }
  process.stderr.write("\n");
  await context.close();
  if (problems.length) throw new Error(`the page reported problems:\n${problems.join("\n")}`);

  const rows = [
    ["1. vodozemac, cold: import wrapper + glue (`/chatcore/vodozemac.js`)", "cold.import"],
    ["1. vodozemac, cold: fetch + compile + instantiate the .wasm (`loadVodozemac()`)", "cold.instantiate"],
    ["1. vodozemac, cold: both", "cold.total"],
    ["1. vodozemac, warm (same context, new page): import", "warm.import"],
    ["1. vodozemac, warm: fetch (304) + compile + instantiate", "warm.instantiate"],
    ["1. vodozemac, warm: both", "warm.total"],
    ["2. `client.register` (argon2 at 8 KiB, test setting)", "register"],
    ["2. `SecureChat.start`: keys made + uploaded, master key (2 per run)", "start"],
    ["2. the same without the network: `Machine.create`, `keysToUpload`, `createMasterKey`, one seal (1 per run)", "startCrypto"],
    ["3. first message: `sendEncrypted` (query, claim, Olm key share, send)", "first"],
    ["3. first message: from `sendEncrypted` to Bob reading it", "firstRead"],
    [`3. later messages: \`sendEncrypted\` (${STEADY} per run)`, "later"],
    ["3. later messages: from `sendEncrypted` to Bob reading it", "laterRead"],
    [`3. \`machine.encrypt\` alone, Megolm, no network (${PURE} per run, each the mean of ${BATCH})`, "machineEncrypt"],
    [`4. Bob: \`secure.decryptMessage(message)\` (${PURE} per run, each the mean of ${BATCH}; includes the state snapshot for the save)`, "decryptMessage"],
    [`4. Bob: \`machine.decrypt\` alone, Megolm (${PURE} per run, each the mean of ${BATCH})`, "machineDecrypt"],
  ];
  const loadAfter = loadavg();
  const la = (l) => l.map((x) => x.toFixed(2)).join(" ");
  const version = browser.version();
  const out = [
    `- date: ${started.toISOString().replace(/\.\d+Z$/, "Z")}, commit ${commit}${dirty ? " (with uncommitted changes)" : ""}`,
    `- chatd: \`${chatd.bin.startsWith(repo) ? chatd.bin.slice(repo.length) : chatd.bin}\` (${/\/release\//.test(chatd.bin) ? "release" : "debug"} build), in-memory store`,
    `- Chromium ${version} headless (\`${process.env.CHROMIUM ?? "/usr/bin/chromium"}\`), Node ${process.version}`,
    `- machine: ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load average ${la(loadBefore)} before, ${la(loadAfter)} after`,
    `- runs: ${RUNS} (samples per row in column n)`,
    "",
    "| measure | n | median ms | p90 ms | min ms |",
    "|---|---|---|---|---|",
    ...rows.map(([label, key]) => {
      const s = stats(samples.get(key) ?? [NaN]);
      return `| ${label} | ${s.n} | ${fmt(s.median)} | ${fmt(s.p90)} | ${fmt(s.min)} |`;
    }),
  ];
  console.log(out.join("\n"));
} finally {
  await browser.close();
  await chatd.stop();
}
