/**
 * The console's alert pages end to end in Chromium against a real hub (short evaluation tick) and
 * two real agents: a rule made in the rules editor (memory used > 1 %, which the agents' real data
 * crosses) fires and the alert appears on the Alerts page live, without a reload, with the nav
 * badge; disabling it from the list ends the alert live and it shows in history. A webhook channel
 * made in the UI test-sends to an HTTP server in this test, which receives it; the outcome and the
 * delivery log show it. A silence is created and expired. Screenshots in en and zh go to
 * test-results/console/alerts-*.png.
 */
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, REPO, TestAgent, TestHub, waitFor } from '@tether/testkit';

const CHROMIUM = process.env.TETHER_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const SHOTS = join(REPO, 'test-results', 'console');
const FAST = { TETHER_COLLECTOR_INTERVALS: 'usage=1s,processes=30s,connections=30s,sensors=30s,gpu=30s,self=30s' };
const HUB_ENV = { TETHER_ALERT_EVAL_INTERVAL: '0.2s', TETHER_ALERT_RETRY_BASE: '0.2s' };

interface Got {
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

describe('alert pages in Chromium', () => {
  let hub: TestHub;
  const agents: TestAgent[] = [];
  const ids: string[] = [];
  let browser: Browser;
  let page: Page;
  let server: Server;
  let hookUrl = '';
  const got: Got[] = [];
  const consoleErrors: string[] = [];
  let ruleId = '';

  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `alerts-${name}.png`), fullPage: false });
  };
  const go = (hash: string) => page.evaluate(`location.hash = ${JSON.stringify(hash)}`);

  before(async () => {
    hub = await TestHub.start({ db: 'sqlite', env: HUB_ENV });
    for (let n = 0; n < 2; n++) {
      const a = TestAgent.start(hub.url, { token: await hub.enrollToken({ labels: { node: `n${n + 1}` } }), env: FAST });
      agents.push(a);
    }
    ids.push(...(await Promise.all(agents.map((a) => a.waitConnected(15_000)))));
    // Presets watch every host; switched off so that only the rule made here speaks.
    for (const r of (await hub.api('GET', '/api/v1/alerts/rules')).rules) await hub.api('PATCH', `/api/v1/alerts/rules/${r.id}`, { enabled: false });
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        got.push({ headers: req.headers, body: JSON.parse(raw || 'null') });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    server.unref();
    hookUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium fonts-noto-cjk`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-GB' });
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  afterEach(async (t) => {
    if ((t as unknown as { passed?: boolean }).passed === false) {
      if (consoleErrors.length) process.stderr.write(`browser errors so far:\n${consoleErrors.join('\n')}\n`);
      await shot('last-' + t.name.replace(/\W+/g, '-').slice(0, 40)).catch(() => {});
    }
  });

  after(async () => {
    await browser?.close().catch(() => {});
    server?.close();
    for (const a of agents) {
      await a.stop().catch(() => {});
      a.cleanup();
    }
    await hub?.cleanup();
  });

  test('a rule made in the editor fires and the alert appears live, with the nav badge', async () => {
    await page.goto(hub.url + '/#/alerts');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Alerts', exact: true }).waitFor();
    await page.locator('[data-testid=alerts-live][data-status=open]').waitFor();
    await page.getByText('No alerts are firing or pending.').waitFor();
    // Set once; a reload would lose it.
    await page.evaluate('window.__sameDocument = true');

    await page.locator('nav.subnav').getByRole('link', { name: 'Rules' }).click();
    await page.getByTestId('rules-table').waitFor();
    assert.ok((await page.locator('[data-testid=rules-table] tbody tr').count()) >= 8, 'the presets are listed');
    await page.getByRole('button', { name: 'New rule' }).click();
    const dlg = page.getByRole('dialog', { name: 'New rule' });
    await dlg.getByLabel('Name', { exact: true }).fill('memory over 1 %');
    await dlg.getByLabel('Metric', { exact: true }).selectOption('memory_used_percent');
    await dlg.getByLabel('Severity').selectOption('critical');
    await dlg.getByLabel('Operator').selectOption('>');
    await dlg.getByLabel('Threshold').fill('1');
    await dlg.getByLabel('For (seconds)', { exact: true }).fill('1');
    await dlg.getByLabel('Clear for (seconds)').fill('0');
    await dlg.getByLabel('Group window (seconds)').fill('0');
    await dlg.getByRole('radio', { name: 'Picked hosts' }).check();
    await dlg.getByRole('checkbox', { name: /node=n1/ }).check();
    await shot('rule-editor-en');
    await dlg.getByRole('button', { name: 'Save' }).click();
    await dlg.waitFor({ state: 'detached' });
    const row = page.locator('[data-testid=rules-table] tbody tr', { hasText: 'memory over 1 %' });
    await row.waitFor();
    ruleId = (await row.getAttribute('data-rule'))!;
    const rule = await hub.api('GET', `/api/v1/alerts/rules/${ruleId}`);
    assert.equal(rule.metric, 'memory_used_percent');
    assert.deepEqual(rule.scope, { hosts: [ids[0]] });
    assert.equal(rule.forSec, 1);
    assert.equal(rule.severity, 'critical');
    await shot('rules-en');

    await page.locator('nav.subnav').getByRole('link', { name: 'Alerts' }).click();
    const alert = page.locator(`[data-testid=active-alerts] tr[data-rule="${ruleId}"][data-state=firing]`);
    await alert.waitFor({ timeout: 15_000 });
    assert.match(await alert.innerText(), /critical[\s\S]*firing[\s\S]*memory over 1 %[\s\S]*memory_used_percent/);
    assert.equal(await page.locator(`[data-testid=active-alerts] tr[data-rule="${ruleId}"]`).count(), 1, 'pending became firing in place');
    await page.locator('[data-testid=alerts-badge]', { hasText: '1' }).waitFor();
    assert.equal(await page.evaluate('window.__sameDocument'), true, 'no reload: pushed over the live socket');
    await shot('active-en');
  });

  test('disabling the rule in the list ends the alert live, and history shows it', async () => {
    await go('#/alerts/rules');
    await page.getByRole('switch', { name: 'Enabled: memory over 1 %' }).uncheck();
    await waitFor(async () => (await hub.api('GET', `/api/v1/alerts/rules/${ruleId}`)).enabled === false, 'rule disabled');
    await go('#/alerts');
    await page.getByText('No alerts are firing or pending.').waitFor({ timeout: 10_000 }).catch(async (e) => {
      process.stderr.write(JSON.stringify({ rule: await hub.api('GET', `/api/v1/alerts/rules/${ruleId}`), alerts: await hub.api('GET', '/api/v1/alerts') }) + '\n');
      throw e;
    });
    assert.equal(await page.locator('[data-testid=alerts-badge]').count(), 0);
    await page.getByRole('tab', { name: 'History' }).click();
    await page.getByLabel('Rule', { exact: true }).selectOption(ruleId);
    await page.locator(`[data-testid=alert-history] tr[data-rule="${ruleId}"][data-state=resolved]`).waitFor();
    await shot('history-en');
  });

  test('a webhook channel made in the UI test-sends to a real HTTP server', async () => {
    await go('#/alerts/channels');
    await page.getByRole('button', { name: 'New channel' }).click();
    const dlg = page.getByRole('dialog', { name: 'New channel' });
    await dlg.getByLabel('Name', { exact: true }).fill('ops hook');
    await dlg.getByLabel('Type').selectOption('webhook');
    await dlg.getByLabel('URL', { exact: true }).fill(hookUrl);
    await dlg.getByLabel('HMAC signing key').fill('hmac-key-from-the-console');
    await dlg.getByLabel('Extra headers').fill('x-team: ops');
    await dlg.getByRole('button', { name: 'Save' }).click();
    await dlg.waitFor({ state: 'detached' });
    const row = page.locator('[data-testid=channels-table] tbody tr', { hasText: 'ops hook' });
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /hmacKey: set/);
    assert.match(text, /headers: set/);
    assert.ok(!text.includes('hmac-key-from-the-console'), 'secret never shown');
    await row.getByRole('button', { name: 'Test-send' }).click();
    await row.locator('[data-testid=test-result][data-status=ok]').waitFor({ timeout: 15_000 });
    assert.match(await row.getByTestId('test-result').innerText(), /Test delivered \(HTTP 200\)/);
    const hit = got.find((g) => g.body?.kind === 'test');
    assert.ok(hit, 'the receiver got the test message');
    assert.equal(hit.headers['x-team'], 'ops');
    assert.match(String(hit.headers['x-tether-signature-256']), /^sha256=[0-9a-f]{64}$/);
    await shot('channels-en');
    // The channel editor for an existing channel shows secrets only as set.
    await row.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit channel' });
    assert.equal(await edit.getByLabel('HMAC signing key').inputValue(), '');
    await edit.getByRole('button', { name: 'Cancel' }).click();

    await go('#/alerts');
    await page.getByRole('tab', { name: 'Delivery log' }).click();
    await page.locator('[data-testid=deliveries] tr[data-status=ok]', { hasText: 'ops hook' }).waitFor();
    await shot('deliveries-en');
  });

  test('a silence is created and expired', async () => {
    await go('#/alerts/silences');
    const form = page.getByRole('form', { name: 'New silence' });
    await form.getByLabel('Rule', { exact: true }).selectOption(ruleId);
    await form.getByLabel('Host', { exact: true }).selectOption(ids[0]!);
    await form.getByLabel('Reason').fill('kernel upgrade');
    await form.getByRole('button', { name: 'Silence' }).click();
    const row = page.locator('[data-testid=silences-table] tr[data-active=true]', { hasText: 'kernel upgrade' });
    await row.waitFor();
    const sils = (await hub.api('GET', '/api/v1/alerts/silences')).silences;
    assert.equal(sils.length, 1);
    assert.equal(sils[0].ruleId, ruleId);
    assert.equal(sils[0].hostId, ids[0]);
    assert.ok(sils[0].endsAt > Date.now() + 3600_000, 'ends in about two hours');
    await shot('silences-en');
    await row.getByRole('button', { name: 'Expire' }).click();
    await page.getByRole('dialog', { name: 'Are you sure?' }).getByRole('button', { name: 'Expire' }).click();
    await page.getByText('No silences.').or(page.locator('[data-testid=silences-table] tr[data-active=false]')).first().waitFor();
  });

  test('in Chinese the alert pages are translated', async () => {
    // Fire again so the zh pages show an alert.
    await hub.api('PATCH', `/api/v1/alerts/rules/${ruleId}`, { enabled: true });
    await go('#/alerts');
    await page.getByTestId('lang-select').selectOption('zh');
    await page.locator(`[data-testid=active-alerts] tr[data-rule="${ruleId}"][data-state=firing]`).waitFor({ timeout: 15_000 });
    const pages: [string, string][] = [
      ['#/alerts', 'active-zh'],
      ['#/alerts/rules', 'rules-zh'],
      ['#/alerts/channels', 'channels-zh'],
      ['#/alerts/silences', 'silences-zh'],
    ];
    for (const [hash, name] of pages) {
      await go(hash);
      await page.locator('nav.subnav').getByText('规则').waitFor();
      await page.locator('.state.loading').first().waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
      await page.waitForLoadState('networkidle').catch(() => {});
      const text = await page.locator('body').innerText();
      assert.ok(!text.includes('⟦'), `untranslated key on ${hash}: ${text.slice(text.indexOf('⟦') - 40, text.indexOf('⟦') + 60)}`);
      await shot(name);
    }
    await go('#/alerts/rules');
    await page.getByRole('button', { name: '新建规则' }).click();
    await page.getByRole('dialog', { name: '新建规则' }).waitFor();
    await shot('rule-editor-zh');
    await page.getByRole('dialog', { name: '新建规则' }).getByRole('button', { name: '取消' }).click();
    await page.getByTestId('lang-select').selectOption('en');
    assert.deepEqual(consoleErrors.filter((e) => !/WebSocket|Failed to load resource|net::/.test(e)), []);
  });
});
