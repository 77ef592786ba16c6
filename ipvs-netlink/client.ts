// IpvsClient: the kernel's IPVS table through generic netlink, in IPVS nouns (like moby/ipvs's Handle).
// Single-op methods are safe to call concurrently; apply() pipelines many ops in order for bulk loads.
import { constants } from 'node:os';
import { Cmd, CmdAttr, IPVS_GENL_NAME, IPVS_GENL_VERSION } from './abi.js';
import {
  decodeDaemon,
  decodeDestination,
  decodeInfo,
  decodeService,
  decodeTimeouts,
  describeDaemon,
  describeService,
  encodeDaemon,
  encodeDaemonState,
  encodeOp,
  encodeServiceSelector,
  opSubject,
  writeOpMessage,
  type EncodedRequest,
} from './codec.js';
import { IpvsError, kernelError, type IpvsOpName } from './errors.js';
import { GenlTransport, NetlinkRequestError, type TransportOptions } from './transport.js';
import type {
  Destination,
  DestinationSelector,
  IpvsInfo,
  IpvsOp,
  Service,
  ServiceSelector,
  SyncDaemon,
  SyncDaemonState,
  Timeouts,
} from './types.js';
import { AttrWriter, WireError, parseGenl, type NetlinkMessage } from './wire.js';

const EMPTY = Buffer.alloc(0);
const noSubject = (): string => '';

export interface IpvsClientOptions extends TransportOptions {
  /** Generic-netlink family to resolve; default "IPVS". Tests name one no kernel has, to reach ENOIPVS on any host. */
  genlFamily?: string;
}

export interface ApplyOptions {
  /** Ops per datagram (one ACK each); default 256, at most the socket's `maxInFlight`. */
  batchSize?: number;
  /**
   * Datagrams in flight; default 4. Every op in flight may be answered with an error, so the
   * transport also keeps batchSize x in-flight datagrams within what the receive queue can hold.
   */
  window?: number;
}

export type ApplyResult = { op: IpvsOp; ok: true } | { op: IpvsOp; ok: false; error: IpvsError };

export class IpvsClient {
  private transport: GenlTransport | undefined;
  private family = 0;

  constructor(private readonly opts: IpvsClientOptions = {}) {}

  /** Opens a netlink socket and resolves the "IPVS" family; IpvsError ENOIPVS when the kernel has none. */
  async open(): Promise<this> {
    if (this.transport) return this;
    let t: GenlTransport;
    try {
      t = new GenlTransport(this.opts);
    } catch (e) {
      throw new IpvsError('EOTHER', 'open', `open: cannot create a generic netlink socket: ${String(e)}`);
    }
    try {
      this.family = await t.resolveFamily(this.opts.genlFamily ?? IPVS_GENL_NAME);
    } catch (e) {
      t.close();
      if (e instanceof NetlinkRequestError && e.errno === constants.errno.ENOENT) {
        throw new IpvsError(
          'ENOIPVS',
          'open',
          'open: the kernel has no IPVS generic-netlink family (ip_vs not built or not loaded: modprobe ip_vs)',
          e.errno,
        );
      }
      throw this.convert(e, 'open');
    }
    this.transport = t;
    return this;
  }

  close(): void {
    this.transport?.close();
    this.transport = undefined;
  }

  private get t(): GenlTransport {
    if (!this.transport) throw new IpvsError('ECLOSED', 'open', 'IpvsClient is not open (call open() first)');
    return this.transport;
  }

  private convert(e: unknown, op: IpvsOpName, subject?: string): IpvsError {
    if (e instanceof IpvsError) return e;
    if (e instanceof NetlinkRequestError) {
      if (e.transport) {
        const where = subject ? `${op} ${subject}` : op;
        return new IpvsError(e.transport, op, `${where}: ${e.message}`, e.errno);
      }
      return kernelError(op, e.errno, subject);
    }
    if (e instanceof WireError) return new IpvsError('EPROTO', op, `${op}: unexpected reply: ${e.message}`);
    return new IpvsError('EOTHER', op, `${op}: ${String(e)}`);
  }

  private async doit(op: IpvsOpName, req: EncodedRequest): Promise<NetlinkMessage[]> {
    try {
      return await this.t.request(this.family, IPVS_GENL_VERSION, req);
    } catch (e) {
      throw this.convert(e, op, req.subject());
    }
  }

  private async dumpAll(op: IpvsOpName, req: EncodedRequest): Promise<NetlinkMessage[]> {
    try {
      return await this.t.dump(this.family, IPVS_GENL_VERSION, req);
    } catch (e) {
      throw this.convert(e, op, req.subject());
    }
  }

  private async run(op: IpvsOp): Promise<void> {
    await this.doit(op.kind, encodeOp(op));
  }

  // ------------------------------------------------------------------------------------------------
  // Reads

  async getInfo(): Promise<IpvsInfo> {
    const replies = await this.doit('getInfo', { cmd: Cmd.GET_INFO, attrs: EMPTY, subject: noSubject });
    return this.decode('getInfo', () => decodeInfo(this.only(replies).attrs));
  }

  async getTimeouts(): Promise<Timeouts> {
    const replies = await this.doit('getTimeouts', { cmd: Cmd.GET_CONFIG, attrs: EMPTY, subject: noSubject });
    return this.decode('getTimeouts', () => decodeTimeouts(this.only(replies).attrs));
  }

  /** Every virtual service, with stats (one dump). */
  async listServices(): Promise<Service[]> {
    const replies = await this.dumpAll('listServices', { cmd: Cmd.GET_SERVICE, attrs: EMPTY, subject: noSubject });
    return this.decode('listServices', () => replies.map((m) => decodeService(this.nested(m, CmdAttr.SERVICE))));
  }

  /** One service; IpvsError ESRCH when absent. */
  async getService(sel: ServiceSelector): Promise<Service> {
    const req = { cmd: Cmd.GET_SERVICE, attrs: this.selector('getService', sel), subject: () => describeService(sel) };
    const replies = await this.doit('getService', req);
    return this.decode('getService', () => decodeService(this.nested(this.onlyMsg(replies), CmdAttr.SERVICE)));
  }

  /**
   * The destinations of one service (one dump). The kernel answers an empty dump for a missing
   * service, so an empty answer is checked with getService to report ESRCH instead.
   */
  async listDestinations(sel: ServiceSelector): Promise<Destination[]> {
    const subject = describeService(sel);
    const req = { cmd: Cmd.GET_DEST, attrs: this.selector('listDestinations', sel), subject: () => subject };
    const replies = await this.dumpAll('listDestinations', req);
    if (replies.length === 0) {
      try {
        await this.getService(sel);
      } catch (e) {
        if (e instanceof IpvsError && e.code === 'ESRCH') {
          throw new IpvsError('ESRCH', 'listDestinations', `listDestinations ${subject}: Service not defined`, e.errno);
        }
        throw e;
      }
    }
    return this.decode('listDestinations', () => replies.map((m) => decodeDestination(this.nested(m, CmdAttr.DEST), sel.family)));
  }

  // ------------------------------------------------------------------------------------------------
  // Changes (each one request with its own ACK; safe to have many in flight)

  addService(service: Service): Promise<void> {
    return this.run({ kind: 'addService', service });
  }
  updateService(service: Service): Promise<void> {
    return this.run({ kind: 'updateService', service });
  }
  deleteService(service: ServiceSelector): Promise<void> {
    return this.run({ kind: 'deleteService', service });
  }
  addDestination(service: ServiceSelector, destination: Destination): Promise<void> {
    return this.run({ kind: 'addDestination', service, destination });
  }
  updateDestination(service: ServiceSelector, destination: Destination): Promise<void> {
    return this.run({ kind: 'updateDestination', service, destination });
  }
  deleteDestination(service: ServiceSelector, destination: DestinationSelector): Promise<void> {
    return this.run({ kind: 'deleteDestination', service, destination });
  }
  /** Seconds; 0 or absent leaves a value unchanged. */
  setTimeouts(timeouts: Partial<Timeouts>): Promise<void> {
    return this.run({ kind: 'setTimeouts', timeouts });
  }
  /** Zeroes the counters of one service, or of all. */
  zero(service?: ServiceSelector): Promise<void> {
    return this.run(service ? { kind: 'zero', service } : { kind: 'zero' });
  }
  /** Removes every service (and so every destination). */
  flush(): Promise<void> {
    return this.run({ kind: 'flush' });
  }

  // ------------------------------------------------------------------------------------------------
  // Connection-sync daemons (kernel threads; they keep running after this socket closes)

  /** The running sync daemons, master first (one dump; every field set on kernels 4.3+). */
  async getDaemons(): Promise<SyncDaemon[]> {
    const replies = await this.dumpAll('getDaemons', { cmd: Cmd.GET_DAEMON, attrs: EMPTY, subject: noSubject });
    return this.decode('getDaemons', () => replies.map((m) => decodeDaemon(this.nested(m, CmdAttr.DAEMON))));
  }

  /**
   * Starts a sync daemon; absent settings take the kernel's defaults. EEXIST when one of that state
   * already runs (the kernel keeps its settings: stop it first), ENODEV for an unknown interface.
   */
  async startDaemon(daemon: SyncDaemon): Promise<void> {
    const subject = (): string => describeDaemon(daemon);
    let attrs: Buffer;
    try {
      attrs = encodeDaemon(daemon);
    } catch (e) {
      if (e instanceof WireError) throw new IpvsError('EINVAL', 'startDaemon', `startDaemon ${subject()}: ${e.message}`);
      throw e;
    }
    await this.doit('startDaemon', { cmd: Cmd.NEW_DAEMON, attrs, subject });
  }

  /** Stops the sync daemon of `state`; ESRCH when none runs. */
  async stopDaemon(state: SyncDaemonState): Promise<void> {
    let attrs: Buffer;
    try {
      attrs = encodeDaemonState(state);
    } catch (e) {
      if (e instanceof WireError) throw new IpvsError('EINVAL', 'stopDaemon', `stopDaemon: ${e.message}`);
      throw e;
    }
    await this.doit('stopDaemon', { cmd: Cmd.DEL_DAEMON, attrs, subject: () => `${state} sync daemon` });
  }

  /**
   * Applies ops in order, pipelined: `batchSize` ops per datagram, `window` datagrams in flight.
   * Never rejects for a kernel error: each op gets its own result (error matched by sequence number).
   * A failed op does not stop the later ones (the kernel goes on with the rest of the datagram).
   */
  async apply(ops: readonly IpvsOp[], opts: ApplyOptions = {}): Promise<ApplyResult[]> {
    const errors = await this.applyAll(ops, opts);
    return ops.map((op, i) => {
      const error = errors[i];
      return error ? { op, ok: false, error } : { op, ok: true };
    });
  }

  /** As apply(), answering only the errors (undefined where an op succeeded): no result object per op in bulk loads. */
  async applyAll(ops: readonly IpvsOp[], opts: ApplyOptions = {}): Promise<(IpvsError | undefined)[]> {
    const t = this.t;
    const batchSize = Math.min(t.maxInFlight, Math.max(1, opts.batchSize ?? 256));
    const window = Math.max(1, opts.window ?? 4);
    const results = new Array<IpvsError | undefined>(ops.length);
    // Every op is encoded, as a whole message, straight into one buffer; each datagram is a slice of it.
    const w = new AttrWriter(Math.max(512, ops.length * 128));
    const sent = new Int32Array(ops.length); // index in `ops` of each encoded message
    const ends = new Int32Array(ops.length); // where it ends in the buffer
    let n = 0;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      try {
        writeOpMessage(w, this.family, IPVS_GENL_VERSION, op);
        sent[n] = i;
        ends[n++] = w.off;
      } catch (e) {
        results[i] = this.convert(e, op.kind);
      }
    }
    const data = w.buf;
    const chunks = Math.ceil(n / batchSize);

    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < chunks) {
        const lo = next++ * batchSize;
        const hi = Math.min(n, lo + batchSize);
        const frames = data.subarray(lo === 0 ? 0 : ends[lo - 1], ends[hi - 1]);
        try {
          const errnos = await t.batchFrames(frames, hi - lo);
          for (let k = lo; k < hi; k++) {
            const errno = errnos[k - lo]!;
            if (errno) {
              const op = ops[sent[k]!]!;
              results[sent[k]!] = kernelError(op.kind, errno, opSubject(op));
            }
          }
        } catch (e) {
          for (let k = lo; k < hi; k++) {
            const op = ops[sent[k]!]!;
            results[sent[k]!] = this.convert(e, op.kind, opSubject(op));
          }
        }
      }
    };
    // Workers take chunks in order, and the kernel handles one socket's datagrams in send order,
    // so ops take effect in the order given.
    await Promise.all(Array.from({ length: Math.min(window, chunks) }, worker));
    return results;
  }

  // ------------------------------------------------------------------------------------------------

  private selector(op: IpvsOpName, sel: ServiceSelector): Buffer {
    try {
      return encodeServiceSelector(sel);
    } catch (e) {
      if (e instanceof WireError) throw new IpvsError('EINVAL', op, `${op}: ${e.message}`);
      throw e;
    }
  }

  private decode<T>(op: IpvsOpName, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw this.convert(e, op);
    }
  }

  private onlyMsg(replies: NetlinkMessage[]): NetlinkMessage {
    const m = replies[0];
    if (!m) throw new WireError('no reply message');
    return m;
  }

  private only(replies: NetlinkMessage[]): ReturnType<typeof parseGenl> {
    return parseGenl(this.onlyMsg(replies).payload);
  }

  private nested(m: NetlinkMessage, type: CmdAttr): Buffer {
    const b = parseGenl(m.payload).attrs.get(type);
    if (!b) throw new WireError(`reply without attribute ${type}`);
    return b;
  }
}
