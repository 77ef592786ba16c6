// Pure codec between the IPVS nouns (Service, Destination, ops) and IPVS generic-netlink attributes.
// Handles the ABI's quirks: ports and IPv4 netmasks in network order, FLAGS as {flags, mask}, HASHED bit.
import { isIPv6 } from 'node:net';
import { endianness } from 'node:os';
import * as abi from './abi.js';
import { Cmd, CmdAttr, DestAttr, InfoAttr, StatsAttr, SvcAttr } from './abi.js';
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

const LE = endianness() === 'LE';

// ---------------------------------------------------------------------------------------------------
// Addresses

/** Dotted quad -> 4 bytes, without regexps (it runs once per op in bulk loads). */
function parseIPv4(s: string): Buffer | undefined {
  const out = Buffer.alloc(4);
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || value > 255 || part > 3) return undefined;
      out[part++] = value;
      digits = 0;
      value = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // no leading zeros (inet_pton refuses them)
      value = value * 10 + (c - 48);
      digits++;
    } else return undefined;
  }
  return part === 4 ? out : undefined;
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
  w.bytes(SvcAttr.ADDR, addressBytes(sel.address, sel.family));
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
  const flags = Buffer.alloc(8);
  const bits = flagsToBits(svc.flags) & ~abi.SVC_F_HASHED;
  if (LE) {
    flags.writeUInt32LE(bits, 0);
    flags.writeUInt32LE(0xffffffff, 4);
  } else {
    flags.writeUInt32BE(bits, 0);
    flags.writeUInt32BE(0xffffffff, 4);
  }
  w.bytes(SvcAttr.FLAGS, flags);
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
  w.bytes(DestAttr.ADDR, addressBytes(sel.address, family));
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

const destSubject = (svc: ServiceSelector, dest: DestinationSelector) => (): string =>
  `${describeService(svc)} -> ${describeDestination(dest)}`;
const noSubject = (): string => '';

function writeOp(w: AttrWriter, op: IpvsOp): { cmd: Cmd; subject: () => string } {
  switch (op.kind) {
    case 'addService':
    case 'updateService':
      writeService(w, op.service);
      return { cmd: op.kind === 'addService' ? Cmd.NEW_SERVICE : Cmd.SET_SERVICE, subject: () => describeService(op.service) };
    case 'deleteService':
      writeServiceSelector(w, op.service);
      return { cmd: Cmd.DEL_SERVICE, subject: () => describeService(op.service) };
    case 'addDestination':
    case 'updateDestination':
      writeServiceSelector(w, op.service);
      writeDestination(w, op.destination, op.service.family);
      return { cmd: op.kind === 'addDestination' ? Cmd.NEW_DEST : Cmd.SET_DEST, subject: destSubject(op.service, op.destination) };
    case 'deleteDestination':
      writeServiceSelector(w, op.service);
      writeDestinationSelector(w, op.destination, op.service.family);
      return { cmd: Cmd.DEL_DEST, subject: destSubject(op.service, op.destination) };
    case 'setTimeouts': {
      // 0 (or absent) leaves the kernel's value unchanged.
      const t = op.timeouts;
      if (t.tcp !== undefined) w.u32(CmdAttr.TIMEOUT_TCP, checkU32(t.tcp, 'tcp timeout'));
      if (t.tcpFin !== undefined) w.u32(CmdAttr.TIMEOUT_TCP_FIN, checkU32(t.tcpFin, 'tcpfin timeout'));
      if (t.udp !== undefined) w.u32(CmdAttr.TIMEOUT_UDP, checkU32(t.udp, 'udp timeout'));
      return { cmd: Cmd.SET_CONFIG, subject: noSubject };
    }
    case 'zero': {
      const svc = op.service;
      if (!svc) return { cmd: Cmd.ZERO, subject: noSubject };
      writeServiceSelector(w, svc);
      return { cmd: Cmd.ZERO, subject: () => describeService(svc) };
    }
    case 'flush':
      return { cmd: Cmd.FLUSH, subject: noSubject };
  }
}

// One scratch writer for all encodes: encoding is synchronous, so it is never shared mid-use.
const scratch = new AttrWriter(4096);

/** The command + attributes for one op; invalid input becomes IpvsError EINVAL before anything is sent. */
export function encodeOp(op: IpvsOp): EncodedRequest {
  scratch.off = 0;
  try {
    const { cmd, subject } = writeOp(scratch, op);
    return { cmd, attrs: scratch.take(), subject };
  } catch (e) {
    scratch.off = 0;
    if (e instanceof WireError) throw new IpvsError('EINVAL', op.kind, `${op.kind}: ${e.message}`);
    throw e;
  }
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
