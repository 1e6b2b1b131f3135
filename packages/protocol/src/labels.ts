/**
 * Labels and label selectors, shared by the hub (filtering), the CLI (argument checking) and,
 * later, the console. Syntax follows Kubernetes' equality- and set-based selectors because
 * operators already know it: `env=prod,role!=db,gpu,!canary,zone in (a,b),tier notin (x)`.
 */
import { LIMITS } from './limits.js';

export type Labels = Record<string, string>;

const KEY_RE = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})$/;
const VALUE_RE = /^[A-Za-z0-9._-]{0,63}$/;

export function isLabelKey(k: string): boolean {
  return k.length <= LIMITS.labelKey && KEY_RE.test(k);
}
export function isLabelValue(v: string): boolean {
  return v.length <= LIMITS.labelValue && VALUE_RE.test(v);
}

/** Returns a list of problems (empty when the labels are valid). */
export function validateLabels(labels: unknown): string[] {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) return ['labels must be an object of strings'];
  const entries = Object.entries(labels);
  const errs: string[] = [];
  if (entries.length > LIMITS.labels) errs.push(`at most ${LIMITS.labels} labels`);
  for (const [k, v] of entries) {
    if (!isLabelKey(k)) errs.push(`bad label key ${JSON.stringify(k)}`);
    if (typeof v !== 'string' || !isLabelValue(v)) errs.push(`bad value for label ${JSON.stringify(k)}`);
  }
  return errs;
}

/** Parses `k=v` pairs as given on a command line. */
export function parseLabelPairs(pairs: string[]): Labels {
  const out: Labels = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`label ${JSON.stringify(p)}: expected key=value`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  const errs = validateLabels(out);
  if (errs.length) throw new Error(errs.join('; '));
  return out;
}

export type Requirement =
  | { op: '='; key: string; value: string }
  | { op: '!='; key: string; value: string }
  | { op: 'exists'; key: string }
  | { op: '!exists'; key: string }
  | { op: 'in'; key: string; values: string[] }
  | { op: 'notin'; key: string; values: string[] };

export type Selector = Requirement[];

export class SelectorError extends Error {}

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new SelectorError('unbalanced parenthesis');
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new SelectorError('unbalanced parenthesis');
  parts.push(cur);
  return parts;
}

export function parseSelector(input: string): Selector {
  if (input.length > 1024) throw new SelectorError('selector longer than 1024 characters');
  const trimmed = input.trim();
  if (trimmed === '') return [];
  const reqs: Selector = [];
  for (const raw of splitTop(trimmed)) {
    const part = raw.trim();
    if (part === '') throw new SelectorError('empty requirement');
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^([^\s!=(),]+)\s+(in|notin)\s+\(([^()]*)\)$/))) {
      const key = m[1]!;
      const values = m[3]!.split(',').map((v) => v.trim()).filter((v) => v !== '');
      checkKey(key);
      values.forEach(checkValue);
      if (values.length === 0) throw new SelectorError(`"${key} ${m[2]}" needs at least one value`);
      reqs.push({ op: m[2] as 'in' | 'notin', key, values });
    } else if ((m = part.match(/^([^\s!=]+)\s*(!=|==|=)\s*([^\s]*)$/))) {
      const key = m[1]!;
      checkKey(key);
      checkValue(m[3]!);
      reqs.push(m[2] === '!=' ? { op: '!=', key, value: m[3]! } : { op: '=', key, value: m[3]! });
    } else if ((m = part.match(/^!\s*([^\s!=]+)$/))) {
      checkKey(m[1]!);
      reqs.push({ op: '!exists', key: m[1]! });
    } else if ((m = part.match(/^([^\s!=()]+)$/))) {
      checkKey(m[1]!);
      reqs.push({ op: 'exists', key: m[1]! });
    } else {
      throw new SelectorError(`cannot parse requirement ${JSON.stringify(part)}`);
    }
  }
  return reqs;
}

function checkKey(k: string): void {
  if (!isLabelKey(k)) throw new SelectorError(`bad label key ${JSON.stringify(k)}`);
}
function checkValue(v: string): void {
  if (!isLabelValue(v)) throw new SelectorError(`bad label value ${JSON.stringify(v)}`);
}

export function matchesSelector(labels: Labels, sel: Selector): boolean {
  for (const r of sel) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = has ? labels[r.key] : undefined;
    switch (r.op) {
      case '=': if (v !== r.value) return false; break;
      case '!=': if (v === r.value) return false; break;
      case 'exists': if (!has) return false; break;
      case '!exists': if (has) return false; break;
      case 'in': if (v === undefined || !r.values.includes(v)) return false; break;
      case 'notin': if (v !== undefined && r.values.includes(v)) return false; break;
    }
  }
  return true;
}
