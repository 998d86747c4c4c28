// The Sandman client: one method per API route, plus the polling loop every frontend needs.
import type { components } from "./schema.js";

type Schemas = components["schemas"];
export type State = Schemas["State"];
export type SandboxStatus = Schemas["SandboxStatus"];
export type ProjectView = Schemas["ProjectView"];
export type ProjectLine = Schemas["ProjectLine"];
export type ProjectSettings = Schemas["ProjectSettings"];
export type OpenResult = Schemas["OpenResult"];
export type ActivityResult = Schemas["ActivityResult"];
export type PauseResult = Schemas["PauseResult"];
export type KillResult = Schemas["KillResult"];
export type SnapshotView = Schemas["SnapshotView"];
export type EventView = Schemas["EventView"];
export type UsageView = Schemas["UsageView"];
export type BudgetView = Schemas["BudgetView"];
export type ForkRequest = Schemas["ForkRequest"];
export type NewEndpoint = Schemas["NewEndpointBody"];
export type EndpointView = Schemas["EndpointView"];
export type CreatedEndpoint = Schemas["CreatedEndpoint"];
export type DeliveryView = Schemas["DeliveryView"];
export type EnvAnswer = Schemas["EnvAnswer"];
export type SecretSettings = Schemas["SecretSettings"];
export type SecretAnswer = Schemas["SecretAnswer"];
export type SecretsAnswer = Schemas["SecretsAnswer"];
export type SecretChangeAnswer = Schemas["SecretChangeAnswer"];
export type SecretDeleted = Schemas["SecretDeleted"];
export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}
export interface PageOptions {
  limit?: number;
  cursor?: string;
}

/** An answer other than 2xx/304, with the API's `{"error":{"code","message"}}` body. */
export class SandmanError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds from a `Retry-After` header (429, 503), if any. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "SandmanError";
  }

  /** Worth retrying: throttled, unavailable, or a gateway error. */
  get transient(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

export interface SandmanOptions {
  /** The API's origin, e.g. `https://api.example.com` (no `/v1`). */
  baseUrl: string;
  /** A bearer JWT, or a function returning a fresh one for each request. */
  token: string | (() => string | Promise<string>);
  fetch?: typeof fetch;
}

export interface Polled {
  status: SandboxStatus;
  etag: string | null;
}

export interface WatchOptions {
  signal?: AbortSignal;
  /** Between polls when the server gives no `pollAfterMs` (nothing changes on its own). Default 5 s. */
  idlePollMs?: number;
  /** Never wait longer than this between polls, whatever the server suggests (for a live view). */
  maxPollMs?: number;
  /** First wait after an error; it doubles up to `maxBackoffMs`. Default 500 ms. */
  backoffMs?: number;
  maxBackoffMs?: number;
  onError?: (error: unknown) => void;
}

export interface WaitOptions extends WatchOptions {
  /** Give up (reject with a `timeout` SandmanError) after this long. Default 2 minutes. */
  timeoutMs?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", abort, { once: true });
  });

const path = (id: string) => `/v1/projects/${encodeURIComponent(id)}`;
const scope = (id: string | null) => (id === null ? "/v1/team" : path(id));
const periodQuery = (period?: string) => (period ? `?period=${encodeURIComponent(period)}` : "");

export class Sandman {
  readonly baseUrl: string;
  private readonly token: SandmanOptions["token"];
  private readonly fetcher: typeof fetch;

  constructor(options: SandmanOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.token = options.token;
    this.fetcher = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** One request; the parsed JSON body, `undefined` for 204 and 304. */
  async request<T>(method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ data: T; response: Response }> {
    const token = typeof this.token === "function" ? await this.token() : this.token;
    const response = await this.fetcher(this.baseUrl + route, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204 || response.status === 304) return { data: undefined as T, response };
    const text = await response.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!response.ok) {
      const retry = Number(response.headers.get("retry-after"));
      throw new SandmanError(
        response.status,
        json?.error?.code ?? "http_error",
        json?.error?.message ?? `${method} ${route} answered ${response.status}`,
        Number.isFinite(retry) && retry > 0 ? retry : undefined,
      );
    }
    return { data: json as T, response };
  }

  private async call<T>(method: string, route: string, body?: unknown): Promise<T> {
    return (await this.request<T>(method, route, body)).data;
  }

  private list<T>(route: string, page: PageOptions = {}): Promise<Page<T>> {
    const query = new URLSearchParams();
    if (page.limit) query.set("limit", String(page.limit));
    if (page.cursor) query.set("cursor", page.cursor);
    const suffix = query.toString() ? `?${query}` : "";
    return this.call("GET", route + suffix);
  }

  /** Every page of a list, in order. */
  async all<T>(fetchPage: (page: PageOptions) => Promise<Page<T>>): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await fetchPage({ limit: 100, cursor });
      items.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return items;
  }

  // Projects
  listProjects(page?: PageOptions): Promise<Page<ProjectLine>> {
    return this.list("/v1/projects", page);
  }
  putProject(projectId: string, settings: ProjectSettings): Promise<ProjectView> {
    return this.call("PUT", path(projectId), settings);
  }
  getProject(projectId: string): Promise<ProjectView> {
    return this.call("GET", path(projectId));
  }
  deleteProject(projectId: string): Promise<void> {
    return this.call("DELETE", path(projectId));
  }

  // The sandbox
  /** Get-or-create. A 202 (another request is bringing it up) resolves too: `waitUntil` it. */
  open(projectId: string): Promise<OpenResult> {
    return this.call("POST", `${path(projectId)}/sandbox`);
  }
  /** One poll. With the previous `etag`, resolves `null` when nothing changed (304). */
  async status(projectId: string, etag?: string | null): Promise<Polled | null> {
    const headers: Record<string, string> = etag ? { "if-none-match": etag } : {};
    const { data, response } = await this.request<SandboxStatus>("GET", `${path(projectId)}/sandbox`, undefined, headers);
    if (response.status === 304) return null;
    return { status: data, etag: response.headers.get("etag") };
  }
  /**
   * Records activity; wakes a paused sandbox. Throttled heartbeats cost the server nothing.
   * `busyForSeconds` holds the sandbox awake for a long job (up to the project's
   * `maxBusyForSeconds`) without a heartbeat loop; such a call is always recorded.
   */
  heartbeat(projectId: string, options: { busyForSeconds?: number } = {}): Promise<ActivityResult> {
    const body = options.busyForSeconds === undefined ? undefined : { busyForSeconds: options.busyForSeconds };
    return this.call("POST", `${path(projectId)}/sandbox/activity`, body);
  }
  pause(projectId: string): Promise<PauseResult> {
    return this.call("POST", `${path(projectId)}/sandbox/pause`);
  }
  resume(projectId: string): Promise<OpenResult> {
    return this.call("POST", `${path(projectId)}/sandbox/resume`);
  }
  /** `snapshot`: true saves first (and keeps the sandbox if that fails); absent: as the project says. */
  kill(projectId: string, options: { snapshot?: boolean } = {}): Promise<KillResult> {
    const query = options.snapshot === undefined ? "" : `?snapshot=${options.snapshot}`;
    return this.call("DELETE", `${path(projectId)}/sandbox${query}`);
  }

  // Snapshots
  createSnapshot(projectId: string, description = ""): Promise<SnapshotView> {
    return this.call("POST", `${path(projectId)}/snapshots`, { description });
  }
  listSnapshots(projectId: string, page?: PageOptions): Promise<Page<SnapshotView>> {
    return this.list(`${path(projectId)}/snapshots`, page);
  }
  pinSnapshot(projectId: string, snapshotId: string, pinned: boolean): Promise<SnapshotView> {
    return this.call("PATCH", `${path(projectId)}/snapshots/${encodeURIComponent(snapshotId)}`, { pinned });
  }
  deleteSnapshot(projectId: string, snapshotId: string): Promise<void> {
    return this.call("DELETE", `${path(projectId)}/snapshots/${encodeURIComponent(snapshotId)}`);
  }
  restoreSnapshot(projectId: string, snapshotId: string): Promise<OpenResult> {
    return this.call("POST", `${path(projectId)}/snapshots/${encodeURIComponent(snapshotId)}/restore`);
  }

  // Usage, budget, fork
  /** A project's usage in a month (`YYYY-MM`, UTC; the current one by default). */
  usage(projectId: string, period?: string): Promise<UsageView> {
    return this.call("GET", `${path(projectId)}/usage${periodQuery(period)}`);
  }
  /** The team's usage in a month, over all its projects. */
  teamUsage(period?: string): Promise<UsageView> {
    return this.call("GET", `/v1/usage${periodQuery(period)}`);
  }
  /** The team's monthly budget and how much of it this month used (404: no budget). */
  getBudget(): Promise<BudgetView> {
    return this.call("GET", "/v1/budget");
  }
  /** Sets the team's monthly budget in US dollars (needs a token with the admin claim). */
  setBudget(monthlyUsd: number): Promise<BudgetView> {
    return this.call("PUT", "/v1/budget", { monthlyUsd });
  }
  deleteBudget(): Promise<void> {
    return this.call("DELETE", "/v1/budget");
  }
  /** A new project whose first open restores a snapshot of `projectId` (or of its running sandbox). */
  fork(projectId: string, request: ForkRequest): Promise<ProjectView> {
    return this.call("POST", `${path(projectId)}/fork`, request);
  }

  /** The lifecycle log, newest first. */
  events(projectId: string, page?: PageOptions): Promise<Page<EventView>> {
    return this.list(`${path(projectId)}/events`, page);
  }

  // Env vars and secrets: a project's own (`projectId`), or the team's (`null`), which every
  // project inherits. A secret's value is write-only: listings show its name and last 4 characters.
  /** The env vars, and whether a sandbox runs with older ones (`restartRequired`). */
  getEnv(projectId: string | null): Promise<EnvAnswer> {
    return this.call("GET", `${scope(projectId)}/env`);
  }
  /** Replaces the env vars; they reach a sandbox at its next start or restore. */
  setEnv(projectId: string | null, vars: Record<string, string>): Promise<EnvAnswer> {
    return this.call("PUT", `${scope(projectId)}/env`, { vars });
  }
  listSecrets(projectId: string | null): Promise<SecretsAnswer> {
    return this.call("GET", `${scope(projectId)}/secrets`);
  }
  /** Sets or rotates a secret: E2B's egress proxy adds it to requests to `hosts` (a rotation at once). */
  putSecret(projectId: string | null, name: string, secret: SecretSettings): Promise<SecretChangeAnswer> {
    return this.call("PUT", `${scope(projectId)}/secrets/${encodeURIComponent(name)}`, secret);
  }
  deleteSecret(projectId: string | null, name: string): Promise<SecretDeleted> {
    return this.call("DELETE", `${scope(projectId)}/secrets/${encodeURIComponent(name)}`);
  }

  // Outbound webhooks
  /** Registers an endpoint; the answer's `secret` (verify deliveries with it) is shown only here. */
  createEndpoint(endpoint: NewEndpoint): Promise<CreatedEndpoint> {
    return this.call("POST", "/v1/webhooks/endpoints", endpoint);
  }
  async listEndpoints(): Promise<EndpointView[]> {
    return (await this.call<{ items: EndpointView[] }>("GET", "/v1/webhooks/endpoints")).items;
  }
  getEndpoint(endpointId: string): Promise<EndpointView> {
    return this.call("GET", `/v1/webhooks/endpoints/${encodeURIComponent(endpointId)}`);
  }
  deleteEndpoint(endpointId: string): Promise<void> {
    return this.call("DELETE", `/v1/webhooks/endpoints/${encodeURIComponent(endpointId)}`);
  }
  /** The endpoint's delivery log, newest first: status, attempts, what the endpoint answered. */
  deliveries(endpointId: string, page?: PageOptions): Promise<Page<DeliveryView>> {
    return this.list(`/v1/webhooks/endpoints/${encodeURIComponent(endpointId)}/deliveries`, page);
  }

  /**
   * Polls the status for as long as the caller iterates, yielding it each time it changes. Sends
   * `If-None-Match`, waits `pollAfterMs` (or `idlePollMs`) between polls, backs off on errors
   * (honouring `Retry-After`), and rethrows errors that retrying cannot fix (401, 403, 404).
   */
  async *watch(projectId: string, options: WatchOptions = {}): AsyncGenerator<SandboxStatus> {
    const { signal, idlePollMs = 5000, maxPollMs = Infinity, backoffMs = 500, maxBackoffMs = 30_000 } = options;
    let etag: string | null = null;
    let last: SandboxStatus | undefined;
    let failures = 0;
    for (;;) {
      signal?.throwIfAborted();
      let wait: number;
      try {
        const polled = await this.status(projectId, etag);
        failures = 0;
        if (polled) {
          etag = polled.etag;
          last = polled.status;
          yield polled.status;
        }
        wait = Math.min(last?.pollAfterMs ?? idlePollMs, maxPollMs);
      } catch (error) {
        if (!(error instanceof SandmanError && error.transient) && !(error instanceof TypeError)) throw error;
        options.onError?.(error);
        const backoff = Math.min(maxBackoffMs, backoffMs * 2 ** failures++);
        const retryAfter = error instanceof SandmanError && error.retryAfter ? error.retryAfter * 1000 : 0;
        wait = Math.max(retryAfter, backoff * (0.5 + Math.random() / 2));
      }
      await sleep(wait, signal);
    }
  }

  /** Resolves with the status once the sandbox is in one of `states`. */
  async waitUntil(projectId: string, states: State | State[], options: WaitOptions = {}): Promise<SandboxStatus> {
    const wanted = Array.isArray(states) ? states : [states];
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 120_000);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      for await (const status of this.watch(projectId, { ...options, signal })) {
        if (status.state && wanted.includes(status.state)) return status;
      }
    } catch (error) {
      if (timeout.aborted) throw new SandmanError(0, "timeout", `${projectId} did not reach ${wanted.join(" or ")} in time`);
      throw error;
    }
    throw new SandmanError(0, "timeout", "unreachable");
  }
}
