/**
 * Packed value rows: one Float64Array per row, NaN where a series had no value. A row names the
 * series it holds through a layout id (the host's list of series keys when it was written), so a
 * row costs 8 bytes per value and no names.
 */
export function packValues(values: ArrayLike<number>): Buffer {
  const a = values instanceof Float64Array ? values : Float64Array.from(values);
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export function unpackValues(b: Uint8Array): Float64Array {
  // Copy: database drivers may hand out views whose offset is not 8-byte aligned.
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float64Array(copy.buffer, 0, copy.byteLength / 8);
}

/** Minute and hour buckets, in ms since the epoch. */
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const floorTo = (ts: number, step: number): number => Math.floor(ts / step) * step;
