// The web client's own modules (chatd/web/*.js, chatd/web/ui/*.js): every one
// is type-checked (`// @ts-check`, see tsconfig.webclient.json), and none
// turns a string into markup: what a peer sends is text, so the DOM is built
// from nodes (ui/dom.js h()), never from HTML strings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const web = fileURLToPath(new URL("../../../../chatd/web/", import.meta.url));
const modules = [
  ...readdirSync(web).filter((f) => f.endsWith(".js")),
  ...readdirSync(join(web, "ui")).filter((f) => f.endsWith(".js")).map((f) => `ui/${f}`),
];

test("every web client module is type-checked", () => {
  assert.ok(modules.length > 5, modules.join(" "));
  for (const m of modules) assert.match(readFileSync(join(web, m), "utf8"), /^\/\/ @ts-check\n/, `${m} lacks // @ts-check`);
});

test("no web client module parses HTML from strings", () => {
  const sinks = /\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser|\beval\(|new Function\(/;
  for (const m of modules) {
    const lines = readFileSync(join(web, m), "utf8").split("\n");
    lines.forEach((line, i) => assert.doesNotMatch(line, sinks, `${m}:${i + 1}`));
  }
});
