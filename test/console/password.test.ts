/**
 * Changing one's password in the console (Profile) against a real hub: "also revoke my API
 * tokens" is checked by default and revokes them; unchecked, they stay. A user of its own, so the
 * admin's sessions (the test's API client) are not ended by the change.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TestHub, waitFor } from '@tether/testkit';

const CHROMIUM = process.env.TETHER_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const USER = 'carol';
const PASSWORDS = ['carol-first-password', 'carol-second-password', 'carol-third-password'];

describe('changing a password in the console', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;

  /** A new API token of carol's, made with a session of hers. */
  const carolToken = async (password: string, name: string): Promise<string> => {
    const login = await hub.api<{ token: string }>('POST', '/api/v1/auth/login', { username: USER, password }, false);
    const r = await fetch(hub.url + '/api/v1/api-tokens', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${login.token}` }, body: JSON.stringify({ name, scope: 'read', expiresInSec: 3600 }) });
    assert.ok(r.ok, await r.clone().text());
    return ((await r.json()) as { tokenInfo: { id: string } }).tokenInfo.id;
  };
  const revoked = async (id: string) => ((await hub.api('GET', '/api/v1/api-tokens?all=true')).tokens as { id: string; revokedAt: number | null }[]).find((x) => x.id === id)!.revokedAt !== null;
  const change = async (from: string, to: string) => {
    const form = page.locator('form', { has: page.getByRole('heading', { name: 'Password', exact: true }) });
    await form.getByLabel('Current password').fill(from);
    await form.getByLabel('New password').fill(to);
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByRole('status').waitFor();
    return form;
  };

  before(async () => {
    hub = await TestHub.start({ db: 'sqlite' });
    await hub.api('POST', '/api/v1/users', { username: USER, password: PASSWORDS[0], role: 'viewer' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-GB' })).newPage();
    await page.goto(hub.url + '/');
    await page.getByLabel('Username').fill(USER);
    await page.getByLabel('Password').fill(PASSWORDS[0]!);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    await page.evaluate(`location.hash = '#/profile'`);
    await page.getByRole('heading', { name: 'Password', exact: true }).waitFor();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await hub?.cleanup();
  });

  test('“also revoke my API tokens” is checked by default, and the change revokes them', async () => {
    const id = await carolToken(PASSWORDS[0]!, 'deploy');
    const box = page.getByLabel('Also revoke my API tokens');
    assert.equal(await box.isChecked(), true);
    const form = await change(PASSWORDS[0]!, PASSWORDS[1]!);
    assert.match(await form.getByRole('status').innerText(), /API tokens revoked/);
    await waitFor(() => revoked(id), 'the token revoked');
  });

  test('unchecked, the tokens stay', async () => {
    const id = await carolToken(PASSWORDS[1]!, 'backup');
    await page.getByLabel('Also revoke my API tokens').uncheck();
    await change(PASSWORDS[1]!, PASSWORDS[2]!);
    await hub.api('POST', '/api/v1/auth/login', { username: USER, password: PASSWORDS[2] }, false);
    assert.equal(await revoked(id), false);
  });
});
