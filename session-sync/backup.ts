// The backup: connects to the master (reconnecting with backoff for ever), proves itself, takes the
// snapshot and the changes into its store, journals each before acknowledging it, and keeps the copy
// across its own restarts. It writes nothing to the kernel by itself: `write` commands do that.

import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { Logger } from '../common/log.js';
import { Journal } from './journal.js';
import { DEFAULT_TIMERS, Link, type LinkTimers } from './link/link.js';
import { BackupHandshake } from './protocol/handshake.js';
import { Replica } from './protocol/replica.js';
import { Store } from './store.js';
import type { Message } from './wire/messages.js';
import type { Change } from './model.js';

export interface BackupOptions {
  readonly node: string;
  readonly key?: Buffer | undefined;
  readonly masterHost: string;
  readonly masterPort: number;
  /** Local address to connect from (the -b option). */
  readonly bind?: string | undefined;
  readonly tls?: ConnectionOptions | undefined;
  readonly timers?: LinkTimers;
  /** Journal file; undefined keeps the copy in memory only. */
  readonly journalPath?: string | undefined;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly log: Logger;
  readonly now?: () => number;
  /**
   * Called after the copy changed: the changes of a CHANGES frame, the entries of a snapshot (as
   * upserts) and what its end swept. A warm standby applies them to its own services at once.
   */
  readonly onApplied?: (changes: readonly Change[]) => void;
}

export interface BackupStatus {
  readonly master: string;
  readonly connected: boolean;
  readonly phase: 'connecting' | 'handshake' | 'snapshot' | 'live';
  readonly masterNode: string;
  readonly tables: number;
  readonly entries: number;
  readonly snapshots: number;
  readonly lastSnapshotAt: number;
  readonly lastChangeAt: number;
  readonly changesApplied: number;
  readonly lastSeq: number;
  readonly journalBytes: number;
  readonly connects: number;
  readonly lastError: string;
}

export class BackupNode {
  readonly store = new Store();
  readonly now: () => number;
  private journal: Journal | undefined;
  private link: Link | undefined;
  private replica: Replica | undefined;
  private phase: BackupStatus['phase'] = 'connecting';
  private masterNode = '';
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly housekeeping: NodeJS.Timeout;
  private closed = false;
  private snapshots = 0;
  private lastSnapshotAt = 0;
  private lastChangeAt = 0;
  private changesApplied = 0;
  private connects = 0;
  private lastError = '';
  private failures = 0;

  private constructor(private readonly opts: BackupOptions) {
    this.now = opts.now ?? Date.now;
    this.retryMs = opts.reconnectMinMs ?? 250;
    this.housekeeping = setInterval(() => this.tidy(), 1000);
    this.housekeeping.unref();
  }

  /** Replays the journal (if any) and starts connecting. */
  static start(opts: BackupOptions): BackupNode {
    const b = new BackupNode(opts);
    if (opts.journalPath) {
      const r = Journal.open(opts.journalPath, b.store);
      b.journal = r.journal;
      opts.log.info(`journal ${opts.journalPath}: ${r.messages} records replayed, ${b.store.size} entries in ${b.store.tables().length} tables`);
      if (r.problem) opts.log.warn(`journal ${opts.journalPath}: ${r.problem}; the rest was cut off`);
    }
    b.connect();
    return b;
  }

  get masterAddress(): string {
    const h = this.opts.masterHost;
    return `${h.includes(':') ? `[${h}]` : h}:${this.opts.masterPort}`;
  }

  private connect(): void {
    if (this.closed) return;
    this.phase = 'connecting';
    const target = { host: this.opts.masterHost, port: this.opts.masterPort, ...(this.opts.bind ? { localAddress: this.opts.bind } : {}) };
    const socket: Socket = this.opts.tls ? tlsConnect({ ...this.opts.tls, ...target }) : connect(target);
    const onError = (e: Error): void => this.connectFailed(socket, e.message);
    socket.once('error', onError);
    socket.once(this.opts.tls ? 'secureConnect' : 'connect', () => {
      socket.off('error', onError);
      this.connected(socket);
    });
  }

  private connectFailed(socket: Socket, why: string): void {
    socket.destroy();
    this.lastError = why;
    this.failures += 1;
    // The first failure and then one in twenty: a master down for an hour must not flood the log.
    if (this.failures === 1 || this.failures % 20 === 0) {
      this.opts.log.error(`Error connecting to master node ${this.masterAddress} ${why} (attempt ${this.failures})`);
    }
    this.retry();
  }

  private retry(): void {
    if (this.closed) return;
    const jitter = 0.8 + Math.random() * 0.4;
    this.retryTimer = setTimeout(() => this.connect(), Math.round(this.retryMs * jitter));
    this.retryMs = Math.min(this.retryMs * 2, this.opts.reconnectMaxMs ?? 3000);
  }

  private connected(socket: Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.connects += 1;
    this.failures = 0;
    this.opts.log.info(`Connected to master node ${this.masterAddress}`);
    this.phase = 'handshake';
    const hs = new BackupHandshake(this.opts.key, this.opts.node, randomBytes(32));
    const replica = new Replica(this.store);
    const link: Link = new Link(
      socket,
      this.masterAddress,
      {
        onMessage: (m) => {
          if (this.phase === 'handshake') {
            const step = hs.receive(m);
            for (const s of step.send) link.send(s);
            if (step.fail) {
              this.lastError = step.fail;
              this.opts.log.error(`master ${this.masterAddress}: ${step.fail}`);
              link.close(step.fail);
            } else if (step.ready) {
              this.masterNode = step.ready.peerNode;
              if (step.ready.keys) link.keyWith(step.ready.keys);
              this.phase = 'snapshot';
            }
            return;
          }
          this.onReplicaMessage(link, replica, m);
        },
        onClose: (reason) => {
          if (this.link === link) {
            this.link = undefined;
            this.replica = undefined;
          }
          if (this.closed) return;
          this.lastError = reason;
          this.opts.log.warn(`Master node ${this.masterAddress} disconnected: ${reason}; reconnecting`);
          this.phase = 'connecting';
          this.retry();
        },
      },
      this.now,
      this.opts.timers ?? DEFAULT_TIMERS,
    );
    this.link = link;
    this.replica = replica;
    for (const s of hs.start().send) link.send(s);
  }

  private onReplicaMessage(link: Link, replica: Replica, m: Message): void {
    const now = this.now();
    const step = replica.receive(m, now);
    if (step.fail) {
      this.lastError = step.fail;
      this.opts.log.error(`master ${this.masterAddress}: ${step.fail}`);
      link.close(step.fail);
      return;
    }
    // On disk before it is acknowledged: an acknowledged change survives our crash.
    if (step.journal && this.journal) this.journal.append(m, now);
    if (this.opts.onApplied) {
      const applied: readonly Change[] =
        m.type === 'changes' ? m.changes : m.type === 'entries' ? m.entries.map((entry) => ({ op: 'upsert', table: m.table, entry })) : (step.swept ?? []);
      if (applied.length) {
        try {
          this.opts.onApplied(applied);
        } catch (e) {
          this.opts.log.error(`applying changes at once: ${(e as Error).message}`);
        }
      }
    }
    if (m.type === 'snapshot-end') {
      this.phase = 'live';
      this.snapshots += 1;
      this.lastSnapshotAt = now;
      this.retryMs = this.opts.reconnectMinMs ?? 250;
      this.opts.log.info(
        `snapshot from ${this.masterNode}: ${m.tables} tables, ${m.entries} entries` +
          (step.swept && step.swept.length ? `; ${step.swept.length} stale removed` : ''),
      );
    } else if (m.type === 'snapshot-begin') this.phase = 'snapshot';
    else if (m.type === 'changes') {
      this.lastChangeAt = now;
      this.changesApplied += m.changes.length;
    }
    if (step.ack !== undefined) link.send({ type: 'ack', seq: step.ack });
  }

  private tidy(): void {
    this.store.expire(this.now());
    if (!this.journal) return;
    try {
      if (this.phase === 'live' && this.journal.wantsCompaction()) this.journal.compact(this.store, this.now());
      this.journal.sync();
    } catch (e) {
      this.opts.log.error(`journal ${this.journal.path}: ${(e as Error).message}`);
    }
  }

  status(): BackupStatus {
    return {
      master: this.masterAddress,
      connected: this.link !== undefined && !this.link.isClosed,
      phase: this.phase,
      masterNode: this.masterNode,
      tables: this.store.tables().length,
      entries: this.store.size,
      snapshots: this.snapshots,
      lastSnapshotAt: this.lastSnapshotAt,
      lastChangeAt: this.lastChangeAt,
      changesApplied: this.changesApplied,
      lastSeq: this.replica?.seq ?? 0,
      journalBytes: this.journal?.bytes ?? 0,
      connects: this.connects,
      lastError: this.lastError,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    clearInterval(this.housekeeping);
    this.link?.close('backup shutting down');
    try {
      this.journal?.close();
    } catch (e) {
      this.opts.log.error(`journal: ${(e as Error).message}`);
    }
    this.journal = undefined;
  }
}
