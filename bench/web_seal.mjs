// Seal a 1 KiB text and a 2 MiB photo with the TypeScript protocol library
// (clients/web/protocol, built with `make web-build`) and print the time per seal.
//
//   node bench/web_seal.mjs [--json] [--quick]
//
// `python -m bench web` (make web-bench) runs this script and the Python SDK's
// seal_envelope on the same sizes in one run, and prints both side by side.
import { performance } from "node:perf_hooks";

const library = new URL("../clients/web/protocol/dist/src/index.js", import.meta.url);
const sp = await import(library.href).catch((cause) => {
  console.error("the web library is not built: run `make web-build` first");
  throw cause;
});
await sp.ready();

const json = process.argv.includes("--json");
const quick = process.argv.includes("--quick");
const NOW = BigInt(Date.now());
const HOUR_S = 3600n;

function record(keys, purpose, subject) {
  // Sealing reads a recipient's id, purpose, validity and encryption key; a verified
  // record's other fields do not affect its cost.
  const now = NOW / 1000n;
  return new sp.VerifiedKey(
    sp.randomBytes(32),
    purpose,
    subject,
    keys.encryptionKey,
    keys.signingKey,
    now - HOUR_S,
    now + HOUR_S,
    sp.randomBytes(32),
  );
}

const sender = sp.PrivateKeys.generate();
const senderRecord = record(sender, sp.KeyPurpose.RELATIVE_DEVICE, "bench-account");
const mailbox = record(sp.PrivateKeys.generate(), sp.KeyPurpose.MAILBOX, "bench-detainee");

const cases = {
  "1 KiB text": [new sp.Part(sp.TEXT_PLAIN, sp.randomBytes(1024))],
  "2 MiB photo": [
    sp.textPart("Hier is de foto van zondag."),
    new sp.Part("image/jpeg", sp.randomBytes(2 * 1024 * 1024), "foto.jpg"),
  ],
};

function sealAndSerialise(parts) {
  const envelope = sp.sealEnvelope(parts, {
    senderKeys: sender,
    senderKeyId: senderRecord.id,
    recipients: [mailbox],
    nowMs: NOW,
  });
  return sp.serializeEnvelope(envelope);
}

const results = {};
for (const [label, parts] of Object.entries(cases)) {
  const runs = quick ? 5 : label === "1 KiB text" ? 200 : 20;
  sealAndSerialise(parts); // warm-up: compiles the code paths and grows the WebAssembly heap
  const times = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    sealAndSerialise(parts);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  results[label] = { median_ms: times[Math.floor(times.length / 2)], runs };
}

if (json) {
  console.log(JSON.stringify({ node: process.version, results }));
} else {
  for (const [label, { median_ms: ms, runs }] of Object.entries(results)) {
    console.log(`seal + serialise ${label}: ${ms.toFixed(3)} ms (median of ${runs}, Node.js ${process.version})`);
  }
}
