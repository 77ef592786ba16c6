// Shared fixtures of the control socket tests: a small in-memory daemon behind the handler contract
// (what ssyncd's handler does, minus the kernel), a server on a socket in a fresh temp directory with
// its log lines kept, and a raw client for frames ssyncdctl would never send.

import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, RequestOptions } from '../../session-sync/control/commands.js';
import { tableLabel, type RecentEntry } from '../../session-sync/model.js';
import {
  clearRecentTableReply,
  clearReply,
  countHttpReply,
  countNftReply,
  countRecentReply,
  quitReply,
  showHttpReply,
  showModeReply,
  showNftReply,
  showRecentReply,
  startHttpReply,
  startNftReply,
  startRecentReply,
  statusReply,
  refusedReply,
  stopHttpReply,
  stopNftReply,
  stopRecentReply,
  switchReply,
  writeHttpReply,
  writeNftReply,
  writeRecentReply,
  writeRecentTableReply,
  type Reply,
} from '../../session-sync/control/replies.js';
import { ControlServer, type CommandHandler, type ControlServerOptions } from '../../session-sync/control/server.js';

export type LogLine = readonly ['info' | 'warn' | 'error', string];

/** A daemon's state as the handler sees it: modes, sources, one recent table. */
export class FakeDaemon {
  mode: 'master' | 'backup' = 'master';
  recentRunning = false;
  httpRunning = false;
  readonly farms = new Set<string>();
  readonly nftSets = new Set<string>();
  readonly recent = new Map<string, RecentEntry[]>([['t1', [{ kind: 'recent', addr: '10.0.0.5', family: 4, ttl: 64, hits: [1000, 2000] }]]]);
  /** Every call, in order, with its options. */
  readonly calls: { cmd: Command; opts: RequestOptions }[] = [];
  /** Set to make `write recent` fail. */
  writeFails = false;

  readonly handler: CommandHandler = async (cmd, opts) => {
    this.calls.push({ cmd, opts });
    return this.run(cmd, opts);
  };

  private run(cmd: Command, opts: RequestOptions): Reply {
    const tables = [...this.recent].map(([name, entries]) => ({ name, entries }));
    const toJiffies = (ms: number): number => 4294892296 + ms / 4;
    switch (cmd.cmd) {
      case 'start-recent': {
        const was = this.recentRunning;
        this.recentRunning = true;
        return startRecentReply(was ? 'already-running' : 'started');
      }
      case 'stop-recent': {
        const was = this.recentRunning;
        this.recentRunning = false;
        return stopRecentReply(was ? 'stopped' : 'not-running');
      }
      case 'start-http': {
        const listener = this.httpRunning ? 'running' : 'started';
        this.httpRunning = true;
        if (cmd.farm === 'nopound') return startHttpReply({ listener, farm: 'failed' });
        const farm = this.farms.has(cmd.farm) ? 'already-added' : 'added';
        this.farms.add(cmd.farm);
        return startHttpReply({ listener, farm });
      }
      case 'stop-http':
        if (!this.httpRunning) return stopHttpReply('not-running');
        return stopHttpReply(this.farms.delete(cmd.farm) ? 'removed' : 'unknown-farm');
      case 'show-http':
        return showHttpReply([...this.farms].map((name) => ({ name, listeners: [] })), opts.json);
      case 'count-http':
        return countHttpReply([...this.farms].map((name) => ({ name, listeners: [] })), opts.json);
      case 'clear-http':
      case 'clear-recent':
      case 'clear-nft':
        return clearReply();
      case 'write-http':
        return writeHttpReply(true);
      case 'show-recent':
        return showRecentReply(tables, toJiffies, opts.json);
      case 'count-recent':
        return countRecentReply(tables, opts.json);
      case 'clear-recent-table':
        return clearRecentTableReply(this.recent.has(cmd.table) ? 'cleared' : 'missing');
      case 'write-recent':
        return writeRecentReply(!this.writeFails);
      case 'write-recent-table':
        return writeRecentTableReply(this.recent.has(cmd.table) ? 'written' : 'missing');
      case 'switch-master':
        this.mode = 'master';
        return switchReply({ ok: true, mode: 'master', port: cmd.port });
      case 'switch-backup':
        this.mode = 'backup';
        return switchReply({ ok: true, mode: 'backup', address: cmd.address, port: cmd.port });
      case 'show-mode':
        return showModeReply(this.mode, opts.json);
      case 'quit':
        return quitReply();
      case 'start-nft': {
        const id = tableLabel(cmd.ref);
        if (cmd.ref.table === 'missing') return startNftReply(cmd.ref, { failed: 'no such table' });
        const had = this.nftSets.has(id);
        this.nftSets.add(id);
        return startNftReply(cmd.ref, had ? 'already-added' : 'added');
      }
      case 'stop-nft':
        return stopNftReply(this.nftSets.delete(tableLabel(cmd.ref)) ? 'removed' : 'unknown-set');
      case 'show-nft':
        return showNftReply([], 0, opts.json);
      case 'count-nft':
        return countNftReply([], opts.json);
      case 'write-nft':
        return writeNftReply({ ok: true });
      case 'start-overrides':
      case 'stop-overrides':
      case 'show-overrides':
      case 'write-overrides':
        return refusedReply('overrides are not part of this handler');
      case 'status':
        return statusReply(
          {
            mode: this.mode,
            pid: process.pid,
            startedAt: 0,
            endpoint: { address: '0.0.0.0', port: 7777 },
            sources: { recent: this.recentRunning, http: [...this.farms], nft: [] },
            store: { tables: this.recent.size, entries: 1 },
            queueDepth: 0,
            lastSnapshot: null,
            peers: [],
          },
          1000,
          opts.json,
        );
    }
  }
}

export interface Running {
  readonly server: ControlServer;
  readonly dir: string;
  readonly path: string;
  readonly logs: LogLine[];
  stop(): Promise<void>;
}

/** A temp directory for one test; removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ssyncd-ctl-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A ControlServer on `<tmp>/run/ssyncd.sock` (directory created by the server). */
export async function startServer(handler: CommandHandler, opts: Partial<ControlServerOptions> = {}): Promise<Running> {
  const t = tempDir();
  const path = opts.path ?? join(t.dir, 'run', 'ssyncd.sock');
  const logs: LogLine[] = [];
  const server = await ControlServer.listen({ ...opts, path, handler, log: (level, msg) => logs.push([level, msg]) });
  return {
    server,
    dir: t.dir,
    path,
    logs,
    stop: async () => {
      await server.close();
      t.remove();
    },
  };
}

/**
 * Connect, send `chunks` (each in its own write, `gapMs` apart), optionally half-close, and collect
 * the reply until the server closes. `closed` tells whether the server ended the connection.
 */
export function rawExchange(path: string, chunks: readonly Buffer[], opts: { gapMs?: number; halfClose?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    const sock = connect({ path });
    sock.on('error', reject);
    sock.on('data', (c: Buffer) => got.push(c));
    sock.on('close', () => resolve(Buffer.concat(got)));
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) return;
        sock.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.halfClose) sock.end();
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
