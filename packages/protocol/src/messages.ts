/**
 * The hub–agent wire protocol. Every frame is one JSON envelope:
 *
 *   { "v": 1, "type": "hello", "id": "…", "re": "…"?, "body": { … } }
 *
 * `id` is unique per sender and connection; `re` names the message being answered.
 * Each type has a schema for its body, and both ends validate every frame before acting on it.
 */
import Type, { type Static, type TSchema } from 'typebox';
import { LIMITS, PROTOCOL_VERSION } from './limits.js';
import { CapabilitySchema, HostFacts } from './facts.js';
import { ACTION_BODIES, ACTIONS_AGENT_TO_HUB, ACTIONS_HUB_TO_AGENT } from './actions.js';
import { MANAGER_BODIES, MANAGERS_AGENT_TO_HUB, MANAGERS_HUB_TO_AGENT } from './managers.js';
import { TERMINAL_BODIES, TERMINAL_AGENT_TO_HUB, TERMINAL_HUB_TO_AGENT } from './terminal.js';
import { AgentSelfSchema, ConnectionsSummarySchema, ContainersSummarySchema, UnitsSummarySchema, GpuSummarySchema, HostStaticSchema, HostUsageSchema, ProcessSummarySchema, SensorsSummarySchema } from './metrics.js';

const Id = Type.String({ minLength: 1, maxLength: LIMITS.id, pattern: '^[A-Za-z0-9._:-]+$' });
const B64Url = (min: number, max: number) => Type.String({ minLength: min, maxLength: max, pattern: '^[A-Za-z0-9_-]+$' });

export const Envelope = Type.Object(
  {
    v: Type.Integer({ minimum: 1, maximum: 1000 }),
    type: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_.]*$' }),
    id: Id,
    re: Type.Optional(Id),
    body: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
export type Envelope = Static<typeof Envelope>;

/** hub → agent, first frame on a new connection: a fresh nonce the agent must sign. */
export const ChallengeBody = Type.Object(
  {
    nonce: B64Url(32, 128),
    protocol: Type.Integer({ minimum: 1 }),
    hubVersion: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);

/** agent → hub: who I am (or the enrollment token I carry), proof of key possession, and my host's facts. */
export const HelloBody = Type.Object(
  {
    protocol: Type.Integer({ minimum: 1 }),
    agentVersion: Type.String({ maxLength: 64 }),
    agentId: Type.Optional(Id),
    enrollToken: Type.Optional(Type.String({ minLength: 8, maxLength: 256 })),
    /** Raw Ed25519 public key, base64url (32 bytes → 43 chars). Required when enrolling. */
    publicKey: Type.Optional(B64Url(43, 43)),
    /** Ed25519 signature over authPayload(nonce, agentId | publicKey), base64url (64 bytes → 86 chars). */
    signature: B64Url(86, 86),
    facts: HostFacts,
    capabilities: Type.Array(CapabilitySchema, { maxItems: 32, uniqueItems: true }),
  },
  { additionalProperties: false },
);
export type HelloBody = Static<typeof HelloBody>;

/** hub → agent: accepted. */
export const WelcomeBody = Type.Object(
  {
    agentId: Id,
    heartbeatSec: Type.Number({ minimum: 0.05, maximum: 3600 }),
    hubVersion: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false },
);
export type WelcomeBody = Static<typeof WelcomeBody>;

export const REFUSAL_CODES = [
  'malformed',
  'unsupported_protocol',
  'handshake_timeout',
  'bad_token',
  'token_expired',
  'token_used',
  'bad_signature',
  'bad_nonce',
  'unknown_agent',
  'revoked',
  'id_conflict',
  'internal',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

/** hub → agent: refused; the hub closes the connection right after. `retry` says whether trying again can help. */
export const RefusedBody = Type.Object(
  {
    code: Type.Enum(REFUSAL_CODES),
    reason: Type.String({ maxLength: LIMITS.longText }),
    retry: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type RefusedBody = Static<typeof RefusedBody>;

/** either way: the message named by `re` (or the last frame) could not be handled. */
export const ErrorBody = Type.Object(
  {
    code: Type.String({ maxLength: 64 }),
    message: Type.String({ maxLength: LIMITS.longText }),
  },
  { additionalProperties: false },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** agent → hub: the host's facts changed since the handshake (hostname, IPs, …). */
export const FactsBody = Type.Object({ facts: HostFacts }, { additionalProperties: false });

/**
 * agent → hub: usage samples taken while the link was down, oldest first, sent after reconnecting
 * so that history has no hole. Bounded per frame; the agent splits a longer backlog.
 */
export const BacklogBody = Type.Object({ samples: Type.Array(HostUsageSchema, { maxItems: 120 }) }, { additionalProperties: false });
export const MAX_BACKLOG_PER_FRAME = 120;

/** hub → agent: the report named by `re` is committed; the agent may forget it. */
export const AckBody = Type.Object({}, { additionalProperties: false });

/**
 * hub → agent, after the welcome and whenever the cluster changes: the other hubs of the cluster
 * (JKStack's `redirect`), so that an agent whose hub dies or drains connects to another. An agent
 * that predates it answers `error` and keeps its one hub: nothing breaks.
 */
export const ClusterHubsBody = Type.Object(
  {
    hubs: Type.Array(Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://' }), { maxItems: 32 }),
  },
  { additionalProperties: false },
);
export type ClusterHubsBody = Static<typeof ClusterHubsBody>;

/** The registry: every message type and the schema of its body. Adding a type is one line here. */
export const MESSAGE_BODIES = {
  challenge: ChallengeBody,
  hello: HelloBody,
  welcome: WelcomeBody,
  refused: RefusedBody,
  error: ErrorBody,
  facts: FactsBody,
  // One report type per collector (agent → hub).
  'report.static': HostStaticSchema,
  'report.usage': HostUsageSchema,
  'report.processes': ProcessSummarySchema,
  'report.connections': ConnectionsSummarySchema,
  'report.sensors': SensorsSummarySchema,
  'report.gpu': GpuSummarySchema,
  'report.self': AgentSelfSchema,
  'report.containers': ContainersSummarySchema,
  'report.units': UnitsSummarySchema,
  'report.backlog': BacklogBody,
  ack: AckBody,
  'cluster.hubs': ClusterHubsBody,
  // Actions: tasks and files (see actions.ts).
  ...ACTION_BODIES,
  // Host managers: docker, systemd, cron, processes, power, hosts file; follow streams (see managers.ts).
  ...MANAGER_BODIES,
  // Terminals (see terminal.ts).
  ...TERMINAL_BODIES,
} satisfies Record<string, TSchema>;

export type MessageType = keyof typeof MESSAGE_BODIES;
export type BodyOf<T extends MessageType> = Static<(typeof MESSAGE_BODIES)[T]>;
export type Message<T extends MessageType = MessageType> = { v: number; type: T; id: string; re?: string; body: BodyOf<T> };

/** Message types each side may send once the handshake is done (anything else is refused). */
export const REPORT_TYPES = ['report.static', 'report.usage', 'report.processes', 'report.connections', 'report.sensors', 'report.gpu', 'report.self', 'report.containers', 'report.units', 'report.backlog'] as const;
export type ReportType = (typeof REPORT_TYPES)[number];
export const AGENT_TO_HUB: ReadonlySet<MessageType> = new Set<MessageType>(['hello', 'error', 'facts', ...REPORT_TYPES, ...ACTIONS_AGENT_TO_HUB, ...MANAGERS_AGENT_TO_HUB, ...TERMINAL_AGENT_TO_HUB]);
export const HUB_TO_AGENT: ReadonlySet<MessageType> = new Set<MessageType>(['challenge', 'welcome', 'refused', 'error', 'ack', 'cluster.hubs', ...ACTIONS_HUB_TO_AGENT, ...MANAGERS_HUB_TO_AGENT, ...TERMINAL_HUB_TO_AGENT]);

export { PROTOCOL_VERSION };
