// The one-line install from a hub whose TLS certificate is its own (tls_self_signed): no authority
// vouches for it, so the line the console and the CLI give pins its key (`curl -k --pinnedpubkey`),
// the script it fetches carries the same pins for its own requests, and the agent it installs pins
// the certificate (hub_fingerprint). A fresh host with no Node.js; needs root and test/fleet/setup.sh.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, TestHub } from '@tether/testkit';
import { installLine } from '@tether/cli';
import { startFleet, type Fleet, type FleetHost } from './fleet.js';

// this process's API client talks to the self-signed hub; what is tested is what runs on the host
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const SNAPSHOT = 'find /opt /etc /var/lib -xdev \\( -path /var/lib/systemd -o -path /var/lib/dpkg -o -path /etc/machine-id \\) -prune -o -print | sort';

describe('one-line install from a hub with a self-signed certificate', { timeout: 300_000 }, () => {
  let hub: TestHub;
  let fleet: Fleet;
  let h: FleetHost;
  let url: string;
  let pin: { pubkey: string; fingerprint: string };
  const sh = (script: string) => h.exec(['sh', '-c', script], { allowFailure: true, timeoutMs: 90_000 });

  before(async () => {
    hub = await TestHub.start({ listen: '0.0.0.0:0', heartbeat: '2s', env: { TETHER_TLS_SELF_SIGNED: '1', TETHER_ARTIFACTS_DIR: join(REPO, 'dist/artifacts') } });
    fleet = await startFleet({ count: 1, hubPort: hub.port, hostnamePrefix: 'tlshost', bare: true });
    h = fleet.hosts[0]!;
    await h.exec(['rm', '-rf', '/opt/tether', '/var/lib/tether-agent']);
    url = fleet.hubUrl.replace(/^http:/, 'https:');
  });

  after(async () => {
    await fleet?.stop();
    await hub?.cleanup();
  });

  test('the hub offers the pins of its own certificate, and install.sh carries them', async () => {
    const arts = await hub.api<{ tlsPin: { pubkey: string; fingerprint: string } | null }>('GET', '/api/v1/agent-artifacts');
    assert.ok(arts.tlsPin, 'a self-signed hub offers its pins');
    pin = arts.tlsPin;
    assert.equal(pin.fingerprint, hub.tlsFingerprint);
    assert.match(pin.pubkey, /^sha256\/\/[A-Za-z0-9+/]{43}=$/);
    const script = await (await hub.raw('GET', '/install.sh', undefined, false)).text();
    assert.ok(script.includes(`TETHER_PIN_DEFAULT='${pin.pubkey}'`) && script.includes(`TETHER_FINGERPRINT_DEFAULT='${pin.fingerprint}'`));
  });

  test('without the pin, or with another key’s, curl refuses the hub and nothing is installed', async () => {
    const before = (await sh(SNAPSHOT)).stdout;
    const token = await hub.enrollToken();
    // as a user pastes it: curl fails, sh reads an empty script (and exits 0, as any `curl | sh` does)
    const plain = await sh(`curl -fsSL ${url}/install.sh | sh -s -- --token ${token}`);
    // 60: no authority vouches for it; 77: this minimal host has no CA bundle at all (the pinned line needs none)
    assert.match(plain.stderr, /curl: \((60|77)\)/);
    const wrong = `sha256//${'A'.repeat(43)}=`;
    const other = await sh(`curl -fsSL -k --pinnedpubkey '${wrong}' ${url}/install.sh | sh -s -- --token ${token}`);
    assert.match(other.stderr, /public key does not match pinned public key/i);
    // curl's own verdicts: 60 or 77 as above, 90 (not the pinned key)
    assert.ok([60, 77].includes((await sh(`curl -fsS -o /dev/null ${url}/install.sh`)).code));
    assert.equal((await sh(`curl -fsS -o /dev/null -k --pinnedpubkey '${wrong}' ${url}/install.sh`)).code, 90);
    assert.equal((await sh(`curl -fsS -o /dev/null -k --pinnedpubkey '${pin.pubkey}' ${url}/install.sh`)).code, 0);
    assert.equal((await sh(SNAPSHOT)).stdout, before, 'nothing was installed');
  });

  test('the line the CLI prints installs the agent, which pins the certificate', async () => {
    const token = await hub.enrollToken({ singleUse: true });
    const line = installLine(url, token, {}, pin.pubkey).replace('| sudo sh', '| sh');
    assert.match(line, /^curl -fsSL -k --pinnedpubkey sha256\/\/\S+ https:\/\/[\d.]+:\d+\/install\.sh \| sh -s -- --token /);
    const r = await sh(line);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const m = /online: host ([0-9a-f-]+) at https:/.exec(r.stdout);
    assert.ok(m, r.stdout);
    await hub.waitOnline(m[1]!, true);
    const toml = (await h.exec(['cat', '/etc/tether/agent.toml'])).stdout;
    assert.ok(toml.split('\n').includes(`hub_fingerprint = "${pin.fingerprint}"`), toml);
    assert.equal((await h.exec(['readlink', '/opt/tether-agent/current'])).stdout.trim(), VERSION);
  });
});
