// The installed agent on the runtime it ships, against that runtime's own floor — issue 22's target:
// steady RSS ≤ the bare runtime idle with the same WebSocket library loaded + 4 MB, and connected
// and idle ≤ 2 ms CPU per second.
//
//   npm run bench:agent-runtime        (writes bench/results/agent-runtime.md and .json)
//
// Side by side for SECONDS: (1) the x64 artifact from dist/artifacts, unpacked, started by its own
// launcher (bin/tether-agent: the runtime, its V8 flags, the bundle), enrolled to a real hub on
// loopback with its default intervals and heartbeat; (2) the same runtime idle with ws loaded, with
// the launcher's flags and (3) without them. RSS: median of the last 30 samples (one a second);
// CPU: utime + stime over the last 60 s.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { REPO, TestHub } from '@tether/testkit';
import { RESULTS, cpuSec, machine, rssMiB } from './lib/util.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 150);
const CPU_FROM = SECONDS - 60;
const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const name = `tether-agent-${version}-linux-x64`;
const tarball = join(REPO, 'dist/artifacts', `${name}.tar.gz`);
const work = mkdtempSync(join(tmpdir(), 'tether-bench-runtime-'));
execFileSync('tar', ['-xzf', tarball, '-C', work]);
const home = join(work, name);
const node = join(home, 'runtime/node');
const launcher = readFileSync(join(home, 'bin/tether-agent'), 'utf8');
const flags = /exec "\$root\/runtime\/node" ([^$]*?) \$flags/.exec(launcher)?.[1]?.trim().split(/\s+/) ?? [];
const runtime = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();

const hub = await TestHub.start({ heartbeat: '10s' });
const token = await hub.enrollToken();
const procs: { label: string; child: ChildProcess }[] = [];
const started = (label: string, child: ChildProcess) => procs.push({ label, child });
const agent = spawn(join(home, 'bin/tether-agent'), ['--hub', hub.url, '--state', join(work, 'state')], { env: { ...process.env, TETHER_TOKEN: token, TETHER_LOG_LEVEL: 'warn' }, stdio: 'ignore' });
started(`the installed agent (${runtime}, launcher flags: ${flags.join(' ')}), connected, default intervals`, agent);
const wsIdle = `await import(${JSON.stringify(join(REPO, 'node_modules/ws/wrapper.mjs'))}); setInterval(() => {}, 1 << 30);`;
started(`bare ${runtime} + ws, idle, the launcher's flags`, spawn(node, [...flags, '--input-type=module', '-e', wsIdle], { stdio: 'ignore' }));
started(`bare ${runtime} + ws, idle, no flags`, spawn(node, ['--input-type=module', '-e', wsIdle], { stdio: 'ignore' }));

const samples = new Map<string, number[]>(procs.map((p) => [p.label, []]));
const cpuAt = new Map<string, number>();
for (let s = 1; s <= SECONDS; s++) {
  await new Promise((r) => setTimeout(r, 1000));
  for (const p of procs) {
    samples.get(p.label)!.push(rssMiB(p.child.pid!));
    if (s === CPU_FROM) cpuAt.set(p.label, cpuSec(p.child.pid!));
  }
}
const online = (await hub.hosts('?status=online')).hosts.length === 1;
const rows = procs.map((p) => {
  const last = samples.get(p.label)!.slice(-30).sort((a, b) => a - b);
  const median = last[last.length >> 1]!;
  const cpuMsPerSec = ((cpuSec(p.child.pid!) - cpuAt.get(p.label)!) * 1000) / (SECONDS - CPU_FROM);
  return { label: p.label, rssMiB: median, cpuMsPerSec: Math.round(cpuMsPerSec * 100) / 100 };
});
for (const p of procs) p.child.kill('SIGTERM');
await hub.cleanup();
rmSync(work, { recursive: true, force: true });

const [a, floor] = rows as [(typeof rows)[0], (typeof rows)[0]];
const rssOk = a.rssMiB <= floor.rssMiB + 4;
const cpuOk = a.cpuMsPerSec <= 2;
const md = [
  `## ${new Date().toISOString().slice(0, 10)} — ${machine()}`,
  '',
  `\`npm run bench:agent-runtime\`, ${SECONDS} s side by side; the agent ${online ? 'was online' : 'was NOT online'} at the end.`,
  '',
  '| process | RSS (MiB, median of the last 30 s) | CPU (ms/s, last 60 s) |',
  '|---|---|---|',
  ...rows.map((r) => `| ${r.label} | ${r.rssMiB} | ${r.cpuMsPerSec} |`),
  '',
  `- RSS target (≤ the bare runtime + ws with the same flags + 4 MiB = ${Math.round((floor.rssMiB + 4) * 10) / 10}): **${rssOk ? 'met' : `missed by ${Math.round((a.rssMiB - floor.rssMiB - 4) * 10) / 10} MiB`}**.`,
  `- Idle CPU target (≤ 2 ms/s): **${cpuOk ? 'met' : `missed: ${a.cpuMsPerSec} ms/s`}**.`,
  '',
].join('\n');
writeFileSync(join(RESULTS, 'agent-runtime.json'), JSON.stringify({ date: new Date().toISOString(), machine: machine(), seconds: SECONDS, online, rows }, null, 2) + '\n');
appendFileSync(join(RESULTS, 'agent-runtime.md'), md + '\n');
process.stdout.write(md);
