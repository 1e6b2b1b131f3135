/**
 * Files on hosts, end to end: a real hub, real agents with their own file roots, the `tether`
 * CLI. Contents stream over signed HTTP transfers; paths are confined to the agent's roots.
 * Files do not touch the database, so one engine (SQLite) is enough here.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { PROTOCOL_VERSION, authPayload, decodeFrame, encodeFrame, newNonce, signPayload, type BodyOf, type FileResponseBody, type Message } from '@tether/protocol';
import { TestAgent, TestHub, cli, simFacts, newSimIdentity, runCli, simConnect, tempDir, waitFor } from '@tether/testkit';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const enc = encodeURIComponent;

function peakRssKb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Runs the CLI to completion and samples its peak RSS while it runs. */
async function cliWithPeak(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string; peakKb: number }> {
  const p = runCli(args, { env, name: 'cli' });
  let peakKb = 0;
  const t = setInterval(() => {
    try {
      peakKb = Math.max(peakKb, peakRssKb(p.pid));
    } catch {
      /* exited */
    }
  }, 100);
  const code = await p.exited;
  clearInterval(t);
  return { code, output: p.output(), peakKb };
}

/** A file of `mib` MiB on disk, written block by block (every block different), and its sha256. */
function bigFile(path: string, mib: number): string {
  const h = createHash('sha256');
  const block = randomBytes(1024 * 1024);
  const fd = openSync(path, 'w');
  try {
    for (let i = 0; i < mib; i++) {
      block.writeUInt32BE(i, 0);
      h.update(block);
      writeSync(fd, block);
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

describe('files on hosts', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let metricsOnly: TestAgent;
  let id: string;
  let lockedId: string;
  let base: string;
  let root: string;
  let outside: string;
  let cliEnv: NodeJS.ProcessEnv;

  before(async () => {
    base = tempDir('tether-files-');
    root = join(base, 'root');
    outside = join(base, 'outside');
    mkdirSync(root);
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'not for the hub\n');
    symlinkSync(outside, join(root, 'to-outside'));
    symlinkSync(join(outside, 'secret'), join(root, 'secret-link'));
    hub = await TestHub.start();
    agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'files'], fileRoots: [root] });
    // Roots configured but no `files` capability: the lock is the capability list.
    metricsOnly = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics'], fileRoots: [root] });
    id = await agent.waitConnected();
    lockedId = await metricsOnly.waitConnected();
    cliEnv = { TETHER_HUB: hub.url, TETHER_SESSION: hub.token, TETHER_CLI_CONFIG: join(base, 'cli.json') };
  });
  after(async () => {
    await agent.stop();
    await metricsOnly.stop();
    agent.cleanup();
    metricsOnly.cleanup();
    await hub.cleanup();
    rmSync(base, { recursive: true, force: true });
  });

  const files = (host: string, sub: string, q: Record<string, string>) => `/api/v1/hosts/${host}/files${sub}?${new URLSearchParams(q)}`;
  const put = (host: string, q: Record<string, string>, body: Buffer | string) =>
    fetch(hub.url + files(host, '/content', q), { method: 'PUT', headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/octet-stream' }, body });
  const leftovers = (dir: string) => readdirSync(dir).filter((n) => n.includes('.tether-'));

  test('mkdir, ls (sorted, with mode, owner, size, link targets), stat and delete inside the roots', async () => {
    const made = await hub.api('POST', `/api/v1/hosts/${id}/files/mkdir`, { path: join(root, 'app/conf'), recursive: true, mode: '0750' });
    assert.equal(made.type, 'dir');
    assert.equal(made.mode, 0o750);
    assert.equal(statSync(join(root, 'app/conf')).mode & 0o777, 0o750);
    writeFileSync(join(root, 'app/b.txt'), 'bee');
    writeFileSync(join(root, 'app/a.txt'), 'a');
    symlinkSync('a.txt', join(root, 'app/c-link'));

    const ls = await hub.api('GET', files(id, '', { path: join(root, 'app') }));
    assert.deepEqual(ls.entries.map((e: { name: string }) => e.name), ['a.txt', 'b.txt', 'c-link', 'conf']);
    assert.equal(ls.truncated, false);
    const b = ls.entries[1];
    assert.deepEqual([b.type, b.size, b.owner], ['file', 3, process.getuid?.() === 0 ? 'root' : b.owner]);
    assert.equal(ls.entries[2].type, 'link');
    assert.equal(ls.entries[2].target, 'a.txt');
    assert.equal(ls.entries[3].type, 'dir');

    const st = await hub.api('GET', files(id, '/stat', { path: join(root, 'app/b.txt') }));
    assert.equal(st.size, 3);
    assert.equal((await hub.raw('GET', files(id, '/stat', { path: join(root, 'app/nope') }))).status, 404);
    assert.equal((await hub.raw('POST', `/api/v1/hosts/${id}/files/mkdir`, { path: join(root, 'app/conf') })).status, 409);
    assert.equal((await hub.raw('POST', `/api/v1/hosts/${id}/files/mkdir`, { path: join(root, 'x/y') })).status, 404, 'no parents without recursive');

    const notEmpty = await hub.raw('DELETE', files(id, '', { path: join(root, 'app') }));
    assert.equal(notEmpty.status, 409);
    assert.equal((await hub.raw('DELETE', files(id, '', { path: join(root, 'app/b.txt') }))).status, 200);
    assert.equal(existsSync(join(root, 'app/b.txt')), false);
    assert.equal((await hub.raw('DELETE', files(id, '', { path: join(root, 'app'), recursive: 'true' }))).status, 200);
    assert.equal(existsSync(join(root, 'app')), false);
    const rootItself = await hub.raw('DELETE', files(id, '', { path: root, recursive: 'true' }));
    assert.equal(rootItself.status, 403);
    assert.equal(existsSync(root), true);
  });

  test('a file much larger than the memory allowed goes up and comes back through the CLI with one sha256, and no process holds it', async () => {
    const mib = Number(process.env.TETHER_TEST_BIG_MIB ?? 512);
    const src = join(base, 'big.bin');
    const want = bigFile(src, mib);
    const before = { hub: peakRssKb(hub.proc.pid) >> 10, agent: peakRssKb(agent.proc.pid) >> 10 };
    const up = await cliWithPeak(['cp', '--json', src, `${id}:${root}/big.bin`, '--mode', '0640'], cliEnv);
    assert.equal(up.code, 0, up.output);
    const upOut = JSON.parse(up.output.slice(up.output.indexOf('{'))) as { sha256: string; bytes: number; seconds: number };
    assert.equal(upOut.sha256, want);
    assert.equal(upOut.bytes, mib * 1024 * 1024);
    assert.equal(statSync(join(root, 'big.bin')).mode & 0o777, 0o640);
    assert.deepEqual(leftovers(root), []);

    const back = join(base, 'back.bin');
    const down = await cliWithPeak(['cp', '--json', `${id}:${root}/big.bin`, back], cliEnv);
    assert.equal(down.code, 0, down.output);
    const downOut = JSON.parse(down.output.slice(down.output.indexOf('{'))) as { sha256: string; seconds: number };
    assert.equal(downOut.sha256, want);
    // Checked independently of every party's own hashing: the bytes on disk.
    const h = createHash('sha256');
    const fd = openSync(back, 'r');
    const buf = Buffer.alloc(4 * 1024 * 1024);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    closeSync(fd);
    assert.equal(h.digest('hex'), want);

    const hubKb = peakRssKb(hub.proc.pid);
    const agentKb = peakRssKb(agent.proc.pid);
    const limitKb = 200 * 1024;
    const figures = { mib, peakBeforeMiB: before, upSec: upOut.seconds.toFixed(1), downSec: downOut.seconds.toFixed(1), peakMiB: { hub: hubKb >> 10, agent: agentKb >> 10, cliUp: up.peakKb >> 10, cliDown: down.peakKb >> 10 } };
    process.stderr.write(`# files: ${JSON.stringify(figures)}\n`);
    for (const [who, kb] of [['hub', hubKb], ['agent', agentKb], ['cli up', up.peakKb], ['cli down', down.peakKb]] as const) {
      assert.ok(kb < limitKb, `${who} peak RSS ${kb >> 10} MiB ≥ 200 MiB while moving ${mib} MiB`);
    }
    // What the copy itself added to the long-running processes' peak, whatever they needed before it.
    assert.ok((hubKb >> 10) - before.hub < 100, `hub peak grew ${(hubKb >> 10) - before.hub} MiB during the copy`);
    assert.ok((agentKb >> 10) - before.agent < 100, `agent peak grew ${(agentKb >> 10) - before.agent} MiB during the copy`);
    rmSync(back);
    rmSync(src);
    rmSync(join(root, 'big.bin'));
  });

  test('an upload whose sha256 does not match is refused (422) and leaves neither the file nor a temporary file', async () => {
    const body = Buffer.from('the real contents\n');
    const r = await put(id, { path: join(root, 'checked.txt'), sha256: sha256('something else') }, body);
    assert.equal(r.status, 422);
    assert.equal(((await r.json()) as { error: string }).error, 'checksum');
    assert.equal(existsSync(join(root, 'checked.txt')), false);
    assert.deepEqual(leftovers(root), []);
    const ok = await put(id, { path: join(root, 'checked.txt'), sha256: sha256(body) }, body);
    assert.equal(ok.status, 200);
    assert.equal(readFileSync(join(root, 'checked.txt'), 'utf8'), 'the real contents\n');
  });

  test('traversal with .. and symbolic links out of the roots are refused for every operation; nothing outside changes', async () => {
    const escapes = [`${root}/../outside/secret`, `${root}/sub/../../outside/secret`, join(root, 'to-outside/secret'), join(root, 'secret-link'), '/etc/passwd'];
    for (const p of escapes) {
      for (const [m, url, body] of [
        ['GET', files(id, '', { path: p })],
        ['GET', files(id, '/stat', { path: p })],
        ['GET', files(id, '/content', { path: p })],
        ['POST', `/api/v1/hosts/${id}/files/mkdir`, { path: p + '/sub', recursive: true }],
      ] as const) {
        const r = await hub.raw(m, url, body);
        assert.equal(r.status, 403, `${m} ${p}`);
        assert.equal(((await r.json()) as { error: string }).error, 'outside_roots', `${m} ${p}`);
      }
      const w = await put(id, { path: p }, 'overwritten');
      assert.equal(w.status, 403, `PUT ${p}`);
    }
    // A new name under a link that leads out: refused, not created there.
    assert.equal((await put(id, { path: join(root, 'to-outside/planted') }, 'x')).status, 403);
    assert.equal(existsSync(join(outside, 'planted')), false);
    assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'not for the hub\n');
    // Deleting a link removes the link (inside the root), never what it points to.
    assert.equal((await hub.raw('DELETE', files(id, '', { path: `${root}/../outside/secret` }))).status, 403);
    assert.equal((await hub.raw('DELETE', files(id, '', { path: join(root, 'secret-link') }))).status, 200);
    assert.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'not for the hub\n');
    symlinkSync(join(outside, 'secret'), join(root, 'secret-link'));
  });

  test('noClobber refuses to replace an existing file (409) and leaves it as it was', async () => {
    const p = join(root, 'keep.txt');
    writeFileSync(p, 'original');
    const r = await put(id, { path: p, noClobber: 'true' }, 'replacement');
    assert.equal(r.status, 409);
    assert.equal(readFileSync(p, 'utf8'), 'original');
    const cp = await cli(['cp', '--no-clobber', join(base, 'outside/secret'), `${id}:${p}`], cliEnv);
    assert.equal(cp.code, 1);
    assert.match(cp.stderr, /already exists/);
    assert.equal(readFileSync(p, 'utf8'), 'original');
    // Without it the file is replaced, keeping its mode.
    chmodSync(p, 0o600);
    assert.equal((await put(id, { path: p }, 'replacement')).status, 200);
    assert.equal(readFileSync(p, 'utf8'), 'replacement');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.deepEqual(leftovers(root), []);
  });

  test('setuid, setgid and sticky bits the hub asks for are dropped unless the agent\'s own file allows them', async () => {
    const up = join(root, 'suid-up');
    assert.equal((await put(id, { path: up, mode: '4755' }, '#!/bin/sh\nid\n')).status, 200);
    assert.equal(statSync(up).mode & 0o7777, 0o755, 'uploaded: no setuid');
    const made = await hub.api('POST', `/api/v1/hosts/${id}/files/mkdir`, { path: join(root, 'shared'), mode: '3775' });
    assert.equal(made.mode, 0o775);
    assert.equal(statSync(join(root, 'shared')).mode & 0o7777, 0o775, 'mkdir: no setgid, no sticky');
    // Replacing a setuid file keeps its other bits, not the setuid one: new contents are a new program.
    const kept = join(root, 'suid-kept');
    writeFileSync(kept, 'old');
    chmodSync(kept, 0o4750);
    assert.equal((await put(id, { path: kept }, 'new contents')).status, 200);
    assert.equal(statSync(kept).mode & 0o7777, 0o750);
    assert.ok(agent.proc.lines.some((l) => l.includes('setuid, setgid and sticky bits dropped') && l.includes('"asked":"4755"')), 'the agent says so');

    const permissive = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'files'], fileRoots: [root], toml: 'file_special_modes = true' });
    try {
      const pid = await permissive.waitConnected();
      const allowed = join(root, 'suid-allowed');
      assert.equal((await put(pid, { path: allowed, mode: '4755', ...(process.getuid?.() === 0 ? { owner: 'root' } : {}) }, 'x')).status, 200);
      assert.equal(statSync(allowed).mode & 0o7777, 0o4755, 'kept where the host allows it, after any owner change');
      assert.equal((await hub.api('POST', `/api/v1/hosts/${pid}/files/mkdir`, { path: join(root, 'sticky'), mode: '1777' })).mode, 0o1777);
    } finally {
      await permissive.stop();
      permissive.cleanup();
    }
    for (const p of [up, kept, join(root, 'suid-allowed')]) rmSync(p, { force: true });
    for (const p of ['shared', 'sticky']) rmSync(join(root, p), { recursive: true, force: true });
  });

  test('upload from a URL: the agent fetches it, checks the sha256, and refuses a mismatch or a failed download', async () => {
    const payload = randomBytes(300_000);
    const server: Server = createServer((req, res) => {
      if (req.url === '/pkg.bin') res.writeHead(200, { 'content-length': String(payload.length) }).end(payload);
      else res.writeHead(404).end('no');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const ok = await hub.api('POST', `/api/v1/hosts/${id}/files/fetch`, { path: join(root, 'pkg.bin'), url: `${url}/pkg.bin`, sha256: sha256(payload), mode: '0755' });
      assert.deepEqual([ok.bytes, ok.sha256], [payload.length, sha256(payload)]);
      assert.ok(readFileSync(join(root, 'pkg.bin')).equals(payload));
      assert.equal(statSync(join(root, 'pkg.bin')).mode & 0o777, 0o755);

      const bad = await hub.raw('POST', `/api/v1/hosts/${id}/files/fetch`, { path: join(root, 'pkg2.bin'), url: `${url}/pkg.bin`, sha256: sha256('other') });
      assert.equal(bad.status, 422);
      const missing = await hub.raw('POST', `/api/v1/hosts/${id}/files/fetch`, { path: join(root, 'pkg3.bin'), url: `${url}/missing` });
      assert.equal(missing.status, 502);
      assert.match(((await missing.json()) as { message: string }).message, /404/);
      const small = await hub.raw('POST', `/api/v1/hosts/${id}/files/fetch`, { path: join(root, 'pkg4.bin'), url: `${url}/pkg.bin`, size: 1000 });
      assert.equal(small.status, 502, 'announced length differs from the expected size');
      const clobber = await hub.raw('POST', `/api/v1/hosts/${id}/files/fetch`, { path: join(root, 'pkg.bin'), url: `${url}/pkg.bin`, noClobber: true });
      assert.equal(clobber.status, 409);
      for (const n of ['pkg2.bin', 'pkg3.bin', 'pkg4.bin']) assert.equal(existsSync(join(root, n)), false, n);
      assert.deepEqual(leftovers(root), []);
    } finally {
      server.close();
    }
  });

  test('an agent whose local config lacks `files` refuses every file operation, however valid', async () => {
    writeFileSync(join(root, 'visible.txt'), 'x');
    for (const [m, url, body] of [
      ['GET', files(lockedId, '', { path: root })],
      ['GET', files(lockedId, '/stat', { path: join(root, 'visible.txt') })],
      ['GET', files(lockedId, '/content', { path: join(root, 'visible.txt') })],
      ['DELETE', files(lockedId, '', { path: join(root, 'visible.txt') })],
      ['POST', `/api/v1/hosts/${lockedId}/files/mkdir`, { path: join(root, 'nope') }],
    ] as const) {
      const r = await hub.raw(m, url, body);
      assert.equal(r.status, 403, `${m} ${url}`);
      const e = (await r.json()) as { error: string; message: string };
      assert.equal(e.error, 'refused');
      assert.match(e.message, /does not allow files \(capabilities = \["metrics"\]/);
    }
    assert.equal((await put(lockedId, { path: join(root, 'up.txt') }, 'x')).status, 403);
    assert.equal(existsSync(join(root, 'up.txt')), false);
    assert.equal(existsSync(join(root, 'visible.txt')), true);
  });

  test('the agent itself refuses file.request without the capability: a hand-made hub sends it directly', async () => {
    // Not our hub: a bare WebSocket server speaking the protocol, so no hub-side check is involved.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/api/v1/agent/ws' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const url = `http://127.0.0.1:${(wss.address() as { port: number }).port}`;
    const answers: Message[] = [];
    wss.on('connection', (ws) => {
      ws.send(encodeFrame('challenge', { nonce: newNonce(), protocol: PROTOCOL_VERSION, hubVersion: 'fake' }));
      ws.on('message', (data) => {
        const d = decodeFrame(data as Buffer);
        if (!d.ok) return;
        if (d.msg.type === 'hello') {
          ws.send(encodeFrame('welcome', { agentId: 'fake-agent-1', heartbeatSec: 5, hubVersion: 'fake' }));
          for (const body of [
            { op: 'ls', path: root },
            { op: 'receive', path: join(root, 'planted.txt'), transferId: 'a'.repeat(43), size: 1 },
            { op: 'fetch', path: join(root, 'planted.txt'), url: 'http://127.0.0.1:1/x' },
          ] as BodyOf<'file.request'>[])
            ws.send(encodeFrame('file.request', body));
        }
        if (d.msg.type === 'file.response') answers.push(d.msg);
      });
    });
    const locked = TestAgent.start(url, { token: 'tte_fake-enrollment-token', capabilities: ['metrics'], fileRoots: [root] });
    try {
      await waitFor(() => answers.length === 3 || undefined, 'three file.response frames', 15_000);
      for (const a of answers) {
        const b = a.body as FileResponseBody;
        assert.equal(b.ok, false);
        assert.equal(b.error?.code, 'refused');
        assert.ok(a.re, 'answers name the request');
      }
      assert.equal(existsSync(join(root, 'planted.txt')), false);
    } finally {
      await locked.stop();
      locked.cleanup();
      for (const c of wss.clients) c.terminate();
      wss.close();
    }
  });

  test('transfer endpoints take only the bound agent with a valid signature, once', async () => {
    // A simulated agent plays the host's side so that the test holds the transfer id.
    const ident = newSimIdentity();
    const sim = await simConnect(hub.url, ident, { token: await hub.enrollToken(), facts: simFacts('sim-files') });
    const other = newSimIdentity();
    const otherSim = await simConnect(hub.url, other, { token: await hub.enrollToken(), facts: simFacts('sim-other', '10.0.0.2', '02:00:00:00:00:02') });
    try {
      const body = Buffer.from('bytes for the simulated host');
      const upload = put(ident.agentId!, { path: '/srv/x.txt' }, body);
      const req = await sim.next('file.request', 10_000);
      const tid = req.body.transferId!;
      assert.equal(req.body.op, 'receive');
      assert.equal(req.body.size, body.length);
      const get = (agentId: string, key: string, id = tid) =>
        fetch(`${hub.url}/agent/transfers/${id}`, { headers: { 'x-tether-agent': agentId, 'x-tether-signature': signPayload(key, authPayload(`transfer:${id}`, agentId)) } });
      assert.equal((await get(other.agentId!, other.privateKeyPem)).status, 403, 'another agent, validly signed');
      assert.equal((await get(ident.agentId!, other.privateKeyPem)).status, 403, 'right agent id, wrong key');
      assert.equal((await fetch(`${hub.url}/agent/transfers/${tid}`)).status, 400, 'no credentials');
      assert.equal((await get(ident.agentId!, ident.privateKeyPem, 'b'.repeat(43))).status, 404, 'unknown id');
      const ok = await get(ident.agentId!, ident.privateKeyPem);
      assert.equal(ok.status, 200);
      const got = Buffer.from(await ok.arrayBuffer());
      assert.ok(got.equals(body));
      assert.equal((await get(ident.agentId!, ident.privateKeyPem)).status, 404, 'single use');
      sim.ws.send(encodeFrame('file.response', { ok: true, sha256: sha256(got), bytes: got.length }, { re: req.id }));
      const res = await upload;
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { sha256: string }).sha256, sha256(body));
    } finally {
      sim.close();
      otherSim.close();
    }
  });

  test('tether files ls|stat|mkdir|rm and cp of a small file both ways, by hostname', async () => {
    const hostname = (await hub.api('GET', `/api/v1/hosts/${id}`)).hostname as string;
    // The test hosts share this machine's hostname: cp by id, and by hostname only when it is unique.
    const target = (await hub.hosts()).hosts.filter((h: { hostname: string }) => h.hostname === hostname).length === 1 ? hostname : id;
    const mk = await cli(['files', 'mkdir', '-p', '--mode', '0700', `${target}:${root}/cli/dir`], cliEnv);
    assert.equal(mk.code, 0, mk.stderr);
    const local = join(base, 'small.txt');
    writeFileSync(local, 'small file\n');
    const up = await cli(['cp', local, `${target}:${root}/cli/dir/`], cliEnv);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(readFileSync(join(root, 'cli/dir/small.txt'), 'utf8'), 'small file\n');
    const ls = await cli(['files', 'ls', `${id}:${root}/cli/dir`], cliEnv);
    assert.match(ls.stdout, /-rw-r--r--.*small\.txt/);
    const st = await cli(['files', 'stat', '--json', `${id}:${root}/cli/dir`], cliEnv);
    assert.equal(JSON.parse(st.stdout).mode, 0o700);
    const down = await cli(['cp', `${id}:${root}/cli/dir/small.txt`, '-'], cliEnv);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(down.stdout, 'small file\n');
    const out = await cli(['cp', `${id}:/etc/hostname`, join(base, 'h')], cliEnv);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /outside this agent's file roots \(file_roots in its local config\) \(403 outside_roots\)/);
    const rm = await cli(['files', 'rm', '-r', `${id}:${root}/cli`], cliEnv);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(existsSync(join(root, 'cli')), false);
  });

  test('an offline host answers 409 agent_offline at once', async () => {
    const a = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['files'], fileRoots: [root] });
    const gone = await a.waitConnected();
    await a.stop();
    await hub.waitOnline(gone, false);
    const r = await hub.raw('GET', files(gone, '', { path: root }));
    assert.equal(r.status, 409);
    assert.equal(((await r.json()) as { error: string }).error, 'agent_offline');
    a.cleanup();
  });
});

