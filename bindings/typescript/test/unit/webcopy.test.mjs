// chatd embeds the web client at compile time, so the browser build of the
// binding is committed in chatd/web/chatcore/. This fails when that copy is
// not exactly what the current sources compile to (fix: `npm run build:web`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = fileURLToPath(new URL("../../", import.meta.url));
const web = join(pkg, "../../chatd/web");
const committed = join(web, "chatcore");

/** The files under `dir`, as paths relative to it, sorted. */
function files(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

test("chatd/web/chatcore is a fresh build of src/web.ts and src/e2e/index.ts", () => {
  const out = mkdtempSync(join(tmpdir(), "chatcore-web-"));
  try {
    // Same config, other output directory: the emitted bytes do not depend on it.
    const config = join(out, "tsconfig.json");
    writeFileSync(
      config,
      JSON.stringify({ extends: join(pkg, "tsconfig.web.json"), compilerOptions: { outDir: join(out, "build") } }),
    );
    execFileSync(process.execPath, [join(pkg, "node_modules/typescript/bin/tsc"), "-p", config], { stdio: "inherit" });
    const fresh = files(join(out, "build"));
    const have = files(committed);
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

test("the browser build imports nothing but files chatd serves", () => {
  let imports = 0;
  for (const name of files(committed).filter((n) => n.endsWith(".js"))) {
    const text = readFileSync(join(committed, name), "utf8");
    // Static imports and re-exports start a line; doc comments (" * import ...") do not.
    for (const [, fromClause, bare] of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"|^import\s+"([^"]+)"/gm)) {
      const spec = fromClause ?? bare;
      const hint = `chatcore/${name} imports ${spec}: browsers cannot resolve it without a bundler`;
      assert.match(spec, /^\.\.?\/[a-z0-9_/.-]+\.js$/, hint);
      const target = resolve(dirname(join(committed, name)), spec);
      assert.ok(!relative(web, target).startsWith(".."), `${hint} (outside chatd/web)`);
      assert.ok(existsSync(target), `${hint} (no such file)`);
      imports++;
    }
  }
  assert.ok(imports > 20, `only ${imports} imports were checked: the pattern misses them`);
});
