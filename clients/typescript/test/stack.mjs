// Starts the real local stack (`sandman-local dev`: DynamoDB Local tables from template.yaml, the
// E2B emulator, every function) on free ports with a table of its own, and reads the API URL and
// the development token it prints. Needs AWS_ENDPOINT_URL_DYNAMODB (make test exports it).
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";

const defaultBin = fileURLToPath(new URL("../../../target/debug/sandman-local", import.meta.url));

export async function startStack(env = {}) {
  if (!process.env.AWS_ENDPOINT_URL_DYNAMODB) throw new Error("set AWS_ENDPOINT_URL_DYNAMODB to a DynamoDB Local");
  const child = spawn(process.env.SANDMAN_LOCAL_BIN ?? defaultBin, ["dev"], {
    env: {
      ...process.env,
      SANDMAN_API_PORT: "0",
      SANDMAN_WEBHOOK_PORT: "0",
      E2B_EMULATOR_PORT: "0",
      SANDMAN_RECEIVER_PORT: "0",
      SANDMAN_TABLE: `sandman-ts-${randomUUID().slice(0, 8)}`,
      RUST_LOG: process.env.RUST_LOG ?? "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const printed = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stack did not start in 60 s:\n${stderr}`)), 60_000);
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const api = stdout.match(/API\s+(http:\/\/\S+)\/v1/);
      const token = stdout.match(/export SANDMAN_TOKEN=(\S+)/);
      const dashboard = stdout.match(/dashboard\s+(http:\/\/\S+)/);
      if (api && token) {
        clearTimeout(timer);
        resolve({ baseUrl: api[1], token: token[1], dashboardUrl: dashboard?.[1] });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the stack exited (${code}):\n${stderr}`));
    });
  });
  return {
    ...printed,
    log: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
