// One request datagram and its answer over a connected UDP socket, the part the udp and dns testers
// share: the socket, the send, an ICMP port unreachable (ECONNREFUSED on the connected socket) and
// the director's own shortages, the deadline, and the single exit that closes the socket and reports.
// A tester extends it with what it sends and how it reads the answer.

import dgram from 'node:dgram';
import type { LocalErrno, ProbeContext, ProbeProblem, ProbeResult, ProbeTarget } from './contract.js';
import { describeError, earlyProblem } from './socket.js';
import { localErrno, localResult } from './local-error.js';

export abstract class DatagramProbe {
  protected readonly started = performance.now();
  /** Milliseconds from the start until the datagram was sent; undefined until then. */
  protected sentMs: number | undefined;
  private readonly socket: dgram.Socket;
  private settled = false;
  private readonly onAbort = (): void => {
    if (!this.settled) this.deadline();
  };

  /** `action` names what the probe does, for details: "cannot <action>: ...". */
  constructor(
    target: ProbeTarget,
    protected readonly ctx: ProbeContext,
    private readonly resolve: (r: ProbeResult) => void,
    private readonly action: string,
  ) {
    this.socket = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
    this.socket.on('error', (err: Error) => this.error(err));
    this.socket.on('message', (msg: Buffer) => {
      if (this.settled) return;
      this.ctx.comm?.('read', msg);
      this.reply(msg);
    });
    if (ctx.signal.aborted) queueMicrotask(this.onAbort);
    else ctx.signal.addEventListener('abort', this.onAbort, { once: true });
    try {
      this.socket.connect(target.port, target.addr, (err?: Error) => (err ? this.error(err) : this.send()));
    } catch (err) {
      // Unusable port or address: reported like any other failure, the socket closed.
      queueMicrotask(() => this.finish(false, `cannot ${this.action}: ${(err as Error).message}`));
    }
  }

  /** The datagram to send (built when the socket is connected). */
  protected abstract datagram(): Buffer;
  /** A datagram from the real (after debugcomm recorded it); the probe is not settled. */
  protected abstract reply(msg: Buffer): void;
  /** The deadline passed with the probe unsettled. */
  protected abstract deadline(): void;
  /** Extra fields of every verdict (byte counts). */
  protected extras(): Partial<ProbeResult> {
    return {};
  }
  /** Release what the subclass holds besides the socket (timers). */
  protected release(): void {}

  private send(): void {
    if (this.settled) return;
    const data = this.datagram();
    this.ctx.comm?.('write', data);
    try {
      this.socket.send(data, (err) => {
        if (err) this.error(err);
        else this.sentMs ??= performance.now() - this.started;
      });
    } catch (err) {
      this.error(err as Error);
    }
  }

  private error(err: Error): void {
    if (this.settled) return;
    const code = (err as NodeJS.ErrnoException).code;
    const local = localErrno(code, 'socket');
    if (local !== undefined) return this.finishLocal(local);
    // On a connected UDP socket an ICMP port unreachable comes back as ECONNREFUSED: the port is
    // closed, the datagram analogue of a refused connection. The datagram did go out (its send
    // callback may still be pending).
    if (code === 'ECONNREFUSED') this.sentMs ??= performance.now() - this.started;
    const detail = code === 'ECONNREFUSED' ? 'port unreachable (ICMP)' : describeError(err);
    this.finish(false, detail, earlyProblem(performance.now() - this.started));
  }

  /** The datagram could not be sent for a local reason (EMFILE, ENOBUFS): no verdict on the real. */
  private finishLocal(errno: LocalErrno): void {
    if (!this.settle()) return;
    this.resolve(localResult(errno, `cannot ${this.action}`));
  }

  protected finish(ok: boolean, detail: string, problem?: ProbeProblem): void {
    if (!this.settle()) return;
    const extras = this.extras();
    this.resolve(
      problem !== undefined
        ? { ok, detail, problem, ...extras }
        : this.sentMs !== undefined
          ? { ok, detail, connectMs: this.sentMs, ...extras }
          : { ok, detail, ...extras },
    );
  }

  /** The single exit: false if the probe had already ended. */
  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.release();
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    try {
      this.socket.close();
    } catch {
      // Already closed (close() twice throws).
    }
    return true;
  }
}

/**
 * Runs `create` (which constructs the probe) so that a socket that cannot even be created ends the
 * probe like any other failure: a local shortage (EMFILE ...) is no verdict on the real.
 */
export function startDatagramProbe(resolve: (r: ProbeResult) => void, action: string, create: () => void): void {
  try {
    create();
  } catch (err) {
    const local = localErrno((err as NodeJS.ErrnoException).code, 'socket');
    resolve(local !== undefined ? localResult(local, `cannot ${action}`) : { ok: false, detail: `cannot ${action}: ${(err as Error).message}` });
  }
}
