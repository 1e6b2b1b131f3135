/** Protocol version spoken by this build. A hub refuses agents whose major version it does not speak. */
export const PROTOCOL_VERSION = 1;

/** Hard ceiling on one WebSocket frame between hub and agent (both ends enforce it). */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** Bounds used by the schemas, named so that every boundary uses the same numbers. */
export const LIMITS = {
  id: 64,
  hostname: 253,
  shortText: 256,
  longText: 4096,
  listItems: 256,
  labels: 64,
  labelKey: 63,
  labelValue: 63,
} as const;
