import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, openSync, closeSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkOpened, isInside, resolveEntryInRoots, resolveInRoots, type FileOpError } from '../../src/files/paths.js';

let base: string;
let root: string;
let outsideDir: string;

before(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'tether-paths-')));
  root = join(base, 'root');
  outsideDir = join(base, 'root-sibling'); // shares the root's name as a prefix
  mkdirSync(join(root, 'a/b'), { recursive: true });
  mkdirSync(outsideDir);
  writeFileSync(join(root, 'a/file.txt'), 'x');
  writeFileSync(join(outsideDir, 'secret'), 's');
  symlinkSync(join(outsideDir, 'secret'), join(root, 'escape-file'));
  symlinkSync(outsideDir, join(root, 'escape-dir'));
  symlinkSync(join(root, 'a'), join(root, 'inner-link'));
  symlinkSync(join(outsideDir, 'not-there'), join(root, 'dangling-out'));
});
after(() => rmSync(base, { recursive: true, force: true }));

const code = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as FileOpError).code;
  }
};

test('isInside compares whole components: /root-sibling is not inside /root', () => {
  assert.equal(isInside('/srv/root', '/srv/root'), true);
  assert.equal(isInside('/srv/root/x', '/srv/root'), true);
  assert.equal(isInside('/srv/root-sibling/x', '/srv/root'), false);
  assert.equal(isInside('/srv/rootx', '/srv/root'), false);
  assert.equal(isInside('/anything', '/'), true);
});

test('paths inside a root resolve to their real path, existing or not', async () => {
  assert.deepEqual(await resolveInRoots(join(root, 'a/file.txt'), [root]), { path: join(root, 'a/file.txt'), root });
  assert.equal((await resolveInRoots(join(root, 'a/new/deeper.txt'), [root])).path, join(root, 'a/new/deeper.txt'));
  assert.equal((await resolveInRoots(join(root, 'a/b/../file.txt'), [root])).path, join(root, 'a/file.txt'));
  // a link inside the root to a place inside the root is followed
  assert.equal((await resolveInRoots(join(root, 'inner-link/file.txt'), [root])).path, join(root, 'a/file.txt'));
  assert.equal((await resolveInRoots(root, [root])).path, root);
});

test('traversal with .. out of the root is refused as outside_roots', async () => {
  assert.equal(await code(resolveInRoots(join(root, '../root-sibling/secret'), [root])), 'outside_roots');
  assert.equal(await code(resolveInRoots(`${root}/a/../../root-sibling/secret`, [root])), 'outside_roots');
  assert.equal(await code(resolveInRoots(`${root}/../../../../etc/passwd`, [root])), 'outside_roots');
  assert.equal(await code(resolveInRoots('/etc/passwd', [root])), 'outside_roots');
  assert.equal(await code(resolveInRoots(join(base, 'root-sibling'), [root])), 'outside_roots');
});

test('symbolic links that lead out of the root are refused, at any component', async () => {
  assert.equal(await code(resolveInRoots(join(root, 'escape-file'), [root])), 'outside_roots');
  assert.equal(await code(resolveInRoots(join(root, 'escape-dir/secret'), [root])), 'outside_roots');
  assert.equal(await code(resolveInRoots(join(root, 'escape-dir/new-file'), [root])), 'outside_roots');
  assert.equal(await code(resolveInRoots(join(root, 'escape-dir'), [root])), 'outside_roots');
});

test('a dangling link resolves to the link itself (writes replace the link, never its target)', async () => {
  assert.equal((await resolveInRoots(join(root, 'dangling-out'), [root])).path, join(root, 'dangling-out'));
});

test('relative paths, NUL bytes and a config with no existing root are refused', async () => {
  assert.equal(await code(resolveInRoots('a/file.txt', [root])), 'bad_request');
  assert.equal(await code(resolveInRoots(`${root}/a\0b`, [root])), 'bad_request');
  assert.equal(await code(resolveInRoots(join(root, 'a'), [join(base, 'missing-root')])), 'refused');
});

test('a root reached through a symlink is compared by its real path', async () => {
  const alias = join(base, 'alias');
  symlinkSync(root, alias);
  assert.equal((await resolveInRoots(join(alias, 'a/file.txt'), [alias])).path, join(root, 'a/file.txt'));
  assert.equal(await code(resolveInRoots(join(alias, 'escape-file'), [alias])), 'outside_roots');
});

test('entry resolution keeps the last component: an escaping link can be removed, the root itself cannot', async () => {
  assert.equal((await resolveEntryInRoots(join(root, 'escape-dir'), [root])).path, join(root, 'escape-dir'));
  assert.equal(await code(resolveEntryInRoots(root, [root])), 'refused');
  assert.equal(await code(resolveEntryInRoots(root + '/a/..', [root])), 'refused');
  assert.equal(await code(resolveEntryInRoots(join(root, 'escape-dir/secret'), [root])), 'outside_roots');
  assert.equal(await code(resolveEntryInRoots('/', [root])), 'outside_roots');
});

test('checkOpened refuses a descriptor whose real path left the roots', async () => {
  const fdIn = openSync(join(root, 'a/file.txt'), 'r');
  const fdOut = openSync(join(outsideDir, 'secret'), 'r');
  try {
    await checkOpened(fdIn, [root], 'x');
    assert.equal(await code(checkOpened(fdOut, [root], 'x')), 'outside_roots');
  } finally {
    closeSync(fdIn);
    closeSync(fdOut);
  }
});
