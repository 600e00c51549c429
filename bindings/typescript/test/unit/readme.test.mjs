// The README's example must compile against the published types.
import { test } from "node:test";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = fileURLToPath(new URL("../../", import.meta.url));

test("the README example type-checks", () => {
  const readme = readFileSync(join(pkg, "README.md"), "utf8");
  const code = readme.split("```ts\n")[1].split("```")[0];
  // Inside the package, so `@chatcore/client` resolves to it (package self-reference).
  const file = join(pkg, ".readme-example.check.ts");
  const config = join(pkg, ".readme-example.tsconfig.json");
  writeFileSync(file, code);
  writeFileSync(
    config,
    JSON.stringify({ extends: "./tsconfig.base.json", compilerOptions: { noEmit: true, noUnusedLocals: false }, files: [file] }),
  );
  try {
    execFileSync(process.execPath, [join(pkg, "node_modules/typescript/bin/tsc"), "-p", config], { stdio: "pipe" });
  } catch (e) {
    throw new Error(`README example does not compile:\n${e.stdout}${e.stderr}`);
  } finally {
    rmSync(file, { force: true });
    rmSync(config, { force: true });
  }
});
