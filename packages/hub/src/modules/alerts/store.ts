/**
 * The alerts module's tables: rules, channels (secrets kept apart from config, and sealed with the
 * hub's key file: secret-box.ts), silences, alert history (one row per firing episode) and the
 * delivery log.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ModuleMigrations } from '../../db/migrate.js';
import { SecretBox } from '../../secret-box.js';
import { FIRST_PRESETS, PRESETS, presetId, type Rule, type RuleInput, type Severity } from './model.js';

interface RulesTable {
  id: string;
  spec: string;
  preset: string | null;
  created_at: number;
  updated_at: number;
}
/** Presets offered to this hub once: one an operator deleted is not offered again. */
interface PresetsOfferedTable {
  key: string;
}
interface ChannelsTable {
  id: string;
  name: string;
  type: string;
  enabled: number;
  config: string;
  secret: string;
  created_at: number;
  updated_at: number;
}
interface SilencesTable {
  id: string;
  rule_id: string | null;
  host_id: string | null;
  selector: string | null;
  starts_at: number;
  ends_at: number;
  reason: string;
  created_by: string;
  created_at: number;
}
interface AlertsTable {
  id: string;
  rule_id: string;
  rule_name: string;
  severity: string;
  host_id: string;
  subject: string;
  state: string;
  value: number;
  peak: number;
  threshold: number;
  op: string;
  started_at: number;
  fired_at: number;
  ended_at: number | null;
  end_reason: string | null;
  silenced: number;
  flapping: number;
  detail: string | null;
}
interface DeliveriesTable {
  id: string;
  channel_id: string;
  channel_name: string;
  rule_id: string | null;
  kind: string;
  status: string;
  attempts: number;
  last_error: string | null;
  response_status: number | null;
  alert_ids: string;
  title: string;
  created_at: number;
  updated_at: number;
}
interface Tables {
  alert_rules: RulesTable;
  alert_presets_offered: PresetsOfferedTable;
  alert_channels: ChannelsTable;
  alert_silences: SilencesTable;
  alerts: AlertsTable;
  alert_deliveries: DeliveriesTable;
}

export const alertsMigrations: ModuleMigrations = {
  '0300_alerts_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('alert_rules')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('preset', 'varchar(64)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('alert_channels')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('type', 'varchar(32)', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('alert_silences')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('rule_id', 'varchar(64)')
        .addColumn('host_id', 'varchar(64)')
        .addColumn('selector', 'varchar(1024)')
        .addColumn('starts_at', 'bigint', (c) => c.notNull())
        .addColumn('ends_at', 'bigint', (c) => c.notNull())
        .addColumn('reason', 'varchar(1000)', (c) => c.notNull())
        .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('alerts')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('rule_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('rule_name', 'varchar(200)', (c) => c.notNull())
        .addColumn('severity', 'varchar(16)', (c) => c.notNull())
        .addColumn('host_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('subject', 'varchar(300)', (c) => c.notNull())
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('value', 'double precision', (c) => c.notNull())
        .addColumn('peak', 'double precision', (c) => c.notNull())
        .addColumn('threshold', 'double precision', (c) => c.notNull())
        .addColumn('op', 'varchar(4)', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('fired_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('end_reason', 'varchar(32)')
        .addColumn('silenced', 'integer', (c) => c.notNull())
        .addColumn('flapping', 'integer', (c) => c.notNull())
        .addColumn('detail', 'varchar(1000)')
        .execute();
      await db.schema.createIndex('alerts_fired').on('alerts').column('fired_at').execute();
      await db.schema.createIndex('alerts_state').on('alerts').column('state').execute();
      await db.schema
        .createTable('alert_deliveries')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('channel_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('channel_name', 'varchar(200)', (c) => c.notNull())
        .addColumn('rule_id', 'varchar(64)')
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('last_error', 'varchar(1000)')
        .addColumn('response_status', 'integer')
        .addColumn('alert_ids', 'text', (c) => c.notNull())
        .addColumn('title', 'varchar(500)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('alert_deliveries_created').on('alert_deliveries').column('created_at').execute();
    },
  },
  '0301_alerts_presets': {
    async up(db: Kysely<any>) {
      const now = Date.now();
      // The presets of that time; later ones are offered by AlertStore.offerPresets.
      for (const key of FIRST_PRESETS) {
        await db.insertInto('alert_rules').values({ id: presetId(key), spec: JSON.stringify(PRESETS[key]), preset: key, created_at: now, updated_at: now }).execute();
      }
    },
  },
  '0302_alerts_presets_offered': {
    async up(db: Kysely<any>) {
      await db.schema.createTable('alert_presets_offered').addColumn('key', 'varchar(64)', (c) => c.primaryKey()).execute();
      // 0301 offered these, whether an operator kept them or not.
      for (const key of FIRST_PRESETS) await db.insertInto('alert_presets_offered').values({ key }).execute();
    },
  },
};

export const newId = (prefix: string) => `${prefix}_${randomBytes(9).toString('base64url')}`;

export type ChannelType = 'webhook' | 'slack' | 'email' | 'dingtalk' | 'feishu';
export interface Channel {
  id: string;
  name: string;
  type: ChannelType;
  enabled: boolean;
  /** settings that may be shown */
  config: Record<string, unknown>;
  /** values never shown in reads nor logged: URLs with tokens, keys, passwords, header values */
  secret: Record<string, unknown>;
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
}

export interface AlertRow {
  id: string;
  ruleId: string;
  ruleName: string;
  severity: Severity;
  hostId: string;
  subject: string;
  state: 'firing' | 'resolved';
  value: number;
  peak: number;
  threshold: number;
  op: string;
  startedAt: number;
  firedAt: number;
  endedAt: number | null;
  endReason: string | null;
  silenced: boolean;
  flapping: boolean;
  detail: string | null;
}

export interface Delivery {
  id: string;
  channelId: string;
  channelName: string;
  ruleId: string | null;
  kind: 'firing' | 'resolved' | 'test';
  status: 'pending' | 'ok' | 'retrying' | 'failed';
  attempts: number;
  lastError: string | null;
  responseStatus: number | null;
  alertIds: string[];
  title: string;
  createdAt: number;
  updatedAt: number;
}

const num = (v: unknown) => (v === null || v === undefined ? NaN : Number(v));

export class AlertStore {
  private readonly db: Kysely<Tables>;
  constructor(
    db: Kysely<any>,
    /** seals channels' secrets at rest */
    private readonly secrets: SecretBox,
  ) {
    this.db = db as Kysely<Tables>;
  }

  /**
   * Seals channel secrets still stored in plaintext (from before sealing, or written by an older
   * hub sharing the database), and checks that every sealed one is under this hub's key.
   */
  async sealStoredSecrets(): Promise<number> {
    const rows = await this.db.selectFrom('alert_channels').select(['id', 'secret']).execute();
    let sealed = 0;
    for (const r of rows) {
      if (SecretBox.isSealed(r.secret)) {
        this.secrets.check(r.secret);
        continue;
      }
      const res = await this.db.updateTable('alert_channels').set({ secret: this.secrets.seal(r.secret, `alert_channels.secret:${r.id}`) }).where('id', '=', r.id).where('secret', '=', r.secret).executeTakeFirst();
      sealed += Number(res.numUpdatedRows);
    }
    return sealed;
  }

  // ---- rules
  async rules(): Promise<Rule[]> {
    const rows = await this.db.selectFrom('alert_rules').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map((r) => ({ ...(JSON.parse(r.spec) as RuleInput), id: r.id, preset: r.preset, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) }));
  }
  async putRule(r: Rule): Promise<void> {
    const { id, preset, createdAt, updatedAt, ...spec } = r;
    const res = await this.db.updateTable('alert_rules').set({ spec: JSON.stringify(spec), preset, updated_at: updatedAt }).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) await this.db.insertInto('alert_rules').values({ id, spec: JSON.stringify(spec), preset, created_at: createdAt, updated_at: updatedAt }).execute();
  }
  /**
   * Adds the presets this hub was never offered (a new hub: those after the first ones; an older
   * hub: those shipped since it was set up) and remembers them, so that one an operator deletes is
   * not offered again. Each step is one statement that a second run repeats harmlessly.
   */
  async offerPresets(presets: Record<string, RuleInput>, now: number): Promise<string[]> {
    const offered = new Set((await this.db.selectFrom('alert_presets_offered').select('key').execute()).map((r) => r.key));
    const fresh = Object.keys(presets).filter((k) => !offered.has(k));
    for (const key of fresh) {
      await this.db
        .insertInto('alert_rules')
        .values({ id: presetId(key), spec: JSON.stringify(presets[key]), preset: key, created_at: now, updated_at: now })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
      await this.db.insertInto('alert_presets_offered').values({ key }).onConflict((oc) => oc.column('key').doNothing()).execute();
    }
    return fresh;
  }
  async deleteRule(id: string): Promise<boolean> {
    return Number((await this.db.deleteFrom('alert_rules').where('id', '=', id).executeTakeFirst()).numDeletedRows) > 0;
  }

  // ---- channels
  async channels(): Promise<Channel[]> {
    const rows = await this.db.selectFrom('alert_channels').selectAll().orderBy('created_at').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, type: r.type as ChannelType, enabled: Boolean(r.enabled), config: JSON.parse(r.config) as Record<string, unknown>, secret: JSON.parse(this.secrets.open(r.secret, `alert_channels.secret:${r.id}`)) as Record<string, unknown>, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) }));
  }
  async putChannel(c: Channel): Promise<void> {
    const v = { name: c.name, type: c.type, enabled: c.enabled ? 1 : 0, config: JSON.stringify(c.config), secret: this.secrets.seal(JSON.stringify(c.secret), `alert_channels.secret:${c.id}`), updated_at: c.updatedAt };
    const res = await this.db.updateTable('alert_channels').set(v).where('id', '=', c.id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) await this.db.insertInto('alert_channels').values({ id: c.id, created_at: c.createdAt, ...v }).execute();
  }
  async deleteChannel(id: string): Promise<boolean> {
    return Number((await this.db.deleteFrom('alert_channels').where('id', '=', id).executeTakeFirst()).numDeletedRows) > 0;
  }

  // ---- silences
  async silences(): Promise<Silence[]> {
    const rows = await this.db.selectFrom('alert_silences').selectAll().orderBy('created_at', 'desc').limit(5000).execute();
    return rows.map((r) => ({ id: r.id, ruleId: r.rule_id, hostId: r.host_id, selector: r.selector, startsAt: Number(r.starts_at), endsAt: Number(r.ends_at), reason: r.reason, createdBy: r.created_by, createdAt: Number(r.created_at) }));
  }
  async addSilence(s: Silence): Promise<void> {
    await this.db
      .insertInto('alert_silences')
      .values({ id: s.id, rule_id: s.ruleId, host_id: s.hostId, selector: s.selector, starts_at: s.startsAt, ends_at: s.endsAt, reason: s.reason, created_by: s.createdBy, created_at: s.createdAt })
      .execute();
  }
  async deleteSilence(id: string): Promise<boolean> {
    return Number((await this.db.deleteFrom('alert_silences').where('id', '=', id).executeTakeFirst()).numDeletedRows) > 0;
  }
  /** Silences that ended long ago are kept for a while (history), then dropped. */
  async pruneSilences(before: number): Promise<void> {
    await this.db.deleteFrom('alert_silences').where('ends_at', '<', before).execute();
  }

  // ---- alert history
  async putAlert(a: AlertRow): Promise<void> {
    const v = {
      rule_id: a.ruleId,
      rule_name: a.ruleName,
      severity: a.severity,
      host_id: a.hostId,
      subject: a.subject.slice(0, 300),
      state: a.state,
      value: Number.isFinite(a.value) ? a.value : 0,
      peak: Number.isFinite(a.peak) ? a.peak : 0,
      threshold: a.threshold,
      op: a.op,
      started_at: a.startedAt,
      fired_at: a.firedAt,
      ended_at: a.endedAt,
      end_reason: a.endReason,
      silenced: a.silenced ? 1 : 0,
      flapping: a.flapping ? 1 : 0,
      detail: a.detail ? a.detail.slice(0, 1000) : null,
    };
    const res = await this.db.updateTable('alerts').set(v).where('id', '=', a.id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) await this.db.insertInto('alerts').values({ id: a.id, ...v }).execute();
  }
  async history(f: { ruleId?: string; hostId?: string; state?: 'firing' | 'resolved'; from?: number; to?: number; limit: number; offset?: number }): Promise<AlertRow[]> {
    let q = this.db.selectFrom('alerts').selectAll();
    if (f.ruleId) q = q.where('rule_id', '=', f.ruleId);
    if (f.hostId) q = q.where('host_id', '=', f.hostId);
    if (f.state) q = q.where('state', '=', f.state);
    if (f.from !== undefined) q = q.where((eb) => eb.or([eb('ended_at', 'is', null), eb('ended_at', '>=', f.from!)]));
    if (f.to !== undefined) q = q.where('fired_at', '<=', f.to);
    const rows = await q.orderBy('fired_at', 'desc').orderBy('id').limit(f.limit).offset(f.offset ?? 0).execute();
    return rows.map(toAlert);
  }
  async getAlert(id: string): Promise<AlertRow | undefined> {
    const r = await this.db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toAlert(r) : undefined;
  }

  // ---- deliveries
  async putDelivery(d: Delivery): Promise<void> {
    const v = {
      channel_id: d.channelId,
      channel_name: d.channelName,
      rule_id: d.ruleId,
      kind: d.kind,
      status: d.status,
      attempts: d.attempts,
      last_error: d.lastError ? d.lastError.slice(0, 1000) : null,
      response_status: d.responseStatus,
      alert_ids: JSON.stringify(d.alertIds),
      title: d.title.slice(0, 500),
      updated_at: d.updatedAt,
    };
    const res = await this.db.updateTable('alert_deliveries').set(v).where('id', '=', d.id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) await this.db.insertInto('alert_deliveries').values({ id: d.id, created_at: d.createdAt, ...v }).execute();
  }
  async deliveries(f: { channelId?: string; ruleId?: string; limit: number }): Promise<Delivery[]> {
    let q = this.db.selectFrom('alert_deliveries').selectAll();
    if (f.channelId) q = q.where('channel_id', '=', f.channelId);
    if (f.ruleId) q = q.where('rule_id', '=', f.ruleId);
    const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(f.limit).execute();
    return rows.map((r) => ({
      id: r.id,
      channelId: r.channel_id,
      channelName: r.channel_name,
      ruleId: r.rule_id,
      kind: r.kind as Delivery['kind'],
      status: r.status as Delivery['status'],
      attempts: r.attempts,
      lastError: r.last_error,
      responseStatus: r.response_status === null ? null : Number(r.response_status),
      alertIds: JSON.parse(r.alert_ids) as string[],
      title: r.title,
      createdAt: Number(r.created_at),
      updatedAt: Number(r.updated_at),
    }));
  }
  async pruneHistory(before: number): Promise<void> {
    await this.db.deleteFrom('alerts').where('ended_at', '<', before).execute();
    await this.db.deleteFrom('alert_deliveries').where('created_at', '<', before).execute();
  }
}

function toAlert(r: AlertsTable): AlertRow {
  return {
    id: r.id,
    ruleId: r.rule_id,
    ruleName: r.rule_name,
    severity: r.severity as Severity,
    hostId: r.host_id,
    subject: r.subject,
    state: r.state as AlertRow['state'],
    value: num(r.value),
    peak: num(r.peak),
    threshold: num(r.threshold),
    op: r.op,
    startedAt: Number(r.started_at),
    firedAt: Number(r.fired_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    endReason: r.end_reason,
    silenced: Boolean(r.silenced),
    flapping: Boolean(r.flapping),
    detail: r.detail,
  };
}
