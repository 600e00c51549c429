// chatd embeds the web client at compile time, so the browser build of the
// binding is committed in chatd/web/chatcore/. This fails when that copy is
// not exactly what the current sources compile to (fix: `npm run build:web`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = fileURLToPath(new URL("../../", import.meta.url));
const committed = join(pkg, "../../chatd/web/chatcore");

test("chatd/web/chatcore is a fresh build of src/web.ts", () => {
  const out = mkdtempSync(join(tmpdir(), "chatcore-web-"));
  try {
    // Same config, other output directory: the emitted bytes do not depend on it.
    const config = join(out, "tsconfig.json");
    writeFileSync(
      config,
      JSON.stringify({ extends: join(pkg, "tsconfig.web.json"), compilerOptions: { outDir: join(out, "build") } }),
    );
    execFileSync(process.execPath, [join(pkg, "node_modules/typescript/bin/tsc"), "-p", config], { stdio: "inherit" });
    const fresh = readdirSync(join(out, "build")).sort();
    const have = readdirSync(committed).sort();
    const hint = "run `npm run build:web` in bindings/typescript and commit chatd/web/chatcore/";
    assert.deepEqual(have, fresh, `the committed file set differs; ${hint}`);
    for (const name of fresh) {
      const want = readFileSync(join(out, "build", name), "utf8");
      const got = readFileSync(join(committed, name), "utf8");
      assert.ok(got === want, `chatd/web/chatcore/${name} is stale; ${hint}`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("the browser build imports nothing but its own files", () => {
  for (const name of readdirSync(committed)) {
    const text = readFileSync(join(committed, name), "utf8");
    for (const [, spec] of text.matchAll(/\bfrom\s+"([^"]+)"/g)) {
      assert.match(spec, /^\.\/[a-z]+\.js$/, `${name} imports ${spec}: browsers cannot resolve it without a bundler`);
    }
  }
});
