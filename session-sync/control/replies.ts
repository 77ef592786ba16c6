// Every text ssyncd sends back on its control socket, and the status that goes with it. The texts of
// v1.0.0 (spec 3.4) are reproduced byte for byte, typos and missing separators included, because
// integrations parse them; the texts of our new commands are ours. Pure: formatters take plain data
// (and a clock or jiffies conversion where a time is printed) and return strings.
//
// Status: 0 = done (also an idempotent no-op such as `start recent` when already running),
//         1 = refused or failed (also `stop` of something that is not running).

import type { NftData, NftEntry, OperatorOverride, RecentEntry } from '../model.js';
import type { NftRef } from './commands.js';
import type { ReplyStatus } from './frame.js';

export interface Reply {
  readonly text: string;
  readonly status: ReplyStatus;
}

/** The v1.0.0 texts, exactly (spec 3.4). */
export const TEXT = {
  recentAlreadyRunning: 'recent sync service is already running',
  stoppingRecent: 'stopping recent sync service\n',
  recentNotRunning: 'recent sync service not running\n',
  startingHttp: 'starting http sync service\n',
  errorStartingHttp: 'error starting http sync service',
  httpFarmAdded: 'http farm added',
  errorAddingHttpFarm: 'error adding http farm listener',
  httpFarmRemoved: 'http farm removed',
  httpNotRunning: 'http sync service not running\n',
  writingData: 'writing data',
  recentWritten: 'recent data written correclty',
  errorWritingRecent: 'error writing recent data',
  httpWritten: 'http session data written correclty',
  errorWritingHttp: 'error writing http session data',
  tableWritten: 'table written correclty',
  tableMissing: "table doesn't exist",
  errorWritingTable: 'error writing table',
  tableCleared: 'table cleared correclty',
  errorClearingTable: 'error clearing table',
  modeError: 'error',
  commandNotFound: 'Command no found\n',
  commandError: 'Command error',
} as const;

/** Texts of ours: the fixed v1.0.0 bugs and the new commands. */
export const NEW_TEXT = {
  /** v1.0.0 answered `http farm added` again (start http was not idempotent). */
  httpFarmAlreadyAdded: 'http farm already added',
  /** v1.0.0 answered `http farm removed` for any farm. */
  httpFarmNotFound: 'http farm not found',
  nftSetAdded: 'nft set added',
  nftSetAlreadyAdded: 'nft set already added',
  nftSetRemoved: 'nft set removed',
  nftSetNotFound: 'nft set not found',
  nftWritten: 'nft data written correctly',
  errorWritingNft: 'error writing nft data',
  tooManyConnections: 'Too many control connections',
  overridesStarted: 'overrides sync service started',
  overridesAlreadyRunning: 'overrides sync service is already running',
  overridesStopped: 'stopping overrides sync service',
  overridesNotRunning: 'overrides sync service not running',
  overridesWritten: 'overrides written correctly',
  errorWritingOverrides: 'error writing overrides',
} as const;

const done = (text: string): Reply => ({ text, status: 0 });
const failed = (text: string): Reply => ({ text, status: 1 });

// ---- one reply per command outcome ----

export function startRecentReply(o: 'started' | 'already-running'): Reply {
  return o === 'started' ? done('') : done(TEXT.recentAlreadyRunning);
}

export function stopRecentReply(o: 'stopped' | 'not-running'): Reply {
  return o === 'stopped' ? done(TEXT.stoppingRecent) : failed(TEXT.recentNotRunning);
}

/** `start http <farm>`: the listener part (started now or already running) then the farm part. */
export type StartHttpOutcome =
  | { readonly listener: 'started' | 'running'; readonly farm: 'added' | 'already-added' | 'failed' }
  | { readonly listener: 'failed' };

export function startHttpReply(o: StartHttpOutcome): Reply {
  if (o.listener === 'failed') return failed(TEXT.errorStartingHttp);
  const head = o.listener === 'started' ? TEXT.startingHttp : '';
  switch (o.farm) {
    case 'added':
      return done(head + TEXT.httpFarmAdded);
    case 'already-added':
      return done(head + NEW_TEXT.httpFarmAlreadyAdded);
    case 'failed':
      return failed(head + TEXT.errorAddingHttpFarm);
  }
}

export function stopHttpReply(o: 'removed' | 'unknown-farm' | 'not-running'): Reply {
  switch (o) {
    case 'removed':
      return done(TEXT.httpFarmRemoved);
    case 'unknown-farm':
      return failed(NEW_TEXT.httpFarmNotFound);
    case 'not-running':
      return failed(TEXT.httpNotRunning);
  }
}

/** `clear http`, `clear recent`, `clear nft`: silent, as in v1.0.0. */
export function clearReply(): Reply {
  return done('');
}

/** `write recent`: `writing data` is sent first, so the two texts always come concatenated. */
export function writeRecentReply(ok: boolean): Reply {
  return ok ? done(TEXT.writingData + TEXT.recentWritten) : failed(TEXT.writingData + TEXT.errorWritingRecent);
}

export function writeHttpReply(ok: boolean): Reply {
  return ok ? done(TEXT.httpWritten) : failed(TEXT.errorWritingHttp);
}

export function writeRecentTableReply(o: 'written' | 'missing' | 'failed'): Reply {
  return o === 'written' ? done(TEXT.tableWritten) : failed(o === 'missing' ? TEXT.tableMissing : TEXT.errorWritingTable);
}

export function clearRecentTableReply(o: 'cleared' | 'missing' | 'failed'): Reply {
  return o === 'cleared' ? done(TEXT.tableCleared) : failed(o === 'missing' ? TEXT.tableMissing : TEXT.errorClearingTable);
}

/** `show mode`: exactly `master` or `backup`, no newline (Zevenet compares it); `error` otherwise. */
export function showModeReply(mode: 'master' | 'backup' | undefined, json = false): Reply {
  if (json) return mode === undefined ? failed(JSON.stringify({ mode: null })) : done(JSON.stringify({ mode }));
  return mode === undefined ? failed(TEXT.modeError) : done(mode);
}

/** `quit`: no reply; the daemon exits after it is sent. */
export function quitReply(): Reply {
  return done('');
}

/** An id the daemon does not know (v1.0.0 answered the same to VOID and to its unused ids). */
export function unknownCommandReply(): Reply {
  return failed(TEXT.commandNotFound);
}

/** A frame that does not parse; the server sends it and closes (v1.0.0 left the client hanging). */
export function commandErrorReply(): Reply {
  return failed(TEXT.commandError);
}

/** A command the daemon will not run now (wrong mode, already busy, ...), with the reason. */
export function refusedReply(why: string): Reply {
  return failed(why);
}

/** Sent to a peer whose uid may not use the control socket, before closing. */
export function peerRefusedText(uid: number): string {
  return `Permission denied: uid ${uid} may not control ssyncd`;
}

export type SwitchOutcome =
  | { readonly ok: true; readonly mode: 'master'; readonly port: number }
  | { readonly ok: true; readonly mode: 'backup'; readonly address: string; readonly port: number }
  | { readonly ok: false; readonly why: string };

/** `switch master port <p>` / `switch backup address <a> port <p>` (v1.0.0 aborted instead). */
export function switchReply(o: SwitchOutcome): Reply {
  if (!o.ok) return failed(`error switching mode: ${o.why}`);
  return o.mode === 'master'
    ? done(`switched to master, listening on port ${o.port}`)
    : done(`switched to backup of ${formatHostPort(o.address, o.port)}`);
}

export function startNftReply(ref: NftRef, o: 'added' | 'already-added' | { readonly failed: string }): Reply {
  if (o === 'added') return done(NEW_TEXT.nftSetAdded);
  if (o === 'already-added') return done(NEW_TEXT.nftSetAlreadyAdded);
  return failed(`error adding nft set ${nftLabel(ref)}: ${o.failed}`);
}

export function stopNftReply(o: 'removed' | 'unknown-set'): Reply {
  return o === 'removed' ? done(NEW_TEXT.nftSetRemoved) : failed(NEW_TEXT.nftSetNotFound);
}

export function writeNftReply(o: { readonly ok: true } | { readonly ok: false; readonly why: string }): Reply {
  return o.ok ? done(NEW_TEXT.nftWritten) : failed(`${NEW_TEXT.errorWritingNft}: ${o.why}`);
}

export function overridesReply(o: 'started' | 'already-running' | 'stopped' | 'not-running' | { readonly failed: string }): Reply {
  switch (o) {
    case 'started':
      return done(NEW_TEXT.overridesStarted);
    case 'already-running':
      return done(NEW_TEXT.overridesAlreadyRunning);
    case 'stopped':
      return done(NEW_TEXT.overridesStopped);
    case 'not-running':
      return failed(NEW_TEXT.overridesNotRunning);
    default:
      return failed(`error starting overrides sync service: ${o.failed}`);
  }
}

export function writeOverridesReply(o: { readonly ok: true; readonly written: number } | { readonly ok: false; readonly why: string }): Reply {
  return o.ok ? done(NEW_TEXT.overridesWritten) : failed(`${NEW_TEXT.errorWritingOverrides}: ${o.why}`);
}

/**
 * `show overrides`: one line per override, exactly as surealived's override.dump writes it:
 * `VKEY - RKEY - weight=<W><%| >rstate=<RSTATE>`, sorted by VKEY then RKEY. JSON:
 * `{"overrides":[{"virtual","real","weight","percent","rstate"}]}`.
 */
export function showOverridesReply(list: readonly OperatorOverride[], json = false): Reply {
  const sorted = sortedBy(list, (o) => `${o.virtual} ${o.real}`);
  if (json) return done(JSON.stringify({ overrides: sorted.map((o) => ({ virtual: o.virtual, real: o.real, weight: o.weight, percent: o.percent, rstate: o.rstate })) }));
  return done(sorted.map((o) => `${o.virtual} - ${o.real} - weight=${o.weight >>> 0}${o.percent ? '%' : ' '} rstate=${o.rstate}\n`).join(''));
}

// ---- show / count: recent ----

export interface RecentTableView {
  readonly name: string;
  readonly entries: readonly RecentEntry[];
}

// Code-unit order: the same as v1.0.0's std::map<std::string> byte order for the ASCII that table
// names and addresses are made of.
const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const sortedBy = <T>(items: readonly T[], key: (t: T) => string): T[] => [...items].sort((a, b) => byText(key(a), key(b)));

/**
 * `show recent`: per table `# <table>\n`, per entry
 * ` src: <ip>ttl: <ttl> last seen: <max ts> old packets: <n> <ts1> <ts2> …\n` (no space before `ttl:`,
 * as v1.0.0). Tables and addresses in lexicographic order, stamps ascending, in this node's jiffies.
 */
export function formatShowRecent(tables: readonly RecentTableView[], toJiffies: (epochMs: number) => number): string {
  let out = '';
  for (const t of sortedBy(tables, (x) => x.name)) {
    out += `# ${t.name}\n`;
    for (const e of sortedBy(t.entries, (x) => x.addr)) {
      const stamps = jiffiesAscending(e.hits, toJiffies);
      const last = stamps.length > 0 ? stamps[stamps.length - 1]! : 0;
      out += ` src: ${e.addr}ttl: ${e.ttl} last seen: ${last} old packets: ${stamps.length}${stamps.map((s) => ` ${s}`).join('')}\n`;
    }
  }
  return out;
}

function jiffiesAscending(hits: readonly number[], toJiffies: (epochMs: number) => number): number[] {
  return hits.map((h) => Math.round(toJiffies(h))).sort((a, b) => a - b);
}

/** `count recent`: per table `# <table>: <count>\n`, tables in lexicographic order. */
export function formatCountRecent(tables: readonly RecentTableView[]): string {
  return sortedBy(tables, (x) => x.name)
    .map((t) => `# ${t.name}: ${t.entries.length}\n`)
    .join('');
}

/**
 * JSON of `show recent`:
 * `{"tables":[{"name","entries":[{"addr","family","ttl","lastSeenMs","hitsMs":[..],"lastSeenJiffies","hitsJiffies":[..]}]}]}`
 * in the text's order; `*Ms` are epoch ms, `*Jiffies` this node's jiffies, both ascending.
 */
export function showRecentJson(tables: readonly RecentTableView[], toJiffies: (epochMs: number) => number): string {
  return JSON.stringify({
    tables: sortedBy(tables, (x) => x.name).map((t) => ({
      name: t.name,
      entries: sortedBy(t.entries, (x) => x.addr).map((e) => {
        const ms = [...e.hits].sort((a, b) => a - b);
        const jf = jiffiesAscending(e.hits, toJiffies);
        return {
          addr: e.addr,
          family: e.family,
          ttl: e.ttl,
          lastSeenMs: ms.length > 0 ? ms[ms.length - 1]! : null,
          hitsMs: ms,
          lastSeenJiffies: jf.length > 0 ? jf[jf.length - 1]! : null,
          hitsJiffies: jf,
        };
      }),
    })),
  });
}

/** JSON of `count recent`: `{"tables":[{"name","count"}],"total"}`. */
export function countRecentJson(tables: readonly RecentTableView[]): string {
  const rows = sortedBy(tables, (x) => x.name).map((t) => ({ name: t.name, count: t.entries.length }));
  return JSON.stringify({ tables: rows, total: rows.reduce((n, r) => n + r.count, 0) });
}

export function showRecentReply(tables: readonly RecentTableView[], toJiffies: (epochMs: number) => number, json = false): Reply {
  return done(json ? showRecentJson(tables, toJiffies) : formatShowRecent(tables, toJiffies));
}

export function countRecentReply(tables: readonly RecentTableView[], json = false): Reply {
  return done(json ? countRecentJson(tables) : formatCountRecent(tables));
}

// ---- show / count: http (Pound sessions) ----

export interface HttpSessionView {
  readonly key: string;
  /** Backend ordinal in the service. */
  readonly backend: number;
  /** Last access, epoch seconds (as Pound reports it). */
  readonly lastAccess: number;
  readonly content: string;
}

export interface HttpFarmView {
  readonly name: string;
  readonly listeners: readonly {
    readonly listener: number;
    readonly services: readonly { readonly service: number; readonly sessions: readonly HttpSessionView[] }[];
  }[];
}

const byNumber = <T>(items: readonly T[], key: (t: T) => number): T[] => [...items].sort((a, b) => key(a) - key(b));

/**
 * `show http`: per farm `farm:  <farm>\n` (two spaces), per listener `\thttp Listener: <L>\n`, per
 * service ` \t\tService: <S>\n` (leading space), per session `\t\t\tSession: <key> [ <last_acc> ] >> <content>\n`.
 * Farms and keys in lexicographic order, listeners and services by ordinal.
 */
export function formatShowHttp(farms: readonly HttpFarmView[]): string {
  let out = '';
  for (const f of sortedBy(farms, (x) => x.name)) {
    out += `farm:  ${f.name}\n`;
    for (const l of byNumber(f.listeners, (x) => x.listener)) {
      out += `\thttp Listener: ${l.listener}\n`;
      for (const s of byNumber(l.services, (x) => x.service)) {
        out += ` \t\tService: ${s.service}\n`;
        for (const x of sortedBy(s.sessions, (y) => y.key)) out += `\t\t\tSession: ${x.key} [ ${x.lastAccess} ] >> ${x.content}\n`;
      }
    }
  }
  return out;
}

/** `count http`: per farm `farm:  <farm>\n`, then `<n>\n` per (listener, service). */
export function formatCountHttp(farms: readonly HttpFarmView[]): string {
  let out = '';
  for (const f of sortedBy(farms, (x) => x.name)) {
    out += `farm:  ${f.name}\n`;
    for (const l of byNumber(f.listeners, (x) => x.listener)) {
      for (const s of byNumber(l.services, (x) => x.service)) out += `${s.sessions.length}\n`;
    }
  }
  return out;
}

/**
 * JSON of `show http`:
 * `{"farms":[{"name","listeners":[{"listener","services":[{"service","sessions":[{"key","backend","lastAccess","content"}]}]}]}]}`.
 */
export function showHttpJson(farms: readonly HttpFarmView[]): string {
  return JSON.stringify({
    farms: sortedBy(farms, (x) => x.name).map((f) => ({
      name: f.name,
      listeners: byNumber(f.listeners, (x) => x.listener).map((l) => ({
        listener: l.listener,
        services: byNumber(l.services, (x) => x.service).map((s) => ({
          service: s.service,
          sessions: sortedBy(s.sessions, (y) => y.key).map((x) => ({ key: x.key, backend: x.backend, lastAccess: x.lastAccess, content: x.content })),
        })),
      })),
    })),
  });
}

/** JSON of `count http`: `{"farms":[{"name","services":[{"listener","service","count"}],"total"}],"total"}`. */
export function countHttpJson(farms: readonly HttpFarmView[]): string {
  const rows = sortedBy(farms, (x) => x.name).map((f) => {
    const services = byNumber(f.listeners, (x) => x.listener).flatMap((l) =>
      byNumber(l.services, (x) => x.service).map((s) => ({ listener: l.listener, service: s.service, count: s.sessions.length })),
    );
    return { name: f.name, services, total: services.reduce((n, s) => n + s.count, 0) };
  });
  return JSON.stringify({ farms: rows, total: rows.reduce((n, f) => n + f.total, 0) });
}

export function showHttpReply(farms: readonly HttpFarmView[], json = false): Reply {
  return done(json ? showHttpJson(farms) : formatShowHttp(farms));
}

export function countHttpReply(farms: readonly HttpFarmView[], json = false): Reply {
  return done(json ? countHttpJson(farms) : formatCountHttp(farms));
}

// ---- show / count: nft ----

export interface NftSetView {
  readonly ref: NftRef;
  readonly entries: readonly NftEntry[];
}

const nftLabel = (r: NftRef): string => `${r.family} ${r.table} ${r.set}`;
// Family, then table, then set: the order `nft list ruleset` groups them in.
const nftKey = (r: NftRef): string => `${r.family}\u0000${r.table}\u0000${r.set}`;

function formatNftData(d: NftData): string {
  return d.type === 'mark' ? `mark 0x${d.mark.toString(16).padStart(8, '0')}` : `${d.addr} . ${d.port}`;
}

/**
 * `show nft`: per set `# <family> <table> <set>\n`, per element (by address)
 * ` src: <addr>[ data: <mark 0x0000000a | addr . port>] timeout: <ms>ms|default expires: <ms>ms|never\n`.
 * `timeout: default` = the element has none of its own (the set's applies); `expires` is the time left.
 */
export function formatShowNft(sets: readonly NftSetView[], nowMs: number): string {
  let out = '';
  for (const s of sortedBy(sets, (x) => nftKey(x.ref))) {
    out += `# ${nftLabel(s.ref)}\n`;
    for (const e of sortedBy(s.entries, (x) => x.addr)) {
      const data = e.data === null ? '' : ` data: ${formatNftData(e.data)}`;
      const timeout = e.timeoutMs > 0 ? `${e.timeoutMs}ms` : 'default';
      const expires = e.expiresAt === null ? 'never' : `${Math.max(0, e.expiresAt - nowMs)}ms`;
      out += ` src: ${e.addr}${data} timeout: ${timeout} expires: ${expires}\n`;
    }
  }
  return out;
}

/** `count nft`: per set `# <family> <table> <set>: <count>\n`. */
export function formatCountNft(sets: readonly NftSetView[]): string {
  return sortedBy(sets, (x) => nftKey(x.ref))
    .map((s) => `# ${nftLabel(s.ref)}: ${s.entries.length}\n`)
    .join('');
}

/**
 * JSON of `show nft`: `{"sets":[{"family","table","set","elements":[{"addr","family","data",
 * "timeoutMs","expiresAt","expiresInMs"}]}]}`; data is null, `{"type":"mark","mark"}` or
 * `{"type":"addr_port","family","addr","port"}`; expiresAt (epoch ms) and expiresInMs are null for never.
 */
export function showNftJson(sets: readonly NftSetView[], nowMs: number): string {
  return JSON.stringify({
    sets: sortedBy(sets, (x) => nftKey(x.ref)).map((s) => ({
      family: s.ref.family,
      table: s.ref.table,
      set: s.ref.set,
      elements: sortedBy(s.entries, (x) => x.addr).map((e) => ({
        addr: e.addr,
        family: e.family,
        data: e.data === null ? null : e.data.type === 'mark' ? { type: 'mark', mark: e.data.mark } : { type: 'addr_port', family: e.data.family, addr: e.data.addr, port: e.data.port },
        timeoutMs: e.timeoutMs,
        expiresAt: e.expiresAt,
        expiresInMs: e.expiresAt === null ? null : Math.max(0, e.expiresAt - nowMs),
      })),
    })),
  });
}

/** JSON of `count nft`: `{"sets":[{"family","table","set","count"}],"total"}`. */
export function countNftJson(sets: readonly NftSetView[]): string {
  const rows = sortedBy(sets, (x) => nftKey(x.ref)).map((s) => ({ family: s.ref.family, table: s.ref.table, set: s.ref.set, count: s.entries.length }));
  return JSON.stringify({ sets: rows, total: rows.reduce((n, r) => n + r.count, 0) });
}

export function showNftReply(sets: readonly NftSetView[], nowMs: number, json = false): Reply {
  return done(json ? showNftJson(sets, nowMs) : formatShowNft(sets, nowMs));
}

export function countNftReply(sets: readonly NftSetView[], json = false): Reply {
  return done(json ? countNftJson(sets) : formatCountNft(sets));
}

// ---- status ----

export interface PeerStatusView {
  /** `addr:port`: a backup connected to this master, or the master this backup follows. */
  readonly peer: string;
  readonly state: 'connecting' | 'syncing' | 'connected' | 'down';
  /** Epoch ms of the last state change. */
  readonly since: number;
  /** How far behind the peer is: age of the oldest change not yet acknowledged; null when unknown. */
  readonly lagMs: number | null;
  /** Changes queued for this peer (master) or received and not yet applied (backup). */
  readonly queueDepth: number;
}

export interface StatusView {
  readonly mode: 'master' | 'backup';
  readonly pid: number;
  /** Epoch ms. */
  readonly startedAt: number;
  /** Master: the address it listens on; backup: the master it follows. */
  readonly endpoint: { readonly address: string; readonly port: number };
  /** What is being replicated: recent on/off, http farms, nft sets. */
  readonly sources: { readonly recent: boolean; readonly http: readonly string[]; readonly nft: readonly NftRef[]; readonly overrides?: boolean };
  /** The replicated copy held in memory. */
  readonly store: { readonly tables: number; readonly entries: number };
  /** Changes waiting anywhere in the pipeline (sources to store to peers). */
  readonly queueDepth: number;
  /** The last full snapshot sent (master) or received (backup). */
  readonly lastSnapshot: { readonly at: number; readonly peer: string; readonly tables: number; readonly entries: number } | null;
  readonly peers: readonly PeerStatusView[];
}

const iso = (ms: number): string => new Date(ms).toISOString();
const seconds = (ms: number): number => Math.max(0, Math.round(ms / 1000));

function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * `status`, one fact per line (no final newline: ssyncdctl adds one):
 * ```
 * mode: master
 * pid: 4242
 * started: 2025-01-02T03:04:05.000Z (up 3600 s)
 * listening: 0.0.0.0:7777                      (backup: `master: 10.0.0.1:7777`)
 * sources: recent, http farm1, nft inet filter sticky   (or `none`)
 * store: 3 tables, 120 entries
 * queue: 5
 * last snapshot: 2025-...Z (12 s ago) to 10.0.0.2:41000, 3 tables, 120 entries   (backup: `from`; or `none`)
 * peers: 1
 *   10.0.0.2:41000 connected since 2025-...Z (120 s), lag 15 ms, queue 0       (`lag unknown` when null)
 * ```
 */
export function formatStatus(v: StatusView, nowMs: number): string {
  const sources = [
    ...(v.sources.recent ? ['recent'] : []),
    ...[...v.sources.http].sort(byText).map((f) => `http ${f}`),
    ...sortedBy(v.sources.nft, nftKey).map((r) => `nft ${nftLabel(r)}`),
    ...(v.sources.overrides ? ['overrides'] : []),
  ];
  const snap = v.lastSnapshot;
  const lines = [
    `mode: ${v.mode}`,
    `pid: ${v.pid}`,
    `started: ${iso(v.startedAt)} (up ${seconds(nowMs - v.startedAt)} s)`,
    `${v.mode === 'master' ? 'listening' : 'master'}: ${formatHostPort(v.endpoint.address, v.endpoint.port)}`,
    `sources: ${sources.length > 0 ? sources.join(', ') : 'none'}`,
    `store: ${v.store.tables} tables, ${v.store.entries} entries`,
    `queue: ${v.queueDepth}`,
    `last snapshot: ${
      snap === null
        ? 'none'
        : `${iso(snap.at)} (${seconds(nowMs - snap.at)} s ago) ${v.mode === 'master' ? 'to' : 'from'} ${snap.peer}, ${snap.tables} tables, ${snap.entries} entries`
    }`,
    `peers: ${v.peers.length}`,
    ...sortedBy(v.peers, (p) => p.peer).map(
      (p) =>
        `  ${p.peer} ${p.state} since ${iso(p.since)} (${seconds(nowMs - p.since)} s), lag ${p.lagMs === null ? 'unknown' : `${p.lagMs} ms`}, queue ${p.queueDepth}`,
    ),
  ];
  return lines.join('\n');
}

/**
 * JSON of `status`: `{"mode","pid","startedAt","uptimeMs","endpoint":{"address","port"},
 * "sources":{"recent","http":[..],"nft":[{"family","table","set"}]},"store":{"tables","entries"},
 * "queueDepth","lastSnapshot":null|{"at","peer","tables","entries"},
 * "peers":[{"peer","state","since","lagMs","queueDepth"}]}`; times are epoch ms.
 */
export function statusJson(v: StatusView, nowMs: number): string {
  return JSON.stringify({
    mode: v.mode,
    pid: v.pid,
    startedAt: v.startedAt,
    uptimeMs: Math.max(0, nowMs - v.startedAt),
    endpoint: { address: v.endpoint.address, port: v.endpoint.port },
    sources: {
      recent: v.sources.recent,
      http: [...v.sources.http].sort(byText),
      nft: sortedBy(v.sources.nft, nftKey).map((r) => ({ family: r.family, table: r.table, set: r.set })),
      overrides: v.sources.overrides ?? false,
    },
    store: { tables: v.store.tables, entries: v.store.entries },
    queueDepth: v.queueDepth,
    lastSnapshot: v.lastSnapshot === null ? null : { at: v.lastSnapshot.at, peer: v.lastSnapshot.peer, tables: v.lastSnapshot.tables, entries: v.lastSnapshot.entries },
    peers: sortedBy(v.peers, (p) => p.peer).map((p) => ({ peer: p.peer, state: p.state, since: p.since, lagMs: p.lagMs, queueDepth: p.queueDepth })),
  });
}

export function statusReply(v: StatusView, nowMs: number, json = false): Reply {
  return done(json ? statusJson(v, nowMs) : formatStatus(v, nowMs));
}
