/**
 * Every page of the console fits the screen, on a phone (390×844) and a desktop (1440×900), in
 * English and in Chinese: the page never scrolls sideways (document.scrollingElement.scrollWidth ≤
 * innerWidth) and no element's right edge lies past the viewport (what an ancestor clips with
 * overflow hidden is off the screen and does not count; what an ancestor scrolls does). The pages
 * come from the console's own list (packages/web/src/router.ts: PAGES and HOST_TABS), so a page
 * added there without a visit here fails. Against a real hub and two real agents, one allowing
 * every manager, with enough data that every page has rows: a job, users, tokens, rules, a
 * channel, a silence, a firing alert, a recorded terminal session. Screenshots of every page at
 * phone width go to test-results/console/phone-*.png.
 */
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, REPO, TERMINAL_USER_TOML, TestAgent, TestHub, tempDir, waitFor } from '@tether/testkit';

const CHROMIUM = process.env.TETHER_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const SHOTS = join(REPO, 'test-results', 'console');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1440, height: 900 };

/** A quoted list from the console's router.ts (`export const NAME = [ '…', … ] as const`). */
function routerList(name: string): string[] {
  const src = readFileSync(join(REPO, 'packages/web/src/router.ts'), 'utf8');
  const m = new RegExp(`export const ${name} = \\[([^\\]]*)\\] as const`).exec(src);
  if (!m) throw new Error(`router.ts has no list ${name}`);
  return [...m[1]!.matchAll(/'([^']*)'/g)].map((x) => x[1]!);
}

/** Runs in the page: what is wider than the screen, described (empty when everything fits). */
const OVERFLOW = `(() => {
  const vw = innerWidth;
  const out = [];
  const se = document.scrollingElement;
  if (se.scrollWidth > vw) out.push('the page scrolls sideways: ' + se.scrollWidth + ' > ' + vw);
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') + (el.dataset.testid ? '[' + el.dataset.testid + ']' : '');
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= vw + 0.5) continue;
    let right = r.right;
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === 'hidden' || o === 'clip') right = Math.min(right, a.getBoundingClientRect().right);
    }
    if (right > vw + 0.5) {
      const path = [];
      for (let a = el; a && a !== document.body && path.length < 4; a = a.parentElement) path.unshift(name(a));
      out.push(path.join(' > ') + ' ends at ' + Math.round(right) + ' "' + (el.textContent || '').trim().slice(0, 40) + '"');
    }
  }
  return out.slice(0, 12);
})()`;

describe('the console fits phone and desktop screens', () => {
  let hub: TestHub;
  let full: TestAgent;
  let plain: TestAgent;
  let fullId = '';
  let plainId = '';
  let jobId = '';
  let sessionId = '';
  let browser: Browser;
  let page: Page;
  const roots = tempDir('tether-layout-files-');
  const errors: string[] = [];
  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const go = (hash: string) => page.evaluate(`location.hash = ${JSON.stringify(hash)}`);

  /** How to visit each page of router.ts's PAGES (a page missing here fails the first test). */
  const visits = (): Record<string, { hashes: string[]; ready: string }> => ({
    '/': { hashes: ['#/'], ready: '[role=row][data-host]' },
    '/exec': { hashes: ['#/exec'], ready: '.pick-list' },
    '/jobs': { hashes: ['#/jobs'], ready: '[data-testid=jobs-table]' },
    '/jobs/:id': { hashes: [`#/jobs/${jobId}`], ready: '[data-testid=task]' },
    '/hosts/:id': { hashes: [`#/hosts/${fullId}`, `#/hosts/${plainId}`], ready: 'figure.chart' },
    '/hosts/:id/files': { hashes: [`#/hosts/${fullId}/files`], ready: '[data-testid=files-table]' },
    '/hosts/:id/terminal': { hashes: [`#/hosts/${fullId}/terminal`], ready: '[data-testid=term-start]' },
    '/hosts/:id/:tab': { hashes: hostTabs.map((tab) => `#/hosts/${fullId}/${tab}`), ready: '[role=tabpanel]' },
    '/alerts': { hashes: ['#/alerts'], ready: '[data-testid=active-alerts]' },
    '/alerts/rules': { hashes: ['#/alerts/rules'], ready: '[data-testid=rules-table]' },
    '/alerts/channels': { hashes: ['#/alerts/channels'], ready: '[data-testid=channels-table]' },
    '/alerts/silences': { hashes: ['#/alerts/silences'], ready: '[data-testid=silences-table]' },
    '/enroll': { hashes: ['#/enroll'], ready: '[data-testid=enroll-tokens]' },
    '/audit': { hashes: ['#/audit'], ready: '[data-testid=audit-entries]' },
    '/terminals': { hashes: ['#/terminals'], ready: '[data-testid=sessions]' },
    '/terminals/:id': { hashes: [`#/terminals/${sessionId}`], ready: '[data-testid=replay] .xterm-rows' },
    '/users': { hashes: ['#/users'], ready: '[data-testid=users-table]' },
    '/profile': { hashes: ['#/profile'], ready: '[data-testid=api-tokens]' },
  });
  const pages = routerList('PAGES');
  const hostTabs = routerList('HOST_TABS');

  const settle = async (ready: string) => {
    await page.locator(ready).first().waitFor({ timeout: 15_000 });
    await waitFor(async () => (await page.locator('main .state.loading').count()) === 0, 'nothing left loading', 15_000);
    // two frames: what the last answers changed is laid out
    await page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
  };
  /** What does not fit on this page, as sentences (empty when all is well). */
  const misfits = async (where: string): Promise<string[]> => {
    const bad = ((await page.evaluate(OVERFLOW)) as string[]).map((b) => `${where}: ${b}`);
    const text = await page.locator('body').innerText();
    if (text.includes('⟦')) bad.push(`${where}: untranslated key: ${text.slice(text.indexOf('⟦') - 40, text.indexOf('⟦') + 60)}`);
    return bad;
  };
  const fits = async (where: string) => assert.deepEqual(await misfits(where), []);
  const setLang = async (lang: 'en' | 'zh') => {
    await page.evaluate(`localStorage.setItem('tether.lang', ${JSON.stringify(lang)})`);
    await page.reload();
    await waitFor(async () => (await page.getByTestId('lang').textContent().catch(() => '')) === lang, `the console in ${lang}`, 15_000);
  };

  before(async () => {
    hub = await TestHub.start({ db: 'sqlite' });
    writeFileSync(join(roots, 'a-file-with-a-rather-long-name-to-see-how-it-wraps-on-a-phone.txt'), 'hello\n');
    mkdirSync(join(roots, 'a-folder'));
    full = TestAgent.start(hub.url, {
      token: await hub.enrollToken(),
      capabilities: ['metrics', 'exec', 'files', 'process', 'power', 'cron', 'systemd', 'docker', 'terminal'],
      fileRoots: [roots],
      toml: TERMINAL_USER_TOML,
      env: { TETHER_COLLECTOR_INTERVALS: 'usage=1s,processes=2s,connections=3s' },
    });
    plain = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics'] });
    fullId = await full.waitConnected(15_000);
    plainId = await plain.waitConnected(15_000);
    await hub.api('PATCH', `/api/v1/hosts/${fullId}`, { labels: { env: 'production', role: 'web-frontend', zone: 'eu-central-1a' } });
    // Rows for every list: a job, a user, tokens, a channel, a silence, a rule that fires at once.
    jobId = (await hub.api('POST', '/api/v1/exec', { target: { hosts: [fullId] }, command: ['sh', '-c', 'echo a-line-of-output-long-enough-to-need-wrapping-on-a-phone-screen-0123456789'], mode: 'sync' })).job.id;
    await hub.api('POST', '/api/v1/users', { username: 'operator-with-a-long-name', password: 'a-password-long-enough', role: 'operator', hostSelector: 'env=production,role!=database' });
    await hub.api('POST', '/api/v1/api-tokens', { name: 'a-token-for-the-deploy-pipeline', scope: 'execute', hostSelector: 'env=production', expiresInSec: 86_400 });
    await hub.api('POST', '/api/v1/alerts/channels', { name: 'ops-webhook', type: 'webhook', config: { url: 'http://127.0.0.1:9/a/rather/long/webhook/path/that/goes/on/and/on' } });
    await hub.api('POST', '/api/v1/alerts/silences', { hostId: plainId, endsAt: Date.now() + 3_600_000, reason: 'maintenance window for the kernel upgrade on the plain host' });
    await hub.api('POST', '/api/v1/alerts/rules', { name: 'CPU above zero (layout test)', kind: 'metric', metric: 'cpu_percent|busy', op: '>=', threshold: 0, forSec: 0, severity: 'warning' });
    // A recorded terminal session for the sessions list and the player.
    const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/api/v1/hosts/${fullId}/terminal?cols=80&rows=24`, { headers: { authorization: `Bearer ${hub.token}` } });
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as { type: string };
        if (m.type === 'opened') ws.send(JSON.stringify({ type: 'input', data: 'echo layout-test; exit\r' }));
      });
      ws.on('close', () => resolve());
      ws.on('error', reject);
    });
    sessionId = (await hub.api('GET', '/api/v1/terminal/sessions')).sessions[0].id;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await (await browser.newContext({ viewport: DESKTOP, locale: 'en-GB' })).newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(hub.url + '/');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await waitFor(async () => (await hub.api('GET', '/api/v1/alerts')).alerts?.some((a: { state: string }) => a.state === 'firing') ?? false, 'an alert firing', 20_000);
  });

  afterEach(async (t) => {
    if ((t as unknown as { passed?: boolean }).passed === false) await shot('last-layout-' + t.name.replace(/\W+/g, '-').slice(0, 40)).catch(() => {});
  });

  after(async () => {
    await browser?.close().catch(() => {});
    for (const a of [full, plain]) {
      await a?.stop().catch(() => {});
      a?.cleanup();
    }
    await hub?.cleanup();
  });

  test('every page in the console’s route list has a visit here', () => {
    assert.ok(pages.length >= 15 && hostTabs.length >= 6, `read ${pages.length} pages and ${hostTabs.length} host tabs from router.ts`);
    assert.deepEqual(pages.filter((p) => !(p in visits())), [], 'pages without a visit in layout.test.ts');
  });

  for (const [size, vp] of [['phone', PHONE], ['desktop', DESKTOP]] as const)
    for (const lang of ['en', 'zh'] as const)
      test(`at ${vp.width}×${vp.height} (${size}) in ${lang}, no page is wider than the screen`, async () => {
        await page.setViewportSize(vp);
        await setLang(lang);
        // Every page is visited and what does not fit is collected, so one run names all of it.
        const problems: string[] = [];
        for (const p of pages)
          for (const hash of visits()[p]!.hashes) {
            const where = `${hash.replace(fullId, 'HOST').replace(plainId, 'PLAIN')} (${size}, ${lang})`;
            try {
              await go(hash);
              await settle(p === '/hosts/:id/:tab' ? `[role=tab][aria-selected=true]#tab-${hash.split('/').pop()}` : visits()[p]!.ready);
              problems.push(...(await misfits(where)));
            } catch (err) {
              problems.push(`${where}: ${(err as Error).message.split('\n')[0]}`);
            }
            if (size === 'phone') await shot(`phone-${lang}-${hash.replace(/^#\/?/, '').replace(fullId, 'host').replace(plainId, 'plain').replace(jobId, 'job').replace(sessionId, 'session').replace(/\W+/g, '-') || 'fleet'}`);
          }
        // Dialogs are part of pages too: the rule editor and adding a user.
        await go('#/alerts/rules');
        await page.locator('[data-testid=rules-table]').waitFor();
        await page.getByRole('button', { name: lang === 'en' ? 'New rule' : '新建规则' }).click();
        await page.getByRole('dialog').waitFor();
        problems.push(...(await misfits(`the rule editor (${size}, ${lang})`)));
        if (size === 'phone') await shot(`phone-${lang}-rule-editor`);
        await page.keyboard.press('Escape');
        await go('#/users');
        await page.locator('[data-testid=users-table]').waitFor();
        await page.getByRole('button', { name: lang === 'en' ? 'Add user' : '添加用户' }).click();
        await page.getByRole('dialog').waitFor();
        problems.push(...(await misfits(`adding a user (${size}, ${lang})`)));
        await page.keyboard.press('Escape');
        assert.deepEqual(problems, []);
      });

  test('on a phone the header is one line with a menu button, and the fleet shows each host’s CPU', async () => {
    await page.setViewportSize(PHONE);
    await setLang('en');
    await go('#/');
    await page.locator('[role=row][data-host]').first().waitFor();
    const header = (await page.locator('header.top').boundingBox())!;
    assert.ok(header.height <= 56, `the header is ${header.height} px high`);
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).isVisible(), false, 'the navigation is folded away');
    // CPU values on screen, in every row
    await waitFor(async () => !(await page.locator('[role=row][data-host] [data-testid=cpu]').allInnerTexts()).some((x) => x.includes('—')), 'CPU values', 15_000);
    for (const cpu of await page.locator('[role=row][data-host] [data-testid=cpu]').all()) {
      const b = (await cpu.boundingBox())!;
      assert.ok(b.width > 0 && b.x >= 0 && b.x + b.width <= PHONE.width, `a CPU cell on screen: ${JSON.stringify(b)}`);
    }
    // The menu opens, lists the pages and the account's controls, and closes when a page is picked.
    await page.getByTestId('menu-button').click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
    await page.locator('[data-testid=jobs-table]').waitFor();
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).isVisible(), false, 'the menu closed after picking a page');
    await page.getByTestId('menu-button').click();
    assert.ok(await page.getByRole('button', { name: 'Log out' }).isVisible());
    assert.ok(await page.getByTestId('lang-select').isVisible());
    await page.getByTestId('menu-button').click();
    await go('#/');
    // and the login page fits too
    await page.evaluate(`fetch('/api/v1/auth/logout', { method: 'POST', headers: { 'x-csrf-token': document.cookie.match(/tether_csrf=([^;]+)/)[1] } })`);
    await page.reload();
    await page.getByLabel('Password').waitFor();
    await fits('the login page (phone)');
    await shot('phone-en-login');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    assert.deepEqual(errors, []);
  });
});
