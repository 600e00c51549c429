// Starts a real chatd for a test file: in-memory store, a free port on
// 127.0.0.1, mail written to a temporary directory, cheap argon2 (tests only).
// The binary is target/debug/chatd of the workspace (scripts/test.sh builds
// it), or $CHATD_BIN.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import * as testHooks from "node:test";
import { ChatClient, msgpackCodec } from "../../dist/index.js";
import { newAccount } from "./util.mjs";

const repo = fileURLToPath(new URL("../../../../", import.meta.url));

export function chatdBinary() {
  if (process.env.CHATD_BIN) return process.env.CHATD_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, "target");
  return join(target, "debug", "chatd");
}

/**
 * Spawns chatd and resolves once it listens: `{ addr, httpUrl, wsUrl, mailDir, log, stop(), waitForMail() }`.
 * `extraArgs` are appended to the command line; with `--tls-cert` the URLs are https:// and wss://.
 */
export async function startChatd(extraArgs = []) {
  const bin = chatdBinary();
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: run \`cargo build -p chatd\` first`);
  const mailDir = mkdtempSync(join(tmpdir(), "chatd-mail-"));
  const args = [
    "--listen", "127.0.0.1:0",
    "--print-addr",
    // The default metrics port (9090) would clash between parallel test files.
    "--metrics-listen", "off",
    // In memory unless the caller names a store (a test that scans the stored bytes).
    ...(extraArgs.includes("--store") ? [] : ["--store", "memory"]),
    "--mailer", `dir:${mailDir}`,
    "--argon2-m-kib", "8",
    "--log", process.env.CHATD_TEST_LOG ?? "warn",
    ...extraArgs,
  ];
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  const log = [];
  createInterface({ input: child.stderr }).on("line", (line) => {
    log.push(line);
    if (process.env.CHATD_TEST_LOG) process.stderr.write(`[chatd] ${line}\n`);
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chatd did not print its address in 20 s:\n${log.join("\n")}`)), 20_000);
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      log.push(line);
      const m = /^\s*(127\.0\.0\.1:\d+)\s*$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`chatd exited (${code ?? signal}) before listening:\n${log.join("\n")}`));
    });
  });
  const tls = extraArgs.includes("--tls-cert");
  const httpUrl = `${tls ? "https" : "http"}://${addr}`;
  return {
    addr,
    httpUrl,
    wsUrl: `${tls ? "wss" : "ws"}://${addr}/ws`,
    mailDir,
    log,
    /** SIGTERM, then SIGKILL if chatd has not exited within 15 s; resolves with its exit status. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        const status = await exited;
        clearTimeout(timer);
        rmSync(mailDir, { recursive: true, force: true });
        return status;
      }
      rmSync(mailDir, { recursive: true, force: true });
      return exited;
    },
    /** The newest password-reset token mailed to `email` (polls up to 10 s). */
    async waitForResetToken(email, { after = 0 } = {}) {
      const deadline = Date.now() + 10_000;
      const key = email.replace(/[^A-Za-z0-9@._-]/g, "_");
      for (;;) {
        const files = readdirSync(mailDir)
          .filter((f) => f.endsWith(".eml") && !f.startsWith(".") && f.includes(key))
          .sort();
        const mails = files.map((f) => readFileSync(join(mailDir, f), "utf8")).slice(after);
        for (const mail of mails.reverse()) {
          const m = /#reset=([A-Za-z0-9_-]+)/.exec(mail);
          if (m) return { token: m[1], mail, count: files.length };
        }
        if (Date.now() > deadline) throw new Error(`no reset mail for ${email} in ${mailDir}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/**
 * One chatd for a test file (started before its tests, stopped after them) and the clients its tests open (closed
 * after): `client(options)`, a MessagePack client with fast reconnects; `person(name, options)`, a signed-in client
 * of a new user, `{ c, user, account, session }`; `ctx.chatd` once started.
 */
export function useChatd(extraArgs = []) {
  const { before, after } = testHooks;
  const clients = [];
  const ctx = {
    chatd: undefined,
    client(options = {}) {
      const c = new ChatClient({
        url: ctx.chatd.wsUrl,
        codec: msgpackCodec,
        reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
        requestTimeoutMs: 10_000,
        ...options,
      });
      clients.push(c);
      return c;
    },
    async person(name, options = {}) {
      const account = newAccount(name);
      const c = ctx.client(options);
      const session = await c.register(account);
      return { c, user: session.user, account, session };
    },
  };
  before(async () => {
    ctx.chatd = await startChatd(extraArgs);
  });
  after(async () => {
    for (const c of clients) c.close();
    await ctx.chatd?.stop();
  });
  return ctx;
}
