/** Types and small helpers shared by the alert pages. */
import { get } from '../../api';
import { en } from '../../dict';
import type { I18n, Key } from '../../i18n';

export interface RuleScope {
  hosts?: string[];
  selector?: string;
  exclude?: string[];
}
export interface Rule {
  id: string;
  preset: string | null;
  name: string;
  kind: 'metric' | 'anomaly';
  metric: string | null;
  anomaly: string | null;
  op: string;
  threshold: number;
  forSec: number;
  resolveForSec: number;
  aggregate: 'all' | 'avg';
  params: Record<string, string | number>;
  scope: RuleScope;
  severity: string;
  enabled: boolean;
  channels: string[];
  groupWindowSec: number;
  createdAt: number;
  updatedAt: number;
}
export interface Catalog {
  metrics: { family: string; help: string; dim?: string; derived: boolean }[];
  anomalies: { type: string; help: string; op: string; threshold: number; thresholdEditable: boolean; unit: string; fedBy: string[] }[];
  presets: string[];
  channelTypes: string[];
}
export interface Channel {
  id: string;
  name: string;
  type: string;
  enabled: boolean;
  config: Record<string, unknown>;
  secret: Record<string, { set: boolean; names?: string[] }>;
  createdAt: number;
  updatedAt: number;
}
export interface Delivery {
  id: string;
  channelId: string;
  channelName: string;
  ruleId: string | null;
  kind: string;
  status: 'pending' | 'ok' | 'retrying' | 'failed';
  attempts: number;
  lastError: string | null;
  responseStatus: number | null;
  alertIds: string[];
  title: string;
  createdAt: number;
  updatedAt: number;
}
export interface Silence {
  id: string;
  ruleId: string | null;
  hostId: string | null;
  selector: string | null;
  startsAt: number;
  endsAt: number;
  reason: string;
  createdBy: string;
  createdAt: number;
  active: boolean;
}
export interface HostLite {
  id: string;
  hostname: string;
  labels: Record<string, string>;
}

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export const OPS = ['>', '>=', '<', '<=', '==', '!='] as const;
export const CHANNEL_TYPES = ['webhook', 'slack', 'email', 'dingtalk', 'feishu'] as const;

export const loadRules = () => get<{ rules: Rule[] }>('/api/v1/alerts/rules').then((r) => r.rules);
export const loadChannels = () => get<{ channels: Channel[] }>('/api/v1/alerts/channels').then((r) => r.channels);
export const loadHosts = () => get<{ hosts: HostLite[] }>('/api/v1/hosts?limit=10000').then((r) => r.hosts);

/** "a, b ,c" → ["a","b","c"] */
export const list = (s: string) =>
  s
    .split(/[,\s]+/)
    .map((x) => x.trim())
    .filter(Boolean);

/**
 * A rule's name in the console's language: a preset rule still named as shipped (the hub names them
 * in English) is said with the dictionary's words; a name someone chose is shown as it is. Alerts
 * carry the rule's name only, so the shipped names are matched too.
 */
export function ruleName(i: I18n, r: { name: string; preset?: string | null }): string {
  const key = (r.preset ? `alerts.presetName.${r.preset}` : PRESET_BY_NAME.get(r.name)) as Key | undefined;
  return key && en[key] === r.name ? i.t(key) : r.name;
}
const PRESET_BY_NAME = new Map(Object.entries(en).filter(([k]) => k.startsWith('alerts.presetName.')).map(([k, v]) => [v as string, k]));
