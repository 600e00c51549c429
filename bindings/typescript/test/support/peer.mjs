// The Rust end-to-end peer (chatcore-client's example e2e_peer: a SecureClient
// driven over stdin/stdout as JSON lines), for the interop tests of the Node
// binding and of the web client. Every wait is for a line, bounded by a timeout.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export const T = 20_000;
const repo = fileURLToPath(new URL("../../../../", import.meta.url));

export function peerBinary() {
  if (process.env.E2E_PEER_BIN) return process.env.E2E_PEER_BIN;
  return join(process.env.CARGO_TARGET_DIR ?? join(repo, "target"), "debug", "examples", "e2e_peer");
}

/**
 * The Rust peer: `call(cmd)` resolves with its reply; `reads(conv, text)` once it printed that message;
 * `event(pick, what)` with the first event line `pick` accepts.
 */
export function rustPeer() {
  const bin = peerBinary();
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: run \`cargo build -p chatcore-client --example e2e_peer\` first`);
  const child = spawn(bin, [], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  const stderr = [];
  createInterface({ input: child.stderr }).on("line", (l) => stderr.push(l));
  const replies = [];
  const messages = [];
  const waiters = new Set();
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  createInterface({ input: child.stdout }).on("line", (line) => {
    const v = JSON.parse(line);
    if ("reply" in v) replies.push(v);
    else messages.push(v);
    for (const w of [...waiters]) w();
  });
  const waitFor = (pick, what) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = pick();
        if (v === undefined) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`the Rust peer never ${what}; stderr:\n${stderr.join("\n")}`));
      }, T);
      waiters.add(check);
      exited.then((code) => {
        if (!waiters.has(check)) return;
        waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`the Rust peer exited (${code}) before it ${what}; stderr:\n${stderr.join("\n")}`));
      });
      check();
    });
  let chain = Promise.resolve();
  return {
    call(cmd) {
      const run = async () => {
        const index = replies.length;
        child.stdin.write(`${JSON.stringify(cmd)}\n`);
        const reply = await waitFor(() => replies[index], `answered ${cmd.cmd}`);
        if (reply.error) throw new Error(`the Rust peer refused ${cmd.cmd}: ${reply.error}`);
        return reply;
      };
      const r = chain.then(run);
      chain = r.catch(() => undefined);
      return r;
    },
    reads(conv, text) {
      return waitFor(() => messages.find((m) => m.event === "message" && m.conv === conv && m.text === text), `read ${JSON.stringify(text)}`);
    },
    /** Resolves with the first event line (`{event, ...}`) that `pick` accepts. */
    event(pick, what) {
      return waitFor(() => messages.find(pick), what);
    },
    messages,
    async quit() {
      child.stdin.end(`${JSON.stringify({ cmd: "quit" })}\n`);
      return exited;
    },
    kill() {
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}
