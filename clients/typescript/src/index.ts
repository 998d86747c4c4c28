export * from "./client.js";
export * from "./heartbeat.js";
export * from "./usage.js";
export * from "./watcher.js";
export type { components, paths } from "./schema.js";
