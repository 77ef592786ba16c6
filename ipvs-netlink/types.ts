// The IPVS nouns as plain data: virtual services, destinations (reals), stats, timeouts and the ops
// that change the kernel table. Byte order, attribute ids and flag masks stay inside the codec.

export type Family = 4 | 6;
export type Protocol = 'tcp' | 'udp' | 'sctp';
/** How packets reach a destination (IP_VS_CONN_F_* & 0x7): NAT, local node, IP tunnel, direct routing. */
export type ForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';
/** Encapsulation of a 'tunnel' destination (kernel 5.2+; ipip on older kernels). */
export type TunnelType = 'ipip' | 'gue' | 'gre';

export interface ServiceFlags {
  persistent: boolean;
  /** One-packet scheduling (ipvsadm -o): each UDP datagram scheduled on its own. */
  onePacket: boolean;
  /** Scheduler flags 1-3 (ipvsadm -b flag-1..3; for sh/mh: sh-fallback = 1, sh-port = 2). */
  sched1: boolean;
  sched2: boolean;
  sched3: boolean;
}

/**
 * Counters of a service or destination. Bytes and packets are 64-bit in the kernel; they are given as
 * JS numbers, exact below 2^53 (9 PB).
 */
export interface Stats {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

/** Identifies a virtual service: by firewall mark (fwmark > 0) or by protocol + address + port. */
export type ServiceSelector =
  | { family: Family; fwmark: number }
  | { family: Family; protocol: Protocol; address: string; port: number; fwmark?: number };

export interface Service {
  family: Family;
  /** Ignored for fwmark services (the kernel stores them as TCP); read back as 'tcp'. */
  protocol: Protocol;
  /** '0.0.0.0' / '::' for fwmark services. */
  address: string;
  port: number;
  /** 0 for address services. */
  fwmark: number;
  scheduler: string;
  flags: ServiceFlags;
  /** Persistence timeout, seconds. */
  timeout: number;
  /** IPv4: the 32-bit persistence mask as a number (0xffffff00 = 255.255.255.0); IPv6: prefix length 1..128. */
  netmask: number;
  /** Persistence engine ('sip'); absent when none. */
  peName?: string;
  /** Read-only: present in what the kernel returns, ignored when sent. */
  stats?: Stats;
}

/** Identifies a destination inside a service. `family` defaults to the service's. */
export interface DestinationSelector {
  address: string;
  port: number;
  family?: Family;
}

export interface TunnelFlags {
  /** Checksum in the encapsulation (GUE/GRE): IP_VS_TUNNEL_ENCAP_FLAG_CSUM. */
  csum: boolean;
  /** Remote checksum offload (GUE): IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM. */
  remoteCsum: boolean;
}

export interface Destination {
  /** May differ from the service's only for 'tunnel' destinations. */
  family: Family;
  address: string;
  port: number;
  forward: ForwardMethod;
  /** 0 = quiesced. The kernel keeps an int: 0..2147483647 (larger values are refused with ERANGE). */
  weight: number;
  /** Connections above which the destination is not scheduled; 0 = no limit. 0..2147483647 (above: EINVAL). */
  upperThreshold: number;
  /** Connections below which it is scheduled again; 0 = kernel default (3/4 of upper). <= upper (else ERANGE). */
  lowerThreshold: number;
  tunnelType?: TunnelType;
  /** GUE destination port (required by the kernel for 'gue'). */
  tunnelPort?: number;
  tunnelFlags?: TunnelFlags;
  /** Read-only counters, present in what the kernel returns. */
  activeConns?: number;
  inactiveConns?: number;
  persistConns?: number;
  stats?: Stats;
}

export interface Timeouts {
  /** Seconds; 0 when setting means "leave unchanged". */
  tcp: number;
  tcpFin: number;
  udp: number;
}

export interface IpvsInfo {
  /** "1.2.1" for IP_VS_VERSION_CODE 0x010201. */
  version: string;
  connTabSize: number;
}

/** Role of a kernel connection-sync daemon: a master sends the connection table, a backup receives it. */
export type SyncDaemonState = 'master' | 'backup';

/**
 * A kernel connection-sync daemon (ipvsadm --start-daemon). When starting, absent fields are the
 * kernel's defaults; what getDaemons() returns has every field (kernels 4.3 and later report them all).
 */
export interface SyncDaemon {
  state: SyncDaemonState;
  /** Multicast interface, 1..15 bytes. */
  ifname: string;
  /** 0..255: a backup drops messages of another sync id. */
  syncId: number;
  /** Largest sync message payload; default: 1500 (master) or the interface MTU (backup) less the IP + UDP headers. */
  maxlen?: number;
  /** IPv4 or IPv6 multicast group; default 224.0.0.81. */
  group?: string;
  /** UDP port (the n-th sync thread uses port + n); default 8848. */
  port?: number;
  /** Multicast TTL / hop limit, 1..255; default 1. */
  ttl?: number;
}

/** One change to the kernel table; `apply()` sends many of them pipelined. */
export type IpvsOp =
  | { kind: 'addService'; service: Service }
  | { kind: 'updateService'; service: Service }
  | { kind: 'deleteService'; service: ServiceSelector }
  | { kind: 'addDestination'; service: ServiceSelector; destination: Destination }
  | { kind: 'updateDestination'; service: ServiceSelector; destination: Destination }
  | { kind: 'deleteDestination'; service: ServiceSelector; destination: DestinationSelector }
  | { kind: 'setTimeouts'; timeouts: Partial<Timeouts> }
  | { kind: 'zero'; service?: ServiceSelector }
  | { kind: 'flush' };

export type IpvsOpKind = IpvsOp['kind'];
