/**
 * Where the API is described: the OpenAPI document at the address the README gives, and every
 * WebSocket the hub serves (OpenAPI cannot describe their messages) in docs/protocol.md, which the
 * OpenAPI document points to.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApp, type TestApp } from './hub.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../../..');
let app: TestApp;
before(async () => {
  app = await startApp('sqlite');
});
after(async () => {
  await app.cleanup();
});

test('the README names /api/docs/json, where the hub serves its OpenAPI document, which points to docs/protocol.md', async () => {
  assert.match(readFileSync(resolve(ROOT, 'README.md'), 'utf8'), /\/api\/docs\/json/);
  const r = await app.call(undefined, 'GET', '/api/docs/json');
  assert.equal(r.status, 200);
  assert.match(r.json.openapi, /^3\./);
  assert.match(r.json.info.description, /docs\/protocol\.md/);
});

test('docs/protocol.md describes every WebSocket route the hub serves, and the follow streams', () => {
  const doc = readFileSync(resolve(ROOT, 'docs/protocol.md'), 'utf8');
  const sockets = app.hub.routes.filter((r) => r.websocket).map((r) => r.url);
  assert.ok(sockets.length >= 5, sockets.join(' '));
  for (const url of sockets) assert.ok(doc.includes(`\`GET ${url}`), `docs/protocol.md describes ${url}`);
  assert.match(doc, /docker\/containers\/C\/logs\?follow=true/);
  assert.match(doc, /systemd\/units\/U\/journal\?follow=true/);
});
