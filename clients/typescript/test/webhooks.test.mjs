import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { sign, verifyWebhook, WebhookVerificationError } from "../dist/webhooks.js";

const secret = "whsec_" + Buffer.from("a signing secret of 32 bytes....").toString("base64");
const body = JSON.stringify({ type: "sandbox.paused", data: { projectId: "p1" } });
const now = new Date("2026-11-27T12:00:00Z");
const timestamp = Math.floor(now.getTime() / 1000);

test("the signature is base64 HMAC-SHA256 of id.timestamp.body with the decoded secret", async () => {
  const mac = createHmac("sha256", Buffer.from(secret.slice(6), "base64")).update(`msg_1.${timestamp}.${body}`).digest("base64");
  assert.equal(await sign(secret, "msg_1", timestamp, body), `v1,${mac}`);
});

test("verify accepts a good signature and rejects a changed body, a stale timestamp and no header", async () => {
  const headers = { "webhook-id": "msg_1", "webhook-timestamp": String(timestamp), "webhook-signature": `v1,bogus ${await sign(secret, "msg_1", timestamp, body)}` };
  assert.deepEqual(await verifyWebhook(secret, headers, body, { now }), JSON.parse(body));
  assert.deepEqual(await verifyWebhook(secret, new Headers(headers), body, { now }), JSON.parse(body));
  await assert.rejects(verifyWebhook(secret, headers, body.replace("p1", "p2"), { now }), WebhookVerificationError);
  await assert.rejects(verifyWebhook(secret, headers, body, { now: new Date(now.getTime() + 600_000) }), /too old/);
  await assert.rejects(verifyWebhook(secret, { ...headers, "webhook-id": undefined }, body, { now }), /missing webhook-id/);
});

test("verifies a delivery signed by Sandman itself (sandman-local webhook-sample)", async () => {
  const bin = process.env.SANDMAN_LOCAL_BIN ?? new URL("../../../target/debug/sandman-local", import.meta.url).pathname;
  const sample = JSON.parse(execFileSync(bin, ["webhook-sample"], { encoding: "utf8" }));

  // verify
  const event = await verifyWebhook(sample.secret, sample.headers, sample.body);
  console.log(`${event.type}: ${event.data.projectId} ${event.data.from} -> ${event.data.to} by ${event.data.actor} (${event.data.cause})`);
  // end verify
  assert.equal(event.type, "sandbox.paused");
  assert.equal(event.data.actor, "idle-enforcer");
  await assert.rejects(verifyWebhook(sample.secret, sample.headers, sample.body.replace("PAUSED", "RUNNING")), /no matching signature/);
});
