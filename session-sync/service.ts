// Session sync as one service: the node's role (master or backup, switchable at run time), what the
// operator asked to replicate, the kernel writers, and the answer to every control command. ssyncd
// is a thin shell around it (options, control socket, signals); other programs can embed it.

import type { ConnectionOptions, TlsOptions } from 'node:tls';
import type { Logger } from '../common/log.js';
import { BackupNode } from './backup.js';
import type { Command, NftRef, RequestOptions } from './control/commands.js';
import * as R from './control/replies.js';
import type { LinkTimers } from './link/link.js';
import { MasterNode } from './master.js';
import { tableId, tableLabel, type Change, type Entry, type HttpSession, type NftEntry, type OperatorOverride, type RecentEntry, type TableRef } from './model.js';
import type { PeerQueueLimits } from './protocol/peer-queue.js';
import type { Source, SinkReport } from './source.js';
import type { Store } from './store.js';

/** xt_recent on this node: a source for the master, a writer for `write recent`, and the clock. */
export interface RecentBackend {
  /** A source over every table; throws when xt_recent is not available (the reason is replied). */
  source(): Source;
  write(name: string, entries: readonly RecentEntry[], now: number): Promise<SinkReport>;
  /** Whether the table exists in this node's kernel (an iptables rule references it). */
  exists(name: string): boolean;
  /** This node's jiffies at an epoch time (show recent prints jiffies, as the original). */
  jiffiesAt(epochMs: number): number;
}

/** nftables on this node: a source per set for the master, a writer for `write nft`. */
export interface NftBackend {
  /** Checks the set exists and has a supported type, then returns its source; throws with why. */
  source(ref: NftRef): Promise<Source>;
  write(ref: NftRef, entries: readonly NftEntry[], now: number): Promise<SinkReport>;
  close(): void;
}

/** Pound farms on this node: a source per farm for the master, SESS_WRITE for `write http`. */
export interface HttpBackend {
  /**
   * The source of one farm: connects to Pound's sync socket, takes its dump and follows its stream,
   * reconnecting by itself. Throws with why when the socket cannot be reached at all.
   */
  source(farm: string): Promise<Source>;
  /** Sends every session of the farm to the local Pound (SESS_WRITE); reports what did not go in. */
  write(farm: string, sessions: readonly HttpSession[], now: number): Promise<SinkReport>;
  close(): void;
}

/** surealived's operator overrides on this node: its override.dump followed, its control port driven. */
export interface OverridesBackend {
  /** Follows the local surealived's override.dump (master side). Throws with why when it cannot. */
  source(name: string): Source;
  /**
   * Makes the local surealived's overrides equal `overrides`: each one set with `rset`, and those it
   * has that the list lacks reset (rstate ONLINE, weight 100 %). A real it does not know is reported.
   */
  write(overrides: readonly OperatorOverride[], now: number): Promise<SinkReport>;
  /** Applies changes as they arrive (a warm standby). */
  apply(changes: readonly Change[]): Promise<SinkReport>;
}

/** The name of the overrides table: one surealived per director. */
export const OVERRIDES_TABLE = 'surealived';

export interface ServiceOptions {
  readonly node: string;
  readonly key?: Buffer | undefined;
  /** Master: where to listen (undefined: all addresses). Backup: local address to connect from. */
  readonly bind?: string | undefined;
  readonly tlsServer?: TlsOptions | undefined;
  readonly tlsClient?: ConnectionOptions | undefined;
  readonly pollIntervalMs: number;
  /** Share of one core one source's polls may take (0.05 = 5 %); 0: no limit. */
  readonly pollCpuBudget?: number;
  readonly timers?: LinkTimers;
  readonly limits?: PeerQueueLimits;
  readonly journalPath?: string | undefined;
  readonly reconnect?: { readonly minMs: number; readonly maxMs: number };
  readonly recent: RecentBackend;
  readonly nft: NftBackend;
  /** Absent: Pound session sync is not available on this node (the commands say so). */
  readonly http?: HttpBackend | undefined;
  /** Absent: no surealived to follow on this node (the commands say so). */
  readonly overrides?: OverridesBackend | undefined;
  /** Backup: apply overrides as they arrive instead of only on `write overrides`. */
  readonly overridesContinuous?: boolean;
  /**
   * Backup: merge replicated xt_recent and nftables entries into this node's kernel tables as they
   * arrive (a warm standby: a takeover finds them in place, no `write` racing the first packets).
   */
  readonly tablesContinuous?: boolean;
  readonly log: Logger;
  readonly now?: () => number;
  /** What to replicate from the start (config), as if `start` commands had been given. */
  readonly autoStart?: { readonly recent: boolean; readonly nft: readonly NftRef[]; readonly http?: readonly string[]; readonly overrides?: boolean };
}

export type Role =
  | { readonly mode: 'master'; readonly port: number }
  | { readonly mode: 'backup'; readonly host: string; readonly port: number };

export class SyncService {
  private master: MasterNode | undefined;
  private backup: BackupNode | undefined;
  private role: Role;
  /** What the operator asked to replicate; active on a master, remembered on a backup for a switch. */
  private wantRecent: boolean;
  private readonly wantNft = new Map<string, NftRef>();
  private readonly wantHttp = new Set<string>();
  private wantOverrides: boolean;
  private readonly startedAt: number;
  private readonly now: () => number;
  /** Called after `quit` has been answered. */
  onQuit: () => void = () => undefined;

  private constructor(
    role: Role,
    private readonly opts: ServiceOptions,
  ) {
    this.role = role;
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.wantRecent = opts.autoStart?.recent ?? false;
    for (const r of opts.autoStart?.nft ?? []) this.wantNft.set(tableId(r), r);
    for (const f of opts.autoStart?.http ?? []) this.wantHttp.add(f);
    this.wantOverrides = opts.autoStart?.overrides ?? false;
  }

  static async start(role: Role, opts: ServiceOptions): Promise<SyncService> {
    const s = new SyncService(role, opts);
    await s.enter(role);
    return s;
  }

  get mode(): 'master' | 'backup' {
    return this.role.mode;
  }

  /** The replicated copy this node holds (the master's sum of sources, or the backup's copy). */
  get store(): Store {
    return (this.master?.store ?? this.backup?.store)!;
  }

  get masterNode(): MasterNode | undefined {
    return this.master;
  }

  get backupNode(): BackupNode | undefined {
    return this.backup;
  }

  private async enter(role: Role): Promise<void> {
    const o = this.opts;
    if (role.mode === 'master') {
      this.master = await MasterNode.start({
        node: o.node,
        key: o.key,
        bind: o.bind,
        port: role.port,
        tls: o.tlsServer,
        pollIntervalMs: o.pollIntervalMs,
        ...(o.pollCpuBudget !== undefined ? { pollCpuBudget: o.pollCpuBudget } : {}),
        ...(o.timers ? { timers: o.timers } : {}),
        ...(o.limits ? { limits: o.limits } : {}),
        log: o.log,
        now: this.now,
      });
      o.log.info(`master listening on ${this.master.listening}`);
      if (this.wantRecent) {
        const why = this.addRecentSource();
        if (why) o.log.error(`start recent: ${why}`);
      }
      for (const ref of this.wantNft.values()) {
        const why = await this.addNftSource(ref);
        if (why) o.log.error(`start nft ${tableLabel(ref)}: ${why}`);
      }
      for (const farm of this.wantHttp) {
        const why = await this.addHttpSource(farm);
        if (why) o.log.error(`start http ${farm}: ${why}`);
      }
      if (this.wantOverrides) {
        const why = this.addOverridesSource();
        if (why) o.log.error(`start overrides: ${why}`);
      }
    } else {
      this.backup = BackupNode.start({
        node: o.node,
        key: o.key,
        masterHost: role.host,
        masterPort: role.port,
        bind: o.bind,
        tls: o.tlsClient,
        ...(o.timers ? { timers: o.timers } : {}),
        journalPath: o.journalPath,
        onApplied: (changes) => this.applyAtOnce(changes),
        ...(o.reconnect ? { reconnectMinMs: o.reconnect.minMs, reconnectMaxMs: o.reconnect.maxMs } : {}),
        log: o.log,
        now: this.now,
      });
    }
    this.role = role;
  }

  private async leave(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.dirty.clear();
    await this.applyChain;
    const m = this.master;
    const b = this.backup;
    this.master = undefined;
    this.backup = undefined;
    await m?.close();
    await b?.close();
  }

  async close(): Promise<void> {
    await this.leave();
    this.opts.nft.close();
    this.opts.http?.close();
  }

  private addRecentSource(): string | undefined {
    if (!this.master || this.master.hasSource('recent')) return undefined;
    try {
      this.master.addSource(this.opts.recent.source());
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private async addHttpSource(farm: string): Promise<string | undefined> {
    if (!this.master || this.master.hasSource(`http/${farm}`)) return undefined;
    if (!this.opts.http) return 'Pound session sync is not available on this node';
    try {
      this.master.addSource(await this.opts.http.source(farm));
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private addOverridesSource(): string | undefined {
    if (!this.master || this.master.hasSource(`overrides/${OVERRIDES_TABLE}`)) return undefined;
    if (!this.opts.overrides) return 'no surealived is configured on this node';
    try {
      this.master.addSource(this.opts.overrides.source(OVERRIDES_TABLE));
      this.master.declareTable({ kind: 'overrides', name: OVERRIDES_TABLE });
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  /** A warm standby applies overrides as they arrive (continuous mode), in arrival order. */
  private applyChain: Promise<unknown> = Promise.resolve();
  private applyAtOnce(changes: readonly Change[]): void {
    if (this.opts.tablesContinuous) this.markDirty(changes);
    const o = this.opts;
    if (!o.overridesContinuous || !o.overrides || !this.wantOverrides) return;
    const mine = changes.filter((c) => c.table.kind === 'overrides');
    if (mine.length === 0) return;
    const backend = o.overrides;
    this.applyChain = this.applyChain.then(async () => {
      try {
        const r = await backend.apply(mine);
        for (const f of r.failed) o.log.error(`applying override ${f.what}: ${f.why}`);
      } catch (e) {
        o.log.error(`applying overrides: ${(e as Error).message}`);
      }
    });
  }

  /** Kernel tables (recent, nft) with upserts not yet merged into this node's kernel, by table id. */
  private readonly dirty = new Map<string, TableRef>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** The last failure per table, so a lasting one is logged once, not at every change. */
  private readonly writeFailures = new Map<string, string>();

  private markDirty(changes: readonly Change[]): void {
    for (const c of changes) {
      if (c.op !== 'upsert' || (c.table.kind !== 'recent' && c.table.kind !== 'nft')) continue;
      this.dirty.set(tableId(c.table), c.table);
    }
    // Changes arrive per frame: gather what lands within 50 ms into one write per table.
    if (this.dirty.size && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        this.applyChain = this.applyChain.then(() => this.flushDirty());
      }, 50);
    }
  }

  /** Merges the dirty tables' copies into the kernel (the same merge as `write recent` / `write nft`). */
  private async flushDirty(): Promise<void> {
    const b = this.backup;
    const tables = [...this.dirty.values()];
    this.dirty.clear();
    if (!b) return;
    const now = this.now();
    for (const t of tables) {
      const id = tableId(t);
      let why = '';
      try {
        const r =
          t.kind === 'recent'
            ? await this.opts.recent.write(t.name, b.store.entries(t) as RecentEntry[], now)
            : await this.opts.nft.write(t as NftRef, b.store.entries(t) as NftEntry[], now);
        why = r.failed.map((f) => `${f.what}: ${f.why}`).join('; ');
        if (r.written) this.opts.log.debug(`applied ${tableLabel(t)}: ${r.written} written, ${r.skipped} already there`);
      } catch (e) {
        why = (e as Error).message;
      }
      if (why && this.writeFailures.get(id) !== why) this.opts.log.error(`applying ${tableLabel(t)} to this node's kernel: ${why}`);
      if (why) this.writeFailures.set(id, why);
      else if (this.writeFailures.delete(id)) this.opts.log.info(`applying ${tableLabel(t)} to this node's kernel works again`);
    }
  }

  private async addNftSource(ref: NftRef): Promise<string | undefined> {
    if (!this.master || this.master.hasSource(tableId(ref))) return undefined;
    try {
      this.master.addSource(await this.opts.nft.source(ref));
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  /** Answers one control command. Never throws: failures become replies with status 1. */
  async handle(cmd: Command, ro: RequestOptions): Promise<R.Reply> {
    try {
      return await this.dispatch(cmd, ro);
    } catch (e) {
      this.opts.log.error(`command ${cmd.cmd}: ${(e as Error).stack ?? String(e)}`);
      return R.refusedReply(`error: ${(e as Error).message}`);
    }
  }

  private recentViews(): R.RecentTableView[] {
    return this.store.tables('recent').map((t) => ({
      name: (t as Extract<TableRef, { kind: 'recent' }>).name,
      entries: this.store.entries(t) as RecentEntry[],
    }));
  }

  private httpViews(): R.HttpFarmView[] {
    return this.store.tables('http').map((t) => {
      const byListener = new Map<number, Map<number, R.HttpSessionView[]>>();
      for (const e of this.store.entries(t) as HttpSession[]) {
        let services = byListener.get(e.listener);
        if (!services) byListener.set(e.listener, (services = new Map()));
        let list = services.get(e.service);
        if (!list) services.set(e.service, (list = []));
        list.push({ key: e.key, backend: e.backend, lastAccess: Math.floor(e.lastAccess / 1000), content: e.content });
      }
      return {
        name: (t as Extract<TableRef, { kind: 'http' }>).farm,
        listeners: [...byListener].map(([listener, services]) => ({ listener, services: [...services].map(([service, sessions]) => ({ service, sessions })) })),
      };
    });
  }

  private nftViews(): R.NftSetView[] {
    return this.store.tables('nft').map((t) => ({ ref: t as NftRef, entries: this.store.entries(t) as NftEntry[] }));
  }

  private async dispatch(cmd: Command, ro: RequestOptions): Promise<R.Reply> {
    const json = ro.json;
    const now = this.now();
    switch (cmd.cmd) {
      case 'start-recent': {
        if (this.wantRecent && (!this.master || this.master.hasSource('recent'))) return R.startRecentReply('already-running');
        this.wantRecent = true;
        const why = this.addRecentSource();
        if (why) {
          this.wantRecent = false;
          return R.refusedReply(`error starting recent sync service: ${why}`);
        }
        return R.startRecentReply('started');
      }
      case 'stop-recent':
        if (!this.wantRecent) return R.stopRecentReply('not-running');
        this.wantRecent = false;
        this.master?.removeSource('recent');
        return R.stopRecentReply('stopped');
      case 'start-nft': {
        const id = tableId(cmd.ref);
        if (this.wantNft.has(id) && (!this.master || this.master.hasSource(id))) return R.startNftReply(cmd.ref, 'already-added');
        const why = await this.addNftSource(cmd.ref);
        if (why) return R.startNftReply(cmd.ref, { failed: why });
        this.wantNft.set(id, cmd.ref);
        return R.startNftReply(cmd.ref, 'added');
      }
      case 'stop-nft': {
        const id = tableId(cmd.ref);
        if (!this.wantNft.delete(id)) return R.stopNftReply('unknown-set');
        this.master?.removeSource(id);
        return R.stopNftReply('removed');
      }
      case 'show-recent':
        return R.showRecentReply(this.recentViews(), (ms) => this.opts.recent.jiffiesAt(ms), json);
      case 'count-recent':
        return R.countRecentReply(this.recentViews(), json);
      case 'show-nft':
        return R.showNftReply(this.nftViews(), now, json);
      case 'count-nft':
        return R.countNftReply(this.nftViews(), json);
      case 'clear-recent':
        this.clearCopy('recent');
        return R.clearReply();
      case 'clear-nft':
        this.clearCopy('nft');
        return R.clearReply();
      case 'clear-recent-table': {
        const ref: TableRef = { kind: 'recent', name: cmd.table };
        if (!this.store.has(ref)) return R.clearRecentTableReply('missing');
        this.clearCopy('recent', ref);
        return R.clearRecentTableReply('cleared');
      }
      case 'write-recent': {
        await this.applyChain; // never two merges of one table at once
        let ok = true;
        for (const t of this.store.tables('recent')) {
          const entries = this.store.entries(t) as RecentEntry[];
          if (entries.length === 0) continue;
          if (!(await this.writeRecentTable(t as Extract<TableRef, { kind: 'recent' }>, entries, now))) ok = false;
        }
        this.opts.log.info(ok ? 'recent data written correclty' : 'error writing recent data');
        return R.writeRecentReply(ok);
      }
      case 'write-recent-table': {
        await this.applyChain; // never two merges of one table at once
        const ref: TableRef = { kind: 'recent', name: cmd.table };
        if (!this.store.has(ref) || !this.opts.recent.exists(cmd.table)) return R.writeRecentTableReply('missing');
        const ok = await this.writeRecentTable(ref, this.store.entries(ref) as RecentEntry[], now);
        return R.writeRecentTableReply(ok ? 'written' : 'failed');
      }
      case 'write-nft': {
        await this.applyChain; // never two merges of one table at once
        const problems: string[] = [];
        for (const t of this.store.tables('nft')) {
          try {
            const r = await this.opts.nft.write(t as NftRef, this.store.entries(t) as NftEntry[], now);
            this.opts.log.info(`write nft ${tableLabel(t)}: ${r.written} written, ${r.skipped} already there`);
            for (const f of r.failed) problems.push(`${tableLabel(t)} ${f.what}: ${f.why}`);
          } catch (e) {
            problems.push(`${tableLabel(t)}: ${(e as Error).message}`);
          }
        }
        for (const p of problems) this.opts.log.error(`write nft: ${p}`);
        return R.writeNftReply(problems.length === 0 ? { ok: true } : { ok: false, why: problems.join('; ') });
      }
      case 'show-mode':
        return R.showModeReply(this.role.mode, json);
      case 'status':
        return R.statusReply(this.statusView(), now, json);
      case 'quit':
        setImmediate(() => this.onQuit());
        return R.quitReply();
      case 'switch-master':
        return this.switchTo({ mode: 'master', port: cmd.port });
      case 'switch-backup':
        return this.switchTo({ mode: 'backup', host: cmd.address, port: cmd.port });
      case 'start-http': {
        const listener = this.wantHttp.size === 0 ? 'started' : 'running';
        if (this.wantHttp.has(cmd.farm) && (!this.master || this.master.hasSource(`http/${cmd.farm}`))) return R.startHttpReply({ listener, farm: 'already-added' });
        if (!this.opts.http) return R.startHttpReply({ listener: 'failed' });
        const why = await this.addHttpSource(cmd.farm);
        if (why) {
          this.opts.log.error(`start http ${cmd.farm}: ${why}`);
          return R.startHttpReply({ listener, farm: 'failed' });
        }
        this.wantHttp.add(cmd.farm);
        return R.startHttpReply({ listener, farm: 'added' });
      }
      case 'stop-http':
        if (!this.wantHttp.has(cmd.farm)) return R.stopHttpReply(this.wantHttp.size === 0 ? 'not-running' : 'unknown-farm');
        this.wantHttp.delete(cmd.farm);
        this.master?.removeSource(`http/${cmd.farm}`);
        return R.stopHttpReply('removed');
      case 'show-http':
        return R.showHttpReply(this.httpViews(), json);
      case 'count-http':
        return R.countHttpReply(this.httpViews(), json);
      case 'clear-http':
        this.clearCopy('http');
        return R.clearReply();
      case 'write-http': {
        if (!this.opts.http) return R.writeHttpReply(false);
        let ok = true;
        for (const t of this.store.tables('http')) {
          const farm = (t as Extract<TableRef, { kind: 'http' }>).farm;
          try {
            const r = await this.opts.http.write(farm, this.store.entries(t) as HttpSession[], now);
            this.opts.log.info(`write http ${farm}: ${r.written} sessions written`);
            for (const f of r.failed) this.opts.log.error(`write http ${farm} ${f.what}: ${f.why}`);
            if (r.failed.length) ok = false;
          } catch (e) {
            ok = false;
            this.opts.log.error(`write http ${farm}: ${(e as Error).message}`);
          }
        }
        this.opts.log.info(ok ? 'http session data written correclty' : 'error writing http session data');
        return R.writeHttpReply(ok);
      }
      case 'start-overrides': {
        if (this.wantOverrides && (!this.master || this.master.hasSource(`overrides/${OVERRIDES_TABLE}`))) return R.overridesReply('already-running');
        if (!this.opts.overrides) return R.overridesReply({ failed: 'no surealived is configured on this node' });
        const why = this.addOverridesSource();
        if (why) return R.overridesReply({ failed: why });
        this.wantOverrides = true;
        return R.overridesReply('started');
      }
      case 'stop-overrides':
        if (!this.wantOverrides) return R.overridesReply('not-running');
        this.wantOverrides = false;
        this.master?.removeSource(`overrides/${OVERRIDES_TABLE}`);
        return R.overridesReply('stopped');
      case 'show-overrides':
        return R.showOverridesReply(this.store.tables('overrides').flatMap((t) => this.store.entries(t) as OperatorOverride[]), json);
      case 'write-overrides': {
        if (!this.opts.overrides) return R.writeOverridesReply({ ok: false, why: 'no surealived is configured on this node' });
        // Without a copy, "equal to the master" would reset every override here: refuse instead.
        if (!this.store.has({ kind: 'overrides', name: OVERRIDES_TABLE })) {
          return R.writeOverridesReply({ ok: false, why: "no copy of the master's overrides yet (is `start overrides` running on the master?)" });
        }
        const list = this.store.tables('overrides').flatMap((t) => this.store.entries(t) as OperatorOverride[]);
        const r = await this.opts.overrides.write(list, now);
        for (const f of r.failed) this.opts.log.error(`write overrides ${f.what}: ${f.why}`);
        return R.writeOverridesReply(r.failed.length === 0 ? { ok: true, written: r.written } : { ok: false, why: r.failed.map((f) => `${f.what}: ${f.why}`).join('; ') });
      }
    }
  }

  /**
   * Clears the replicated copy (never the kernel's tables: the original flushed the live tables here).
   * On a master the sources re-read everything at the next poll, so backups get a fresh copy.
   */
  private clearCopy(kind: TableRef['kind'], only?: TableRef): void {
    const pick = (t: TableRef): boolean => only === undefined || tableId(t) === tableId(only);
    if (this.master) {
      for (const id of this.master.sourceIds()) if (id === kind || id.startsWith(`${kind}/`)) this.master.resetSource(id, pick);
    } else this.store.clear(kind, pick);
  }

  private async writeRecentTable(t: Extract<TableRef, { kind: 'recent' }>, entries: RecentEntry[], now: number): Promise<boolean> {
    try {
      const r = await this.opts.recent.write(t.name, entries, now);
      this.opts.log.info(`Dumping data to /proc/net/xt_recent/${t.name}: ${r.written} written, ${r.skipped} already there`);
      for (const f of r.failed) this.opts.log.error(`write recent ${t.name} ${f.what}: ${f.why}`);
      return r.failed.length === 0;
    } catch (e) {
      this.opts.log.error(`write recent ${t.name}: ${(e as Error).message}`);
      return false;
    }
  }

  private async switchTo(role: Role): Promise<R.Reply> {
    const old = this.role;
    const same = old.mode === role.mode && old.port === role.port && (old.mode === 'master' || (role.mode === 'backup' && old.host === role.host));
    // Already there (a notify script repeating itself): keep the links and the copy as they are.
    if (same) return role.mode === 'master' ? R.switchReply({ ok: true, mode: 'master', port: role.port }) : R.switchReply({ ok: true, mode: 'backup', address: role.host, port: role.port });
    try {
      await this.leave();
      await this.enter(role);
    } catch (e) {
      const why = (e as Error).message;
      this.opts.log.error(`switch to ${role.mode}: ${why}; staying ${old.mode}`);
      try {
        await this.enter(old);
      } catch (e2) {
        this.opts.log.error(`cannot return to ${old.mode} either: ${(e2 as Error).message}`);
      }
      return R.switchReply({ ok: false, why });
    }
    this.opts.log.info(`switched to ${role.mode}`);
    return role.mode === 'master' ? R.switchReply({ ok: true, mode: 'master', port: role.port }) : R.switchReply({ ok: true, mode: 'backup', address: role.host, port: role.port });
  }

  statusView(): R.StatusView {
    const pid = process.pid;
    const sources = { recent: this.wantRecent, http: [...this.wantHttp], nft: [...this.wantNft.values()], overrides: this.wantOverrides };
    const store = { tables: this.store.tables().length, entries: this.store.size };
    if (this.master) {
      const st = this.master.status();
      const peers = st.peers.map<R.PeerStatusView>((p) => ({
        peer: p.node ? `${p.peer} (${p.node})` : p.peer,
        state: p.phase === 'live' ? 'connected' : p.phase === 'snapshot' ? 'syncing' : 'connecting',
        since: p.connectedAt,
        lagMs: p.phase === 'live' ? p.lagMs : null,
        queueDepth: p.queueDepth,
      }));
      const snaps = st.peers.filter((p) => p.lastSnapshotAt > 0).sort((a, b) => b.lastSnapshotAt - a.lastSnapshotAt);
      const last = snaps[0];
      const [address, port] = splitHostPort(st.listening);
      return {
        mode: 'master',
        pid,
        startedAt: this.startedAt,
        endpoint: { address, port },
        sources,
        store,
        queueDepth: st.peers.reduce((n, p) => n + p.queueDepth, 0),
        lastSnapshot: last ? { at: last.lastSnapshotAt, peer: last.peer, tables: store.tables, entries: store.entries } : null,
        peers,
      };
    }
    const st = this.backup!.status();
    const role = this.role as Extract<Role, { mode: 'backup' }>;
    return {
      mode: 'backup',
      pid,
      startedAt: this.startedAt,
      endpoint: { address: role.host, port: role.port },
      sources,
      store,
      queueDepth: 0,
      lastSnapshot: st.lastSnapshotAt > 0 ? { at: st.lastSnapshotAt, peer: st.master, tables: st.tables, entries: st.entries } : null,
      peers: [
        {
          peer: st.masterNode ? `${st.master} (${st.masterNode})` : st.master,
          state: st.phase === 'live' ? 'connected' : st.phase === 'snapshot' || st.phase === 'handshake' ? 'syncing' : 'down',
          since: Math.max(st.lastSnapshotAt, this.startedAt),
          lagMs: null,
          queueDepth: 0,
        },
      ],
    };
  }
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}

export type { Entry };
