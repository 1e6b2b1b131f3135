/**
 * The console's host-manager tabs in Chromium against real engines: an agent on this machine with
 * Docker (Podman's Docker-compatible API, prepared by scripts/prepare-tests.sh) and process control,
 * and one with neither. A labelled container made through the API shows in the Docker tab, is
 * stopped from the page (confirmed) and its state changes; the process tab finds the agent itself;
 * the services tab says plainly that this machine has no systemd; a host without the capabilities
 * shows none of these tabs. Then a fleet host container (systemd as PID 1, cron) with every manager
 * allowed: the services, cron, power (hibernate and suspend refused with their reason) and
 * hosts-file tabs render and act on it. Screenshots in
 * English and Chinese go to test-results/console/.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, REPO, TestAgent, TestHub, waitFor } from '@tether/testkit';
import { fleetEnv, type FleetEnv } from '../fleet/env.js';
import { run } from '../fleet/exec.js';
import { defaultAgentCommand, startFleet, type Fleet } from '../fleet/fleet.js';

// Not imported from console.test.ts: importing a test file would run its tests here too.
const CHROMIUM = process.env.TETHER_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const SHOTS = join(REPO, 'test-results', 'console');
const LABEL = `tether.console-test=${process.pid}`;

describe('console host managers in Chromium', () => {
  let hub: TestHub;
  let env: FleetEnv;
  let withDocker: TestAgent;
  let plain: TestAgent;
  let dockerId: string;
  let plainId: string;
  let browser: Browser;
  let page: Page;
  const name = `tt-console-${process.pid}`;
  const imported = `localhost/tether-console-import-${process.pid}:v1`;
  let roots: string;
  const errors: string[] = [];

  const shot = async (n: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${n}.png`) });
  };
  const go = (hash: string) => page.evaluate(`location.hash = ${JSON.stringify(hash)}`);

  before(async () => {
    env = await fleetEnv();
    hub = await TestHub.start({ db: 'sqlite' });
    roots = mkdtempSync(join(tmpdir(), 'tether-console-roots-'));
    withDocker = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'docker', 'process', 'systemd', 'files'], toml: `docker_socket = ${JSON.stringify(env.socket)}\nfile_roots = [${JSON.stringify(roots)}]\n` });
    plain = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics'] });
    dockerId = await withDocker.waitConnected(20_000);
    plainId = await plain.waitConnected(20_000);
    await hub.waitOnline(dockerId);
    await hub.waitOnline(plainId);
    await hub.api('PATCH', `/api/v1/hosts/${dockerId}`, { labels: { role: 'docker' } });
    await hub.api('PATCH', `/api/v1/hosts/${plainId}`, { labels: { role: 'plain' } });
    await hub.api('POST', `/api/v1/hosts/${dockerId}/docker/containers`, {
      image: env.image,
      name,
      command: ['/bin/sh', '-c', 'trap "exit 0" TERM; while true; do echo tick; sleep 0.3; done'],
      labels: { 'tether.console-test': String(process.pid) },
      restart: 'no',
      start: true,
    });
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium fonts-noto-cjk`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-GB' })).newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(hub.url + '/');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    const r = await run('podman', ['ps', '-aq', '--filter', `label=${LABEL}`], { allowFailure: true }).catch(() => undefined);
    const left = r?.stdout.split('\n').filter(Boolean) ?? [];
    if (left.length) await run('podman', ['rm', '-f', '-t', '0', ...left], { allowFailure: true });
    await run('podman', ['rmi', imported], { allowFailure: true }).catch(() => undefined);
    for (const a of [withDocker, plain]) await a?.stop().catch(() => {});
    await hub?.cleanup();
    for (const a of [withDocker, plain]) a?.cleanup();
    if (roots) rmSync(roots, { recursive: true, force: true });
  });

  test('the Docker tab lists the container; stopping it from the page (confirmed) changes its state; logs follow', async () => {
    await go(`#/hosts/${dockerId}`);
    await page.getByRole('tab', { name: 'Docker' }).click();
    const row = page.locator(`[data-testid=container][data-name="${name}"]`);
    await row.waitFor({ timeout: 15_000 });
    assert.equal(await row.getAttribute('data-state'), 'running');
    await row.getByRole('button', { name: 'Logs' }).click();
    await page.getByTestId('container-logs').filter({ hasText: 'tick' }).waitFor({ timeout: 10_000 });
    await page.getByTestId('container-detail').getByLabel('Follow').check();
    const n = (await page.getByTestId('container-logs').innerText()).split('tick').length;
    await waitFor(async () => (await page.getByTestId('container-logs').innerText()).split('tick').length > n + 1, 'followed logs to grow', 10_000);
    await shot('host-docker-en');
    await row.getByRole('button', { name: 'Stop', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Are you sure?' });
    await dialog.getByText(`Stop container ${name}?`).waitFor();
    await dialog.getByRole('button', { name: 'Stop' }).click();
    await page.getByTestId('mgr-done').filter({ hasText: `Stop ${name}` }).waitFor({ timeout: 30_000 });
    await waitFor(async () => (await row.getAttribute('data-state')) === 'exited', 'the container to show as exited', 15_000);
    const api = await hub.api('GET', `/api/v1/hosts/${dockerId}/docker/containers?all=true`);
    assert.equal(api.containers.find((c: { names: string[] }) => c.names.some((x) => x.replace(/^\//, '') === name))?.state, 'exited');
    await row.getByRole('button', { name: 'Start', exact: true }).waitFor();
  });

  test('an image imported from a tarball on the host (Docker tab form) shows in the images list', async () => {
    const fs = join(roots, 'rootfs');
    mkdirSync(join(fs, 'etc'), { recursive: true });
    writeFileSync(join(fs, 'etc', 'tether-imported'), 'imported from the console\n');
    const tarball = join(roots, 'rootfs.tar');
    await run('tar', ['-cf', tarball, '-C', fs, '.']);
    await go(`#/hosts/${dockerId}`);
    await page.getByRole('tab', { name: 'Docker' }).click();
    const form = page.getByTestId('image-form');
    await form.getByLabel('Image', { exact: true }).fill(imported);
    await form.getByLabel('Tarball on the host').fill(tarball);
    await form.getByRole('button', { name: 'Import' }).click();
    await page.getByTestId('mgr-done').filter({ hasText: `Import ${imported}` }).waitFor({ timeout: 30_000 });
    await page.getByTestId('images').getByText(imported).waitFor({ timeout: 15_000 });
    await shot('host-docker-import-en');
    const api = await hub.api('GET', `/api/v1/hosts/${dockerId}/docker/images`);
    assert.ok(api.images.some((im: { tags: string[] }) => im.tags.includes(imported)));
  });

  test('the processes tab (process control) finds the agent itself; connections list the ports; the services tab says systemd is not there', async () => {
    await page.getByRole('tab', { name: 'Processes' }).click();
    await page.getByTestId('ps').waitFor({ timeout: 15_000 });
    await page.getByTestId('ps-tab').getByLabel('Filter').fill(String(withDocker.proc.pid));
    await page.locator(`[data-testid=ps] tr[data-pid="${withDocker.proc.pid}"]`).waitFor();
    await page.getByLabel('Tree').check();
    await page.locator(`[data-testid=ps] tr[data-pid="${withDocker.proc.pid}"]`).waitFor();
    await shot('host-ps-en');
    await page.getByRole('tab', { name: 'Connections' }).click();
    await page.getByTestId('ports').or(page.getByText('Nothing listens.')).first().waitFor({ timeout: 15_000 });
    await page.getByRole('tab', { name: 'Services' }).click();
    // This machine runs without systemd: the agent answers `unavailable`, said as such, not as an error.
    await page.getByTestId('mgr-unavailable').waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId('mgr-unavailable').innerText(), /^Not available on this host: /);
    assert.equal(await page.getByRole('alert').count(), 0);
  });

  test('a host without the capabilities shows none of the manager tabs', async () => {
    await go(`#/hosts/${plainId}`);
    // The page keeps the last host's data while it loads the next: wait for this host's capabilities.
    await waitFor(async () => (await page.getByTestId('capabilities').innerText()).trim() === 'metrics', 'the plain host page', 10_000);
    await page.getByRole('tab', { name: 'Charts' }).waitFor();
    for (const tab of ['Docker', 'Services', 'Cron', 'Power', 'Hosts file']) assert.equal(await page.getByRole('tab', { name: tab, exact: true }).count(), 0, tab);
  });

  test('in Chinese the tabs are translated', async () => {
    await go(`#/hosts/${dockerId}`);
    await page.getByTestId('lang-select').selectOption('zh');
    await page.getByRole('tab', { name: 'Docker' }).click();
    await page.locator(`[data-testid=container][data-name="${name}"]`).waitFor({ timeout: 15_000 });
    await page.getByText('容器', { exact: true }).first().waitFor();
    assert.ok(!(await page.locator('body').innerText()).includes('⟦'), 'no untranslated key');
    await shot('host-docker-zh');
    await page.getByRole('tab', { name: '进程' }).click();
    await page.getByTestId('ps').waitFor({ timeout: 15_000 });
    assert.ok(!(await page.locator('body').innerText()).includes('⟦'), 'no untranslated key');
    await shot('host-ps-zh');
    await page.getByTestId('lang-select').selectOption('en');
    assert.deepEqual(errors, []);
  });
});

describe('console host managers on a fleet host (systemd, cron, power, hosts file)', () => {
  const CONFIG = '/etc/tether/agent.toml';
  let hub: TestHub;
  let fleet: Fleet;
  let id: string;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const shot = async (n: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${n}.png`) });
  };
  /** Confirms the console's dialog, then the hub's step-up if it asks (the login's confirmation may have lapsed). */
  const confirmAndWait = async (ok: string, done: string) => {
    await page.getByRole('dialog', { name: 'Are you sure?' }).getByRole('button', { name: ok, exact: true }).click();
    const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
    const finished = page.getByTestId('mgr-done').filter({ hasText: done });
    await stepUp.or(finished).first().waitFor({ timeout: 30_000 });
    if (await stepUp.isVisible()) {
      await stepUp.getByLabel('Password').fill(ADMIN_PASSWORD);
      await stepUp.getByRole('button', { name: 'Confirm' }).click();
    }
    await finished.waitFor({ timeout: 30_000 });
  };

  before(async () => {
    hub = await TestHub.start({ db: 'sqlite', listen: '0.0.0.0:0', heartbeat: '2s' });
    fleet = await startFleet({ count: 1, hubPort: hub.port, hostnamePrefix: 'cmgr', agentCommand: (o) => [...defaultAgentCommand(o), '--config', CONFIG] });
    const h = fleet.hosts[0]!;
    await h.exec(['mkdir', '-p', '/etc/tether']);
    await h.writeFile(CONFIG, 'capabilities = ["metrics", "systemd", "cron", "process", "power", "files"]\n');
    await h.startAgent(await hub.enrollToken({ singleUse: true }));
    id = await waitFor(async () => (await hub.hosts('?status=online')).hosts[0]?.id as string | undefined, 'the fleet host online', 30_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-GB' })).newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(hub.url + '/');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await page.evaluate(`location.hash = ${JSON.stringify(`#/hosts/${id}`)}`);
    await page.getByRole('tab', { name: 'Services' }).waitFor();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await fleet?.stop();
    await hub?.cleanup();
  });

  test('services: units with their states, filter, a unit restarted (confirmed) and its journal', async () => {
    await page.getByRole('tab', { name: 'Services' }).click();
    const row = page.locator('[data-testid=units] tr[data-unit="cron.service"]');
    await row.waitFor({ timeout: 20_000 });
    assert.match(await row.innerText(), /loaded\s+active\s+running/);
    await page.getByTestId('systemd-tab').getByLabel('Filter').fill('cron');
    await waitFor(async () => (await page.locator('[data-testid=units] tbody tr').count()) <= 3, 'the filter to narrow the list');
    await row.getByRole('button', { name: 'cron.service' }).click();
    await page.getByTestId('unit-detail').getByRole('button', { name: 'restart', exact: true }).click();
    await confirmAndWait('restart', 'systemctl restart cron.service');
    await page.getByTestId('journal').filter({ hasText: /\S/ }).waitFor({ timeout: 15_000 });
    await shot('host-services-en');
  });

  test('cron: an entry added with its schedule checked, disabled, and deleted (confirmed)', async () => {
    await page.getByRole('tab', { name: 'Cron' }).click();
    await page.getByTestId('cron-tab').waitFor();
    await page.getByRole('button', { name: 'Add entry' }).click();
    const form = page.getByRole('dialog', { name: 'Add entry' });
    await form.getByLabel('Name').fill('console-probe');
    await form.getByLabel('Schedule').fill('99 * * * *');
    await form.getByTestId('cron-check').filter({ hasText: 'Not a valid schedule' }).waitFor();
    assert.ok(await form.getByRole('button', { name: 'Save' }).isDisabled());
    await form.getByLabel('Schedule').fill('0 3 * * *');
    await form.getByTestId('cron-check').filter({ hasText: 'Valid. Next:' }).waitFor();
    await form.getByLabel('Command').fill('echo from-console');
    await form.getByRole('button', { name: 'Save' }).click();
    const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
    const row = page.locator('[data-testid=cron-entries] tr[data-entry="console-probe"]');
    await stepUp.or(row).first().waitFor({ timeout: 20_000 });
    if (await stepUp.isVisible()) {
      await stepUp.getByLabel('Password').fill(ADMIN_PASSWORD);
      await stepUp.getByRole('button', { name: 'Confirm' }).click();
    }
    await row.waitFor({ timeout: 20_000 });
    assert.match(await row.innerText(), /0 3 \* \* \*[\s\S]*echo from-console/);
    await row.getByRole('button', { name: 'Disable' }).click();
    await waitFor(async () => (await row.getAttribute('class')) === 'is-off', 'the entry to show as disabled', 15_000);
    await shot('host-cron-en');
    await row.getByRole('button', { name: 'Delete' }).click();
    await confirmAndWait('Delete', 'Delete console-probe');
    await row.waitFor({ state: 'detached', timeout: 15_000 });
  });

  test('power: status, a reboot scheduled in an hour and cancelled (confirmed, stepped up)', async () => {
    await page.getByRole('tab', { name: 'Power' }).click();
    await page.getByTestId('power-status').filter({ hasText: /^Up / }).waitFor({ timeout: 15_000 });
    await page.getByLabel('In minutes').fill('60');
    await page.getByRole('button', { name: 'Schedule', exact: true }).click();
    await confirmAndWait('Confirm', 'Reboot +60');
    await page.getByTestId('power-scheduled').filter({ hasText: /^Scheduled: Reboot/ }).waitFor({ timeout: 15_000 });
    await shot('host-power-en');
    await page.getByRole('button', { name: 'Cancel scheduled' }).click();
    await confirmAndWait('Confirm', 'Cancel scheduled');
    await page.getByTestId('power-scheduled').filter({ hasText: 'Nothing scheduled.' }).waitFor({ timeout: 15_000 });
  });

  test('power: hibernate and suspend are offered with the same confirmation as a reboot; a host that cannot says why', async () => {
    await page.getByRole('tab', { name: 'Power' }).click();
    await page.getByTestId('power-status').waitFor({ timeout: 15_000 });
    for (const [name, question] of [
      ['Hibernate', /^Hibernate \S+ now\? It stops answering until it is woken\.$/],
      ['Suspend', /^Suspend \S+ now\? It stops answering until it is woken\.$/],
    ] as const) {
      await page.getByRole('radio', { name }).click();
      assert.equal(await page.getByRole('button', { name: 'Schedule', exact: true }).count(), 0, 'shutdown +N schedules reboots and power-offs only');
      await page.getByRole('button', { name: `${name} · Now` }).click();
      const dialog = page.getByRole('dialog', { name: 'Are you sure?' });
      assert.match(await dialog.locator('p').innerText(), question);
      await dialog.getByRole('button', { name, exact: true }).click();
      const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
      // A container cannot sleep: the agent refuses and the page says why (not an error).
      const why = page.getByTestId('mgr-refused').or(page.getByTestId('mgr-unavailable'));
      await stepUp.or(why).first().waitFor({ timeout: 30_000 });
      if (await stepUp.isVisible()) {
        await stepUp.getByLabel('Password').fill(ADMIN_PASSWORD);
        await stepUp.getByRole('button', { name: 'Confirm' }).click();
      }
      await why.first().waitFor({ timeout: 30_000 });
      assert.ok((await why.first().innerText()).length > 'Not available on this host: '.length, 'with its reason');
    }
    await page.getByRole('radio', { name: 'Reboot' }).click();
    await page.getByRole('button', { name: 'Schedule', exact: true }).waitFor();
  });

  test('hosts file: a bad address is refused in the page; a good line is saved with a backup', async () => {
    await page.getByRole('tab', { name: 'Hosts file' }).click();
    await page.getByTestId('hosts-entries').waitFor({ timeout: 15_000 });
    const n = await page.locator('[data-testid=hosts-entries] tbody tr').count();
    await page.getByRole('button', { name: 'Add line' }).click();
    await page.getByLabel(`Address ${n + 1}`).fill('10.1.2.300');
    await page.getByLabel(`Names ${n + 1}`).fill('tt-console.internal');
    await page.getByTestId('hosts-problems').filter({ hasText: `Line ${n + 1}: not an IP address.` }).waitFor();
    assert.ok(await page.getByRole('button', { name: 'Save' }).isDisabled());
    await page.getByLabel(`Address ${n + 1}`).fill('10.1.2.3');
    await page.getByRole('button', { name: 'Save' }).click();
    const stepUp = page.getByRole('dialog', { name: 'Confirm it is you' });
    await stepUp.or(page.getByTestId('hosts-saved')).first().waitFor({ timeout: 20_000 });
    if (await stepUp.isVisible()) {
      await stepUp.getByLabel('Password').fill(ADMIN_PASSWORD);
      await stepUp.getByRole('button', { name: 'Confirm' }).click();
    }
    await page.getByTestId('hosts-saved').waitFor({ timeout: 20_000 });
    assert.match((await fleet.hosts[0]!.exec(['cat', '/etc/hosts'])).stdout, /10\.1\.2\.3\s+tt-console\.internal/);
    await shot('host-hostsfile-en');
  });

  test('in Chinese: services and power', async () => {
    await page.getByTestId('lang-select').selectOption('zh');
    await page.getByRole('tab', { name: '服务' }).click();
    await page.locator('[data-testid=units] tr[data-unit="cron.service"]').waitFor({ timeout: 15_000 });
    assert.ok(!(await page.locator('body').innerText()).includes('⟦'));
    await shot('host-services-zh');
    await page.getByRole('tab', { name: '电源' }).click();
    await page.getByTestId('power-status').waitFor({ timeout: 15_000 });
    assert.ok(!(await page.locator('body').innerText()).includes('⟦'));
    await shot('host-power-zh');
    await page.getByTestId('lang-select').selectOption('en');
    assert.deepEqual(errors, []);
  });
});
