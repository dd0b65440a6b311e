// Builds the app into dist/: one JavaScript bundle and one style sheet with content-hashed
// names, index.html naming them with Subresource Integrity (sha384), the web app manifest
// and its icon, and build.json (every file's SHA-256 and size, for publishing the digest).
// Fails when the bundle without libsodium passes 250 KB compressed (SPEC section 6).
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const BUDGET_GZIP = 250 * 1024;

const common = {
  entryPoints: [join(root, "src/main.ts")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome100", "firefox100", "safari15"],
  minify: true,
  write: false,
  legalComments: "eof",
  charset: "utf8",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
};

function digest(algorithm, data, encoding) {
  return createHash(algorithm).update(data).digest(encoding);
}

/** One copy of the protobuf runtime: the protocol library's imports resolve from the app. */
const oneProtobuf = {
  name: "one-protobuf",
  setup(build) {
    build.onResolve({ filter: /^@bufbuild\/protobuf(\/.*)?$/ }, async (args) => {
      if (args.pluginData === "one-protobuf") return undefined;
      return build.resolve(args.path, {
        kind: args.kind,
        resolveDir: root,
        pluginData: "one-protobuf",
      });
    });
  },
};

async function bundle(extra = {}) {
  const plugins = [oneProtobuf, ...(extra.plugins ?? [])];
  const result = await esbuild.build({
    ...common,
    outfile: join(dist, "app.js"),
    ...extra,
    plugins,
  });
  const js = result.outputFiles.find((file) => file.path.endsWith(".js"));
  if (js === undefined) throw new Error("esbuild wrote no JavaScript");
  return js.contents;
}

/** The same bundle with libsodium replaced by nothing: what the size budget counts. */
const withoutSodium = {
  plugins: [
    {
      name: "no-sodium",
      setup(build) {
        build.onResolve({ filter: /^libsodium-wrappers-sumo$/ }, () => ({
          path: "sodium-stub",
          namespace: "stub",
        }));
        build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({
          contents: "export default {};",
          loader: "js",
        }));
      },
    },
  ],
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const js = await bundle();
const css = (
  await esbuild.build({
    entryPoints: [join(root, "static/app.css")],
    bundle: true,
    minify: true,
    write: false,
    outfile: join(dist, "app.css"),
    logLevel: "warning",
  })
).outputFiles[0].contents;

const files = {};
function emit(name, data) {
  writeFileSync(join(dist, name), data);
  files[name] = { sha256: digest("sha256", data, "hex"), bytes: data.length };
}

const scriptName = `app-${digest("sha256", js, "hex").slice(0, 16)}.js`;
const styleName = `app-${digest("sha256", css, "hex").slice(0, 16)}.css`;
emit(scriptName, js);
emit(styleName, css);
const html = readFileSync(join(root, "static/index.html"), "utf8")
  .replace("{{SCRIPT}}", scriptName)
  .replace("{{SCRIPT_SRI}}", `sha384-${digest("sha384", js, "base64")}`)
  .replace("{{STYLE}}", styleName)
  .replace("{{STYLE_SRI}}", `sha384-${digest("sha384", css, "base64")}`);
emit("index.html", Buffer.from(html));
for (const name of ["manifest.webmanifest", "icon.svg"]) {
  copyFileSync(join(root, "static", name), join(dist, name));
  files[name] = {
    sha256: digest("sha256", readFileSync(join(dist, name)), "hex"),
    bytes: readFileSync(join(dist, name)).length,
  };
}

const gzip = gzipSync(js, { level: 9 }).length;
const gzipWithoutSodium = gzipSync(await bundle(withoutSodium), { level: 9 }).length;
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
writeFileSync(
  join(dist, "build.json"),
  JSON.stringify(
    { version, script: scriptName, style: styleName, files, gzip, gzipWithoutSodium },
    null,
    2,
  ) + "\n",
);
// The version the gateway records with the release in its transparency log.
writeFileSync(join(dist, "version.txt"), version + "\n");
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(
  `dist/${scriptName}: ${kb(js.length)}, ${kb(gzip)} gzip (${kb(gzipWithoutSodium)} without libsodium); dist/${styleName}: ${kb(css.length)}`,
);
if (gzipWithoutSodium > BUDGET_GZIP) {
  console.error(
    `the bundle without libsodium is ${kb(gzipWithoutSodium)} gzip, over ${kb(BUDGET_GZIP)}`,
  );
  process.exit(1);
}
