// The thin edge over one NETLINK_NETFILTER socket (the `netlink` package's RawNetlinkSocket): dumps,
// single requests and datagrams of many messages (transactions, lookups), with sequence numbers
// matched to replies and kernel errors turned into NftError. One operation at a time per socket.
//
// Receive queue: the `netlink` 0.3.0 addon cannot survive a recvmsg ENOBUFS, so nothing here may
// let the kernel overflow SO_RCVBUF. A dump holds at most one 32 KiB part in the queue (the kernel
// fills the next part only as we read); for datagrams of many messages the caller checks its
// worst-case reply volume against `replyBudget` first.

import netlink from 'netlink';
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as abi from './abi.js';
import { forEachMessage, NlWriter, readErrno, stampSeqs, writeGetGen } from './codec.js';
import { errnoText, NftError } from './errors.js';

export interface NftSocketOptions {
  /** Limit per operation (default 30 s). */
  timeoutMs?: number;
  /** SO_SNDBUF and SO_RCVBUF asked for; the kernel caps them at twice net.core.wmem_max / rmem_max. Default 16 MiB. */
  bufferBytes?: number;
}

/**
 * Receives one reply message: `index` is the position of the request it answers in the datagram;
 * `filledAt` (performance.now() ms) is when the kernel produced it, as closely as we can tell.
 */
export type ReplySink = (index: number, type: number, flags: number, buf: Buffer, off: number, end: number, filledAt: number) => void;

/**
 * Fixed receive size: also tells the kernel (netlink's max_recvmsg_len) to fill dump parts of up
 * to 32 KiB, its maximum, instead of one page (fewer parts = fewer restarts of the set walk).
 */
const RECV_BYTES = 32768;
/** Kept free in the receive queue for replies nobody accounted for (a fence, a commit error). */
const RESERVE_BYTES = 64 * 1024;

interface Op {
  readonly kind: 'dump' | 'request' | 'exchange';
  readonly what: string;
  readonly first: number;
  readonly count: number;
  /** Sequence number of the trailing GETGEN whose ACK ends an exchange; -1 for none. */
  readonly fence: number;
  readonly sink: ReplySink | undefined;
  readonly errnos: Int32Array;
  /**
   * A reply could not be handled. The operation still runs to its end (NLMSG_DONE, the fence)
   * with further replies ignored, so that no dump is left running in the kernel (a new dump on
   * the socket would get EBUSY); then it fails with this error.
   */
  failed: NftError | null;
  finish(err: NftError | null): void;
}

type RawSocket = InstanceType<typeof netlink.RawNetlinkSocket>;

export class NftSocket {
  private readonly sock: RawSocket;
  private op: Op | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private seq = (Math.random() * 0x3fffffff) >>> 0;
  private closed = false;
  private readonly timeoutMs: number;
  /** When the kernel produced the datagram being handled (see onDatagram). */
  private filledAt = 0;
  /** SO_SNDBUF as granted: netlink refuses datagrams longer than this minus 32 bytes (EMSGSIZE). */
  readonly sendBuffer: number;
  /** SO_RCVBUF as granted. */
  readonly recvBuffer: number;

  constructor(opts: NftSocketOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    const bytes = opts.bufferBytes ?? 16 << 20;
    this.sock = new netlink.RawNetlinkSocket(abi.NETLINK_NETFILTER, {
      recvBufferSize: bytes,
      sendBufferSize: bytes,
      messagePeeking: false,
      msgBufferSize: RECV_BYTES,
    });
    this.sendBuffer = this.sock.getSendBufferSize();
    this.recvBuffer = this.sock.getRecvBufferSize();
    this.sock.on('message', (buf: Buffer, rinfo: { port: number }) => this.onDatagram(buf, rinfo.port));
    this.sock.on('truncatedMessage', (_buf: Buffer, rinfo: { truncated?: number }) =>
      this.fail(new NftError('transport', this.op?.what ?? 'nft socket', `reply of ${rinfo.truncated ?? '?'} bytes exceeds ${RECV_BYTES}`)),
    );
    this.sock.on('error', (err: Error & { errno?: number }) => {
      const errno = typeof err.errno === 'number' ? err.errno : constants.errno.EIO;
      this.fail(new NftError('transport', this.op?.what ?? 'nft socket', `socket error ${errnoText(errno)}: ${err.message}`, errno));
    });
    this.sock.unref();
  }

  /** Largest datagram the kernel accepts from this socket. */
  get maxDatagram(): number {
    return this.sendBuffer - 32;
  }

  /** Bytes of kernel replies (skb truesize) that may wait in the receive queue at once. */
  get replyBudget(): number {
    return Math.max(0, this.recvBuffer - RESERVE_BYTES);
  }

  /** Streams a dump: `sink` sees each part (index 0); resolves at NLMSG_DONE. */
  dump(what: string, req: NlWriter, sink: ReplySink): Promise<void> {
    return this.serial(what, () => this.start('dump', what, req, sink)).then(() => undefined);
  }

  /** One request that asked for an ACK: `sink` sees its reply messages; rejects on a kernel error. */
  request(what: string, req: NlWriter, sink?: ReplySink): Promise<void> {
    return this.serial(what, () => this.start('request', what, req, sink)).then(() => undefined);
  }

  /**
   * Sends every message of `req` in ONE datagram (a transaction must be one datagram: nfnetlink
   * aborts a batch whose END is not in the same skb), then a GETGEN fence in a second datagram. The
   * kernel handles datagrams in order, so the fence's ACK comes after every reply to `req`.
   * Resolves with one errno per message (0 = no error reported); `sink` sees other replies.
   */
  exchange(what: string, req: NlWriter, sink?: ReplySink): Promise<Int32Array> {
    if (req.view().length > this.maxDatagram) {
      return Promise.reject(
        new NftError('too-large', what, `${req.view().length}-byte datagram exceeds the socket's send limit of ${this.maxDatagram} bytes`),
      );
    }
    return this.serial(what, () => this.start('exchange', what, req, sink));
  }

  close(): void {
    if (this.closed) return;
    this.fail(new NftError('closed', this.op?.what ?? 'nft socket', 'socket closed'));
    this.closed = true;
    this.sock.close();
  }

  private serial(what: string, run: () => Promise<Int32Array>): Promise<Int32Array> {
    const go = (): Promise<Int32Array> => {
      if (this.closed) return Promise.reject(new NftError('closed', what, 'socket closed'));
      return run();
    };
    const result = this.chain.then(go, go);
    this.chain = result.catch(() => undefined);
    return result;
  }

  /** Sequence numbers for `n` messages (plus a fence): consecutive, never 0, not wrapping. */
  private takeSeqs(n: number): number {
    let first = (this.seq + 1) >>> 0;
    if (first === 0 || first + n > 0xffffffff) first = 1;
    this.seq = first + n;
    return first;
  }

  private start(kind: Op['kind'], what: string, req: NlWriter, sink: ReplySink | undefined): Promise<Int32Array> {
    const count = req.messageCount;
    const first = this.takeSeqs(count + 1);
    const fence = kind === 'exchange' ? (first + count) >>> 0 : -1;
    stampSeqs(req, first);
    return new Promise<Int32Array>((resolve, reject) => {
      const errnos = new Int32Array(count);
      const timer = setTimeout(() => {
        op.finish(new NftError('timeout', what, `no answer from the kernel within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      const op: Op = {
        kind,
        what,
        first,
        count,
        fence,
        sink,
        errnos,
        failed: null,
        finish: (err) => {
          if (this.op !== op) return;
          this.op = null;
          clearTimeout(timer);
          this.sock.unref();
          const e = err ?? op.failed;
          if (e) reject(e);
          else resolve(errnos);
        },
      };
      this.op = op;
      this.sock.ref();
      // Replies to a request, and the first part of a dump, are produced while the kernel handles our sendmsg.
      this.filledAt = performance.now();
      this.send(req.view(), op);
      if (fence >= 0) {
        const f = new NlWriter(32);
        writeGetGen(f);
        stampSeqs(f, fence);
        this.send(f.view(), op);
      }
    });
  }

  private send(data: Buffer, op: Op): void {
    this.sock.send(data, {}, (err?: Error & { errno?: number }) => {
      if (!err) return;
      const errno = err.errno ?? constants.errno.EIO;
      op.finish(new NftError('transport', op.what, `sendmsg failed: ${errnoText(errno)}`, errno));
    });
  }

  private fail(err: NftError): void {
    this.op?.finish(err);
  }

  private onDatagram(buf: Buffer, port: number): void {
    const op = this.op;
    if (port !== 0 || !op) return; // only the kernel talks to us; late replies of a finished op are dropped
    // The kernel fills dump part k + 1 inside the recvmsg that returned part k, which the addon does
    // just before handing us part k: the time now is when the next part was produced. Taking it
    // before parsing keeps our own processing delays out of the deadlines computed from it.
    const filledAt = this.filledAt;
    if (op.kind === 'dump') this.filledAt = performance.now();
    try {
      forEachMessage(buf, (type, flags, seq, off, end) => {
        if (this.op !== op) return;
        if (seq === op.fence) {
          if (type !== abi.NLMSG_ERROR) return; // the NEWGEN answer itself
          const errno = readErrno(buf, off, end);
          op.finish(errno ? new NftError('kernel', op.what, `fence request failed: ${errnoText(errno)}`, errno) : null);
          return;
        }
        const index = (seq - op.first) >>> 0;
        if (index >= op.count) return;
        if (type === abi.NLMSG_ERROR) {
          const errno = readErrno(buf, off, end);
          if (op.kind === 'exchange') {
            if (errno) op.errnos[index] = errno;
          } else if (errno) {
            op.finish(new NftError('kernel', op.what, errnoText(errno), errno));
          } else if (op.kind === 'request') {
            op.finish(null);
          }
        } else if (type === abi.NLMSG_DONE) {
          if (op.kind !== 'dump') return;
          const errno = readErrno(buf, off, end);
          op.finish(errno ? new NftError('kernel', op.what, errnoText(errno), errno) : null);
        } else if (type !== abi.NLMSG_NOOP && type !== abi.NLMSG_OVERRUN && !op.failed) {
          try {
            op.sink?.(index, type, flags, buf, off, end, filledAt);
          } catch (e) {
            op.failed = e instanceof NftError ? e : new NftError('transport', op.what, `unusable reply: ${(e as Error).message}`);
          }
        }
      });
    } catch (e) {
      op.finish(e instanceof NftError ? e : new NftError('transport', op.what, `unparsable reply: ${(e as Error).message}`));
    }
  }
}

/**
 * The socket of a poller or writer: the caller's, which it shares and closes itself, or one of its
 * own opened on first use (with `socketOptions`) and closed by close().
 */
export class SocketHolder {
  private sock: NftSocket | undefined;
  private readonly ownSocket: boolean;
  private readonly socketOptions: NftSocketOptions | undefined;

  constructor(opts: { socket?: NftSocket; socketOptions?: NftSocketOptions }) {
    this.sock = opts.socket;
    this.ownSocket = opts.socket === undefined;
    this.socketOptions = opts.socketOptions;
  }

  get(): NftSocket {
    this.sock ??= new NftSocket(this.socketOptions);
    return this.sock;
  }

  close(): void {
    if (this.ownSocket) this.sock?.close();
    this.sock = undefined;
  }
}
