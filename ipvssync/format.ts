// Text forms of ops (one line each: dry-run output and log messages), of a whole table in
// `ipvsadm -Ln` layout and of the sync daemons as `ipvsadm -L --daemon` (`ipvssync --list`). Pure.

import {
  formatServiceKey,
  fullNetmask,
  hostPort,
  type Destination,
  type Entry,
  type ForwardMethod,
  type IpvsInfo,
  type Op,
  type Service,
  type SyncDaemon,
  type SyncDaemonOp,
  type Table,
  type WantedSyncDaemon,
} from './types.js';

function maskText(s: Service): string {
  if (s.netmask === fullNetmask(s.key.family)) return '';
  if (s.key.family === 'inet6') return ` mask ${s.netmask}`;
  const bits = s.netmask === 0 ? 0 : (0xffffffff << (32 - s.netmask)) >>> 0;
  return ` mask ${[24, 16, 8, 0].map((sh) => (bits >>> sh) & 0xff).join('.')}`;
}

/** ` persistent 300 mask 255.255.255.0 ops`: the part after the scheduler, as ipvsadm -Ln prints it. */
function serviceFlags(s: Service): string {
  let out = '';
  if (s.persistent) out += ` persistent ${s.timeout}${maskText(s)}`;
  if (s.onePacket) out += ' ops';
  return out;
}

function destTail(d: Destination): string {
  let s = ` ${d.forward} w=${d.weight}`;
  if (d.upperThreshold > 0) s += ` upper=${d.upperThreshold}`;
  if (d.lowerThreshold > 0) s += ` lower=${d.lowerThreshold}`;
  return s;
}

/** `add service tcp 10.0.0.1:80 wrr`, `add dest tcp 10.0.0.1:80 -> 10.0.1.5:80 route w=10`, ... */
export function formatOp(op: Op): string {
  switch (op.kind) {
    case 'add-service':
    case 'edit-service':
      return `${op.kind === 'add-service' ? 'add' : 'edit'} service ${formatServiceKey(op.service.key)} ${op.service.scheduler}${serviceFlags(op.service)}`;
    case 'delete-service':
      return `delete service ${formatServiceKey(op.key)}`;
    case 'add-dest':
    case 'edit-dest':
      return `${op.kind === 'add-dest' ? 'add' : 'edit'} dest ${formatServiceKey(op.service)} -> ${hostPort(op.dest.addr, op.dest.port)}${destTail(op.dest)}`;
    case 'delete-dest':
      return `delete dest ${formatServiceKey(op.service)} -> ${hostPort(op.dest.addr, op.dest.port)}`;
  }
}

/** Numeric value of an address, for ipvsadm's sort order. */
function addrValue(addr: string): bigint {
  if (!addr.includes(':')) return addr.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  const [head = '', tail = ''] = addr.split('::');
  const hs = head === '' ? [] : head.split(':');
  const ts = addr.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
const PROTO_NUM = { tcp: 6, udp: 17, sctp: 132 } as const;

/** libipvs ipvs_cmp_services: fwmark (0 for address services), family, protocol, address, port. */
function cmpEntries(a: Entry, b: Entry): number {
  const ka = a.service.key;
  const kb = b.service.key;
  const fa = ka.kind === 'fwmark' ? ka.fwmark : 0;
  const fb = kb.kind === 'fwmark' ? kb.fwmark : 0;
  if (fa !== fb) return fa - fb;
  if (ka.family !== kb.family) return ka.family === 'inet' ? -1 : 1;
  if (ka.kind === 'addr' && kb.kind === 'addr') {
    if (ka.protocol !== kb.protocol) return PROTO_NUM[ka.protocol] - PROTO_NUM[kb.protocol];
    return cmpBig(addrValue(ka.addr), addrValue(kb.addr)) || ka.port - kb.port;
  }
  return 0;
}

function cmpDests(a: Destination, b: Destination): number {
  if (a.family !== b.family) return a.family === 'inet' ? -1 : 1;
  return cmpBig(addrValue(a.addr), addrValue(b.addr)) || a.port - b.port;
}

const FWD_NAME: Readonly<Record<ForwardMethod, string>> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route', bypass: 'Bypass' };

function serviceName(s: Service): string {
  const k = s.key;
  if (k.kind === 'fwmark') return `FWM  ${k.fwmark}${k.family === 'inet6' ? ' IPv6' : ''}`;
  const name = `${k.protocol.toUpperCase()}  ${hostPort(k.addr, k.port)}`;
  return k.family === 'inet' ? name.slice(0, 33) : name;
}

/** The table as `ipvsadm -Ln` prints it (header, then services and destinations in ipvsadm's sort order). */
export function formatList(info: IpvsInfo, table: Table): string {
  const out = [
    `IP Virtual Server version ${info.version} (size=${info.connTabSize})`,
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
  ];
  for (const e of [...table].sort(cmpEntries)) {
    out.push(`${serviceName(e.service)} ${e.service.scheduler}${serviceFlags(e.service)}`);
    for (const d of [...e.dests].sort(cmpDests)) {
      let dname = hostPort(d.addr, d.port);
      if (d.family === 'inet') dname = dname.slice(0, 28);
      out.push(
        `  -> ${dname.padEnd(28)} ${FWD_NAME[d.forward].padEnd(7)} ${String(d.weight).padEnd(6)} ` +
          `${String(d.activeConns ?? 0).padEnd(10)} ${String(d.inactConns ?? 0).padEnd(10)}`,
      );
    }
  }
  return out.join('\n') + '\n';
}

/**
 * `master sync daemon (mcast=eth1, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)`, as
 * ipvsadm 1.31 prints it (it leaves out a maxlen, port or ttl of 0; a wanted daemon may have no maxlen).
 */
export function formatSyncDaemon(d: SyncDaemon | WantedSyncDaemon): string {
  let s = `${d.state} sync daemon (mcast=${d.ifname}, syncid=${d.syncId}`;
  if (d.maxlen) s += `, maxlen=${d.maxlen}`;
  s += `, group=${d.group}`;
  if (d.port) s += `, port=${d.port}`;
  if (d.ttl) s += `, ttl=${d.ttl}`;
  return `${s})`;
}

/** The running daemons as `ipvsadm -L --daemon` lists them: master first, one line each ('' for none). */
export function formatSyncDaemons(daemons: readonly SyncDaemon[]): string {
  const order = (d: SyncDaemon): number => (d.state === 'master' ? 0 : 1);
  return [...daemons]
    .sort((a, b) => order(a) - order(b))
    .map((d) => `${formatSyncDaemon(d)}\n`)
    .join('');
}

/** `start master sync daemon (...)`, `stop backup sync daemon (...)`. */
export function formatSyncDaemonOp(op: SyncDaemonOp): string {
  return `${op.kind === 'start-daemon' ? 'start' : 'stop'} ${formatSyncDaemon(op.daemon)}`;
}
