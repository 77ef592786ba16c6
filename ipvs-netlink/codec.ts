// Pure codec between the IPVS nouns (Service, Destination, ops, sync daemons) and IPVS generic-netlink
// attributes. Handles the ABI's quirks: ports and IPv4 netmasks in network order (but a sync daemon's
// port in host order), FLAGS as {flags, mask}, HASHED bit.
import { isIPv6 } from 'node:net';
import * as abi from './abi.js';
import { Cmd, CmdAttr, DaemonAttr, DestAttr, InfoAttr, StatsAttr, SvcAttr } from './abi.js';
import { IpvsError } from './errors.js';
import type {
  Destination,
  DestinationSelector,
  Family,
  ForwardMethod,
  IpvsInfo,
  IpvsOp,
  Protocol,
  Service,
  ServiceFlags,
  ServiceSelector,
  Stats,
  SyncDaemon,
  SyncDaemonState,
  Timeouts,
  TunnelFlags,
  TunnelType,
} from './types.js';
import {
  AttrWriter,
  WireError,
  parseAttrs,
  readString,
  readU16Host,
  readU16Net,
  readU32Host,
  readU32Net,
  readU8,
  readUint,
} from './wire.js';

// ---------------------------------------------------------------------------------------------------
// Addresses

/** 0..255 without leading zeros (inet_pton refuses them). */
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/**
 * Dotted quad -> its value as an unsigned 32-bit number (network order: a is the top byte), or -1.
 * One regexp rather than a loop over the characters: it runs once or twice per op in bulk loads,
 * mostly before the JIT has compiled anything under emulation, and there the loop cost more.
 */
function ipv4Value(s: string): number {
  const m = IPV4.exec(s);
  return m ? ((+m[1]! * 256 + +m[2]!) * 256 + +m[3]!) * 256 + +m[4]! : -1;
}

function parseIPv4(s: string): Buffer | undefined {
  const v = ipv4Value(s);
  if (v < 0) return undefined;
  const out = Buffer.alloc(4);
  out.writeUInt32BE(v, 0);
  return out;
}

/** An address attribute; IPv4 is written in place (the common case of bulk loads). */
function writeAddress(w: AttrWriter, type: number, address: string, family: Family): void {
  if (family === 4) {
    const v = ipv4Value(address);
    if (v < 0) throw new WireError(`not an IPv4 address: ${JSON.stringify(address)}`);
    w.ipv4(type, v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return;
  }
  w.bytes(type, addressBytes(address, family));
}

/** IPv4 "a.b.c.d" -> 4 bytes, IPv6 (any textual form, incl. ::ffff:a.b.c.d) -> 16 bytes. */
export function addressBytes(address: string, family: Family): Buffer {
  if (family === 4) {
    const b = parseIPv4(address);
    if (!b) throw new WireError(`not an IPv4 address: ${JSON.stringify(address)}`);
    return b;
  }
  const zone = address.indexOf('%');
  const a = zone >= 0 ? address.slice(0, zone) : address;
  if (!isIPv6(a)) throw new WireError(`not an IPv6 address: ${JSON.stringify(address)}`);
  let text = a;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = text.slice(lastColon + 1).split('.').map(Number);
    tail.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
    text = text.slice(0, lastColon + 1) + '0:0'; // the dotted quad fills the last two groups
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (s: string | undefined): number[] => (s ? s.split(':').filter((x) => x !== '').map((x) => parseInt(x, 16)) : []);
  let groups: number[];
  if (rest === undefined) groups = parse(head);
  else {
    const h = parse(head);
    const t = parse(rest);
    groups = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  }
  if (tail.length) groups = [...groups.slice(0, 6), ...tail];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

/** Canonical text of an address (RFC 5952 for IPv6, as inet_ntop prints it). */
export function formatAddress(bytes: Buffer, family: Family): string {
  if (family === 4) return [...bytes.subarray(0, 4)].join('.');
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(bytes.readUInt16BE(i * 2));
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return `::ffff:${[...bytes.subarray(12, 16)].join('.')}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Normalises any textual form of an address to the form the codec returns (for comparisons). */
export function canonicalAddress(address: string, family: Family): string {
  return formatAddress(addressBytes(address, family), family);
}

const familyToAf = (f: Family): number => (f === 4 ? abi.AF_INET : abi.AF_INET6);

function afToFamily(af: number): Family {
  if (af === abi.AF_INET) return 4;
  if (af === abi.AF_INET6) return 6;
  throw new WireError(`unknown address family ${af}`);
}

// ---------------------------------------------------------------------------------------------------
// Enumerations

const PROTOCOLS: Record<Protocol, number> = { tcp: abi.IPPROTO_TCP, udp: abi.IPPROTO_UDP, sctp: abi.IPPROTO_SCTP };

function protocolName(n: number): Protocol {
  for (const [name, v] of Object.entries(PROTOCOLS)) if (v === n) return name as Protocol;
  throw new WireError(`unknown protocol ${n}`);
}

const FORWARDS: readonly ForwardMethod[] = ['masq', 'local', 'tunnel', 'route', 'bypass'];
const TUNNELS: readonly TunnelType[] = ['ipip', 'gue', 'gre'];
const TUN_F_CSUM = 0x1;
const TUN_F_REMCSUM = 0x2;

function flagsToBits(f: ServiceFlags): number {
  return (
    (f.persistent ? abi.SVC_F_PERSISTENT : 0) |
    (f.onePacket ? abi.SVC_F_ONEPACKET : 0) |
    (f.sched1 ? abi.SVC_F_SCHED1 : 0) |
    (f.sched2 ? abi.SVC_F_SCHED2 : 0) |
    (f.sched3 ? abi.SVC_F_SCHED3 : 0)
  );
}

function bitsToFlags(bits: number): ServiceFlags {
  return {
    persistent: (bits & abi.SVC_F_PERSISTENT) !== 0,
    onePacket: (bits & abi.SVC_F_ONEPACKET) !== 0,
    sched1: (bits & abi.SVC_F_SCHED1) !== 0,
    sched2: (bits & abi.SVC_F_SCHED2) !== 0,
    sched3: (bits & abi.SVC_F_SCHED3) !== 0,
  };
}

function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new WireError(`${what} must be an integer 0..4294967295, got ${v}`);
  return v;
}

function checkPort(v: number, what = 'port'): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new WireError(`${what} must be 0..65535, got ${v}`);
  return v;
}

// ---------------------------------------------------------------------------------------------------
// Services

export function isFwmarkSelector(sel: ServiceSelector): sel is { family: Family; fwmark: number } {
  return typeof sel.fwmark === 'number' && sel.fwmark > 0;
}

/** "TCP 10.0.0.1:80", "UDP [2001:db8::1]:53", "FWM 5" (IPv6 fwmark: "FWM 5 IPv6"), as ipvsadm names them. */
export function describeService(sel: ServiceSelector): string {
  if (isFwmarkSelector(sel)) return `FWM ${sel.fwmark}${sel.family === 6 ? ' IPv6' : ''}`;
  const addr = sel.family === 6 ? `[${sel.address}]` : sel.address;
  return `${sel.protocol.toUpperCase()} ${addr}:${sel.port}`;
}

export function describeDestination(sel: DestinationSelector): string {
  return sel.address.includes(':') ? `[${sel.address}]:${sel.port}` : `${sel.address}:${sel.port}`;
}

/** The identifying attributes: AF (always) + FWMARK, or PROTOCOL + ADDR + PORT (port in network order). */
function writeServiceKey(w: AttrWriter, sel: ServiceSelector): void {
  w.u16(SvcAttr.AF, familyToAf(sel.family));
  if (isFwmarkSelector(sel)) {
    w.u32(SvcAttr.FWMARK, checkU32(sel.fwmark, 'fwmark'));
    return;
  }
  const protocol = PROTOCOLS[sel.protocol];
  if (protocol === undefined) throw new WireError(`unknown protocol ${JSON.stringify(sel.protocol)}`);
  w.u16(SvcAttr.PROTOCOL, protocol);
  writeAddress(w, SvcAttr.ADDR, sel.address, sel.family);
  w.be16(SvcAttr.PORT, checkPort(sel.port));
}

/** Nested SERVICE attribute carrying only the identity (for deletes, dest ops, gets). */
export function writeServiceSelector(w: AttrWriter, sel: ServiceSelector): void {
  const n = w.begin(CmdAttr.SERVICE);
  writeServiceKey(w, sel);
  w.end(n);
}

/** Nested SERVICE attribute with the full entry, as NEW_SERVICE / SET_SERVICE require. */
export function writeService(w: AttrWriter, svc: Service): void {
  if (svc.scheduler.length === 0 || Buffer.byteLength(svc.scheduler) >= abi.SCHEDNAME_MAXLEN) {
    throw new WireError(`scheduler name must be 1..15 bytes, got ${JSON.stringify(svc.scheduler)}`);
  }
  if (svc.family === 6 && (!Number.isInteger(svc.netmask) || svc.netmask < 1 || svc.netmask > 128)) {
    throw new WireError(`IPv6 netmask is a prefix length 1..128, got ${svc.netmask}`);
  }
  if (svc.peName && Buffer.byteLength(svc.peName) >= abi.PENAME_MAXLEN) throw new WireError(`pe name too long: ${svc.peName}`);
  const n = w.begin(CmdAttr.SERVICE);
  writeServiceKey(w, svc);
  w.str(SvcAttr.SCHED_NAME, svc.scheduler);
  // struct ip_vs_flags {u32 flags; u32 mask}: mask ~0 sets every bit to ours. HASHED is never sent:
  // the kernel would then believe the new service is already in its hash table.
  w.u32pair(SvcAttr.FLAGS, (flagsToBits(svc.flags) & ~abi.SVC_F_HASHED) >>> 0, 0xffffffff);
  w.u32(SvcAttr.TIMEOUT, checkU32(svc.timeout, 'timeout'));
  // The kernel reads NETMASK as __be32: for IPv4 it is the mask in network order; for IPv6 it
  // compares the same 4 bytes as a plain number (prefix length), so libipvs sends host order.
  if (svc.family === 4) w.be32(SvcAttr.NETMASK, checkU32(svc.netmask, 'netmask'));
  else w.u32(SvcAttr.NETMASK, svc.netmask);
  if (svc.peName) w.str(SvcAttr.PE_NAME, svc.peName);
  w.end(n);
}

/** The nested SERVICE attribute of `svc` as bytes (full entry). */
export function encodeService(svc: Service): Buffer {
  const w = new AttrWriter();
  writeService(w, svc);
  return w.take();
}

/** The nested SERVICE attribute identifying `sel` as bytes. */
export function encodeServiceSelector(sel: ServiceSelector): Buffer {
  const w = new AttrWriter();
  writeServiceSelector(w, sel);
  return w.take();
}

export function decodeStats(payload: Buffer): Stats {
  const a = parseAttrs(payload);
  const n = (t: StatsAttr): number => {
    const b = a.get(t);
    return b ? readUint(b) : 0;
  };
  return {
    conns: n(StatsAttr.CONNS),
    inPkts: n(StatsAttr.INPKTS),
    outPkts: n(StatsAttr.OUTPKTS),
    inBytes: n(StatsAttr.INBYTES),
    outBytes: n(StatsAttr.OUTBYTES),
    cps: n(StatsAttr.CPS),
    inPps: n(StatsAttr.INPPS),
    outPps: n(StatsAttr.OUTPPS),
    inBps: n(StatsAttr.INBPS),
    outBps: n(StatsAttr.OUTBPS),
  };
}

/** Decodes the contents of a nested SERVICE attribute as the kernel dumps it. */
export function decodeService(payload: Buffer): Service {
  const a = parseAttrs(payload);
  const get = (t: SvcAttr): Buffer => {
    const b = a.get(t);
    if (!b) throw new WireError(`service attribute ${t} missing`);
    return b;
  };
  const family = afToFamily(readU16Host(get(SvcAttr.AF)));
  const fwmarkAttr = a.get(SvcAttr.FWMARK);
  const fwmark = fwmarkAttr ? readU32Host(fwmarkAttr) : 0;
  const zero = family === 4 ? '0.0.0.0' : '::';
  const protoAttr = a.get(SvcAttr.PROTOCOL);
  const addrAttr = a.get(SvcAttr.ADDR);
  const portAttr = a.get(SvcAttr.PORT);
  const netmaskAttr = a.get(SvcAttr.NETMASK);
  const flagsAttr = get(SvcAttr.FLAGS);
  const svc: Service = {
    family,
    // fwmark services carry no PROTOCOL/ADDR/PORT in dumps; the kernel keeps them as TCP.
    protocol: fwmark > 0 || !protoAttr ? 'tcp' : protocolName(readU16Host(protoAttr)),
    address: fwmark > 0 || !addrAttr ? zero : formatAddress(addrAttr, family),
    port: fwmark > 0 || !portAttr ? 0 : readU16Net(portAttr),
    fwmark,
    scheduler: readString(get(SvcAttr.SCHED_NAME)),
    // Only the flags word; the HASHED bit is kernel bookkeeping and is dropped here.
    flags: bitsToFlags(readU32Host(flagsAttr) & ~abi.SVC_F_HASHED),
    timeout: readU32Host(get(SvcAttr.TIMEOUT)),
    netmask: netmaskAttr ? (family === 4 ? readU32Net(netmaskAttr) : readU32Host(netmaskAttr)) : family === 4 ? 0xffffffff : 128,
  };
  const pe = a.get(SvcAttr.PE_NAME);
  if (pe && readString(pe)) svc.peName = readString(pe);
  const stats = a.get(SvcAttr.STATS64) ?? a.get(SvcAttr.STATS);
  if (stats) svc.stats = decodeStats(stats);
  return svc;
}

// ---------------------------------------------------------------------------------------------------
// Destinations

function writeDestKey(w: AttrWriter, sel: DestinationSelector, svcFamily: Family): void {
  const family = sel.family ?? svcFamily;
  // ADDR_FAMILY always sent (3.18+): it is what lets a tunnel dest differ from the service's AF.
  w.u16(DestAttr.ADDR_FAMILY, familyToAf(family));
  writeAddress(w, DestAttr.ADDR, sel.address, family);
  w.be16(DestAttr.PORT, checkPort(sel.port));
}

export function writeDestinationSelector(w: AttrWriter, sel: DestinationSelector, svcFamily: Family): void {
  const n = w.begin(CmdAttr.DEST);
  writeDestKey(w, sel, svcFamily);
  w.end(n);
}

/** Nested DEST attribute with the full entry (NEW_DEST / SET_DEST). */
export function writeDestination(w: AttrWriter, dest: Destination, svcFamily: Family): void {
  const fwd = FORWARDS.indexOf(dest.forward);
  if (fwd < 0) throw new WireError(`unknown forwarding method ${JSON.stringify(dest.forward)}`);
  const tun = dest.tunnelType === undefined ? -1 : TUNNELS.indexOf(dest.tunnelType);
  if (dest.tunnelType !== undefined && tun < 0) throw new WireError(`unknown tunnel type ${JSON.stringify(dest.tunnelType)}`);
  const n = w.begin(CmdAttr.DEST);
  writeDestKey(w, dest, svcFamily);
  w.u32(DestAttr.FWD_METHOD, fwd);
  // The kernel keeps weight in an int and refuses < 0 with ERANGE; we let it decide (u32 on the wire).
  w.u32(DestAttr.WEIGHT, checkU32(dest.weight, 'weight'));
  w.u32(DestAttr.U_THRESH, checkU32(dest.upperThreshold, 'upper threshold'));
  w.u32(DestAttr.L_THRESH, checkU32(dest.lowerThreshold, 'lower threshold'));
  // Tunnel attributes (5.2+/5.3+) only when asked for, so plain ipip works on older kernels.
  if (tun >= 0) w.u8(DestAttr.TUN_TYPE, tun);
  if (dest.tunnelPort !== undefined) w.be16(DestAttr.TUN_PORT, checkPort(dest.tunnelPort, 'tunnel port'));
  if (dest.tunnelFlags !== undefined) {
    w.u16(DestAttr.TUN_FLAGS, (dest.tunnelFlags.csum ? TUN_F_CSUM : 0) | (dest.tunnelFlags.remoteCsum ? TUN_F_REMCSUM : 0));
  }
  w.end(n);
}

/** The nested DEST attribute of `dest` as bytes (full entry). */
export function encodeDestination(dest: Destination, svcFamily: Family): Buffer {
  const w = new AttrWriter();
  writeDestination(w, dest, svcFamily);
  return w.take();
}

/** Decodes a nested DEST attribute; `svcFamily` is used when the kernel predates ADDR_FAMILY. */
export function decodeDestination(payload: Buffer, svcFamily: Family): Destination {
  const a = parseAttrs(payload);
  const get = (t: DestAttr): Buffer => {
    const b = a.get(t);
    if (!b) throw new WireError(`destination attribute ${t} missing`);
    return b;
  };
  const afAttr = a.get(DestAttr.ADDR_FAMILY);
  const family = afAttr ? afToFamily(readU16Host(afAttr)) : svcFamily;
  const forward = FORWARDS[readU32Host(get(DestAttr.FWD_METHOD)) & abi.CONN_F_FWD_MASK];
  if (!forward) throw new WireError('unknown forwarding method');
  const u32 = (t: DestAttr): number => {
    const b = a.get(t);
    return b ? readU32Host(b) : 0;
  };
  const dest: Destination = {
    family,
    address: formatAddress(get(DestAttr.ADDR), family),
    port: readU16Net(get(DestAttr.PORT)),
    forward,
    weight: readU32Host(get(DestAttr.WEIGHT)),
    upperThreshold: u32(DestAttr.U_THRESH),
    lowerThreshold: u32(DestAttr.L_THRESH),
    activeConns: u32(DestAttr.ACTIVE_CONNS),
    inactiveConns: u32(DestAttr.INACT_CONNS),
    persistConns: u32(DestAttr.PERSIST_CONNS),
  };
  // 6.x dumps the tunnel attributes for every dest; they only mean something for 'tunnel'.
  if (forward === 'tunnel') {
    const tt = a.get(DestAttr.TUN_TYPE);
    if (tt) dest.tunnelType = TUNNELS[readU8(tt)] ?? 'ipip';
    const tp = a.get(DestAttr.TUN_PORT);
    if (tp) dest.tunnelPort = readU16Net(tp);
    const tf = a.get(DestAttr.TUN_FLAGS);
    if (tf) {
      const bits = readU16Host(tf);
      const flags: TunnelFlags = { csum: (bits & TUN_F_CSUM) !== 0, remoteCsum: (bits & TUN_F_REMCSUM) !== 0 };
      dest.tunnelFlags = flags;
    }
  }
  const stats = a.get(DestAttr.STATS64) ?? a.get(DestAttr.STATS);
  if (stats) dest.stats = decodeStats(stats);
  return dest;
}

// ---------------------------------------------------------------------------------------------------
// Sync daemons

const DAEMON_STATES: Readonly<Record<SyncDaemonState, number>> = { master: abi.IP_VS_STATE_MASTER, backup: abi.IP_VS_STATE_BACKUP };

function daemonStateValue(state: SyncDaemonState): number {
  const v = DAEMON_STATES[state];
  if (v === undefined) throw new WireError(`sync daemon state must be master or backup, got ${JSON.stringify(state)}`);
  return v;
}

/** "master sync daemon (mcast=eth1, syncid=1)": how errors name a daemon. */
export function describeDaemon(d: Pick<SyncDaemon, 'state' | 'ifname' | 'syncId'>): string {
  return `${d.state} sync daemon (mcast=${d.ifname}, syncid=${d.syncId})`;
}

function checkRange(v: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new WireError(`${what} must be an integer ${min}..${max}, got ${v}`);
  return v;
}

/** A sync group's family and bytes; only multicast groups (the kernel answers anything else with a bare EINVAL). */
function groupBytes(group: string): { family: Family; bytes: Buffer } {
  const family: Family = group.includes(':') ? 6 : 4;
  const bytes = addressBytes(group, family);
  const multicast = family === 4 ? ((bytes[0] ?? 0) & 0xf0) === 0xe0 : bytes[0] === 0xff;
  if (!multicast) throw new WireError(`sync group must be a multicast address (224.0.0.0/4 or ff00::/8), got ${JSON.stringify(group)}`);
  return { family, bytes };
}

/** Nested DAEMON attribute for NEW_DAEMON: state, interface and sync id, then only the settings given. */
export function writeDaemon(w: AttrWriter, d: SyncDaemon): void {
  const state = daemonStateValue(d.state);
  const ifLen = Buffer.byteLength(d.ifname);
  // The policy allows IP_VS_IFNAME_MAXLEN - 1 bytes before the NUL.
  if (ifLen === 0 || ifLen >= abi.IP_VS_IFNAME_MAXLEN || d.ifname.includes('\0')) {
    throw new WireError(`sync interface name must be 1..15 bytes, got ${JSON.stringify(d.ifname)}`);
  }
  const group = d.group === undefined ? undefined : groupBytes(d.group);
  const n = w.begin(CmdAttr.DAEMON);
  w.u32(DaemonAttr.STATE, state);
  w.str(DaemonAttr.MCAST_IFN, d.ifname);
  w.u32(DaemonAttr.SYNC_ID, checkRange(d.syncId, 0, 255, 'sync id'));
  if (d.maxlen !== undefined) w.u16(DaemonAttr.SYNC_MAXLEN, checkRange(d.maxlen, 1, 65535, 'sync maxlen'));
  if (group) w.bytes(group.family === 4 ? DaemonAttr.MCAST_GROUP : DaemonAttr.MCAST_GROUP6, group.bytes);
  if (d.port !== undefined) w.u16(DaemonAttr.MCAST_PORT, checkRange(d.port, 1, 65535, 'sync port'));
  if (d.ttl !== undefined) w.u8(DaemonAttr.MCAST_TTL, checkRange(d.ttl, 1, 255, 'sync ttl'));
  w.end(n);
}

/** The nested DAEMON attribute of `d` as bytes (NEW_DAEMON). */
export function encodeDaemon(d: SyncDaemon): Buffer {
  const w = new AttrWriter();
  writeDaemon(w, d);
  return w.take();
}

/** The nested DAEMON attribute naming only a state: all that DEL_DAEMON reads. */
export function encodeDaemonState(state: SyncDaemonState): Buffer {
  const w = new AttrWriter();
  const v = daemonStateValue(state);
  const n = w.begin(CmdAttr.DAEMON);
  w.u32(DaemonAttr.STATE, v);
  w.end(n);
  return w.take();
}

function exactly(b: Buffer, n: number, what: string): Buffer {
  if (b.length !== n) throw new WireError(`${what}: ${b.length} bytes, expected ${n}`);
  return b;
}

/** Decodes a nested DAEMON attribute as GET_DAEMON dumps it. */
export function decodeDaemon(payload: Buffer): SyncDaemon {
  const a = parseAttrs(payload);
  const get = (t: DaemonAttr, what: string): Buffer => {
    const b = a.get(t);
    if (!b) throw new WireError(`sync daemon without ${what} (attribute ${t})`);
    return b;
  };
  const stateValue = readU32Host(get(DaemonAttr.STATE, 'STATE'));
  const state = (Object.keys(DAEMON_STATES) as SyncDaemonState[]).find((k) => DAEMON_STATES[k] === stateValue);
  if (!state) throw new WireError(`unknown sync daemon state ${stateValue}`);
  const d: SyncDaemon = {
    state,
    ifname: readString(get(DaemonAttr.MCAST_IFN, 'MCAST_IFN')),
    syncId: readU32Host(get(DaemonAttr.SYNC_ID, 'SYNC_ID')),
  };
  const maxlen = a.get(DaemonAttr.SYNC_MAXLEN);
  if (maxlen) d.maxlen = readU16Host(maxlen);
  const g6 = a.get(DaemonAttr.MCAST_GROUP6);
  const g4 = a.get(DaemonAttr.MCAST_GROUP);
  if (g6) d.group = formatAddress(exactly(g6, 16, 'MCAST_GROUP6'), 6);
  else if (g4) d.group = formatAddress(exactly(g4, 4, 'MCAST_GROUP'), 4);
  const port = a.get(DaemonAttr.MCAST_PORT);
  if (port) d.port = readU16Host(port);
  const ttl = a.get(DaemonAttr.MCAST_TTL);
  if (ttl) d.ttl = readU8(ttl);
  return d;
}

// ---------------------------------------------------------------------------------------------------
// Info, timeouts, ops

export function decodeInfo(attrs: Map<number, Buffer>): IpvsInfo {
  const v = attrs.get(InfoAttr.VERSION);
  const size = attrs.get(InfoAttr.CONN_TAB_SIZE);
  if (!v || !size) throw new WireError('GET_INFO reply without VERSION / CONN_TAB_SIZE');
  const code = readU32Host(v);
  return { version: `${(code >> 16) & 0xff}.${(code >> 8) & 0xff}.${code & 0xff}`, connTabSize: readU32Host(size) };
}

export function decodeTimeouts(attrs: Map<number, Buffer>): Timeouts {
  const n = (t: CmdAttr): number => {
    const b = attrs.get(t);
    return b ? readU32Host(b) : 0;
  };
  return { tcp: n(CmdAttr.TIMEOUT_TCP), tcpFin: n(CmdAttr.TIMEOUT_TCP_FIN), udp: n(CmdAttr.TIMEOUT_UDP) };
}

export interface EncodedRequest {
  cmd: Cmd;
  /** The message's attributes, encoded. */
  attrs: Buffer;
  /** Human name of the object, for error messages ("TCP 10.0.0.1:80 -> 10.0.0.2:80"); built only on error. */
  subject: () => string;
}

/** Human name of what an op touches, for error messages ("TCP 10.0.0.1:80 -> 10.0.0.2:80"). */
export function opSubject(op: IpvsOp): string {
  switch (op.kind) {
    case 'addService':
    case 'updateService':
    case 'deleteService':
      return describeService(op.service);
    case 'addDestination':
    case 'updateDestination':
    case 'deleteDestination':
      return `${describeService(op.service)} -> ${describeDestination(op.destination)}`;
    case 'zero':
      return op.service ? describeService(op.service) : '';
    case 'setTimeouts':
    case 'flush':
      return '';
  }
}

/** Writes the attributes of `op`; returns its command. */
function writeOp(w: AttrWriter, op: IpvsOp): Cmd {
  switch (op.kind) {
    case 'addService':
    case 'updateService':
      writeService(w, op.service);
      return op.kind === 'addService' ? Cmd.NEW_SERVICE : Cmd.SET_SERVICE;
    case 'deleteService':
      writeServiceSelector(w, op.service);
      return Cmd.DEL_SERVICE;
    case 'addDestination':
    case 'updateDestination':
      writeServiceSelector(w, op.service);
      writeDestination(w, op.destination, op.service.family);
      return op.kind === 'addDestination' ? Cmd.NEW_DEST : Cmd.SET_DEST;
    case 'deleteDestination':
      writeServiceSelector(w, op.service);
      writeDestinationSelector(w, op.destination, op.service.family);
      return Cmd.DEL_DEST;
    case 'setTimeouts': {
      // 0 (or absent) leaves the kernel's value unchanged.
      const t = op.timeouts;
      if (t.tcp !== undefined) w.u32(CmdAttr.TIMEOUT_TCP, checkU32(t.tcp, 'tcp timeout'));
      if (t.tcpFin !== undefined) w.u32(CmdAttr.TIMEOUT_TCP_FIN, checkU32(t.tcpFin, 'tcpfin timeout'));
      if (t.udp !== undefined) w.u32(CmdAttr.TIMEOUT_UDP, checkU32(t.udp, 'udp timeout'));
      return Cmd.SET_CONFIG;
    }
    case 'zero':
      if (op.service) writeServiceSelector(w, op.service);
      return Cmd.ZERO;
    case 'flush':
      return Cmd.FLUSH;
  }
}

// ---------------------------------------------------------------------------------------------------
// Fast path for the bulk of a load: NEW_DEST / SET_DEST of an IPv4 destination in an IPv4 service.
// A message template made once by the general encoder is copied and only the values are patched:
// under emulation the JIT is slow to kick in, and there the general path's ~60 calls per op dominated.

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Where the values sit inside the DEST attribute of a template. */
const DEST_AT = { addr: 16, port: 24, fwd: 32, weight: 40, uthresh: 48, lthresh: 56 } as const;

function destTemplate(fwmark: boolean): Buffer {
  const w = new AttrWriter(256);
  const m = w.beginMessage(0, 0, 0, 0, 0);
  writeServiceSelector(w, fwmark ? { family: 4, fwmark: 1 } : { family: 4, protocol: 'tcp', address: '0.0.0.0', port: 0 });
  writeDestination(w, { family: 4, address: '0.0.0.0', port: 0, forward: 'masq', weight: 0, upperThreshold: 0, lowerThreshold: 0 }, 4);
  w.endMessage(m);
  return w.take();
}

let templates: { addr: Buffer; fwmark: Buffer } | undefined;
// The service of the previous op: a load sends all the destinations of a service in a row.
let lastSel: ServiceSelector | undefined;
let lastSelText = '';
let lastSelValue = -1;

const isU32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isPort = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffff;

/** Writes a NEW_DEST / SET_DEST message the way writeOp does, or returns false (nothing written) when not the simple case. */
function writeDestFast(w: AttrWriter, family: number, version: number, cmd: Cmd, sel: ServiceSelector, dest: Destination): boolean {
  if (!LE || sel.family !== 4 || dest.family !== 4) return false;
  if (dest.tunnelType !== undefined || dest.tunnelPort !== undefined || dest.tunnelFlags !== undefined) return false;
  const fwd = FORWARDS.indexOf(dest.forward);
  if (fwd < 0 || !isPort(dest.port) || !isU32(dest.weight) || !isU32(dest.upperThreshold) || !isU32(dest.lowerThreshold)) return false;
  const daddr = ipv4Value(dest.address);
  if (daddr < 0) return false;
  const fw = isFwmarkSelector(sel);
  let saddr = 0;
  let proto = 0;
  if (fw) {
    if (!isU32(sel.fwmark)) return false;
  } else {
    proto = PROTOCOLS[sel.protocol];
    if (proto === undefined || !isPort(sel.port)) return false;
    if (sel === lastSel && sel.address === lastSelText) saddr = lastSelValue;
    else {
      saddr = ipv4Value(sel.address);
      if (saddr < 0) return false;
      lastSel = sel;
      lastSelText = sel.address;
      lastSelValue = saddr;
    }
  }
  templates ??= { addr: destTemplate(false), fwmark: destTemplate(true) };
  const tpl = fw ? templates.fwmark : templates.addr;
  const o = w.reserve(tpl.length);
  const b = w.buf;
  b.set(tpl, o);
  b[o + 4] = family;
  b[o + 5] = family >>> 8;
  b[o + 16] = cmd;
  b[o + 17] = version;
  let d: number; // start of the DEST attribute
  if (fw) {
    const m = sel.fwmark;
    b[o + 36] = m;
    b[o + 37] = m >>> 8;
    b[o + 38] = m >>> 16;
    b[o + 39] = m >>> 24;
    d = o + 40;
  } else {
    b[o + 36] = proto;
    b[o + 37] = proto >>> 8;
    b[o + 44] = saddr >>> 24;
    b[o + 45] = saddr >>> 16;
    b[o + 46] = saddr >>> 8;
    b[o + 47] = saddr;
    b[o + 52] = sel.port >>> 8;
    b[o + 53] = sel.port;
    d = o + 56;
  }
  b[d + DEST_AT.addr] = daddr >>> 24;
  b[d + DEST_AT.addr + 1] = daddr >>> 16;
  b[d + DEST_AT.addr + 2] = daddr >>> 8;
  b[d + DEST_AT.addr + 3] = daddr;
  b[d + DEST_AT.port] = dest.port >>> 8;
  b[d + DEST_AT.port + 1] = dest.port;
  b[d + DEST_AT.fwd] = fwd;
  const wt = dest.weight;
  b[d + DEST_AT.weight] = wt;
  b[d + DEST_AT.weight + 1] = wt >>> 8;
  b[d + DEST_AT.weight + 2] = wt >>> 16;
  b[d + DEST_AT.weight + 3] = wt >>> 24;
  const ut = dest.upperThreshold;
  b[d + DEST_AT.uthresh] = ut;
  b[d + DEST_AT.uthresh + 1] = ut >>> 8;
  b[d + DEST_AT.uthresh + 2] = ut >>> 16;
  b[d + DEST_AT.uthresh + 3] = ut >>> 24;
  const lt = dest.lowerThreshold;
  b[d + DEST_AT.lthresh] = lt;
  b[d + DEST_AT.lthresh + 1] = lt >>> 8;
  b[d + DEST_AT.lthresh + 2] = lt >>> 16;
  b[d + DEST_AT.lthresh + 3] = lt >>> 24;
  return true;
}

/** NEW_SERVICE / SET_SERVICE templates by selector kind and scheduler, with where the flags word starts. */
const serviceTemplates = new Map<string, { tpl: Buffer; flagsAt: number }>();

function serviceTemplate(fw: boolean, scheduler: string): { tpl: Buffer; flagsAt: number } {
  const key = fw ? `f${scheduler}` : `a${scheduler}`;
  let t = serviceTemplates.get(key);
  if (!t) {
    const w = new AttrWriter(256);
    const m = w.beginMessage(0, 0, 0, 0, 0);
    writeService(w, makeService(fw ? { family: 4, fwmark: 1, scheduler, netmask: 0 } : { family: 4, protocol: 'tcp', address: '0.0.0.0', port: 0, scheduler, netmask: 0 }));
    w.endMessage(m);
    const tpl = w.take();
    // SCHED_NAME follows the key attributes: {len, type} + name + NUL, padded.
    const schedAt = fw ? 40 : 56;
    t = { tpl, flagsAt: schedAt + ((4 + scheduler.length + 1 + 3) & ~3) };
    serviceTemplates.set(key, t);
  }
  return t;
}

/** Writes a NEW_SERVICE / SET_SERVICE message the way writeOp does, or returns false (nothing written) when not the simple case. */
function writeServiceFast(w: AttrWriter, family: number, version: number, cmd: Cmd, svc: Service): boolean {
  if (!LE || svc.family !== 4 || svc.peName) return false;
  const sched = svc.scheduler;
  if (sched.length === 0 || sched.length >= abi.SCHEDNAME_MAXLEN) return false;
  for (let i = 0; i < sched.length; i++) if (sched.charCodeAt(i) > 0x7f) return false;
  if (!isU32(svc.timeout) || !isU32(svc.netmask)) return false;
  const fw = typeof svc.fwmark === 'number' && svc.fwmark > 0; // isFwmarkSelector, without narrowing Service away
  let saddr = 0;
  let proto = 0;
  if (fw) {
    if (!isU32(svc.fwmark)) return false;
  } else {
    proto = PROTOCOLS[svc.protocol];
    if (proto === undefined || !isPort(svc.port)) return false;
    saddr = ipv4Value(svc.address);
    if (saddr < 0) return false;
  }
  const { tpl, flagsAt } = serviceTemplate(fw, sched);
  const o = w.reserve(tpl.length);
  const b = w.buf;
  b.set(tpl, o);
  b[o + 4] = family;
  b[o + 5] = family >>> 8;
  b[o + 16] = cmd;
  b[o + 17] = version;
  if (fw) {
    const m = svc.fwmark;
    b[o + 36] = m;
    b[o + 37] = m >>> 8;
    b[o + 38] = m >>> 16;
    b[o + 39] = m >>> 24;
  } else {
    b[o + 36] = proto;
    b[o + 37] = proto >>> 8;
    b[o + 44] = saddr >>> 24;
    b[o + 45] = saddr >>> 16;
    b[o + 46] = saddr >>> 8;
    b[o + 47] = saddr;
    b[o + 52] = svc.port >>> 8;
    b[o + 53] = svc.port;
  }
  const f = o + flagsAt + 4; // FLAGS {flags, mask ~0 (already in the template)}, then TIMEOUT, then NETMASK
  b[f] = flagsToBits(svc.flags) & ~abi.SVC_F_HASHED;
  const t = svc.timeout;
  b[f + 12] = t;
  b[f + 13] = t >>> 8;
  b[f + 14] = t >>> 16;
  b[f + 15] = t >>> 24;
  const nm = svc.netmask; // network order for IPv4
  b[f + 20] = nm >>> 24;
  b[f + 21] = nm >>> 16;
  b[f + 22] = nm >>> 8;
  b[f + 23] = nm;
  return true;
}

const invalid = (op: IpvsOp, e: unknown): unknown =>
  e instanceof WireError ? new IpvsError('EINVAL', op.kind, `${op.kind}: ${e.message}`) : e;

// One scratch writer for all encodes: encoding is synchronous, so it is never shared mid-use.
const scratch = new AttrWriter(4096);

/** The command + attributes for one op; invalid input becomes IpvsError EINVAL before anything is sent. */
export function encodeOp(op: IpvsOp): EncodedRequest {
  scratch.off = 0;
  try {
    const cmd = writeOp(scratch, op);
    return { cmd, attrs: scratch.take(), subject: () => opSubject(op) };
  } catch (e) {
    scratch.off = 0;
    throw invalid(op, e);
  }
}

/**
 * Appends `op` as a whole generic-netlink message (flags and sequence number left 0, to be stamped
 * by the transport), straight into a batch buffer. Invalid input writes nothing and throws
 * IpvsError EINVAL.
 */
export function writeOpMessage(w: AttrWriter, family: number, version: number, op: IpvsOp): void {
  if (op.kind === 'addService' && writeServiceFast(w, family, version, Cmd.NEW_SERVICE, op.service)) return;
  if (op.kind === 'updateService' && writeServiceFast(w, family, version, Cmd.SET_SERVICE, op.service)) return;
  if (op.kind === 'addDestination' && writeDestFast(w, family, version, Cmd.NEW_DEST, op.service, op.destination)) return;
  if (op.kind === 'updateDestination' && writeDestFast(w, family, version, Cmd.SET_DEST, op.service, op.destination)) return;
  const start = w.beginMessage(family, 0, 0, 0, version);
  try {
    const cmd = writeOp(w, op); // may grow (replace) w.buf
    w.buf[start + 16] = cmd;
  } catch (e) {
    w.off = start;
    throw invalid(op, e);
  }
  w.endMessage(start);
}

/** A Service with ipvsadm's defaults (wlc, no flags, netmask /32 or /128) for the fields not given. */
export function makeService(init: ServiceSelector & Partial<Omit<Service, 'flags'>> & { flags?: Partial<ServiceFlags> }): Service {
  const fw = isFwmarkSelector(init);
  const family = init.family;
  return {
    family,
    protocol: init.protocol ?? 'tcp',
    address: init.address ?? (family === 4 ? '0.0.0.0' : '::'),
    port: init.port ?? 0,
    fwmark: fw ? init.fwmark : 0,
    scheduler: init.scheduler ?? 'wlc',
    flags: { persistent: false, onePacket: false, sched1: false, sched2: false, sched3: false, ...init.flags },
    timeout: init.timeout ?? 0,
    netmask: init.netmask ?? (family === 4 ? 0xffffffff : 128),
    ...(init.peName ? { peName: init.peName } : {}),
  };
}

/** A Destination with ipvsadm's defaults (route, weight 1, no thresholds) for the fields not given. */
export function makeDestination(init: DestinationSelector & Partial<Destination>, svcFamily: Family): Destination {
  const { family, ...rest } = init;
  return { forward: 'route', weight: 1, upperThreshold: 0, lowerThreshold: 0, ...rest, family: family ?? svcFamily };
}
