/**
 * A hub that stops answering without going away (frozen with SIGSTOP: its sockets stay open, the
 * kernel still accepts connections) in Chromium: every call the console makes ends after 15 s with
 * "the hub did not answer", a "hub not responding" banner shows (not the "offline" one, which is
 * for a closed socket), the login button comes back instead of spinning for good, and after
 * SIGCONT the banner goes by itself. A quiet page that makes no calls finds out through its live
 * socket, which it probes.
 */
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, REPO, TestHub, waitFor } from '@tether/testkit';

const CHROMIUM = process.env.TETHER_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const SHOTS = join(REPO, 'test-results', 'console');

describe('the console when the hub does not answer', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  let frozen = false;
  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`) });
  };
  const go = (hash: string) => page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  const freeze = () => {
    process.kill(hub.proc.pid, 'SIGSTOP');
    frozen = true;
  };
  const thaw = () => {
    if (frozen) process.kill(hub.proc.pid, 'SIGCONT');
    frozen = false;
  };
  const banner = () => page.getByTestId('hub-stalled-banner');

  before(async () => {
    hub = await TestHub.start({ db: 'sqlite' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-GB' })).newPage();
    await page.goto(hub.url + '/');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  });

  afterEach(async (t) => {
    thaw();
    if ((t as unknown as { passed?: boolean }).passed === false) await shot('last-stall-' + t.name.replace(/\W+/g, '-').slice(0, 40)).catch(() => {});
  });

  after(async () => {
    thaw();
    await browser?.close().catch(() => {});
    await hub?.cleanup();
  });

  test('a call to a frozen hub ends after 15 s with “not responding”, apart from “offline”; after SIGCONT the banner goes', async () => {
    await go('#/jobs');
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    freeze();
    const asked = Date.now();
    await go('#/users');
    await banner().waitFor({ timeout: 25_000 });
    const waited = Date.now() - asked;
    assert.ok(waited >= 14_000 && waited < 25_000, `the banner came after ${waited} ms`);
    // every list on the page says so (users, sessions, tokens)
    await page.getByRole('alert').filter({ hasText: 'The hub did not answer within 15 s.' }).first().waitFor();
    assert.match(await banner().innerText(), /not responding/);
    assert.equal(await page.getByTestId('offline-banner').count(), 0, 'the live socket is open: not "offline"');
    await shot('hub-stalled-en');
    thaw();
    await banner().waitFor({ state: 'detached', timeout: 15_000 });
    await page.getByRole('button', { name: 'Retry' }).first().click();
    await page.getByTestId('users-table').waitFor();
  });

  test('a page that asks nothing finds out through its live socket', async () => {
    await go('#/');
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    freeze();
    // quiet for 10 s, then a probe left unanswered for 15 s
    await banner().waitFor({ timeout: 40_000 });
    thaw();
    await banner().waitFor({ state: 'detached', timeout: 15_000 });
  });

  test('the login button never spins for good: a login the hub does not answer ends with the message, the button usable', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Password').waitFor();
    freeze();
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    const login = page.getByRole('button', { name: 'Log in' });
    await login.click();
    assert.equal(await login.isDisabled(), true, 'busy while it waits');
    await page.getByRole('alert').filter({ hasText: 'The hub did not answer within 15 s.' }).waitFor({ timeout: 25_000 });
    assert.equal(await login.isDisabled(), false, 'usable again');
    await banner().waitFor();
    await shot('login-stalled-en');
    thaw();
    await banner().waitFor({ state: 'detached', timeout: 15_000 });
    await login.click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
  });
});
