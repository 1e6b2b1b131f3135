import { resolve } from 'node:path';
import { CAPABILITIES, LOG_LEVELS, httpUrl, oneOf, resolveConfig, seconds, str, type Capability, type Field } from '@tether/protocol';

const capabilityList = (raw: unknown): Capability[] => {
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter(Boolean) : raw;
  if (!Array.isArray(list)) throw new Error('expected a list of capabilities');
  for (const c of list) if (!CAPABILITIES.includes(c as Capability)) throw new Error(`unknown capability ${JSON.stringify(c)} (known: ${CAPABILITIES.join(', ')})`);
  return [...new Set(list as Capability[])];
};

const agentSpec = {
  hub: { toml: 'hub', env: 'TETHER_HUB', default: '', parse: httpUrl } as Field<string>,
  token: { toml: 'token', env: 'TETHER_TOKEN', default: '', parse: str({ max: 256 }) } as Field<string>,
  state: { toml: 'state', env: 'TETHER_STATE', default: '/var/lib/tether-agent', parse: str({ max: 1024 }) } as Field<string>,
  reconnectCap: { toml: 'reconnect_cap', env: 'TETHER_RECONNECT_CAP', default: 60, parse: seconds(0.1, 3600) } as Field<number>,
  logLevel: { toml: 'log_level', env: 'TETHER_LOG_LEVEL', default: 'info', parse: oneOf(LOG_LEVELS) } as Field<(typeof LOG_LEVELS)[number]>,
  // The capability lock: read from the host's own file, never from the hub. Monitoring only by default.
  capabilities: { toml: 'capabilities', default: ['metrics'], parse: capabilityList } as Field<Capability[]>,
};

export interface AgentConfig {
  hubUrl: string;
  token?: string;
  stateDir: string;
  reconnectCapSec: number;
  logLevel: (typeof LOG_LEVELS)[number];
  capabilities: Capability[];
}

export type AgentFlags = { hub?: string; token?: string; state?: string; reconnectCap?: unknown; logLevel?: string; config?: string };

export function loadAgentConfig(flags: AgentFlags, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AgentConfig {
  const file = flags.config ?? env.TETHER_AGENT_CONFIG;
  const { config: _c, ...rest } = flags;
  const c = resolveConfig(agentSpec, { flags: rest, env, ...(file ? { file } : {}) });
  if (!c.hub) throw new Error('invalid configuration:\n  - the hub URL is required (--hub, TETHER_HUB or hub = "…" in the config file)');
  return {
    hubUrl: c.hub,
    ...(c.token ? { token: c.token } : {}),
    stateDir: resolve(cwd, c.state),
    reconnectCapSec: c.reconnectCap,
    logLevel: c.logLevel,
    capabilities: c.capabilities,
  };
}
