/**
 * Host managers: Docker, systemd, cron, processes and ports, power, the hosts file. Each manager is
 * one request/response pair (`<manager>.request` hub → agent, `<manager>.response` agent → hub with
 * `re` = the request), answered by one agent service that checks its capability lock first.
 *
 * Long outputs that follow (docker logs --follow, journalctl --follow) are streams: the request
 * names a `streamId`, the agent answers at once (ok or error), then sends `stream.data` frames and a
 * final `stream.end`. Flow control is by credit: the agent may have at most `window` bytes of data
 * sent and not yet granted back; the hub grants bytes back (`stream.credit`) as its HTTP client
 * drains them, so a slow reader slows the source instead of filling memory on either side.
 * `stream.cancel` (hub → agent) stops the source.
 */
import Type, { type Static } from 'typebox';
import { LIMITS } from './limits.js';
import { SIGNALS } from './constants.js';

const Str = (max: number) => Type.String({ maxLength: max });
const Int0 = Type.Integer({ minimum: 0 });
const Labels = Type.Record(Type.String({ pattern: '^[^\\s=]{1,255}$' }), Type.String({ maxLength: 4096 }), { maxProperties: 256, additionalProperties: false });

/** Failures every manager may answer with. */
export const MANAGER_ERRORS = [
  /** the capability is off in this agent's local configuration */
  'refused',
  /** the thing managed is not on this host (no Docker socket, no systemd, no crontab binary) */
  'unavailable',
  'not_found',
  'bad_request',
  /** the engine refused in this state (container already running, name taken…) */
  'conflict',
  /** read-only mode: the agent allows reads only */
  'read_only',
  'permission',
  'timeout',
  'failed',
  'internal',
] as const;
export type ManagerErrorCode = (typeof MANAGER_ERRORS)[number];
export const ManagerError = Type.Object({ code: Type.Enum(MANAGER_ERRORS), message: Str(LIMITS.longText) }, { additionalProperties: false });
export type ManagerError = Static<typeof ManagerError>;

/** A stream id: 16–64 url-safe characters chosen by the hub. */
export const StreamId = Type.String({ minLength: 16, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
/** Bytes of stream data the agent may have in flight before the hub grants more. */
export const STREAM_WINDOW = 256 * 1024;
export const MAX_STREAM_CHUNK = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Shared names and their validation (both ends check; the agent again before it acts)

/** A Docker container or image reference: an id (prefix) or a name. Never starts with '-' or '/'. */
export const CONTAINER_REF = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';
export const IMAGE_REF = '^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,254}$';
/** A systemd unit name: unit name characters, a known suffix, no leading '-' (never an option). */
export const UNIT_NAME = '^[A-Za-z0-9:_.@\\\\-]{1,250}\\.(service|socket|target|timer|mount|automount|path|slice|scope|swap|device)$';
export const USER_NAME = '^[a-z_][a-z0-9_.-]{0,31}$';
export const CRON_ID = '^[a-z0-9]{8,16}$';

export const isUnitName = (s: string): boolean => new RegExp(UNIT_NAME).test(s) && !s.startsWith('-');
export const isContainerRef = (s: string): boolean => new RegExp(CONTAINER_REF).test(s);
export const isImageRef = (s: string): boolean => new RegExp(IMAGE_REF).test(s) && !s.includes('..');

// ---------------------------------------------------------------------------------------------
// Docker (capability `docker`): the Engine API over its unix socket

export const DOCKER_OPS = [
  'info',
  'containers',
  'inspect',
  'start',
  'stop',
  'restart',
  'kill',
  'pause',
  'unpause',
  'rename',
  'remove',
  'logs',
  'top',
  'stats',
  'create',
  'images',
  'image_inspect',
  'image_remove',
  'image_pull',
  /** an image from a root filesystem tarball on the host (docker import) */
  'image_import',
  'prune_containers',
  'prune_images',
] as const;
export type DockerOp = (typeof DOCKER_OPS)[number];
/** Operations that change nothing: allowed in the agent's read-only Docker mode. */
export const DOCKER_READ_OPS: readonly DockerOp[] = ['info', 'containers', 'inspect', 'logs', 'top', 'stats', 'images', 'image_inspect'];

export const PortBinding = Type.Object(
  {
    containerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Type.Optional(Type.Enum(['tcp', 'udp'] as const)),
    hostPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    hostIp: Type.Optional(Type.String({ maxLength: 45, pattern: '^[0-9a-fA-F.:]+$' })),
  },
  { additionalProperties: false },
);

/** What `docker run` takes, reduced to what a fleet needs. */
export const ContainerSpec = Type.Object(
  {
    image: Type.String({ pattern: IMAGE_REF }),
    name: Type.Optional(Type.String({ pattern: CONTAINER_REF })),
    command: Type.Optional(Type.Array(Str(4096), { maxItems: 256 })),
    entrypoint: Type.Optional(Type.Array(Str(4096), { maxItems: 64 })),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$' }), Str(32768), { maxProperties: 256, additionalProperties: false })),
    ports: Type.Optional(Type.Array(PortBinding, { maxItems: 64 })),
    /** host path or volume name : container path [: ro] */
    volumes: Type.Optional(Type.Array(Type.String({ maxLength: 4096, pattern: '^[^:]+:/[^:]*(:(ro|rw))?$' }), { maxItems: 64 })),
    restart: Type.Optional(Type.Enum(['no', 'always', 'unless-stopped', 'on-failure'] as const)),
    labels: Type.Optional(Labels),
    workdir: Type.Optional(Type.String({ maxLength: 4096, pattern: '^/' })),
    user: Type.Optional(Type.String({ maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' })),
    /** start it once created (docker run) */
    start: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ContainerSpec = Static<typeof ContainerSpec>;

export const DockerRequestBody = Type.Object(
  {
    op: Type.Enum(DOCKER_OPS),
    /** container (or, for image ops, image) id or name */
    ref: Type.Optional(Type.String({ maxLength: 255, pattern: IMAGE_REF })),
    all: Type.Optional(Type.Boolean()),
    force: Type.Optional(Type.Boolean()),
    /** remove anonymous volumes with the container */
    volumes: Type.Optional(Type.Boolean()),
    name: Type.Optional(Type.String({ pattern: CONTAINER_REF })),
    signal: Type.Optional(Type.Enum(SIGNALS)),
    timeoutSec: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    /** logs: last N lines; since: seconds since the epoch */
    tail: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    since: Type.Optional(Int0),
    timestamps: Type.Optional(Type.Boolean()),
    /** logs: follow as a stream (see stream.data) */
    streamId: Type.Optional(StreamId),
    spec: Type.Optional(ContainerSpec),
    /** image_import: the tarball on the host (inside the agent's file roots) */
    path: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, pattern: '^/' })),
    /** prune: only what carries this label (key or key=value) */
    label: Type.Optional(Type.String({ maxLength: 512, pattern: '^[^\\s=]{1,255}(=\\S{0,255})?$' })),
  },
  { additionalProperties: false },
);
export type DockerRequestBody = Static<typeof DockerRequestBody>;

export const ContainerSummary = Type.Object(
  {
    id: Str(128),
    names: Type.Array(Str(256), { maxItems: 16 }),
    image: Str(512),
    command: Str(4096),
    created: Int0,
    state: Str(32),
    status: Str(256),
    ports: Type.Array(Type.Object({ containerPort: Int0, hostPort: Type.Optional(Int0), hostIp: Type.Optional(Str(64)), protocol: Str(8) }, { additionalProperties: false }), { maxItems: 256 }),
    labels: Labels,
  },
  { additionalProperties: false },
);
export type ContainerSummary = Static<typeof ContainerSummary>;

export const ImageSummary = Type.Object(
  { id: Str(128), tags: Type.Array(Str(512), { maxItems: 64 }), created: Int0, size: Int0, containers: Type.Optional(Type.Integer()) },
  { additionalProperties: false },
);
export type ImageSummary = Static<typeof ImageSummary>;

export const ContainerStats = Type.Object(
  {
    cpuPercent: Type.Number({ minimum: 0 }),
    memoryBytes: Int0,
    memoryLimitBytes: Int0,
    netRxBytes: Int0,
    netTxBytes: Int0,
    blockReadBytes: Int0,
    blockWriteBytes: Int0,
    pids: Int0,
  },
  { additionalProperties: false },
);
export type ContainerStats = Static<typeof ContainerStats>;

/** Demultiplexed output: which stream each piece came from, in order. */
export const OutputChunk = Type.Object({ stream: Type.Enum(['stdout', 'stderr'] as const), data: Str(MAX_STREAM_CHUNK) }, { additionalProperties: false });
export type OutputChunk = Static<typeof OutputChunk>;
/** Logs returned in one answer (not followed) are cut to this many bytes, newest kept. */
export const MAX_LOG_BYTES = 512 * 1024;

export const DockerResponseBody = Type.Object(
  {
    ok: Type.Boolean(),
    error: Type.Optional(ManagerError),
    containers: Type.Optional(Type.Array(ContainerSummary, { maxItems: 2000 })),
    images: Type.Optional(Type.Array(ImageSummary, { maxItems: 2000 })),
    /**
     * The engine's own JSON (info + version, container or image inspect), passed through: its shape
     * is Docker's API, not ours. The agent drops it when its JSON exceeds 512 KiB.
     */
    detail: Type.Optional(Type.Unknown()),
    logs: Type.Optional(Type.Array(OutputChunk, { maxItems: 20_000 })),
    truncated: Type.Optional(Type.Boolean()),
    top: Type.Optional(Type.Object({ titles: Type.Array(Str(64), { maxItems: 64 }), processes: Type.Array(Type.Array(Str(4096), { maxItems: 64 }), { maxItems: 4096 }) }, { additionalProperties: false })),
    stats: Type.Optional(ContainerStats),
    /** create: the new container's id; prune: what was removed */
    id: Type.Optional(Str(128)),
    warnings: Type.Optional(Type.Array(Str(1024), { maxItems: 64 })),
    removed: Type.Optional(Type.Array(Str(512), { maxItems: 10_000 })),
    spaceReclaimed: Type.Optional(Int0),
  },
  { additionalProperties: false },
);
export type DockerResponseBody = Static<typeof DockerResponseBody>;

// ---------------------------------------------------------------------------------------------
// systemd (capability `systemd`): systemctl and journalctl

export const SYSTEMD_OPS = ['list', 'show', 'start', 'stop', 'restart', 'reload', 'enable', 'disable', 'mask', 'unmask', 'journal', 'daemon_reload'] as const;
export type SystemdOp = (typeof SYSTEMD_OPS)[number];

export const SystemdRequestBody = Type.Object(
  {
    op: Type.Enum(SYSTEMD_OPS),
    unit: Type.Optional(Type.String({ pattern: UNIT_NAME })),
    /** list: only units of this type, or matching this glob of unit-name characters */
    type: Type.Optional(Type.Enum(['service', 'socket', 'target', 'timer', 'mount', 'automount', 'path', 'slice', 'scope', 'swap', 'device'] as const)),
    pattern: Type.Optional(Type.String({ maxLength: 256, pattern: '^[A-Za-z0-9:_.@*?\\[\\]\\\\-]+$' })),
    /** journal: last N entries; since: ms since the epoch; follow: a stream */
    lines: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    since: Type.Optional(Int0),
    streamId: Type.Optional(StreamId),
    /** enable/disable/mask: also start/stop now */
    now: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type SystemdRequestBody = Static<typeof SystemdRequestBody>;

export const UnitSummary = Type.Object(
  { unit: Str(256), load: Str(32), active: Str(32), sub: Str(32), description: Str(1024) },
  { additionalProperties: false },
);
export type UnitSummary = Static<typeof UnitSummary>;

export const JournalEntry = Type.Object(
  { ts: Int0, message: Str(16384), priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 })), pid: Type.Optional(Int0), unit: Type.Optional(Str(256)), identifier: Type.Optional(Str(256)) },
  { additionalProperties: false },
);
export type JournalEntry = Static<typeof JournalEntry>;

export const SystemdResponseBody = Type.Object(
  {
    ok: Type.Boolean(),
    error: Type.Optional(ManagerError),
    units: Type.Optional(Type.Array(UnitSummary, { maxItems: 10_000 })),
    /** show: systemctl's properties (name → value) */
    properties: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9]{1,64}$' }), Str(8192), { maxProperties: 512, additionalProperties: false })),
    entries: Type.Optional(Type.Array(JournalEntry, { maxItems: 10_000 })),
    truncated: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type SystemdResponseBody = Static<typeof SystemdResponseBody>;

// ---------------------------------------------------------------------------------------------
// cron (capability `cron`): tagged entries in a user's crontab

export const CRON_OPS = ['list', 'create', 'update', 'delete', 'runs', 'validate'] as const;
export type CronOp = (typeof CRON_OPS)[number];
/** five fields, or one of the @ names cron knows */
export const CRON_SCHEDULE = '^(@(reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9*/,A-Za-z-]+( [0-9*/,A-Za-z-]+){4})$';

export const CronEntryInput = Type.Object(
  {
    schedule: Type.String({ maxLength: 128, pattern: CRON_SCHEDULE }),
    /** a shell command line, as cron runs it (/bin/sh -c); one line */
    command: Type.String({ minLength: 1, maxLength: 4096, pattern: '^[^\\n\\r\\x00]+$' }),
    name: Type.Optional(Type.String({ maxLength: 128, pattern: '^[^\\n\\r\\x00]*$' })),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type CronEntryInput = Static<typeof CronEntryInput>;

export const CronRequestBody = Type.Object(
  {
    op: Type.Enum(CRON_OPS),
    /** whose crontab (default root) */
    user: Type.Optional(Type.String({ pattern: USER_NAME })),
    id: Type.Optional(Type.String({ pattern: CRON_ID })),
    entry: Type.Optional(Type.Partial(CronEntryInput)),
  },
  { additionalProperties: false },
);
export type CronRequestBody = Static<typeof CronRequestBody>;

export const CronRun = Type.Object(
  { startedAt: Int0, endedAt: Type.Optional(Int0), exitCode: Type.Optional(Type.Integer()), output: Str(16384), truncated: Type.Boolean() },
  { additionalProperties: false },
);
export type CronRun = Static<typeof CronRun>;

export const CronEntry = Type.Object(
  {
    id: Str(16),
    user: Str(32),
    name: Str(128),
    schedule: Str(128),
    command: Str(4096),
    enabled: Type.Boolean(),
    /** the next times cron will run it (ms since the epoch, host's local time rules); empty for @reboot or disabled */
    nextRuns: Type.Array(Int0, { maxItems: 10 }),
    lastRun: Type.Optional(CronRun),
  },
  { additionalProperties: false },
);
export type CronEntry = Static<typeof CronEntry>;

export const CronResponseBody = Type.Object(
  {
    ok: Type.Boolean(),
    error: Type.Optional(ManagerError),
    entries: Type.Optional(Type.Array(CronEntry, { maxItems: 1000 })),
    entry: Type.Optional(CronEntry),
    /** lines in the crontab that Tether does not manage (counted, never shown or touched) */
    untagged: Type.Optional(Int0),
    runs: Type.Optional(Type.Array(CronRun, { maxItems: 50 })),
    nextRuns: Type.Optional(Type.Array(Int0, { maxItems: 10 })),
  },
  { additionalProperties: false },
);
export type CronResponseBody = Static<typeof CronResponseBody>;

// ---------------------------------------------------------------------------------------------
// Processes and ports (capability `process`)

export const PROCESS_OPS = ['list', 'signal', 'ports', 'environ'] as const;
export const ProcessRequestBody = Type.Object(
  {
    op: Type.Enum(PROCESS_OPS),
    pid: Type.Optional(Type.Integer({ minimum: 1, maximum: 4_194_304 })),
    signal: Type.Optional(Type.Enum(SIGNALS)),
    /** ports: only this port */
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    /** environ: the agent's own environment instead of a pid's */
    self: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ProcessRequestBody = Static<typeof ProcessRequestBody>;

export const ProcessRow = Type.Object(
  {
    pid: Int0,
    ppid: Int0,
    user: Str(64),
    state: Str(4),
    name: Str(64),
    command: Str(4096),
    startTime: Int0,
    cpuPercent: Type.Optional(Type.Number({ minimum: 0 })),
    rssBytes: Int0,
    memPercent: Type.Number({ minimum: 0 }),
    threads: Int0,
    listenPorts: Type.Array(Type.Integer({ minimum: 0, maximum: 65535 }), { maxItems: 64 }),
  },
  { additionalProperties: false },
);
export type ProcessRow = Static<typeof ProcessRow>;

export const ListeningPort = Type.Object(
  { proto: Type.Enum(['tcp', 'tcp6', 'udp', 'udp6'] as const), address: Str(64), port: Int0, pid: Type.Optional(Int0), process: Type.Optional(Str(64)), user: Type.Optional(Str(64)) },
  { additionalProperties: false },
);
export type ListeningPort = Static<typeof ListeningPort>;

export const ProcessResponseBody = Type.Object(
  {
    ok: Type.Boolean(),
    error: Type.Optional(ManagerError),
    processes: Type.Optional(Type.Array(ProcessRow, { maxItems: 1000 })),
    /** how many processes there are (the list may hold fewer) */
    total: Type.Optional(Int0),
    ports: Type.Optional(Type.Array(ListeningPort, { maxItems: 4096 })),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[^=\\x00]{1,256}$' }), Str(32768), { maxProperties: 1024, additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type ProcessResponseBody = Static<typeof ProcessResponseBody>;

// ---------------------------------------------------------------------------------------------
// Power (capability `power`)

/**
 * `hibernate`, `suspend` and `sleep_states` came later: an older agent refuses them as an unknown
 * op (and never sends `sleep`), so a hub asks `sleep_states` apart from `status` and takes a refusal
 * as "this agent cannot".
 */
export const POWER_OPS = ['status', 'reboot', 'poweroff', 'schedule', 'cancel', 'hibernate', 'suspend', 'sleep_states'] as const;
/** Whether the host can enter a sleep state now (`systemctl can-hibernate|can-suspend` says yes), and why not. */
export const SleepState = Type.Object({ possible: Type.Boolean(), reason: Type.Optional(Str(500)) }, { additionalProperties: false });
export type SleepState = Static<typeof SleepState>;
export const PowerRequestBody = Type.Object(
  {
    op: Type.Enum(POWER_OPS),
    /** schedule: what, and in how many minutes (shutdown +N) */
    action: Type.Optional(Type.Enum(['reboot', 'poweroff'] as const)),
    minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_080 })),
    message: Type.Optional(Type.String({ maxLength: 256, pattern: '^[^\\n\\r\\x00]*$' })),
  },
  { additionalProperties: false },
);
export type PowerRequestBody = Static<typeof PowerRequestBody>;

export const PowerResponseBody = Type.Object(
  {
    ok: Type.Boolean(),
    error: Type.Optional(ManagerError),
    uptimeSec: Type.Optional(Type.Number({ minimum: 0 })),
    bootTime: Type.Optional(Int0),
    /** a shutdown scheduled with `shutdown +N`, if any */
    scheduled: Type.Optional(Type.Object({ action: Str(32), at: Int0 }, { additionalProperties: false })),
    /** sleep_states */
    sleep: Type.Optional(Type.Object({ hibernate: SleepState, suspend: SleepState }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type PowerResponseBody = Static<typeof PowerResponseBody>;

// ---------------------------------------------------------------------------------------------
// /etc/hosts (capability `files`)

export const HOSTS_OPS = ['read', 'write'] as const;
export const HostsEntry = Type.Object(
  {
    ip: Type.String({ maxLength: 45, pattern: '^[0-9a-fA-F.:]+$' }),
    names: Type.Array(Type.String({ maxLength: 253, pattern: '^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$' }), { minItems: 1, maxItems: 32 }),
    comment: Type.Optional(Type.String({ maxLength: 256, pattern: '^[^\\n\\r\\x00]*$' })),
  },
  { additionalProperties: false },
);
export type HostsEntry = Static<typeof HostsEntry>;

export const HostsRequestBody = Type.Object(
  {
    op: Type.Enum(HOSTS_OPS),
    /** write: the whole file's entries (comments and blank lines of the old file are kept at the top) */
    entries: Type.Optional(Type.Array(HostsEntry, { maxItems: 4096 })),
    /** write: refuse unless the file still has this sha256 (as read) */
    expectSha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
  },
  { additionalProperties: false },
);
export type HostsRequestBody = Static<typeof HostsRequestBody>;

export const HostsResponseBody = Type.Object(
  {
    ok: Type.Boolean(),
    error: Type.Optional(ManagerError),
    entries: Type.Optional(Type.Array(HostsEntry, { maxItems: 4096 })),
    content: Type.Optional(Str(1024 * 1024)),
    sha256: Type.Optional(Str(64)),
    /** write: where the previous file was kept */
    backup: Type.Optional(Str(4096)),
  },
  { additionalProperties: false },
);
export type HostsResponseBody = Static<typeof HostsResponseBody>;

// ---------------------------------------------------------------------------------------------
// Streams (follow)

export const StreamDataBody = Type.Object(
  { streamId: StreamId, seq: Int0, stream: Type.Optional(Type.Enum(['stdout', 'stderr'] as const)), data: Str(MAX_STREAM_CHUNK) },
  { additionalProperties: false },
);
export type StreamDataBody = Static<typeof StreamDataBody>;
export const StreamEndBody = Type.Object({ streamId: StreamId, error: Type.Optional(ManagerError) }, { additionalProperties: false });
export type StreamEndBody = Static<typeof StreamEndBody>;
export const StreamCreditBody = Type.Object({ streamId: StreamId, bytes: Type.Integer({ minimum: 1, maximum: 16 * 1024 * 1024 }) }, { additionalProperties: false });
export type StreamCreditBody = Static<typeof StreamCreditBody>;
export const StreamCancelBody = Type.Object({ streamId: StreamId }, { additionalProperties: false });

export const MANAGER_BODIES = {
  'docker.request': DockerRequestBody,
  'docker.response': DockerResponseBody,
  'systemd.request': SystemdRequestBody,
  'systemd.response': SystemdResponseBody,
  'cron.request': CronRequestBody,
  'cron.response': CronResponseBody,
  'process.request': ProcessRequestBody,
  'process.response': ProcessResponseBody,
  'power.request': PowerRequestBody,
  'power.response': PowerResponseBody,
  'hostsfile.request': HostsRequestBody,
  'hostsfile.response': HostsResponseBody,
  'stream.data': StreamDataBody,
  'stream.end': StreamEndBody,
  'stream.credit': StreamCreditBody,
  'stream.cancel': StreamCancelBody,
};
export const MANAGERS_HUB_TO_AGENT = ['docker.request', 'systemd.request', 'cron.request', 'process.request', 'power.request', 'hostsfile.request', 'stream.credit', 'stream.cancel'] as const;
export const MANAGERS_AGENT_TO_HUB = ['docker.response', 'systemd.response', 'cron.response', 'process.response', 'power.response', 'hostsfile.response', 'stream.data', 'stream.end'] as const;
