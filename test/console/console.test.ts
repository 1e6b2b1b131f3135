/**
 * The web console end to end in Chromium (playwright-core with Debian's /usr/bin/chromium): a real
 * hub serving the built console, three real agents that allow commands and files. Logs in, sees the
 * hosts live, watches a chart move, runs a command and a job on several hosts, reads the audit entry,
 * switches to Chinese and finds no untranslated key, and survives a hub restart (offline banner,
 * automatic reconnect). Screenshots of every page in both languages go to test-results/console/.
 * The console reads nothing the database engine changes, so SQLite is enough here.
 */
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, REPO, TestAgent, TestHub, tempDir, waitFor } from '@tether/testkit';

export const CHROMIUM = process.env.TETHER_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const SHOTS = join(REPO, 'test-results', 'console');
const MISSING = '⟦';

// No skip when Chromium is missing: npm test installs it (.ci/apt-packages); without it this fails and says why.
describe('web console in Chromium', () => {
  let hub: TestHub;
  const agents: TestAgent[] = [];
  const ids: string[] = [];
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const roots = tempDir('tether-console-files-');
  /** the hub's artifacts_dir: empty at first, two fake agent tarballs later */
  const artifacts = tempDir('tether-console-artifacts-');

  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  };
  const go = async (hash: string) => {
    await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  };
  const noMissingKeys = async (where: string) => {
    const text = await page.locator('body').innerText();
    assert.ok(!text.includes(MISSING), `untranslated key on ${where}: ${text.slice(text.indexOf(MISSING) - 40, text.indexOf(MISSING) + 60)}`);
  };

  before(async () => {
    hub = await TestHub.start({ db: 'sqlite', env: { TETHER_ARTIFACTS_DIR: artifacts } });
    const token = await hub.enrollToken();
    writeFileSync(join(roots, 'hello.txt'), 'hello from the console test\n');
    for (let n = 0; n < 3; n++) {
      // The first accepts upgrades (it is no installed artifact, so it refuses the one the console starts).
      const a = TestAgent.start(hub.url, { token, capabilities: ['metrics', 'exec', 'files'], fileRoots: [roots], ...(n === 0 ? { toml: 'auto_update = true' } : {}), env: { TETHER_COLLECTOR_INTERVALS: 'usage=1s,processes=2s,connections=3s' } });
      agents.push(a);
      ids.push(await a.waitConnected(15_000));
    }
    // Same machine, three agents: labels tell them apart on the page.
    for (const [n, id] of ids.entries()) await hub.api('PATCH', `/api/v1/hosts/${id}`, { labels: { env: n === 2 ? 'staging' : 'prod', node: `n${n + 1}` } });
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium fonts-noto-cjk (npm test does this when run as root)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-GB' });
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  afterEach(async (t) => {
    // A failing step leaves a picture of what the page showed.
    if ((t as unknown as { passed?: boolean }).passed === false && consoleErrors.length) process.stderr.write(`browser errors so far:\n${consoleErrors.join('\n')}\n`);
    if ((t as unknown as { passed?: boolean }).passed === false || process.env.TETHER_CONSOLE_SHOTS_ALWAYS) await shot('last-' + t.name.replace(/\W+/g, '-').slice(0, 40)).catch(() => {});
  });

  after(async () => {
    await browser?.close().catch(() => {});
    for (const a of agents) {
      await a.stop().catch(() => {});
      a.cleanup();
    }
    await hub?.cleanup();
  });

  test('the login page asks the hub nothing before the login, logs in, and the fleet shows every host live', async () => {
    const asked: string[] = [];
    const onRequest = (r: { url(): string }) => asked.push(new URL(r.url()).pathname);
    page.on('request', onRequest);
    await page.goto(hub.url + '/');
    await page.getByLabel('Password').waitFor();
    await page.waitForLoadState('networkidle');
    // No session cookie: no /auth/me and no fleet snapshot (which could only answer 401).
    assert.deepEqual(asked.filter((p) => p.startsWith('/api/')), []);
    page.off('request', onRequest);
    await shot('login-en');
    await page.getByLabel('Password').fill('wrong-password-1');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor();
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await waitFor(async () => (await page.locator('[role=row][data-host]').count()) === 3, 'three host rows', 15_000);
    // Values come from the live socket: the CPU cells fill in and change as samples arrive.
    const cpuTexts = async () => (await page.locator('[role=row][data-host] [data-testid=cpu]').allInnerTexts()).join('|');
    await waitFor(async () => !(await cpuTexts()).includes('—'), 'CPU values on every row', 15_000);
    const first = await cpuTexts();
    await waitFor(async () => (await cpuTexts()) !== first, 'CPU values updated by the live socket', 15_000);
    assert.match(await page.getByTestId('counts').innerText(), /3 hosts.*3 online/s);
    // Label filter and grouping.
    await page.getByLabel('Labels, e.g. env=prod,role!=db').fill('env=staging');
    await waitFor(async () => (await page.locator('[role=row][data-host]').count()) === 1, 'one staging host');
    await page.getByLabel('Labels, e.g. env=prod,role!=db').fill('');
    await page.getByLabel('Group by').selectOption('env');
    await page.locator('[role=row].group').first().waitFor();
    assert.equal(await page.locator('[role=row].group').count(), 2);
    await shot('overview-en');
    await page.getByLabel('Group by').selectOption('');
  });

  test('a host page shows facts and a live chart that moves', async () => {
    await go(`#/hosts/${ids[0]}`);
    await page.getByTestId('capabilities').waitFor();
    assert.match(await page.getByTestId('capabilities').innerText(), /commands/);
    await page.getByRole('link', { name: 'Run a command' }).waitFor();
    const chart = page.locator('figure.chart').first();
    await chart.waitFor();
    const last = Number(await chart.getAttribute('data-last'));
    await waitFor(async () => Number(await chart.getAttribute('data-last')) > last, 'the CPU chart to take a new live sample', 15_000);
    assert.ok((await page.locator('figure.chart').count()) >= 5, 'cpu, cores, load, memory, disk… charts');
    await shot('host-en');
    await page.getByRole('radio', { name: '24 h' }).click();
    await page.getByTestId('tier').filter({ hasText: '1 minute' }).waitFor();
    await page.getByRole('tab', { name: 'Processes' }).click();
    await page.getByRole('columnheader', { name: /PID/ }).waitFor();
    await shot('host-processes-en');
    await page.getByRole('tab', { name: 'Connections' }).click();
    await page.getByRole('heading', { name: 'Listening ports' }).waitFor();
    await page.getByRole('tab', { name: 'Disks & interfaces' }).click();
    await page.getByRole('heading', { name: 'Interfaces' }).waitFor();
    await page.getByRole('tab', { name: 'Charts' }).click();
  });

  test('a host page’s tab is in its address: reload and back keep it; no tab repeats another', async () => {
    await go(`#/hosts/${ids[0]}`);
    await page.getByRole('tab', { name: 'Charts', selected: true }).waitFor();
    await page.getByRole('tab', { name: 'Connections' }).click();
    await page.getByRole('heading', { name: 'Listening ports' }).waitFor();
    assert.equal(new URL(page.url()).hash, `#/hosts/${ids[0]}/connections`);
    await page.reload();
    await page.getByRole('tab', { name: 'Connections', selected: true }).waitFor();
    await page.getByRole('heading', { name: 'Listening ports' }).waitFor();
    await page.getByRole('tab', { name: 'Disks & interfaces' }).click();
    await page.getByRole('heading', { name: 'Interfaces' }).waitFor();
    await page.goBack();
    await page.getByRole('tab', { name: 'Connections', selected: true }).waitFor();
    await page.goBack();
    await page.getByRole('tab', { name: 'Charts', selected: true }).waitFor();
    // One tab for processes, one for connections and ports.
    const tabs = await page.getByRole('tab').allInnerTexts();
    for (const gone of ['Process control', 'Ports']) assert.ok(!tabs.includes(gone), `no ${gone} tab besides Processes and Connections: ${tabs.join(', ')}`);
    assert.equal(new Set(tabs).size, tabs.length);
  });

  test('a command runs on one host and its output streams in', async () => {
    await go(`#/exec?hosts=${ids[0]}`);
    await page.getByLabel('Command', { exact: true }).fill('echo hello-from-console "two words"');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const job = page.getByTestId('job');
    await job.locator('[data-testid=output]').filter({ hasText: 'hello-from-console two words' }).waitFor({ timeout: 15_000 });
    await waitFor(async () => (await job.getAttribute('data-state')) === 'succeeded', 'the job to succeed', 15_000);
    await shot('exec-en');
  });

  test('a job on several hosts shows per-host progress, and its audit entry is there', async () => {
    await go('#/exec');
    await page.getByRole('button', { name: 'All online shown' }).click();
    assert.match(await page.getByText(/\d+ picked/).innerText(), /3 picked/);
    await page.getByLabel('Command', { exact: true }).fill('sh -c "echo started; sleep 1; echo done-$TETHER_TASK_ID"');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const job = page.getByTestId('job').filter({ has: page.getByTestId('job-command').filter({ hasText: 'done-$TETHER_TASK_ID' }) });
    await waitFor(async () => (await job.getAttribute('data-state')) === 'succeeded', 'the three-host job to succeed', 20_000);
    assert.equal(await job.locator('[data-testid=task][data-state=exited]').count(), 3);
    await page.getByRole('link', { name: 'Open job page' }).click();
    await page.getByRole('heading', { level: 1 }).waitFor();
    await page.getByText('3 of 3 hosts finished, 0 failed').waitFor();
    await shot('job-en');
    await go('#/jobs');
    await page.getByTestId('jobs-table').waitFor();
    assert.equal(await page.locator('[data-testid=jobs-table] tbody tr').count(), 2);
    await shot('jobs-en');
    await go('#/audit');
    await page.getByLabel('Action').fill('POST /api/v1/exec');
    await page.getByRole('button', { name: 'Filter' }).click();
    const rows = page.locator('[data-testid=audit-entries] > li');
    await waitFor(async () => (await rows.count()) === 2, 'two exec entries in the audit log');
    // A sentence: who ran what on which hosts (named, linked to their pages).
    const sentence = rows.first().locator('.sentence');
    assert.match(await sentence.innerText(), /^admin ran sh -c 'echo started; sleep 1; echo done-\$TETHER_TASK_ID' on \S+, \S+, \S+/);
    assert.equal(await sentence.locator('a[href^="#/hosts/"]').count(), 3);
    assert.match(await rows.first().locator('.meta').innerText(), /by the console/);
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.getByText(/Intact: \d+ entries checked/).waitFor();
    await shot('audit-en');
  });

  test('top processes show each command; “what was running at” starts at the latest minute with data', async () => {
    // The hub keeps one top list per closed minute: the first comes a minute after the agents started.
    const top = await waitFor(async () => {
      const r = await hub.raw('GET', `/api/v1/hosts/${ids[0]}/processes?at=now`);
      return r.ok ? ((await r.json()) as { ts: number; byCpu: { pid: number; name: string; command: string }[] }) : undefined;
    }, 'a minute of process history', 90_000);
    const host = (await hub.api('GET', `/api/v1/hosts/${ids[0]}`)) as { createdAt: number };
    await go(`#/hosts/${ids[0]}/processes`);
    const input = page.getByTestId('top-at-input');
    await waitFor(async () => (await input.inputValue()) !== '', 'a time to ask about');
    // datetime-local is the browser's local time, as is Date's parsing here (same machine)
    const shown = new Date(await input.inputValue()).getTime();
    assert.ok(shown >= top.ts, `the default ${new Date(shown).toISOString()} is the latest minute with data (${new Date(top.ts).toISOString()}), not earlier`);
    assert.ok(shown >= host.createdAt - 60_000, 'not before the host existed');
    await page.getByRole('button', { name: 'Show', exact: true }).click();
    const rows = page.locator('[data-testid=top-byCpu] tbody tr');
    await rows.first().waitFor();
    // Each row shows its command line (cut to the cell), not only the process name.
    const commands = await page.locator('[data-testid=top-byCpu] tbody tr .cmdline').allInnerTexts();
    assert.equal(commands.length, await rows.count());
    assert.ok(commands.some((c) => /\s/.test(c.trim())), `commands with their arguments: ${commands.join(' | ')}`);
    const first = page.locator('[data-testid=top-byCpu] tbody tr .cmdline').first();
    assert.ok(((await first.boundingBox())?.width ?? 0) > 100, 'the command is on the page, not only in a tooltip');
    await first.click();
    assert.equal(await first.getAttribute('aria-expanded'), 'true', 'a tap unfolds the whole command');
    await shot('host-top-en');
  });

  test('charts: a 24 h range spans 24 h on the axis, legends show the latest values, byte axes have whole distinct ticks', async () => {
    // The 24 h range reads the 1-minute tier: it has data once a minute has closed.
    await waitFor(async () => ((await hub.api('GET', `/api/v1/metrics/query?host=${ids[0]}&metrics=cpu_percent&from=-24h&to=now`)).series as { points: unknown[] }[]).some((x) => x.points.length > 0), 'a closed minute of metrics', 90_000);
    await go(`#/hosts/${ids[0]}`);
    await page.getByRole('radio', { name: '24 h' }).click();
    await page.getByTestId('tier').filter({ hasText: '1 minute' }).waitFor();
    const cpu = page.locator('figure.chart[data-chart=cpu]');
    await cpu.waitFor();
    await waitFor(async () => Number(await cpu.getAttribute('data-x-max')) > 0, 'the CPU chart drawn');
    const span = Number(await cpu.getAttribute('data-x-max')) - Number(await cpu.getAttribute('data-x-min'));
    assert.ok(Math.abs(span - 86_400) < 120, `the 24 h axis spans ${span} s`);
    // Not hovered: each legend shows the latest value, not a dash.
    await page.mouse.move(0, 0);
    const legends = await page.locator('figure.chart .u-legend .u-value').allInnerTexts();
    assert.ok(legends.length > 5 && legends.every((v) => v.trim() !== '—' && v.trim() !== ''), `legend values: ${legends.join(' | ')}`);
    // Live too: a 15-minute window, whatever the samples cover.
    await page.getByRole('radio', { name: 'Live' }).click();
    await waitFor(async () => {
      const s = Number(await cpu.getAttribute('data-x-max')) - Number(await cpu.getAttribute('data-x-min'));
      return Math.abs(s - 900) < 5;
    }, 'a 15-minute live axis');
    // Byte axes (memory, swap, network): ticks in whole units, each label different.
    for (const name of ['memory', 'swap', 'net']) {
      const f = page.locator(`figure.chart[data-chart=${name}]`);
      if ((await f.count()) === 0) continue;
      const ticks = JSON.parse((await f.getAttribute('data-y-ticks')) ?? '[]') as string[];
      assert.ok(ticks.length >= 2, `${name}: ticks ${ticks}`);
      assert.equal(new Set(ticks).size, ticks.length, `${name}: repeated tick labels ${ticks.join(', ')}`);
      for (const tick of ticks) assert.match(tick, /^\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)(\/s)?$/, `${name}: tick ${tick}`);
    }
    await shot('host-charts-24h-en');
  });

  test('files open at the agent’s first allowed folder, shown as a shortcut; a folder is created; a file downloads', async () => {
    // a place this browser was before, outside the roots, is not where the page opens
    await page.evaluate(`localStorage.setItem('tether.files.${ids[0]}', '/')`);
    await go(`#/hosts/${ids[0]}/files`);
    await page.getByTestId('files-table').getByText('hello.txt').waitFor();
    assert.equal(await page.getByTestId('files-path').inputValue(), roots);
    assert.deepEqual(await page.getByTestId('file-roots').getByRole('button').allInnerTexts(), [roots]);
    assert.equal(await page.getByRole('alert').count(), 0, 'no error on opening');
    const errorsBefore = consoleErrors.length;
    await page.getByLabel('New folder name').fill('made-in-the-console');
    await page.getByRole('button', { name: 'Create folder' }).click();
    await page.locator('[data-testid=files-table] tr[data-name="made-in-the-console"]').waitFor();
    await waitFor(async () => (await page.getByLabel('New folder name').inputValue()) === '', 'the form cleared after creating');
    assert.deepEqual(consoleErrors.slice(errorsBefore), [], 'no error in the page while creating a folder');
    assert.ok(existsSync(join(roots, 'made-in-the-console')), 'the folder is on the host');
    const download = await Promise.all([page.waitForEvent('download'), page.locator('[data-testid=files-table] tr[data-name="hello.txt"]').getByRole('link', { name: 'Download' }).click()]).then(([d]) => d);
    assert.equal(download.suggestedFilename(), 'hello.txt');
    await shot('files-en');
  });

  test('audit sentences name what an entry touched and made: a user by name, an exec’s job as a link [needs the hub’s audit subjects]', async () => {
    const u = (await hub.api('POST', '/api/v1/users', { username: 'audited-user', password: 'a-password-long-enough', role: 'viewer' })) as { id: string };
    await hub.api('PATCH', `/api/v1/users/${u.id}`, { disabled: true });
    await go('#/audit');
    await page.getByLabel('Action').fill('PATCH /api/v1/users/:id');
    await page.getByRole('button', { name: 'Filter' }).click();
    const changed = page.locator('[data-testid=audit-entries] > li').first().locator('.sentence');
    await changed.waitFor();
    assert.equal(await changed.innerText(), 'admin changed user audited-user: disabled');
    await page.getByLabel('Action').fill('POST /api/v1/exec');
    await page.getByRole('button', { name: 'Filter' }).click();
    const ran = page.locator('[data-testid=audit-entries] > li').first().locator('.sentence');
    const job = ran.locator('a[href^="#/jobs/"]');
    await job.waitFor({ timeout: 10_000 });
    assert.match(await ran.innerText(), / → job \S+$/);
    await job.click();
    await page.getByTestId('job').waitFor();
  });

  test('enrollment, users and profile pages', async () => {
    await go('#/enroll');
    // The hub holds no agent package yet: the page says how to make one.
    await page.getByTestId('enroll-artifacts').getByText('npm run package:agent').waitFor();
    await page.getByLabel('Labels').first().fill('env=prod');
    await page.getByRole('button', { name: 'Create token' }).click();
    const card = page.getByTestId('enroll-command');
    await card.getByText(/TETHER_TOKEN=tte_\S+ tether agent --hub http:\/\/127\.0\.0\.1:\d+/).waitFor();
    // The one-line install: the checkboxes and limits change it as they change.
    const installLine = () => card.getByTestId('install-line').innerText();
    const base = await installLine();
    assert.match(base, /^curl -fsSL http:\/\/127\.0\.0\.1:\d+\/install\.sh \| sudo sh -s -- --token tte_\S+$/);
    assert.ok(await card.getByRole('checkbox', { name: 'metrics (always)' }).isDisabled());
    await card.getByRole('checkbox', { name: 'commands' }).check();
    await waitFor(async () => (await installLine()) === `${base} --allow metrics,exec`, 'the line allows exec');
    await card.getByRole('checkbox', { name: 'files' }).check();
    await card.getByLabel('File root (for files)').fill('/srv/web data');
    await card.getByLabel('CPU limit').fill('20%');
    await card.getByLabel('Memory limit').fill('12X');
    await card.getByText('A whole number and K, M or G, like 128M.').waitFor();
    const line = `${base} --allow metrics,exec,files --file-root '/srv/web data' --cpu 20%`;
    await waitFor(async () => (await installLine()) === line, 'the line with a file root and a CPU limit, not the bad memory limit');
    await card.getByLabel('Memory limit').fill('128m');
    await waitFor(async () => (await installLine()) === `${line} --memory 128M`, 'the memory limit in the line');
    await shot('enroll-en');
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: hub.url });
    await card.getByRole('button', { name: 'Copy' }).first().click();
    await card.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), `${line} --memory 128M`);
    // Revoking asks first, then the list shows the token as revoked (and the hub agrees).
    const tokenRow = page.getByTestId('enroll-tokens').locator('tr', { hasText: 'env=prod' }).first();
    await tokenRow.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await tokenRow.getByText('revoked').waitFor();
    const listed = (await hub.api('GET', '/api/v1/enrollment-tokens')).tokens as { labels: Record<string, string>; revokedAt: number | null }[];
    assert.ok(listed.some((x) => x.labels.env === 'prod' && x.revokedAt !== null), 'the hub has the token revoked');
    // Packages put in the hub's artifacts_dir are listed the next time the page opens.
    writeFileSync(join(artifacts, 'tether-agent-0.1.0-linux-x64.tar.gz'), 'fake x64 tarball');
    writeFileSync(join(artifacts, 'tether-agent-0.1.0-linux-arm64.tar.gz'), 'fake arm64 tarball');
    await go('#/users');
    await go('#/enroll');
    await page.getByTestId('enroll-artifacts').getByText('0.1.0 (newest): Linux x64, Linux arm64').waitFor();
    // A newer build on the hub: the fleet view marks the hosts whose agents are older.
    writeFileSync(join(artifacts, 'tether-agent-99.0.0-linux-x64.tar.gz'), 'fake newer tarball');
    await go('#/');
    const outdated = page.locator('[role=row][data-host]').first().getByTestId('outdated');
    await outdated.waitFor();
    assert.match((await outdated.getAttribute('title')) ?? '', /this hub holds 99\.0\.0/);
    // Its page offers the upgrade where the agent's own config allows it, and not elsewhere.
    await go(`#/hosts/${ids[1]}`);
    await page.getByTestId('host-status').waitFor();
    assert.equal(await page.getByTestId('agent-upgrade').count(), 0, 'no auto_update: no button');
    await go(`#/hosts/${ids[0]}`);
    await page.getByTestId('agent-upgrade').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Upgrade agent to 99.0.0' }).click();
    await waitFor(async () => /#\/jobs\/.+/.test(page.url()), 'the job page');
    const jobId = decodeURIComponent(page.url().split('#/jobs/')[1]!);
    const job = await waitFor(async () => {
      const j = await hub.api('GET', `/api/v1/jobs/${jobId}`);
      return j.job.state !== 'running' ? j : undefined;
    }, 'the upgrade job ended');
    assert.equal(job.job.kind, 'upgrade');
    // The fake tarball is not an artifact this agent can take: refused by the agent, reported as such.
    assert.match(JSON.stringify(job.tasks[0]), /upgrade to 99\.0\.0 refused/);
    await go('#/users');
    await page.getByTestId('users-table').locator('td', { hasText: /^admin$/ }).first().waitFor();
    await shot('users-en');
    await go('#/profile');
    await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
    await shot('profile-en');
  });

  test('in Chinese every page is translated, with localised numbers and dates', async () => {
    await go('#/');
    await page.getByTestId('lang-select').selectOption('zh');
    await page.getByRole('heading', { name: '主机群' }).waitFor();
    assert.equal(await page.evaluate('document.documentElement.lang'), 'zh-CN');
    await waitFor(async () => (await page.locator('[role=row][data-host]').count()) === 3, 'rows in zh');
    await noMissingKeys('overview');
    await shot('overview-zh');
    const pages: [string, string, string][] = [
      [`#/hosts/${ids[0]}`, '图表', 'host-zh'],
      [`#/exec`, '执行命令', 'exec-zh'],
      [`#/jobs`, '作业', 'jobs-zh'],
      [`#/audit`, '审计日志', 'audit-zh'],
      [`#/alerts/rules`, '规则', 'rules-zh'],
      [`#/hosts/${ids[0]}/files`, '上传文件', 'files-zh'],
      [`#/enroll`, '接入主机', 'enroll-zh'],
      [`#/users`, '用户', 'users-zh'],
      [`#/profile`, '个人资料', 'profile-zh'],
    ];
    for (const [hash, text, name] of pages) {
      await go(hash);
      await page.getByText(text, { exact: true }).first().waitFor();
      await page.waitForLoadState('networkidle').catch(() => {});
      await page.locator('.state.loading').first().waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
      await noMissingKeys(hash);
      await shot(name);
    }
    // What the hub says in English is said in Chinese: how an audited call was authenticated…
    await go('#/audit');
    await page.locator('[data-testid=audit-entries] .meta').first().waitFor();
    const audit = await page.getByTestId('audit-entries').innerText();
    assert.match(audit, /通过控制台/);
    for (const method of ['session-cookie', 'session-bearer', 'api-token']) assert.ok(!audit.includes(method), `${method} untranslated`);
    // …and the preset rules' names (every preset the hub ships).
    await go('#/alerts/rules');
    await page.getByTestId('rules-table').waitFor();
    const rules = (await hub.api('GET', '/api/v1/alerts/rules')).rules as { id: string; name: string; preset: string | null }[];
    assert.ok(rules.some((r) => r.preset));
    for (const r of rules.filter((x) => x.preset)) {
      const text = await page.locator(`[data-testid=rules-table] tr[data-rule="${r.id}"]`).innerText();
      assert.ok(!text.includes(r.name), `the preset ${r.preset} reads "${r.name}" in Chinese`);
    }
    const jobs = await page.evaluate(`fetch('/api/v1/jobs').then(r => r.json())`) as { jobs: { id: string; kind: string; hostCount: number }[] };
    await go(`#/jobs/${jobs.jobs.find((j) => j.kind === 'exec' && j.hostCount === 3)!.id}`);
    await page.getByText('3 台主机中 3 台已完成，0 台失败').waitFor();
    await noMissingKeys('job');
    await shot('job-zh');
    await page.getByRole('button', { name: '退出' }).click();
    await page.getByRole('button', { name: '登录' }).waitFor();
    await noMissingKeys('login');
    await shot('login-zh');
    await page.getByLabel('密码').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: '登录' }).click();
    await page.getByRole('heading', { name: '3 台主机中 3 台已完成，0 台失败' }).or(page.getByText('3 台主机中 3 台已完成，0 台失败')).first().waitFor();
    await page.getByTestId('lang-select').selectOption('en');
  });

  test('each rule row keeps its action buttons in line with the row', async () => {
    await go('#/alerts/rules');
    const rows = page.locator('[data-testid=rules-table] tbody tr');
    await rows.first().waitFor();
    const geometry = (await rows.evaluateAll((trs) =>
      trs.map((tr) => {
        const row = tr.getBoundingClientRect();
        return {
          row: [row.top, row.bottom],
          cells: [...tr.children].map((td) => [td.getBoundingClientRect().top, td.getBoundingClientRect().bottom]),
          edit: tr.querySelector('button')?.getBoundingClientRect().left ?? null,
        };
      }),
    )) as { row: [number, number]; cells: [number, number][]; edit: number | null }[];
    for (const g of geometry)
      for (const [top, bottom] of g.cells) assert.ok(Math.abs(top - g.row[0]) < 1 && Math.abs(bottom - g.row[1]) < 1, `a cell ${top}–${bottom} in a row ${g.row[0]}–${g.row[1]}`);
    const lefts = geometry.map((g) => g.edit).filter((x): x is number => x !== null);
    assert.ok(lefts.length >= 8 && Math.max(...lefts) - Math.min(...lefts) < 1, `the Edit buttons line up: ${lefts.join(', ')}`);
  });

  test('when the hub restarts the console shows it is offline and reconnects by itself', async () => {
    await go('#/');
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await hub.kill('SIGTERM');
    await page.getByTestId('offline-banner').waitFor({ timeout: 10_000 });
    await shot('offline-en');
    await hub.restart();
    await page.getByTestId('offline-banner').waitFor({ state: 'detached', timeout: 20_000 });
    await waitFor(() => agents.every((a) => a.connectedCount() >= 2), 'agents reconnected', 20_000);
    await waitFor(async () => (await page.getByTestId('counts').innerText()).includes('3 online'), 'all hosts online again', 20_000);
    assert.deepEqual(consoleErrors.filter((e) => !/WebSocket|Failed to load resource|ERR_CONNECTION_REFUSED|net::/.test(e)), []);
  });
});
