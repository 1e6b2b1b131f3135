/**
 * The console's terminal (issue 10) end to end in Chromium: a real hub and a real agent that allows
 * terminals. Opens the terminal from the host page, types a command and reads its output off the
 * xterm screen, resizes the window and sees `stty size` follow, ends the session (ended state,
 * reconnect, close), replays the recording on the admin’s sessions page and sees the same text, and
 * once the step-up has lapsed is asked for it before a terminal opens.
 * Screenshots in both languages go to test-results/console/ (terminal-en.png, replay-zh.png…).
 */
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ADMIN_PASSWORD, REPO, TERMINAL_USER, TERMINAL_USER_TOML, TestAgent, TestHub, waitFor } from '@tether/testkit';

const CHROMIUM = process.env.TETHER_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
const SHOTS = join(REPO, 'test-results', 'console');
const MISSING = '⟦';

describe('console terminal in Chromium', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let hostId: string;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  const shot = async (name: string) => {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  };
  const go = (hash: string) => page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  const screen = async (box = 'terminal') => (await page.locator(`[data-testid=${box}] .xterm-rows`).innerText()).replace(/\u00a0/g, ' ');
  const waitScreen = (re: RegExp, what: string, box = 'terminal') => waitFor(async () => re.test(await screen(box)), what, 10_000);
  const type = async (line: string) => {
    await page.locator('[data-testid=terminal] .xterm').click();
    await page.keyboard.type(line);
    await page.keyboard.press('Enter');
  };
  const state = () => page.getByTestId('term-state').getAttribute('data-state');
  let prompted = 0;
  const waitOpen = (what: string) =>
    waitFor(async () => {
      const dialog = page.getByRole('dialog', { name: 'Confirm it is you' });
      if (await dialog.isVisible()) {
        prompted++;
        await dialog.getByLabel('Password').fill(ADMIN_PASSWORD);
        await dialog.getByRole('button', { name: 'Confirm' }).click();
        await dialog.waitFor({ state: 'hidden' });
      }
      return (await state()) === 'open';
    }, what, 15_000);
  const bothLanguages = async (name: string) => {
    await shot(`${name}-en`);
    await page.getByTestId('lang-select').selectOption('zh');
    await waitFor(async () => (await page.getByTestId('lang').innerText()) === 'zh', 'Chinese');
    const text = await page.locator('body').innerText();
    assert.ok(!text.includes(MISSING), `untranslated key on ${name}: ${text.slice(text.indexOf(MISSING) - 40, text.indexOf(MISSING) + 60)}`);
    await shot(`${name}-zh`);
    await page.getByTestId('lang-select').selectOption('en');
    await waitFor(async () => (await page.getByTestId('lang').innerText()) === 'en', 'English');
  };

  before(async () => {
    // a short step-up window, so the last test sees the console ask for it before opening
    hub = await TestHub.start({ db: 'sqlite', env: { TETHER_STEP_UP_WINDOW: '10' } });
    agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'terminal'], toml: TERMINAL_USER_TOML });
    hostId = await agent.waitConnected(15_000);
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium fonts-noto-cjk (npm test does this when run as root)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'en-GB' });
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: hub.url });
    page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(hub.url + '/');
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();
    errors.length = 0; // the 401 of the first visit, before logging in
  });

  afterEach(async (t) => {
    if ((t as unknown as { passed?: boolean }).passed === false) {
      if (errors.length) process.stderr.write(`browser errors:\n${errors.join('\n')}\n`);
      await shot('last-terminal-' + t.name.replace(/\W+/g, '-').slice(0, 40)).catch(() => {});
    }
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await agent?.stop().catch(() => {});
    agent?.cleanup();
    await hub?.cleanup();
  });

  const sessions = async () => ((await hub.api('GET', '/api/v1/terminal/sessions')).sessions as unknown[]).length;

  test('visiting a terminal opens nothing until an account is picked and confirmed; a command typed there shows its output', async () => {
    const before = await sessions();
    await go(`#/hosts/${hostId}`);
    await page.getByRole('link', { name: 'Terminal', exact: true }).click();
    const start = page.getByTestId('term-start');
    await start.waitFor();
    // the accounts the agent allows (terminal_users), and nothing opened by the visit
    assert.deepEqual(await start.getByLabel('Log in as').locator('option').allInnerTexts(), [TERMINAL_USER]);
    await page.reload();
    await start.waitFor();
    assert.equal(await sessions(), before, 'no session from visiting the page (twice)');
    assert.match(await start.innerText(), new RegExp(`opens a login shell on \\S+ as ${TERMINAL_USER}`));
    await bothLanguages('terminal-start');
    await start.getByRole('button', { name: `Open a shell as ${TERMINAL_USER}` }).click();
    await waitOpen('the terminal to open');
    assert.equal(await sessions(), before + 1);
    await type('echo hi-$((6*7))');
    await waitScreen(/^hi-42\s*$/m, 'hi-42 on the screen');
    // search finds it in the buffer
    await page.getByRole('searchbox', { name: 'Search the terminal' }).fill('hi-42');
    await page.getByRole('button', { name: 'Next' }).click();
    await bothLanguages('terminal');
  });

  test('resizing the window resizes the pty', async () => {
    const size = async () => (await page.getByTestId('term-size').innerText()).split('×').map(Number) as [number, number];
    const [cols, rows] = await size();
    await type('echo S=$(stty size)');
    await waitScreen(new RegExp(`^S=${rows} ${cols}\\s*$`, 'm'), `stty size ${rows} ${cols}`);
    await page.setViewportSize({ width: 1000, height: 700 });
    await waitFor(async () => (await size())[0] < cols && (await size())[1] < rows, 'the terminal to fit the smaller window');
    const [c2, r2] = await size();
    await type('clear; echo T=$(stty size)');
    await waitScreen(new RegExp(`^T=${r2} ${c2}\\s*$`, 'm'), `stty size ${r2} ${c2} after the resize`);
    await page.setViewportSize({ width: 1400, height: 900 });
  });

  test('ending the session says so and offers to reconnect; closing ends it too', async () => {
    await type('exit');
    await page.getByTestId('term-ended').filter({ hasText: 'Session ended:' }).waitFor({ timeout: 10_000 });
    assert.equal(await state(), 'ended');
    await shot('terminal-ended-en');
    await page.getByTestId('term-ended').getByRole('button', { name: 'Reconnect' }).click();
    await waitOpen('the terminal to reopen');
    await type('echo again-$((1+1))');
    await waitScreen(/^again-2\s*$/m, 'output after reconnecting');
    await page.getByRole('button', { name: 'Close session' }).click();
    await page.getByTestId('term-ended').waitFor({ timeout: 10_000 });
    assert.equal(await state(), 'ended');
  });

  test('the admin lists the sessions (why each ended, in either language) and replays the recording with the same text', async () => {
    await go('#/terminals');
    const rows = page.locator('[data-testid=sessions] tr[data-session]');
    await waitFor(async () => (await rows.count()) === 2 && !(await page.getByTestId('sessions').innerText()).includes('open'), 'two ended sessions');
    const reasons = async () => (await rows.evaluateAll((trs) => trs.map((tr) => ((tr.children[5] as unknown as { innerText: string }).innerText).trim()))).sort();
    assert.deepEqual(await reasons(), ['the browser closed the terminal', 'the shell exited']);
    await page.getByTestId('lang-select').selectOption('zh');
    await waitFor(async () => (await reasons()).join() === ['shell 已退出', '浏览器关闭了终端'].sort().join(), 'the end reasons in Chinese');
    await page.getByTestId('lang-select').selectOption('en');
    await bothLanguages('terminals');
    // newest first: the first session is the last row
    await rows.last().getByRole('link', { name: 'Replay' }).click();
    await page.getByTestId('replay').locator('.xterm-rows').waitFor();
    await page.getByRole('radio', { name: '2×' }).check();
    await waitFor(async () => (await page.getByTestId('replay-pos').getAttribute('data-ended')) === 'true', 'the replay to reach the end', 30_000);
    // the recording ends after `exit`; the command's output was on screen before that
    await page.getByTestId('seek').fill('0');
    await waitFor(async () => !(await screen('replay')).includes('hi-42'), 'an empty screen at the start');
    const max = Number(await page.getByTestId('seek').getAttribute('max'));
    let found = false;
    for (let k = 1; k <= 20 && !found; k++) {
      await page.getByTestId('seek').fill(String((max * k) / 20));
      found = /^hi-42\s*$/m.test(await screen('replay'));
    }
    assert.ok(found, 'hi-42 appears on the replayed screen while seeking');
    await bothLanguages('replay');
    assert.deepEqual(errors.filter((e) => !/WebSocket/.test(e)), []);
  });

  test('once the step-up has lapsed, the console asks for it before opening a terminal', async () => {
    const until = async () => ((await page.evaluate(() => fetch('/api/v1/auth/me').then((r) => r.json()))) as { auth: { stepUpUntil: number | null } }).auth.stepUpUntil;
    await waitFor(async () => ((await until()) ?? 0) < Date.now(), 'the step-up to lapse', 15_000);
    const before = prompted;
    await go(`#/hosts/${hostId}/terminal`);
    await page.getByTestId('term-start').getByRole('button', { name: /^Open a shell as / }).click();
    await page.getByRole('dialog', { name: 'Confirm it is you' }).waitFor({ timeout: 10_000 });
    await waitOpen('the terminal to open after the step-up');
    assert.equal(prompted, before + 1);
    await type('echo up-$((2*3))');
    await waitScreen(/^up-6\s*$/m, 'output after the step-up');
  });

  test('on a phone a key bar gives Ctrl, Esc, Tab and the arrows', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await go('#/');
    await go(`#/hosts/${hostId}/terminal`);
    await page.getByTestId('term-start').getByRole('button', { name: /^Open a shell as / }).click();
    await waitOpen('the terminal to open on a phone');
    const bar = page.getByTestId('keybar');
    assert.ok(await bar.isVisible());
    // Ctrl from the bar, then c on the keyboard: an interrupt
    await type('sleep 30; echo not-interrupted');
    await bar.getByRole('button', { name: 'Ctrl' }).click();
    assert.equal(await bar.getByRole('button', { name: 'Ctrl' }).getAttribute('aria-pressed'), 'true');
    await page.keyboard.type('c');
    await waitScreen(/\^C/, 'the interrupt echoed');
    assert.equal(await bar.getByRole('button', { name: 'Ctrl' }).getAttribute('aria-pressed'), 'false', 'Ctrl holds for one key');
    // the left arrow moves the cursor: X lands between a and b
    await page.locator('[data-testid=terminal] .xterm').click();
    await page.keyboard.type('echo "ab"');
    for (let k = 0; k < 2; k++) await bar.getByRole('button', { name: 'Left' }).click();
    await page.keyboard.type('X');
    await page.keyboard.press('Enter');
    await waitScreen(/^aXb\s*$/m, 'aXb from the arrow key');
    // Tab completes
    await page.keyboard.type('ech');
    await bar.getByRole('button', { name: 'Tab' }).click();
    await page.keyboard.type(' tab-$((40+2))');
    await page.keyboard.press('Enter');
    await waitScreen(/^tab-42\s*$/m, 'a command completed with Tab');
    assert.ok(!/^not-interrupted\s*$/m.test(await screen()), 'the sleep was interrupted, and what followed it did not run');
    await shot('terminal-phone-en');
    await page.setViewportSize({ width: 1400, height: 900 });
  });
});
