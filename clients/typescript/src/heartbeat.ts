// Keeps a project's sandbox alive while a person uses the page, and only then: a heartbeat on
// input or on coming back to the page, at most one per server throttle interval, none while the
// page is hidden. Coming back after the sandbox was paused wakes it (the server resumes it).
import type { ActivityResult, Sandman } from "./client.js";

/** What the helper listens to: `document` in a browser; any EventTarget with a visibility in tests. */
export interface ActivitySource extends EventTarget {
  readonly visibilityState: string;
}

export interface HeartbeatOptions {
  /** Default `document`. */
  source?: ActivitySource;
  /** Minimum gap between heartbeats. Default: the project's `heartbeatIntervalSeconds`. */
  intervalMs?: number;
  /** Input events that count as activity. */
  events?: string[];
  onBeat?: (result: ActivityResult) => void;
  /** A paused sandbox was woken by the user's return. */
  onWake?: (result: ActivityResult) => void;
  onError?: (error: unknown) => void;
}

export interface Heartbeat {
  /** Counts as activity now (e.g. after a programmatic action). */
  touch(): void;
  stop(): void;
  /** Resolves once the interval is known and listeners are attached. */
  readonly ready: Promise<void>;
}

/** When the project cannot be read: the server's default throttle. */
const FALLBACK_INTERVAL_MS = 30_000;

export const ACTIVITY_EVENTS = ["pointerdown", "keydown", "wheel", "touchstart", "input", "focusin"];

export function startHeartbeat(client: Sandman, projectId: string, options: HeartbeatOptions = {}): Heartbeat {
  const source = options.source ?? (globalThis as { document?: ActivitySource }).document;
  if (!source) throw new Error("startHeartbeat needs a document (or options.source)");
  const events = options.events ?? ACTIVITY_EVENTS;
  let interval = options.intervalMs ?? 0;
  let lastSent = -Infinity;
  let trailing: ReturnType<typeof setTimeout> | undefined;
  let inFlight = false;
  let stopped = false;

  const beat = async () => {
    if (stopped || inFlight || source.visibilityState === "hidden") return;
    inFlight = true;
    lastSent = Date.now();
    try {
      const result = await client.heartbeat(projectId);
      options.onBeat?.(result);
      if (result.outcome === "woke") options.onWake?.(result);
    } catch (error) {
      options.onError?.(error);
    } finally {
      inFlight = false;
    }
  };

  const touch = () => {
    if (stopped || source.visibilityState === "hidden") return;
    const due = lastSent + interval - Date.now();
    if (due <= 0 && !inFlight) {
      void beat();
    } else if (trailing === undefined) {
      // Activity inside the window: one heartbeat when it ends, not one per event.
      trailing = setTimeout(() => {
        trailing = undefined;
        touch();
      }, Math.max(due, 50));
    }
  };

  const visibility = () => {
    if (source.visibilityState === "hidden") {
      clearTimeout(trailing);
      trailing = undefined;
    } else {
      touch();
    }
  };

  const ready = (async () => {
    if (!options.intervalMs) {
      try {
        const project = await client.getProject(projectId);
        // A little over the server's interval, so a heartbeat never lands inside its throttle.
        interval = project.heartbeatIntervalSeconds * 1000 + 250;
      } catch (error) {
        options.onError?.(error);
        interval = FALLBACK_INTERVAL_MS;
      }
    }
    if (stopped) return;
    for (const name of events) source.addEventListener(name, touch, { passive: true } as AddEventListenerOptions);
    source.addEventListener("visibilitychange", visibility);
  })();

  return {
    touch,
    ready,
    stop() {
      stopped = true;
      clearTimeout(trailing);
      for (const name of events) source.removeEventListener(name, touch);
      source.removeEventListener("visibilitychange", visibility);
    },
  };
}
