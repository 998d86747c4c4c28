// The client against the real local stack: open, poll to RUNNING, heartbeat, pause, wake,
// snapshot. The README's examples are cut from this file (test/readme.test.mjs checks they still are).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { SandboxWatcher, Sandman, SandmanError, startHeartbeat, usage } from "../dist/index.js";
import { startStack } from "./stack.mjs";

let stack;
let baseUrl;
let token;
before(async () => {
  // A 1 s server throttle keeps the test short; the client reads it from the project.
  stack = await startStack({ HEARTBEAT_INTERVAL_MAX_SECS: "1" });
  ({ baseUrl, token } = stack);
});
after(() => stack?.stop());

/** A page stand-in for `document`: input events and a visibility that the test flips. */
class Page extends EventTarget {
  visibilityState = "visible";
  hide() {
    this.visibilityState = "hidden";
    this.dispatchEvent(new Event("visibilitychange"));
  }
  show() {
    this.visibilityState = "visible";
    this.dispatchEvent(new Event("visibilitychange"));
  }
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function eventually(check, ms = 5000) {
  for (const end = Date.now() + ms; !check() && Date.now() < end; ) await sleep(50);
}

test("open a project's sandbox and poll it to RUNNING", async () => {
  // quick start
  const sandman = new Sandman({ baseUrl, token });
  await sandman.putProject("notebook-42", { templateId: "base", idleTimeoutSeconds: 600 });
  await sandman.open("notebook-42");
  const running = await sandman.waitUntil("notebook-42", "RUNNING");
  console.log(`sandbox ${running.sandboxId} is up at ${running.host}`);
  // end quick start
  assert.equal(running.state, "RUNNING");
  assert.ok(running.sandboxId);

  // An unchanged status is a 304: `status` resolves null and the server sent no body.
  const first = await sandman.status("notebook-42");
  assert.equal(first.status.sandboxId, running.sandboxId);
  assert.equal(await sandman.status("notebook-42", first.etag), null);
});

test("a heartbeat with busyForSeconds holds the sandbox past its idle timeout", async () => {
  const sandman = new Sandman({ baseUrl, token });
  await sandman.putProject("build-3", { templateId: "base", idleTimeoutSeconds: 600 });
  await sandman.open("build-3");
  await sandman.waitUntil("build-3", "RUNNING");
  const sent = Date.now();
  assert.equal((await sandman.heartbeat("build-3", { busyForSeconds: 3000 })).outcome, "recorded");
  const { status } = await sandman.status("build-3");
  const heldFor = (Date.parse(status.pauseAt) - sent) / 1000;
  assert.ok(heldFor > 2900, `paused no sooner than the job's 3000 s, not the 600 s idle timeout (pauseAt in ${heldFor} s)`);
  await assert.rejects(sandman.heartbeat("build-3", { busyForSeconds: -1 }), (err) => err instanceof SandmanError && err.status === 400);
});

test("heartbeats follow activity, respect the throttle, stop when hidden and wake a paused sandbox", async () => {
  const sandman = new Sandman({ baseUrl, token });
  await sandman.putProject("editor-7", { templateId: "base" });
  await sandman.open("editor-7");
  await sandman.waitUntil("editor-7", "RUNNING");
  const page = new Page();
  const beats = [];

  // heartbeat
  const heartbeat = startHeartbeat(sandman, "editor-7", {
    source: page, // `document` in a browser, the default
    onBeat: (result) => beats.push(result.outcome),
    onWake: () => console.log("welcome back: the sandbox is running again"),
  });
  // end heartbeat
  await heartbeat.ready;

  await sleep(1300); // past the throttle of the open's own activity
  const before = (await sandman.status("editor-7")).status.lastActiveAt;
  for (let i = 0; i < 20; i++) page.dispatchEvent(new Event("keydown"));
  await eventually(() => beats.length > 0);
  assert.deepEqual(beats, ["recorded"], "twenty key presses, one heartbeat");
  const after = (await sandman.status("editor-7")).status.lastActiveAt;
  assert.ok(Date.parse(after) > Date.parse(before), "the server recorded the activity");
  await eventually(() => beats.length > 1);
  await sleep(1500);
  assert.equal(beats.length, 2, "activity inside the throttle window sends one more heartbeat when it ends");

  page.hide();
  const paused = await sandman.pause("editor-7");
  assert.equal(paused.outcome, "paused");
  assert.equal(paused.sandbox.state, "PAUSED");
  await sleep(1300);
  page.dispatchEvent(new Event("keydown"));
  await sleep(1000);
  assert.equal(beats.length, 2, "no heartbeat while the page is hidden");
  assert.equal((await sandman.status("editor-7")).status.state, "PAUSED");

  page.show();
  await eventually(() => beats.length === 3, 15_000);
  assert.deepEqual(beats.slice(2), ["woke"], "coming back wakes the sandbox");
  assert.equal((await sandman.waitUntil("editor-7", "RUNNING", { timeoutMs: 5000 })).state, "RUNNING");
  heartbeat.stop();

  const log = await sandman.events("editor-7");
  const moves = log.items.map((e) => `${e.from ?? "-"}>${e.to}`).reverse();
  assert.deepEqual(moves.slice(-2), ["PAUSED>RESUMING", "RESUMING>RUNNING"]);
  const time = usage(log.items);
  assert.ok(time.pausedMs > 1000, `paused for ${time.pausedMs} ms`);
  assert.ok(time.saved > 0);
});

test("snapshots: take, list, kill with save, reopen from it", async () => {
  const sandman = new Sandman({ baseUrl, token });
  await sandman.putProject("tutorial-3", { templateId: "base" });
  await sandman.open("tutorial-3");
  await sandman.waitUntil("tutorial-3", "RUNNING");

  // snapshots
  const snapshot = await sandman.createSnapshot("tutorial-3", "before the refactor");
  const { items } = await sandman.listSnapshots("tutorial-3");
  await sandman.kill("tutorial-3", { snapshot: false });
  const reopened = await sandman.open("tutorial-3");
  // end snapshots
  assert.equal(snapshot.description, "before the refactor");
  assert.deepEqual(items.map((s) => s.snapshotId), [snapshot.snapshotId]);
  assert.equal(reopened.path, "restored");
  assert.equal(reopened.restoredFrom, snapshot.snapshotId);
  assert.equal(reopened.sandbox.state, "RUNNING");
});

test("a watcher (what useSandbox renders from) follows the sandbox while someone listens", async () => {
  const sandman = new Sandman({ baseUrl, token });
  await sandman.putProject("watched-1", { templateId: "base" });
  await sandman.open("watched-1");
  const watcher = new SandboxWatcher(sandman, "watched-1", { maxPollMs: 200 });
  const seen = [];
  const unsubscribe = watcher.subscribe(() => seen.push(watcher.current.status?.state));
  await eventually(() => seen.includes("RUNNING"));
  await sandman.pause("watched-1");
  await eventually(() => seen.includes("PAUSED"));
  unsubscribe();
  assert.equal(seen[0], "RUNNING");
  assert.equal(seen.at(-1), "PAUSED");
  assert.equal(watcher.current.error, null);
  const count = seen.length;
  // E2B's own "paused" webhook may still be landing: a 409 then means "try again".
  for (let attempt = 0; ; attempt++) {
    try {
      await sandman.resume("watched-1");
      break;
    } catch (error) {
      if (!(error instanceof SandmanError && error.status === 409 && attempt < 10)) throw error;
      await sleep(200);
    }
  }
  await sleep(600);
  assert.equal(seen.length, count, "no polling once nobody listens");
});

test("errors carry the API's status and code; waitUntil does not retry what cannot succeed", async () => {
  const sandman = new Sandman({ baseUrl, token });
  await assert.rejects(sandman.waitUntil("no-such-project", "RUNNING", { timeoutMs: 10_000 }), (error) => {
    assert.ok(error instanceof SandmanError);
    assert.equal(error.status, 404);
    assert.equal(error.transient, false);
    return true;
  });
  const stranger = new Sandman({ baseUrl, token: "not-a-jwt" });
  await assert.rejects(stranger.listProjects(), (error) => error.status === 401 && typeof error.code === "string");
});

test("env vars and secrets: set, listed without values, delivered at the next start", async () => {
  const sandman = new Sandman({ baseUrl, token });
  await sandman.putProject("with-env", { templateId: "base" });
  const env = await sandman.setEnv("with-env", { DATABASE_URL: "postgres://db/app" });
  assert.deepEqual(env.vars, { DATABASE_URL: "postgres://db/app" });
  const set = await sandman.putSecret("with-env", "OPENAI_API_KEY", { value: "sk-test-0123456789", hosts: ["api.openai.com"], prefix: "Bearer " });
  assert.equal(set.secret.lastFour, "6789");
  assert.equal(JSON.stringify(set).includes("sk-test-0123456789"), false);
  const listed = await sandman.listSecrets("with-env");
  assert.deepEqual(listed.items.map((s) => s.name), ["OPENAI_API_KEY"]);
  await sandman.open("with-env");
  await sandman.waitUntil("with-env", "RUNNING");
  assert.equal((await sandman.setEnv("with-env", { DATABASE_URL: "postgres://db/other" })).restartRequired, true);
  await sandman.deleteSecret("with-env", "OPENAI_API_KEY");
  assert.deepEqual((await sandman.listSecrets("with-env")).items, []);
  await assert.rejects(sandman.setEnv("with-env", { "1BAD": "x" }), (err) => err instanceof SandmanError && err.status === 400);
});

test("the team's projects list what the tests registered", async () => {
  const sandman = new Sandman({ baseUrl, token });
  const projects = await sandman.all((page) => sandman.listProjects(page));
  const ids = projects.map((p) => p.projectId);
  for (const id of ["notebook-42", "editor-7", "tutorial-3"]) assert.ok(ids.includes(id), `${id} in ${ids}`);
});

test("the served OpenAPI document is the one the types were generated from", async () => {
  const served = await (await fetch(`${baseUrl}/openapi.json`)).json();
  const bin = process.env.SANDMAN_LOCAL_BIN ?? new URL("../../../target/debug/sandman-local", import.meta.url).pathname;
  const printed = JSON.parse(execFileSync(bin, ["openapi"], { encoding: "utf8" }));
  // The served document also lists the deployment's closed set of templates (here `base`); the
  // printed one cannot know it, and the generated types keep `templateId` a string.
  const templateId = served.components.schemas.ProjectSettings.properties.templateId;
  assert.deepEqual(templateId.enum, ["base"]);
  delete templateId.enum;
  assert.deepEqual(served, printed);
});
