// @connectrpc/connect's types name the fetch API's HeadersInit, which TypeScript's DOM
// library declares globally and Node.js's types keep inside undici. The tests run on
// Node.js (no DOM), so the name is given here, as the argument Node's own Headers takes.
type HeadersInit = NonNullable<ConstructorParameters<typeof Headers>[0]>;
