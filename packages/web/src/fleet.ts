/** The overview's figures from one usage sample's series (the same reduction the hub's overview call makes). */
export interface Figures {
  cpuPercent: number | null;
  memoryPercent: number | null;
  diskPercent: number | null;
  load1: number | null;
  netRxBytesPerSec: number | null;
  netTxBytesPerSec: number | null;
}

export function figuresOf(s: Record<string, number>): Figures {
  let fsMax = 0;
  let rx = 0;
  let tx = 0;
  for (const k in s) {
    const c = k.charCodeAt(0);
    if (c === 102 /* f */ && k.startsWith('fs_used_percent|')) fsMax = Math.max(fsMax, s[k]!);
    else if (c === 110 /* n */) {
      if (k.endsWith('|lo')) continue;
      if (k.startsWith('net_rx_bytes_per_second|')) rx += s[k]!;
      else if (k.startsWith('net_tx_bytes_per_second|')) tx += s[k]!;
    }
  }
  return {
    cpuPercent: s['cpu_percent|busy'] ?? null,
    memoryPercent: s['memory_used_percent'] ?? null,
    diskPercent: fsMax,
    load1: s['load1'] ?? null,
    netRxBytesPerSec: rx,
    netTxBytesPerSec: tx,
  };
}

/** `env=prod,role!=db,gpu,!canary`: the simple forms of a label selector, checked in the browser. */
export function labelMatcher(text: string): (labels: Record<string, string>) => boolean {
  const terms = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((term) => {
      const ne = term.indexOf('!=');
      if (ne > 0) {
        const k = term.slice(0, ne).trim();
        const v = term.slice(ne + 2).trim();
        return (l: Record<string, string>) => l[k] !== v;
      }
      const eq = term.indexOf('=');
      if (eq > 0) {
        const k = term.slice(0, eq).trim();
        const v = term.slice(eq + 1).replace(/^=/, '').trim();
        return (l: Record<string, string>) => l[k] === v;
      }
      if (term.startsWith('!')) {
        const k = term.slice(1).trim();
        return (l: Record<string, string>) => !(k in l);
      }
      return (l: Record<string, string>) => term in l;
    });
  return (labels) => terms.every((f) => f(labels));
}

/**
 * Whether agent version `a` is older than `b` (semver: numbers first, a pre-release below its
 * release). Unparsable versions are never called older.
 */
export function olderVersion(a: string, b: string): boolean {
  const parse = (v: string) => /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/.exec(v);
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return false;
  for (let i = 1; i <= 3; i++) if (Number(x[i]) !== Number(y[i])) return Number(x[i]) < Number(y[i]);
  if (x[4] === y[4]) return false;
  if (!x[4] || !y[4]) return Boolean(x[4]);
  const p = x[4].split('.');
  const q = y[4].split('.');
  for (let i = 0; i < Math.min(p.length, q.length); i++) {
    if (p[i] === q[i]) continue;
    const pn = /^\d+$/.test(p[i]!);
    const qn = /^\d+$/.test(q[i]!);
    if (pn && qn) return Number(p[i]) < Number(q[i]);
    if (pn !== qn) return pn;
    return p[i]! < q[i]!;
  }
  return p.length < q.length;
}
