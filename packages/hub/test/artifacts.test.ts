/**
 * The artifact store on a real directory: what counts as an artifact (exact names, regular files
 * inside the directory), the order (semver, newest first), hashes kept until a file changes, and a
 * sidecar .sha256 that disagrees taking its artifact out. Also the public_url setting.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { ArtifactStore, compareVersions } from '../src/modules/artifacts/store.js';
import { BASE_URL_RE, parsePublicUrl, renderInstaller, requestBaseUrl } from '../src/modules/artifacts/installer.js';
import { loadHubConfig } from '../src/config.js';
import { certFingerprint, installPin } from '../src/tls.js';

let root: string;
let dir: string;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const put = (name: string, body: string) => writeFileSync(join(dir, name), body);

before(() => {
  root = mkdtempSync(join(tmpdir(), 'tether-artifacts-'));
  dir = join(root, 'artifacts');
  mkdirSync(dir);
});
after(() => rmSync(root, { recursive: true, force: true }));

test('versions compare as semver: numeric parts as numbers, a release above its pre-releases', () => {
  const sorted = ['0.1.10', '0.1.9', '0.2.0-rc.1', '0.2.0', '0.2.0-rc.10', '0.2.0-rc.2', '0.2.0-alpha', '1.0.0', '0.2.0-rc'].sort((a, b) => compareVersions(b, a));
  assert.deepEqual(sorted, ['1.0.0', '0.2.0', '0.2.0-rc.10', '0.2.0-rc.2', '0.2.0-rc.1', '0.2.0-rc', '0.2.0-alpha', '0.1.10', '0.1.9']);
});

test('only regular files named exactly like an artifact, inside the directory, are listed, newest first', async () => {
  const store = new ArtifactStore(dir);
  assert.deepEqual(await store.list(), []);
  put('tether-agent-0.1.9-linux-x64.tar.gz', 'nine');
  put('tether-agent-0.1.10-linux-arm64.tar.gz', 'ten arm');
  put('tether-agent-0.1.10-linux-x64.tar.gz', 'ten');
  put('tether-agent-0.2.0-rc.1-linux-x64.tar.gz', 'rc');
  // not artifacts: other names, an empty file, a directory, a FIFO, a link out of the directory
  put('tether-agent-0.1.0-linux-x86.tar.gz', 'x');
  put('tether-agent-0.1.0-linux-x64.tar.gz.part', 'x');
  put('tether-agent-0.1-linux-x64.tar.gz', 'x');
  put('notes.txt', 'x');
  put('tether-agent-0.0.1-linux-x64.tar.gz', '');
  mkdirSync(join(dir, 'tether-agent-0.3.0-linux-x64.tar.gz'));
  execFileSync('mkfifo', [join(dir, 'tether-agent-0.4.0-linux-x64.tar.gz')]);
  writeFileSync(join(root, 'outside.tar.gz'), 'secret');
  symlinkSync(join(root, 'outside.tar.gz'), join(dir, 'tether-agent-0.5.0-linux-x64.tar.gz'));
  symlinkSync('../outside.tar.gz', join(dir, 'tether-agent-0.5.0-linux-arm64.tar.gz'));
  // a link that stays inside the directory is an artifact
  mkdirSync(join(dir, 'builds'));
  writeFileSync(join(dir, 'builds', 'b1.tgz'), 'linked');
  symlinkSync('builds/b1.tgz', join(dir, 'tether-agent-0.1.8-linux-x64.tar.gz'));

  const list = await store.list();
  assert.deepEqual(
    list.map((a) => `${a.version}/${a.arch}`),
    ['0.2.0-rc.1/x64', '0.1.10/x64', '0.1.10/arm64', '0.1.9/x64', '0.1.8/x64'],
  );
  assert.deepEqual(list[1], { file: 'tether-agent-0.1.10-linux-x64.tar.gz', version: '0.1.10', arch: 'x64', size: 3, sha256: sha('ten') });
  assert.equal(list[4]!.sha256, sha('linked'));
  assert.equal(await store.latest(), '0.2.0-rc.1');
  assert.equal((await store.find('0.1.10', 'arm64'))?.sha256, sha('ten arm'));
  assert.equal(await store.find('0.5.0', 'x64'), undefined, 'a link out of the directory is not found either');
  assert.equal(await store.find('0.4.0', 'x64'), undefined, 'nor a FIFO (and looking does not block)');
  assert.equal(await store.open('../outside.tar.gz'), undefined);
  const opened = (await store.open('tether-agent-0.1.9-linux-x64.tar.gz'))!;
  assert.equal(await text(opened.stream()), 'nine');
});

test('a hash is kept until the file changes; a file that goes away leaves the list', async () => {
  const store = new ArtifactStore(dir);
  const name = 'tether-agent-0.1.9-linux-x64.tar.gz';
  assert.equal((await store.find('0.1.9', 'x64'))?.sha256, sha('nine'));
  put(name, 'NINE');
  utimesSync(join(dir, name), new Date(), new Date(Date.now() + 5000));
  assert.equal((await store.find('0.1.9', 'x64'))?.sha256, sha('NINE'));
  rmSync(join(dir, name));
  assert.ok(!(await store.list()).some((a) => a.file === name));
});

test('a sidecar .sha256 that names another hash takes its artifact out; one that agrees changes nothing', async () => {
  const store = new ArtifactStore(dir);
  const name = 'tether-agent-0.1.10-linux-x64.tar.gz';
  put(`${name}.sha256`, `${sha('ten')}  ${name}\n`);
  assert.ok((await store.list()).some((a) => a.file === name));
  put(`${name}.sha256`, `${sha('something else')}  ${name}\n`);
  assert.ok(!(await store.list()).some((a) => a.file === name));
  assert.equal(await store.find('0.1.10', 'x64'), undefined);
});

test('a directory that does not exist holds no artifacts', async () => {
  assert.deepEqual(await new ArtifactStore(join(root, 'none')).list(), []);
});

test('public_url takes http(s)://host[:port][/path] and nothing a shell would read', () => {
  assert.equal(parsePublicUrl('https://hub.example.com/'), 'https://hub.example.com');
  assert.equal(parsePublicUrl('http://[::1]:8080/tether'), 'http://[::1]:8080/tether');
  for (const bad of ["https://hub.example.com/'$(reboot)'", 'https://hub example.com', 'ftp://hub.example.com', 'https://hub.example.com/?q=1', 'https://user@hub.example.com', 'https://hub.example.com/a;b', 'hub.example.com']) {
    assert.throws(() => parsePublicUrl(bad), /expected http\(s\):\/\/host/, bad);
  }
  assert.throws(() => loadHubConfig({ publicUrl: 'https://hub.example.com/`id`' }, {}), /flag --public-url: expected http\(s\)/);
  assert.throws(() => loadHubConfig({}, { TETHER_PUBLIC_URL: 'https://x/$HOME' }), /environment TETHER_PUBLIC_URL: expected/);
  assert.equal(loadHubConfig({}, { TETHER_PUBLIC_URL: 'https://hub.example.com:8443/' }).publicUrl, 'https://hub.example.com:8443');
  assert.equal(loadHubConfig({ artifactsDir: 'arts' }, {}, '/srv/tether').artifactsDir, '/srv/tether/arts');
});

test('the installer gets only values that match their patterns', () => {
  const t = "HUB='@@TETHER_HUB@@'\nV='@@TETHER_VERSION@@'\nV2='@@TETHER_VERSION@@'\n";
  assert.equal(renderInstaller(t, 'https://hub.example.com', '0.2.0-rc.1'), "HUB='https://hub.example.com'\nV='0.2.0-rc.1'\nV2='0.2.0-rc.1'\n");
  assert.equal(renderInstaller(t, 'http://10.0.0.5:8080', ''), "HUB='http://10.0.0.5:8080'\nV=''\nV2=''\n");
  assert.throws(() => renderInstaller(t, "http://x'", '0.1.0'), /cannot go into the installer/);
  assert.throws(() => renderInstaller(t, 'http://x', "0.1.0'; reboot; '"), /cannot go into the installer/);
  assert.equal(requestBaseUrl('http', 'hub.example.com:8080'), 'http://hub.example.com:8080');
  assert.throws(() => requestBaseUrl('http', "evil'$(id)"), /cannot go into the installer/);
  assert.throws(() => requestBaseUrl('http', undefined), /no Host header/);
  assert.ok(BASE_URL_RE.test('http://[fe80::1]:8080'));
  // a self-issued certificate's pins, only in their exact shapes
  const pinned = "P='@@TETHER_PIN@@'\nF='@@TETHER_FINGERPRINT@@'\n";
  const pin = { pubkey: `sha256//${'A'.repeat(42)}b=`, fingerprint: `sha256:${'0a'.repeat(32)}` };
  assert.equal(renderInstaller(pinned, 'https://hub', '0.1.0', pin), `P='${pin.pubkey}'\nF='${pin.fingerprint}'\n`);
  assert.equal(renderInstaller(pinned, 'https://hub', '0.1.0'), "P=''\nF=''\n");
  assert.throws(() => renderInstaller(pinned, 'https://hub', '0.1.0', { ...pin, pubkey: "sha256//x'; reboot; '" }), /TLS pins cannot go into the installer/);
  assert.throws(() => renderInstaller(pinned, 'https://hub', '0.1.0', { ...pin, fingerprint: 'sha256:zz' }), /TLS pins cannot go into the installer/);
});

test('install pins: a self-issued certificate gets curl\'s key pin (as openssl computes it) and its fingerprint; one issued by a CA gets none', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-pin-'));
  try {
    const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'self.key', '-out', 'self.pem', '-subj', '/CN=hub', '-days', '2');
    const self = readFileSync(join(dir, 'self.pem'), 'utf8');
    const pin = installPin(self);
    // curl's documented recipe for --pinnedpubkey
    const want = execFileSync('sh', ['-c', 'openssl x509 -in self.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64'], { cwd: dir, encoding: 'utf8' }).trim();
    assert.deepEqual(pin, { pubkey: `sha256//${want}`, fingerprint: certFingerprint(self) });
    ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Some CA', '-days', '2');
    ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=hub.example.com');
    ossl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '2');
    assert.equal(installPin(readFileSync(join(dir, 'leaf.pem'), 'utf8')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
