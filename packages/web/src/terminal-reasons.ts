/**
 * Why terminal sessions end, as the hub and agents say it (in English), said in the console's
 * language: the terminal page, the sessions list and the audit log use it (kept out of
 * pages/Terminal.tsx, which loads xterm.js only when a terminal is opened).
 */
import type { I18n, Key } from './i18n';

/** Why sessions end, as the hub and agents say it (in English): each said in the console's language. */
const END_REASONS: Record<string, Key> = {
  'the shell exited': 'term.why.shellExited',
  'the browser closed the terminal': 'term.why.browserClosed',
  'the host disconnected': 'term.why.hostDisconnected',
  'hub shutting down': 'term.why.hubStopping',
  'idle timeout': 'term.why.idle',
  'closed by the hub': 'term.why.closedByHub',
  'the hub connection dropped': 'term.why.linkDropped',
  'agent stopping': 'term.why.agentStopping',
  'the connection was closed': 'term.lost',
  'closed by the user': 'term.why.closedByUser',
  'origin not allowed': 'term.why.origin',
  'no such host': 'term.why.noHost',
  'host outside your scope': 'term.why.outOfScope',
  'the host is not connected': 'term.why.hostOffline',
};
const END_PATTERNS: [RegExp, Key, string[]][] = [
  [/^signal (\S+)$/, 'term.why.signal', ['signal']],
  [/^too many terminals open on this host \((\d+)\)$/, 'term.why.tooMany', ['n']],
  [/^no such user "(.*)" on this host$/, 'term.why.noUser', ['user']],
  [/^this agent opens terminals only as (.+) \(terminal_users in its local config\), not as (.+)$/, 'term.why.notListed', ['allowed', 'user']],
  [/^a terminal as (.+) needs the agent to run as root$/, 'term.why.needsRoot', ['user']],
  [/^could not open a terminal: (.*)$/, 'term.why.couldNotOpen', ['message']],
  [/^this agent does not allow terminal/, 'term.noCapability', []],
];

/** A session's end reason in the console's language; one it does not know, as the hub said it. */
export function endReason(i: I18n, reason: string | null): string {
  if (!reason) return '—';
  const key = END_REASONS[reason];
  if (key) return i.t(key);
  for (const [re, k, names] of END_PATTERNS) {
    const m = re.exec(reason);
    if (m) return i.t(k, Object.fromEntries(names.map((n, idx) => [n, m[idx + 1]!])));
  }
  return reason;
}

