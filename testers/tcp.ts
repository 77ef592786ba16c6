// The tcp tester [spec 6.2]: a real is up iff a TCP connection (and, with SSL="1", the TLS
// handshake) completes before the deadline. No data is sent; the connection is reset at once.
// Extension (HAProxy's tcp-check): send1/expect1 ... send8/expect8 run on that connection first.

import type { AttrValues, GenericSettings, ProbeContext, ProbeResult, ProbeTarget, Tester } from './contract.js';
import { compileTls, describeError, probeConnection, TLS_ATTRS, type ConnectionHooks, type ProbeConnection, type TlsParams } from './socket.js';
import { nativeCanReach, nativeProber, probeNative, startNative, type NativeJudge } from './native.js';
import { judge, parseSteps, STEP_ATTRS, waitingDetail, type Step } from './steps.js';

export interface TcpParams {
  readonly tls?: TlsParams;
  /** Plain tcp on the native prober. */
  readonly native?: NativeJudge;
  /** Send/expect steps, in order; absent for the plain connect check. */
  readonly steps?: readonly Step[];
}

const PLAIN: ConnectionHooks = {
  onConnected: (conn) => conn.finish(true, 'connected'),
  deadlineDetail: () => 'deadline',
};

const SECURE: ConnectionHooks = {
  onConnected: (conn) => conn.finish(true, 'connected, TLS handshake done'),
  deadlineDetail: () => 'deadline',
};

const NATIVE_CONNECT: NativeJudge = {
  compiled: null,
  verdict: () => ({ ok: true, detail: 'connected' }),
  deadlineDetail: () => 'deadline',
};

const EMPTY = Buffer.alloc(0);

/** One probe's run through the steps: sends are written, expectations judged as bytes arrive. */
class StepRun implements ConnectionHooks {
  private conn: ProbeConnection | undefined;
  private next = 0;
  private received: Buffer = EMPTY;
  private closed = false;
  /** A send that is the last step: the verdict waits until it is written. */
  private flushing = false;

  constructor(private readonly steps: readonly Step[]) {}

  onConnected(conn: ProbeConnection): void {
    this.conn = conn;
    conn.socket.on('data', (chunk: Buffer) => {
      this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
      this.advance();
    });
    conn.socket.on('end', () => {
      this.closed = true;
      this.advance();
    });
    this.advance();
  }

  private advance(): void {
    const conn = this.conn!;
    while (!conn.settled && !this.flushing) {
      const step = this.steps[this.next];
      if (step === undefined) return conn.finish(true, this.passed());
      if (step.kind === 'send') {
        // A new request: what came before it belongs to the previous exchange (as in HAProxy).
        this.received = EMPTY;
        this.next++;
        if (this.next < this.steps.length) conn.socket.write(step.data);
        else {
          this.flushing = true;
          // The write callback comes before the socket's 'error' event: a failed write is judged here.
          conn.socket.write(step.data, (err) => (err ? conn.socketError(err) : conn.finish(true, this.passed())));
        }
        continue;
      }
      const j = judge(step.match, this.received, this.closed);
      if (j.kind === 'wait') return;
      if (j.kind === 'fail') return conn.finish(false, `${where(step)}: ${j.why}`);
      this.received = this.received.subarray(j.end);
      this.next++;
    }
  }

  private passed(): string {
    const n = this.steps.length;
    return `${this.conn!.socket === this.conn!.raw ? 'connected' : 'connected, TLS handshake done'}, ${n} step${n === 1 ? '' : 's'} passed`;
  }

  /** The step being run: the expectation awaited, or the last send while it is written. */
  private current(): Step | undefined {
    return this.steps[this.flushing ? this.next - 1 : this.next];
  }

  deadlineDetail(conn: ProbeConnection): string {
    const step = this.current();
    if (step === undefined) return 'deadline';
    if (step.kind === 'send') return `${where(step)}: not written within ${conn.ctx.timeoutMs} ms`;
    return `${where(step)}: ${waitingDetail(step.match, this.received, conn.ctx.timeoutMs)}`;
  }

  errorDetail(err: Error): string {
    const step = this.current();
    return step === undefined ? describeError(err) : `${where(step)}: ${describeError(err)}`;
  }
}

function where(step: Step): string {
  return `step ${step.n} (${step.attr})`;
}

function hooks(params: TcpParams): ConnectionHooks {
  if (params.steps !== undefined) return new StepRun(params.steps);
  return params.tls === undefined ? PLAIN : SECURE;
}

export const tcpTester: Tester<TcpParams> = {
  name: 'tcp',
  attrs: [...TLS_ATTRS, ...STEP_ATTRS],

  compile(values: AttrValues, generic: GenericSettings): TcpParams {
    const steps = parseSteps(values);
    const tls = compileTls(values, generic);
    if (steps.length > 0) return tls !== undefined ? { tls, steps } : { steps };
    if (tls !== undefined) return { tls };
    return nativeProber() !== undefined ? { native: NATIVE_CONNECT } : {};
  },

  probe(target: ProbeTarget, params: TcpParams, ctx: ProbeContext): Promise<ProbeResult> {
    if (params.native !== undefined && nativeCanReach(target)) return probeNative(target, params.native, ctx);
    return probeConnection(target, params.tls, ctx, hooks(params));
  },

  start(target: ProbeTarget, params: TcpParams, ctx: ProbeContext, done: (r: ProbeResult) => void): void {
    if (params.native !== undefined && nativeCanReach(target)) return startNative(target, params.native, ctx, done);
    void probeConnection(target, params.tls, ctx, hooks(params)).then(done);
  },
};
