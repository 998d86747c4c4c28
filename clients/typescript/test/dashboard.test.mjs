// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the local
// stack: it opens from the URL `make dev` prints, shows a project this test creates with its state,
// follows a pause into the timeline, and leaves a screenshot in .cache/dashboard.png.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { Sandman } from "../dist/index.js";
import { startStack } from "./stack.mjs";

const screenshot = fileURLToPath(new URL("../../../.cache/dashboard.png", import.meta.url));
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
