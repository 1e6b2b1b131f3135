/**
 * `@tether/protocol/lite`: the parts without the schema library (labels, config, limits, tar,
 * constants). Loading every message schema costs ~230 ms at start; the CLI needs none of them.
 */
export * from './constants.js';
export * from './limits.js';
export * from './labels.js';
export * from './config.js';
export * from './tar.js';
