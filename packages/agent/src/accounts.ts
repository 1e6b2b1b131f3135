/**
 * Local users and groups, read from /etc/passwd and /etc/group (Node has no getpwnam). Used to run
 * a task as another user and to set a file's owner. Re-read when the files change.
 */
import { readFileSync, statSync } from 'node:fs';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}
export interface GroupEntry {
  name: string;
  gid: number;
  /** users listed as members (the fourth field) */
  members?: string[];
}

interface Cache<T> {
  mtimeMs: number;
  entries: T[];
}
let passwdCache: Cache<PasswdEntry> | undefined;
let groupCache: Cache<GroupEntry> | undefined;

function load<T>(file: string, cache: Cache<T> | undefined, parse: (f: string[]) => T | undefined): Cache<T> {
  let mtimeMs = 0;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return { mtimeMs: 0, entries: [] };
  }
  if (cache && cache.mtimeMs === mtimeMs) return cache;
  const entries: T[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const e = parse(line.split(':'));
    if (e) entries.push(e);
  }
  return { mtimeMs, entries };
}

export function passwd(file = '/etc/passwd'): PasswdEntry[] {
  const c = load(file, file === '/etc/passwd' ? passwdCache : undefined, (f) =>
    f.length >= 7 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!) ? { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! } : undefined,
  );
  if (file === '/etc/passwd') passwdCache = c;
  return c.entries;
}

export function groups(file = '/etc/group'): GroupEntry[] {
  const c = load(file, file === '/etc/group' ? groupCache : undefined, (f) =>
    f.length >= 3 && /^\d+$/.test(f[2]!) ? { name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) } : undefined,
  );
  if (file === '/etc/group') groupCache = c;
  return c.entries;
}

/** A user by name or numeric id; a numeric id without an entry is returned as is (its own group). */
export function lookupUser(nameOrId: string): PasswdEntry | undefined {
  const numeric = /^\d+$/.test(nameOrId);
  const e = passwd().find((p) => (numeric ? p.uid === Number(nameOrId) : p.name === nameOrId));
  if (e) return e;
  if (numeric) return { name: nameOrId, uid: Number(nameOrId), gid: Number(nameOrId), home: '/', shell: '/bin/sh' };
  return undefined;
}

export function lookupGroup(nameOrId: string): GroupEntry | undefined {
  if (/^\d+$/.test(nameOrId)) return groups().find((g) => g.gid === Number(nameOrId)) ?? { name: nameOrId, gid: Number(nameOrId) };
  return groups().find((g) => g.name === nameOrId);
}

/** Supplementary groups at most (Linux's NGROUPS_MAX). */
const NGROUPS_MAX = 65_536;

/**
 * The groups a login as this user gets, as initgroups(3) makes them: the primary group and every
 * group that lists the user as a member. Used where the agent drops to another user itself.
 */
export function groupsOf(u: PasswdEntry, file = '/etc/group'): number[] {
  const out = new Set<number>([u.gid]);
  for (const g of groups(file)) {
    if (out.size >= NGROUPS_MAX) break;
    if (g.members?.includes(u.name)) out.add(g.gid);
  }
  return [...out];
}

export function userName(uid: number): string {
  return passwd().find((p) => p.uid === uid)?.name ?? String(uid);
}

export function groupName(gid: number): string {
  return groups().find((g) => g.gid === gid)?.name ?? String(gid);
}
