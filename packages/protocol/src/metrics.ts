// Wire schemas of the agent's collector outputs (issue 4): what an agent reports and the hub ingests.
// The agent's TypeScript types for the same shapes live in packages/agent/src/collectors/types.ts;
// the agent's tests validate real collector output against these schemas, and the types are
// checked against each other at compile time there, so the two cannot drift apart silently.
//
// Units: `ts` and other times are ms since the epoch; sizes are bytes; rates are per second;
// percentages are 0..100 except a process's CPU %, which is per core (can exceed 100, as in top).
// Optional rate and percentage fields are absent when they could not be computed (first reading,
// or a counter that went backwards).
import Type, { type Static, type TProperties } from 'typebox';
import Value from 'typebox/value';

export const METRICS_VERSION = 1;

const Obj = <P extends TProperties>(properties: P) => Type.Object(properties, { additionalProperties: false });
const Str = (maxLength: number) => Type.String({ maxLength });
const Count = Type.Integer({ minimum: 0 });
const Bytes = Type.Number({ minimum: 0 });
const Rate = Type.Number({ minimum: 0 });
const Pct = Type.Number({ minimum: 0, maximum: 100 });
const Time = Type.Number({ minimum: 0 });
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Ip = Str(64);
const Arr = <T extends Parameters<typeof Type.Array>[0]>(item: T, maxItems: number) => Type.Array(item, { maxItems });

// ---------- static ----------

export const GatewayInfoSchema = Obj({ address: Ip, interface: Str(64) });

export const LoginSessionSchema = Obj({
  user: Str(32),
  tty: Str(32),
  host: Str(256),
  pid: Type.Integer(),
  loginTime: Type.Number(),
});

export const HostStaticSchema = Obj({
  ts: Time,
  hostname: Str(253),
  uptimeSec: Count,
  bootTime: Time,
  os: Obj({
    platform: Str(32),
    id: Str(64),
    name: Str(128),
    version: Str(128),
    versionId: Str(64),
    prettyName: Str(128),
  }),
  kernel: Str(128),
  kernelVersion: Str(256),
  arch: Str(32),
  cpu: Obj({
    model: Str(128),
    vendor: Str(64),
    sockets: Count,
    physicalCores: Count,
    logicalCpus: Count,
    mhz: Type.Number({ minimum: 0 }),
  }),
  memory: Obj({ totalBytes: Bytes, swapTotalBytes: Bytes }),
  blockDevices: Arr(
    Obj({
      name: Str(64),
      sizeBytes: Bytes,
      rotational: Type.Boolean(),
      removable: Type.Boolean(),
      model: Str(128),
      partitions: Arr(Str(64), 128),
    }),
    128,
  ),
  filesystems: Arr(
    Obj({
      device: Str(256),
      majorMinor: Str(24),
      mount: Str(1024),
      fsType: Str(64),
      options: Arr(Str(256), 64),
      readOnly: Type.Boolean(),
      sizeBytes: Bytes,
      inodesTotal: Count,
    }),
    256,
  ),
  interfaces: Arr(
    Obj({
      index: Count,
      name: Str(64),
      mtu: Count,
      flags: Arr(Str(16), 16),
      mac: Str(64),
      operState: Str(16),
      speedMbps: Type.Optional(Type.Number({ minimum: 0 })),
      addresses: Arr(Obj({ family: Type.Union([Type.Literal('IPv4'), Type.Literal('IPv6')]), address: Ip, prefixLength: Type.Integer({ minimum: 0, maximum: 128 }) }), 64),
    }),
    256,
  ),
  gateways: Obj({ ipv4: Type.Optional(GatewayInfoSchema), ipv6: Type.Optional(GatewayInfoSchema) }),
  nameservers: Arr(Ip, 16),
  searchDomains: Arr(Str(253), 16),
  users: Arr(LoginSessionSchema, 256),
});

// ---------- usage ----------

export const CpuTimesSchema = Obj({
  user: Pct,
  nice: Pct,
  system: Pct,
  idle: Pct,
  iowait: Pct,
  irq: Pct,
  softirq: Pct,
  steal: Pct,
  busy: Pct,
});

export const DiskIoSchema = Obj({
  device: Str(64),
  readBytesTotal: Bytes,
  writeBytesTotal: Bytes,
  readsTotal: Count,
  writesTotal: Count,
  inProgress: Count,
  readBytesPerSec: Type.Optional(Rate),
  writeBytesPerSec: Type.Optional(Rate),
  readIops: Type.Optional(Rate),
  writeIops: Type.Optional(Rate),
  busyPercent: Type.Optional(Pct),
});

export const FilesystemUsageSchema = Obj({
  mount: Str(1024),
  device: Str(256),
  fsType: Str(64),
  sizeBytes: Bytes,
  usedBytes: Bytes,
  availableBytes: Bytes,
  usedPercent: Pct,
  inodesTotal: Count,
  inodesUsed: Count,
  inodesFree: Count,
  io: Type.Optional(DiskIoSchema),
});

export const InterfaceUsageSchema = Obj({
  name: Str(64),
  rxBytesTotal: Bytes,
  txBytesTotal: Bytes,
  rxPacketsTotal: Count,
  txPacketsTotal: Count,
  rxErrorsTotal: Count,
  txErrorsTotal: Count,
  rxDropsTotal: Count,
  txDropsTotal: Count,
  rxBytesPerSec: Type.Optional(Rate),
  txBytesPerSec: Type.Optional(Rate),
  rxPacketsPerSec: Type.Optional(Rate),
  txPacketsPerSec: Type.Optional(Rate),
  rxErrorsPerSec: Type.Optional(Rate),
  txErrorsPerSec: Type.Optional(Rate),
  rxDropsPerSec: Type.Optional(Rate),
  txDropsPerSec: Type.Optional(Rate),
});

export const HostUsageSchema = Obj({
  ts: Time,
  intervalMs: Type.Optional(Type.Number({ minimum: 0 })),
  cpu: Type.Optional(Obj({ total: CpuTimesSchema, perCore: Arr(CpuTimesSchema, 4096) })),
  load: Obj({ one: Type.Number({ minimum: 0 }), five: Type.Number({ minimum: 0 }), fifteen: Type.Number({ minimum: 0 }) }),
  memory: Obj({
    totalBytes: Bytes,
    /** total − available */
    usedBytes: Bytes,
    freeBytes: Bytes,
    availableBytes: Bytes,
    buffersBytes: Bytes,
    /** page cache + reclaimable slab */
    cachedBytes: Bytes,
    slabBytes: Bytes,
    usedPercent: Pct,
  }),
  swap: Obj({ totalBytes: Bytes, usedBytes: Bytes, freeBytes: Bytes }),
  filesystems: Arr(FilesystemUsageSchema, 1024),
  interfaces: Arr(InterfaceUsageSchema, 1024),
});

// ---------- processes ----------

export const ProcessInfoSchema = Obj({
  pid: Count,
  ppid: Count,
  uid: Count,
  user: Str(64),
  state: Str(4),
  name: Str(64),
  command: Str(4096),
  startTime: Time,
  cpuPercent: Type.Optional(Type.Number({ minimum: 0 })),
  rssBytes: Bytes,
  vmsBytes: Bytes,
  swapBytes: Bytes,
  memPercent: Pct,
  threads: Count,
  listenPorts: Arr(Port, 64),
  connections: Count,
});

export const ProcessSummarySchema = Obj({
  ts: Time,
  intervalMs: Type.Optional(Type.Number({ minimum: 0 })),
  totals: Obj({
    processes: Count,
    threads: Count,
    running: Count,
    sleeping: Count,
    blocked: Count,
    zombie: Count,
    stopped: Count,
    other: Count,
    cpuPercent: Type.Optional(Type.Number({ minimum: 0 })),
    rssBytes: Bytes,
  }),
  processes: Arr(ProcessInfoSchema, 1000),
  truncated: Type.Boolean(),
});

// ---------- connections ----------

export const InetSocketSchema = Obj({
  proto: Type.Union([Type.Literal('tcp'), Type.Literal('tcp6'), Type.Literal('udp'), Type.Literal('udp6')]),
  localAddress: Ip,
  localPort: Port,
  remoteAddress: Ip,
  remotePort: Port,
  state: Str(16),
  uid: Count,
  inode: Count,
  pid: Type.Optional(Count),
  process: Type.Optional(Str(64)),
});

export const UnixSocketSchema = Obj({
  path: Str(256),
  type: Type.Union([Type.Literal('stream'), Type.Literal('dgram'), Type.Literal('seqpacket'), Type.Literal('other')]),
  listening: Type.Boolean(),
  inode: Count,
  pid: Type.Optional(Count),
  process: Type.Optional(Str(64)),
});

export const ConnectionsSummarySchema = Obj({
  ts: Time,
  counts: Obj({
    tcp: Type.Record(Type.String({ maxLength: 16 }), Count, { maxProperties: 32 }),
    udp: Count,
    unix: Count,
  }),
  listening: Arr(InetSocketSchema, 4096),
  connections: Arr(InetSocketSchema, 4096),
  unixListening: Arr(UnixSocketSchema, 4096),
  truncated: Type.Boolean(),
});

// ---------- sensors ----------

export const SensorsSummarySchema = Obj({
  ts: Time,
  temperatures: Arr(
    Obj({
      chip: Str(64),
      label: Str(64),
      celsius: Type.Number(),
      maxCelsius: Type.Optional(Type.Number()),
      critCelsius: Type.Optional(Type.Number()),
    }),
    512,
  ),
  fans: Arr(Obj({ chip: Str(64), label: Str(64), rpm: Type.Number({ minimum: 0 }) }), 256),
  power: Arr(
    Obj({
      name: Str(64),
      type: Str(32),
      online: Type.Optional(Type.Boolean()),
      status: Type.Optional(Str(32)),
      capacityPercent: Type.Optional(Pct),
      powerWatts: Type.Optional(Type.Number()),
      energyWh: Type.Optional(Type.Number({ minimum: 0 })),
      energyFullWh: Type.Optional(Type.Number({ minimum: 0 })),
    }),
    64,
  ),
  sshSessions: Arr(
    Obj({
      user: Str(32),
      host: Str(256),
      tty: Str(32),
      pid: Type.Integer(),
      loginTime: Type.Optional(Type.Number()),
      source: Type.Union([Type.Literal('utmp'), Type.Literal('process')]),
    }),
    256,
  ),
});

// ---------- gpu ----------

export const GpuInfoSchema = Obj({
  index: Count,
  name: Str(128),
  vendor: Str(32),
  uuid: Type.Optional(Str(128)),
  card: Type.Optional(Str(32)),
  pciVendorId: Type.Optional(Str(16)),
  pciDeviceId: Type.Optional(Str(16)),
  driver: Type.Optional(Str(64)),
  driverVersion: Type.Optional(Str(64)),
  utilizationPercent: Type.Optional(Pct),
  memoryUtilizationPercent: Type.Optional(Pct),
  memoryTotalBytes: Type.Optional(Bytes),
  memoryUsedBytes: Type.Optional(Bytes),
  temperatureCelsius: Type.Optional(Type.Number()),
  powerWatts: Type.Optional(Type.Number({ minimum: 0 })),
  powerLimitWatts: Type.Optional(Type.Number({ minimum: 0 })),
  fanPercent: Type.Optional(Pct),
  smClockMhz: Type.Optional(Type.Number({ minimum: 0 })),
});

export const GpuSummarySchema = Obj({
  ts: Time,
  source: Type.Union([Type.Literal('nvidia-smi'), Type.Literal('drm'), Type.Literal('none')]),
  gpus: Arr(GpuInfoSchema, 64),
  error: Type.Optional(Str(256)),
});

// ---------- self ----------

export const AgentSelfSchema = Obj({
  ts: Time,
  pid: Count,
  uptimeSec: Count,
  rssBytes: Bytes,
  heapUsedBytes: Bytes,
  cpuPercent: Type.Optional(Type.Number({ minimum: 0 })),
  eventLoopLagMs: Obj({ mean: Type.Number({ minimum: 0 }), p99: Type.Number({ minimum: 0 }), max: Type.Number({ minimum: 0 }) }),
  gc: Type.Optional(Obj({ count: Count, totalMs: Type.Number({ minimum: 0 }), maxMs: Type.Number({ minimum: 0 }) })),
  runtime: Type.Optional(Str(64)),
  counters: Type.Record(Type.String({ maxLength: 64 }), Type.Number(), { maxProperties: 32 }),
});

// ---------- containers (capability `docker`) ----------

/** One container as the engine lists it, with what inspecting it adds (restarts, OOM kill, health). */
export const ContainerStatusSchema = Obj({
  id: Str(128),
  name: Str(256),
  image: Str(512),
  state: Str(32), // running, exited, restarting, paused, created, dead (Podman: stopped)
  status: Str(256), // the engine's words: "Up 3 minutes (healthy)", "Exited (1) 2 seconds ago"
  /** healthy, unhealthy, starting; absent without a health check */
  health: Type.Optional(Str(32)),
  restartCount: Count,
  oomKilled: Type.Boolean(),
  exitCode: Type.Integer(),
  startedAt: Type.Optional(Time),
  finishedAt: Type.Optional(Time),
});

export const ContainersSummarySchema = Obj({
  ts: Time,
  containers: Arr(ContainerStatusSchema, 500),
  truncated: Type.Boolean(),
});

// ---------- units (capability `systemd`) ----------

export const FailedUnitSchema = Obj({ unit: Str(256), load: Str(32), active: Str(32), sub: Str(32), description: Str(1024) });

export const UnitsSummarySchema = Obj({
  ts: Time,
  /** units in the failed state (systemctl list-units --failed) */
  failed: Arr(FailedUnitSchema, 500),
  truncated: Type.Boolean(),
});

// ---------- one report ----------

/** The collectors by name; a report carries whichever of them produced data this time. */
export const MetricsSchemas = {
  static: HostStaticSchema,
  usage: HostUsageSchema,
  processes: ProcessSummarySchema,
  connections: ConnectionsSummarySchema,
  sensors: SensorsSummarySchema,
  gpu: GpuSummarySchema,
  self: AgentSelfSchema,
  containers: ContainersSummarySchema,
  units: UnitsSummarySchema,
} as const;

export type MetricsKind = keyof typeof MetricsSchemas;

export const MetricsReportSchema = Obj({
  static: Type.Optional(HostStaticSchema),
  usage: Type.Optional(HostUsageSchema),
  processes: Type.Optional(ProcessSummarySchema),
  connections: Type.Optional(ConnectionsSummarySchema),
  sensors: Type.Optional(SensorsSummarySchema),
  gpu: Type.Optional(GpuSummarySchema),
  self: Type.Optional(AgentSelfSchema),
  containers: Type.Optional(ContainersSummarySchema),
  units: Type.Optional(UnitsSummarySchema),
});

export type HostStatic = Static<typeof HostStaticSchema>;
export type HostUsage = Static<typeof HostUsageSchema>;
export type ProcessSummary = Static<typeof ProcessSummarySchema>;
export type ConnectionsSummary = Static<typeof ConnectionsSummarySchema>;
export type SensorsSummary = Static<typeof SensorsSummarySchema>;
export type GpuSummary = Static<typeof GpuSummarySchema>;
export type AgentSelf = Static<typeof AgentSelfSchema>;
export type ContainerStatus = Static<typeof ContainerStatusSchema>;
export type ContainersSummary = Static<typeof ContainersSummarySchema>;
export type FailedUnit = Static<typeof FailedUnitSchema>;
export type UnitsSummary = Static<typeof UnitsSummarySchema>;
export type MetricsReport = Static<typeof MetricsReportSchema>;

/** Validation errors of one collector's output ("/path: message"), empty when it conforms. */
export function metricsErrors(kind: MetricsKind, value: unknown): string[] {
  return Value.Errors(MetricsSchemas[kind], value).map((e) => `${e.instancePath || '/'}: ${e.message}`);
}

/** Validation errors of a whole report, empty when it conforms. */
export function metricsReportErrors(value: unknown): string[] {
  return Value.Errors(MetricsReportSchema, value).map((e) => `${e.instancePath || '/'}: ${e.message}`);
}
