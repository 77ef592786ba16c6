// The master: polls its sources at a fixed rate, keeps the sum of what they report in a store, and
// serves any number of backups: handshake, a full snapshot, then every change as it is seen, with
// acknowledgements, coalescing and a bounded queue per backup.

import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import type { Logger } from '../common/log.js';
import { DEFAULT_TIMERS, Link, type LinkTimers } from './link/link.js';
import { tableLabel, type Change, type TableRef } from './model.js';
import { MasterHandshake } from './protocol/handshake.js';
import { DEFAULT_LIMITS, PeerQueue, type PeerQueueLimits } from './protocol/peer-queue.js';
import type { Source } from './source.js';
import { Store } from './store.js';
import type { Message } from './wire/messages.js';

/** Entries per ENTRIES frame of a snapshot (~30-100 KB). */
const SNAPSHOT_CHUNK = 1000;

export interface MasterOptions {
  readonly node: string;
  readonly key?: Buffer | undefined;
  /** Address to listen on; undefined: every address (IPv6 and IPv4), as the original. */
  readonly bind?: string | undefined;
  readonly port: number;
  readonly tls?: TlsOptions | undefined;
  readonly pollIntervalMs: number;
  /** Share of one core a source's polls may take (0.05 = 5 %); 0 or absent: always poll at the interval. */
  readonly pollCpuBudget?: number;
  readonly timers?: LinkTimers;
  readonly limits?: PeerQueueLimits;
  readonly log: Logger;
  readonly now?: () => number;
}

export interface PeerStatus {
  readonly peer: string;
  readonly node: string;
  readonly phase: 'handshake' | 'snapshot' | 'live';
  readonly connectedAt: number;
  readonly lastSnapshotAt: number;
  readonly snapshots: number;
  readonly queueDepth: number;
  readonly unacked: number;
  readonly lagMs: number;
  readonly changesSent: number;
}

export interface MasterStatus {
  readonly listening: string;
  readonly sources: string[];
  readonly tables: number;
  readonly entries: number;
  readonly polls: number;
  readonly lastPollMs: number;
  readonly lastPollAt: number;
  readonly peers: PeerStatus[];
}

interface SourceState {
  readonly src: Source;
  /** When its next poll is due (epoch ms). */
  due: number;
  /** Its effective interval: the configured one, stretched by the CPU budget. */
  intervalMs: number;
  /** CPU (user + system, ms) its last poll cost, kernel work for it included. */
  costMs: number;
  lastError: string;
  errors: number;
}

class MasterPeer {
  phase: 'handshake' | 'snapshot' | 'live' = 'handshake';
  node = '';
  readonly queue: PeerQueue;
  readonly connectedAt: number;
  lastSnapshotAt = 0;
  snapshots = 0;
  private readonly hs: MasterHandshake;
  readonly link: Link;
  private drainWaiters: (() => void)[] = [];
  private resyncWanted = false;

  constructor(
    private readonly master: MasterNode,
    socket: Socket,
    peer: string,
    private readonly opts: MasterOptions,
  ) {
    this.connectedAt = master.now();
    this.queue = new PeerQueue(opts.limits ?? DEFAULT_LIMITS);
    this.hs = new MasterHandshake(opts.key, opts.node, randomBytes(32));
    this.link = new Link(
      socket,
      peer,
      {
        onMessage: (m) => this.onMessage(m),
        onClose: (reason) => this.master.peerGone(this, reason),
        onDrain: () => {
          const w = this.drainWaiters;
          this.drainWaiters = [];
          for (const f of w) f();
          this.pump();
        },
      },
      master.now,
      opts.timers ?? DEFAULT_TIMERS,
    );
  }

  private onMessage(m: Message): void {
    if (this.phase === 'handshake') {
      const step = this.hs.receive(m);
      for (const s of step.send) this.link.send(s);
      if (step.fail) {
        this.opts.log.warn(`backup ${this.link.peer}: ${step.fail}`);
        this.link.close(step.fail);
        return;
      }
      if (step.ready) {
        this.node = step.ready.peerNode;
        if (step.ready.keys) this.link.keyWith(step.ready.keys);
        this.opts.log.info(`Backup node connected: ${this.node} from ${this.link.peer}${step.ready.keys ? ' (authenticated)' : ''}`);
        void this.snapshot();
      }
      return;
    }
    if (m.type === 'ack') {
      if (!this.queue.ack(m.seq)) {
        this.link.close(`ack of frame ${m.seq} that was never sent`);
        return;
      }
      this.pump();
    } else if (m.type !== 'heartbeat') {
      this.link.close(`unexpected ${m.type} from a backup`);
    }
  }

  /** Streams the whole store, pausing while the socket is full; changes meanwhile wait in the queue. */
  async snapshot(): Promise<void> {
    this.phase = 'snapshot';
    this.queue.reset();
    const store = this.master.store;
    const generation = ++this.master.generations;
    this.link.send({ type: 'snapshot-begin', generation, seq: this.queue.lastSent });
    let tables = 0;
    let entries = 0;
    for (const table of store.tables()) {
      const all = store.entries(table);
      tables += 1;
      entries += all.length;
      for (let i = 0; i === 0 || i < all.length; i += SNAPSHOT_CHUNK) {
        if (this.link.isClosed) return;
        if (!this.link.send({ type: 'entries', table, entries: all.slice(i, i + SNAPSHOT_CHUNK) })) {
          await new Promise<void>((r) => this.drainWaiters.push(r));
        }
      }
    }
    if (this.link.isClosed) return;
    this.link.send({ type: 'snapshot-end', generation, tables, entries });
    this.phase = 'live';
    this.snapshots += 1;
    this.lastSnapshotAt = this.master.now();
    this.opts.log.info(`snapshot ${generation} sent to ${this.node}: ${tables} tables, ${entries} entries`);
    if (this.resyncWanted) {
      this.resyncWanted = false;
      void this.snapshot();
      return;
    }
    this.pump();
  }

  offer(changes: readonly Change[]): void {
    if (this.phase === 'handshake') return; // its snapshot will carry them
    if (!this.queue.offer(changes)) {
      this.opts.log.warn(`backup ${this.node}: more than ${this.queue.depth} changes pending, resynchronising with a snapshot`);
      if (this.phase === 'snapshot') this.resyncWanted = true;
      else void this.snapshot();
      return;
    }
    this.pump();
  }

  pump(): void {
    if (this.phase !== 'live') return;
    while (this.link.writable) {
      const batch = this.queue.take(this.master.now());
      if (!batch) return;
      this.link.send({ type: 'changes', seq: batch.seq, changes: batch.changes });
    }
  }

  status(now: number): PeerStatus {
    return {
      peer: this.link.peer,
      node: this.node,
      phase: this.phase,
      connectedAt: this.connectedAt,
      lastSnapshotAt: this.lastSnapshotAt,
      snapshots: this.snapshots,
      queueDepth: this.queue.depth,
      unacked: this.queue.unacked,
      lagMs: this.queue.lagMs(now),
      changesSent: this.queue.sentChanges,
    };
  }
}

export class MasterNode {
  readonly store = new Store();
  readonly now: () => number;
  generations = 0;
  private readonly sources = new Map<string, SourceState>();
  private readonly peers = new Set<MasterPeer>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  private polls = 0;
  private lastPollMs = 0;
  private lastPollAt = 0;
  private address = '';

  private constructor(
    private readonly server: Server,
    private readonly opts: MasterOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Listens and starts polling (sources are added later, by `start` commands). */
  static async start(opts: MasterOptions): Promise<MasterNode> {
    const onConn = (s: Socket): void => node.accept(s);
    const server = opts.tls ? createTlsServer(opts.tls, onConn) : createServer(onConn);
    const node: MasterNode = new MasterNode(server, opts);
    server.on('tlsClientError', (e: Error, s: Socket) => {
      opts.log.warn(`TLS handshake with ${s.remoteAddress ?? '?'} failed: ${e.message}`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (opts.bind !== undefined) server.listen({ host: opts.bind, port: opts.port, backlog: 64 }, done);
      else server.listen({ port: opts.port, backlog: 64 }, done); // '::' with IPv4 mapped, or 0.0.0.0
    });
    server.on('error', (e) => opts.log.error(`listening socket: ${e.message}`));
    const a = server.address();
    node.address = typeof a === 'object' && a ? `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}` : String(a);
    if (!opts.key) opts.log.warn('no key file: backups are not authenticated and the stream is not protected (as the original ssyncd); set key_file');
    node.schedule(0);
    return node;
  }

  get listening(): string {
    return this.address;
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  hasSource(id: string): boolean {
    return this.sources.has(id);
  }

  sourceIds(): string[] {
    return [...this.sources.keys()].sort();
  }

  /** Adds a source; its first poll (at once) reports its whole tables. */
  addSource(src: Source): boolean {
    if (this.sources.has(src.id)) return false;
    this.sources.set(src.id, { src, due: this.now(), intervalMs: this.opts.pollIntervalMs, costMs: 0, lastError: '', errors: 0 });
    this.schedule(0);
    return true;
  }

  /**
   * Declares a table a source fills, so that snapshots carry it even while it is empty (a backup can
   * then tell "the master has none" from "nothing received yet").
   */
  declareTable(ref: TableRef): void {
    this.store.touch(ref);
  }

  /** Stops a source and drops its tables here and on every backup. */
  removeSource(id: string): boolean {
    const st = this.sources.get(id);
    if (!st) return false;
    this.sources.delete(id);
    st.src.close?.();
    const drops = this.store.clear(undefined, (t) => st.src.owns(t));
    this.broadcast(drops);
    return true;
  }

  /**
   * Drops the copy of a source's tables (those `pick` selects) here and on the backups, and has the
   * source report everything again at its next poll: a resync from the kernel tables.
   */
  resetSource(id: string, pick: (t: TableRef) => boolean = () => true): void {
    const st = this.sources.get(id);
    if (!st) return;
    this.broadcast(this.store.clear(undefined, (t) => st.src.owns(t) && pick(t)));
    st.src.reset();
    st.due = this.now();
    this.schedule(0);
  }

  /** Each source's effective poll interval and the CPU its last poll cost. */
  sourceTimings(): { id: string; intervalMs: number; costMs: number }[] {
    return [...this.sources.values()].map((s) => ({ id: s.src.id, intervalMs: s.intervalMs, costMs: s.costMs }));
  }

  /** Polls every source once now and sends what changed (tests and benchmarks; the timer uses tick). */
  async pollOnce(): Promise<number> {
    let sent = 0;
    for (const st of [...this.sources.values()]) sent += await this.pollSource(st);
    return sent;
  }

  private async pollSource(st: SourceState): Promise<number> {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let changes: Change[];
    let sent = 0;
    // Parts of a big table reach the backups as they are read (a stopped source's parts are dropped).
    const early = (part: Change[]): void => {
      if (this.sources.get(st.src.id) !== st) return;
      const real = part.filter((c) => this.store.apply(c));
      this.broadcast(real);
      sent += real.length;
    };
    try {
      changes = await st.src.poll(this.now(), early);
      if (st.errors > 0) this.opts.log.info(`polling ${st.src.id} works again after ${st.errors} failed polls`);
      st.errors = 0;
      st.lastError = '';
    } catch (e) {
      const why = (e as Error).message;
      // A lasting failure is logged when it starts, when its reason changes, and every 60th time.
      if (why !== st.lastError || st.errors % 60 === 0) this.opts.log.error(`polling ${st.src.id}: ${why}`);
      st.lastError = why;
      st.errors += 1;
      return sent;
    } finally {
      const cpu = process.cpuUsage(cpu0);
      st.costMs = (cpu.user + cpu.system) / 1000;
      this.lastPollMs = performance.now() - t0;
      this.lastPollAt = this.now();
      this.polls += 1;
    }
    if (this.sources.get(st.src.id) !== st) return sent; // stopped while polling
    const real = changes.filter((c) => this.store.apply(c));
    if (real.length) this.broadcast(real);
    return sent + real.length;
  }

  /**
   * The interval a source's last poll cost allows: polls of one source may take at most
   * `pollCpuBudget` of one core, so a very large table is read less often instead of eating the
   * director's CPU (an nftables dump of 100,000 elements costs the kernel ~250 ms: it re-walks the set
   * for every 32 KiB part).
   */
  private intervalFor(st: SourceState): number {
    const budget = this.opts.pollCpuBudget ?? 0;
    const base = this.opts.pollIntervalMs;
    const want = budget > 0 ? Math.max(base, Math.ceil(st.costMs / budget)) : base;
    if (want > base && (want > st.intervalMs * 1.5 || want < st.intervalMs / 1.5)) {
      this.opts.log.info(`polling ${st.src.id} every ${want} ms: a poll costs ${st.costMs.toFixed(0)} ms of CPU (budget ${(budget * 100).toFixed(1)} % of a core)`);
    } else if (want === base && st.intervalMs > base) this.opts.log.info(`polling ${st.src.id} every ${base} ms again`);
    return want;
  }

  private broadcast(changes: readonly Change[]): void {
    if (changes.length === 0) return;
    for (const p of this.peers) p.offer(changes);
  }

  private schedule(delay: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      // Cheapest first: a recent table or a small set must not wait behind the dump of a huge set.
      for (const st of [...this.sources.values()].sort((a, b) => a.costMs - b.costMs)) {
        const started = this.now();
        if (st.due > started) continue;
        await this.pollSource(st);
        // Fixed rate: the next poll is one interval after this one started.
        st.intervalMs = this.intervalFor(st);
        st.due = started + st.intervalMs;
      }
    } finally {
      this.polling = false;
    }
    let next = Infinity;
    for (const st of this.sources.values()) next = Math.min(next, st.due);
    this.schedule(next === Infinity ? this.opts.pollIntervalMs : Math.max(0, next - this.now()));
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.peers.add(new MasterPeer(this, socket, peer, this.opts));
  }

  peerGone(p: MasterPeer, reason: string): void {
    if (!this.peers.delete(p)) return;
    this.opts.log.info(`Backup node disconnected: ${p.node || p.link.peer}: ${reason}`);
  }

  status(): MasterStatus {
    const now = this.now();
    return {
      listening: this.address,
      sources: this.sourceIds(),
      tables: this.store.tables().length,
      entries: this.store.size,
      polls: this.polls,
      lastPollMs: this.lastPollMs,
      lastPollAt: this.lastPollAt,
      peers: [...this.peers].map((p) => p.status(now)),
    };
  }

  tablesOf(kind: TableRef['kind']): TableRef[] {
    return this.store.tables(kind);
  }

  describe(t: TableRef): string {
    return tableLabel(t);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const p of this.peers) p.link.close('master shutting down');
    for (const s of this.sources.values()) s.src.close?.();
    this.sources.clear();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
