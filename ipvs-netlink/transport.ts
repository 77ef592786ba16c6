// Generic-netlink transport over the `netlink` package's raw socket: sequence numbers, ACK/error
// matching per request, dumps, and pipelined batches (many messages per send, one ACK per batch).
import netlink from 'netlink';
import { constants } from 'node:os';
import * as abi from './abi.js';
import { AttrWriter, parseGenl, parseMessages, readErrno, readU16Host, stampMessages, type NetlinkMessage } from './wire.js';

/** A request failed in the kernel (errno > 0) or in the transport (see `transport`). */
export class NetlinkRequestError extends Error {
  override readonly name = 'NetlinkRequestError';
  constructor(
    readonly errno: number,
    /** Set when the failure is ours, not the kernel's answer. */
    readonly transport?: 'ENOBUFS' | 'ETIMEDOUT' | 'ECLOSED' | 'EPROTO',
    message?: string,
  ) {
    super(message ?? `netlink request failed: errno ${errno}`);
  }
}

export interface GenlRequest {
  cmd: number;
  /** Encoded attributes (see AttrWriter). */
  attrs: Buffer;
}

function encode(w: AttrWriter, family: number, flags: number, seq: number, version: number, req: GenlRequest): void {
  const m = w.beginMessage(family, flags, seq, req.cmd, version);
  w.raw(req.attrs);
  w.endMessage(m);
}

function one(family: number, flags: number, seq: number, version: number, req: GenlRequest): Buffer {
  const w = new AttrWriter(64 + req.attrs.length);
  encode(w, family, flags, seq, version, req);
  return w.take();
}

/**
 * A batch in flight: consecutive sequence numbers `first .. first + count - 1`, one record for all
 * (a record per message cost more than the encoding in bulk loads). Only errors and the last
 * message's ACK come back.
 */
interface Batch {
  readonly first: number;
  readonly count: number;
  readonly errnos: Int32Array;
  readonly done: (err: NetlinkRequestError | null) => void;
}

interface Pending {
  /** 'ack': doit with NLM_F_ACK; 'dump': ends with NLMSG_DONE. */
  kind: 'ack' | 'dump';
  replies: NetlinkMessage[];
  done: (err: NetlinkRequestError | null, replies: NetlinkMessage[]) => void;
}

/**
 * Receive-queue cost we reserve per request that may be answered (an error echoes the request):
 * a generous skb truesize (an error echoing a ~120-byte IPVS request is a 768-byte skb on 6.1). Overflowing SO_RCVBUF makes the kernel drop replies (ENOBUFS), and the
 * `netlink` 0.3.0 addon aborts the process on that recvmsg error, so we never let it happen.
 */
const REPLY_COST = 1536;
/** A dump holds at most one skb of up to 32 KiB in our queue at a time (the kernel waits for room). */
const DUMP_COST = 64 * 1024;

export interface TransportOptions {
  /** Per request / per batch limit (default 120 s: a FLUSH of a 100k-destination table is slow under emulation). */
  timeoutMs?: number;
  /** SO_RCVBUF asked for (the kernel caps it at net.core.rmem_max). */
  recvBufferBytes?: number;
}

export class GenlTransport {
  private readonly sock: InstanceType<typeof netlink.RawNetlinkSocket>;
  private readonly pending = new Map<number, Pending>();
  private readonly batches = new Set<Batch>();
  private seq = (Math.random() * 0x7fffffff) >>> 0;
  private dumpChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly timeoutMs: number;
  /**
   * Bytes of receive queue we may commit to replies still to come: three quarters of SO_RCVBUF (the
   * kernel drops only once the queue is over it), so that one datagram can carry ~200 ops with the
   * default rmem_max (every datagram costs an event-loop turn and an ACK).
   */
  readonly budget: number;
  private committed = 0;
  private readonly waiting: { cost: number; go: () => void }[] = [];

  constructor(opts: TransportOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.sock = new netlink.RawNetlinkSocket(abi.NETLINK_GENERIC, {
      recvBufferSize: opts.recvBufferBytes ?? 4 << 20,
      sendBufferSize: 1 << 20,
    });
    this.sock.on('message', (buf: Buffer, rinfo: { port: number }) => this.onDatagram(buf, rinfo.port));
    this.sock.on('error', (err: Error & { errno?: number; code?: string }) => {
      // ENOBUFS: our receive queue overflowed and the kernel dropped replies; nothing pending can be trusted.
      const errno = typeof err.errno === 'number' ? err.errno : constants.errno.EIO;
      const kind = errno === constants.errno.ENOBUFS ? 'ENOBUFS' : 'EPROTO';
      this.failAll(new NetlinkRequestError(errno, kind, `netlink socket error: ${err.message}`));
    });
    this.sock.unref();
    this.budget = Math.max(REPLY_COST * 16, Math.floor((this.sock.getRecvBufferSize() * 3) / 4));
  }

  /** Largest number of requests that may be waiting for replies at once. */
  get maxInFlight(): number {
    return Math.floor(this.budget / REPLY_COST);
  }

  /** Waits until `cost` bytes of receive queue can be promised to replies; FIFO so none starves. */
  private reserve(cost: number): Promise<void> {
    const c = Math.min(cost, this.budget);
    if (this.waiting.length === 0 && this.committed + c <= this.budget) {
      this.committed += c;
      return Promise.resolve();
    }
    return new Promise((go) => this.waiting.push({ cost: c, go }));
  }

  private release(cost: number): void {
    this.committed -= Math.min(cost, this.budget);
    while (this.waiting.length) {
      const w = this.waiting[0];
      if (!w || this.committed + w.cost > this.budget) break;
      this.waiting.shift();
      this.committed += w.cost;
      w.go();
    }
  }

  private async metered<T>(cost: number, f: () => Promise<T>): Promise<T> {
    await this.reserve(cost);
    try {
      return await f();
    } finally {
      this.release(cost);
    }
  }

  /** Resolves a generic-netlink family name to its id; ENOENT when the kernel has no such family. */
  async resolveFamily(name: string): Promise<number> {
    const replies = await this.request(abi.GENL_ID_CTRL, 1, {
      cmd: abi.CTRL_CMD_GETFAMILY,
      attrs: new AttrWriter().str(abi.CTRL_ATTR_FAMILY_NAME, name).take(),
    });
    for (const m of replies) {
      const id = parseGenl(m.payload).attrs.get(abi.CTRL_ATTR_FAMILY_ID);
      if (id) return readU16Host(id);
    }
    throw new NetlinkRequestError(constants.errno.EPROTO, 'EPROTO', `family ${name}: reply without an id`);
  }

  private nextSeq(): number {
    do this.seq = (this.seq + 1) >>> 0;
    while (this.seq === 0 || this.pending.has(this.seq) || this.batchOf(this.seq));
    return this.seq;
  }

  /** The first of `count` consecutive sequence numbers (never 0, never wrapping inside the run). */
  private nextSeqs(count: number): number {
    let first = (this.seq + 1) >>> 0;
    if (first === 0 || first + count - 1 > 0xffffffff) first = 1;
    this.seq = first + count - 1;
    return first;
  }

  private batchOf(seq: number): Batch | undefined {
    for (const b of this.batches) if (((seq - b.first) >>> 0) < b.count) return b;
    return undefined;
  }

  /** The socket keeps the process alive only while replies are awaited. */
  private holdChanged(): void {
    if (this.closed) return;
    if (this.pending.size + this.batches.size === 0) this.sock.unref();
    else this.sock.ref();
  }

  private track(seq: number, p: Pending): void {
    this.pending.set(seq, p);
    if (this.pending.size + this.batches.size === 1) this.holdChanged();
  }

  private untrack(seq: number): Pending | undefined {
    const p = this.pending.get(seq);
    if (p) {
      this.pending.delete(seq);
      if (this.pending.size + this.batches.size === 0) this.holdChanged();
    }
    return p;
  }

  private trackBatch(b: Batch): void {
    this.batches.add(b);
    if (this.pending.size + this.batches.size === 1) this.holdChanged();
  }

  private untrackBatch(b: Batch): void {
    if (this.batches.delete(b) && this.pending.size + this.batches.size === 0) this.holdChanged();
  }

  private onDatagram(buf: Buffer, port: number): void {
    if (port !== 0) return; // only the kernel speaks to us
    let msgs: NetlinkMessage[];
    try {
      msgs = parseMessages(buf);
    } catch (e) {
      this.failAll(new NetlinkRequestError(constants.errno.EPROTO, 'EPROTO', `unparsable netlink datagram: ${String(e)}`));
      return;
    }
    for (const m of msgs) {
      const p = this.pending.get(m.seq);
      if (!p) {
        if (m.type === abi.NLMSG_ERROR) this.onBatchReply(m);
        continue;
      }
      if (m.type === abi.NLMSG_ERROR) {
        this.untrack(m.seq);
        const errno = readErrno(m.payload);
        p.done(errno ? new NetlinkRequestError(errno) : null, p.replies);
      } else if (m.type === abi.NLMSG_DONE) {
        this.untrack(m.seq);
        const errno = m.payload.length >= 4 ? readErrno(m.payload) : 0;
        p.done(errno ? new NetlinkRequestError(errno) : null, p.replies);
      } else if (m.type !== abi.NLMSG_NOOP && m.type !== abi.NLMSG_OVERRUN) {
        p.replies.push(m);
      }
    }
  }

  /** An error (or the final ACK) for a member of a batch. */
  private onBatchReply(m: NetlinkMessage): void {
    const b = this.batchOf(m.seq);
    if (!b) return;
    const i = (m.seq - b.first) >>> 0;
    b.errnos[i] = readErrno(m.payload);
    if (i === b.count - 1) {
      // The last message asked for the ACK: everything before it is done, silently successful or not.
      this.untrackBatch(b);
      b.done(null);
    }
  }

  private failAll(err: NetlinkRequestError): void {
    for (const [seq, p] of [...this.pending]) {
      this.untrack(seq);
      p.done(err, p.replies);
    }
    for (const b of [...this.batches]) {
      this.untrackBatch(b);
      b.done(err);
    }
  }

  private send(data: Buffer, onError: (e: NetlinkRequestError) => void): void {
    if (this.closed) {
      onError(new NetlinkRequestError(constants.errno.EBADF, 'ECLOSED', 'netlink socket closed'));
      return;
    }
    this.sock.send(data, {}, (err?: Error & { errno?: number }) => {
      if (err) onError(new NetlinkRequestError(err.errno ?? constants.errno.EIO, undefined, `sendmsg: ${err.message}`));
    });
  }

  /** Runs `run` with a deadline; on timeout, `forget` drops the request (its late replies are ignored). */
  private withTimeout<T>(forget: () => void, run: (finish: (e: NetlinkRequestError | null, v?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        const err = new NetlinkRequestError(constants.errno.ETIMEDOUT, 'ETIMEDOUT', `no reply within ${this.timeoutMs} ms`);
        forget();
        finish(err);
      }, this.timeoutMs);
      timer.unref();
      const finish = (e: NetlinkRequestError | null, v?: T): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (e) reject(e);
        else resolve(v as T);
      };
      run(finish);
    });
  }

  /** A doit request with NLM_F_ACK: resolves with the reply messages (none for plain ACKs). */
  request(family: number, version: number, req: GenlRequest): Promise<NetlinkMessage[]> {
    return this.metered(REPLY_COST, () => this.requestNow(family, version, req));
  }

  private requestNow(family: number, version: number, req: GenlRequest): Promise<NetlinkMessage[]> {
    const seq = this.nextSeq();
    const data = one(family, abi.NLM_F_REQUEST | abi.NLM_F_ACK, seq, version, req);
    return this.withTimeout<NetlinkMessage[]>(() => this.untrack(seq), (finish) => {
      this.track(seq, { kind: 'ack', replies: [], done: (e, r) => finish(e, r) });
      this.send(data, (e) => {
        this.untrack(seq);
        finish(e);
      });
    });
  }

  /**
   * A dump (NLM_F_DUMP): resolves with every part. Dumps on one socket are serialised, since the
   * kernel refuses a second dump (EBUSY) while one is being read; doit requests may interleave.
   */
  dump(family: number, version: number, req: GenlRequest): Promise<NetlinkMessage[]> {
    const run = (): Promise<NetlinkMessage[]> => {
      const seq = this.nextSeq();
      const data = one(family, abi.NLM_F_REQUEST | abi.NLM_F_DUMP, seq, version, req);
      return this.withTimeout<NetlinkMessage[]>(() => this.untrack(seq), (finish) => {
        this.track(seq, { kind: 'dump', replies: [], done: (e, r) => finish(e, r) });
        this.send(data, (e) => {
          this.untrack(seq);
          finish(e);
        });
      });
    };
    const metered = (): Promise<NetlinkMessage[]> => this.metered(DUMP_COST, run);
    const result = this.dumpChain.then(metered, metered);
    this.dumpChain = result.catch(() => undefined);
    return result;
  }

  /**
   * Sends requests in one datagram; only the last asks for an ACK. The kernel handles them in order
   * and reports errors even without NLM_F_ACK, so the final ACK means "all before me are done".
   * Resolves with one errno per request (0 = success); rejects only on transport failure.
   */
  batch(family: number, version: number, reqs: GenlRequest[]): Promise<number[]> {
    if (reqs.length === 0) return Promise.resolve([]);
    let size = 0;
    for (const r of reqs) size += r.attrs.length + 20;
    const w = new AttrWriter(size);
    for (const r of reqs) encode(w, family, 0, 0, version, r);
    return this.batchFrames(w.buf.subarray(0, w.off), reqs.length).then((e) => Array.from(e));
  }

  /**
   * As batch(), for `count` whole messages already laid end to end in `frames` (AttrWriter
   * beginMessage/endMessage; flags and sequence numbers are set here). Resolves with one errno
   * per message. `frames` must not change until the promise settles.
   */
  batchFrames(frames: Buffer, count: number): Promise<Int32Array> {
    if (count === 0) return Promise.resolve(new Int32Array(0));
    if (count > this.maxInFlight) {
      return Promise.reject(new RangeError(`batch of ${count} exceeds the ${this.maxInFlight} replies the receive queue can hold`));
    }
    return this.metered(REPLY_COST * count, () => this.batchNow(frames, count));
  }

  private batchNow(frames: Buffer, count: number): Promise<Int32Array> {
    const first = this.nextSeqs(count);
    stampMessages(frames, count, abi.NLM_F_REQUEST, abi.NLM_F_REQUEST | abi.NLM_F_ACK, first);
    const errnos = new Int32Array(count);
    let b: Batch | undefined;
    return this.withTimeout<Int32Array>(() => b && this.untrackBatch(b), (finish) => {
      b = {
        first,
        count,
        errnos,
        done: (e) => {
          if (e) finish(e);
          else finish(null, errnos);
        },
      };
      const tracked = b;
      this.trackBatch(tracked);
      this.send(frames, (e) => {
        this.untrackBatch(tracked);
        finish(e);
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.failAll(new NetlinkRequestError(constants.errno.EBADF, 'ECLOSED', 'netlink socket closed'));
    this.closed = true;
    this.sock.close();
  }
}
