#!/usr/bin/env node
// Runs every compiled test file with node's built-in runner.
// Node 20's --test does not glob, so the files are found here. Tests run one file at a time:
// many of them start real hub and agent processes, and CI has two cores.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const roots = [
  ...readdirSync(join(root, 'packages')).map((p) => join(root, 'packages', p, 'dist', 'test')),
  join(root, 'test', 'dist'),
];
const filter = process.argv.slice(2);

function walk(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files = roots.flatMap((d) => walk(d, [])).sort();
if (filter.length) files = files.filter((f) => filter.some((x) => relative(root, f).includes(x)));
if (files.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
// Prepare the machine (packages, PostgreSQL, fleet testbed) when we may: idempotent and quick when ready.
if (process.env.TETHER_TEST_PREPARE !== 'off' && process.getuid?.() === 0) {
  const prep = spawnSync('bash', [join(root, 'scripts/prepare-tests.sh')], { stdio: 'inherit', cwd: root });
  if (prep.status !== 0) {
    console.error('run-tests: preparing the machine failed (scripts/prepare-tests.sh); set TETHER_TEST_PREPARE=off to run anyway');
    process.exit(prep.status ?? 1);
  }
} else if (process.env.TETHER_TEST_PREPARE !== 'off') {
  console.error('run-tests: not root, so the machine is not prepared; the fleet tests need root (see test/fleet/README.md)');
}
const args = ['--test', '--test-concurrency=1', `--test-reporter=${process.env.TEST_REPORTER ?? 'spec'}`, ...files];
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
