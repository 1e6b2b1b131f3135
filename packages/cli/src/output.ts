/** How every command ends: a result on stdout (human or --json), or one line on stderr and a non-zero exit. */
import { ConfigError } from '@tether/protocol/lite';
import { ApiError } from './client.js';

export function fail(err: unknown): never {
  if (err instanceof ConfigError) process.stderr.write(`tether: ${err.message}\n`);
  else if (err instanceof ApiError) process.stderr.write(`tether: ${err.message} (${err.status} ${err.code})\n`);
  else process.stderr.write(`tether: ${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
}

export const out = (json: boolean, data: unknown, human: () => string) => process.stdout.write((json ? JSON.stringify(data, null, 2) : human()) + '\n');
