import Type, { type Static } from 'typebox';
import { LIMITS } from './limits.js';
import { CAPABILITIES } from './constants.js';

const Str = (max: number = LIMITS.shortText) => Type.String({ maxLength: max });
const StrList = (max: number = LIMITS.listItems) => Type.Array(Str(64), { maxItems: max });

/**
 * What an agent says about its host in the handshake (the JKStack handshake's fields).
 * Detailed inventory (partitions, interfaces, users…) arrives with the static collector.
 */
export const HostFacts = Type.Object(
  {
    hostname: Type.String({ minLength: 1, maxLength: LIMITS.hostname }),
    os: Type.Object(
      {
        name: Str(),
        id: Str(64),
        version: Str(64),
        pretty: Str(),
      },
      { additionalProperties: false },
    ),
    platform: Str(32),
    kernel: Str(128),
    arch: Str(32),
    cpu: Type.Object(
      {
        model: Str(),
        physicalCores: Type.Integer({ minimum: 0, maximum: 65536 }),
        logicalCores: Type.Integer({ minimum: 0, maximum: 65536 }),
      },
      { additionalProperties: false },
    ),
    memoryBytes: Type.Integer({ minimum: 0 }),
    ips: StrList(),
    macs: StrList(),
    bootTime: Type.Optional(Type.Integer({ minimum: 0 })),
    /**
     * What the agent's own config opens, so that clients can offer it: the console's Files page
     * starts at the first file root, its terminal offers the accounts. The agent still checks every
     * request against its config; the hub cannot widen any of it.
     */
    access: Type.Optional(
      Type.Object(
        {
          /** `file_roots` (empty unless the agent allows `files`) */
          fileRoots: Type.Array(Type.String({ minLength: 1, maxLength: LIMITS.longText }), { maxItems: 64 }),
          /** `terminal_users` (empty unless the agent allows `terminal`; empty: any account the agent may switch to) */
          terminalUsers: Type.Array(Str(64), { maxItems: 64 }),
          /** the account the agent runs as: what a terminal opens as when none is named and terminalUsers is empty */
          user: Str(64),
          /** `auto_update` in the agent's config: whether it accepts upgrade tasks from the hub */
          autoUpdate: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type HostFacts = Static<typeof HostFacts>;
export type HostAccess = NonNullable<HostFacts['access']>;

// CAPABILITIES lives in constants.ts, so that the CLI (protocol/lite, no schema library) checks --allow against the same list.
export const CapabilitySchema = Type.Enum(CAPABILITIES);
