// Serves dist/ on 127.0.0.1 for trying the app before the gateway serves it, with the CSP the
// gateway sends, and /deployment.json made from the flags (never written into dist/):
//
//   node scripts/serve.mjs --pin HEX [--api https://127.0.0.1:50053] [--port 8080]
//
// --api is the gateway's browser port when it is another origin than this server; it is
// then added to connect-src, and the gateway must list this origin in --web-origins.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    pin: { type: "string" },
    api: { type: "string" },
    port: { type: "string", default: "0" },
  },
});
if (values.pin === undefined || !/^[0-9a-f]{64}$/.test(values.pin)) {
  console.error("usage: node scripts/serve.mjs --pin <64 hex> [--api ORIGIN] [--port N]");
  process.exit(2);
}
const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const connect = values.api === undefined ? "'self'" : `'self' ${values.api}`;
const csp = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  `connect-src ${connect}`,
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");
const deployment = JSON.stringify({
  directoryPin: values.pin,
  version: "local",
  ...(values.api === undefined ? {} : { apiBaseUrl: values.api }),
});
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".webmanifest": "application/manifest+json",
};

const server = createServer(async (request, response) => {
  const headers = {
    "Content-Security-Policy": csp,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
  };
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  if (path === "/deployment.json") {
    response.writeHead(200, { ...headers, "Content-Type": TYPES[".json"] });
    response.end(deployment);
    return;
  }
  const file = normalize(join(dist, path === "/" ? "index.html" : path));
  if (!file.startsWith(dist)) {
    response.writeHead(404, headers).end();
    return;
  }
  try {
    const body = await readFile(file);
    response.writeHead(200, {
      ...headers,
      "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
    });
    response.end(body);
  } catch {
    response.writeHead(404, headers).end();
  }
});
server.listen(Number(values.port), "127.0.0.1", () => {
  const address = server.address();
  console.log(`serving dist/ on http://127.0.0.1:${String(address.port)}`);
});
