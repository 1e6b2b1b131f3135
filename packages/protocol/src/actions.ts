/**
 * Actions the hub asks of an agent: tasks (commands, script bundles) and file operations.
 *
 * Tasks are at-most-once and never lost:
 * - a task id is an idempotency key: an agent runs each id once, whatever the hub sends
 *   (it journals the ids it has seen on disk);
 * - a result the agent cannot deliver waits in a bounded on-disk outbox until the hub acks it
 *   (`task.ack`, sent only after the hub has committed the result);
 * - after every (re)connect the agent first sends `task.sync` (what it is running, what results it
 *   holds), and the hub re-sends only tasks the agent has not seen.
 *
 * File contents never travel on this link: a transfer is a separate HTTP request the agent makes
 * to the hub (`/agent/transfers/:id`), so a 1 GB copy streams with TCP backpressure and
 * does not stall heartbeats and reports on the control link.
 */
import Type, { type Static } from 'typebox';
import { LIMITS } from './limits.js';
import { SIGNALS } from './constants.js';

const Id = Type.String({ minLength: 1, maxLength: LIMITS.id, pattern: '^[A-Za-z0-9._:-]+$' });
/** An absolute path; the agent resolves it and checks it against its roots. */
export const AbsPath = Type.String({ minLength: 1, maxLength: 4096, pattern: '^/' });
/** A user or group: a name as useradd allows it, or a numeric id. */
export const Account = Type.String({ minLength: 1, maxLength: 32, pattern: '^([a-z_][a-z0-9_.-]*\\$?|[0-9]+)$' });
export const Sha256Hex = Type.String({ minLength: 64, maxLength: 64, pattern: '^[0-9a-f]{64}$' });


/** How to become another user: setuid (the agent switches uid/gid itself), or through sudo / su. */
export const RUN_AS_METHODS = ['setuid', 'sudo', 'su'] as const;

/** Output kept per stream in a result (head and tail are kept, the middle is cut and marked). */
export const MAX_TASK_OUTPUT = 384 * 1024;
export const DEFAULT_TASK_OUTPUT = 256 * 1024;
export const MAX_TASK_STDIN = 256 * 1024;
export const MAX_TASK_TIMEOUT_SEC = 7 * 86400;

export const ExecSpec = Type.Object(
  {
    /** argv: executed directly, no shell. With `shell: true`, exactly one element: a script for /bin/sh -c. */
    command: Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 4096 }),
    shell: Type.Optional(Type.Boolean()),
    cwd: Type.Optional(AbsPath),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' }), Type.String({ maxLength: 32768 }), { maxProperties: 256, additionalProperties: false })),
    timeoutSec: Type.Optional(Type.Number({ minimum: 0.1, maximum: MAX_TASK_TIMEOUT_SEC })),
    user: Type.Optional(Account),
    runAs: Type.Optional(Type.Enum(RUN_AS_METHODS)),
    stdin: Type.Optional(Type.String({ maxLength: MAX_TASK_STDIN })),
    /** a file removed once the command has ended (a script the job uploaded, say); checked against the file roots */
    deleteAfter: Type.Optional(AbsPath),
    /** bytes of output kept per stream in the result */
    maxOutput: Type.Optional(Type.Integer({ minimum: 1024, maximum: MAX_TASK_OUTPUT })),
    /** send output as it comes (task.output), besides keeping it for the result */
    stream: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ExecSpec = Static<typeof ExecSpec>;

/**
 * A script bundle (JKStack's "layout"): a tar archive with `manifest.json` at its root naming the
 * entry point. The agent downloads it from the hub, checks its sha256, unpacks it into a fresh
 * directory, runs the entry there and removes the directory afterwards.
 */
export const BundleSpec = Type.Object(
  {
    transferId: Id,
    sha256: Sha256Hex,
    size: Type.Integer({ minimum: 1, maximum: 256 * 1024 * 1024 }),
    /** what ExecSpec.command would be, relative to the bundle's directory; defaults to the manifest's entry */
    args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 256 })),
    exec: Type.Omit(ExecSpec, ['command', 'shell', 'cwd', 'deleteAfter']),
  },
  { additionalProperties: false },
);
export type BundleSpec = Static<typeof BundleSpec>;

/**
 * An upgrade of the agent itself (`tether agent upgrade`): the artifact for the host's architecture,
 * fetched over the agent's authenticated transfer, checked for size and sha256, installed beside the
 * running version. Agents refuse it unless their own config says `auto_update = true`.
 */
export const UpgradeSpec = Type.Object(
  {
    transferId: Id,
    sha256: Sha256Hex,
    size: Type.Integer({ minimum: 1, maximum: 512 * 1024 * 1024 }),
    version: Type.String({ pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?$', maxLength: 64 }),
    /** the architecture it was built for: x64 or arm64 */
    arch: Type.String({ pattern: '^(x64|arm64)$' }),
  },
  { additionalProperties: false },
);
export type UpgradeSpec = Static<typeof UpgradeSpec>;

/** hub → agent: run this. */
export const TaskStartBody = Type.Object(
  {
    taskId: Id,
    exec: Type.Optional(ExecSpec),
    bundle: Type.Optional(BundleSpec),
    upgrade: Type.Optional(UpgradeSpec),
  },
  { additionalProperties: false },
);
export type TaskStartBody = Static<typeof TaskStartBody>;

/** hub → agent: signal a running task's process group. */
export const TaskKillBody = Type.Object({ taskId: Id, signal: Type.Enum(SIGNALS) }, { additionalProperties: false });

/** agent → hub: the task has started (or, after a reconnect, is still running). */
export const TaskAcceptedBody = Type.Object(
  { taskId: Id, pid: Type.Optional(Type.Integer({ minimum: 1 })), startedAt: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);

/** agent → hub: live output; best effort (the result keeps the output for good). */
export const TaskOutputBody = Type.Object(
  {
    taskId: Id,
    seq: Type.Integer({ minimum: 0 }),
    stream: Type.Enum(['stdout', 'stderr'] as const),
    data: Type.String({ maxLength: 256 * 1024 }),
  },
  { additionalProperties: false },
);
export type TaskOutputBody = Static<typeof TaskOutputBody>;

export const TASK_STATUSES = [
  /** the command ran and exited (any exit code) */
  'exited',
  /** ended by a signal someone sent (kill) */
  'killed',
  /** ended because it ran past its timeout */
  'timeout',
  /** could not be started (no such command, bad user, bad cwd…) */
  'failed',
  /** not allowed by this agent's local configuration (the capability lock) */
  'refused',
  /** the agent stopped while the task ran; its end is unknown */
  'lost',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** agent → hub: how a task ended. Kept in the agent's outbox until `task.ack`. */
export const TaskResultBody = Type.Object(
  {
    taskId: Id,
    status: Type.Enum(TASK_STATUSES),
    exitCode: Type.Union([Type.Integer(), Type.Null()]),
    signal: Type.Union([Type.String({ maxLength: 16 }), Type.Null()]),
    stdout: Type.String({ maxLength: MAX_TASK_OUTPUT + 256 }),
    stderr: Type.String({ maxLength: MAX_TASK_OUTPUT + 256 }),
    /** total bytes the command wrote, kept or not */
    stdoutBytes: Type.Integer({ minimum: 0 }),
    stderrBytes: Type.Integer({ minimum: 0 }),
    truncated: Type.Boolean(),
    startedAt: Type.Integer({ minimum: 0 }),
    endedAt: Type.Integer({ minimum: 0 }),
    error: Type.Optional(Type.String({ maxLength: LIMITS.longText })),
  },
  { additionalProperties: false },
);
export type TaskResultBody = Static<typeof TaskResultBody>;

/** hub → agent: the result of this task is committed; drop it from the outbox. */
export const TaskAckBody = Type.Object({ taskId: Id }, { additionalProperties: false });

/**
 * hub → agent: send `task.sync` and the results not yet acknowledged again, as after connecting.
 * A cluster's job scheduler moving to another hub asks this of every agent, so that the new one
 * learns what each agent runs and holds without waiting for reconnections.
 */
export const TaskResyncBody = Type.Object({}, { additionalProperties: false });

/** agent → hub, first after every handshake: tasks running now, and tasks whose results wait in the outbox. */
export const TaskSyncBody = Type.Object(
  {
    running: Type.Array(Id, { maxItems: 10_000 }),
    done: Type.Array(Id, { maxItems: 10_000 }),
  },
  { additionalProperties: false },
);
export type TaskSyncBody = Static<typeof TaskSyncBody>;

// ---------------------------------------------------------------------------------------------
// Files

export const FILE_OPS = ['ls', 'stat', 'delete', 'mkdir', 'send', 'receive', 'fetch'] as const;
export type FileOp = (typeof FILE_OPS)[number];

/**
 * hub → agent: one file operation. `send`: the agent streams the file to the hub (PUT on the
 * transfer). `receive`: the agent streams it from the hub (GET on the transfer) into a temporary
 * file, verifies the sha256 when given, sets mode and owner, and renames it into place. `fetch`:
 * the same, but from `url`.
 */
export const FileRequestBody = Type.Object(
  {
    op: Type.Enum(FILE_OPS),
    path: AbsPath,
    recursive: Type.Optional(Type.Boolean()),
    /** octal permission bits, e.g. 0o644 = 420 */
    mode: Type.Optional(Type.Integer({ minimum: 0, maximum: 0o7777 })),
    owner: Type.Optional(Account),
    group: Type.Optional(Account),
    transferId: Type.Optional(Type.String({ minLength: 32, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
    url: Type.Optional(Type.String({ maxLength: 4096, pattern: '^https?://' })),
    sha256: Type.Optional(Sha256Hex),
    size: Type.Optional(Type.Integer({ minimum: 0 })),
    /** refuse to replace an existing file */
    noClobber: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type FileRequestBody = Static<typeof FileRequestBody>;

export const FileEntry = Type.Object(
  {
    name: Type.String({ maxLength: 4096 }),
    type: Type.Enum(['file', 'dir', 'link', 'other'] as const),
    mode: Type.Integer({ minimum: 0 }),
    owner: Type.String({ maxLength: 64 }),
    group: Type.String({ maxLength: 64 }),
    size: Type.Integer({ minimum: 0 }),
    mtime: Type.Integer({ minimum: 0 }),
    /** where a symbolic link points */
    target: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type FileEntry = Static<typeof FileEntry>;

export const FILE_ERRORS = ['refused', 'outside_roots', 'not_found', 'exists', 'not_a_directory', 'is_a_directory', 'permission', 'checksum', 'too_large', 'no_space', 'transfer', 'bad_request', 'internal'] as const;
export type FileErrorCode = (typeof FILE_ERRORS)[number];

/** agent → hub, `re` = the request: the outcome. */
export const FileResponseBody = Type.Object(
  {
    ok: Type.Boolean(),
    error: Type.Optional(Type.Object({ code: Type.Enum(FILE_ERRORS), message: Type.String({ maxLength: LIMITS.longText }) }, { additionalProperties: false })),
    entries: Type.Optional(Type.Array(FileEntry, { maxItems: 10_000 })),
    /** more entries than were sent */
    truncated: Type.Optional(Type.Boolean()),
    stat: Type.Optional(FileEntry),
    sha256: Type.Optional(Sha256Hex),
    bytes: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type FileResponseBody = Static<typeof FileResponseBody>;

export const ACTION_BODIES = {
  'task.start': TaskStartBody,
  'task.kill': TaskKillBody,
  'task.ack': TaskAckBody,
  'task.resync': TaskResyncBody,
  'task.accepted': TaskAcceptedBody,
  'task.output': TaskOutputBody,
  'task.result': TaskResultBody,
  'task.sync': TaskSyncBody,
  'file.request': FileRequestBody,
  'file.response': FileResponseBody,
};
export const ACTIONS_HUB_TO_AGENT = ['task.start', 'task.kill', 'task.ack', 'task.resync', 'file.request'] as const;
export const ACTIONS_AGENT_TO_HUB = ['task.accepted', 'task.output', 'task.result', 'task.sync', 'file.response'] as const;
