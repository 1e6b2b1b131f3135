/**
 * A small dictionary (dict.ts, every key in en and zh: the compiler checks zh is complete) and
 * Intl for dates and numbers. A key missing at run time renders as ⟦key⟧, so a test can find it.
 */
import { createContext, useContext, useMemo, useState, type ReactNode } from 'react';
import { en, zh, type Key } from './dict';

export type Lang = 'en' | 'zh';
const DICTS: Record<Lang, Record<string, string>> = { en, zh };
const LOCALE: Record<Lang, string> = { en: 'en-GB', zh: 'zh-CN' };
export const MISSING = (key: string) => `⟦${key}⟧`;

function initialLang(): Lang {
  const saved = localStorage.getItem('tether.lang');
  if (saved === 'en' || saved === 'zh') return saved;
  return navigator.language.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export type Vars = Record<string, string | number>;

export interface I18n {
  lang: Lang;
  setLang(l: Lang): void;
  /** a dictionary key; {name} placeholders filled from vars */
  t(key: Key, vars?: Vars): string;
  /** a key made at run time (a state or error code from the hub): the fallback when the dictionary lacks it */
  tk(key: string, fallback: string, vars?: Vars): string;
  num(n: number | null | undefined, digits?: number): string;
  pct(n: number | null | undefined): string;
  /** 1024-based units; `digits` fixes the most fraction digits (default: one below 10, else none) */
  bytes(n: number | null | undefined, digits?: number): string;
  rate(n: number | null | undefined, digits?: number): string;
  date(ms: number | null | undefined): string;
  time(ms: number | null | undefined): string;
  ago(ms: number | null | undefined): string;
  duration(sec: number | null | undefined): string;
  locale: string;
}

function fill(s: string, vars?: Vars): string {
  return vars ? s.replace(/\{(\w+)\}/g, (m, k: string) => (vars[k] !== undefined ? String(vars[k]) : m)) : s;
}

export function makeI18n(lang: Lang, setLang: (l: Lang) => void): I18n {
  const d = DICTS[lang];
  const locale = LOCALE[lang];
  const nf = new Map<number, Intl.NumberFormat>();
  const numFmt = (digits: number) => {
    let f = nf.get(digits);
    if (!f) nf.set(digits, (f = new Intl.NumberFormat(locale, { maximumFractionDigits: digits, minimumFractionDigits: 0 })));
    return f;
  };
  const dateFmt = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' });
  const timeFmt = new Intl.DateTimeFormat(locale, { timeStyle: 'medium' });
  const rel = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' });
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  const i18n: I18n = {
    lang,
    setLang,
    locale,
    t: (key, vars) => {
      const s = d[key];
      return s === undefined ? MISSING(key) : fill(s, vars);
    },
    tk: (key, fallback, vars) => fill(d[key] ?? fallback, vars),
    num: (n, digits = 1) => (n === null || n === undefined ? '—' : numFmt(digits).format(n)),
    pct: (n) => (n === null || n === undefined ? '—' : numFmt(1).format(n) + '%'),
    bytes: (n, digits) => {
      if (n === null || n === undefined) return '—';
      let i = 0;
      let v = n;
      while (Math.abs(v) >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
      }
      return numFmt(digits ?? (v < 10 && i > 0 ? 1 : 0)).format(v) + ' ' + units[i];
    },
    rate: (n, digits) => (n === null || n === undefined ? '—' : i18n.bytes(n, digits) + '/s'),
    date: (ms) => (ms === null || ms === undefined ? '—' : dateFmt.format(ms)),
    time: (ms) => (ms === null || ms === undefined ? '—' : timeFmt.format(ms)),
    ago: (ms) => {
      if (ms === null || ms === undefined) return '—';
      const s = Math.round((ms - Date.now()) / 1000);
      const a = Math.abs(s);
      if (a < 60) return rel.format(s, 'second');
      if (a < 3600) return rel.format(Math.round(s / 60), 'minute');
      if (a < 86400) return rel.format(Math.round(s / 3600), 'hour');
      return rel.format(Math.round(s / 86400), 'day');
    },
    duration: (sec) => {
      if (sec === null || sec === undefined) return '—';
      const dd = Math.floor(sec / 86400);
      const hh = Math.floor((sec % 86400) / 3600);
      const mm = Math.floor((sec % 3600) / 60);
      if (dd > 0) return fill(d['unit.dh']!, { d: dd, h: hh });
      if (hh > 0) return fill(d['unit.hm']!, { h: hh, m: mm });
      if (mm > 0) return fill(d['unit.m']!, { m: mm });
      return fill(d['unit.s']!, { s: Math.round(sec) });
    },
  };
  return i18n;
}

const Ctx = createContext<I18n | null>(null);

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const value = useMemo(
    () =>
      makeI18n(lang, (l) => {
        localStorage.setItem('tether.lang', l);
        document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
        setLangState(l);
      }),
    [lang],
  );
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useI18n(): I18n {
  const v = useContext(Ctx);
  if (!v) throw new Error('useI18n outside I18nProvider');
  return v;
}
export type { Key };
