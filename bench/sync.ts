// `npm run bench:sync`: ssyncd master/backup replication measured with real daemons in two network
// namespaces joined by a veth pair. The master's kernel holds 100,000 nftables set elements and
// 20,000 xt_recent entries (200 tables of 100: the host's built-in xt_recent keeps at most 100 per
// table). Printed beside the targets of the issue:
//   full snapshot to a fresh backup (100,000 nft entries <= 2 s), sustained change throughput
//   (>= 20,000 changes/s), replication latency kernel -> backup copy (p99 <= poll interval + 50 ms;
//   sampled in a recent table, a small nft set and the 100,000-element set),
//   master CPU per 1,000 changes and per idle poll (100,000 entries <= 5 % of a core at 1 s),
//   `write nft` of 100,000 entries; `nft -j list set` of the same set as the reference.
// Changes are made in the master's kernel by a load generator running inside the master namespace
// (this script re-run with --inner-gen), which commits nftables transactions over netlink; recent
// entries are written from this process through /proc/<pid>/net/xt_recent of a namespace holder.
// Needs root (network namespaces). Options:
//   --entries 100000 --tables 200 --per-table 100 --interval 1000 --samples 60 --rate 5
//   --idle 10 --rounds 25000x6,50000x6,100000x3 --keyed-rounds 50000x5
//   --phases idle,snapshot,latency,throughput,nft-idle,write,reference,keyed,budget (default: all)
// The main phases poll at a fixed rate (poll_cpu_budget 0), as the targets are defined at a 1 s
// interval; the budget phase runs the daemon's default budget, which polls costly sources less often.
//   --profile   run the master under node --cpu-prof and print its top frames (profile kept)
//   --logs DIR  save the daemons' logs there
//   --verbose   progress lines on stderr

import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseIp } from '../common/addr.js';
import { sendCommand } from '../session-sync/control/client.js';
import type { Command } from '../session-sync/control/commands.js';
import type { NftRef } from '../session-sync/nft/sets.js';
import { NftSocket } from '../session-sync/nft/socket.js';
import type { PlannedElem } from '../session-sync/nft/plan.js';
import { encodeTransaction } from '../session-sync/nft/transaction.js';
import { encodeKey } from '../session-sync/nft/types.js';
import { holderOf, link, Netns, netnsUnavailable, sleep, type Holder } from '../test/helpers/netns.js';
import { Daemon, SSYNCD } from '../test/helpers/ssyncd.js';
import { parseConfig } from '../ssyncd/config.js';
import { formatTop } from './cpuprofile-top.js';

const SELF = fileURLToPath(import.meta.url);
const PORT = 7777;
const KEYED_PORT = 7778;
const BUDGET_PORT = 7779;
/**
 * Whether this ssyncd stretches the poll interval of a costly source to keep its polls within a CPU
 * budget (poll_cpu_budget, % of a core; 0 = fixed-rate polls). The targets are defined at a fixed
 * 1 s interval, so the main phases run with 0; the `budget` phase runs the daemon's default.
 */
const budgetSupported = parseConfig('poll_cpu_budget 0\n', 'probe').ok;
const MASTER_IP = { v4: '10.77.0.1', v6: 'fd77::1' };
const BACKUP_IP = { v4: '10.77.0.2', v6: 'fd77::2' };
const TARGET_SNAPSHOT_S = 2;
const TARGET_CHANGES_PER_S = 20_000;
const TARGET_LATENCY_SLACK_MS = 50;
const TARGET_IDLE_PCT = 5;
/**
 * Element times of the load generator's changes: the set's own timeout (30 min), as the packet path's
 * `update @set` gives, and 28 min left, so each round moves the deadline later (the master sees an upsert).
 */
const BUMP_TIMEOUT_MS = 0;
const BUMP_EXPIRES_MS = 1_680_000;

const RULESET = `
table inet lb {
  set persist4 { type ipv4_addr; flags dynamic,timeout; timeout 30m; size 200000; }
  set latset { type ipv4_addr; flags timeout; timeout 30m; }
}
`;

/** Epoch ms with sub-ms resolution (the same clock in this process and the generator). */
const nowMs = (): number => performance.timeOrigin + performance.now();
/** The i-th nft element: 10.16.0.0 .. 10.17.134.159 for 100,000. */
const addrOf = (i: number): string => `10.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const recentAddr = (table: number, j: number): string => `10.64.${table}.${j + 1}`;
const markerAddr = (k: number): string => `10.240.${(k >> 8) & 255}.${k & 255}`;
const latRecentAddr = (k: number): string => `10.250.${(k >> 8) & 255}.${k & 255}`;
const latNftAddr = (k: number): string => `10.251.${(k >> 8) & 255}.${k & 255}`;
const latBigAddr = (k: number): string => `10.252.${(k >> 8) & 255}.${k & 255}`;

// ---------------------------------------------------------------------------------------------
// The load generator, inside the master namespace: one nftables transaction per request.

interface GenRequest {
  readonly id: number;
  readonly set: string;
  /** Existing elements addrOf(from % n) .. to re-add with a later deadline (destroy + add). */
  readonly bump?: { readonly from: number; readonly count: number; readonly n: number };
  /** New elements to add. */
  readonly add?: readonly string[];
}
interface GenReply {
  readonly id: number;
  /** Just before the first transaction was sent, and after the last one was acknowledged (epoch ms). */
  readonly tStart: number;
  readonly tEnd: number;
  readonly elements: number;
  readonly error?: string;
}

/** Replacements per transaction: keeps a datagram and its worst-case error replies well inside the socket's limits. */
const GEN_CHUNK = 40_000;

async function innerGen(): Promise<void> {
  const sock = new NftSocket();
  const keys = new Map<string, Buffer>();
  const elem = (addr: string): PlannedElem => {
    let key = keys.get(addr);
    if (!key) {
      const ip = parseIp(addr);
      if (!ip.ok) throw new Error(`${addr}: ${ip.reason}`);
      key = encodeKey(ip.ip);
      keys.set(addr, key);
    }
    return { addr, key, data: null, timeoutMs: BUMP_TIMEOUT_MS, expirationMs: BUMP_EXPIRES_MS };
  };
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const q = JSON.parse(line) as GenRequest;
    let reply: GenReply;
    try {
      const ref: NftRef = { kind: 'nft', family: 'inet', table: 'lb', set: q.set };
      const replace: PlannedElem[] = [];
      if (q.bump) for (let i = 0; i < q.bump.count; i++) replace.push(elem(addrOf((q.bump.from + i) % q.bump.n)));
      const add = (q.add ?? []).map(elem);
      const txs = [];
      for (let i = 0; i === 0 || i < replace.length; i += GEN_CHUNK) {
        const last = i + GEN_CHUNK >= replace.length;
        const tx = encodeTransaction(ref, { add: last ? add : [], replace: replace.slice(i, i + GEN_CHUNK), skipped: 0, expired: 0 }, 'destroy');
        if (tx.writer.view().length > sock.maxDatagram || tx.worstReplyBytes > sock.replyBudget) {
          throw new Error(`a transaction of ${tx.writer.view().length} bytes does not fit the netlink socket (max ${sock.maxDatagram}, reply budget ${sock.replyBudget})`);
        }
        txs.push(tx);
      }
      const tStart = nowMs();
      let bad = 0;
      for (const tx of txs) {
        const errnos = await sock.exchange('bench load', tx.writer);
        bad ||= errnos.find((e) => e !== 0) ?? 0;
      }
      const tEnd = nowMs();
      reply = { id: q.id, tStart, tEnd, elements: replace.length + add.length, ...(bad ? { error: `kernel errno ${bad}` } : {}) };
    } catch (e) {
      reply = { id: q.id, tStart: 0, tEnd: 0, elements: 0, error: (e as Error).message };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  }
  sock.close();
}

class Generator {
  private nextId = 1;
  private buf = '';
  private readonly waiting = new Map<number, (r: GenReply) => void>();

  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (b: Buffer) => {
      this.buf += b.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const r = JSON.parse(this.buf.slice(0, i)) as GenReply;
        this.buf = this.buf.slice(i + 1);
        this.waiting.get(r.id)?.(r);
        this.waiting.delete(r.id);
      }
    });
  }

  static start(ns: Netns): Generator {
    return new Generator(ns.spawn(process.execPath, [SELF, '--inner-gen'], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  async call(q: Omit<GenRequest, 'id'>): Promise<GenReply> {
    const id = this.nextId++;
    const p = new Promise<GenReply>((resolve) => this.waiting.set(id, resolve));
    this.child.stdin!.write(`${JSON.stringify({ ...q, id })}\n`);
    const r = await p;
    if (r.error) throw new Error(`load generator: ${r.error}`);
    return r;
  }

  stop(): void {
    this.child.stdin?.end();
    this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------
// Daemon access: the in-process control client (a process per poll would distort latencies).

interface StatusJson {
  mode: string;
  pid: number;
  store: { tables: number; entries: number };
  queueDepth: number;
  lastSnapshot: null | { at: number; peer: string; tables: number; entries: number };
  peers: { peer: string; state: string; lagMs: number | null; queueDepth: number }[];
}
interface CountNftJson {
  sets: { family: string; table: string; set: string; count: number }[];
  total: number;
}
interface ShowNftJson {
  sets: { set: string; elements: { addr: string; expiresAt: number | null }[] }[];
}

async function ask(d: Daemon, cmd: Command, json = true, timeoutMs = 60_000): Promise<{ text: string; status: number }> {
  const r = await sendCommand(d.socket, cmd, { json, wantStatus: true, timeoutMs });
  if ('notRunning' in r) throw new Error(`${d.spec.name}: not running (${d.socket})\n${d.log().slice(-2000)}`);
  return r;
}

async function askJson<T>(d: Daemon, cmd: Command): Promise<T> {
  const r = await ask(d, cmd);
  if (r.status !== 0) throw new Error(`${d.spec.name}: ${cmd.cmd} failed: ${r.text}`);
  return JSON.parse(r.text) as T;
}

const status = (d: Daemon): Promise<StatusJson> => askJson<StatusJson>(d, { cmd: 'status' });

async function until<T>(what: string, ms: number, stepMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/**
 * A daemon run under `node --cpu-prof` (not allowed in NODE_OPTIONS): the profile is written when
 * it exits normally (stop(), SIGTERM), into `dir`, named with its pid.
 */
class ProfiledDaemon extends Daemon {
  constructor(
    spec: ConstructorParameters<typeof Daemon>[0],
    private readonly profileDir: string,
  ) {
    super(spec);
  }

  override async start(extraArgs: readonly string[] = []): Promise<void> {
    const child = this.spec.ns.spawn('node', ['--cpu-prof', `--cpu-prof-dir=${this.profileDir}`, SSYNCD, ...this.spec.args, ...extraArgs, '-c', this.configPath]);
    this.child = child;
    child.stdout?.on('data', (b: Buffer) => (this.output += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (this.output += b.toString()));
    await until(`${this.spec.name}'s control socket`, 15_000, 50, async () => {
      if (child.exitCode !== null) throw new Error(`${this.spec.name} exited ${child.exitCode}:\n${this.output}`);
      const r = await sendCommand(this.socket, { cmd: 'show-mode' }, { json: false, wantStatus: true, timeoutMs: 5000 }).catch(() => undefined);
      return r && !('notRunning' in r) && r.status === 0 ? true : undefined;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring helpers.

const HZ = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime and stime of a process (all threads), ms. */
function cpuSplit(pid: number): { user: number; sys: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(f[11]) * 1000) / HZ, sys: (Number(f[12]) * 1000) / HZ };
}

/** utime + stime of a process (all threads), ms. */
function cpuMs(pid: number): number {
  const c = cpuSplit(pid);
  return c.user + c.sys;
}

const pidOf = (d: Daemon): number => {
  const p = d.child?.pid;
  if (!p) throw new Error(`${d.spec.name} has no pid`);
  return p; // `ip netns exec` execs node in place
};

/** Epoch ms of log lines matching `re` ([YYYY-MM-DD HH:MM:SS.uuuuuu] local time). */
function logTimes(log: string, re: RegExp): number[] {
  const out: number[] = [];
  for (const line of log.split('\n')) {
    const m = /^\[(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})\] \S+\s*: (.*)$/.exec(line);
    if (!m || !re.test(m[8]!)) continue;
    out.push(new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime() + Number(m[7]) / 1000);
  }
  return out;
}

/**
 * One xt_recent command. The kernel takes one per write(2) and refuses a second write on the same
 * open file (ESPIPE: the file offset is no longer 0), and the file cannot be pwritten: reopen each time.
 */
function recentWrite(path: string, cmd: string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, `${cmd}\n`);
  } finally {
    closeSync(fd);
  }
}

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const f0 = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n));
const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : String(n));
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : String(n));

let verbose = false;
const t00 = Date.now();
function progress(msg: string): void {
  if (verbose) process.stderr.write(`[${((Date.now() - t00) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------

interface Options {
  entries: number;
  tables: number;
  perTable: number;
  interval: number;
  samples: number;
  rate: number;
  idleS: number;
  rounds: { count: number; rounds: number }[];
  keyedRounds: { count: number; rounds: number }[];
  phases: Set<string>;
  profile: boolean;
  /** Directory to save the daemons' logs in (kept). */
  logs: string | undefined;
}

const ALL_PHASES = ['idle', 'snapshot', 'latency', 'throughput', 'nft-idle', 'write', 'reference', 'keyed', 'budget'];

function parseRounds(s: string): { count: number; rounds: number }[] {
  return s.split(',').map((x) => {
    const m = /^(\d+)x(\d+)$/.exec(x.trim());
    if (!m) throw new Error(`--rounds: ${JSON.stringify(x)} is not COUNTxROUNDS`);
    return { count: Number(m[1]), rounds: Number(m[2]) };
  });
}

function options(): Options & { verbose: boolean } {
  const { values } = parseArgs({
    options: {
      entries: { type: 'string' },
      tables: { type: 'string' },
      'per-table': { type: 'string' },
      interval: { type: 'string' },
      samples: { type: 'string' },
      rate: { type: 'string' },
      idle: { type: 'string' },
      rounds: { type: 'string' },
      'keyed-rounds': { type: 'string' },
      phases: { type: 'string' },
      profile: { type: 'boolean' },
      logs: { type: 'string' },
      verbose: { type: 'boolean' },
    },
  });
  const phases = new Set((values.phases ?? ALL_PHASES.join(',')).split(',').map((p) => p.trim()));
  for (const p of phases) if (!ALL_PHASES.includes(p)) throw new Error(`--phases: unknown phase ${p} (${ALL_PHASES.join(', ')})`);
  const o = {
    entries: Number(values.entries ?? 100_000),
    tables: Number(values.tables ?? 200),
    perTable: Number(values['per-table'] ?? 100),
    interval: Number(values.interval ?? 1000),
    samples: Number(values.samples ?? 60),
    rate: Number(values.rate ?? 5),
    idleS: Number(values.idle ?? 10),
    rounds: parseRounds(values.rounds ?? '25000x6,50000x6,100000x3'),
    keyedRounds: parseRounds(values['keyed-rounds'] ?? '50000x5'),
    phases,
    profile: values.profile ?? false,
    logs: values.logs,
    verbose: values.verbose ?? false,
  };
  if (o.tables > 250 || o.perTable > 100) throw new Error('--tables at most 250, --per-table at most 100 (the kernel keeps 100 per table)');
  if (o.entries > 190_000) throw new Error('--entries at most 190,000 (the set holds 200,000)');
  for (const r of [...o.rounds, ...o.keyedRounds]) if (r.count > o.entries) throw new Error(`a round of ${r.count} changes is more than the ${o.entries} elements`);
  return o;
}

/** The bench's result rows: figure, measured, target, met. */
interface Row {
  readonly figure: string;
  readonly value: string;
  readonly target: string;
  readonly met?: boolean;
}

/** A loop running beside the main flow; its failure is reported where it is awaited, never as an unhandled rejection. */
function background(run: () => Promise<void>): Promise<void> {
  const p = run();
  p.catch(() => undefined);
  return p;
}

const cleanups: (() => Promise<void> | void)[] = [];
/** A signal asked us to stop: the main flow's errors from now on are the daemons going away. */
let aborting = false;
async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      process.stderr.write(`cleanup: ${(e as Error).message}\n`);
    }
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--inner-gen') return innerGen();
  const o = options();
  verbose = o.verbose;
  const why = netnsUnavailable();
  if (why) throw new Error(`this bench needs root on Linux: ${why}`);

  const rows: Row[] = [];
  const notes: string[] = [];
  const details: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'ssyncd-bench-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const profDir = join(tmpdir(), `ssyncd-bench-profile-${process.pid}`);
  const keyPath = join(work, 'ssyncd.key');
  writeFileSync(keyPath, 'the shared secret of the bench director pair, 32+ bytes\n');
  chmodSync(keyPath, 0o600);

  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const sysctl = (k: string): string => {
    try {
      return readFileSync(`/proc/sys/${k.replace(/\./g, '/')}`, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  const header = [
    `ssyncd replication benchmark: master and backup daemons in two network namespaces joined by a veth pair`,
    `host: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Linux ${kernel}, node ${process.version}, CLK_TCK ${HZ}, net.core.wmem_max ${sysctl('net.core.wmem_max')}`,
    `master: poll_interval_ms ${o.interval}${budgetSupported ? ', poll_cpu_budget 0 (fixed-rate polls; the budget phase runs the default)' : ''}, ` +
      `sync_recent yes, sync_nft inet lb persist4, inet lb latset, no key (keyed phase: key_file), heartbeat 1000 ms`,
    `kernel tables on the master: nft set inet lb persist4 with ${f0(o.entries)} elements (the set's timeout 30m, 600-1799 s left); ` +
      `${o.tables} xt_recent tables of ${o.perTable} entries (${f0(o.tables * o.perTable)}); set latset and recent table lat0 for latency samples`,
    `all processes share the ${cpus().length} cores: master, backup, this script (control-socket polling) and the load generator; ` +
      `load average at the start ${loadavg().map((x) => x.toFixed(2)).join(' ')} (anything else running skews the wall-clock figures)`,
  ];
  process.stdout.write(`${header.join('\n')}\n\n`);

  // ---- namespaces, rules, kernel tables ----
  progress('creating namespaces');
  const mns = await Netns.create('ssbm');
  cleanups.push(() => mns.destroy());
  const bns = await Netns.create('ssbb');
  cleanups.push(() => bns.destroy());
  await link(mns, MASTER_IP, bns, BACKUP_IP);
  const rules = ['*filter', ':INPUT ACCEPT [0:0]'];
  for (const name of [...Array.from({ length: o.tables }, (_, i) => `t${i}`), 'lat0']) {
    rules.push(`-A INPUT -p udp --dport 9 -m recent --name ${name} --set`);
  }
  rules.push('COMMIT', '');
  for (const ns of [mns, bns]) {
    await ns.must('iptables-restore', [], rules.join('\n'));
    await ns.must('nft', ['-f', '-'], RULESET);
  }
  const hm: Holder = await holderOf(mns);
  cleanups.push(() => void hm.child.kill('SIGKILL'));

  progress(`filling ${o.entries} nft elements`);
  const fill = ['add element inet lb persist4 {'];
  for (let i = 0; i < o.entries; i++) fill.push(`${addrOf(i)} expires ${600 + (i % 1200)}s,`);
  fill.push('}', '');
  let t = nowMs();
  await mns.must('nft', ['-f', '-'], fill.join('\n'));
  const fillNftMs = nowMs() - t;

  progress(`filling ${o.tables} x ${o.perTable} recent entries`);
  t = nowMs();
  for (let i = 0; i < o.tables; i++) for (let j = 0; j < o.perTable; j++) recentWrite(join(hm.procDir, `t${i}`), `+${recentAddr(i, j)}`);
  const fillRecentMs = nowMs() - t;
  const kernelRecent = readdirSync(hm.procDir)
    .filter((n) => /^t\d+$/.test(n))
    .reduce((n, name) => n + readFileSync(join(hm.procDir, name), 'latin1').split('\n').filter(Boolean).length, 0);
  if (kernelRecent !== o.tables * o.perTable) throw new Error(`the master's recent tables hold ${kernelRecent} entries, not ${o.tables * o.perTable}`);
  details.push(`setup: nft -f of ${f0(o.entries)} elements ${f0(fillNftMs)} ms; ${f0(o.tables * o.perTable)} recent +addr writes ${f0(fillRecentMs)} ms`);

  const gen = Generator.start(mns);
  cleanups.push(() => gen.stop());

  /** budget 'default': the daemon's default poll_cpu_budget; a number: that budget (0 = fixed-rate polls). */
  const masterConfig = (keyed: boolean, budget: number | 'default'): string[] => [
    `poll_interval_ms ${o.interval}`,
    ...(budget === 'default' || !budgetSupported ? [] : [`poll_cpu_budget ${budget}`]),
    'sync_recent yes',
    'sync_nft inet lb persist4, inet lb latset',
    `key_file ${keyed ? keyPath : 'none'}`,
    'logging info',
  ];
  const backupConfig = (keyed: boolean): string[] => [`key_file ${keyed ? keyPath : 'none'}`, 'logging info'];
  const daemons: Daemon[] = [];
  cleanups.push(async () => {
    if (o.logs) mkdirSync(o.logs, { recursive: true });
    for (const d of daemons) {
      await d.kill9();
      if (o.logs) writeFileSync(join(o.logs, `${d.spec.name}.log`), d.log());
      rmSync(d.dir, { recursive: true, force: true });
    }
  });

  /** Starts a master and waits for its first full poll (every kernel entry in its store). */
  const startMaster = async (name: string, port: number, keyed: boolean, budget: number | 'default' = 0): Promise<{ d: Daemon; firstPollS: number }> => {
    const spec = { ns: mns, name, args: ['-M', '-p', String(port)], config: masterConfig(keyed, budget) };
    if (o.profile) mkdirSync(profDir, { recursive: true });
    const d = o.profile ? new ProfiledDaemon(spec, profDir) : new Daemon(spec);
    daemons.push(d);
    const t0 = nowMs();
    await d.start();
    const want = o.entries + o.tables * o.perTable;
    await until(`${name}'s first full poll`, 60_000, 20, async () => ((await status(d)).store.entries >= want ? true : undefined));
    return { d, firstPollS: (nowMs() - t0) / 1000 };
  };

  /** Profile of a stopped master, summarised (when --profile). */
  const profileOf = (d: Daemon): string | undefined => {
    if (!o.profile) return undefined;
    const pid = pidOf(d);
    const file = readdirSync(profDir).find((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'));
    return file ? formatTop(join(profDir, file), 25) : `  (no profile of pid ${pid} in ${profDir})`;
  };

  /** Master CPU over `secs` with nothing changing. */
  const idle = async (d: Daemon, secs: number) => {
    const pid = pidOf(d);
    const c0 = cpuSplit(pid);
    const w0 = nowMs();
    await sleep(secs * 1000);
    const c1 = cpuSplit(pid);
    const wallMs = nowMs() - w0;
    const polls = wallMs / o.interval;
    const cpu = c1.user + c1.sys - c0.user - c0.sys;
    return { pct: (cpu / wallMs) * 100, perPollMs: cpu / polls, userPerPollMs: (c1.user - c0.user) / polls, sysPerPollMs: (c1.sys - c0.sys) / polls, cpuMs: cpu, wallMs };
  };
  const idleText = (x: Awaited<ReturnType<typeof idle>>): string =>
    `${f2(x.pct)} % of a core, ${f1(x.perPollMs)} ms CPU/poll (user ${f0(x.userPerPollMs)}, kernel ${f0(x.sysPerPollMs)})`;

  /** A backup with an empty journal; the time its snapshot took, from its log and as seen from here. */
  const freshBackup = async (
    name: string,
    master: Daemon,
    port: number,
    keyed: boolean,
  ): Promise<{ d: Daemon; logS: number; masterLogS: number; hostS: number; tables: number; entries: number; nftCount: number; backupCpuMs: number; masterCpuMs: number }> => {
    const d = new Daemon({ ns: bns, name, args: ['-B', '-a', MASTER_IP.v4, '-p', String(port)], config: backupConfig(keyed) });
    daemons.push(d);
    const mc0 = cpuMs(pidOf(master));
    const t0 = nowMs();
    await d.start();
    const st = await until(`${name}'s snapshot`, 120_000, 10, async () => {
      const s = await status(d);
      return s.lastSnapshot !== null && s.peers[0]?.state === 'connected' ? s : undefined;
    });
    const hostS = (nowMs() - t0) / 1000;
    const backupCpuMs = cpuMs(pidOf(d));
    const masterCpuMs = cpuMs(pidOf(master)) - mc0;
    const conn = logTimes(d.log(), /^Connected to master node /);
    const snap = logTimes(d.log(), /^snapshot from /);
    const mConn = logTimes(master.log(), new RegExp(`^Backup node connected: ${name} `));
    const mSnap = logTimes(master.log(), new RegExp(`^snapshot \\d+ sent to ${name}: `));
    if (!conn.length || !snap.length || !mConn.length || !mSnap.length) throw new Error(`snapshot log lines missing:\n${d.log()}\n${master.log()}`);
    const counts = await askJson<CountNftJson>(d, { cmd: 'count-nft' });
    return {
      d,
      logS: (snap.at(-1)! - conn.at(-1)!) / 1000,
      masterLogS: (mSnap.at(-1)! - mConn.at(-1)!) / 1000,
      hostS,
      tables: st.lastSnapshot!.tables,
      entries: st.lastSnapshot!.entries,
      nftCount: counts.sets.find((s) => s.set === 'persist4')?.count ?? 0,
      backupCpuMs,
      masterCpuMs,
    };
  };

  let markers = 0;
  /**
   * Rounds of `count` changes one interval apart: each round re-adds `count` elements with a later
   * deadline plus one new marker element, in one transaction; a marker's arrival in the backup's
   * store (its entry count) says the round is applied there (changes reach it in order).
   */
  const throughput = async (master: Daemon, backup: Daemon, count: number, rounds: number, idlePct: number) => {
    const base = (await status(backup)).store.entries;
    const firstMarker = markers;
    const arrivals: number[] = [];
    const commits: GenReply[] = [];
    let lagMax = 0;
    let queueMax = 0;
    /** Longest control-socket round trip to each daemon: how long its event loop was busy or blocked. */
    let backupRttMax = 0;
    let masterRttMax = 0;
    let done = false;
    const mPid = pidOf(master);
    const bPid = pidOf(backup);
    const c0 = { m: cpuMs(mPid), b: cpuMs(bPid), g: cpuMs(gen.pid) };
    const w0 = nowMs();
    const watchBackup = background(async () => {
      while (!done) {
        const q = nowMs();
        const s = await status(backup);
        const at = nowMs();
        backupRttMax = Math.max(backupRttMax, at - q);
        const n = s.store.entries - base;
        while (arrivals.length < Math.min(n, rounds)) arrivals.push(at);
        if (arrivals.length >= rounds) return;
        await sleep(20);
      }
    });
    const watchMaster = background(async () => {
      while (!done) {
        const q = nowMs();
        const s = await status(master);
        masterRttMax = Math.max(masterRttMax, nowMs() - q);
        for (const p of s.peers) {
          lagMax = Math.max(lagMax, p.lagMs ?? 0);
          queueMax = Math.max(queueMax, p.queueDepth);
        }
        await sleep(100);
      }
    });
    const start = nowMs() + 50;
    for (let r = 0; r < rounds; r++) {
      const wait = start + r * o.interval - nowMs();
      if (wait > 0) await sleep(wait);
      commits.push(await gen.call({ set: 'persist4', bump: { from: (markers - firstMarker + r) * count, count, n: o.entries }, add: [markerAddr(markers + r)] }));
    }
    markers += rounds;
    try {
      await until(`the backup applying ${rounds} rounds of ${count}`, 120_000, 20, async () => (arrivals.length >= rounds ? true : undefined));
    } finally {
      done = true;
      await Promise.all([watchBackup, watchMaster]);
    }
    const wallMs = arrivals.at(-1)! - w0;
    const cpu = { m: cpuMs(mPid) - c0.m, b: cpuMs(bPid) - c0.b, g: cpuMs(gen.pid) - c0.g };
    const changes = rounds * (count + 1);
    const delays = commits.map((c, i) => arrivals[i]! - c.tEnd);
    // From the first commit to the last round applied on the backup: a lower bound that includes one
    // replication delay (up to a poll interval of waiting), approaching the sustained rate as rounds grow.
    const deliveredPerS = changes / ((arrivals.at(-1)! - commits[0]!.tStart) / 1000);
    const offeredPerS = rounds > 1 ? ((rounds - 1) * (count + 1)) / ((commits.at(-1)!.tEnd - commits[0]!.tEnd) / 1000) : NaN;
    const commitMs = commits.map((c) => c.tEnd - c.tStart);
    const netMasterMs = cpu.m - (idlePct / 100) * wallMs;
    return {
      count,
      rounds,
      changes,
      offeredPerS,
      deliveredPerS,
      delays,
      lagMax,
      queueMax,
      backupRttMax,
      masterRttMax,
      commitMs,
      wallMs,
      cpu,
      masterPer1000: (cpu.m / changes) * 1000,
      masterNetPer1000: (netMasterMs / changes) * 1000,
      backupPer1000: (cpu.b / changes) * 1000,
    };
  };
  type Phase = Awaited<ReturnType<typeof throughput>>;
  const describePhase = (p: Phase, tag = ''): string =>
    `  ${tag}${f0(p.count)} changes/round x ${p.rounds}: offered ${f0(p.offeredPerS)}/s (commit ${f0(Math.max(...p.commitMs))} ms max), ` +
    `delivered ${f0(p.deliveredPerS)}/s (first commit to last applied); commit -> backup per round ${p.delays.map((x) => f0(x)).join(' ')} ms; ` +
    `master lag max ${f0(p.lagMax)} ms, queue max ${f0(p.queueMax)}; status round trip max: master ${f0(p.masterRttMax)} ms, backup ${f0(p.backupRttMax)} ms; CPU per 1,000 changes: master ${f1(p.masterPer1000)} ms ` +
    `(${f1(p.masterNetPer1000)} beyond idle polling), backup ${f1(p.backupPer1000)} ms, generator ${f1((p.cpu.g / p.changes) * 1000)} ms`;

  // ---- the master ----
  progress('starting the master');
  const m1 = await startMaster('m1', PORT, false);
  const master = m1.d;
  details.push(`master first full poll (${f0(o.entries)} nft + ${f0(o.tables * o.perTable)} recent), from spawn: ${f2(m1.firstPollS)} s`);
  await sleep(o.interval * 1.5); // let the fixed-rate timer settle after the first poll

  let idleAll: Awaited<ReturnType<typeof idle>> | undefined;
  if (o.phases.has('idle')) {
    progress(`idle CPU, everything, ${o.idleS} s`);
    idleAll = await idle(master, o.idleS);
    rows.push({
      figure: `idle poll, ${f0(o.entries)} nft + ${f0(o.tables * o.perTable)} recent`,
      value: idleText(idleAll),
      target: '(info)',
    });
  }

  // ---- a fresh backup: snapshot of everything ----
  progress('snapshot (everything) to a fresh backup');
  const s1 = await freshBackup('b1', master, PORT, false);
  let backup = s1.d;
  if (o.phases.has('snapshot')) {
    rows.push({
      figure: `snapshot to a fresh backup, ${f0(s1.entries)} entries (${s1.tables} tables)`,
      value: `${f2(s1.logS)} s`,
      target: '(info)',
    });
    details.push(
      `snapshot (everything): backup log Connected -> snapshot from ${f2(s1.logS)} s; master log connected -> sent ${f2(s1.masterLogS)} s; ` +
        `backup spawn -> status shows it ${f2(s1.hostS)} s; backup CPU since spawn ${f0(s1.backupCpuMs)} ms, master CPU meanwhile ${f0(s1.masterCpuMs)} ms; count nft ${f0(s1.nftCount)}`,
    );
  }

  /** `rate` random instants in each configured interval from now, unrelated to the master's poll phase. */
  const sampleTimes = (n: number): number[] => {
    const start = nowMs() + 100;
    const out: number[] = [];
    for (let s = 0; out.length < n; s++) {
      const xs = Array.from({ length: Math.min(o.rate, n - out.length) }, () => Math.random() * o.interval).sort((a, b) => a - b);
      for (const x of xs) out.push(start + s * o.interval + x);
    }
    return out;
  };
  /**
   * Latency samples: `write` makes the k-th change in the master's kernel (returning when, epoch ms);
   * the k-th new entry in the backup's store is the k-th sample, since a poll takes a prefix of them.
   */
  const measure = async (b: Daemon, samples: number, write: (k: number) => Promise<number>, timeoutMs = 30_000): Promise<number[]> => {
    const base = (await status(b)).store.entries;
    const times = sampleTimes(samples);
    const t0s: number[] = [];
    const t1s: number[] = [];
    let done = false;
    const watch = background(async () => {
      while (!done) {
        const s = await status(b);
        const at = nowMs();
        const n = Math.min(s.store.entries - base, t0s.length);
        while (t1s.length < n) t1s.push(at);
        if (t1s.length >= samples) return;
        await sleep(5);
      }
    });
    for (let k = 0; k < times.length; k++) {
      const wait = times[k]! - nowMs();
      if (wait > 0) await sleep(wait);
      t0s.push(await write(k));
    }
    try {
      await until('latency samples to arrive', timeoutMs, 20, async () => (t1s.length >= samples ? true : undefined));
    } finally {
      done = true;
      await watch;
    }
    return t0s.map((t0, k) => t1s[k]! - t0);
  };

  // ---- latency ----
  if (o.phases.has('latency')) {
    progress(`latency, recent, ${o.samples} samples`);
    const recentLat = await measure(backup, o.samples, async (k) => {
      const t0 = nowMs();
      recentWrite(join(hm.procDir, 'lat0'), `+${latRecentAddr(k)}`);
      return t0;
    });
    progress(`latency, nft, ${o.samples} samples`);
    const nftLat = await measure(backup, o.samples, async (k) => (await gen.call({ set: 'latset', add: [latNftAddr(k)] })).tStart);
    progress(`latency, nft, the ${o.entries}-element set, ${o.samples} samples`);
    const bigLat = await measure(backup, o.samples, async (k) => (await gen.call({ set: 'persist4', add: [latBigAddr(k)] })).tStart);
    const bound = o.interval + TARGET_LATENCY_SLACK_MS;
    for (const [what, xs] of [
      ['recent (table lat0)', recentLat],
      ['nft (small set latset)', nftLat],
      [`nft (new element in persist4, ${f0(o.entries)})`, bigLat],
    ] as const) {
      const s = [...xs].sort((a, b) => a - b);
      rows.push({ figure: `latency kernel -> backup copy, ${what}, p50`, value: `${f0(pct(s, 50))} ms`, target: '(info)' });
      rows.push({
        figure: `latency kernel -> backup copy, ${what}, p99`,
        value: `${f0(pct(s, 99))} ms (max ${f0(s.at(-1)!)}, min ${f0(s[0]!)}, n ${s.length})`,
        target: `<= ${f0(bound)} ms`,
        met: pct(s, 99) <= bound,
      });
    }
  }

  // ---- throughput ----
  const idlePct = idleAll?.pct ?? 0;
  const unkeyedPhases: Phase[] = [];
  if (o.phases.has('throughput')) {
    for (const r of o.rounds) {
      progress(`throughput, ${r.count} changes x ${r.rounds} rounds`);
      unkeyedPhases.push(await throughput(master, backup, r.count, r.rounds, idlePct));
      await sleep(o.interval);
    }
    for (const p of unkeyedPhases) details.push(describePhase(p));
    // The best sustained rate among phases that kept up (every round applied within two intervals).
    const kept = unkeyedPhases.filter((p) => Math.max(...p.delays) <= 2 * o.interval + 500);
    const best = kept.sort((a, b) => b.deliveredPerS - a.deliveredPerS)[0];
    const all = [...unkeyedPhases].sort((a, b) => b.deliveredPerS - a.deliveredPerS)[0]!;
    rows.push({
      figure: 'sustained change throughput (kept up: each round on the backup within 2 intervals)',
      value: best ? `${f0(best.deliveredPerS)} changes/s (${f0(best.count)}/round)` : `none kept up; best ${f0(all.deliveredPerS)}/s`,
      target: `>= ${f0(TARGET_CHANGES_PER_S)}/s`,
      met: best !== undefined && best.deliveredPerS >= TARGET_CHANGES_PER_S,
    });
    const ref = unkeyedPhases.find((p) => p.count === 50_000) ?? unkeyedPhases[0]!;
    rows.push({
      figure: `master CPU per 1,000 changes (${f0(ref.count)}/round)`,
      value: `${f1(ref.masterPer1000)} ms (${f1(ref.masterNetPer1000)} ms beyond idle polling)`,
      target: '(info)',
    });
    // The backup's copy agrees with the master's (every deadline moved, none lost), once quiet: a
    // dump that overlapped a commit may report part of it one poll late, so give it two polls and
    // wait until the backup has acknowledged everything.
    progress('comparing the copies');
    await sleep(o.interval * 2.5);
    await until('the backup to acknowledge everything', 60_000, 100, async () => {
      const st = await status(master);
      return st.peers.every((p) => (p.lagMs ?? 0) === 0 && p.queueDepth === 0) ? true : undefined;
    });
    const [mj, bj] = await Promise.all([askJson<ShowNftJson>(master, { cmd: 'show-nft' }), askJson<ShowNftJson>(backup, { cmd: 'show-nft' })]);
    const mset = new Map((mj.sets.find((s) => s.set === 'persist4')?.elements ?? []).map((e) => [e.addr, e.expiresAt]));
    const bset = bj.sets.find((s) => s.set === 'persist4')?.elements ?? [];
    // Ages travel as time left, measured when a frame is encoded and re-anchored when it is decoded,
    // so a backup's deadline ends up later by the time the change spent in transit (queues included).
    // Earlier than the master's by more than a second would be an update lost (rounds move deadlines
    // by whole seconds).
    let same = 0;
    let later = 0;
    let earlier = 0;
    let missing = 0;
    let worstLater = 0;
    for (const e of bset) {
      const m = mset.get(e.addr);
      if (m === undefined) {
        missing++;
        continue;
      }
      const d = (e.expiresAt ?? 0) - (m ?? 0);
      if (Math.abs(d) <= 1000) same++;
      else if (d > 0) later++;
      else earlier++;
      if (d > 0) worstLater = Math.max(worstLater, d);
    }
    missing += Math.max(0, mset.size - (bset.length - missing));
    details.push(
      `after the throughput phases: backup persist4 ${f0(bset.length)} elements, master ${f0(mset.size)}; deadlines within 1 s ${f0(same)}, ` +
        `later on the backup by > 1 s ${f0(later)} (the transit time: up to ${f0(worstLater)} ms), earlier by > 1 s ${f0(earlier)}, missing ${f0(missing)}`,
    );
    if (earlier > 0 || missing > 0) notes.push(`the backup's copy lacks updates after the throughput phases: ${earlier} deadlines behind the master's, ${missing} elements missing`);
  }

  // ---- idle, nft only ----
  let nftIdle: Awaited<ReturnType<typeof idle>> | undefined;
  if (o.phases.has('nft-idle') || o.phases.has('write') || o.phases.has('keyed')) {
    await ask(master, { cmd: 'stop-recent' }, false);
    await sleep(o.interval * 2.5);
  }
  if (o.phases.has('nft-idle')) {
    progress(`idle CPU, nft only, ${o.idleS} s`);
    nftIdle = await idle(master, o.idleS);
    rows.push({
      figure: `idle poll, ${f0(o.entries)} nft elements (recent stopped), ${o.interval} ms interval`,
      value: idleText(nftIdle),
      target: `<= ${TARGET_IDLE_PCT} %`,
      met: nftIdle.pct <= TARGET_IDLE_PCT,
    });
  }

  // ---- a fresh backup: snapshot of the nft set alone; write nft ----
  if (o.phases.has('snapshot') || o.phases.has('write')) {
    progress('snapshot (nft only) to a fresh backup');
    await backup.kill9();
    const s2 = await freshBackup('b2', master, PORT, false);
    backup = s2.d;
    rows.push({
      figure: `snapshot to a fresh backup, ${f0(s2.entries)} entries (${s2.tables} nft sets)`,
      value: `${f2(s2.logS)} s`,
      target: `<= ${TARGET_SNAPSHOT_S} s`,
      met: s2.logS <= TARGET_SNAPSHOT_S,
    });
    details.push(
      `snapshot (nft only): backup log ${f2(s2.logS)} s; master log ${f2(s2.masterLogS)} s; spawn -> status ${f2(s2.hostS)} s; ` +
        `backup CPU since spawn ${f0(s2.backupCpuMs)} ms, master CPU meanwhile ${f0(s2.masterCpuMs)} ms; count nft persist4 ${f0(s2.nftCount)}`,
    );
    if (s2.nftCount < o.entries) notes.push(`the fresh backup counts ${s2.nftCount} persist4 elements, fewer than ${o.entries}`);

    if (o.phases.has('write')) {
      progress('write nft');
      const bPid = pidOf(backup);
      const c0 = cpuMs(bPid);
      const t0 = nowMs();
      const r = await ask(backup, { cmd: 'write-nft' }, false, 300_000);
      const writeMs = nowMs() - t0;
      const cpu = cpuMs(bPid) - c0;
      const listed = JSON.parse(await bns.must('nft', ['-j', 'list', 'set', 'inet', 'lb', 'persist4'])) as { nftables: { set?: { elem?: unknown[] } }[] };
      const inKernel = listed.nftables.find((x) => x.set)?.set?.elem?.length ?? 0;
      const want = s2.nftCount;
      rows.push({
        figure: `write nft, ${f0(want)} entries into the backup's empty set`,
        value: `${f0(writeMs)} ms (backup CPU ${f0(cpu)} ms), set then holds ${f0(inKernel)}`,
        target: '(info)',
        met: r.status === 0 && inKernel === want ? undefined : false,
      });
      const line = backup.log().split('\n').find((l) => l.includes('write nft inet lb persist4'));
      details.push(`write nft: reply ${JSON.stringify(r.text)} status ${r.status}; ${line?.replace(/^\[[^\]]*\] \S+\s*: /, '') ?? '(no log line)'}`);
      if (r.status !== 0 || inKernel !== want) notes.push(`write nft: status ${r.status}, kernel set holds ${inKernel} of ${want}`);
    }
  }

  // ---- reference: the nft CLI ----
  if (o.phases.has('reference')) {
    progress('reference: nft -j list set');
    const runs: { real: number; cpu: number }[] = [];
    for (let i = 0; i < 3; i++) {
      const out = await mns.exec('bash', ['-c', 'TIMEFORMAT="%R %U %S"; time nft -j list set inet lb persist4 > /dev/null']);
      const m = /([\d.]+) ([\d.]+) ([\d.]+)\s*$/.exec(out.stderr);
      if (m) runs.push({ real: Number(m[1]) * 1000, cpu: (Number(m[2]) + Number(m[3])) * 1000 });
    }
    runs.sort((a, b) => a.cpu - b.cpu);
    const med = runs[Math.floor(runs.length / 2)];
    if (med) {
      rows.push({
        figure: `reference: nft -j list set of ${f0(o.entries)} elements (the CLI alternative)`,
        value: `${f0(med.cpu)} ms CPU, ${f0(med.real)} ms wall (median of ${runs.length})`,
        target: nftIdle ? `master: ${f1(nftIdle.perPollMs)} ms/poll` : '(info)',
      });
    }
  }

  // ---- keyed: HMAC on every frame ----
  let profile1: string | undefined;
  if (o.phases.has('keyed')) {
    progress('keyed master');
    await backup.kill9();
    await master.stop();
    profile1 = profileOf(master);
    const m2 = await startMaster('m2', KEYED_PORT, true);
    await sleep(o.interval * 1.5);
    const s3 = await freshBackup('b3', m2.d, KEYED_PORT, true);
    rows.push({
      figure: `keyed: snapshot to a fresh backup, ${f0(s3.entries)} entries (${s3.tables} tables)`,
      value: `${f2(s3.logS)} s`,
      target: o.phases.has('snapshot') ? `unkeyed: ${f2(s1.logS)} s` : '(info)',
    });
    details.push(`keyed snapshot: backup log ${f2(s3.logS)} s; master log ${f2(s3.masterLogS)} s; master CPU meanwhile ${f0(s3.masterCpuMs)} ms, backup CPU ${f0(s3.backupCpuMs)} ms`);
    if (!/\(authenticated\)/.test(m2.d.log())) notes.push('keyed phase: the master never logged an authenticated backup');
    const keyed: Phase[] = [];
    for (const r of o.keyedRounds) {
      progress(`keyed throughput, ${r.count} changes x ${r.rounds} rounds`);
      keyed.push(await throughput(m2.d, s3.d, r.count, r.rounds, idlePct));
      await sleep(o.interval);
    }
    for (const p of keyed) {
      details.push(describePhase(p, 'keyed: '));
      const plain = unkeyedPhases.find((u) => u.count === p.count);
      rows.push({
        figure: `keyed: master CPU per 1,000 changes (${f0(p.count)}/round), delivered`,
        value: `${f1(p.masterPer1000)} ms, ${f0(p.deliveredPerS)}/s`,
        target: plain ? `unkeyed: ${f1(plain.masterPer1000)} ms, ${f0(plain.deliveredPerS)}/s` : '(info)',
      });
    }
    await s3.d.kill9();
    await m2.d.stop();
    if (o.profile) details.push(`profile of the keyed master:\n${profileOf(m2.d)}`);
  } else {
    await backup.kill9();
    await master.stop();
    profile1 = profileOf(master);
  }

  // ---- the daemon's default poll_cpu_budget: costly sources polled less often ----
  if (o.phases.has('budget') && !budgetSupported) notes.push('this ssyncd has no poll_cpu_budget: budget phase skipped');
  if (o.phases.has('budget') && budgetSupported) {
    progress('default poll_cpu_budget');
    const m3 = await startMaster('m3', BUDGET_PORT, false, 'default');
    const s4 = await freshBackup('b4', m3.d, BUDGET_PORT, false);
    await sleep(12_000); // the first polls (full loads) stretch the intervals most; let them settle
    const id = await idle(m3.d, 2 * o.idleS);
    const n = Math.max(10, Math.round(o.samples / 2));
    const lat = (await measure(s4.d, n, async (k) => (await gen.call({ set: 'persist4', add: [latBigAddr(o.samples + k)] })).tStart, 120_000)).sort((a, b) => a - b);
    // The effective interval per source, from the master's log (the last word on each).
    const intervals = new Map<string, string>();
    const perSource = new Map<string, { intervalMs: number; costMs: number }>();
    for (const line of m3.d.log().split('\n')) {
      const m = /: polling (\S+) every (\d+) ms(?:: a poll costs (\d+) ms| again)/.exec(line);
      if (!m) continue;
      intervals.set(m[1]!, `${f0(Number(m[2]))} ms${m[3] ? ` (a poll cost ${m[3]} ms)` : ''}`);
      perSource.set(m[1]!, { intervalMs: Number(m[2]), costMs: Number(m[3] ?? 0) });
    }
    // The big set's own share and its effective interval: the budget is per source, and the target
    // (idle poll of 100,000 entries <= 5 %) is about that set.
    const big = perSource.get('nft/inet/lb/persist4');
    const bigInterval = big?.intervalMs ?? o.interval;
    if (big && big.costMs > 0) {
      const share = (big.costMs / big.intervalMs) * 100;
      rows.push({
        figure: `default poll_cpu_budget: idle, the ${f0(o.entries)}-element set alone (last poll's CPU / its interval)`,
        value: `${f2(share)} % of a core (${big.costMs} ms every ${f0(big.intervalMs)} ms)`,
        target: `<= ${TARGET_IDLE_PCT} %`,
        met: share <= TARGET_IDLE_PCT + 0.05,
      });
    }
    rows.push({
      figure: `default poll_cpu_budget: idle, everything (${f0(o.entries)} nft + ${f0(o.tables * o.perTable)} recent)`,
      // Polls are no longer one per interval here: CPU per poll would mislead.
      value: `${f2(id.pct)} % of a core (user ${f2((id.userPerPollMs / o.interval) * 100)} %)`,
      target: `(info: the budget is per source)`,
    });
    rows.push({
      figure: `default poll_cpu_budget: latency, new element in persist4, p50 / p99 (target: that set's effective interval + 50 ms)`,
      value: `${f0(pct(lat, 50))} / ${f0(pct(lat, 99))} ms (n ${lat.length})`,
      target: `<= ${f0(bigInterval + TARGET_LATENCY_SLACK_MS)} ms`,
      met: pct(lat, 99) <= bigInterval + TARGET_LATENCY_SLACK_MS,
    });
    details.push(
      `default poll_cpu_budget: effective poll intervals ${[...intervals].map(([k, v]) => `${k} ${v}`).join('; ') || `all ${o.interval} ms`}; ` +
        `snapshot to a fresh backup ${f2(s4.logS)} s (${f0(s4.entries)} entries)`,
    );
    await s4.d.kill9();
    await m3.d.stop();
  }
  if (profile1) details.push(`profile of the unkeyed master (whole run):\n${profile1}`);
  if (o.profile) {
    details.push(
      'note: the kernel time of a set dump is spent in recvmsg(2) inside the netlink addon\'s poll callback, outside JavaScript, ' +
        'which V8 counts as (idle): see the user/kernel split of the idle figures for it',
    );
  }

  // ---- daemon log noise ----
  const warnings = daemons.flatMap((d) => d.log().split('\n').filter((l) => /\] (warn|error)\s*:/.test(l)).map((l) => `${d.spec.name}: ${l}`));
  const noWarn = warnings.filter((l) => !/no key file: backups are not authenticated/.test(l));
  if (noWarn.length) notes.push(`daemon warnings/errors (${noWarn.length}):\n    ${noWarn.slice(0, 12).join('\n    ')}`);

  // ---- report ----
  const w1 = Math.max(...rows.map((r) => r.figure.length));
  const w2 = Math.max(...rows.map((r) => r.value.length));
  const w3 = Math.max(...rows.map((r) => r.target.length));
  const out = [
    `${'figure'.padEnd(w1)}  ${'measured'.padEnd(w2)}  ${'target'.padEnd(w3)}  met?`,
    ...rows.map((r) => `${r.figure.padEnd(w1)}  ${r.value.padEnd(w2)}  ${r.target.padEnd(w3)}  ${r.met === undefined ? '' : r.met ? 'yes' : 'NO'}`),
    '',
    'details:',
    ...details.map((d) => (d.startsWith('  ') ? d : `  ${d}`)),
    ...(notes.length ? ['', 'notes:', ...notes.map((n) => `  ${n}`)] : []),
    '',
    `total bench time ${f1((Date.now() - t00) / 1000)} s; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}${o.profile ? `; profiles in ${profDir}` : ''}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (aborting) return;
    aborting = true;
    process.stderr.write(`${sig}: cleaning up\n`);
    void cleanup().then(() => process.exit(130));
  });
}
process.on('unhandledRejection', (e) => {
  if (aborting) return;
  aborting = true;
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  void cleanup().then(() => process.exit(1));
});

main()
  .then(cleanup)
  .catch(async (e: unknown) => {
    if (aborting) return; // a signal's cleanup is under way and exits
    aborting = true;
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    await cleanup();
    process.exit(1);
  });
