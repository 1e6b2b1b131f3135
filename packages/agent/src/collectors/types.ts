// Output types of the agent's collectors. These are the wire payloads the hub ingests; the same
// shapes are written as typebox schemas in packages/protocol/src/metrics.ts, and
// test/collectors/schema.test.ts checks real output against those schemas.
//
// Conventions: `ts` is the collection time in ms since the epoch; sizes are bytes; rates are per
// second over the interval since the previous collection; percentages are 0..100 (a process's
// CPU % is per core, so it can exceed 100 on a multi-core host, as in top). A rate or percentage
// that cannot be computed (first collection, or a counter that went backwards) is omitted,
// never reported as a spike.

export interface Collector<T> {
  name: string;
  defaultIntervalMs: number;
  /** Resolves to undefined when there is nothing to report this time (e.g. static info unchanged). */
  collect(now: number): Promise<T | undefined>;
}

// ---------- static ----------

export interface OsInfo {
  platform: string; // process.platform
  id: string; // os-release ID, e.g. "debian"
  name: string;
  version: string;
  versionId: string;
  prettyName: string;
}

export interface CpuInfo {
  model: string;
  vendor: string;
  sockets: number;
  physicalCores: number;
  logicalCpus: number;
  mhz: number; // average of the per-CPU "cpu MHz" figures at collection time (0 when unknown)
}

export interface FilesystemInfo {
  device: string;
  majorMinor: string; // "254:0" from mountinfo, the key into /proc/diskstats
  mount: string;
  fsType: string;
  options: string[];
  readOnly: boolean;
  sizeBytes: number;
  inodesTotal: number;
}

export interface BlockDeviceInfo {
  name: string; // "vda", "nvme0n1"
  sizeBytes: number;
  rotational: boolean;
  removable: boolean;
  model: string;
  partitions: string[];
}

export interface InterfaceAddress {
  family: 'IPv4' | 'IPv6';
  address: string;
  prefixLength: number;
}

export interface InterfaceInfo {
  index: number;
  name: string;
  mtu: number;
  flags: string[]; // "UP", "BROADCAST", "LOOPBACK", "RUNNING", "MULTICAST", ...
  mac: string;
  operState: string; // "up", "down", "unknown"
  speedMbps?: number;
  addresses: InterfaceAddress[];
}

export interface GatewayInfo {
  address: string;
  interface: string;
}

export interface LoginSession {
  user: string;
  tty: string;
  host: string; // empty for local logins
  pid: number;
  loginTime: number; // ms since epoch
}

export interface HostStatic {
  ts: number;
  hostname: string;
  uptimeSec: number;
  bootTime: number; // ms since epoch
  os: OsInfo;
  kernel: string; // release, e.g. "6.1.0-18-amd64"
  kernelVersion: string; // build string, "#1 SMP PREEMPT_DYNAMIC Debian ..."
  arch: string; // process.arch
  cpu: CpuInfo;
  memory: { totalBytes: number; swapTotalBytes: number };
  blockDevices: BlockDeviceInfo[];
  filesystems: FilesystemInfo[];
  interfaces: InterfaceInfo[];
  gateways: { ipv4?: GatewayInfo; ipv6?: GatewayInfo };
  nameservers: string[];
  searchDomains: string[];
  users: LoginSession[];
}

// ---------- usage ----------

export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
  /** 100 − idle − iowait */
  busy: number;
}

export interface FilesystemUsage {
  mount: string;
  device: string;
  fsType: string;
  sizeBytes: number;
  /** size − free blocks, as df reports it */
  usedBytes: number;
  /** available to unprivileged users (df's "Avail") */
  availableBytes: number;
  /** used / (used + available), as df's Use% */
  usedPercent: number;
  inodesTotal: number;
  inodesUsed: number;
  inodesFree: number;
  io?: DiskIo;
}

export interface DiskIo {
  device: string; // name in /proc/diskstats
  readBytesTotal: number;
  writeBytesTotal: number;
  readsTotal: number;
  writesTotal: number;
  inProgress: number;
  readBytesPerSec?: number;
  writeBytesPerSec?: number;
  readIops?: number;
  writeIops?: number;
  /** share of wall time the device had I/O in flight (from io_ticks) */
  busyPercent?: number;
}

export interface InterfaceUsage {
  name: string;
  rxBytesTotal: number;
  txBytesTotal: number;
  rxPacketsTotal: number;
  txPacketsTotal: number;
  rxErrorsTotal: number;
  txErrorsTotal: number;
  rxDropsTotal: number;
  txDropsTotal: number;
  rxBytesPerSec?: number;
  txBytesPerSec?: number;
  rxPacketsPerSec?: number;
  txPacketsPerSec?: number;
  rxErrorsPerSec?: number;
  txErrorsPerSec?: number;
  rxDropsPerSec?: number;
  txDropsPerSec?: number;
}

export interface HostUsage {
  ts: number;
  /** ms since the previous usage collection; absent on the first */
  intervalMs?: number;
  /** absent on the first collection (percentages need two readings) */
  cpu?: { total: CpuTimes; perCore: CpuTimes[] };
  load: { one: number; five: number; fifteen: number };
  memory: {
    totalBytes: number;
    /** total − available: memory that cannot be reclaimed without swapping (same as `free`'s "used" since procps 4) */
    usedBytes: number;
    freeBytes: number;
    availableBytes: number;
    buffersBytes: number;
    /** page cache + reclaimable slab, as `free` counts "cache" */
    cachedBytes: number;
    slabBytes: number;
    usedPercent: number;
  };
  swap: { totalBytes: number; usedBytes: number; freeBytes: number };
  filesystems: FilesystemUsage[];
  interfaces: InterfaceUsage[];
}

// ---------- processes ----------

export interface ProcessInfo {
  pid: number;
  ppid: number;
  uid: number;
  user: string;
  state: string; // one letter, as in ps: R S D Z T I ...
  name: string; // comm
  command: string; // cmdline joined with spaces, bounded
  startTime: number; // ms since epoch
  /** per core, like top; absent on the process's first sighting */
  cpuPercent?: number;
  rssBytes: number;
  vmsBytes: number;
  swapBytes: number;
  memPercent: number;
  threads: number;
  listenPorts: number[];
  connections: number;
}

export interface ProcessSummary {
  ts: number;
  intervalMs?: number;
  totals: {
    processes: number;
    threads: number;
    running: number;
    sleeping: number;
    blocked: number; // D
    zombie: number;
    stopped: number;
    other: number;
    /** sum of all processes' CPU % over the interval (absent on the first collection) */
    cpuPercent?: number;
    rssBytes: number;
  };
  /** top N by CPU and top N by memory, merged; sorted by CPU then RSS */
  processes: ProcessInfo[];
  truncated: boolean;
}

// ---------- connections ----------

export type SocketProto = 'tcp' | 'tcp6' | 'udp' | 'udp6';

export interface InetSocket {
  proto: SocketProto;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string; // ESTABLISHED, LISTEN, TIME_WAIT, ... ("UNCONN" for an unconnected UDP socket)
  uid: number;
  inode: number;
  pid?: number;
  process?: string;
}

export interface UnixSocket {
  path: string;
  type: 'stream' | 'dgram' | 'seqpacket' | 'other';
  listening: boolean;
  inode: number;
  pid?: number;
  process?: string;
}

export interface ConnectionsSummary {
  ts: number;
  counts: {
    tcp: Record<string, number>; // by state, v4 and v6 together
    udp: number;
    unix: number;
  };
  /** TCP LISTEN and unconnected bound UDP sockets */
  listening: InetSocket[];
  /** the other inet sockets, bounded; TCP TIME_WAIT sockets are only counted (they have no owner) */
  connections: InetSocket[];
  unixListening: UnixSocket[];
  truncated: boolean;
}

// ---------- sensors ----------

export interface Temperature {
  chip: string; // hwmon name or thermal zone type
  label: string;
  celsius: number;
  maxCelsius?: number;
  critCelsius?: number;
}

export interface Fan {
  chip: string;
  label: string;
  rpm: number;
}

export interface PowerSupply {
  name: string;
  type: string; // Battery, Mains, USB, UPS
  online?: boolean;
  status?: string; // Charging, Discharging, Full ...
  capacityPercent?: number;
  powerWatts?: number;
  energyWh?: number;
  energyFullWh?: number;
}

export interface SshSession {
  user: string;
  host: string;
  tty: string;
  pid: number;
  loginTime?: number;
  source: 'utmp' | 'process';
}

export interface SensorsSummary {
  ts: number;
  temperatures: Temperature[];
  fans: Fan[];
  power: PowerSupply[];
  sshSessions: SshSession[];
}

// ---------- gpu ----------

export interface GpuInfo {
  index: number;
  name: string;
  vendor: string; // "nvidia", "amd", "intel", or the PCI vendor id
  uuid?: string;
  card?: string; // DRM card name
  pciVendorId?: string;
  pciDeviceId?: string;
  driver?: string;
  driverVersion?: string;
  utilizationPercent?: number;
  memoryUtilizationPercent?: number;
  memoryTotalBytes?: number;
  memoryUsedBytes?: number;
  temperatureCelsius?: number;
  powerWatts?: number;
  powerLimitWatts?: number;
  fanPercent?: number;
  smClockMhz?: number;
}

export interface GpuSummary {
  ts: number;
  source: 'nvidia-smi' | 'drm' | 'none';
  gpus: GpuInfo[];
  /** why nvidia-smi gave nothing, when it exists but failed */
  error?: string;
}

// ---------- self ----------

/** Figures the agent passes in (queue lengths, reconnects ...): name → number. */
export type SelfStatsHook = () => Record<string, number>;

export interface AgentSelf {
  ts: number;
  pid: number;
  uptimeSec: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** of one core, over the interval since the previous collection */
  cpuPercent?: number;
  eventLoopLagMs: { mean: number; p99: number; max: number };
  /** garbage-collection pauses over the interval: how many, their total and the longest (ms) */
  gc?: { count: number; totalMs: number; maxMs: number };
  /** the runtime the agent runs on, e.g. "node 24.22.3 x64" */
  runtime?: string;
  counters: Record<string, number>;
}

// ---------- containers ----------

export interface ContainerStatus {
  id: string;
  name: string;
  image: string;
  state: string;
  status: string;
  health?: string;
  restartCount: number;
  oomKilled: boolean;
  exitCode: number;
  startedAt?: number;
  finishedAt?: number;
}

export interface ContainersSummary {
  ts: number;
  containers: ContainerStatus[];
  truncated: boolean;
}

// ---------- units ----------

export interface FailedUnit {
  unit: string;
  load: string;
  active: string;
  sub: string;
  description: string;
}

export interface UnitsSummary {
  ts: number;
  failed: FailedUnit[];
  truncated: boolean;
}

export interface CollectorOutputs {
  static: HostStatic;
  usage: HostUsage;
  processes: ProcessSummary;
  connections: ConnectionsSummary;
  sensors: SensorsSummary;
  gpu: GpuSummary;
  self: AgentSelf;
  containers: ContainersSummary;
  units: UnitsSummary;
}

export type CollectorName = keyof CollectorOutputs;
