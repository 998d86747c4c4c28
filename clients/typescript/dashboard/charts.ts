// SVG charts for the dashboard: a project's timeline of states, and time per project split into
// running and paused. Plain DOM, no library.
import type { Period, SnapshotView, State } from "../src/index.js";

const SVG = "http://www.w3.org/2000/svg";

export const COLORS: Record<State, string> = {
  STARTING: "#f2b84b",
  RUNNING: "#2f9e6e",
  PAUSING: "#8fa7c9",
  PAUSED: "#5b7fbf",
  RESUMING: "#f2b84b",
  STOPPING: "#d9826b",
  KILLED: "#d0d4da",
};

export function svg(tag: string, attributes: Record<string, string | number> = {}, text?: string): SVGElement {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.round(h / 24)}d`;
}

const clock = (at: Date, span: number) =>
  at.toLocaleTimeString([], span < 120_000 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" });

/** One row: each period a coloured band from its start to its end, snapshots as ticks above. */
export function timeline(periods: Period[], snapshots: SnapshotView[], from: Date, to: Date, width = 480): SVGElement {
  const height = 48;
  const band = { y: 14, h: 18 };
  const span = Math.max(1, to.getTime() - from.getTime());
  const x = (at: Date) => Math.max(0, Math.min(width, ((at.getTime() - from.getTime()) / span) * width));
  const root = svg("svg", { class: "timeline", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "sandbox timeline" });
  root.append(svg("rect", { x: 0, y: band.y, width, height: band.h, rx: 4, fill: "#eef0f3" }));
  for (const period of periods) {
    const start = x(period.start);
    const end = x(period.end ?? to);
    if (end <= start || period.state === "KILLED") continue;
    const rect = svg("rect", { x: start, y: band.y, width: Math.max(1.5, end - start), height: band.h, fill: COLORS[period.state], "data-state": period.state });
    rect.append(svg("title", {}, `${period.state} ${duration((period.end ?? to).getTime() - period.start.getTime())} from ${period.start.toLocaleString()}`));
    root.append(rect);
  }
  for (const snapshot of snapshots) {
    const at = x(new Date(snapshot.createdAt));
    const tick = svg("path", { d: `M${at - 4},2 L${at + 4},2 L${at},10 Z`, fill: "#444", class: "snapshot-mark" });
    tick.append(svg("title", {}, `snapshot ${snapshot.description || snapshot.snapshotId} (${snapshot.kind})`));
    root.append(tick);
  }
  root.append(svg("text", { x: 0, y: height - 2, class: "axis" }, clock(from, span)));
  root.append(svg("text", { x: width / 2, y: height - 2, class: "axis", "text-anchor": "middle" }, clock(new Date(from.getTime() + span / 2), span)));
  root.append(svg("text", { x: width, y: height - 2, class: "axis", "text-anchor": "end" }, "now"));
  return root;
}

export interface UsageRow {
  projectId: string;
  runningMs: number;
  pausedMs: number;
}

/** Running and paused time per project, as stacked horizontal bars on one scale. */
export function usageBars(rows: UsageRow[], width = 1040): SVGElement {
  const label = 150;
  const rowHeight = 26;
  const height = rows.length * rowHeight + 8;
  const max = Math.max(1, ...rows.map((r) => r.runningMs + r.pausedMs));
  const scale = (ms: number) => (ms / max) * (width - label - 130);
  const root = svg("svg", { class: "usage", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "running and paused time per project" });
  rows.forEach((row, i) => {
    const y = i * rowHeight + 4;
    root.append(svg("text", { x: label - 8, y: y + 14, "text-anchor": "end", class: "label" }, row.projectId));
    const running = scale(row.runningMs);
    const paused = scale(row.pausedMs);
    root.append(svg("rect", { x: label, y, width: Math.max(running, 0.5), height: 18, rx: 3, fill: COLORS.RUNNING }));
    root.append(svg("rect", { x: label + running, y, width: Math.max(paused, 0.5), height: 18, rx: 3, fill: COLORS.PAUSED }));
    root.append(
      svg("text", { x: label + running + paused + 8, y: y + 14, class: "value" }, `${duration(row.pausedMs)} paused (${Math.round((row.pausedMs / Math.max(1, row.runningMs + row.pausedMs)) * 100)}%)`),
    );
  });
  return root;
}
