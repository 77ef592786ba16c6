// ADAPTER: IpvsBackend and SyncDaemonControl on the kernel through ipvs-netlink's IpvsClient (spec 8.7/8.8
// mapping). The mapping functions are pure and unit-tested; the kernel path is exercised by the qemu lab only.

import { execFile } from 'node:child_process';
import type {
  Destination as NlDestination,
  IpvsClient,
  IpvsOp,
  Service as NlService,
  ServiceSelector,
  SyncDaemon as NlSyncDaemon,
} from '../ipvs-netlink/index.js';
import { parseAddr } from './address.js';
import type { IpvsBackend, SyncDaemonControl } from './backend.js';
import { SYNC_DAEMON_DEFAULTS } from './sync-daemon-config.js';
import type {
  Destination,
  Entry,
  Family,
  IpvsInfo,
  Op,
  OpResult,
  Service,
  ServiceKey,
  SyncDaemon,
  SyncDaemonState,
  Table,
  WantedSyncDaemon,
} from './types.js';

const nlFamily = (f: Family): 4 | 6 => (f === 'inet' ? 4 : 6);
const ourFamily = (f: 4 | 6): Family => (f === 4 ? 'inet' : 'inet6');

/** The kernel's address text in the same canonical form as the hand-off parser's. */
function canonical(addr: string): string {
  const a = parseAddr(addr);
  return a.ok ? a.value.addr : addr;
}

/**
 * IPVS_SVC_ATTR_NETMASK: IPv4 carries the mask itself (0xffffffff for /32, as a host-order number
 * in ipvs-netlink), IPv6 the prefix length. Our tables keep a prefix length for both.
 */
export function netmaskToKernel(family: Family, prefix: number): number {
  if (family === 'inet6') return prefix;
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function netmaskFromKernel(family: Family, value: number): number {
  if (family === 'inet6') return value;
  let n = 0; // leading ones; a non-contiguous mask keeps its leading run
  while (n < 32 && ((value >>> (31 - n)) & 1) === 1) n++;
  return n;
}

export function toSelector(k: ServiceKey): ServiceSelector {
  if (k.kind === 'fwmark') return { family: nlFamily(k.family), fwmark: k.fwmark };
  return { family: nlFamily(k.family), protocol: k.protocol, address: k.addr, port: k.port };
}

export function toNlService(s: Service): NlService {
  const k = s.key;
  const family = nlFamily(k.family);
  return {
    family,
    // A fwmark service is TCP 0.0.0.0:0 (or ::) with the mark, as libipvs sends it.
    protocol: k.kind === 'fwmark' ? 'tcp' : k.protocol,
    address: k.kind === 'fwmark' ? (family === 4 ? '0.0.0.0' : '::') : k.addr,
    port: k.kind === 'fwmark' ? 0 : k.port,
    fwmark: k.kind === 'fwmark' ? k.fwmark : 0,
    scheduler: s.scheduler,
    flags: { persistent: s.persistent, onePacket: s.onePacket, sched1: false, sched2: false, sched3: false },
    timeout: s.persistent ? s.timeout : 0,
    netmask: netmaskToKernel(k.family, s.netmask),
  };
}

export function fromNlService(s: NlService): Service {
  const family = ourFamily(s.family);
  const key: ServiceKey =
    s.fwmark > 0
      ? { kind: 'fwmark', family, fwmark: s.fwmark }
      : { kind: 'addr', family, protocol: s.protocol, addr: canonical(s.address), port: s.port };
  return {
    key,
    scheduler: s.scheduler,
    persistent: s.flags.persistent,
    timeout: s.timeout,
    onePacket: s.flags.onePacket,
    netmask: netmaskFromKernel(family, s.netmask),
  };
}

export function toNlDestination(d: Destination): NlDestination {
  return {
    family: nlFamily(d.family),
    address: d.addr,
    port: d.port,
    forward: d.forward,
    weight: d.weight,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
  };
}

export function fromNlDestination(d: NlDestination): Destination {
  return {
    addr: canonical(d.address),
    family: ourFamily(d.family),
    port: d.port,
    forward: d.forward,
    weight: d.weight,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
    activeConns: d.activeConns ?? 0,
    inactConns: d.inactiveConns ?? 0,
    persistConns: d.persistConns ?? 0,
  };
}

export function toNlOp(op: Op, selector: (k: ServiceKey) => ServiceSelector = toSelector): IpvsOp {
  switch (op.kind) {
    case 'add-service':
      return { kind: 'addService', service: toNlService(op.service) };
    case 'edit-service':
      return { kind: 'updateService', service: toNlService(op.service) };
    case 'delete-service':
      return { kind: 'deleteService', service: selector(op.key) };
    case 'add-dest':
      return { kind: 'addDestination', service: selector(op.service), destination: toNlDestination(op.dest) };
    case 'edit-dest':
      return { kind: 'updateDestination', service: selector(op.service), destination: toNlDestination(op.dest) };
    case 'delete-dest':
      return {
        kind: 'deleteDestination',
        service: selector(op.service),
        destination: { address: op.dest.addr, port: op.dest.port, family: nlFamily(op.dest.family) },
      };
  }
}

/** A daemon as the kernel reports it; settings a pre-4.3 kernel does not report were its fixed defaults. */
export function fromNlSyncDaemon(d: NlSyncDaemon): SyncDaemon {
  return {
    state: d.state,
    ifname: d.ifname,
    syncId: d.syncId,
    maxlen: d.maxlen ?? 0,
    group: d.group === undefined ? SYNC_DAEMON_DEFAULTS.group : canonical(d.group),
    port: d.port ?? SYNC_DAEMON_DEFAULTS.port,
    ttl: d.ttl ?? SYNC_DAEMON_DEFAULTS.ttl,
  };
}

export function toNlSyncDaemon(d: WantedSyncDaemon): NlSyncDaemon {
  const { maxlen, ...rest } = d;
  return maxlen === undefined ? rest : { ...rest, maxlen };
}

/** An IpvsError as ipvssync reports errors: `CODE: message`. */
const asError = (e: unknown): Error => new Error(e instanceof Error && 'code' in e ? `${String(e.code)}: ${e.message}` : String(e));

export class NetlinkBackend implements IpvsBackend, SyncDaemonControl {
  constructor(private readonly client: IpvsClient) {}

  info(): Promise<IpvsInfo> {
    return this.client.getInfo();
  }

  /** One service dump, then one destination dump per service (in parallel: the client pipelines them). */
  async readTable(): Promise<Table> {
    const services = await this.client.listServices();
    return Promise.all(
      services.map(async (s): Promise<Entry> => {
        const service = fromNlService(s);
        const dests = await this.client.listDestinations(toSelector(service.key));
        return { service, dests: dests.map(fromNlDestination) };
      }),
    );
  }

  async apply(ops: readonly Op[]): Promise<OpResult[]> {
    // The ops of one service share its key object: one selector each, not one per op.
    const selectors = new Map<ServiceKey, ServiceSelector>();
    const selector = (k: ServiceKey): ServiceSelector => {
      let s = selectors.get(k);
      if (!s) selectors.set(k, (s = toSelector(k)));
      return s;
    };
    const nlOps = new Array<IpvsOp>(ops.length);
    for (let i = 0; i < ops.length; i++) nlOps[i] = toNlOp(ops[i]!, selector);
    const errors = await this.client.applyAll(nlOps);
    const out = new Array<OpResult>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const e = errors[i];
      const op = ops[i]!;
      out[i] = e ? { op, ok: false, error: `${e.code}: ${e.message}` } : { op, ok: true };
    }
    return out;
  }

  async readDaemons(): Promise<SyncDaemon[]> {
    try {
      return (await this.client.getDaemons()).map(fromNlSyncDaemon);
    } catch (e) {
      throw asError(e);
    }
  }

  async startDaemon(daemon: WantedSyncDaemon): Promise<void> {
    try {
      await this.client.startDaemon(toNlSyncDaemon(daemon));
    } catch (e) {
      throw asError(e);
    }
  }

  async stopDaemon(state: SyncDaemonState): Promise<void> {
    try {
      await this.client.stopDaemon(state);
    } catch (e) {
      throw asError(e);
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
}

function modprobeIpvs(): Promise<void> {
  return new Promise((resolve) => execFile('/sbin/modprobe', ['--', 'ip_vs'], () => resolve()));
}

/**
 * Open the kernel backend. As the original: when the kernel has no IPVS family, run
 * `/sbin/modprobe -- ip_vs` once and retry. ipvs-netlink is loaded lazily so --dry-run never needs it.
 */
export async function openNetlinkBackend(): Promise<IpvsBackend & SyncDaemonControl> {
  let mod: typeof import('../ipvs-netlink/index.js');
  try {
    mod = await import('../ipvs-netlink/index.js');
  } catch (e) {
    throw new BackendUnavailableError(`the IPVS netlink client cannot be loaded: ${(e as Error).message}`);
  }
  const client = new mod.IpvsClient();
  try {
    await client.open();
  } catch (e) {
    if (!(e instanceof mod.IpvsError) || e.code !== 'ENOIPVS') throw e;
    await modprobeIpvs();
    await client.open();
  }
  return new NetlinkBackend(client);
}
