// The ipvs_sync_* keys of the main config: which kernel connection-sync daemons ipvssync keeps
// running, and with which settings. Pure; a bad value is an error naming the file, the line and why.

import { parseAddr } from './address.js';
import type { WantedSyncDaemon } from './types.js';

/** `ipvs_sync_daemon`: `none` leaves the kernel's daemons alone. */
export type SyncDaemonMode = 'none' | 'master' | 'backup' | 'both';

/** Everything of a wanted daemon but its state: master and backup share the settings. */
export type SyncDaemonSettings = Omit<WantedSyncDaemon, 'state'>;

export type SyncDaemonConfig =
  | { readonly mode: 'none' }
  | { readonly mode: Exclude<SyncDaemonMode, 'none'>; readonly settings: SyncDaemonSettings };

/** The kernel's own defaults (ip_vs_sync.c), used when a key is absent. */
export const SYNC_DAEMON_DEFAULTS = { syncId: 0, group: '224.0.0.81', port: 8848, ttl: 1 } as const;

export const NO_SYNC_DAEMONS: SyncDaemonConfig = { mode: 'none' };

export type SyncDaemonConfigResult =
  | { readonly ok: true; readonly config: SyncDaemonConfig }
  | { readonly ok: false; readonly errors: readonly string[] };

const MODES: readonly SyncDaemonMode[] = ['none', 'master', 'backup', 'both'];

/** As the kernel's dev_valid_name: 1..15 bytes, not `.` or `..`, no `/`, `:` or white space. */
function ifnameProblem(name: string): string | undefined {
  if (Buffer.byteLength(name) > 15) return 'is longer than 15 bytes (IFNAMSIZ)';
  if (name === '.' || name === '..' || /[/:\s]/.test(name)) return 'is not a valid interface name';
  return undefined;
}

/** True for 224.0.0.0/4 and ff00::/8, given a canonical address (its first group has 4 digits, ff..). */
function isMulticast(addr: string, family: 'inet' | 'inet6'): boolean {
  if (family === 'inet') return Number(addr.split('.')[0]) >> 4 === 14;
  return /^ff[0-9a-f]{2}:/.test(addr);
}

/**
 * Reads the ipvs_sync_* keys out of the main config's `raw` map (`lines`: where each key was read).
 * Every key is checked even when `ipvs_sync_daemon` is `none`, so a typo does not wait for the day it is switched on.
 */
export function parseSyncDaemonConfig(
  raw: ReadonlyMap<string, string>,
  lines: ReadonlyMap<string, number>,
  file: string,
): SyncDaemonConfigResult {
  const errors: string[] = [];
  const where = (key: string): string => {
    const line = lines.get(key);
    return line === undefined ? file : `${file}:${line}`;
  };
  const bad = (key: string, why: string): void => void errors.push(`${where(key)}: ${key}: ${why}`);
  const int = (key: string, min: number, max: number): number | undefined => {
    const v = raw.get(key);
    if (v === undefined) return undefined;
    if (!/^\d{1,6}$/.test(v) || Number(v) < min || Number(v) > max) {
      bad(key, `${JSON.stringify(v)} is not a whole number from ${min} to ${max}`);
      return undefined;
    }
    return Number(v);
  };

  const modeText = raw.get('ipvs_sync_daemon') ?? 'none';
  const mode = MODES.find((m) => m === modeText);
  if (!mode) bad('ipvs_sync_daemon', `${JSON.stringify(modeText)} is not none, master, backup or both`);

  const ifname = raw.get('ipvs_sync_interface');
  if (ifname !== undefined) {
    const why = ifnameProblem(ifname);
    if (why) bad('ipvs_sync_interface', `${JSON.stringify(ifname)} ${why}`);
  }
  const syncId = int('ipvs_sync_id', 0, 255);
  // The kernel clamps what it is given (see kernelMaxlen); anything a u16 holds is passed on.
  const maxlen = int('ipvs_sync_maxlen', 1, 65535);
  const port = int('ipvs_sync_port', 1, 65535);
  const ttl = int('ipvs_sync_ttl', 1, 255);
  let group: string | undefined;
  const groupText = raw.get('ipvs_sync_group');
  if (groupText !== undefined) {
    const a = parseAddr(groupText);
    if (!a.ok) bad('ipvs_sync_group', `${JSON.stringify(groupText)} is not an IPv4 or IPv6 address`);
    else if (!isMulticast(a.value.addr, a.value.family)) {
      bad('ipvs_sync_group', `${groupText} is not a multicast address (224.0.0.0/4 or ff00::/8)`);
    } else group = a.value.addr;
  }

  if (mode !== undefined && mode !== 'none' && ifname === undefined) {
    bad('ipvs_sync_daemon', `${mode} needs ipvs_sync_interface (the interface the sync messages use)`);
  }
  if (errors.length > 0 || mode === undefined) return { ok: false, errors };
  if (mode === 'none') return { ok: true, config: NO_SYNC_DAEMONS };
  return {
    ok: true,
    config: {
      mode,
      settings: {
        ifname: ifname!,
        syncId: syncId ?? SYNC_DAEMON_DEFAULTS.syncId,
        maxlen,
        group: group ?? SYNC_DAEMON_DEFAULTS.group,
        port: port ?? SYNC_DAEMON_DEFAULTS.port,
        ttl: ttl ?? SYNC_DAEMON_DEFAULTS.ttl,
      },
    },
  };
}
