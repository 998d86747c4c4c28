// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the local
// stack: it opens from the URL `make dev` prints, shows a project this test creates with its state,
// follows a pause into the timeline, and leaves a screenshot in .cache/dashboard.png; then sets an
// env var and a secret through a card's Environment section (.cache/dashboard-env.png).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { Sandman } from "../dist/index.js";
import { startStack } from "./stack.mjs";

const screenshot = fileURLToPath(new URL("../../../.cache/dashboard.png", import.meta.url));
const envScreenshot = fileURLToPath(new URL("../../../.cache/dashboard-env.png", import.meta.url));
const userDataDir = fileURLToPath(new URL(`../../../.cache/chromium-profile-${process.pid}`, import.meta.url));
let stack;
let browser;
before(async () => {
  stack = await startStack({ HEARTBEAT_INTERVAL_MAX_SECS: "1" });
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
  rmSync(userDataDir, { recursive: true, force: true });
  await stack?.stop();
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test("the dashboard shows the team's projects and follows a pause into the timeline", async () => {
  const sandman = new Sandman({ baseUrl: stack.baseUrl, token: stack.token });
  await sandman.putProject("design-review", { templateId: "base", idleTimeoutSeconds: 300, snapshotOnIdle: true });
  await sandman.putProject("data-notebook", { templateId: "base" });
  await sandman.open("data-notebook");
  await sandman.open("design-review");
  await sandman.waitUntil("design-review", "RUNNING");
  await sleep(1500);
  await sandman.createSnapshot("design-review", "before the demo");
  await sandman.pause("data-notebook");

  assert.ok(stack.dashboardUrl.includes("#token="), stack.dashboardUrl);
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(stack.dashboardUrl);
  const card = page.locator('[data-project="design-review"]');
  await card.locator('.badge[data-state="RUNNING"]').waitFor({ timeout: 15_000 });
  assert.equal(new URL(page.url()).hash, "", "the token leaves the address bar");
  assert.equal(await page.locator('[data-stat="projects"] .value').textContent(), "2");
  assert.equal(await card.locator(".timeline rect[data-state=PAUSED]").count(), 0);

  await sleep(1500);
  await sandman.pause("design-review");
  // The page refreshes by itself: the badge turns PAUSED and the timeline gains a paused period.
  await card.locator('.badge[data-state="PAUSED"]').waitFor({ timeout: 15_000 });
  await card.locator(".timeline rect[data-state=PAUSED]").waitFor({ timeout: 15_000 });
  assert.equal(await card.locator(".timeline .snapshot-mark").count(), 1);
  assert.match(await card.textContent(), /before the demo/);
  assert.match(await page.locator('[data-stat="paused"] .value').textContent(), /^2$/);

  await sleep(2500); // let the paused periods grow visible on the timeline before the picture
  await page.reload();
  await card.locator(".timeline rect[data-state=PAUSED]").waitFor({ timeout: 15_000 });
  mkdirSync(fileURLToPath(new URL("../../../.cache/", import.meta.url)), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
  assert.deepEqual(errors, []);
});

test("a card's Environment section sets env vars and secrets through the API and never shows a secret's value", async () => {
  const sandman = new Sandman({ baseUrl: stack.baseUrl, token: stack.token });
  await sandman.putProject("env-card", { templateId: "base" });
  const canary = `sk-canary-${randomUUID()}`;
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(stack.dashboardUrl);
  const env = page.locator('[data-project="env-card"] .environment');
  await env.getByText("no env vars").waitFor({ timeout: 15_000 });

  const varForm = env.locator('form[data-form="env"]');
  await varForm.locator('input[name="name"]').fill("GREETING");
  await varForm.locator('input[name="value"]').fill("hello world");
  await varForm.locator('button[type="submit"]').click();
  await env.locator('[data-var="GREETING"]').waitFor({ timeout: 15_000 });
  await varForm.locator('input[name="name"]').fill("REGION");
  await varForm.locator('input[name="value"]').fill("eu-west-1");
  await varForm.locator('button[type="submit"]').click();
  await env.locator('[data-var="REGION"]').waitFor({ timeout: 15_000 });
  // What the API stored, not what the page shows: the whole map, both vars.
  assert.deepEqual((await sandman.getEnv("env-card")).vars, { GREETING: "hello world", REGION: "eu-west-1" });

  // A bad name: the API's 400 and its message are shown next to the form, and nothing is stored.
  await varForm.locator('input[name="name"]').fill("1BAD");
  await varForm.locator('input[name="value"]').fill("x");
  await varForm.locator('button[type="submit"]').click();
  const error = env.locator(".error");
  await error.getByText(/^400: /).waitFor({ timeout: 15_000 });
  assert.ok((await error.textContent()).length > "400: ".length, await error.textContent());
  assert.deepEqual(Object.keys((await sandman.getEnv("env-card")).vars).sort(), ["GREETING", "REGION"]);

  const secretForm = env.locator('form[data-form="secret"]');
  assert.equal(await secretForm.locator('input[name="value"]').getAttribute("type"), "password");
  await secretForm.locator('input[name="name"]').fill("API_TOKEN");
  await secretForm.locator('input[name="value"]').fill(canary);
  await secretForm.locator('input[name="hosts"]').fill("api.example.com");
  await secretForm.locator('button[type="submit"]').click();
  const row = env.locator('[data-secret="API_TOKEN"]');
  await row.waitFor({ timeout: 15_000 });
  assert.equal(await error.textContent(), "", "the secret was accepted");
  const stored = (await sandman.listSecrets("env-card")).items;
  assert.deepEqual(
    stored.map((s) => [s.name, s.lastFour, s.hosts, s.set]),
    [["API_TOKEN", canary.slice(-4), ["api.example.com"], true]],
  );
  assert.match(await row.textContent(), new RegExp(`API_TOKEN ••••${canary.slice(-4)}`));

  // Removing one env var saves the map without it.
  await env.locator('[data-var="REGION"] button.remove').click();
  await env.locator('[data-var="REGION"]').waitFor({ state: "detached", timeout: 15_000 });
  assert.deepEqual((await sandman.getEnv("env-card")).vars, { GREETING: "hello world" });

  // The value is nowhere in the page: not in its markup, not in any input's value.
  await page.locator('[data-project="env-card"] .badge').waitFor();
  const html = await page.content();
  const inputs = await page.locator("input").evaluateAll((all) => all.map((input) => input.value));
  assert.ok(html.includes("API_TOKEN") && inputs.length >= 5, "the page was judged with the secret listed");
  assert.ok(!html.includes(canary) && !html.includes(canary.slice(0, -4)), "the secret's value is in the page's DOM");
  assert.ok(!inputs.some((value) => value.includes(canary.slice(0, -4))), "the secret's value stays in an input");

  await page.locator('[data-project="env-card"]').screenshot({ path: envScreenshot });
  console.log(`screenshot: ${envScreenshot}`);

  // Deleting it through the page removes it from the API's listing.
  await row.locator("button.remove").click();
  await row.waitFor({ state: "detached", timeout: 15_000 });
  assert.deepEqual((await sandman.listSecrets("env-card")).items, []);
  assert.deepEqual(errors, []);
});
