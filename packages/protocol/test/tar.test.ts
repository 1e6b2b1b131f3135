import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TarError, listTar, parseManifest, safeMemberPath } from '../src/tar.js';

/** A ustar header + body, built by hand so that hostile archives can be made. */
function member(name: string, body: string, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(Buffer.byteLength(body).toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  h.write('00000000000\0', 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type, 156, 'ascii');
  h.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  const data = Buffer.alloc(Math.ceil(Buffer.byteLength(body) / 512) * 512);
  data.write(body, 'utf8');
  return Buffer.concat([h, data]);
}
const archive = (...m: Buffer[]) => Buffer.concat([...m, Buffer.alloc(1024)]);
const reader = (b: Buffer) => async (pos: number, len: number) => b.subarray(pos, pos + len);

test('lists files and directories of an archive made by GNU tar, long names included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-tar-'));
  try {
    const src = join(dir, 'src');
    const deep = join(src, 'a'.repeat(60), 'b'.repeat(60));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(src, 'manifest.json'), '{"entry":["./run.sh"]}');
    writeFileSync(join(deep, 'x.txt'), 'hello');
    execFileSync('tar', ['-cf', join(dir, 'b.tar'), '-C', src, '.']);
    const buf = readFileSync(join(dir, 'b.tar'));
    const entries = await listTar(reader(buf), buf.length);
    const files = entries.filter((e) => e.type === 'file');
    assert.deepEqual(files.map((e) => e.path).sort(), [`${'a'.repeat(60)}/${'b'.repeat(60)}/x.txt`, 'manifest.json']);
    const x = files.find((e) => e.path.endsWith('x.txt'))!;
    assert.equal(buf.subarray(x.offset, x.offset + x.size).toString(), 'hello');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses links, absolute paths, .., bad checksums, truncation and oversize', async () => {
  const bad = async (b: Buffer, re: RegExp, limits = {}) => assert.rejects(listTar(reader(b), b.length, limits), (e: Error) => e instanceof TarError && re.test(e.message));
  await bad(archive(member('evil', '', '2')), /symbolic link/);
  await bad(archive(member('evil', '', '1')), /hard link/);
  await bad(archive(member('/etc/passwd', 'x')), /absolute/);
  await bad(archive(member('a/../../etc/passwd', 'x')), /\.\./);
  const corrupt = archive(member('ok', 'x'));
  corrupt[10] = 65;
  await bad(corrupt, /checksum/);
  await bad(member('big', 'x'.repeat(2000)).subarray(0, 1000), /truncated/);
  await bad(archive(member('a', 'x'.repeat(100)), member('b', 'x'.repeat(100))), /more than 150 bytes/, { maxBytes: 150 });
  await bad(archive(member('a', 'x'), member('./a', 'y')), /twice/);
  const ok = await listTar(reader(archive(member('./dir/f', 'x'))), archive(member('./dir/f', 'x')).length);
  assert.equal(ok[0]!.path, 'dir/f');
});

test('member paths and manifests', () => {
  assert.equal(safeMemberPath('./a//b/./c'), 'a/b/c');
  assert.throws(() => safeMemberPath('a/../..'), TarError);
  assert.deepEqual(parseManifest('{"entry":["./run.sh","--x"],"name":"deploy"}'), { entry: ['./run.sh', '--x'], name: 'deploy' });
  assert.throws(() => parseManifest('{"entry":[]}'), /non-empty list/);
  assert.throws(() => parseManifest('nope'), /not JSON/);
  assert.throws(() => parseManifest('{"entry":[1]}'), TarError);
});

test('a symlink inside a directory made by tar is refused, not followed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-tar-'));
  try {
    mkdirSync(join(dir, 'src'));
    symlinkSync('/etc/passwd', join(dir, 'src', 'link'));
    execFileSync('tar', ['-cf', join(dir, 'l.tar'), '-C', join(dir, 'src'), '.']);
    const buf = readFileSync(join(dir, 'l.tar'));
    await assert.rejects(listTar(reader(buf), buf.length), /symbolic link/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
