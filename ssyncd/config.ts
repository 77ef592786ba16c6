// ssyncd.cfg: the same `key value` syntax as surealived.cfg (common/main-config.ts), every key
// documented in ssyncd/README.md with its default. Unlike the original's atoi, a bad value is an
// error that names the file, the line and why. Pure: text in, config or errors out.

import { hostname } from 'node:os';
import { readKeyValueLines, LOG_LEVELS, type LogLevelName } from '../common/main-config.js';
import { canonicalAddr, farmNameProblem, nftRefProblem, NFT_FAMILIES, type NftFamily } from '../session-sync/model.js';
import type { NftRef } from '../session-sync/control/commands.js';
import { parsePort } from './options.js';

export const DEFAULT_CONFIG_PATH = '/etc/ssyncd/ssyncd.cfg';
export const DEFAULT_KEY_FILE = '/etc/ssyncd/ssyncd.key';
export const DEFAULT_SOCKET = '/run/ssyncd/ssyncd.sock';

export interface SsyncdConfig {
  readonly mode: 'master' | 'backup' | undefined;
  readonly nodeName: string;
  readonly port: number;
  readonly masterAddress: string | undefined;
  readonly bind: string | undefined;
  /** Explicitly configured key file; undefined: DEFAULT_KEY_FILE if it exists. */
  readonly keyFile: string | undefined;
  readonly controlSocket: string;
  /** undefined: the backup keeps its copy in memory only. */
  readonly journal: string | undefined;
  readonly pollIntervalMs: number;
  /** Percent of one core one source's polls may take; 0: no limit. */
  readonly pollCpuBudget: number;
  readonly heartbeatMs: number;
  readonly deadTimeMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly maxPending: number;
  readonly syncRecent: boolean;
  readonly syncNft: readonly NftRef[];
  readonly syncHttp: readonly string[];
  readonly poundSocketDir: string;
  readonly syncOverrides: boolean;
  readonly overridesApply: 'on-write' | 'continuous';
  /** Backup: merge xt_recent and nftables entries into the kernel as they arrive, or only at `write`. */
  readonly tablesApply: 'on-write' | 'continuous';
  readonly surealivedOverrideDump: string;
  readonly surealivedControl: { readonly host: string; readonly port: number };
  readonly recentProcDir: string;
  readonly nftToleranceMs: number;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  readonly tlsCa: string | undefined;
  readonly log: string | undefined;
  readonly logging: LogLevelName;
}

export const DEFAULTS: SsyncdConfig = {
  mode: undefined,
  nodeName: hostname(),
  port: 7777,
  masterAddress: undefined,
  bind: undefined,
  keyFile: undefined,
  controlSocket: DEFAULT_SOCKET,
  journal: '/var/lib/ssyncd/ssyncd.journal',
  pollIntervalMs: 1000,
  pollCpuBudget: 5,
  heartbeatMs: 1000,
  deadTimeMs: 4000,
  reconnectMinMs: 250,
  reconnectMaxMs: 3000,
  maxPending: 1_000_000,
  syncRecent: false,
  syncNft: [],
  syncHttp: [],
  poundSocketDir: '/tmp',
  syncOverrides: false,
  overridesApply: 'on-write',
  tablesApply: 'on-write',
  surealivedOverrideDump: '/var/lib/surealived/override.dump',
  surealivedControl: { host: '127.0.0.1', port: 1337 },
  recentProcDir: '/proc/net/xt_recent',
  nftToleranceMs: 20,
  tlsCert: undefined,
  tlsKey: undefined,
  tlsCa: undefined,
  log: undefined,
  logging: 'info',
};

export type ConfigResult = { readonly ok: true; readonly config: SsyncdConfig } | { readonly ok: false; readonly errors: readonly string[] };

/** `inet lb persist4, ip6 lb m6` (family may be left out: inet). */
export function parseNftList(text: string): { refs: NftRef[]; error?: string } {
  const refs: NftRef[] = [];
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const w = item.split(/\s+/);
    const [family, table, set] = w.length === 2 ? ['inet', w[0]!, w[1]!] : w.length === 3 ? [w[0]!, w[1]!, w[2]!] : [];
    if (!family) return { refs, error: `${JSON.stringify(item)} is not "[family] table set"` };
    const why = nftRefProblem({ family: family!, table: table!, set: set! });
    if (why) return { refs, error: `${JSON.stringify(item)}: ${why}` };
    refs.push({ kind: 'nft', family: family as NftFamily, table: table!, set: set! });
  }
  return { refs };
}

export function parseConfig(text: string, file: string): ConfigResult {
  const c: { -readonly [K in keyof SsyncdConfig]: SsyncdConfig[K] } = { ...DEFAULTS };
  const errors: string[] = [];
  let minSet = false;
  for (const kv of readKeyValueLines(text)) {
    const bad = (why: string): void => void errors.push(`${file}:${kv.line}: ${kv.key}: ${why}`);
    const int = (min: number, max: number): number | undefined => {
      if (!/^\d+$/.test(kv.value) || Number(kv.value) < min || Number(kv.value) > max) {
        bad(`${JSON.stringify(kv.value)} is not a whole number from ${min} to ${max}`);
        return undefined;
      }
      return Number(kv.value);
    };
    const bool = (): boolean | undefined => {
      if (/^(yes|true|on|1)$/i.test(kv.value)) return true;
      if (/^(no|false|off|0)$/i.test(kv.value)) return false;
      bad(`${JSON.stringify(kv.value)} is not yes or no`);
      return undefined;
    };
    const addr = (): string | undefined => {
      const ip = canonicalAddr(kv.value);
      if (!ip) bad(`${JSON.stringify(kv.value)} is not an IPv4 or IPv6 address`);
      return ip?.addr;
    };
    const path = (): string | undefined => (kv.value === 'none' ? undefined : kv.value);
    switch (kv.key) {
      case 'mode':
        if (kv.value === 'master' || kv.value === 'backup') c.mode = kv.value;
        else bad('is master or backup');
        break;
      case 'node_name':
        if (/^[\x21-\x7e]{1,64}$/.test(kv.value)) c.nodeName = kv.value;
        else bad('1-64 printable characters');
        break;
      case 'port': {
        const p = parsePort(kv.value);
        if (p === undefined) bad(`${JSON.stringify(kv.value)} is not a port 1-65535`);
        else c.port = p;
        break;
      }
      case 'master_address':
        // A name is allowed too: it is resolved at every connect (IPv4 or IPv6).
        if (/^[A-Za-z0-9.:_-]{1,253}$/.test(kv.value)) c.masterAddress = canonicalAddr(kv.value)?.addr ?? kv.value;
        else bad('is an address or a host name');
        break;
      case 'bind': {
        const a = addr();
        if (a) c.bind = a;
        break;
      }
      case 'key_file':
        c.keyFile = path();
        break;
      case 'control_socket':
        c.controlSocket = kv.value;
        break;
      case 'journal':
        c.journal = path();
        break;
      case 'poll_interval_ms': {
        const v = int(50, 60_000);
        if (v !== undefined) c.pollIntervalMs = v;
        break;
      }
      case 'poll_cpu_budget': {
        const v = int(0, 100);
        if (v !== undefined) c.pollCpuBudget = v;
        break;
      }
      case 'heartbeat_ms': {
        const v = int(50, 60_000);
        if (v !== undefined) c.heartbeatMs = v;
        break;
      }
      case 'dead_time_ms': {
        const v = int(200, 600_000);
        if (v !== undefined) c.deadTimeMs = v;
        break;
      }
      case 'reconnect_min_ms': {
        const v = int(10, 60_000);
        if (v !== undefined) c.reconnectMinMs = v;
        minSet = true;
        break;
      }
      case 'reconnect_max_ms': {
        const v = int(10, 600_000);
        if (v !== undefined) c.reconnectMaxMs = v;
        break;
      }
      case 'max_pending': {
        const v = int(1000, 100_000_000);
        if (v !== undefined) c.maxPending = v;
        break;
      }
      case 'sync_recent': {
        const v = bool();
        if (v !== undefined) c.syncRecent = v;
        break;
      }
      case 'sync_nft': {
        const r = parseNftList(kv.rest);
        if (r.error) bad(r.error);
        else c.syncNft = r.refs;
        break;
      }
      case 'sync_http': {
        const farms = kv.rest.split(',').map((f) => f.trim()).filter(Boolean);
        const badFarm = farms.map((f) => [f, farmNameProblem(f)] as const).find(([, why]) => why !== undefined);
        if (badFarm) bad(`${JSON.stringify(badFarm[0])}: ${badFarm[1]}`);
        else c.syncHttp = farms;
        break;
      }
      case 'pound_socket_dir':
        c.poundSocketDir = kv.value;
        break;
      case 'sync_overrides': {
        const v = bool();
        if (v !== undefined) c.syncOverrides = v;
        break;
      }
      case 'overrides_apply':
        if (kv.value === 'on-write' || kv.value === 'continuous') c.overridesApply = kv.value;
        else bad(`${JSON.stringify(kv.value)} is not on-write or continuous`);
        break;
      case 'tables_apply':
        if (kv.value === 'on-write' || kv.value === 'continuous') c.tablesApply = kv.value;
        else bad(`${JSON.stringify(kv.value)} is not on-write or continuous`);
        break;
      case 'surealived_override_dump':
        c.surealivedOverrideDump = kv.value;
        break;
      case 'surealived_control': {
        const m = /^\[?([0-9A-Fa-f.:]+?)\]?:(\d{1,5})$/.exec(kv.value);
        const ip = m ? canonicalAddr(m[1]!) : undefined;
        const port = m ? parsePort(m[2]!) : undefined;
        if (!ip || port === undefined) bad(`${JSON.stringify(kv.value)} is not <address>:<port> (IPv6 in brackets)`);
        else c.surealivedControl = { host: ip.addr, port };
        break;
      }
      case 'recent_proc_dir':
        c.recentProcDir = kv.value;
        break;
      case 'nft_tolerance_ms': {
        const v = int(0, 10_000);
        if (v !== undefined) c.nftToleranceMs = v;
        break;
      }
      case 'tls_cert':
        c.tlsCert = path();
        break;
      case 'tls_key':
        c.tlsKey = path();
        break;
      case 'tls_ca':
        c.tlsCa = path();
        break;
      case 'log':
        c.log = path();
        break;
      case 'logging':
        if ((LOG_LEVELS as readonly string[]).includes(kv.value)) c.logging = kv.value as LogLevelName;
        else bad(`is one of ${LOG_LEVELS.join(', ')}`);
        break;
      default:
        bad('unknown key');
    }
  }
  if (c.heartbeatMs >= c.deadTimeMs) errors.push(`${file}: heartbeat_ms (${c.heartbeatMs}) must be below dead_time_ms (${c.deadTimeMs})`);
  if (!minSet) c.reconnectMinMs = Math.min(c.reconnectMinMs, c.reconnectMaxMs);
  if (c.reconnectMinMs > c.reconnectMaxMs) errors.push(`${file}: reconnect_min_ms (${c.reconnectMinMs}) is over reconnect_max_ms (${c.reconnectMaxMs})`);
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) errors.push(`${file}: tls_cert and tls_key go together`);
  return errors.length ? { ok: false, errors } : { ok: true, config: c };
}

export { NFT_FAMILIES };
