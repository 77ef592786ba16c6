// The mapping between kernel jiffies (xt_recent's stamps) and this node's epoch milliseconds, so that
// entries travel as ages and never as raw jiffies (spec 5.5, 11.1): the original copied raw jiffies and
// persistence expired at once, or lived too long, after a failover.
//
// Jiffies are tied to the monotonic clock through an anchor (one `jiffies: N` sample from
// /proc/timer_list and the monotonic time it was read at), and epoch ms are converted through the
// current wall-minus-monotonic offset, so a wall clock step moves every hit with it instead of ageing or
// rejuvenating them. HZ is a kernel build option: read CONFIG_HZ from /proc/config.gz when the kernel
// ships it, otherwise measure it from two samples and round to a value kernels are built with.
// The arithmetic is pure; KernelJiffiesClock is the thin edge that reads the kernel.

import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { gunzipSync } from 'node:zlib';

/** The two conversions a poller or a restorer needs. */
export interface JiffiesClock {
  /** Kernel ticks per second on this node. */
  readonly hz: number;
  /** The (fractional) jiffies value at the epoch ms time `epochMs`. */
  jiffiesAt(epochMs: number): number;
  /** The epoch ms time of the jiffies value `jiffies`. */
  epochAt(jiffies: number): number;
}

/** The clocks the mapping reads: monotonic ms (any origin) and epoch ms. Injected for tests. */
export interface TimeSource {
  monoNow(): number;
  epochNow(): number;
}

export const SYSTEM_TIME: TimeSource = { monoNow: () => performance.now(), epochNow: () => Date.now() };

/** One jiffies reading and the monotonic time it stands for. */
export interface JiffiesSample {
  readonly jiffies: number;
  readonly monoMs: number;
}

/** HZ values kernels are built with (CONFIG_HZ_100/250/300/1000). */
export const KNOWN_HZ = [100, 250, 300, 1000] as const;

export class JiffiesError extends Error {
  constructor(readonly where: string, readonly why: string) {
    super(`${where}: ${why}`);
    this.name = 'JiffiesError';
  }
}

/** The `jiffies: N` line of /proc/timer_list (printed once per CPU; all equal but for a tick). */
export function parseTimerListJiffies(text: string, where = '/proc/timer_list'): number {
  const m = /^jiffies: ([0-9]+)$/m.exec(text);
  if (!m) throw new JiffiesError(where, 'no "jiffies: N" line (reading it needs root)');
  const n = Number(m[1]);
  if (!Number.isSafeInteger(n)) throw new JiffiesError(where, `jiffies ${m[1]} is beyond 2^53`);
  return n;
}

/** CONFIG_HZ from a kernel config text, or undefined when the line is absent or not a positive number. */
export function parseConfigHz(text: string): number | undefined {
  const m = /^CONFIG_HZ=([0-9]+)$/m.exec(text);
  const n = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * The known HZ nearest to the rate measured between two samples; throws when the rate is more than
 * 8% away from every known value (250 and 300 are 18% apart; one tick of 40 is 2.5%).
 */
export function hzFromSamples(a: JiffiesSample, b: JiffiesSample): number {
  const dtMs = b.monoMs - a.monoMs;
  if (!(dtMs > 0)) throw new JiffiesError('hz', `samples are not in time order (${dtMs} ms apart)`);
  const raw = ((b.jiffies - a.jiffies) * 1000) / dtMs;
  let best: number = KNOWN_HZ[0];
  for (const hz of KNOWN_HZ) if (Math.abs(raw - hz) < Math.abs(raw - best)) best = hz;
  if (Math.abs(raw - best) > best * 0.08) {
    throw new JiffiesError('hz', `measured ${raw.toFixed(1)} ticks/s over ${dtMs.toFixed(0)} ms, not near ${KNOWN_HZ.join('/')}`);
  }
  return best;
}

/** jiffies at monotonic time `monoMs`, from an anchor. */
export function jiffiesAtMono(anchor: JiffiesSample, hz: number, monoMs: number): number {
  return anchor.jiffies + ((monoMs - anchor.monoMs) * hz) / 1000;
}

/** Monotonic time of `jiffies`, from an anchor. */
export function monoAtJiffies(anchor: JiffiesSample, hz: number, jiffies: number): number {
  return anchor.monoMs + ((jiffies - anchor.jiffies) * 1000) / hz;
}

/** A JiffiesClock over one anchor; pure given its TimeSource. */
export class AnchoredClock implements JiffiesClock {
  constructor(
    readonly hz: number,
    private anchorSample: JiffiesSample,
    private readonly time: TimeSource = SYSTEM_TIME,
  ) {
    if (!(hz > 0)) throw new JiffiesError('hz', `HZ must be positive, not ${hz}`);
  }

  get anchor(): JiffiesSample {
    return this.anchorSample;
  }

  /** Replaces the anchor; returns how far (ms) the old anchor's prediction was from the new sample. */
  reanchor(s: JiffiesSample): number {
    const predicted = jiffiesAtMono(this.anchorSample, this.hz, s.monoMs);
    this.anchorSample = s;
    return ((s.jiffies - predicted) * 1000) / this.hz;
  }

  jiffiesAt(epochMs: number): number {
    return jiffiesAtMono(this.anchorSample, this.hz, epochMs - this.wallOffset());
  }

  epochAt(jiffies: number): number {
    return monoAtJiffies(this.anchorSample, this.hz, jiffies) + this.wallOffset();
  }

  /** Epoch minus monotonic, taken now: follows wall clock steps. */
  private wallOffset(): number {
    return this.time.epochNow() - this.time.monoNow();
  }
}

/** Where the kernel clock is read from; every member injectable. */
export interface KernelClockOptions {
  /** Text of /proc/timer_list (default: read the file). */
  readonly timerList?: () => Promise<string>;
  /** Text of the kernel config, or undefined when not available (default: gunzip /proc/config.gz). */
  readonly kernelConfig?: () => Promise<string | undefined>;
  readonly time?: TimeSource;
  /** Gap between the two samples that measure HZ when the config does not say it (default 400 ms: 40 ticks at HZ 100). */
  readonly sampleGapMs?: number;
  /** Reads per sample; the quickest one is kept (default 3). */
  readonly readsPerSample?: number;
  /** Sleep, injectable for tests. */
  readonly sleep?: (ms: number) => Promise<void>;
}

async function readTimerList(): Promise<string> {
  try {
    return await readFile('/proc/timer_list', 'latin1');
  } catch (e) {
    throw new JiffiesError('/proc/timer_list', `cannot read the kernel's jiffies: ${(e as Error).message}`);
  }
}
async function readProcConfig(): Promise<string | undefined> {
  try {
    return gunzipSync(await readFile('/proc/config.gz')).toString('latin1');
  } catch {
    return undefined; // CONFIG_IKCONFIG_PROC not built: HZ gets measured instead
  }
}

/** The reading edge: samples /proc/timer_list, finds HZ, and re-anchors when asked. */
export class KernelJiffiesClock implements JiffiesClock {
  private constructor(
    private readonly inner: AnchoredClock,
    private readonly sample: () => Promise<JiffiesSample>,
    /** Where HZ came from, for the start-up log line. */
    readonly hzSource: 'config' | 'measured',
  ) {}

  static async start(opts: KernelClockOptions = {}): Promise<KernelJiffiesClock> {
    const time = opts.time ?? SYSTEM_TIME;
    const timerList = opts.timerList ?? readTimerList;
    const reads = Math.max(1, opts.readsPerSample ?? 3);
    const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    // The sample stands for the middle of its read; of a few reads the quickest is the least uncertain.
    const sample = async (): Promise<JiffiesSample> => {
      let best: { s: JiffiesSample; took: number } | undefined;
      for (let i = 0; i < reads; i++) {
        const t0 = time.monoNow();
        const j = parseTimerListJiffies(await timerList());
        const t1 = time.monoNow();
        if (!best || t1 - t0 < best.took) best = { s: { jiffies: j, monoMs: (t0 + t1) / 2 }, took: t1 - t0 };
      }
      return best!.s;
    };
    const configHz = parseConfigHz((await (opts.kernelConfig ?? readProcConfig)()) ?? '');
    const first = await sample();
    if (configHz !== undefined) return new KernelJiffiesClock(new AnchoredClock(configHz, first, time), sample, 'config');
    await sleep(opts.sampleGapMs ?? 400);
    const second = await sample();
    return new KernelJiffiesClock(new AnchoredClock(hzFromSamples(first, second), second, time), sample, 'measured');
  }

  get hz(): number {
    return this.inner.hz;
  }

  /** Takes a fresh sample as the anchor; returns the old anchor's error in ms (for a log line). */
  async reanchor(): Promise<number> {
    return this.inner.reanchor(await this.sample());
  }

  /**
   * Re-anchors every `intervalMs` until the returned stop is called. Jiffies follow the monotonic
   * clock, so this only bounds the error of one sample and of a suspend; errors go to `onError`.
   */
  reanchorEvery(intervalMs: number, onError: (e: unknown) => void, onDrift?: (ms: number) => void): () => void {
    const t = setInterval(() => {
      this.reanchor().then((d) => onDrift?.(d), onError);
    }, intervalMs);
    t.unref();
    return () => clearInterval(t);
  }

  jiffiesAt(epochMs: number): number {
    return this.inner.jiffiesAt(epochMs);
  }

  epochAt(jiffies: number): number {
    return this.inner.epochAt(jiffies);
  }
}
