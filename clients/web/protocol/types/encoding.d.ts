// The WHATWG Encoding API, which every browser and Node.js (since 11) provide as globals.
// Declared here so that the library compiles with neither the DOM nor the Node.js types:
// it depends on no other platform API.

interface TextDecoderOptions {
  fatal?: boolean;
  ignoreBOM?: boolean;
}

declare class TextEncoder {
  encode(input?: string): Uint8Array;
}

declare class TextDecoder {
  constructor(label?: string, options?: TextDecoderOptions);
  decode(input?: Uint8Array): string;
}
