// What a project's lifecycle log says about its time: when it ran, when it slept, and what
// sleeping saved. Pure functions over `EventView`s, so the dashboard and tests share them.
import type { EventView, State } from "./client.js";

/** A stretch of time in one state (`end` null: still in it). */
export interface Period {
  state: State;
  start: Date;
  end: Date | null;
  sandboxId: string | null;
}

export interface Usage {
  periods: Period[];
  runningMs: number;
  pausedMs: number;
  /** Running time that E2B bills, at `hourlyRate`. */
  cost: number;
  /** What the paused time would have cost had the sandbox kept running. */
  saved: number;
}

/** E2B's default sandbox (2 vCPU) at $0.000028 per second; pass your template's own rate. */
export const DEFAULT_HOURLY_RATE = 0.1008;

/** The periods of a log in time order, from the log newest first as the API lists it. */
export function periods(events: EventView[]): Period[] {
  // Reversed first so that two events in the same millisecond keep the log's order.
  // A settings line of a project without a sandbox (`to` null) moves nothing.
  const transitions = events.filter((event): event is EventView & { to: NonNullable<EventView["to"]> } => event.to != null);
  const ordered = [...transitions].reverse().sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return ordered.map((event, i) => ({
    state: event.to,
    start: new Date(event.at),
    end: i + 1 < ordered.length ? new Date(ordered[i + 1]!.at) : null,
    sandboxId: event.sandboxId ?? null,
  }));
}

export function usage(events: EventView[], options: { now?: Date; hourlyRate?: number; since?: Date } = {}): Usage {
  const now = options.now ?? new Date();
  const since = options.since?.getTime() ?? -Infinity;
  const rate = options.hourlyRate ?? DEFAULT_HOURLY_RATE;
  const list = periods(events);
  let runningMs = 0;
  let pausedMs = 0;
  for (const period of list) {
    const start = Math.max(period.start.getTime(), since);
    const ms = Math.max(0, (period.end ?? now).getTime() - start);
    // Pausing and resuming are billed as running: the sandbox still holds its machine.
    if (period.state === "PAUSED") pausedMs += ms;
    else if (period.state !== "KILLED") runningMs += ms;
  }
  const hours = (ms: number) => ms / 3_600_000;
  return { periods: list, runningMs, pausedMs, cost: hours(runningMs) * rate, saved: hours(pausedMs) * rate };
}
