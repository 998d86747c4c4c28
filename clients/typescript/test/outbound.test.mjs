// Outbound webhooks against the real local stack: an endpoint registered through the client, a
// lifecycle change delivered to a receiver on 127.0.0.1, its signature checked by this package's
// verifier, and the endpoint's delivery log read back.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Sandman } from "../dist/index.js";
import { verifyWebhook } from "../dist/webhooks.js";
import { startStack } from "./stack.mjs";

let stack;
before(async () => {
  // Retries after 0.2 s, 0.8 s, ... instead of make dev's 5 s.
  stack = await startStack({ OUTBOUND_RETRY_BASE_MS: "200" });
});
after(async () => {
  await stack?.stop();
});

/** A receiver answering `status`; every request it got (headers and raw body). */
async function receiver(status) {
  const got = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      got.push({ headers: request.headers, body });
      response.writeHead(status).end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, got, close: () => server.close() };
}

async function eventually(what, check, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const found = await check();
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting for ${what}\n${stack.log()}`);
}

test("a lifecycle change arrives signed; the verifier accepts it and the delivery log shows it", async () => {
  const sandman = new Sandman({ baseUrl: stack.baseUrl, token: stack.token });
  const hook = await receiver(200);
  try {
    // register
    const endpoint = await sandman.createEndpoint({ url: hook.url, events: ["sandbox.running", "sandbox.paused"] });
    // keep endpoint.secret: it is shown only now
    // end register
    assert.match(endpoint.secret, /^whsec_/);
    assert.equal((await sandman.listEndpoints()).some((e) => e.endpointId === endpoint.endpointId && !("secret" in e)), true);

    await sandman.putProject("ts-hooked", { templateId: "base" });
    await sandman.open("ts-hooked");
    const delivery = await eventually("a sandbox.running delivery", () => hook.got.find((d) => d.body.includes('"sandbox.running"')));
    const event = await verifyWebhook(endpoint.secret, delivery.headers, delivery.body);
    assert.equal(event.type, "sandbox.running");
    assert.equal(event.data.projectId, "ts-hooked");
    assert.equal(event.data.actor, "user");
    await assert.rejects(verifyWebhook(endpoint.secret, delivery.headers, delivery.body.replace("ts-hooked", "other")), /no matching signature/);

    const page = await eventually("the delivery in the log", async () => {
      const found = await sandman.deliveries(endpoint.endpointId);
      return found.items.length > 0 && found;
    });
    assert.equal(page.items[0].messageId, delivery.headers["webhook-id"]);
    assert.equal(page.items[0].status, "delivered");
    assert.equal(page.items[0].attempts, 1);

    await sandman.deleteEndpoint(endpoint.endpointId);
    await assert.rejects(sandman.getEndpoint(endpoint.endpointId), (err) => err.status === 404);
  } finally {
    hook.close();
  }
});

test("a failing endpoint does not hold up the lifecycle, and its log says it is retried", async () => {
  const sandman = new Sandman({ baseUrl: stack.baseUrl, token: stack.token });
  const hook = await receiver(500);
  try {
    const endpoint = await sandman.createEndpoint({ url: hook.url, events: ["sandbox.running"] });
    await sandman.putProject("ts-failing", { templateId: "base" });
    const opened = await sandman.open("ts-failing");
    assert.ok(opened.sandbox, "the open answered while the endpoint fails");
    await eventually("two attempts", () => hook.got.length >= 2);
    const [first, second] = hook.got;
    assert.equal(first.headers["webhook-id"], second.headers["webhook-id"], "a retry carries the same webhook-id");
    await verifyWebhook(endpoint.secret, second.headers, second.body);
    const page = await sandman.deliveries(endpoint.endpointId);
    assert.ok(["retrying", "dead-lettered"].includes(page.items[0].status), JSON.stringify(page.items[0]));
    assert.equal(page.items[0].lastStatusCode, 500);
    await sandman.deleteEndpoint(endpoint.endpointId);
  } finally {
    hook.close();
  }
});
