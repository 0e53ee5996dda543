// Type-checks every dashboard JSON against Grafana's dashboard schema.
//
// @grafana/schema publishes the dashboard schema (generated from Grafana's CUE kinds) as
// TypeScript types. Each dashboard is written into a .ts file as an object literal annotated
// `Dashboard`, and tsc checks it: missing required fields, wrong types, values outside an
// enum and unknown fields (excess property checks) are errors naming the dashboard and path.
//
// Usage: node check.mjs [DASHBOARD.json ...]   (default: ../*.json)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const files = process.argv.slice(2).length
  ? process.argv.slice(2).map((f) => path.resolve(f))
  : readdirSync(path.join(here, "..")).filter((f) => f.endsWith(".json")).map((f) => path.join(here, "..", f));

const work = mkdtempSync(path.join(here, ".check-"));
const sources = [];
for (const file of files) {
  const body = JSON.stringify(JSON.parse(readFileSync(file, "utf8")), null, 2);
  const ts = path.join(work, path.basename(file, ".json") + ".ts");
  writeFileSync(
    ts,
    `import type { Dashboard } from "@grafana/schema";\n` +
      `// Checked: ${file}\n` +
      `export const dashboard: Dashboard = ${body};\n`,
  );
  sources.push(ts);
}
const tsc = path.join(here, "node_modules", "typescript", "bin", "tsc");
try {
  execFileSync(
    process.execPath,
    [tsc, "--noEmit", "--strict", "--skipLibCheck", "--target", "es2022", "--module", "nodenext",
     "--moduleResolution", "nodenext", ...sources],
    { cwd: here, stdio: "inherit" },
  );
  console.log(`schema check: ${files.length} dashboards conform to @grafana/schema Dashboard`);
} catch {
  console.error("schema check: dashboards do not conform (errors above)");
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
