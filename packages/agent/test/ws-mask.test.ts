import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mask, unmask } from '../src/ws-mask.js';

// ws's own loop, the reference
function byteMask(source: Uint8Array, m: Uint8Array, output: Uint8Array, offset: number, length: number): void {
  for (let i = 0; i < length; i++) output[offset + i] = source[i]! ^ m[i & 3]!;
}

test('mask gives the byte-wise result for every length and alignment of source and output', () => {
  const backing = randomBytes(600);
  for (let length = 0; length <= 70; length++) {
    for (let srcAt = 0; srcAt < 4; srcAt++) {
      for (let outAt = 0; outAt < 4; outAt++) {
        for (const offset of [0, 6, 8, 14]) {
          const m = randomBytes(4);
          // views into shared ArrayBuffers at every alignment, as pooled Buffers are
          const source = new Uint8Array(backing.buffer, backing.byteOffset + srcAt, length);
          const want = new Uint8Array(new ArrayBuffer(offset + length + 8), outAt, offset + length);
          const got = new Uint8Array(new ArrayBuffer(offset + length + 8), outAt, offset + length);
          want.fill(0xaa);
          got.fill(0xaa);
          byteMask(source, m, want, offset, length);
          mask(source, m, got, offset, length);
          assert.deepEqual(got, want, `length ${length}, source at ${srcAt}, output at ${outAt}, offset ${offset}`);
        }
      }
    }
  }
});

test('mask in place (ws masks text frames in their own buffer), and a large frame', () => {
  for (const length of [48, 125, 126, 4093, 70_001]) {
    for (const at of [0, 1, 2, 3]) {
      const m = randomBytes(4);
      const data = randomBytes(length + 4).subarray(at, at + length);
      const want = Buffer.from(data);
      byteMask(want, m, want, 0, length);
      mask(data, m, data, 0, length);
      assert.ok(Buffer.from(data).equals(want), `length ${length} at ${at}`);
    }
  }
});

test('unmask undoes mask; bytes outside the range are untouched', () => {
  const m = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const plain = randomBytes(1001);
  const frame = Buffer.alloc(1001 + 7, 0xee);
  mask(plain, m, frame, 6, plain.length);
  assert.equal(frame[5], 0xee);
  assert.equal(frame[6 + 1001], 0xee);
  assert.ok(!frame.subarray(6, 6 + 1001).equals(plain));
  const body = frame.subarray(6, 6 + 1001);
  unmask(body, m);
  assert.ok(body.equals(plain));
});
