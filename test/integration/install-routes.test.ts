/**
 * The hub's side of the one-line install, against real hub processes: `GET /install.sh` with the
 * hub's URL (public_url, else the request's Host) and the newest artifact version filled in, and
 * nothing unchecked put into the script; `GET|HEAD /dl/agent/FILE` streaming exact bytes whose
 * sha256 the ETag and the .sha256 file name, and 404 for every other name; the authenticated list;
 * and `tether token create --install-line`. The artifacts are small fake tarballs: the hub does not
 * look inside them. Nothing here touches the database's engine, so SQLite is enough.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, TestHub, cli, tempDir } from '@tether/testkit';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const X64 = 'tether-agent-0.1.0-linux-x64.tar.gz';
const ARM = 'tether-agent-0.1.0-linux-arm64.tar.gz';
const NEWER = 'tether-agent-0.1.10-linux-x64.tar.gz';

let dir: string;
let arts: string;
/** artifacts in arts, Host-derived URL, and a name (with `_`) it answers to that cannot go into a URL */
let hub: TestHub;
/** public_url set, no artifacts */
let pub: TestHub;
let env: NodeJS.ProcessEnv;
let pubEnv: NodeJS.ProcessEnv;
const bytes: Record<string, Buffer> = {};

/** A request exactly as given: the path is not normalised and Host is what we say. */
function raw(base: string, path: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: o.method ?? 'GET', headers: o.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  dir = tempDir('tether-install-');
  arts = join(dir, 'artifacts');
  mkdirSync(join(dir, 'src'), { recursive: true });
  mkdirSync(arts);
  writeFileSync(join(dir, 'src', 'tether-agent'), '#!/bin/sh\necho fake agent\n');
  execFileSync('tar', ['-C', join(dir, 'src'), '-czf', join(arts, X64), 'tether-agent']);
  writeFileSync(join(arts, ARM), randomBytes(200_000));
  writeFileSync(join(arts, NEWER), randomBytes(3000));
  for (const f of [X64, ARM, NEWER]) bytes[f] = readFileSync(join(arts, f));
  writeFileSync(join(arts, `${X64}.sha256`), `${sha256(bytes[X64]!)}  ${X64}\n`);
  writeFileSync(join(arts, 'notes.txt'), 'not an artifact');
  writeFileSync(join(dir, 'secret.tar.gz'), 'outside the artifacts directory');
  symlinkSync('../secret.tar.gz', join(arts, 'tether-agent-0.9.0-linux-x64.tar.gz'));
  hub = await TestHub.start({ env: { TETHER_ARTIFACTS_DIR: arts, TETHER_ALLOWED_HOSTS: 'my_hub.example' } });
  pub = await TestHub.start({ extraArgs: ['--public-url', 'https://hub.example.com:8443/tether/', '--artifacts-dir', join(dir, 'none')] });
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, 'b'));
  env = await hub.cliEnv(join(dir, 'a'));
  pubEnv = await pub.cliEnv(join(dir, 'b'));
});
after(async () => {
  await hub?.cleanup();
  await pub?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('GET /install.sh: the hub URL from the request and the newest version filled in, a script sh can parse, never cached', async () => {
  const r = await fetch(hub.url + '/install.sh');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/x-shellscript; charset=utf-8');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const script = await r.text();
  const template = readFileSync(join(REPO, 'packaging/install.sh'), 'utf8');
  // a plain-HTTP hub pins nothing: its pins are empty
  assert.equal(script, template.replaceAll('@@TETHER_HUB@@', hub.url).replaceAll('@@TETHER_VERSION@@', '0.1.10').replaceAll('@@TETHER_PIN@@', '').replaceAll('@@TETHER_FINGERPRINT@@', ''));
  assert.ok(script.includes(`'${hub.url}'`) && script.includes("'0.1.10'"), script);
  assert.ok(!script.includes('@@'), 'no placeholder left');
  writeFileSync(join(dir, 'served.sh'), script);
  execFileSync('sh', ['-n', join(dir, 'served.sh')]);
  // HEAD answers the same headers
  const head = await fetch(hub.url + '/install.sh', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(script)));
});

test('with public_url the script names it whatever the Host, and the version is empty when the hub holds no artifact', async () => {
  const script = await (await fetch(pub.url + '/install.sh')).text();
  assert.match(script, /^TETHER_HUB_DEFAULT='https:\/\/hub\.example\.com:8443\/tether'$/m);
  assert.match(script, /^TETHER_VERSION_DEFAULT=''$/m);
  // public_url's host is one of the hub's names
  const byName = await raw(pub.url, '/install.sh', { headers: { host: 'hub.example.com:8443' } });
  assert.equal(byName.status, 200);
  assert.match(byName.body.toString(), /'https:\/\/hub\.example\.com:8443\/tether'/);
});

test('a Host the hub does not answer to is refused (421), and one it answers to that cannot make a URL is refused (400), never put in a script', async () => {
  const foreign = await raw(hub.url, '/install.sh', { headers: { host: 'evil.example' } });
  assert.equal(foreign.status, 421);
  assert.equal(JSON.parse(foreign.body.toString()).error, 'host_not_allowed');
  const odd = await raw(hub.url, '/install.sh', { headers: { host: 'my_hub.example' } });
  assert.equal(odd.status, 400, odd.body.toString());
  const e = JSON.parse(odd.body.toString()) as { error: string; message: string };
  assert.equal(e.error, 'bad_host');
  assert.match(e.message, /cannot go into the installer.*public_url/);
});

test('a public_url that could break out of the script stops the hub at start, saying which setting', async () => {
  const r = await cli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'bad'), '--public-url', "https://hub.example.com/'$(reboot)'"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /flag --public-url: expected http\(s\):\/\/host\[:port\]\[\/path\]/);
  const fromEnv = await cli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'bad')], { TETHER_PUBLIC_URL: 'http://hub example' });
  assert.equal(fromEnv.code, 1);
  assert.match(fromEnv.stderr, /environment TETHER_PUBLIC_URL: expected/);
});

test('GET /dl/agent/FILE streams the exact bytes with their length and sha256 (ETag and .sha256, which sha256sum accepts); HEAD gives the headers alone', async () => {
  for (const f of [X64, ARM, NEWER]) {
    const r = await fetch(`${hub.url}/dl/agent/${f}`);
    assert.equal(r.status, 200);
    const body = Buffer.from(await r.arrayBuffer());
    assert.ok(body.equals(bytes[f]!), `${f}: the bytes on disk`);
    assert.equal(r.headers.get('content-length'), String(bytes[f]!.length));
    assert.equal(r.headers.get('etag'), `"${sha256(body)}"`);
    assert.equal(r.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const side = await fetch(`${hub.url}/dl/agent/${f}.sha256`);
    assert.equal(side.status, 200);
    assert.equal(await side.text(), `${sha256(body)}  ${f}\n`);
  }
  const got = join(dir, 'got');
  mkdirSync(got);
  writeFileSync(join(got, ARM), Buffer.from(await (await fetch(`${hub.url}/dl/agent/${ARM}`)).arrayBuffer()));
  writeFileSync(join(got, `${ARM}.sha256`), await (await fetch(`${hub.url}/dl/agent/${ARM}.sha256`)).text());
  execFileSync('sha256sum', ['-c', `${ARM}.sha256`], { cwd: got, stdio: 'ignore' });

  const head = await raw(hub.url, `/dl/agent/${ARM}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(bytes[ARM]!.length));
  assert.equal(head.headers.etag, `"${sha256(bytes[ARM]!)}"`);
  assert.equal(head.body.length, 0);
  const again = await raw(hub.url, `/dl/agent/${ARM}`, { headers: { 'if-none-match': `"${sha256(bytes[ARM]!)}"` } });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
});

test('every other name under /dl/agent/ is a 404 with a JSON error: traversal, encoded dots, other files, links out, absent versions', async () => {
  const paths = [
    '/dl/agent/..%2f..%2fetc%2fpasswd',
    '/dl/agent/%2e%2e',
    '/dl/agent/%2e%2e%2fsecret.tar.gz',
    '/dl/agent/..%2Fsecret.tar.gz',
    '/dl/agent/../../etc/passwd',
    '/dl/agent/notes.txt',
    '/dl/agent/notes.txt.sha256',
    `/dl/agent/${X64}.part`,
    `/dl/agent/${X64}%00`,
    `/dl/agent/.${X64}`,
    '/dl/agent/tether-agent-0.9.0-linux-x64.tar.gz',
    '/dl/agent/tether-agent-0.9.0-linux-x64.tar.gz.sha256',
    '/dl/agent/tether-agent-9.9.9-linux-x64.tar.gz',
    '/dl/agent/tether-agent-0.1.0-linux-x86.tar.gz',
    `/dl/agent/tether-agent-0.1.0-${'a'.repeat(60)}-linux-x64.tar.gz`,
  ];
  for (const p of paths) {
    for (const method of ['GET', 'HEAD']) {
      const r = await raw(hub.url, p, { method });
      assert.equal(r.status, 404, `${method} ${p}: ${r.body.toString().slice(0, 200)}`);
      if (method === 'GET') assert.equal(JSON.parse(r.body.toString()).error, 'not_found', p);
      assert.ok(!r.body.includes('outside the artifacts directory'), p);
    }
  }
});

test('GET /api/v1/agent-artifacts: login required; newest first with sizes, hashes and download URLs', async () => {
  const anon = await hub.raw('GET', '/api/v1/agent-artifacts', undefined, false);
  assert.equal(anon.status, 401);
  const r = await hub.api<{ publicUrl: string | null; latest: string | null; capabilities: string[]; artifacts: { version: string; arch: string; file: string; size: number; sha256: string; url: string }[] }>('GET', '/api/v1/agent-artifacts');
  assert.equal(r.publicUrl, null);
  assert.equal(r.latest, '0.1.10');
  assert.ok(r.capabilities.includes('metrics') && r.capabilities.includes('terminal'));
  assert.deepEqual(
    r.artifacts.map((a) => [a.version, a.arch, a.file]),
    [
      ['0.1.10', 'x64', NEWER],
      ['0.1.0', 'x64', X64],
      ['0.1.0', 'arm64', ARM],
    ],
  );
  for (const a of r.artifacts) {
    assert.equal(a.size, bytes[a.file]!.length);
    assert.equal(a.sha256, sha256(bytes[a.file]!));
    assert.equal(a.url, `${hub.url}/dl/agent/${a.file}`);
  }
  const p = await pub.api('GET', '/api/v1/agent-artifacts');
  assert.deepEqual(p, { publicUrl: 'https://hub.example.com:8443/tether', latest: null, capabilities: r.capabilities, artifacts: [], tlsPin: null });
});

/** The words after `sh -s --`, as sh reads them. */
function shWords(line: string): string[] {
  const args = line.slice(line.indexOf(' -s -- ') + ' -s -- '.length);
  return execFileSync('sh', ['-c', `set -- ${args}; printf '%s\\n' "$@"`], { encoding: 'utf8' }).trimEnd().split('\n');
}

test('tether token create --install-line prints the one line (with a working token), its values quoted for sh; --json has it as installLine', async () => {
  const r = await cli(['token', 'create', '--install-line', '--allow', 'exec,files', '--allow', 'docker', '--file-root', "/srv/it's data", '--cpu', '20%', '--memory', '128m'], env);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  const line = lines[0]!;
  assert.match(line, new RegExp(`^curl -fsSL ${hub.url.replace(/[.:/]/g, '\\$&')}/install\\.sh \\| sudo sh -s -- --token tte_\\S+ `));
  const words = shWords(line);
  assert.deepEqual(words.filter((_, n) => n !== 1), ['--token', '--allow', 'metrics,exec,files,docker', '--file-root', "/srv/it's data", '--cpu', '20%', '--memory', '128M']);
  assert.match(r.stderr, /shown only once/);
  assert.doesNotMatch(r.stderr, /no agent artifact/);
  // the token in the line is a real one
  const tokens = (await hub.api<{ tokens: unknown[] }>('GET', '/api/v1/enrollment-tokens')).tokens.length;
  assert.ok(tokens >= 1);

  const j = await cli(['token', 'create', '--install-line', '--json'], env);
  assert.equal(j.code, 0, j.stderr);
  const parsed = JSON.parse(j.stdout) as { token: string; installLine: string };
  assert.equal(parsed.installLine, `curl -fsSL ${hub.url}/install.sh | sudo sh -s -- --token ${parsed.token}`);
});

test('--install-line uses the hub’s public_url and says when the hub holds no artifact', async () => {
  const r = await cli(['token', 'create', '--install-line', '--allow', 'metrics'], pubEnv);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^curl -fsSL https:\/\/hub\.example\.com:8443\/tether\/install\.sh \| sudo sh -s -- --token tte_\S+ --allow metrics\n$/);
  assert.match(r.stderr, /holds no agent artifact.*npm run package:agent/);
});

test('bad --allow, --cpu, --memory or --file-root, or one of them without --install-line, is a clear error and makes no token', async () => {
  const before = (await hub.api<{ tokens: unknown[] }>('GET', '/api/v1/enrollment-tokens')).tokens.length;
  const cases: [string[], RegExp][] = [
    [['--install-line', '--allow', 'exec,bogus'], /--allow: unknown capability "bogus": one of metrics, exec, files, docker, systemd, cron, process, power, terminal/],
    [['--install-line', '--allow', 'exec', '--cpu', '20'], /--cpu: expected a percentage of one core like 20%/],
    [['--install-line', '--cpu', '0%'], /--cpu: expected/],
    [['--install-line', '--memory', '12X'], /--memory: expected a size like 128M/],
    [['--install-line', '--memory', '-1M'], /--memory: expected/],
    [['--install-line', '--file-root', 'srv'], /--file-root: expected an absolute path/],
    [['--allow', 'exec'], /--allow goes with --install-line/],
  ];
  for (const [args, want] of cases) {
    const r = await cli(['token', 'create', ...args], env);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
  assert.equal((await hub.api<{ tokens: unknown[] }>('GET', '/api/v1/enrollment-tokens')).tokens.length, before);
});
