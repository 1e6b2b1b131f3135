/**
 * Cron on hosts: `/api/v1/hosts/:id/cron…`, Tether's tagged entries in a user's crontab (lines it
 * did not write are never shown or touched). Creating or changing an entry runs commands as that
 * user from then on, like exec: it needs a step-up.
 */
import { noteAudit } from '../audit/subjects.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { CRON_ID, CRON_SCHEDULE, CronEntry, CronEntryInput, CronRun, USER_NAME, type CronRequestBody } from '@tether/protocol';
import { access } from '../../http.js';
import { COMMON, Ok, Params, errs, opt, type Managers } from './common.js';

const TAG = ['cron'];
const EParams = Type.Object({ id: Params.properties.id, entry: Type.String({ pattern: CRON_ID }) });
const UserQ = Type.Object({ user: Type.Optional(Type.String({ pattern: USER_NAME, description: "whose crontab (default root)" })) });
type P = { id: string; entry: string };

export function cronRoutes(m: Managers) {
  const read = access({ role: 'operator', scope: 'read' });
  const viewer = access({ role: 'viewer', scope: 'read' });
  const execute = access({ role: 'operator', scope: 'execute' });
  const danger = access({ role: 'operator', scope: 'execute', stepUp: true });

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const ask = async (req: { params: { id: string } }, body: CronRequestBody) => m.ask(await m.host(req as never), 'cron.request', body);

    r.get(
      '/api/v1/hosts/:id/cron',
      { ...read, schema: { tags: TAG, summary: "Tether's entries in a crontab, with their next runs and last run; `untagged` counts the other lines (never shown or touched)", params: Params, querystring: UserQ, response: { 200: Type.Object({ entries: Type.Array(CronEntry), untagged: Type.Integer() }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string }; query: { user?: string } }) => {
        const a = await ask(req, { op: 'list', ...opt('user', req.query.user) });
        return { entries: a.entries ?? [], untagged: a.untagged ?? 0 };
      }),
    );

    r.get(
      '/api/v1/hosts/:id/cron/validate',
      { ...viewer, schema: { tags: TAG, summary: "Check a schedule the way the host's cron reads it, and its next runs (host's time zone)", params: Params, querystring: Type.Object({ schedule: Type.String({ maxLength: 128 }) }), response: { 200: Type.Object({ valid: Type.Boolean(), nextRuns: Type.Array(Type.Integer()), message: Type.Optional(Type.String()) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string }; query: { schedule: string } }) => {
        if (!new RegExp(CRON_SCHEDULE).test(req.query.schedule.trim())) return { valid: false, nextRuns: [], message: 'five fields (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly, @reboot' };
        try {
          return { valid: true, nextRuns: (await ask(req, { op: 'validate', entry: { schedule: req.query.schedule.trim() } })).nextRuns ?? [] };
        } catch (err) {
          if ((err as { code?: string }).code === 'bad_request') return { valid: false, nextRuns: [], message: (err as Error).message };
          throw err;
        }
      }),
    );

    r.post(
      '/api/v1/hosts/:id/cron',
      { ...danger, schema: { tags: TAG, summary: 'Add an entry to a crontab (tagged; output and exit code of each run are kept)', params: Params, querystring: UserQ, body: CronEntryInput, response: { 200: CronEntry, ...errs(...COMMON) } } },
      m.handle(async (req: FastifyRequest & { params: { id: string }; query: { user?: string }; body: CronRequestBody['entry'] }) => {
        const entry = (await ask(req, { op: 'create', entry: req.body!, ...opt('user', req.query.user) })).entry;
        const made = entry as { id?: string; name?: string } | undefined;
        if (made?.id) noteAudit(req, { type: 'cron', id: made.id, ...(made.name ? { name: made.name } : {}), host: req.params.id, role: 'result' });
        return entry;
      }),
    );

    r.patch(
      '/api/v1/hosts/:id/cron/:entry',
      { ...danger, schema: { tags: TAG, summary: 'Change an entry: schedule, command, name, or enabled (disable/enable)', params: EParams, querystring: UserQ, body: Type.Partial(CronEntryInput), response: { 200: CronEntry, ...errs(...COMMON) } } },
      m.handle(async (req: { params: P; query: { user?: string }; body: CronRequestBody['entry'] }) => (await ask(req, { op: 'update', id: req.params.entry, entry: req.body ?? {}, ...opt('user', req.query.user) })).entry),
    );

    r.delete(
      '/api/v1/hosts/:id/cron/:entry',
      { ...execute, schema: { tags: TAG, summary: 'Remove an entry (only ever a tagged one)', params: EParams, querystring: UserQ, response: { 200: Ok, ...errs(...COMMON) } } },
      m.handle(async (req: { params: P; query: { user?: string } }) => {
        await ask(req, { op: 'delete', id: req.params.entry, ...opt('user', req.query.user) });
        return { ok: true };
      }),
    );

    r.get(
      '/api/v1/hosts/:id/cron/:entry/runs',
      { ...read, schema: { tags: TAG, summary: "An entry's last runs (up to 50): start, end, exit code, output", params: EParams, querystring: UserQ, response: { 200: Type.Object({ runs: Type.Array(CronRun) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: P; query: { user?: string } }) => ({ runs: (await ask(req, { op: 'runs', id: req.params.entry, ...opt('user', req.query.user) })).runs ?? [] })),
    );
  };
}
