/**
 * Processes and ports, power, and the hosts file: `/api/v1/hosts/:id/ps…`, `…/ports`,
 * `…/power…`, `…/hosts-file`. (`/hosts/:id/processes` is the metrics history of top processes.)
 */
import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { HostsEntry, ListeningPort, ProcessRow, SIGNAL_INPUTS, SleepState, signalName, type PowerResponseBody } from '@tether/protocol';
import { access } from '../../http.js';
import { COMMON, HttpError, Ok, Params, errs, opt, type Managers } from './common.js';

const PidParams = Type.Object({ id: Params.properties.id, pid: Type.Integer({ minimum: 1, maximum: 4_194_304 }) });
const PowerStatus = Type.Object({
  uptimeSec: Type.Number(),
  bootTime: Type.Integer(),
  scheduled: Type.Optional(Type.Object({ action: Type.String(), at: Type.Integer() })),
  hibernate: Type.Optional(SleepState),
  suspend: Type.Optional(SleepState),
});
const POWER_ACTIONS = ['reboot', 'poweroff', 'hibernate', 'suspend'] as const;
type PowerAction = (typeof POWER_ACTIONS)[number];
/**
 * An agent from before hibernate and suspend cannot read `sleep_states`: it answers with an error
 * (or, older still, not at all: so the question is bounded by the agent's own 10 s for systemctl).
 */
const TOO_OLD: SleepState = { possible: false, reason: "this host's agent is older than hibernate and suspend: update it" };
const SLEEP_STATES_MS = 12_000;

export function hostManagerRoutes(m: Managers) {
  const viewer = access({ role: 'viewer', scope: 'read' });
  const read = access({ role: 'operator', scope: 'read' });
  const execute = access({ role: 'operator', scope: 'execute' });
  const danger = access({ role: 'operator', scope: 'execute', stepUp: true });

  return async function (app: FastifyInstance): Promise<void> {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const host = (req: unknown) => m.host(req as never);

    // --- processes and ports (capability `process`)
    r.get(
      '/api/v1/hosts/:id/ps',
      { ...viewer, schema: { tags: ['processes'], summary: 'Processes now, with ppid for a tree, CPU %, memory and listening ports (up to 1,000: the top by CPU and by memory)', params: Params, response: { 200: Type.Object({ processes: Type.Array(ProcessRow), total: Type.Integer() }), ...errs(...COMMON) } } },
      m.handle(async (req) => {
        const a = await m.ask(await host(req), 'process.request', { op: 'list' });
        return { processes: a.processes ?? [], total: a.total ?? 0 };
      }),
    );
    r.post(
      '/api/v1/hosts/:id/ps/:pid/signal',
      { ...execute, schema: { tags: ['processes'], summary: 'Send a signal to a process (TERM or SIGTERM alike; 404 when there is no such pid)', params: PidParams, body: Type.Object({ signal: Type.Enum(SIGNAL_INPUTS) }, { additionalProperties: false }), response: { 200: Ok, ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string; pid: number }; body: { signal: string } }) => {
        await m.ask(await host(req), 'process.request', { op: 'signal', pid: req.params.pid, signal: signalName(req.body.signal)! });
        return { ok: true };
      }),
    );
    r.get(
      '/api/v1/hosts/:id/ps/:pid/environ',
      { ...danger, schema: { tags: ['processes'], summary: "A process's environment (may hold secrets: step-up)", params: PidParams, response: { 200: Type.Object({ env: Type.Record(Type.String(), Type.String()) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string; pid: number } }) => ({ env: (await m.ask(await host(req), 'process.request', { op: 'environ', pid: req.params.pid })).env })),
    );
    r.get(
      '/api/v1/hosts/:id/agent-environ',
      { ...danger, schema: { tags: ['processes'], summary: "The agent's own environment (step-up)", params: Params, response: { 200: Type.Object({ env: Type.Record(Type.String(), Type.String()) }), ...errs(...COMMON) } } },
      m.handle(async (req) => ({ env: (await m.ask(await host(req), 'process.request', { op: 'environ', self: true })).env })),
    );
    r.get(
      '/api/v1/hosts/:id/ports',
      { ...viewer, schema: { tags: ['processes'], summary: 'Listening TCP and bound UDP sockets and the process holding each (port= for one port)', params: Params, querystring: Type.Object({ port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })) }), response: { 200: Type.Object({ ports: Type.Array(ListeningPort) }), ...errs(...COMMON) } } },
      m.handle(async (req: { params: { id: string }; query: { port?: number } }) => ({ ports: (await m.ask(await host(req), 'process.request', { op: 'ports', ...opt('port', req.query.port) })).ports ?? [] })),
    );

    // --- power (capability `power`): every change needs a step-up
    r.get(
      '/api/v1/hosts/:id/power',
      { ...viewer, schema: { tags: ['power'], summary: 'Uptime, boot time, any scheduled shutdown, and whether the host can hibernate and suspend now (with the reason when not)', params: Params, response: { 200: PowerStatus, ...errs(...COMMON) } } },
      m.handle(async (req) => {
        const h = await host(req);
        const [a, s] = await Promise.all([
          m.ask(h, 'power.request', { op: 'status' }),
          m.ask(h, 'power.request', { op: 'sleep_states' }, SLEEP_STATES_MS).catch((err: unknown) => {
            if (err instanceof HttpError && (err.code === 'bad_agent_answer' || err.code === 'agent_timeout')) return { sleep: { hibernate: TOO_OLD, suspend: TOO_OLD } };
            throw err;
          }),
        ]);
        const sleep = (s as PowerResponseBody).sleep;
        return { uptimeSec: a.uptimeSec, bootTime: a.bootTime, ...opt('scheduled', a.scheduled), ...opt('hibernate', sleep?.hibernate), ...opt('suspend', sleep?.suspend) };
      }),
    );
    r.post(
      '/api/v1/hosts/:id/power',
      {
        ...danger,
        schema: {
          tags: ['power'],
          summary: 'Reboot, power off, hibernate or suspend now (the agent answers, then acts a second later). Hibernate and suspend only where `systemctl can-hibernate|can-suspend` says yes: otherwise 409 unavailable with the reason',
          params: Params,
          body: Type.Object({ action: Type.Enum(POWER_ACTIONS) }, { additionalProperties: false }),
          response: { 200: Ok, ...errs(...COMMON) },
        },
      },
      m.handle(async (req: { params: { id: string }; body: { action: PowerAction }; log: import('pino').Logger }) => {
        await m.ask(await host(req), 'power.request', { op: req.body.action });
        req.log.warn({ agentId: req.params.id, action: req.body.action }, 'power action sent');
        return { ok: true };
      }),
    );
    r.post(
      '/api/v1/hosts/:id/power/schedule',
      {
        ...danger,
        schema: {
          tags: ['power'],
          summary: 'Schedule a reboot or power-off in N minutes (shutdown +N)',
          params: Params,
          body: Type.Object({ action: Type.Enum(['reboot', 'poweroff'] as const), minutes: Type.Integer({ minimum: 1, maximum: 10_080 }), message: Type.Optional(Type.String({ maxLength: 256, pattern: '^[^\\n\\r\\x00]*$' })) }, { additionalProperties: false }),
          response: { 200: PowerStatus, ...errs(...COMMON) },
        },
      },
      m.handle(async (req: { params: { id: string }; body: { action: 'reboot' | 'poweroff'; minutes: number; message?: string } }) => {
        const a = await m.ask(await host(req), 'power.request', { op: 'schedule', action: req.body.action, minutes: req.body.minutes, ...opt('message', req.body.message) });
        return { uptimeSec: a.uptimeSec, bootTime: a.bootTime, ...opt('scheduled', a.scheduled) };
      }),
    );
    r.delete(
      '/api/v1/hosts/:id/power/schedule',
      { ...danger, schema: { tags: ['power'], summary: 'Cancel a scheduled shutdown (shutdown -c)', params: Params, response: { 200: PowerStatus, ...errs(...COMMON) } } },
      m.handle(async (req) => {
        const a = await m.ask(await host(req), 'power.request', { op: 'cancel' });
        return { uptimeSec: a.uptimeSec, bootTime: a.bootTime, ...opt('scheduled', a.scheduled) };
      }),
    );

    // --- /etc/hosts (capability `files`)
    r.get(
      '/api/v1/hosts/:id/hosts-file',
      { ...read, schema: { tags: ['hosts-file'], summary: "The host's /etc/hosts: entries, the text, and its sha256 (send it back as expectSha256 to write)", params: Params, response: { 200: Type.Object({ entries: Type.Array(HostsEntry), content: Type.String(), sha256: Type.String() }), ...errs(...COMMON) } } },
      m.handle(async (req) => {
        const a = await m.ask(await host(req), 'hostsfile.request', { op: 'read' });
        return { entries: a.entries ?? [], content: a.content ?? '', sha256: a.sha256 ?? '' };
      }),
    );
    r.put(
      '/api/v1/hosts/:id/hosts-file',
      {
        ...danger,
        schema: {
          tags: ['hosts-file'],
          summary: "Replace /etc/hosts' entries (each address and name checked; the old file kept as a backup; 409 when expectSha256 no longer matches)",
          params: Params,
          body: Type.Object({ entries: Type.Array(HostsEntry, { maxItems: 4096 }), expectSha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })) }, { additionalProperties: false }),
          response: { 200: Type.Object({ entries: Type.Array(HostsEntry), sha256: Type.String(), backup: Type.String() }), ...errs(...COMMON) },
        },
      },
      m.handle(async (req: { params: { id: string }; body: { entries: HostsEntry[]; expectSha256?: string } }) => {
        const a = await m.ask(await host(req), 'hostsfile.request', { op: 'write', entries: req.body.entries, ...opt('expectSha256', req.body.expectSha256) });
        return { entries: a.entries ?? [], sha256: a.sha256 ?? '', backup: a.backup ?? '' };
      }),
    );
  };
}
