// A project's status as a subscribable value: what `useSandbox` (and any other UI) renders from.
import type { Sandman, SandboxStatus, WatchOptions } from "./client.js";

export interface SandboxView {
  status: SandboxStatus | null;
  error: unknown;
}

export class SandboxWatcher {
  private view: SandboxView = { status: null, error: null };
  private listeners = new Set<() => void>();
  private abort: AbortController | null = null;

  constructor(
    private readonly client: Sandman,
    readonly projectId: string,
    private readonly options: Omit<WatchOptions, "signal"> = {},
  ) {}

  get current(): SandboxView {
    return this.view;
  }

  /** Starts polling with the first subscriber, stops with the last. Returns the unsubscribe. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Replaces the status with one a call returned (open, pause, resume) without waiting for a poll. */
  set(status: SandboxStatus): void {
    this.update({ status, error: null });
  }

  /** Shows an error from a call made beside the polling (e.g. an open that failed). */
  fail(error: unknown): void {
    this.update({ ...this.view, error });
  }

  private update(view: SandboxView) {
    this.view = view;
    for (const listener of this.listeners) listener();
  }

  private start() {
    const abort = (this.abort = new AbortController());
    void (async () => {
      try {
        const onError = (error: unknown) => this.update({ ...this.view, error });
        for await (const status of this.client.watch(this.projectId, { ...this.options, signal: abort.signal, onError })) {
          this.update({ status, error: null });
        }
      } catch (error) {
        if (!abort.signal.aborted) this.update({ ...this.view, error });
      }
    })();
  }

  private stop() {
    this.abort?.abort();
    this.abort = null;
  }
}
