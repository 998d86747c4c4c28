// The dashboard served at /dashboard: the team's projects, each with its timeline of running and
// paused periods, its snapshots, what pausing saved, and its env vars and secrets (env.ts). Only
// the public API, through the client.
// The token comes from the URL fragment (`make dev` prints such a URL; fragments never reach a
// server) or is pasted; it is kept in sessionStorage, so it leaves with the tab.
import { DEFAULT_HOURLY_RATE, Sandman, SandmanError, usage } from "../src/index.js";
import type { EventView, ProjectLine, ProjectView, SnapshotView } from "../src/index.js";
import { COLORS, duration, timeline, usageBars } from "./charts.js";
import { h } from "./dom.js";
import { environment, forgetExcept } from "./env.js";

const REFRESH_MS = 5000;
const MAX_PROJECTS = 50;
const WINDOW_MS = 24 * 3600 * 1000;

interface ProjectData {
  line: ProjectLine;
  project: ProjectView;
  events: EventView[];
  snapshots: SnapshotView[];
}

function takeToken(): string | null {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    sessionStorage.setItem("sandman-token", token);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("sandman-token");
}

function askForToken(message?: string) {
  const input = h("input", { type: "password", placeholder: "paste a bearer token (JWT)", autocomplete: "off", id: "token" });
  const form = h("form", { class: "login" }, h("h2", {}, "Sign in"), h("p", {}, message ?? "The dashboard calls the Sandman API with your team's token."), input, h("button", { type: "submit" }, "Open"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("sandman-token", input.value.trim());
    location.reload();
  });
  document.querySelector("main")!.replaceChildren(form);
}

async function load(client: Sandman): Promise<ProjectData[]> {
  const lines = (await client.listProjects({ limit: MAX_PROJECTS })).items;
  const loaded = await Promise.all(
    lines.map(async (line): Promise<ProjectData | null> => {
      try {
        const [project, events, snapshots] = await Promise.all([
          client.getProject(line.projectId),
          client.events(line.projectId, { limit: 100 }),
          client.listSnapshots(line.projectId, { limit: 20 }),
        ]);
        return { line, project, events: events.items, snapshots: snapshots.items };
      } catch (error) {
        // Deleted since the list was read: left out until the next refresh.
        if (error instanceof SandmanError && error.status === 404) return null;
        throw error;
      }
    }),
  );
  return loaded.filter((d): d is ProjectData => d !== null);
}

const ago = (at: string | null | undefined, now: Date) => (at ? `${duration(now.getTime() - Date.parse(at))} ago` : "never");
const money = (dollars: number) => (dollars < 0.01 ? `$${dollars.toFixed(4)}` : `$${dollars.toFixed(2)}`);

function stat(label: string, value: string, id: string) {
  return h("div", { class: "stat", "data-stat": id }, h("span", { class: "value" }, value), h("span", { class: "label" }, label));
}

function render(client: Sandman, data: ProjectData[], rate: number) {
  const now = new Date();
  const since = new Date(now.getTime() - WINDOW_MS);
  const rows = data.map((d) => ({ d, time: usage(d.events, { now, since, hourlyRate: rate }) }));
  const count = (state: string) => data.filter((d) => d.project.sandbox.state === state).length;
  const paused = rows.reduce((sum, r) => sum + r.time.pausedMs, 0);
  const saved = rows.reduce((sum, r) => sum + r.time.saved, 0);
  const cost = rows.reduce((sum, r) => sum + r.time.cost, 0);

  const summary = h(
    "section",
    { class: "summary" },
    stat("projects", String(data.length), "projects"),
    stat("running now", String(count("RUNNING")), "running"),
    stat("paused now", String(count("PAUSED")), "paused"),
    stat("paused, last 24 h", duration(paused), "paused-time"),
    stat("saved by pausing", money(saved), "saved"),
    stat("spent running", money(cost), "cost"),
  );
  const chart = h("section", { class: "card" }, h("h2", {}, "Running and paused time, last 24 hours"), usageBars(rows.map((r) => ({ projectId: r.d.line.projectId, runningMs: r.time.runningMs, pausedMs: r.time.pausedMs }))));

  const projects = rows.map(({ d, time }) => {
    const status = d.project.sandbox;
    const state = status.state ?? "NONE";
    const first = time.periods[0]?.start ?? now;
    const from = new Date(Math.max(since.getTime(), first.getTime() - 1000));
    const learned = d.project.idle.mode === "adaptive" ? ` (learned from ${d.project.idle.gapsSeen ?? 0} gaps)` : "";
    const policy = `pause after ${duration(d.project.idleTimeoutSeconds * 1000)} idle${learned}${d.project.snapshotOnIdle ? ", snapshot first" : ""} · keep ${d.project.retention.keepLast} snapshots`;
    const snapshots = d.snapshots.length
      ? h("ul", { class: "snapshots" }, ...d.snapshots.slice(0, 5).map((s) => h("li", {}, `${new Date(s.createdAt).toLocaleTimeString()} · ${s.description || s.kind}${s.pinned ? " · pinned" : ""}`)))
      : h("p", { class: "muted" }, "no snapshots");
    return h(
      "article",
      { class: "card project", "data-project": d.line.projectId },
      h(
        "header",
        {},
        h("h3", {}, d.line.projectId),
        h("span", { class: "badge", "data-state": state, style: `background:${COLORS[state as keyof typeof COLORS] ?? "#999"}` }, state),
      ),
      h(
        "dl",
        {},
        h("dt", {}, "last active"),
        h("dd", {}, ago(status.lastActiveAt, now)),
        h("dt", {}, "sandbox"),
        h("dd", { class: "mono" }, status.sandboxId ?? "none"),
        h("dt", {}, "policy"),
        h("dd", {}, policy),
        h("dt", {}, "paused / saved"),
        h("dd", {}, `${duration(time.pausedMs)} · ${money(time.saved)}`),
      ),
      timeline(time.periods, d.snapshots, from, now),
      h("h4", {}, `Snapshots (${d.snapshots.length})`),
      snapshots,
      environment(client, d.line.projectId),
    );
  });
  forgetExcept(data.map((d) => d.line.projectId));
  const legend = h("p", { class: "legend" }, ...(["RUNNING", "PAUSED", "STARTING"] as const).map((s) => h("span", {}, h("i", { style: `background:${COLORS[s]}` }), s.toLowerCase())), h("span", {}, "▼ snapshot"));
  const list = data.length ? h("section", { class: "projects" }, legend, ...projects) : h("p", { class: "muted" }, "No projects yet: register one with PUT /v1/projects/{id}.");
  // The environment sections move into the new cards: give back the focus of a half-typed form.
  const focused = document.activeElement;
  document.querySelector("main")!.replaceChildren(summary, chart, list);
  if (focused instanceof HTMLInputElement && focused.isConnected && document.activeElement !== focused) focused.focus();
  document.querySelector("#updated")!.textContent = `updated ${now.toLocaleTimeString()}`;
}

async function start() {
  const token = takeToken();
  if (!token) return askForToken();
  const client = new Sandman({ baseUrl: location.origin, token });
  const rateInput = document.querySelector<HTMLInputElement>("#rate")!;
  rateInput.value = localStorage.getItem("sandman-rate") ?? String(DEFAULT_HOURLY_RATE);
  let data: ProjectData[] = [];
  const rate = () => Number(rateInput.value) || DEFAULT_HOURLY_RATE;
  rateInput.addEventListener("change", () => {
    localStorage.setItem("sandman-rate", rateInput.value);
    render(client, data, rate());
  });
  document.querySelector("#signout")!.addEventListener("click", () => {
    sessionStorage.removeItem("sandman-token");
    location.reload();
  });
  for (;;) {
    try {
      data = await load(client);
      render(client, data, rate());
      document.body.dataset.loaded = "true";
    } catch (error) {
      if (error instanceof SandmanError && (error.status === 401 || error.status === 403)) {
        sessionStorage.removeItem("sandman-token");
        return askForToken(`The API refused the token: ${error.message}`);
      }
      document.querySelector("#updated")!.textContent = `could not refresh: ${(error as Error).message}`;
    }
    await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
  }
}

void start();
