// The sync-daemon planner: wanted daemons + the kernel's daemons -> start/stop ops. Pure.
// The kernel cannot change a running daemon's settings, so one that differs is stopped and started again.

import type { SyncDaemonConfig } from './sync-daemon-config.js';
import type { SyncDaemon, SyncDaemonOp, SyncDaemonState, WantedSyncDaemon } from './types.js';

const STATES: readonly SyncDaemonState[] = ['master', 'backup'];

/** The daemons `config` wants running, master first. */
export function wantedSyncDaemons(config: SyncDaemonConfig): WantedSyncDaemon[] {
  if (config.mode === 'none') return [];
  const states = config.mode === 'both' ? STATES : [config.mode];
  return states.map((state) => ({ state, ...config.settings }));
}

/**
 * The maxlen the kernel keeps for a requested one: start_sync_thread clamps it to
 * [1 (master) or 1024 (backup), 65535 - IP and UDP headers].
 */
export function kernelMaxlen(state: SyncDaemonState, group: string, maxlen: number): number {
  const headers = group.includes(':') ? 40 + 8 : 20 + 8;
  return Math.min(Math.max(maxlen, state === 'backup' ? 1024 : 1), 65535 - headers);
}

/** How `have` differs from `want` ("syncid 1 -> 2"); empty when it may keep running. */
export function syncDaemonDifferences(want: WantedSyncDaemon, have: SyncDaemon): string[] {
  const out: string[] = [];
  const cmp = (what: string, w: string | number, h: string | number): void => {
    if (w !== h) out.push(`${what} ${h} -> ${w}`);
  };
  cmp('mcast', want.ifname, have.ifname);
  cmp('syncid', want.syncId, have.syncId);
  // Without ipvs_sync_maxlen the kernel picks the size (from the MTU for a backup): any is fine.
  if (want.maxlen !== undefined) cmp('maxlen', kernelMaxlen(want.state, want.group, want.maxlen), have.maxlen);
  cmp('group', want.group, have.group);
  cmp('port', want.port, have.port);
  cmp('ttl', want.ttl, have.ttl);
  return out;
}

/**
 * Ops in application order, master then backup: start a wanted daemon that is missing; stop and
 * start again one whose settings differ; stop one of a state not wanted. `none` plans nothing.
 */
export function planSyncDaemons(config: SyncDaemonConfig, kernel: readonly SyncDaemon[]): SyncDaemonOp[] {
  if (config.mode === 'none') return [];
  const wanted = wantedSyncDaemons(config);
  const ops: SyncDaemonOp[] = [];
  for (const state of STATES) {
    const want = wanted.find((d) => d.state === state);
    const have = kernel.find((d) => d.state === state);
    if (!want) {
      if (have) ops.push({ kind: 'stop-daemon', daemon: have, why: `not wanted (ipvs_sync_daemon ${config.mode})` });
    } else if (!have) {
      ops.push({ kind: 'start-daemon', daemon: want, why: 'not running' });
    } else {
      const diff = syncDaemonDifferences(want, have);
      if (diff.length === 0) continue;
      const why = `settings differ: ${diff.join(', ')}`;
      ops.push({ kind: 'stop-daemon', daemon: have, why: `${why} (restarting it)` }, { kind: 'start-daemon', daemon: want, why });
    }
  }
  return ops;
}
