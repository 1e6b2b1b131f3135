/**
 * Writes docs/access.md from a hub's route declarations: `node packages/hub/dist/src/tools/access-doc.js`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createHub } from '../server.js';
import { loadHubConfig } from '../config.js';
import { renderAccessDoc } from '../access-doc.js';

const dir = mkdtempSync(join(tmpdir(), 'tether-doc-'));
const hub = await createHub(loadHubConfig({ listen: '127.0.0.1:0', data: dir }, { TETHER_ADMIN_PASSWORD: 'doc-generator-only' }), { log: pino({ level: 'silent' }) });
const out = resolve(fileURLToPath(import.meta.url), '../../../../../../docs/access.md');
writeFileSync(out, renderAccessDoc(hub.routes));
await hub.stop();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(`wrote ${out}\n`);
