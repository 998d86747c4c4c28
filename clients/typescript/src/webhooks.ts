// Verifies the webhooks Sandman sends (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
// `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). WebCrypto only, so it runs
// in Node 20+, Deno, Bun, Cloudflare Workers and browsers alike.

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

export interface VerifyOptions {
  /** How far the timestamp may be from now, either way. Default 5 minutes. */
  toleranceSeconds?: number;
  now?: Date;
}

type Headers = Record<string, string | string[] | undefined> | { get(name: string): string | null };

function header(headers: Headers, name: string): string {
  const value = typeof headers.get === "function" ? (headers as { get(n: string): string | null }).get(name) : (headers as Record<string, unknown>)[name];
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== "string" || !text) throw new WebhookVerificationError(`missing ${name} header`);
  return text;
}

function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  const base64 = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function toBase64(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)));
}

/** `v1,<base64>` for this message: what Sandman puts in `webhook-signature`. */
export async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
  return `v1,${toBase64(mac)}`;
}

function equal(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Checks the signature over the raw body (verify before parsing: re-serialized JSON would not
 * match) and the timestamp's freshness; returns the parsed payload.
 */
export async function verifyWebhook<T = unknown>(secret: string, headers: Headers, body: string, options: VerifyOptions = {}): Promise<T> {
  const id = header(headers, "webhook-id");
  const timestamp = Number(header(headers, "webhook-timestamp"));
  const signatures = header(headers, "webhook-signature");
  if (!Number.isInteger(timestamp)) throw new WebhookVerificationError("webhook-timestamp is not a number");
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now - timestamp) > tolerance) throw new WebhookVerificationError("webhook-timestamp is too old or too new");
  const expected = await sign(secret, id, timestamp, body);
  // Several signatures may be sent (space-separated) while a secret is being rotated.
  if (!signatures.split(" ").some((candidate) => equal(candidate, expected))) {
    throw new WebhookVerificationError("no matching signature");
  }
  return JSON.parse(body) as T;
}
