// `useSandbox(projectId)`: the sandbox's live status, its actions, and (optionally) the activity
// heartbeat, for React. A separate entry point (`@sandman-sh/client/react`): nothing else in the
// package imports React.
import { createContext, createElement, useEffect, useMemo, useContext, useSyncExternalStore } from "react";
import type { ReactNode } from "react";
import type { OpenResult, PauseResult, Sandman, SandboxStatus } from "./client.js";
import { startHeartbeat } from "./heartbeat.js";
import { SandboxWatcher } from "./watcher.js";

const ClientContext = createContext<Sandman | null>(null);

export function SandmanProvider(props: { client: Sandman; children?: ReactNode }) {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

export interface UseSandboxOptions {
  /** Default: the client from `SandmanProvider`. */
  client?: Sandman;
  /** Open the sandbox when the component mounts. Default true. */
  open?: boolean;
  /** Send heartbeats on user activity while mounted. Default true in a browser. */
  heartbeat?: boolean;
}

export interface UseSandbox {
  status: SandboxStatus | null;
  error: unknown;
  open(): Promise<OpenResult>;
  pause(): Promise<PauseResult>;
  resume(): Promise<OpenResult>;
}

export function useSandbox(projectId: string, options: UseSandboxOptions = {}): UseSandbox {
  const fromContext = useContext(ClientContext);
  const client = options.client ?? fromContext;
  if (!client) throw new Error("useSandbox needs a SandmanProvider or options.client");
  const watcher = useMemo(() => new SandboxWatcher(client, projectId), [client, projectId]);
  const view = useSyncExternalStore(
    (listener) => watcher.subscribe(listener),
    () => watcher.current,
    () => watcher.current,
  );
  const wantOpen = options.open ?? true;
  const wantHeartbeat = options.heartbeat ?? typeof document !== "undefined";

  useEffect(() => {
    if (!wantOpen) return;
    client.open(projectId).then(
      (opened) => watcher.set(opened.sandbox),
      (error) => watcher.fail(error),
    );
  }, [client, projectId, watcher, wantOpen]);

  useEffect(() => {
    if (!wantHeartbeat) return;
    const heartbeat = startHeartbeat(client, projectId, {
      onWake: (result) => result.opened && watcher.set(result.opened.sandbox),
    });
    return () => heartbeat.stop();
  }, [client, projectId, watcher, wantHeartbeat]);

  return useMemo(
    () => ({
      ...view,
      open: async () => {
        const opened = await client.open(projectId);
        watcher.set(opened.sandbox);
        return opened;
      },
      pause: async () => {
        const paused = await client.pause(projectId);
        watcher.set(paused.sandbox);
        return paused;
      },
      resume: async () => {
        const resumed = await client.resume(projectId);
        watcher.set(resumed.sandbox);
        return resumed;
      },
    }),
    [view, client, projectId, watcher],
  );
}
