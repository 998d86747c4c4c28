// Bundles the dashboard (dashboard/main.ts with the client) into the API's static assets,
// functions/api/src/dashboard/, which the API compiles in with include_str!. The output is
// committed so that `cargo build` alone builds a complete API; --check fails when it is stale.
import { build } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = here("../../../functions/api/src/dashboard/");
const check = process.argv.includes("--check");

const result = await build({
  entryPoints: [here("../dashboard/main.ts")],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  legalComments: "none",
  write: false,
});
const assets = {
  "dashboard.js": result.outputFiles[0].text,
  "index.html": readFileSync(here("../dashboard/index.html"), "utf8"),
};
let stale = [];
for (const [name, text] of Object.entries(assets)) {
  if (check) {
    if (readFileSync(out + name, "utf8") !== text) stale.push(name);
  } else {
    writeFileSync(out + name, text);
    console.log(`wrote functions/api/src/dashboard/${name} (${text.length} bytes)`);
  }
}
if (stale.length) {
  console.error(`functions/api/src/dashboard/{${stale.join(",")}} are stale: run \`npm run build:dashboard\` in clients/typescript`);
  process.exit(1);
}
if (check) console.log("the dashboard assets match their sources");
