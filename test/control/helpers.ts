// Shared fixtures of the control-port tests: a small service configuration as plain data, a ControlTarget
// over its runtime state that records commitRset calls, and a line-oriented TCP client.

import { connect, type Socket } from 'node:net';
import type { Forwarding, RealConfig, TesterConfig, VirtualConfig, VProto } from '../../surealived/config/model.js';
import { real, testerConfig } from '../state/fixtures.js';

export { real };
import { buildState, newTestCounters, type RealState, type TestCounters, type VirtualState } from '../../surealived/engine/state.js';
import type { ControlInfo, ControlTarget, RsetCommit } from '../../surealived/control/target.js';
import type { ProcessStats } from '../../surealived/control/replies.js';

const src = { file: 'test.xml', line: 1 };

export function virtual(
  name: string,
  proto: VProto,
  addr: string,
  port: number,
  opts: { fwmark?: number; rt?: Forwarding; sched?: string; reals?: RealConfig[]; tester?: Partial<TesterConfig> } = {},
): VirtualConfig {
  return {
    name,
    proto,
    addr,
    family: addr.includes(':') ? 6 : 4,
    port,
    fwmark: opts.fwmark ?? 0,
    sched: opts.sched ?? 'wlc',
    rt: opts.rt ?? 'dr',
    pers: 0,
    ops: false,
    tester: testerConfig({ retries2fail: 1, ...opts.tester }),
    reals: opts.reals ?? [],
    source: src,
  };
}

/** The configuration most tests talk about. */
export function sampleConfig(): VirtualConfig[] {
  return [
    virtual('web', 'tcp', '10.0.0.1', 80, {
      sched: 'wlc',
      rt: 'dr',
      reals: [real('web1', '10.0.1.1', 80, 20), real('web2', '10.0.1.2', 8080, 10)],
    }),
    virtual('dns', 'udp', '10.0.0.2', 53, { sched: 'rr', rt: 'masq', tester: { logmicro: true, statsSamples: 5 }, reals: [real('ns1', '10.0.2.1', 53, 5)] }),
    virtual('fw', 'fwmark', '0.0.0.0', 0, { fwmark: 7, sched: 'sh', rt: 'tun', reals: [real('fw1', '10.0.3.1', 0, 1)] }),
    virtual('v6', 'tcp', '2001:db8::10', 443, { reals: [real('six1', '2001:db8::1', 443, 3)] }),
    virtual('empty', 'tcp', '10.0.0.9', 81),
  ];
}

export class TestTarget implements ControlTarget {
  readonly virtuals: VirtualState[];
  readonly counters: TestCounters = newTestCounters();
  readonly commits: Array<{ real: RealState; commit: RsetCommit; rstate: string; override: string }> = [];
  infoValue: ControlInfo = { pid: 4242, watchdogPid: -1, offlineSize: 2, overrideSize: 1, gatherStats: true };
  failCommit: Error | null = null;

  constructor(config: VirtualConfig[] = sampleConfig()) {
    this.virtuals = buildState(config);
  }

  commitRset(r: RealState, commit: RsetCommit): void {
    if (this.failCommit) throw this.failCommit;
    // Snapshot what the real looked like at commit time: the diff must be written from that.
    this.commits.push({ real: r, commit, rstate: r.rstate, override: JSON.stringify(r.override) });
  }

  info(): ControlInfo {
    return this.infoValue;
  }

  real(vi: number, ri: number): RealState {
    return this.virtuals[vi]!.reals[ri]!;
  }
}

export const fixedProcessStats: ProcessStats = {
  userTimeUs: 1_234_567,
  systemTimeUs: 89,
  blockInOps: 1,
  blockOutOps: 2,
  messagesSent: 3,
  messagesRcvd: 4,
  signalsRcvd: 5,
  voluntaryCtx: 6,
  involuntaryCtx: 7,
  fdUsed: 12,
  vm: [
    { name: 'Peak', value: 123456, unit: 'kB' },
    { name: 'RSS', value: 42, unit: 'kB' },
  ],
};

export const END = '_SD_CMD_END_\n';

/** A control-port client that reads replies as the original's clients do: by lines and the end marker. */
export class Client {
  private buf = '';
  private off = 0;
  private waiters: Array<() => void> = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static open(port: number, host = '127.0.0.1'): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  static openPath(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect({ path }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Wait until `find(buf, from)` returns the end index of what we want (or -1), then take it.
   * Offset-based so that reading many small replies from a large buffer stays linear.
   */
  private async take(find: (b: string, from: number) => number, what: string, ms = 10_000, discard = false): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const end = find(this.buf, this.off);
      if (end >= 0) {
        const out = this.buf.slice(this.off, end);
        this.off = end;
        if (this.off > 1 << 20 || this.off === this.buf.length) {
          this.buf = this.buf.slice(this.off);
          this.off = 0;
        }
        return out;
      }
      if (discard) {
        // Nothing before the text is wanted: drop it now so the next search starts near the end.
        const keep = Math.max(this.off, this.buf.length - what.length);
        this.buf = this.buf.slice(keep);
        this.off = 0;
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; have ${JSON.stringify(this.pending().slice(0, 500))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}; have ${JSON.stringify(this.pending().slice(0, 500))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** One line, with its `\n` (an error reply). */
  line(): Promise<string> {
    return this.take((b, from) => {
      const i = b.indexOf('\n', from);
      return i < 0 ? -1 : i + 1;
    }, 'a line');
  }

  /** Everything up to and including the `_SD_CMD_END_` line (a successful reply). */
  untilEnd(): Promise<string> {
    return this.take((b, from) => {
      if (b.startsWith(END, from)) return from + END.length;
      const i = b.indexOf(`\n${END}`, from);
      return i < 0 ? -1 : i + 1 + END.length;
    }, 'the end marker');
  }

  /** Discard everything up to and including `text`. */
  skipPast(text: string, ms = 60_000): Promise<string> {
    return this.take((b, from) => {
      const i = b.indexOf(text, from);
      return i < 0 ? -1 : i + text.length;
    }, text, ms, true);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  async ask(line: string): Promise<string> {
    this.send(`${line}\n`);
    return this.untilEnd();
  }

  async askError(line: string): Promise<string> {
    this.send(`${line}\n`);
    return this.line();
  }

  /** Bytes received and not yet taken. */
  pending(): string {
    return this.buf.slice(this.off);
  }

  async waitClosed(ms = 5000): Promise<void> {
    await Promise.race([
      this.closedPromise,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error('connection not closed')), ms).unref()),
    ]);
  }

  close(): void {
    this.socket.destroy();
  }
}
