/**
 * Secrets the hub must read back (TOTP secrets, alert channels' passwords and tokens) are kept in
 * the database sealed with AES-256-GCM under a key that is not in the database: `<data>/secret.key`
 * (0600, made on first start). A copy of the database alone — a backup, a dump, a replica — then
 * yields none of them. Each value is bound to where it belongs (table, column, row id) as GCM's
 * associated data, so a sealed value copied into another row does not open.
 *
 * A sealed value reads `enc:v1:KEYID:BASE64URL(iv ‖ tag ‖ ciphertext)`, KEYID the first 8 hex digits
 * of the key's SHA-256: a hub given another key says which one the database needs instead of
 * failing to decrypt. Values without the prefix are plaintext from before sealing; reads accept
 * them and each store seals what it finds at start.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const SECRET_KEY_BYTES = 32;

export class SecretKeyMismatch extends Error {}

export class SecretBox {
  readonly keyId: string;
  constructor(
    private readonly key: Buffer,
    /** where the key lives, for messages */
    readonly keyFile = 'secret.key',
  ) {
    if (key.length !== SECRET_KEY_BYTES) throw new Error(`a secret key is ${SECRET_KEY_BYTES} bytes, got ${key.length}`);
    this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  static isSealed(stored: string): boolean {
    return stored.startsWith(PREFIX);
  }

  /** `context` names where the value lives (`users.totp_secret:ID`): it must be the same to open it. */
  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `${PREFIX}${this.keyId}:${Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url')}`;
  }

  /** The plaintext of a sealed value, or the value itself when it was stored before sealing. */
  open(stored: string, context: string): string {
    if (!SecretBox.isSealed(stored)) return stored;
    const rest = stored.slice(PREFIX.length);
    const colon = rest.indexOf(':');
    const kid = rest.slice(0, colon);
    if (kid !== this.keyId) throw this.mismatch(kid);
    const raw = Buffer.from(rest.slice(colon + 1), 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new Error(`a sealed value at ${context} is cut short`);
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
    d.setAAD(Buffer.from(context, 'utf8'));
    d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
    } catch {
      throw new Error(`the sealed value at ${context} does not open with key ${this.keyId}: it was altered or moved from another row`);
    }
  }

  /** Throws when a stored value was sealed under another key (checked for every row at start). */
  check(stored: string): void {
    if (!SecretBox.isSealed(stored)) return;
    const rest = stored.slice(PREFIX.length);
    const kid = rest.slice(0, rest.indexOf(':'));
    if (kid !== this.keyId) throw this.mismatch(kid);
  }

  private mismatch(kid: string): SecretKeyMismatch {
    return new SecretKeyMismatch(
      `the database holds secrets sealed with key ${kid}, but ${this.keyFile} is key ${this.keyId}: every hub sharing a database needs the same key file (copy it from the hub that made it)`,
    );
  }
}
