/** What the artifact tests (package-agent, package-hub) read in an unpacked artifact. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join, relative } from 'node:path';

export type Arch = 'x64' | 'arm64';
/** ELF e_machine of each architecture */
export const MACHINE: Record<Arch, number> = { x64: 0x3e, arm64: 0xb7 };

export const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Every file under dir, relative to it. */
export function walk(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name), base) : [relative(base, join(dir, e.name))]));
}

/** The ELF e_machine of a file (asserting it is ELF). */
export function elfMachine(path: string): number {
  const b = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  assert.equal(b.subarray(0, 4).toString('latin1'), '\x7fELF', `${path} is not ELF`);
  return b.readUInt16LE(18);
}
