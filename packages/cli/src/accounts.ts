/**
 * Accounts, security and audit commands: whoami, stepup, passwd, user, session, logins, 2fa,
 * apitoken, audit. (`tether token` is enrollment tokens.)
 *
 * Secrets never come from arguments (other users can read them): passwords from TETHER_PASSWORD /
 * TETHER_NEW_PASSWORD or a prompt, one-time codes from --code, TETHER_TOTP or a prompt.
 */
import { Option, type Command } from 'commander';
import { parseDurationSec, parseSelector } from '@tether/protocol/lite';
import { ApiError, Client, setStepUpHandler } from './client.js';
import { ago, table } from './table.js';

/** Reads one line from the terminal without echo, or all of standard input when it is not a terminal. */
export async function promptSecret(label: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write(label);
  process.stdin.setRawMode(true);
  process.stdin.resume();
  return new Promise((resolve) => {
    let s = '';
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          process.stdin.setRawMode(false);
          process.stdin.off('data', onData);
          process.stdin.pause();
          process.stderr.write('\n');
          return resolve(s);
        }
        if (ch === '\u0003') process.exit(130);
        if (ch === '\u007f') s = s.slice(0, -1);
        else s += ch;
      }
    };
    process.stdin.on('data', onData);
  });
}

const canPrompt = () => Boolean(process.stdin.isTTY);

/** Logs in; with 2FA on, asks for the one-time code (or takes --code / TETHER_TOTP). */
export async function loginWithCode(c: Client, username: string, password: string, code?: string): Promise<{ token: string; user: { username: string } }> {
  const body = { username, password };
  try {
    return await c.call('POST', '/api/v1/auth/login', { ...body, ...(code ? { code } : {}) });
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'totp_required') throw err;
    const otp = process.env.TETHER_TOTP || (canPrompt() ? await promptSecret('One-time code: ') : '');
    if (!otp) throw new Error('two-factor authentication is on: give --code or TETHER_TOTP');
    return c.call('POST', '/api/v1/auth/login', { ...body, code: otp.trim() });
  }
}

/**
 * The step-up every command gets when the hub answers step_up_required: the one-time code when
 * 2FA is on, else the password; from TETHER_TOTP / TETHER_PASSWORD, else a prompt on a terminal.
 */
export async function stepUp(c: Client, code?: string): Promise<number> {
  const me = await c.call<{ totpEnabled: boolean; auth: { kind: string } }>('GET', '/api/v1/auth/me');
  if (me.auth.kind !== 'session') throw new Error('API tokens cannot step up: this needs a token with scope execute, or `tether login`');
  let body: { code: string } | { password: string };
  if (me.totpEnabled) {
    const otp = code || process.env.TETHER_TOTP || (canPrompt() ? await promptSecret('This needs a fresh confirmation. One-time code: ') : '');
    if (!otp) throw new Error('this needs a step-up: give a one-time code in TETHER_TOTP, or run `tether stepup` on a terminal');
    body = { code: otp.trim() };
  } else {
    const pw = process.env.TETHER_PASSWORD || (canPrompt() ? await promptSecret('This needs a fresh confirmation. Password: ') : '');
    if (!pw) throw new Error('this needs a step-up: set TETHER_PASSWORD, or run `tether stepup` on a terminal');
    body = { password: pw };
  }
  const r = await c.call<{ stepUpUntil: number }>('POST', '/api/v1/auth/step-up', body);
  return r.stepUpUntil;
}

async function newPassword(what: string): Promise<string> {
  if (process.env.TETHER_NEW_PASSWORD) return process.env.TETHER_NEW_PASSWORD;
  if (!canPrompt()) return promptSecret('');
  const a = await promptSecret(`${what}: `);
  const b = await promptSecret('Again: ');
  if (a !== b) throw new Error('the two entries differ');
  return a;
}

interface UserView {
  id: string;
  username: string;
  role: string;
  hostSelector: string | null;
  disabled: boolean;
  totpEnabled: boolean;
  locked: boolean;
  lockedUntil: number | null;
  failedLogins: number;
}
async function userId(c: Client, name: string): Promise<string> {
  const { users } = await c.call<{ users: UserView[] }>('GET', '/api/v1/users');
  const u = users.find((x) => x.username === name || x.id === name);
  if (!u) throw new Error(`no user ${name}`);
  return u.id;
}

const out = (json: boolean, data: unknown, human: () => string) => process.stdout.write((json ? JSON.stringify(data, null, 2) : human()) + '\n');
const when = (t: number | null) => (t ? new Date(t).toISOString().replace(/\.\d+Z$/, 'Z') : '-');
const enc = encodeURIComponent;

function timeQuery(o: { since?: string; until?: string }): URLSearchParams {
  const qs = new URLSearchParams();
  if (o.since) qs.set('from', /^\d+[smhd]$/.test(o.since) ? `-${o.since}` : o.since);
  if (o.until) qs.set('to', /^\d+[smhd]$/.test(o.until) ? `-${o.until}` : o.until);
  return qs;
}

export function registerAccountCommands(program: Command, fail: (err: unknown) => never): void {
  setStepUpHandler(async (c) => {
    await stepUp(c);
  });
  const run =
    <A extends unknown[]>(fn: (...a: A) => Promise<void>) =>
    async (...a: A) => {
      try {
        await fn(...a);
      } catch (err) {
        fail(err);
      }
    };

  program
    .command('whoami')
    .description('who the saved session or API token belongs to')
    .option('--json', 'machine-readable output')
    .action(
      run(async (o: { json?: boolean }) => {
        const me = await Client.fromState().call<{ username: string; role: string; hostSelector: string | null; totpEnabled: boolean; auth: { kind: string; scope: string; stepUpUntil: number | null } }>('GET', '/api/v1/auth/me');
        out(Boolean(o.json), me, () => `${me.username} (${me.role}${me.hostSelector ? `, hosts ${me.hostSelector}` : ''}) via ${me.auth.kind}${me.auth.kind === 'token' ? ` scope ${me.auth.scope}` : ''}; 2FA ${me.totpEnabled ? 'on' : 'off'}${me.auth.stepUpUntil && me.auth.stepUpUntil > Date.now() ? `; step-up until ${when(me.auth.stepUpUntil)}` : ''}`);
      }),
    );

  program
    .command('stepup')
    .description('confirm it is you (password, or one-time code with 2FA) so that dangerous commands work for the step-up window; commands also ask by themselves')
    .option('--code <code>', 'one-time code (or TETHER_TOTP)')
    .action(
      run(async (o: { code?: string }) => {
        const until = await stepUp(Client.fromState(), o.code);
        process.stderr.write(`confirmed until ${new Date(until).toLocaleTimeString()}\n`);
      }),
    );

  program
    .command('passwd')
    .description('change your password (current from TETHER_PASSWORD or a prompt, new from TETHER_NEW_PASSWORD or a prompt); your other sessions end')
    .option('--revoke-tokens', 'also revoke all your API tokens (say, when the password may have leaked with them)')
    .action(
      run(async (o: { revokeTokens?: boolean }) => {
        const current = process.env.TETHER_PASSWORD || (await promptSecret('Current password: '));
        const next = await newPassword('New password');
        const r = await Client.fromState().call<{ revokedApiTokens?: number }>('POST', '/api/v1/auth/password', { currentPassword: current, newPassword: next, ...(o.revokeTokens ? { revokeApiTokens: true } : {}) });
        process.stderr.write(`password changed; your other sessions ended${o.revokeTokens ? `; ${r.revokedApiTokens ?? 0} API token(s) revoked` : ''}\n`);
      }),
    );

  // --- users -----------------------------------------------------------------------------------
  const user = program.command('user').description('users (admin)');
  user
    .command('ls')
    .option('--json', 'machine-readable output')
    .action(
      run(async (o: { json?: boolean }) => {
        const r = await Client.fromState().call<{ users: UserView[] }>('GET', '/api/v1/users');
        out(Boolean(o.json), r, () =>
          table(
            ['NAME', 'ROLE', 'HOSTS', '2FA', 'STATE'],
            r.users.map((u) => [u.username, u.role, u.hostSelector ?? 'all', u.totpEnabled ? 'on' : 'off', u.disabled ? 'disabled' : u.locked ? `locked until ${when(u.lockedUntil)}` : 'active']),
          ),
        );
      }),
    );
  user
    .command('add <name>')
    .description('create a user (password from TETHER_NEW_PASSWORD or a prompt)')
    .addOption(new Option('--role <role>', 'role').choices(['admin', 'operator', 'viewer']).makeOptionMandatory())
    .option('--hosts <selector>', 'limit the user to hosts matching this label selector, e.g. env=staging')
    .action(
      run(async (name: string, o: { role: string; hosts?: string }) => {
        if (o.hosts) parseSelector(o.hosts);
        const password = await newPassword(`Password for ${name}`);
        await Client.fromState().call('POST', '/api/v1/users', { username: name, password, role: o.role, ...(o.hosts ? { hostSelector: o.hosts } : {}) });
      }),
    );
  user
    .command('set <name>')
    .description('change role, host limit, or disable/enable (disabling ends their sessions and tokens at once)')
    .addOption(new Option('--role <role>', 'role').choices(['admin', 'operator', 'viewer']))
    .option('--hosts <selector>', 'limit to hosts matching this label selector')
    .option('--all-hosts', 'remove the host limit')
    .option('--disable', 'disable the account')
    .option('--enable', 'enable the account')
    .action(
      run(async (name: string, o: { role?: string; hosts?: string; allHosts?: boolean; disable?: boolean; enable?: boolean }) => {
        const c = Client.fromState();
        const body = { ...(o.role ? { role: o.role } : {}), ...(o.hosts ? { hostSelector: o.hosts } : o.allHosts ? { hostSelector: null } : {}), ...(o.disable ? { disabled: true } : o.enable ? { disabled: false } : {}) };
        await c.call('PATCH', `/api/v1/users/${enc(await userId(c, name))}`, body);
      }),
    );
  user.command('rm <name>').description('delete a user with their sessions and API tokens').action(
    run(async (name: string) => {
      const c = Client.fromState();
      await c.call('DELETE', `/api/v1/users/${enc(await userId(c, name))}`);
    }),
  );
  user
    .command('reset-password <name>')
    .description('set a new password (TETHER_NEW_PASSWORD or a prompt); ends their sessions and lifts a lockout')
    .action(
      run(async (name: string) => {
        const c = Client.fromState();
        const id = await userId(c, name);
        await c.call('POST', `/api/v1/users/${enc(id)}/password`, { password: await newPassword(`New password for ${name}`) });
      }),
    );
  user.command('unlock <name>').description('lift a lockout after failed logins').action(
    run(async (name: string) => {
      const c = Client.fromState();
      await c.call('POST', `/api/v1/users/${enc(await userId(c, name))}/unlock`);
    }),
  );
  user.command('reset-2fa <name>').description("turn a user's TOTP off (lost device)").action(
    run(async (name: string) => {
      const c = Client.fromState();
      await c.call('DELETE', `/api/v1/users/${enc(await userId(c, name))}/totp`);
    }),
  );

  // --- sessions and logins ---------------------------------------------------------------------
  const session = program.command('session').description('login sessions');
  session
    .command('ls')
    .option('--all', "everyone's (admin)")
    .option('--json', 'machine-readable output')
    .action(
      run(async (o: { all?: boolean; json?: boolean }) => {
        const r = await Client.fromState().call<{ sessions: { id: string; username: string; createdAt: number; lastUsedAt: number; ip: string; userAgent: string; current: boolean }[] }>('GET', `/api/v1/auth/sessions${o.all ? '?all=true' : ''}`);
        out(Boolean(o.json), r, () => table(['ID', 'USER', 'SINCE', 'LAST USED', 'FROM', 'CLIENT'], r.sessions.map((s) => [s.id + (s.current ? ' *' : ''), s.username, when(s.createdAt), ago(s.lastUsedAt), s.ip, s.userAgent.slice(0, 40)])));
      }),
    );
  session.command('revoke <id>').description('end a session at once (open live connections close too)').action(
    run(async (id: string) => {
      await Client.fromState().call('DELETE', `/api/v1/auth/sessions/${enc(id)}`);
    }),
  );
  program
    .command('logins')
    .description('login and step-up history')
    .option('--user <name>', "one user's (admin)")
    .option('--all', "everyone's (admin)")
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'machine-readable output')
    .action(
      run(async (o: { user?: string; all?: boolean; limit: string; json?: boolean }) => {
        const qs = new URLSearchParams({ limit: o.limit, ...(o.user ? { user: o.user } : {}), ...(o.all ? { all: 'true' } : {}) });
        const r = await Client.fromState().call<{ logins: { ts: number; kind: string; username: string; ip: string; userAgent: string; outcome: string }[] }>('GET', `/api/v1/auth/logins?${qs}`);
        out(Boolean(o.json), r, () => table(['TIME', 'USER', 'WHAT', 'OUTCOME', 'FROM', 'CLIENT'], r.logins.map((l) => [when(l.ts), l.username, l.kind, l.outcome, l.ip, l.userAgent.slice(0, 40)])));
      }),
    );

  // --- 2FA -------------------------------------------------------------------------------------
  const tfa = program.command('2fa').description('two-factor authentication (TOTP) for your account');
  tfa
    .command('enroll')
    .description('show a QR code for an authenticator app, then turn 2FA on with a code from it; prints recovery codes once')
    .option('--code <code>', 'confirm with this code instead of asking (after a first run with --json)')
    .option('--json', 'print the secret and otpauth URI as JSON and stop (confirm with `tether 2fa confirm CODE`)')
    .action(
      run(async (o: { code?: string; json?: boolean }) => {
        const c = Client.fromState();
        const e = await c.call<{ secret: string; uri: string; qrText: string }>('POST', '/api/v1/auth/totp');
        if (o.json) {
          out(true, { secret: e.secret, uri: e.uri }, () => '');
          return;
        }
        process.stdout.write(`${e.qrText}\nScan this with an authenticator app, or enter the secret ${e.secret}\n(${e.uri})\n\n`);
        const code = o.code || (await promptSecret('Code from the app: '));
        await confirm(c, code);
      }),
    );
  const confirm = async (c: Client, code: string) => {
    const r = await c.call<{ recoveryCodes: string[] }>('POST', '/api/v1/auth/totp/confirm', { code: code.trim() });
    process.stdout.write(`2FA is on. Recovery codes (each works once; shown only now):\n\n  ${r.recoveryCodes.join('\n  ')}\n`);
  };
  tfa.command('confirm <code>').description('turn 2FA on with a code from the app (after `tether 2fa enroll --json`)').action(
    run(async (code: string) => {
      await confirm(Client.fromState(), code);
    }),
  );
  tfa.command('disable').description('turn your 2FA off').action(
    run(async () => {
      await Client.fromState().call('DELETE', '/api/v1/auth/totp');
    }),
  );

  // --- API tokens ------------------------------------------------------------------------------
  const apitoken = program.command('apitoken').description('API tokens for automation (use with TETHER_HUB + TETHER_API_TOKEN)');
  apitoken
    .command('create <name>')
    .description('create a token for yourself, shown once')
    .addOption(new Option('--scope <scope>', 'read < write < execute (each includes the ones before)').choices(['read', 'write', 'execute']).makeOptionMandatory())
    .option('-s, --hosts <selector>', 'limit the token to hosts matching this label selector')
    .option('--expires <duration>', 'lifetime, e.g. 30d', '90d')
    .option('--json', 'machine-readable output')
    .action(
      run(async (name: string, o: { scope: string; hosts?: string; expires: string; json?: boolean }) => {
        if (o.hosts) parseSelector(o.hosts);
        const c = Client.fromState();
        const r = await c.call<{ token: string; tokenInfo: { id: string; expiresAt: number } }>('POST', '/api/v1/api-tokens', { name, scope: o.scope, expiresInSec: Math.round(parseDurationSec(o.expires)), ...(o.hosts ? { hostSelector: o.hosts } : {}) });
        out(Boolean(o.json), r, () => `${r.token}\n\nUse it as: TETHER_HUB=${c.hub} TETHER_API_TOKEN=${r.token} tether …\nor the header Authorization: Bearer ${r.token}\nExpires ${when(r.tokenInfo.expiresAt)}; shown only once.`);
      }),
    );
  apitoken
    .command('ls')
    .option('--all', "everyone's (admin)")
    .option('--json', 'machine-readable output')
    .action(
      run(async (o: { all?: boolean; json?: boolean }) => {
        const r = await Client.fromState().call<{ tokens: { id: string; username: string; name: string; scope: string; hostSelector: string | null; expiresAt: number; lastUsedAt: number | null; revokedAt: number | null }[] }>('GET', `/api/v1/api-tokens${o.all ? '?all=true' : ''}`);
        out(Boolean(o.json), r, () =>
          table(
            ['ID', 'USER', 'NAME', 'SCOPE', 'HOSTS', 'EXPIRES', 'LAST USED', 'STATE'],
            r.tokens.map((t) => [t.id, t.username, t.name, t.scope, t.hostSelector ?? 'all', when(t.expiresAt), t.lastUsedAt ? ago(t.lastUsedAt) : 'never', t.revokedAt ? 'revoked' : t.expiresAt < Date.now() ? 'expired' : 'active']),
          ),
        );
      }),
    );
  apitoken.command('revoke <id>').description('revoke at once').action(
    run(async (id: string) => {
      await Client.fromState().call('DELETE', `/api/v1/api-tokens/${enc(id)}`);
    }),
  );

  // --- audit -----------------------------------------------------------------------------------
  const audit = program.command('audit').description('the tamper-evident audit log (admin)');
  const filters = (c: Command) =>
    c
      .option('--actor <name>', 'who')
      .option('--host <id>', 'which host')
      .option('--action <action>', 'exact, or a prefix ending in *, e.g. "POST /api/v1/users*"')
      .option('--since <time>', 'e.g. 24h, 2026-01-01T00:00Z, epoch ms')
      .option('--until <time>', 'e.g. 1h, ISO 8601, epoch ms');
  const filterQs = (o: { actor?: string; host?: string; action?: string; since?: string; until?: string }) => {
    const qs = timeQuery(o);
    for (const k of ['actor', 'host', 'action'] as const) if (o[k]) qs.set(k, o[k]!);
    return qs;
  };
  filters(audit.command('ls').description('entries, newest first'))
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'machine-readable output')
    .action(
      run(async (o: { actor?: string; host?: string; action?: string; since?: string; until?: string; limit: string; json?: boolean }) => {
        const qs = filterQs(o);
        qs.set('limit', o.limit);
        type Subject = { type: string; id: string; name?: string; role?: string };
        const r = await Client.fromState().call<{ entries: { seq: number; ts: number; actor: string | null; authMethod: string; ip: string | null; action: string; targets: string[]; subjects?: Subject[]; outcome: string; status: number | null }[] }>('GET', `/api/v1/audit?${qs}`);
        // What it touched by name (`host web-1, path /etc/hosts`), then what it made (`→ job j_…`).
        const touched = (e: { targets: string[]; subjects?: Subject[] }) => {
          if (!e.subjects) return e.targets.join(',') || '-';
          const say = (x: Subject) => `${x.type} ${x.name ?? x.id}`;
          const made = e.subjects.filter((x) => x.role === 'result').map(say);
          return [e.subjects.filter((x) => x.role !== 'result').map(say).join(', '), made.length ? `→ ${made.join(', ')}` : ''].filter(Boolean).join(' ') || '-';
        };
        out(Boolean(o.json), r, () => table(['SEQ', 'TIME', 'ACTOR', 'VIA', 'FROM', 'ACTION', 'TOUCHED', 'OUTCOME'], r.entries.map((e) => [String(e.seq), when(e.ts), e.actor ?? '-', e.authMethod, e.ip ?? '-', e.action, touched(e), `${e.outcome}${e.status ? ` ${e.status}` : ''}`])));
      }),
    );
  audit
    .command('verify')
    .description('check the hash chain; exits 1 and lists every altered or deleted entry')
    .option('--json', 'machine-readable output')
    .action(
      run(async (o: { json?: boolean }) => {
        const r = await Client.fromState().call<{ ok: boolean; entries: number; problems: { seq: number; problem: string }[] }>('GET', '/api/v1/audit/verify');
        out(Boolean(o.json), r, () => (r.ok ? `audit log intact: ${r.entries} entries` : `AUDIT LOG TAMPERED (${r.problems.length} problem(s) in ${r.entries} entries):\n` + r.problems.map((p) => `  #${p.seq}: ${p.problem}`).join('\n')));
        if (!r.ok) process.exit(1);
      }),
    );
  filters(audit.command('export').description('the log as JSON lines on standard output, oldest first')).action(
    run(async (o: { actor?: string; host?: string; action?: string; since?: string; until?: string }) => {
      const res = await Client.fromState().raw('GET', `/api/v1/audit/export?${filterQs(o)}`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
    }),
  );
}
