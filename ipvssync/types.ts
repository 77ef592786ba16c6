// The IPVS table in the kernel's own nouns (service, destination) and the ops that change it.
// Plain data shared by the reconciler, the backends and the printers; no I/O here.

export type Family = 'inet' | 'inet6';
export type Protocol = 'tcp' | 'udp' | 'sctp';
/** IP_VS_CONN_F_* forwarding methods: masq 0, local 1, tunnel 2, route 3, bypass 4. */
export type ForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';

/** A service is identified either by protocol + address + port, or by firewall mark (+ family). */
export type ServiceKey =
  | { readonly kind: 'addr'; readonly family: Family; readonly protocol: Protocol; readonly addr: string; readonly port: number }
  | { readonly kind: 'fwmark'; readonly family: Family; readonly fwmark: number };

export interface Service {
  readonly key: ServiceKey;
  readonly scheduler: string;
  readonly persistent: boolean;
  /** Persistence timeout in seconds; meaningful only when `persistent`. */
  readonly timeout: number;
  readonly onePacket: boolean;
  /** Persistence granularity as a prefix length (32 = 255.255.255.255 for IPv4, 128 for IPv6). */
  readonly netmask: number;
}

export interface Destination {
  /** Canonical address text (dotted quad, or compressed lower-case IPv6). */
  readonly addr: string;
  readonly family: Family;
  readonly port: number;
  readonly forward: ForwardMethod;
  readonly weight: number;
  readonly upperThreshold: number;
  readonly lowerThreshold: number;
  /** Read-only kernel counters, present only in tables read from a backend. */
  readonly activeConns?: number;
  readonly inactConns?: number;
  readonly persistConns?: number;
}

/** One service and its destinations. */
export interface Entry {
  readonly service: Service;
  readonly dests: readonly Destination[];
}

/** A whole IPVS table: desired (from the hand-off) or kernel (read from a backend). */
export type Table = readonly Entry[];

export type Op =
  | { readonly kind: 'add-service'; readonly service: Service }
  | { readonly kind: 'edit-service'; readonly service: Service }
  | { readonly kind: 'delete-service'; readonly key: ServiceKey }
  | { readonly kind: 'add-dest'; readonly service: ServiceKey; readonly dest: Destination }
  | { readonly kind: 'edit-dest'; readonly service: ServiceKey; readonly dest: Destination }
  | { readonly kind: 'delete-dest'; readonly service: ServiceKey; readonly dest: Destination };

export type OpResult = { readonly op: Op; readonly ok: true } | { readonly op: Op; readonly ok: false; readonly error: string };

/** Version and connection table size, as `ipvsadm -Ln` prints them in its first line. */
export interface IpvsInfo {
  readonly version: string;
  readonly connTabSize: number;
}

/** Role of a kernel connection-sync daemon: a master multicasts connection state, a backup receives it. */
export type SyncDaemonState = 'master' | 'backup';

/** A kernel connection-sync daemon as it runs: every setting as the kernel reports it. */
export interface SyncDaemon {
  readonly state: SyncDaemonState;
  readonly ifname: string;
  readonly syncId: number;
  readonly maxlen: number;
  /** Canonical address text, IPv4 or IPv6. */
  readonly group: string;
  readonly port: number;
  readonly ttl: number;
}

/** A daemon ipvssync wants running; `maxlen` undefined leaves the message size to the kernel. */
export type WantedSyncDaemon = Omit<SyncDaemon, 'maxlen'> & { readonly maxlen: number | undefined };

/** A change to the kernel's sync daemons; `why` goes into the log line. A restart is a stop then a start. */
export type SyncDaemonOp =
  | { readonly kind: 'start-daemon'; readonly daemon: WantedSyncDaemon; readonly why: string }
  | { readonly kind: 'stop-daemon'; readonly daemon: SyncDaemon; readonly why: string };

/** Stable identity string of a service, for maps and comparisons. */
export function serviceId(k: ServiceKey): string {
  return k.kind === 'fwmark' ? `fwmark|${k.family}|${k.fwmark}` : `${k.protocol}|${k.addr}|${k.port}`;
}

/** Stable identity of a destination inside its service. */
export function destId(d: Pick<Destination, 'addr' | 'port'>): string {
  return `${d.addr}|${d.port}`;
}

/** `10.0.0.1:80` or `[2001:db8::1]:80`. */
export function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** `tcp 10.0.0.1:80`, `fwmark 300`, `fwmark 300 ipv6` — how ops and log lines name a service. */
export function formatServiceKey(k: ServiceKey): string {
  if (k.kind === 'fwmark') return `fwmark ${k.fwmark}${k.family === 'inet6' ? ' ipv6' : ''}`;
  return `${k.protocol} ${hostPort(k.addr, k.port)}`;
}

/** Full netmask for the family: what ipvssync always sets. */
export function fullNetmask(f: Family): number {
  return f === 'inet6' ? 128 : 32;
}
