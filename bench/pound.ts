// `node dist/bench/pound.js` (or runPoundBench() from another bench): Pound HTTP session sync measured
// with real ssyncd daemons, master and backup in two network namespaces joined by a veth pair, and the
// Pound sync-socket double of test/helpers/pound-double.ts on each side (running in this process; no
// Zevenet Pound exists in Debian or npm). Printed beside the targets:
//   master reading Pound's dump of 100,000 sessions (info); snapshot of them to a fresh backup
//   (<= 2 s, as bench:sync's snapshot target); sustained session updates through the double
//   (>= 20,000/s): rounds at a fixed offered rate with a marker session added every second, the
//   steady rate being the updates between the first and last marker over the time the backup took
//   between them, plus a flood round; `write http` of everything into the backup's Pound (info).
// Needs root (network namespaces). Options:
//   --sessions 100000 --interval 1000 --rounds 20000x10,50000x10 --flood 300000 --verbose

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sendCommand } from '../session-sync/control/client.js';
import type { Command } from '../session-sync/control/commands.js';
import { poundSocketPath } from '../session-sync/pound/backend.js';
import { link, Netns, netnsUnavailable, sleep } from '../test/helpers/netns.js';
import { PoundDouble, type DoubleSession, type PoundDoubleConfig } from '../test/helpers/pound-double.js';
import { Daemon, eventually } from '../test/helpers/ssyncd.js';

export interface PoundBenchOptions {
  readonly sessions: number;
  readonly intervalMs: number;
  /** Rounds of updates: offered rate per second and duration in seconds. */
  readonly rounds: readonly { readonly rate: number; readonly seconds: number }[];
  /** Updates sent as fast as the double can write them (0: no flood round). */
  readonly flood: number;
  readonly verbose: boolean;
}

export interface PoundBenchRow {
  readonly figure: string;
  readonly value: string;
  readonly target: string;
  readonly met?: boolean;
}

export interface PoundBenchResult {
  readonly header: string[];
  readonly rows: PoundBenchRow[];
  readonly details: string[];
}

export const DEFAULT_POUND_BENCH: PoundBenchOptions = {
  sessions: 100_000,
  intervalMs: 1000,
  rounds: [
    { rate: 20_000, seconds: 10 },
    { rate: 50_000, seconds: 10 },
  ],
  flood: 300_000,
  verbose: false,
};

const FARM = 'bench';
const TARGET_SNAPSHOT_S = 2;
const TARGET_UPDATES_PER_S = 20_000;
/** 2 listeners x 4 services x 10 backends. */
const CONFIG: PoundDoubleConfig = {
  listeners: Array.from({ length: 2 }, (_, l) => ({
    services: Array.from({ length: 4 }, (_, s) => ({ backends: Array.from({ length: 10 }, (_, b) => `192.168.${l * 4 + s}.${b + 1}`) })),
  })),
};

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n));
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : String(n));

interface StatusJson {
  store: { entries: number };
  lastSnapshot: null | { entries: number };
  peers: { state: string }[];
}

async function ask(d: Daemon, cmd: Command, timeoutMs = 120_000): Promise<{ text: string; status: number }> {
  const r = await sendCommand(d.socket, cmd, { json: cmd.cmd === 'status' || cmd.cmd.startsWith('show-') || cmd.cmd.startsWith('count-'), wantStatus: true, timeoutMs });
  if ('notRunning' in r) throw new Error(`${d.spec.name}: not running\n${d.log().slice(-2000)}`);
  return r;
}

const entries = async (d: Daemon): Promise<number> => (JSON.parse((await ask(d, { cmd: 'status' })).text) as StatusJson).store.entries;

/** Polls until `cond` holds; throws after `ms`. */
async function waitFor(what: string, ms: number, cond: () => Promise<boolean>, stepMs = 10): Promise<void> {
  if (!(await eventually(cond, ms, stepMs))) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Seconds between the last lines of a daemon's log matching `from` and `to` (its own timestamps). */
function logSpan(log: string, from: RegExp, to: RegExp): number {
  const at = (re: RegExp): number => {
    const line = log.split('\n').filter((l) => re.test(l)).at(-1);
    const m = line && /^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6})\]/.exec(line);
    return m ? new Date(`${m[1]}T${m[2]}`).getTime() + Number(m[3]) / 1000 : NaN;
  };
  return (at(to) - at(from)) / 1000;
}

/** The tables as `L/S/key>B@t` lines: the backup's show http (JSON) and a double's. */
function shownLines(text: string): string[] {
  const j = JSON.parse(text) as { farms: { listeners: { listener: number; services: { service: number; sessions: { key: string; backend: number; lastAccess: number }[] }[] }[] }[] };
  return j.farms.flatMap((f) => f.listeners.flatMap((l) => l.services.flatMap((s) => s.sessions.map((x) => `${l.listener}/${s.service}/${x.key}>${x.backend}@${x.lastAccess}`)))).sort();
}
const doubleLines = (d: PoundDouble): string[] => d.sessions().map((s) => `${s.listener}/${s.service}/${s.key}>${s.backend}@${s.lastAcc}`).sort();

/** Undo steps of the run under way (daemons, doubles, namespaces, directories), last first. */
const cleanups: (() => Promise<unknown> | unknown)[] = [];

async function cleanUp(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      process.stderr.write(`pound bench cleanup: ${(e as Error).message}\n`);
    }
  }
}

/** Stops a run under way and removes what it made (for a caller's signal handler). */
export function abortPoundBench(): Promise<void> {
  return cleanUp();
}

export async function runPoundBench(opts: Partial<PoundBenchOptions> = {}): Promise<PoundBenchResult> {
  const o = { ...DEFAULT_POUND_BENCH, ...opts };
  const why = netnsUnavailable();
  if (why) throw new Error(`the Pound bench needs root on Linux: ${why}`);
  const progress = (msg: string): void => {
    if (o.verbose) process.stderr.write(`[pound bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
  };
  const rows: PoundBenchRow[] = [];
  const details: string[] = [];
  const header = [
    `Pound session sync: master and backup ssyncd in two network namespaces (veth), a Pound sync-socket double on each side in this process`,
    `host: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}, load average at the start ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    `master: poll_interval_ms ${o.intervalMs}, poll_cpu_budget 0, sync_http ${FARM}; Pound double: ${f0(o.sessions)} sessions over 2 listeners x 4 services x 10 backends`,
  ];
  try {
    const work = mkdtempSync(join(tmpdir(), 'pound-bench-'));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const mns = await Netns.create('sspbm');
    cleanups.push(() => mns.destroy());
    const bns = await Netns.create('sspbb');
    cleanups.push(() => bns.destroy());
    await link(mns, { v4: '10.47.0.1', v6: 'fd47::1' }, bns, { v4: '10.47.0.2', v6: 'fd47::2' });

    const T0 = Math.floor(Date.now() / 1000) - 3600;
    const seed: DoubleSession[] = Array.from({ length: o.sessions }, (_, i) => ({
      listener: i & 1,
      service: (i >> 1) & 3,
      key: `JSESSIONID=${i.toString(16).padStart(8, '0')}${'0123456789abcdef'.repeat(2)}`,
      backend: i % 10,
      lastAcc: T0 + (i % 600),
    }));
    for (const side of ['m', 'b']) mkdirSync(join(work, side));
    const mDouble = await PoundDouble.start({ path: poundSocketPath(join(work, 'm'), FARM), name: FARM, config: CONFIG, sessions: seed });
    cleanups.push(() => mDouble.close());
    const common = ['key_file none', `poll_interval_ms ${o.intervalMs}`, 'poll_cpu_budget 0', 'heartbeat_ms 1000', 'dead_time_ms 4000', 'logging info'];
    const master = new Daemon({ ns: mns, name: 'pbm', args: ['-M', '-p', '7797'], config: [...common, `pound_socket_dir ${join(work, 'm')}`, `sync_http ${FARM}`] });
    const backup = new Daemon({ ns: bns, name: 'pbb', args: ['-B', '-a', '10.47.0.1', '-p', '7797'], config: [...common, `pound_socket_dir ${join(work, 'b')}`] });
    for (const d of [master, backup]) {
      cleanups.push(() => rmSync(d.dir, { recursive: true, force: true }));
      cleanups.push(() => d.kill9());
    }

    // ---- the master reads Pound's dump ----
    progress('master reading the dump');
    let t = performance.now();
    await master.start();
    await waitFor('the master to hold the dump', 120_000, async () => (await entries(master)) >= o.sessions, 20);
    const ingestS = (performance.now() - t) / 1000;
    rows.push({ figure: `master reads Pound's dump of ${f0(o.sessions)} sessions (start -> all in its copy)`, value: `${f2(ingestS)} s`, target: '(info)' });

    // ---- a fresh backup: snapshot ----
    progress('snapshot to a fresh backup');
    t = performance.now();
    await backup.start();
    await waitFor('the backup to hold the snapshot', 120_000, async () => (await entries(backup)) >= o.sessions, 10);
    const hostS = (performance.now() - t) / 1000;
    const logS = logSpan(backup.log(), /Connected to master node/, /snapshot from /);
    rows.push({ figure: `snapshot of ${f0(o.sessions)} sessions to a fresh backup (its log: connected -> snapshot applied)`, value: `${f2(logS)} s`, target: `<= ${TARGET_SNAPSHOT_S} s`, met: logS <= TARGET_SNAPSHOT_S });
    details.push(`snapshot as seen from here: backup spawned -> ${f0(o.sessions)} entries in its copy ${f2(hostS)} s (process start included)`);

    // ---- sustained updates ----
    let updates = 0;
    let markers = 0;
    /** One update: the next session's last access moves to a later second (a real change). */
    const touchNext = (): void => {
      const s = seed[updates % o.sessions]!;
      mDouble.touch(s.listener, s.service, s.key, T0 + 600 + Math.floor(updates / o.sessions));
      updates += 1;
    };
    const round = async (label: string, total: number, rate: number | undefined): Promise<{ steady: number; lagMs: number; sentRate: number }> => {
      progress(`round ${label}`);
      const base = await entries(backup);
      const seen: number[] = [];
      const markerSent: number[] = [];
      const markerUpdates: number[] = [];
      let sending = true;
      const watcher = (async () => {
        while (sending || seen.length < markerSent.length) {
          const n = (await entries(backup)) - base;
          const now = performance.now();
          while (seen.length < n) seen.push(now);
          await sleep(5);
        }
      })();
      watcher.catch(() => undefined); // awaited below; not unhandled while the round is still sending
      const start = performance.now();
      let done = 0;
      let nextMarkerAt = 1000;
      const addMarker = (): void => {
        mDouble.add(0, 0, `bench-marker-${markers++}`, 0, T0);
        markerSent.push(performance.now());
        markerUpdates.push(done);
      };
      while (done < total) {
        const elapsed = performance.now() - start;
        const due = rate === undefined ? Math.min(total, done + 5000) : Math.min(total, Math.floor((elapsed / 1000) * rate));
        mDouble.batch(() => {
          for (; done < due; done++) touchNext();
        });
        if (elapsed >= nextMarkerAt) {
          addMarker();
          nextMarkerAt += 1000;
        }
        await (rate === undefined ? mDouble.flushed() : sleep(2));
      }
      const sentS = (performance.now() - start) / 1000;
      addMarker();
      sending = false;
      await Promise.race([watcher, sleep(120_000).then(() => Promise.reject(new Error(`round ${label}: the backup never caught up`)))]);
      const first = 0;
      const last = markerSent.length - 1;
      const steady = last > first ? (markerUpdates[last]! - markerUpdates[first]!) / ((seen[last]! - seen[first]!) / 1000) : NaN;
      return { steady, lagMs: seen[last]! - markerSent[last]!, sentRate: total / sentS };
    };
    for (const r of o.rounds) {
      const x = await round(`${f0(r.rate)}/s x ${r.seconds} s`, r.rate * r.seconds, r.rate);
      // Kept up: the backup's pace between markers matches the offered rate, and the last marker lands
      // within about one poll interval of being sent.
      const keptUp = x.steady >= r.rate * 0.95 && x.lagMs <= o.intervalMs + 1000;
      rows.push({
        figure: `sustained updates through the double, offered ${f0(r.rate)}/s for ${r.seconds} s (pace at the backup)`,
        value: `${f0(x.steady)}/s`,
        target: `>= ${f0(TARGET_UPDATES_PER_S)}/s`,
        met: r.rate >= TARGET_UPDATES_PER_S ? x.steady >= TARGET_UPDATES_PER_S : undefined,
      });
      details.push(`round ${f0(r.rate)}/s: double sent ${f0(x.sentRate)}/s; last marker reached the backup ${f0(x.lagMs)} ms after it was sent${keptUp ? ' (kept up)' : ' (fell behind the offered rate)'}`);
    }
    if (o.flood > 0) {
      const x = await round(`flood of ${f0(o.flood)}`, o.flood, undefined);
      rows.push({ figure: `flood: ${f0(o.flood)} updates as fast as the double writes them (pace at the backup)`, value: `${f0(x.steady)}/s`, target: `>= ${f0(TARGET_UPDATES_PER_S)}/s`, met: x.steady >= TARGET_UPDATES_PER_S });
      details.push(`flood: double sent ${f0(x.sentRate)}/s; last marker reached the backup ${f0(x.lagMs)} ms after it was sent`);
    }
    progress('checking the backup copy');
    const want = doubleLines(mDouble);
    const shown = shownLines((await ask(backup, { cmd: 'show-http' })).text);
    const exact = JSON.stringify(shown) === JSON.stringify(want);
    details.push(`after ${f0(updates)} updates the backup's copy ${exact ? 'equals' : 'DIFFERS FROM'} the master's Pound (${f0(want.length)} sessions: ordinals, key, backend, last access)`);

    // ---- write http ----
    progress('write http');
    const bDouble = await PoundDouble.start({ path: poundSocketPath(join(work, 'b'), FARM), name: FARM, config: CONFIG });
    cleanups.push(() => bDouble.close());
    t = performance.now();
    const w = await ask(backup, { cmd: 'write-http' });
    const writeS = (performance.now() - t) / 1000;
    const written = JSON.stringify(doubleLines(bDouble)) === JSON.stringify(want);
    rows.push({ figure: `write http of ${f0(want.length)} sessions into the backup's Pound (reply received)`, value: `${f2(writeS)} s`, target: '(info)', met: w.status === 0 && written ? undefined : false });
    details.push(`write http replied ${JSON.stringify(w.text)}; the backup's Pound then ${written ? 'holds exactly' : 'DOES NOT hold'} the master Pound's sessions (${f0(bDouble.size)}; ${bDouble.badFrames} unreadable frames)`);
    const noise = [master, backup].flatMap((d) => d.log().split('\n').filter((l) => /\] (warn|error)\s*:/.test(l) && !/no key file/.test(l)));
    if (noise.length) details.push(`daemon warnings/errors (${noise.length}): ${noise.slice(0, 5).join(' | ')}`);
    return { header, rows, details };
  } finally {
    await cleanUp();
  }
}

export function formatPoundBench(r: PoundBenchResult): string {
  const w = (k: keyof PoundBenchRow): number => Math.max(...r.rows.map((x) => String(x[k] ?? '').length), k.length);
  const line = (a: string, b: string, c: string, d: string): string => `${a.padEnd(w('figure'))}  ${b.padEnd(w('value'))}  ${c.padEnd(w('target'))}  ${d}`;
  return [
    ...r.header,
    '',
    line('figure', 'measured', 'target', 'met?'),
    ...r.rows.map((x) => line(x.figure, x.value, x.target, x.met === undefined ? '' : x.met ? 'yes' : 'NO')),
    '',
    'details:',
    ...r.details.map((d) => `  ${d}`),
  ].join('\n');
}

function cliOptions(): PoundBenchOptions {
  const { values } = parseArgs({
    options: {
      sessions: { type: 'string' },
      interval: { type: 'string' },
      rounds: { type: 'string' },
      flood: { type: 'string' },
      verbose: { type: 'boolean' },
    },
  });
  const num = (v: string | undefined, d: number): number => (v === undefined ? d : Number(v));
  return {
    sessions: num(values.sessions, DEFAULT_POUND_BENCH.sessions),
    intervalMs: num(values.interval, DEFAULT_POUND_BENCH.intervalMs),
    rounds: values.rounds
      ? values.rounds.split(',').map((x) => {
          const [rate, seconds] = x.split('x').map(Number);
          return { rate: rate!, seconds: seconds ?? 10 };
        })
      : DEFAULT_POUND_BENCH.rounds,
    flood: num(values.flood, DEFAULT_POUND_BENCH.flood),
    verbose: values.verbose ?? false,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`${sig}: cleaning up\n`);
      void cleanUp().then(() => process.exit(130));
    });
  }
  runPoundBench(cliOptions()).then(
    (r) => process.stdout.write(`${formatPoundBench(r)}\n`),
    (e: unknown) => {
      process.stderr.write(`pound bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
