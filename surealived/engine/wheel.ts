// A timing wheel driven by one interval timer: probe starts and probe deadlines are bucketed by
// tick, so 10,000 probes a second cost no per-probe timers. Entries are cancelled lazily by their owner.

export interface WheelOptions {
  /** Tick length in ms (resolution of starts and deadlines). */
  readonly tickMs: number;
  /** Monotonic clock in ms. */
  readonly now: () => number;
}

export class Wheel<T> {
  private readonly buckets = new Map<number, T[]>();
  private lastTick: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: WheelOptions, private readonly fire: (item: T) => void) {
    this.lastTick = Math.floor(opts.now() / opts.tickMs);
  }

  /** The tick at which an item added for `at` (monotonic ms) fires. */
  tickOf(at: number): number {
    return Math.max(Math.ceil(at / this.opts.tickMs), this.lastTick + 1);
  }

  /** Run `item` at the first tick at or after `at` (monotonic ms). */
  add(at: number, item: T): void {
    this.addAtTick(this.tickOf(at), item);
  }

  /** Run `item` at the next advance(), not in the one running now. */
  defer(item: T): void {
    this.addAtTick(Math.max(this.lastTick, Math.floor(this.opts.now() / this.opts.tickMs)) + 1, item);
  }

  private addAtTick(tick: number, item: T): void {
    const b = this.buckets.get(tick);
    if (b) b.push(item);
    else this.buckets.set(tick, [item]);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.advance(), this.opts.tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get size(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.length;
    return n;
  }

  /** Fire every bucket up to now. */
  advance(): void {
    const current = Math.floor(this.opts.now() / this.opts.tickMs);
    for (let t = this.lastTick + 1; t <= current; t++) {
      this.lastTick = t;
      const b = this.buckets.get(t);
      if (!b) continue;
      this.buckets.delete(t);
      for (const item of b) this.fire(item);
    }
    this.lastTick = Math.max(this.lastTick, current);
  }
}
