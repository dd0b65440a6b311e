/**
 * The deployment's description, served next to index.html as /deployment.json by the same
 * origin: the directory key to pin (64 hex digits) and the version. The app fetches it at
 * start and never takes a pin from anywhere else (a link could otherwise plant one).
 * `apiBaseUrl` exists for trying the app against a gateway on another local port; a
 * production deployment leaves it out, and the API is then the page's own origin.
 */

export interface Deployment {
  readonly directoryPin: Uint8Array;
  readonly version: string;
  readonly apiBaseUrl: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Read and check deployment.json's text; throws a plain Error naming what is wrong. */
export function parseDeployment(text: string, origin: string): Deployment {
  const value = JSON.parse(text) as unknown;
  if (typeof value !== "object" || value === null)
    throw new Error("deployment.json: not an object");
  const record = value as Record<string, unknown>;
  const pin = record["directoryPin"];
  if (typeof pin !== "string" || !HEX64.test(pin)) {
    throw new Error("deployment.json: directoryPin must be 64 lower-case hex digits");
  }
  const version = typeof record["version"] === "string" ? record["version"] : "";
  const api = record["apiBaseUrl"];
  let apiBaseUrl = origin;
  if (api !== undefined) {
    if (typeof api !== "string" || !/^https?:\/\/[^/]+$/.test(api)) {
      throw new Error("deployment.json: apiBaseUrl must be an origin such as https://host:port");
    }
    apiBaseUrl = api;
  }
  const directoryPin = new Uint8Array(32);
  for (let i = 0; i < 32; i++) directoryPin[i] = parseInt(pin.slice(2 * i, 2 * i + 2), 16);
  return { directoryPin, version, apiBaseUrl };
}
