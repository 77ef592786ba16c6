// The director pair of examples/director-pair/, built inside the lab guest: a client, two directors
// (lb1, lb2) and two reals as network namespaces on two bridges (LVS-NAT), each director running the
// whole suite from the recipe's own files (surealived, ipvssync with the kernel's sync daemons,
// ssyncd, keepalived with pair-notify.sh). A run establishes stickiness of every kind, drains a real,
// holds connections open, crashes the master (keepalived stopped and killed, every process killed,
// links down) and measures what survived on the backup; with `failback` the old master is rebuilt
// empty, catches up as a backup, and the new master is crashed in turn.
// A control run (`suite: false`) has keepalived, surealived and ipvssync only: no ssyncd, no kernel
// sync daemons, no replicated override; it shows that the checks can fail.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from './ipvssync-lab.js';
import type { Held as HeldState } from './pair-client.js';
import { hzFromSamples, parseTimerListJiffies } from '../../../session-sync/recent/jiffies.js';
import { parseRecentTable } from '../../../session-sync/recent/parse.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const RECIPE = join(REPO, 'examples', 'director-pair');
const GUEST = join(REPO, 'dist', 'test', 'kernel', 'guest');
const VIP = '10.0.0.100';
const DIRS = { lb1: { front: '10.0.0.2', back: '10.1.0.2' }, lb2: { front: '10.0.0.3', back: '10.1.0.3' } } as const;
type Dir = keyof typeof DIRS;
const REALS = { real1: '10.1.0.11', real2: '10.1.0.12' } as const;
/** surealived.xml's virtuals and how `ipvsadm -Ln` heads their services. */
const VIRTUALS: readonly [string, string][] = [
  ['web', `TCP  ${VIP}:80`],
  ['rec-real1', 'FWM  1'],
  ['rec-real2', 'FWM  2'],
  ['rec-new', 'FWM  3'],
  ['map-real1', 'FWM  11'],
  ['map-real2', 'FWM  12'],
  ['map-new', 'FWM  13'],
];
/** Sticky client source addresses; the held connections come from 10.0.0.10. */
const SOURCES = Array.from({ length: 10 }, (_, i) => `10.0.0.${20 + i}`);
/** The persistence kinds of the recipe, by VIP port. */
export const KINDS = { pers: 80, recent: 81, nftmap: 82 } as const;
export type Kind = keyof typeof KINDS;

export interface PairRunOptions {
  readonly work: string;
  /** false: the control run (keepalived, surealived, ipvssync only). */
  readonly suite: boolean;
  readonly failback: boolean;
  /** VRRP v3 with 0.25 s adverts (unicast) instead of v2 at 1 s. */
  readonly fast?: boolean;
  readonly log: (s: string) => void;
}

export interface CrashResult {
  /** From the crash until the VIP is on the other director (ms). */
  vipMs: number;
  /** Longest run of failed new connections around the crash (ms), and how many failed. */
  outageMs: number;
  outageFails: number;
  /** Sticky clients per kind that reached the same real afterwards, of how many. */
  sticky: Record<Kind, { same: number; of: number; moved: string[] }>;
  /** Held connections that survived (every echo right, in order), of how many; their longest stall. */
  held: { survived: number; of: number; maxStallMs: number; problems: string[] };
  /** The drained real on the new master: its weight in the kernel, and whether the kernel equals surealived's view. */
  drained: { weight: number | null; kernelMatchesChecker: boolean; detail: string };
  /** Remaining life of replicated entries on the new master minus what it was on the old one (ms, per kind). */
  lifeDriftMs: { nftmap: number[]; pers: number[]; recent: number[] };
  /** Diagnostics: both directors' connection tables just before the crash. */
  connTables: string;
}

export interface PairRunResult {
  suite: boolean;
  fast: boolean;
  crash?: CrashResult;
  failback?: CrashResult;
  /** Diagnostics: per-process log tails when something failed. */
  notes: string[];
}

// ---------------------------------------------------------------- shell

function sh(cmd: string): string {
  try {
    return execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const x = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd}: ${x.stderr || x.stdout || x.message}`);
  }
}
const nsSh = (ns: string, cmd: string): string => sh(`ip netns exec ${ns} sh -c '${cmd.replace(/'/g, `'\\''`)}'`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `f` (a throw counts as not yet) until it holds; throws naming `what` after `ms`. */
async function until(what: string, ms: number, f: () => boolean | Promise<boolean>, stepMs = 100): Promise<void> {
  const ok = await waitFor(async () => {
    try {
      return await f();
    } catch {
      return false;
    }
  }, ms, stepMs);
  if (!ok) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
}

function spawnIn(ns: string, name: string, cmd: readonly string[], logFile: string): Proc {
  const fd = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', fd, fd], env: { ...process.env, NO_COLOR: '1' } });
  closeSync(fd);
  return { name, child, logFile };
}

const tail = (f: string, n = 1500): string => (existsSync(f) ? readFileSync(f, 'utf8').slice(-n) : '(no log)');

// ---------------------------------------------------------------- topology

function bridges(): void {
  for (const br of ['brf', 'brb']) sh(`ip link add ${br} type bridge && ip link set ${br} up`);
}

function plug(ns: string, ifName: string, bridge: string, addrs: readonly string[]): void {
  const host = `${ns}-${ifName}`;
  sh(`ip link add ${host} type veth peer name ${ifName} netns ${ns} && ip link set ${host} master ${bridge} up`);
  for (const a of addrs) sh(`ip -n ${ns} addr add ${a} dev ${ifName}`);
  sh(`ip -n ${ns} link set ${ifName} up`);
}

function newNs(ns: string): void {
  sh(`ip netns add ${ns} && ip -n ${ns} link set lo up`);
}

function buildDirectorNs(d: Dir): void {
  newNs(d);
  plug(d, 'eth0', 'brf', [`${DIRS[d].front}/24`]);
  plug(d, 'eth1', 'brb', [`${DIRS[d].back}/24`]);
  // The recipe's sysctls, in this namespace.
  for (const line of readFileSync(join(RECIPE, 'sysctl.conf'), 'utf8').split('\n')) {
    const m = /^\s*([\w.]+)\s*=\s*(.+?)\s*$/.exec(line);
    if (m) nsSh(d, `sysctl -q -w "${m[1]}=${m[2]}"`);
  }
}

/**
 * Deletes a namespace and its veths. The host ends are deleted first (that takes the pair): a
 * namespace that some process still holds would otherwise keep them, and the next run could not
 * create them again.
 */
async function destroyNs(ns: string): Promise<void> {
  for (const ifName of ['eth0', 'eth1']) sh(`ip link del ${ns}-${ifName} 2>/dev/null || true`);
  sh(`ip netns del ${ns} 2>/dev/null || true`);
  await until(`${ns}'s veths to go`, 30_000, () => !sh('ip -o link show').includes(`${ns}-eth`));
}

// ---------------------------------------------------------------- a director

/** The recipe's files for one director, with every absolute path moved under its own root. */
function render(text: string, root: string): string {
  return text
    .replace(/(^|[\s"'=>])\/(etc|var\/lib|var\/log|run)\//gm, `$1${root}/$2/`)
    .replace(/\bssyncdctl -s\b/g, `${process.execPath} ${join(REPO, 'dist', 'ssyncdctl', 'cli.js')} -s`);
}

class Director {
  readonly root: string;
  readonly procs: Proc[] = [];
  private keepalived: Proc | undefined;

  constructor(
    readonly name: Dir,
    work: string,
    readonly o: PairRunOptions,
  ) {
    this.root = join(work, name);
  }

  path(p: string): string {
    return join(this.root, p);
  }

  setup(): void {
    const r = this.root;
    for (const d of ['etc/surealived', 'etc/ssyncd', 'etc/keepalived', 'var/lib/surealived/diffs', 'var/lib/ssyncd', 'var/log/surealived/stats', 'var/log/surealived/comm', 'run/ssyncd', 'run/keepalived']) mkdirSync(join(r, d), { recursive: true });
    const put = (src: string, dst: string, mode = 0o644, edit: (s: string) => string = (s) => s): void => {
      writeFileSync(join(r, dst), edit(render(readFileSync(join(RECIPE, src), 'utf8'), r)));
      chmodSync(join(r, dst), mode);
    };
    put('surealived.xml', 'etc/surealived/surealived.xml');
    put('surealived.cfg', 'etc/surealived/surealived.cfg', 0o644, (s) =>
      this.o.suite ? s : s.replace(/^ipvs_sync_daemon .*$/m, 'ipvs_sync_daemon none'),
    );
    put(`ssyncd-${this.name}.cfg`, 'etc/ssyncd/ssyncd.cfg');
    put('pair-notify.sh', 'etc/surealived/pair-notify.sh', 0o755, (s) => (this.o.suite ? s : s.replace(/^case "\$STATE" in$/m, 'exit 0\ncase "$STATE" in')));
    put(`keepalived-${this.name}.conf`, 'etc/keepalived/keepalived.conf', 0o644, (s) => (this.o.fast ? fastVrrp(s, this.name) : s));
    writeFileSync(join(r, 'etc/ssyncd/ssyncd.key'), 'the director pair lab key, 32 bytes+\n', { mode: 0o600 });
    nsSh(this.name, `iptables-restore --noflush < ${join(RECIPE, 'iptables.rules')}`);
    nsSh(this.name, `nft -f ${join(RECIPE, 'nftables.conf')}`);
  }

  /** surealived, then ipvssync once the first hand-off exists (as the original, it exits without one), and ssyncd (with the suite). */
  async startSuite(): Promise<void> {
    const cfg = this.path('etc/surealived/surealived.cfg');
    const node = process.execPath;
    this.procs.push(spawnIn(this.name, 'surealived', [node, join(REPO, 'dist/surealived/cli.js'), '-c', cfg, this.path('etc/surealived/surealived.xml')], this.path('var/log/surealived.out')));
    await until(`${this.name}'s first hand-off`, 60_000, () => existsSync(this.path('var/lib/surealived/ipvsfull.cfg')), 200);
    this.procs.push(spawnIn(this.name, 'ipvssync', [node, join(REPO, 'dist/ipvssync/cli.js'), '-c', cfg], this.path('var/log/ipvssync.out')));
    if (this.o.suite) this.procs.push(spawnIn(this.name, 'ssyncd', [node, join(REPO, 'dist/ssyncd/cli.js'), '-c', this.path('etc/ssyncd/ssyncd.cfg')], this.path('var/log/ssyncd.out')));
  }

  startKeepalived(): void {
    const p = spawnIn(
      this.name,
      'keepalived',
      ['keepalived', '-P', '-n', '-l', '-D', '-G', '-f', this.path('etc/keepalived/keepalived.conf'), '-p', this.path('run/keepalived/keepalived.pid'), '-r', this.path('run/keepalived/vrrp.pid')],
      this.path('var/log/keepalived.out'),
    );
    this.keepalived = p;
    this.procs.push(p);
  }

  holdsVip(): boolean {
    return nsSh(this.name, 'ip -o addr show dev eth0').includes(`${VIP}/`);
  }

  ctl(...args: string[]): string {
    return nsSh(this.name, `${process.execPath} ${join(REPO, 'dist/ssyncdctl/cli.js')} -s ${this.path('run/ssyncd/ssyncd.sock')} ${args.join(' ')}`);
  }

  /**
   * A crash as the facts file defines it: keepalived stopped (so its parent cannot respawn the VRRP
   * child) and killed, every process of the suite killed, both links down. The addresses stay, as
   * they would on a dead machine; only the links going down takes them off the wire.
   */
  crash(): void {
    const pids = [this.path('run/keepalived/keepalived.pid'), this.path('run/keepalived/vrrp.pid')].map((f) => (existsSync(f) ? readFileSync(f, 'utf8').trim() : '')).filter(Boolean);
    if (pids.length) sh(`kill -STOP ${pids.join(' ')} 2>/dev/null; kill -9 ${pids.join(' ')} 2>/dev/null; true`);
    for (const p of this.procs) p.child.kill('SIGKILL');
    sh(`ip -n ${this.name} link set eth0 down && ip -n ${this.name} link set eth1 down`);
  }

  logs(): string {
    const files: [string, string][] = [
      ...this.procs.map((p): [string, string] => [p.name, p.logFile]),
      ['ssyncd.log', this.path('var/log/ssyncd.log')],
      ['notify', this.path('var/log/surealived/pair-notify.log')],
    ];
    return files.map(([n, f]) => `--- ${this.name} ${n} ---\n${tail(f, n === 'keepalived' ? 4000 : 2000)}`).join('\n');
  }

  /** `rset` on this director's surealived control port. */
  async control(line: string): Promise<string> {
    // The control port listens on 127.0.0.1 inside the namespace: ask from there.
    return nsSh(this.name, `printf '%s\\n' '${line}' | ${process.execPath} -e "${CONTROL_CLIENT}"`);
  }
}

/** A one-shot control-port client for `node -e` inside a namespace: a line in, the reply out. */
const CONTROL_CLIENT = [
  "const s=require('net').createConnection({host:'127.0.0.1',port:1337});let o='';",
  "process.stdin.on('data',d=>s.write(d));",
  "s.on('data',d=>{o+=d;if(o.includes('_SD_CMD_END_')){process.stdout.write(o);s.destroy();}});",
  "s.on('error',e=>{console.error(e.message);process.exit(1)});setTimeout(()=>{process.stdout.write(o);process.exit(0)},5000).unref();",
].join('');

/** VRRPv3, adverts every 0.25 s, unicast to the peer (the facts' fast setting). */
function fastVrrp(conf: string, me: Dir): string {
  const peer: Dir = me === 'lb1' ? 'lb2' : 'lb1';
  return conf
    .replace(/# vrrp_version 3/, 'vrrp_version 3')
    .replace(/advert_int 1\b/, `advert_int 0.25\n  unicast_src_ip ${DIRS[me].front}\n  unicast_peer {\n    ${DIRS[peer].front}\n  }`);
}

// ---------------------------------------------------------------- the client

class Client {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  private nextId = 1;
  readonly ready: Promise<void>;

  constructor(logFile: string) {
    const fd = openSync(logFile, 'a');
    this.child = spawn('ip', ['netns', 'exec', 'client', process.execPath, join(GUEST, 'pair-client.js')], { stdio: ['pipe', 'pipe', fd] });
    closeSync(fd);
    let readyFn: () => void = () => undefined;
    this.ready = new Promise((r) => (readyFn = r));
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const m = JSON.parse(l) as { id: number; result: unknown };
      if (m.id === 0) return readyFn();
      this.waiting.get(m.id)?.(m.result);
      this.waiting.delete(m.id);
    });
  }

  call<T>(req: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((r) => {
      this.waiting.set(id, r as (v: unknown) => void);
      this.child.stdin!.write(`${JSON.stringify({ id, ...req })}\n`);
    });
  }

  ask(src: string, kind: Kind): Promise<string> {
    return this.call({ op: 'ask', src, port: KINDS[kind] });
  }

  close(): void {
    this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------- kernel views

/** `ipvsadm -Lnc` templates of a namespace: client address -> {real, expiry s} (persistence, port 80). */
function templates(ns: string): Map<string, { real: string; expireS: number }> {
  const out = new Map<string, { real: string; expireS: number }>();
  // "TCP 29:58 NONE 10.0.0.20:0 10.0.0.100:80 10.1.0.11:80" (a synced template shows ASSURED)
  for (const line of nsSh(ns, 'ipvsadm -Lnc').split('\n')) {
    const m = /^TCP\s+(\d+):(\d+)\s+[A-Z_]+\s+([\d.]+):0\s+10\.0\.0\.100:80\s+([\d.]+):80/.exec(line.trim());
    if (m) out.set(m[3]!, { real: m[4]!, expireS: Number(m[1]) * 60 + Number(m[2]) });
  }
  return out;
}

/** Established connections from 10.0.0.10 in a namespace's IPVS table. */
function establishedFromHolder(ns: string): number {
  return nsSh(ns, 'ipvsadm -Lnc').split('\n').filter((l) => /ESTABLISHED\s+10\.0\.0\.10:/.test(l)).length;
}

/** The nft map's elements: client -> {mark, expires ms}. */
function mapElements(ns: string): Map<string, { mark: number; expiresMs: number }> {
  const j = JSON.parse(nsSh(ns, 'nft -j list map ip lbpair client_be')) as { nftables: { map?: { elem?: [unknown, number][] } }[] };
  const out = new Map<string, { mark: number; expiresMs: number }>();
  for (const [k, v] of j.nftables.find((x) => x.map)?.map?.elem ?? []) {
    const e = k as { elem?: { val: string; expires?: number } } | string;
    if (typeof e === 'string') out.set(e, { mark: v, expiresMs: 0 });
    else if (e.elem) out.set(e.elem.val, { mark: v, expiresMs: (e.elem.expires ?? 0) * 1000 });
  }
  return out;
}

/** Resolves with the time `ip monitor` reports `addr` added in namespace `ns`. */
function watchAddress(ns: string, addr: string): { at: Promise<number>; stop: () => void } {
  const child = spawn('ip', ['-n', ns, 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const at = new Promise<number>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (!l.startsWith('Deleted') && l.includes(` ${addr}/`)) resolve(Date.now());
    });
  });
  return { at, stop: () => void child.kill('SIGKILL') };
}

/** Last hit (jiffies) per client on the recent lists be1/be2 of a namespace. */
function recentLastSeen(ns: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of ['be1', 'be2']) {
    for (const e of parseRecentTable(t, nsSh(ns, `cat /proc/net/xt_recent/${t}`)).entries) out.set(`${t} ${e.addr}`, e.lastSeen);
  }
  return out;
}

/** The kernel's HZ, from /proc/timer_list read twice (both directors share the guest's jiffies). */
async function kernelHz(): Promise<number> {
  const sample = (): { jiffies: number; monoMs: number } => ({ jiffies: parseTimerListJiffies(readFileSync('/proc/timer_list', 'utf8')), monoMs: performance.now() });
  const a = sample();
  await sleep(1000);
  return hzFromSamples(a, sample());
}

/** Real weights of a virtual in the kernel (`ipvsadm -Ln`): real address -> weight. */
function kernelWeights(ns: string, service: string): Map<string, number> {
  const out = new Map<string, number>();
  let inService = false;
  for (const line of nsSh(ns, 'ipvsadm -Ln').split('\n')) {
    const t = line.trim();
    if (/^(TCP|UDP|FWM)\s/.test(t)) inService = t.startsWith(`${service} `);
    const m = /^->\s+([\d.]+):\d+\s+\w+\s+(\d+)/.exec(t);
    if (inService && m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

// ---------------------------------------------------------------- the run

export async function runPair(o: PairRunOptions): Promise<PairRunResult> {
  const result: PairRunResult = { suite: o.suite, fast: o.fast ?? false, notes: [] };
  const t0 = Date.now();
  const say = (s: string): void => o.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${o.suite ? 'suite' : 'control'}${o.fast ? ' fast' : ''}: ${s}`);
  mkdirSync(o.work, { recursive: true });
  const dirs: Record<Dir, Director> = { lb1: new Director('lb1', o.work, o), lb2: new Director('lb2', o.work, o) };
  const reals: Proc[] = [];
  let client: Client | undefined;
  try {
    say('topology');
    bridges();
    newNs('client');
    plug('client', 'eth0', 'brf', ['10.0.0.10/24', ...SOURCES.map((s) => `${s}/24`)]);
    for (const [name, addr] of Object.entries(REALS)) {
      newNs(name);
      plug(name, 'eth0', 'brb', [`${addr}/24`]);
      sh(`ip -n ${name} route add default via 10.1.0.1`);
      reals.push(spawnIn(name, name, [process.execPath, join(GUEST, 'pair-real.js'), name], join(o.work, `${name}.log`)));
    }
    for (const d of Object.values(dirs)) {
      buildDirectorNs(d.name);
      d.setup();
      await d.startSuite();
    }
    client = new Client(join(o.work, 'client.log'));
    await client.ready;
    // Both directors' IPVS tables programmed from their own checks before any VRRP election.
    for (const d of Object.values(dirs)) {
      await until(`${d.name}'s IPVS table`, 90_000, () => kernelWeights(d.name, `TCP  ${VIP}:80`).size === 2 && kernelWeights(d.name, 'FWM  13').size === 2, 500);
    }
    if (o.suite) {
      for (const d of Object.values(dirs)) await until(`${d.name}'s kernel sync daemons`, 30_000, () => nsSh(d.name, 'ipvsadm -L --daemon').includes('backup sync daemon'), 500);
    }
    say('keepalived');
    // lb1 first, and lb2 once lb1 holds the addresses: with nopreempt whoever is master first stays
    // master, and on a loaded machine a head start of a second or two is not enough.
    dirs.lb1.startKeepalived();
    await until('the VIP on lb1', 90_000, () => dirs.lb1.holdsVip(), 250);
    dirs.lb2.startKeepalived();
    if (o.suite) await until('lb1 is the ssyncd master', 90_000, () => dirs.lb1.ctl('show mode').trim() === 'master', 250);
    say('lb1 is the master');
    result.crash = await crashAndCheck(o, dirs.lb1, dirs.lb2, client, say, result.notes, true);
    if (o.failback && o.suite) {
      say('failback: lb1 comes back empty');
      const lb1 = new Director('lb1', join(o.work, 'again'), o);
      dirs.lb1 = lb1;
      await destroyNs('lb1');
      buildDirectorNs('lb1');
      lb1.setup();
      await lb1.startSuite();
      await until("lb1's IPVS table again", 90_000, () => kernelWeights('lb1', `TCP  ${VIP}:80`).size === 2, 500);
      // Before lb1 may take traffic back: ssyncd's copy is live and the kernel has the held connections.
      await until("lb1's ssyncd backup live", 60_000, () => /live|connected/.test(lb1.ctl('status')), 500);
      await until('the held connections in lb1\'s connection table', 60_000, () => establishedFromHolder('lb1') >= 4, 500);
      lb1.startKeepalived();
      await sleep(3000); // nopreempt: lb1 stays backup; give VRRP time to settle before the next crash
      if (lb1.holdsVip()) throw new Error('lb1 took the VIP back despite nopreempt');
      result.failback = await crashAndCheck(o, dirs.lb2, lb1, client, say, result.notes, false);
    }
  } catch (e) {
    result.notes.push(`run failed: ${(e as Error).message}\n${Object.values(dirs).map((d) => d.logs()).join('\n')}`);
    say(`run failed: ${(e as Error).message}`);
  } finally {
    client?.close();
    for (const d of Object.values(dirs)) for (const p of d.procs) p.child.kill('SIGKILL');
    for (const p of reals) p.child.kill('SIGKILL');
    await sleep(300);
    for (const ns of ['client', 'lb1', 'lb2', 'real1', 'real2']) await destroyNs(ns).catch((e: Error) => result.notes.push(`cleanup: ${e.message}`));
    sh('ip link del brf 2>/dev/null; ip link del brb 2>/dev/null; true');
  }
  return result;
}

async function crashAndCheck(
  o: PairRunOptions,
  master: Director,
  backup: Director,
  client: Client,
  say: (s: string) => void,
  notes: string[],
  first: boolean,
): Promise<CrashResult> {
  // Stickiness: each source asks each kind twice (the second must agree with the first).
  const before = new Map<string, string>();
  if (first) {
    say('establishing stickiness');
    for (const kind of Object.keys(KINDS) as Kind[]) {
      for (const src of SOURCES) {
        const a = await client.ask(src, kind);
        const b = await client.ask(src, kind);
        if (!a.startsWith('real') || a !== b) throw new Error(`${kind} from ${src}: ${a} then ${b} (not sticky on the master itself)`);
        before.set(`${kind} ${src}`, a);
      }
    }
    // The operator drains real2 of `web` on the master; the override must be on the backup too.
    const r = await master.control(`rset vname=web raddr=${REALS.real2} rport=80 rstate=OFFLINE`);
    if (!/Set: /.test(r)) throw new Error(`rset: ${r}`);
    await client.call({ op: 'hold', src: '10.0.0.10', port: KINDS.pers, n: 4 });
  } else {
    say('checking stickiness before the second crash');
    for (const kind of Object.keys(KINDS) as Kind[]) for (const src of SOURCES) before.set(`${kind} ${src}`, await client.ask(src, kind));
  }
  const stickySnapshot = new Map(before);
  // Replication has had its chance: the backup holds every template, map element and list entry
  // (with the suite), or the same time has passed (control run).
  if (o.suite) {
    let missing = '';
    try {
      await until('templates and the map on the backup', 60_000, () => {
        const t = templates(backup.name);
        const m = mapElements(backup.name);
        missing = `templates missing for ${SOURCES.filter((s) => !t.has(s)).join(' ') || 'none'}; map elements missing for ${SOURCES.filter((s) => !m.has(s)).join(' ') || 'none'}`;
        return SOURCES.every((s) => t.has(s) && m.has(s));
      }, 500);
    } catch (e) {
      throw new Error(`${(e as Error).message}: ${missing}\n${backup.name} ipvsadm -Lnc:\n${nsSh(backup.name, 'ipvsadm -Lnc').slice(0, 3000)}\nnft:\n${nsSh(backup.name, 'nft list map ip lbpair client_be')}`);
    }
    await until('the held connections on the backup', 60_000, () => establishedFromHolder(backup.name) >= 4, 500);
    await until('the drain on the backup', 30_000, () => kernelWeights(backup.name, `TCP  ${VIP}:80`).get(REALS.real2) === 0, 500);
  } else await sleep(5000);
  const lifeBefore = { map: mapElements(master.name), tpl: templates(master.name), recent: recentLastSeen(master.name), at: Date.now() };
  const hz = await kernelHz();
  const connTables = `${master.name}:\n${nsSh(master.name, 'ipvsadm -Lnc').slice(0, 1500)}\n${backup.name}:\n${nsSh(backup.name, 'ipvsadm -Lnc').slice(0, 1500)}`;

  await client.call({ op: 'probe', src: '10.0.0.10', port: KINDS.nftmap, on: true });
  // The VIP's arrival as the kernel announces it (polling `ip addr` from here would add the time a
  // process takes to start under emulation, more when the suite keeps the guest busy).
  const vipSeen = watchAddress(backup.name, VIP);
  await sleep(1000);
  say(`crashing ${master.name}`);
  const crashAt = Date.now();
  master.crash();
  const vipAt = await Promise.race([vipSeen.at, sleep(60_000).then(() => 0)]);
  vipSeen.stop();
  if (!vipAt) throw new Error(`the VIP never reached ${backup.name} within 60 s`);
  const vipMs = vipAt - crashAt;
  say(`VIP on ${backup.name} after ${vipMs} ms`);
  if (o.suite) await until(`${backup.name} is the ssyncd master`, 90_000, () => backup.ctl('show mode').trim() === 'master', 200);
  // Remaining lives on the new master before any sticky client asks again (an ask refreshes them):
  // against the old master's, aged by the time since.
  const mapNow = mapElements(backup.name);
  const tplNow = templates(backup.name);
  const recentNow = recentLastSeen(backup.name);
  const elapsed = Date.now() - lifeBefore.at;
  // Let new connections settle, then stop probing.
  await sleep(3000);
  const probe = await client.call<{ fails: number; longestMs: number; runStart: number; firstFailAt: number; lastFailAt: number }>({ op: 'probe', on: false });
  const outageMs = probe.longestMs || (probe.fails ? probe.lastFailAt - probe.firstFailAt : 0);

  // Stickiness afterwards, asked in another order (odd sources first) so that a fresh round-robin
  // cannot reproduce the old mapping by chance.
  const order = [...SOURCES.filter((_, i) => i % 2 === 1), ...SOURCES.filter((_, i) => i % 2 === 0)];
  const sticky = {} as CrashResult['sticky'];
  for (const kind of Object.keys(KINDS) as Kind[]) {
    const moved: string[] = [];
    for (const src of order) {
      const now = await client.ask(src, kind);
      const was = stickySnapshot.get(`${kind} ${src}`);
      if (now !== was) moved.push(`${src}: ${was} -> ${now}`);
    }
    sticky[kind] = { same: SOURCES.length - moved.length, of: SOURCES.length, moved };
  }
  await sleep(1000);
  const heldStates = await client.call<HeldState[]>({ op: 'held' });
  const problems = heldStates.flatMap((h, i) => (h.broken || h.wrong || h.echoed < h.sent - 1 ? [`#${i} to ${h.real}: ${h.broken || 'open'}, ${h.echoed}/${h.sent} echoed, ${h.wrong} wrong`] : []));

  // The drained real on the new master, and its whole IPVS table against surealived's own view:
  // every real of every virtual at the weight `rlist` says (currwgt), no more, no fewer.
  const weights = kernelWeights(backup.name, `TCP  ${VIP}:80`);
  const mismatches: string[] = [];
  let rlistWeb = '';
  for (const [vname, service] of VIRTUALS) {
    const rlist = await backup.control(`rlist vname=${vname}`);
    if (vname === 'web') rlistWeb = rlist;
    const checker = new Map([...rlist.matchAll(/raddr=([\d.]+) rport=\d+ currwgt=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    const kernel = kernelWeights(backup.name, service);
    if (JSON.stringify([...checker].sort()) !== JSON.stringify([...kernel].sort())) mismatches.push(`${vname}: surealived ${JSON.stringify([...checker])}, kernel ${JSON.stringify([...kernel])}`);
  }
  const drained = {
    weight: weights.get(REALS.real2) ?? null,
    kernelMatchesChecker: mismatches.length === 0,
    detail: `web in the kernel ${JSON.stringify([...weights])}; ${mismatches.join('; ') || 'every virtual equal'}; surealived: ${rlistWeb.replace(/\n/g, ' | ').slice(0, 400)}`,
  };

  const lifeDriftMs = {
    nftmap: SOURCES.flatMap((s) => {
      const a = lifeBefore.map.get(s);
      const b = mapNow.get(s);
      return a && b ? [b.expiresMs - (a.expiresMs - elapsed)] : [];
    }),
    // ipvsadm shows seconds; a template is refreshed by each new connection, so only the ones no
    // later ask touched would compare: report the drift of all, informational.
    pers: SOURCES.flatMap((s) => {
      const a = lifeBefore.tpl.get(s);
      const b = tplNow.get(s);
      return a && b ? [(b.expireS - a.expireS) * 1000 + elapsed] : [];
    }),
    // xt_recent: the same guest kernel, so the same jiffies; a list entry's life is measured from its
    // last hit, so the drift is the backup's last hit minus the master's (stock module: the hit the
    // warm standby's `+addr` wrote).
    recent: [...lifeBefore.recent].flatMap(([k, j]) => {
      const b = recentNow.get(k);
      return b === undefined ? [] : [Math.round(((b - j) * 1000) / hz)];
    }),
  };
  if (Object.values(sticky).some((k) => k.same < k.of) || problems.length) notes.push(`${master.name} -> ${backup.name}:\n${backup.logs()}`);
  return {
    vipMs,
    outageMs,
    outageFails: probe.fails,
    sticky,
    held: { survived: heldStates.length - problems.length, of: heldStates.length, maxStallMs: Math.max(0, ...heldStates.map((h) => h.maxStallMs)), problems },
    drained,
    lifeDriftMs,
    connTables,
  };
}

/** Is the control port of a namespace's surealived up? (For diagnostics.) */
export function controlUp(port = 1337): Promise<boolean> {
  return new Promise((r) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      r(true);
    });
    s.on('error', () => r(false));
  });
}
