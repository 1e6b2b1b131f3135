// Command lines as reported to the hub, where every viewer reads them: values that look like
// secrets are replaced before they leave the host (one process's enrollment token was stored in
// another host's process list that way). What is recognised, word by word of the joined argv:
//  - a value after a flag whose name says secret: `--token X`, `--token=X`, `-password X`,
//    `-Djavax.net.ssl.keyStorePassword=X`; names ending in file/path/dir/env name a place, not a secret
//  - `NAME=value` with a secret-like NAME: `GITHUB_TOKEN=…`, `AWS_SECRET_ACCESS_KEY=…`, `PGPASSWORD=…`,
//    `MYSQL_PWD=…`, libpq's `password=…`
//  - the password of `mysql -pX` (and its siblings) and `sshpass -p X`, the password half of `curl -u user:X`
//  - `Authorization: Bearer X` and similar header values
//  - credentials in URLs (`postgres://user:X@host`) and secret-named query parameters (`?token=X`)
//  - tokens recognisable by their shape: Tether's `tte_`/`tta_`/`tts_`, GitHub, GitLab, Slack, JWTs
// `-p` alone is left alone elsewhere: for most programs it is a port or a path.

export type CmdlineMode = 'full' | 'redacted' | 'none';
export const CMDLINE_MODES: readonly CmdlineMode[] = ['full', 'redacted', 'none'];

export const REDACTED = '[redacted]';

/** Words in a flag or variable name that make its value a secret wherever they appear. */
const SECRET_WORDS = /password|passwd|passphrase|secret|token|apikey|accesskey|privatekey|credential|signature/;
/** Short words that make a value a secret only as a whole part of the name (`SSH_KEY`, not `MONKEY`). */
const SECRET_PARTS = new Set(['key', 'pwd', 'pass', 'auth', 'pw', 'sig']);
/** Names of places rather than secrets: `--password-file /run/secrets/db` tells nothing. */
const PLACE_SUFFIX = /(file|path|dir|env|name|id|type|length|len|url)$/;
const NOT_SECRET = new Set(['pwd', 'oldpwd']);

/** Whether a flag or variable name (any case, any of - _ . as separators) names a secret. */
export function secretName(name: string): boolean {
  const lower = name.toLowerCase();
  if (NOT_SECRET.has(lower)) return false;
  const parts = lower.split(/[-_.]+/).filter(Boolean);
  if (!parts.length) return false;
  const joined = parts.join('');
  if (PLACE_SUFFIX.test(parts[parts.length - 1]!) && parts.length > 1) return false;
  if (SECRET_WORDS.test(joined)) return true;
  // camelCase parts too: keyStorePassword is caught above, apiKey here
  const camel = name.split(/[-_.]+|(?<=[a-z0-9])(?=[A-Z])/).map((p) => p.toLowerCase());
  return [...parts, ...camel].some((p) => SECRET_PARTS.has(p));
}

/** Programs whose `-pVALUE` (attached) is a password. */
const MYSQL_LIKE = /^(mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mysqlslap|mariadb|mariadb-dump|mariadb-admin)$/;
const HEADER_NAME = /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-auth-token|private-token|x-vault-token)$/i;
const AUTH_SCHEMES = /^(bearer|basic|token|digest|negotiate)$/i;

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*):[^\s@/?#]+@/gi;
const QUERY_SECRET = /([?&;]([^=&;\s#]+)=)([^&;\s#]+)/g;
const TOKEN_SHAPES = [
  /\bt(?:te|ta|ts)_[A-Za-z0-9_-]{8,}/g, // Tether enrollment, API and session tokens
  /\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g, // GitHub
  /\bglpat-[A-Za-z0-9_-]{16,}/g, // GitLab
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, // Slack
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, // JWT
];

/** Replaces what looks like a secret in one word, wherever it stands. */
function redactShapes(word: string): string {
  let w = word.replace(URL_USERINFO, `$1:${REDACTED}@`);
  if (w.includes('=') && /[?&;]/.test(w)) w = w.replace(QUERY_SECRET, (all, head: string, name: string) => (secretName(name) ? head + REDACTED : all));
  for (const re of TOKEN_SHAPES) w = w.replace(re, REDACTED);
  return w;
}

const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/**
 * A command line (argv joined with spaces, as /proc/PID/cmdline gives it with NULs turned into
 * spaces) with secret-looking values replaced by `[redacted]`. Whitespace is kept as it was.
 */
export function redactCommand(cmd: string): string {
  const pieces = cmd.split(/(\s+)/);
  const program = basename(pieces[0] ?? '');
  const mysqlLike = MYSQL_LIKE.test(program);
  const sshpass = program === 'sshpass';
  const curlLike = program === 'curl';
  /** what the next word is: a secret value, a header value that may start with a scheme, or a user:password */
  let next: 'secret' | 'header' | 'userpass' | undefined;
  for (let i = 0; i < pieces.length; i += 2) {
    const w = pieces[i]!;
    if (!w) continue;
    const pending = next;
    next = undefined;
    if (pending === 'header' && AUTH_SCHEMES.test(w)) {
      next = 'secret';
      continue;
    }
    if (pending === 'secret' || pending === 'header') {
      pieces[i] = REDACTED;
      continue;
    }
    if (pending === 'userpass' && !w.startsWith('-')) {
      const c = w.indexOf(':');
      pieces[i] = c >= 0 ? w.slice(0, c + 1) + REDACTED : w;
      continue;
    }
    pieces[i] = redactWord(w, (kind) => (next = kind), { mysqlLike, sshpass, curlLike });
  }
  return pieces.join('');
}

function redactWord(w: string, expect: (kind: 'secret' | 'header' | 'userpass') => void, p: { mysqlLike: boolean; sshpass: boolean; curlLike: boolean }): string {
  const header = /^([A-Za-z-]+):(.*)$/s.exec(w);
  if (header && HEADER_NAME.test(header[1]!)) {
    if (header[2] === '') expect('header');
    return header[2] === '' ? w : `${header[1]}:${REDACTED}`;
  }
  if ((p.mysqlLike || p.sshpass) && w.startsWith('-p')) {
    // mysql -pSECRET (attached: a bare -p prompts for it); sshpass -p SECRET or -pSECRET
    if (w.length > 2) return `-p${REDACTED}`;
    if (p.sshpass) expect('secret');
    return w;
  }
  if (w.startsWith('-')) {
    const m = /^(-{1,2})([^=\s]+)(?:=(.*))?$/s.exec(w);
    if (m) {
      const [, dashes, name, value] = m as unknown as [string, string, string, string | undefined];
      if (p.curlLike && (name === 'u' || name === 'user' || name === 'proxy-user')) {
        if (value !== undefined) return `${dashes}${name}=${value.includes(':') ? value.slice(0, value.indexOf(':') + 1) + REDACTED : value}`;
        expect('userpass');
        return w;
      }
      if (p.curlLike && (name === 'H' || name === 'header')) return w; // the header word itself follows
      // -Dname=value (Java properties) and --name=value
      const prop = dashes === '-' && name.startsWith('D') && value !== undefined ? name.slice(1) : name;
      if (secretName(prop)) {
        if (value !== undefined) return `${dashes}${name}=${REDACTED}`;
        expect('secret');
        return w;
      }
      return value !== undefined ? `${dashes}${name}=${redactShapes(value)}` : redactShapes(w);
    }
  }
  const assign = /^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$/s.exec(w);
  if (assign && secretName(assign[1]!)) return `${assign[1]}=${REDACTED}`;
  return redactShapes(w);
}

/** A command line as the agent's setting says to report it: whole, redacted, or the program alone. */
export function reportedCommand(cmd: string, mode: CmdlineMode): string {
  if (mode === 'full') return cmd;
  if (mode === 'none') return cmd.split(/\s/, 1)[0] ?? '';
  return redactCommand(cmd);
}
