/**
 * The hub's files at rest: the data directory must not be writable by anyone but its owner, and
 * what holds secrets is readable by the hub's user only, whatever the umask and however the
 * directory came to exist:
 *  - the SQLite database (sessions' CSRF tokens, sealed TOTP and channel secrets, hashes) is created
 *    0600 before SQLite opens it, so its WAL and shared-memory files, which SQLite gives the
 *    database's own mode, are 0600 too; existing ones are set to 0600 at every start;
 *  - `secret.key`, the key sealing secrets in the database (secret-box.ts), made on first start;
 *  - the TLS key, terminal recordings and script bundles (their directories 0700).
 *
 * A group- or world-writable data directory (or SQLite directory) stops the start: whoever else can
 * write there can swap the database or the key file, and no file mode helps against that.
 */
import { chmodSync, closeSync, constants as C, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { parseDbUrl, type DbHandle } from './db/database.js';
import { SECRET_KEY_BYTES, SecretBox } from './secret-box.js';

export const SECRET_KEY_FILE = 'secret.key';
const PRIVATE_FILE = 0o600;
const PRIVATE_DIR = 0o700;

export class DataDirError extends Error {}

function refuseShared(dir: string, what: string): void {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new DataDirError(`${what} ${dir} is not a directory`);
  const w = st.mode & 0o022;
  if (!w) return;
  const who = w === 0o022 ? 'its group and everyone' : w & 0o002 ? 'everyone' : 'its group';
  throw new DataDirError(
    `${what} ${dir} is writable by ${who} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): they could replace the database or the key file. Make it the hub's alone: chmod go-w ${dir} (or 700)`,
  );
}

/** Sets a file's mode to 0600 if it exists and is not already. */
function privateFile(path: string, log: Logger): void {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o7777;
  } catch {
    return;
  }
  if (mode === PRIVATE_FILE) return;
  chmodSync(path, PRIVATE_FILE);
  log.warn({ file: path, was: mode.toString(8).padStart(4, '0') }, 'file holding secrets was readable by others: set to 0600');
}

/** A directory of private files: the directory 0700, every regular file in it 0600. */
function privateTree(dir: string, log: Logger): void {
  if (!existsSync(dir)) return;
  if ((statSync(dir).mode & 0o7777) !== PRIVATE_DIR) chmodSync(dir, PRIVATE_DIR);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isFile()) privateFile(join(dir, e.name), log);
}

/** Creates an empty file 0600 (exactly, whatever the umask) unless it exists. */
function createPrivate(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, PRIVATE_FILE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    if ((fstatSync(fd).mode & 0o7777) !== PRIVATE_FILE) chmodSync(path, PRIVATE_FILE);
  } finally {
    closeSync(fd);
  }
}

/** The sealing key: read from `<data>/secret.key`, or made there (32 random bytes, hex) on first start. */
export function loadSecretKey(dataDir: string, log: Logger): SecretBox {
  const file = join(dataDir, SECRET_KEY_FILE);
  let fd: number | undefined;
  try {
    fd = openSync(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, PRIVATE_FILE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (fd !== undefined) {
    try {
      chmodSync(file, PRIVATE_FILE);
      writeSync(fd, randomBytes(SECRET_KEY_BYTES).toString('hex') + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    log.info({ file }, 'made the key that seals secrets in the database: back it up with the database, and give every hub sharing the database the same file');
  } else privateFile(file, log);
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new DataDirError(`${file} must hold ${SECRET_KEY_BYTES} bytes as 64 hex digits (it seals the secrets in the database; restore it from a backup)`);
  return new SecretBox(Buffer.from(text, 'hex'), file);
}

/**
 * Checks and prepares the data directory before the database is opened; returns the box that
 * seals secrets in it. Throws DataDirError with what to do when the directory is shared.
 */
export function prepareDataDir(o: { dataDir: string; db: string }, log: Logger): SecretBox {
  if (!existsSync(o.dataDir)) mkdirSync(o.dataDir, { recursive: true, mode: PRIVATE_DIR });
  refuseShared(o.dataDir, 'the data directory');
  const parsed = parseDbUrl(o.db, o.dataDir);
  if (parsed.kind === 'sqlite' && parsed.path !== ':memory:') {
    const path = parsed.path!;
    if (!existsSync(dirname(path))) mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIR });
    if (dirname(path) !== o.dataDir) refuseShared(dirname(path), 'the database directory');
    createPrivate(path);
    for (const f of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) privateFile(f, log);
  }
  privateFile(join(o.dataDir, 'tls', 'hub-key.pem'), log);
  privateFile(join(o.dataDir, 'initial-admin-password'), log);
  privateTree(join(o.dataDir, 'recordings'), log);
  privateTree(join(o.dataDir, 'bundles'), log);
  return loadSecretKey(o.dataDir, log);
}

/**
 * Runs each store's pass that seals plaintext secrets and checks sealed ones against the key (see
 * secret-box.ts). A key that does not match stops the start, with the database closed again.
 */
export async function sealStoredSecrets(db: DbHandle, stores: Record<string, { sealStoredSecrets(): Promise<number> }>, secrets: SecretBox, log: Logger): Promise<void> {
  try {
    const sealed: Record<string, number> = {};
    for (const [name, store] of Object.entries(stores)) sealed[name] = await store.sealStoredSecrets();
    log.info({ key: secrets.keyId, sealedNow: sealed }, 'secrets at rest are sealed');
  } catch (err) {
    await db.close();
    throw err;
  }
}
