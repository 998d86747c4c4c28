// The README's examples are the tests' own code: every ```js block must appear, line for line,
// in one of the test files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";

const read = (path) => readFileSync(new URL(path, import.meta.url), "utf8");
const squash = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean).join("\n");

test("every js example in the README is code from a test", () => {
  const tests = readdirSync(new URL(".", import.meta.url)).filter((f) => f.endsWith(".test.mjs")).map((f) => squash(read(f)));
  const blocks = [...read("../README.md").matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 3, "the README has examples");
  for (const block of blocks) assert.ok(tests.some((t) => t.includes(squash(block))), `not found in the tests:\n${block}`);
});
