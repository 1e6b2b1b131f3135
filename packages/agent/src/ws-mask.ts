// WebSocket frame masking four bytes at a time: the two functions of the optional native
// `bufferutil` package that `ws` looks for, written in JavaScript. scripts/bundle-cli.mjs resolves
// `bufferutil` to this module in the bundled `tether` command.
//
// Why: a client masks every byte it sends (RFC 6455, 5.3), and without bufferutil ws does it one
// byte per loop turn. The agent runs without V8's optimising compiler, where that loop cost about
// 18 ns a byte here: the largest single function in a connected agent's profile, some 0.2 ms of
// CPU a second. XOR over 32-bit words costs a fifth of that. ws calls these only for 48 bytes and more.

// one 4-byte scratch word, read back in this machine's byte order
const wordBytes = new Uint8Array(4);
const word = new Int32Array(wordBytes.buffer);

/** The mask's four bytes as one 32-bit word in this machine's byte order, starting at mask[phase]. */
function maskWord(mask: Uint8Array, phase: number): number {
  for (let i = 0; i < 4; i++) wordBytes[i] = mask[(phase + i) & 3]!;
  return word[0]!;
}

/**
 * output[offset + i] = source[i] ^ mask[i & 3] for i < length (ws's `mask`). source and output may
 * be the same bytes (masking in place, as ws does for text frames).
 */
export function mask(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void {
  let i = 0;
  // Bytes one at a time until the source is 4-byte aligned; words from there when the output is too.
  const head = (4 - (source.byteOffset & 3)) & 3;
  for (; i < head && i < length; i++) output[offset + i] = source[i]! ^ mask[i & 3]!;
  const words = (length - i) >>> 2;
  if (words > 0 && ((output.byteOffset + offset + i) & 3) === 0) {
    const m = maskWord(mask, i & 3);
    const src = new Int32Array(source.buffer, source.byteOffset + i, words);
    const out = new Int32Array(output.buffer, output.byteOffset + offset + i, words);
    for (let w = 0; w < words; w++) out[w] = src[w]! ^ m;
    i += words << 2;
  }
  for (; i < length; i++) output[offset + i] = source[i]! ^ mask[i & 3]!;
}

/** buffer[i] ^= mask[i & 3] for every byte (ws's `unmask`). */
export function unmask(buffer: Uint8Array, m: Uint8Array): void {
  mask(buffer, m, buffer, 0, buffer.length);
}
