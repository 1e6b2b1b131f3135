#!/usr/bin/env node
// Bundles the `tether` command (packages/cli/dist/src/main.js, compiled by tsc) into
// packages/cli/dist/bundle/: one entry file plus chunks loaded on demand.
//
// Why: the agent runs on every host, and unbundled it loads 760 ES modules (683 of them typebox's).
// Each module costs V8 a record, a namespace, its source text and its scope data: about 11 MB of
// the agent's 71 MB resident memory here, and most of its start-up time. The bundle holds one
// module per chunk, with what is not used left out.
//
// - `@tether/hub` stays external: it runs unbundled from its own package, with its native database
//   drivers and the console's files. The CLI imports it only for `tether hub` and `tether start`.
// - The agent (`import('@tether/agent')`) becomes its own chunk, so `tether hub` does not load it.
// - Native and optional packages stay external (node-pty, ws's utf-8-validate), but for ws's
//   optional `bufferutil`: it resolves to the agent's ws-mask.js, frame masking over 32-bit words in
//   JavaScript (ws masks byte by byte otherwise, the costliest function of a connected agent).
// - Non-ASCII characters are escaped: V8 keeps a script's source for the life of the process, and
//   one character above U+00FF makes it two bytes per character. Comments other than licences go.
//   Measured on Node 24.22.3 (heap snapshot of a connected idle agent): the agent chunk, 644 KB
//   (typebox 324, the agent 229, the protocol 49, croner 40), lies whole in the heap's large-object
//   space for the life of the process, and its 2,565 functions' metadata and bytecode take 0.6 MB.
// - No `import … from 'node:http'` in the bundle (checked below): on Node 24 an ES import of
//   node:http reads all its exports, among them a lazy WebSocket getter that loads undici (770 KB
//   of source and what it sets up): 3.3 MiB of an idle agent's resident memory, for nothing it
//   uses. The code takes it with process.getBuiltinModule('node:http') instead.
import { chmodSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'packages/cli/dist/bundle');
rmSync(outDir, { recursive: true, force: true });

await build({
  input: { tether: join(root, 'packages/cli/dist/src/main.js') },
  platform: 'node',
  external: [/^@tether\/hub(\/|$)/, /^node-pty(\/|$)/, 'utf-8-validate', /^node:/],
  resolve: { alias: { bufferutil: join(root, 'packages/agent/dist/src/ws-mask.js') } },
  logLevel: 'warn',
  output: {
    dir: outDir,
    format: 'esm',
    entryFileNames: '[name].mjs',
    chunkFileNames: '[name]-[hash].mjs',
    charset: 'ascii',
    comments: { legal: true, annotation: false, jsdoc: false },
    sourcemap: true,
  },
});
chmodSync(join(outDir, 'tether.mjs'), 0o755);
for (const f of readdirSync(outDir).filter((n) => n.endsWith('.mjs'))) {
  if (/from\s*"node:http"|import\(\s*"node:http"\s*\)/.test(readFileSync(join(outDir, f), 'utf8'))) {
    console.error(`bundle-cli: ${f} imports node:http as an ES module, which loads undici into every process that runs it (Node 24): use process.getBuiltinModule('node:http')`);
    process.exit(1);
  }
}
