// Regenerates src/gen from proto/ with buf and protoc-gen-es (versions pinned in
// package.json), or with --check regenerates into a temporary folder and fails when
// the committed src/gen differs from what the generator writes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = resolve(fileURLToPath(import.meta.url), "..", "..");
const protoRoot = resolve(here, "..", "..", "..", "proto");
const committed = join(here, "src", "gen");
const buf = join(here, "node_modules", ".bin", "buf");

function generate(outputBase) {
  execFileSync(
    buf,
    ["generate", protoRoot, "--template", join(here, "buf.gen.yaml"), "--output", outputBase],
    {
      cwd: here,
      stdio: "inherit",
      env: {
        ...process.env,
        PATH: `${join(here, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
      },
    },
  );
}

function files(folder) {
  const out = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.set(relative(folder, path), readFileSync(path));
    }
  };
  walk(folder);
  return out;
}

if (process.argv.includes("--check")) {
  const scratch = mkdtempSync(join(tmpdir(), "sealpost-gen-"));
  try {
    generate(scratch);
    const fresh = files(join(scratch, "src", "gen"));
    const current = files(committed);
    const problems = [];
    for (const [name, data] of fresh) {
      const have = current.get(name);
      if (have === undefined) problems.push(`missing: src/gen/${name}`);
      else if (!have.equals(data)) problems.push(`differs: src/gen/${name}`);
    }
    for (const name of current.keys()) {
      if (!fresh.has(name)) problems.push(`not generated: src/gen/${name}`);
    }
    if (problems.length > 0) {
      console.error(problems.join("\n"));
      console.error("src/gen is stale: run `npm run generate` and review the diff");
      process.exit(1);
    }
    console.log(`src/gen matches proto/ (${fresh.size} files)`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} else {
  rmSync(committed, { recursive: true, force: true });
  generate(here);
  console.log(`regenerated src/gen from ${relative(here, protoRoot)}`);
}
