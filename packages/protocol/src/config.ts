/**
 * Configuration for every Tether program comes from four places, highest first:
 * command-line flags, environment variables, an optional TOML file, built-in defaults.
 * Each field is declared once with its names in all four and a parser that gives a clear error.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export interface Field<T> {
  /** key in the TOML file */
  toml: string;
  /** environment variable, if any */
  env?: string;
  default: T | (() => T);
  parse(raw: unknown): T;
}

type Out<S> = { [K in keyof S]: S[K] extends Field<infer T> ? T : never };

export function resolveConfig<S extends Record<string, Field<any>>>(
  spec: S,
  opts: { flags?: { [K in keyof S]?: unknown }; env?: NodeJS.ProcessEnv; file?: string },
): Out<S> {
  const problems: string[] = [];
  let fromFile: Record<string, unknown> = {};
  if (opts.file) {
    try {
      fromFile = parseToml(readFileSync(opts.file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([`config file ${opts.file}: ${(err as Error).message.split('\n')[0]}`]);
    }
    const known = new Set(Object.values(spec).map((f) => f.toml));
    for (const k of Object.keys(fromFile)) if (!known.has(k)) problems.push(`config file ${opts.file}: unknown key "${k}" (known: ${[...known].join(', ')})`);
  }
  const env = opts.env ?? {};
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(spec)) {
    const flag = opts.flags?.[name as keyof S];
    let raw: unknown;
    let from: string;
    if (flag !== undefined) {
      raw = flag;
      from = `flag --${name.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;
    } else if (f.env && env[f.env] !== undefined && env[f.env] !== '') {
      raw = env[f.env];
      from = `environment ${f.env}`;
    } else if (Object.prototype.hasOwnProperty.call(fromFile, f.toml)) {
      raw = fromFile[f.toml];
      from = `config key ${f.toml}`;
    } else {
      out[name] = typeof f.default === 'function' ? (f.default as () => unknown)() : f.default;
      continue;
    }
    try {
      out[name] = f.parse(raw);
    } catch (err) {
      problems.push(`${from}: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return out as Out<S>;
}

// Parsers ------------------------------------------------------------------------------------

export const str = (opts: { max?: number; pattern?: RegExp; what?: string } = {}) => (raw: unknown): string => {
  if (typeof raw !== 'string') throw new Error(`expected a string, got ${typeof raw}`);
  if (raw.length > (opts.max ?? 4096)) throw new Error(`longer than ${opts.max ?? 4096} characters`);
  if (opts.pattern && !opts.pattern.test(raw)) throw new Error(`expected ${opts.what ?? opts.pattern}, got ${JSON.stringify(raw.slice(0, 80))}`);
  return raw;
};

export const oneOf = <T extends string>(values: readonly T[]) => (raw: unknown): T => {
  if (typeof raw !== 'string' || !values.includes(raw as T)) throw new Error(`expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
};

export const bool = (raw: unknown): boolean => {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true' || raw === '1' || raw === 'yes') return true;
  if (raw === 'false' || raw === '0' || raw === 'no') return false;
  throw new Error(`expected true or false, got ${JSON.stringify(raw)}`);
};

/** Durations as seconds: 10, "10", "10s", "500ms", "5m", "2h", "7d". */
export function parseDurationSec(raw: unknown): number {
  if (typeof raw === 'number' && Number.isFinite(raw)) return raw;
  if (typeof raw !== 'string') throw new Error(`expected a duration, got ${typeof raw}`);
  const m = raw.trim().match(/^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/);
  if (!m) throw new Error(`expected a duration like 10s, 5m, 2h, got ${JSON.stringify(raw)}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return n * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[unit]!;
}

export const seconds = (min: number, max: number) => (raw: unknown): number => {
  const v = parseDurationSec(raw);
  if (v < min || v > max) throw new Error(`expected between ${min} s and ${max} s, got ${v} s`);
  return v;
};

export const int = (min: number, max: number) => (raw: unknown): number => {
  const v = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Error(`expected an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  return v;
};

export interface ListenAddr {
  host: string;
  port: number;
}
/** "host:port", "[::1]:port" or ":port". */
export function parseListen(raw: unknown): ListenAddr {
  if (typeof raw !== 'string') throw new Error('expected host:port');
  const m = raw.match(/^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`expected host:port (e.g. 127.0.0.1:8080), got ${JSON.stringify(raw)}`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export const httpUrl = (raw: unknown): string => {
  if (typeof raw !== 'string') throw new Error('expected a URL');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`expected an http(s) URL, got ${JSON.stringify(raw.slice(0, 80))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`expected http:// or https://, got ${u.protocol}`);
  return u.toString().replace(/\/$/, '');
};

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
