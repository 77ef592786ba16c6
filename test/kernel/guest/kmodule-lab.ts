// Runs INSIDE the lab guest, right after `modprobe x_tables && insmod <ours>`: checks the patched
// xt_recent (kmodule/) against the real kernel, with real iptables rules and real packets from a
// network namespace, then swaps in the stock module to compare the upstream commands. Writes a
// KmoduleReport as JSON to argv[2]; argv[3] is the .ko that was loaded.
//
// Every check but the last first asserts that the loaded module is ours, so none can pass against
// the stock module (which `iptables -m recent` would autoload if ours were missing).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseTimerListJiffies } from '../../../session-sync/recent/jiffies.js';
import { canonicalAddr } from '../../../session-sync/model.js';
import { chronologicalStamps, parseRecentTable, type ParsedRecentLine } from '../../../session-sync/recent/parse.js';
import { type KmoduleCheckId } from './kmodule-checks.js';
import { GuestReportWriter } from './report.js';
import { malformedCorpus, RESTORE_LEN_MAX, upstreamSteps, type MalformedCategory } from './kmodule-corpus.js';
import { ssyncdEndToEnd } from './kmodule-e2e.js';
import { UdpSender } from './udp-sender-client.js';

const out = process.argv[2];
const KO = process.argv[3];
if (!out || !KO) throw new Error('usage: kmodule-lab.js <report.json> <xt_recent.ko>');

const OURS = 'surealived-1';
const PROC = '/proc/net/xt_recent';
const fsExt = createRequire(import.meta.url)('fs-ext') as { seekSync(fd: number, off: number, whence: number): number };

const g = new GuestReportWriter<KmoduleCheckId>(out);
const report = g.report;
const save = (): void => g.save();
const observe = (k: string, v: string | number): void => g.observe(k, v);

// ------------------------------------------------------------------------------------------------
// Small edges: commands, /proc writes and reads, the kernel clock.

function run(cmd: string, args: readonly string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'latin1', input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; status?: number };
    throw new Error(`${cmd} ${args.join(' ')} exited ${err.status}: ${(err.stderr ?? '').trim()}`);
  }
}
const ipt = (...args: string[]): string => run('iptables', args);
const ip6t = (...args: string[]): string => run('ip6tables', args);

function moduleVersion(): string | undefined {
  try {
    return readFileSync('/sys/module/xt_recent/version', 'latin1').trim();
  } catch {
    return undefined;
  }
}

function assertOurs(when: string): void {
  const v = moduleVersion();
  assert.equal(v, OURS, `${when}: /sys/module/xt_recent/version is ${v === undefined ? 'absent (stock module?)' : JSON.stringify(v)}`);
}

type Outcome = { ok: true; n: number } | { ok: false; code: string };

/** One write(2) of `data` to a fresh descriptor of table `name` (offset 0). */
function kwrite(name: string, data: string | Buffer): Outcome {
  const fd = openSync(join(PROC, name), 'w');
  try {
    return { ok: true, n: writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'latin1') : data) };
  } catch (e) {
    return { ok: false, code: (e as NodeJS.ErrnoException).code ?? String(e) };
  } finally {
    closeSync(fd);
  }
}

/** A write that must be taken whole. */
function restore(name: string, data: string | Buffer): void {
  const r = kwrite(name, data);
  const len = typeof data === 'string' ? Buffer.byteLength(data, 'latin1') : data.length;
  assert.ok(r.ok && r.n === len, `${name} <- ${JSON.stringify(String(data).slice(0, 120))}: ${r.ok ? `${r.n} of ${len} bytes taken` : r.code}`);
}

const tableText = (name: string): string => readFileSync(join(PROC, name), 'latin1');

function entries(name: string): Map<string, ParsedRecentLine> {
  const { entries: es, errors } = parseRecentTable(name, tableText(name));
  assert.deepEqual(errors.map((e) => e.message), [], `${name}: malformed /proc lines`);
  return new Map(es.map((e) => [e.addr, e]));
}

function entry(name: string, addr: string): ParsedRecentLine {
  const e = entries(name).get(addr);
  assert.ok(e, `${name}: no entry for ${addr}\n${tableText(name)}`);
  return e;
}

/** The raw /proc line of `printed` (the address as the kernel prints it). */
function rawLine(name: string, printed: string): string {
  const l = tableText(name).split('\n').find((x) => x.startsWith(`src=${printed} `));
  assert.ok(l !== undefined, `${name}: no line for ${printed}\n${tableText(name)}`);
  return l;
}

const expectLine = (addr: string, ttl: number, stamps: readonly number[]): string =>
  `src=${addr} ttl: ${ttl} last_seen: ${stamps[stamps.length - 1]} oldest_pkt: ${stamps.length} ${stamps.join(', ')}`;

const jiffies = (): number => parseTimerListJiffies(readFileSync('/proc/timer_list', 'latin1'));

function kernelHz(): number {
  const cfg = readFileSync(`/usr/src/linux-headers-${release()}/.config`, 'latin1');
  const m = /^CONFIG_HZ=(\d+)$/m.exec(cfg);
  assert.ok(m, 'CONFIG_HZ not in the headers config');
  return Number(m[1]);
}

function dmesgLines(): string[] {
  return run('dmesg', []).split('\n').filter(Boolean);
}

const tainted = (): number => Number(readFileSync('/proc/sys/kernel/tainted', 'latin1').trim());

// ------------------------------------------------------------------------------------------------

/** A check, with the module proven ours before and after it (unless `ours` is false). */
function check(id: KmoduleCheckId, body: () => Promise<void> | void, ours = true): Promise<boolean> {
  return g.check(id, async () => {
    if (ours) assertOurs(`before ${id}`);
    await body();
    if (ours) assertOurs(`after ${id}`);
  });
}

interface StepResult {
  what: string;
  /** `n=<bytes taken>` or the errno code. */
  result: string;
  /** The table after the step, one `src=... ttl: T oldest_pkt: I stamps: N` per entry, sorted. */
  table: string[];
}

/** Results of the upstream command sequence on table `name` (stamps are "now": only counted). */
function runUpstreamSteps(name: string): StepResult[] {
  const results: StepResult[] = [];
  let fd: number | undefined;
  const snapshot = (): string[] =>
    tableText(name)
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const m = /^(src=\S+ ttl: \d+) last_seen: \d+ oldest_pkt: (\d+) (.*)$/.exec(l);
        return m ? `${m[1]} oldest_pkt: ${m[2]} stamps: ${m[3]!.split(', ').length}` : `?${l}`;
      })
      .sort();
  for (const step of upstreamSteps()) {
    let res: string;
    try {
      if (!step.second) {
        if (fd !== undefined) closeSync(fd);
        fd = openSync(join(PROC, name), 'w');
      }
      res = `n=${writeSync(fd!, step.data)}`;
    } catch (e) {
      res = (e as NodeJS.ErrnoException).code ?? String(e);
    }
    results.push({ what: step.what, result: res, table: snapshot() });
  }
  if (fd !== undefined) closeSync(fd);
  return results;
}

// ------------------------------------------------------------------------------------------------
// Tables: a chain no packet enters holds the rules that keep the /proc-only tables alive.

const HZ = kernelHz();
observe('hz', HZ);

function makeTables(): void {
  ipt('-N', 'KMT');
  for (const t of ['up', 'rt', 'rt2', 'rel', 'mrg', 'lru', 'ring32', 'bad']) ipt('-A', 'KMT', '-m', 'recent', '--name', t, '--set');
  // Rings of 128 and 256 stamps: the next power of two of the largest --hitcount.
  ipt('-A', 'KMT', '-m', 'recent', '--name', 'ring128', '--rcheck', '--hitcount', '100');
  ipt('-A', 'KMT', '-m', 'recent', '--name', 'ring256', '--rcheck', '--hitcount', '200');
  ip6t('-N', 'KMT');
  ip6t('-A', 'KMT', '-m', 'recent', '--name', 'v6', '--set');
}

let upstreamOurs: StepResult[] = [];
const showSteps = (rs: readonly StepResult[]): string => rs.map((r) => `${r.what}: ${r.result} -> [${r.table.join(' | ')}]`).join('\n');

await check('module.ours', () => {
  assert.equal(moduleVersion(), OURS);
  assert.equal(run('modinfo', ['-F', 'version', KO]).trim(), OURS, 'the .ko file');
  const src = readFileSync('/sys/module/xt_recent/srcversion', 'latin1').trim();
  assert.equal(src, run('modinfo', ['-F', 'srcversion', KO]).trim(), 'srcversion of the loaded module vs the .ko file');
  const taint = readFileSync('/sys/module/xt_recent/taint', 'latin1').trim();
  assert.match(taint, /O/, `taint ${taint}: an out-of-tree module`);
  observe('module', `${OURS} srcversion ${src} taint ${taint} kernel.tainted ${tainted()}`);
  makeTables();
});

await check('upstream.ours', () => {
  upstreamOurs = runUpstreamSteps('up');
  observe('upstream.results', showSteps(upstreamOurs));
  // What upstream's recent_mt_proc_write does with each (read from its source): the patch must not change it.
  const want: Record<string, string> = {
    'add': 'n=9',
    'add again with a newline: a second hit': 'n=10',
    'add another': 'n=10',
    'add IPv6': 'n=12',
    'add v4-mapped IPv6': 'n=16',
    'remove': 'n=9',
    'remove an absent address': 'n=10',
    'byte over 255': 'EINVAL',
    'three bytes': 'EINVAL',
    '"+" alone': 'EINVAL',
    '"-" alone': 'EINVAL',
    'empty write': 'n=0',
    'unknown command': 'EINVAL',
    'trailing space': 'EINVAL',
    'leading space': 'EINVAL',
    'NUL then junk': 'n=14',
    'address with a port': 'EINVAL',
    'a long write (truncated to 47 bytes upstream)': 'n=47',
    'a long IPv6 write': 'EINVAL',
    'add before a second write': 'n=9',
    'second write on the same descriptor': 'ESPIPE',
    'flush': 'n=1',
    'add after the flush': 'n=9',
    'flush with junk after "/"': 'n=8',
    'add to be left over': 'n=10',
  };
  for (const r of upstreamOurs) assert.equal(r.result, want[r.what], `${r.what}: ${r.result}`);
  const at = (what: string): string => upstreamOurs.find((r) => r.what === what)!.table.join(' | ');
  assert.match(at('add again with a newline: a second hit'), /src=10\.0\.0\.1 ttl: 0 oldest_pkt: 2 stamps: 2/);
  assert.doesNotMatch(at('remove'), /10\.0\.0\.2 /);
  assert.match(at('NUL then junk'), /src=10\.0\.0\.8 /);
  assert.match(at('a long write (truncated to 47 bytes upstream)'), /src=10\.0\.0\.5 /);
  assert.equal(at('flush'), '');
  assert.equal(at('add to be left over'), 'src=10.0.0.11 ttl: 0 oldest_pkt: 1 stamps: 1');
});

await check('absolute.roundtrip', () => {
  const J = jiffies();
  const cases: { addr: string; ttl: number; stamps: number[]; tail: string; text?: string }[] = [
    { addr: '10.70.0.1', ttl: 64, stamps: [J - 1000, J - 500, J], tail: ';' },
    { addr: '10.70.0.2', ttl: 0, stamps: [J - 7], tail: ';\n' },
    { addr: '10.70.0.3', ttl: 255, stamps: [J - 30, J - 20], tail: ';\0' },
    { addr: '10.70.0.4', ttl: 1, stamps: [J - 3, J - 2, J - 1], tail: ';\n\0' },
    { addr: '10.70.0.5', ttl: 12, stamps: Array.from({ length: 32 }, (_, i) => J - 3200 + i * 100), tail: ';' },
    { addr: '10.70.0.6', ttl: 5, stamps: [J - 5, J - 5, J - 5], tail: ';' },
    // Leading zeros are plain decimal digits.
    { addr: '10.70.0.7', ttl: 7, stamps: [J - 9], tail: ';', text: `*10.70.0.7;007;000${J - 9};` },
  ];
  for (const c of cases) {
    const text = c.text ?? `*${c.addr};${c.ttl};${c.stamps.join(';')}${c.tail}`;
    restore('rt', text);
    assert.equal(rawLine('rt', c.addr), expectLine(c.addr, c.ttl, c.stamps), `after ${JSON.stringify(text)}`);
  }
  // A /proc line made by the packet path (three "+" hits) rewritten as "*" reproduces itself elsewhere.
  for (let i = 0; i < 3; i++) restore('rt', '+10.70.0.9');
  const orig = entry('rt', '10.70.0.9');
  const line = `*10.70.0.9;${orig.ttl};${chronologicalStamps(orig).join(';')};`;
  restore('rt2', line);
  assert.equal(rawLine('rt2', '10.70.0.9'), rawLine('rt', '10.70.0.9'), `rewritten as ${line}`);
  observe('absolute.sample', rawLine('rt', '10.70.0.1'));
});

await check('relative.ages', () => {
  const sets: number[][] = [[0], [1], [2], [3], [4], [5000, 4000, 1], [30 * 24 * 3600 * 1000], [3_600_000, 60_000, 1000, 999, 3], [10, 10, 10], [123_456_789]];
  let spread = 0;
  let inside = 0;
  let total = 0;
  sets.forEach((ages, i) => {
    const addr = `10.74.0.${i + 1}`;
    const ttl = 40 + i;
    const j0 = jiffies();
    restore('rel', `=${addr};${ttl};${ages.join(';')};${i % 2 ? '\n' : ''}`);
    const j1 = jiffies();
    spread = Math.max(spread, j1 - j0);
    const e = entry('rel', addr);
    assert.equal(e.ttl, ttl, `${addr} ttl`);
    assert.equal(e.index, ages.length, `${addr} oldest_pkt`);
    assert.equal(e.stamps.length, ages.length, `${addr} stamps`);
    ages.forEach((age, k) => {
      const ticks = (age * HZ) / 1000;
      const s = e.stamps[k]!;
      // jiffies at the write lies in [j0, j1]; the stamp must be within one jiffy of it minus the age.
      assert.ok(s >= j0 - ticks - 1 && s <= j1 - ticks + 1, `${addr} age ${age} ms: stamp ${s}, expected ${j0 - ticks}..${j1 - ticks} (+-1)`);
      total += 1;
      const rounded = Math.floor((age * HZ + 500) / 1000);
      if (s >= j0 - rounded && s <= j1 - rounded) inside += 1;
    });
  });
  observe('relative.jiffies-read-spread', spread);
  observe('relative.exact-rounding', `${inside} of ${total} stamps are exactly jiffies-at-write - round(age*HZ/1000) for a jiffies value read around the write`);
});

await check('ipv6', () => {
  const J = jiffies();
  restore('v6', `*2001:db8::7;57;${J - 10};${J};`);
  assert.equal(rawLine('v6', '2001:0db8:0000:0000:0000:0000:0000:0007'), expectLine('2001:0db8:0000:0000:0000:0000:0000:0007', 57, [J - 10, J]));
  restore('v6', `*2001:0db8:0000:0000:0001:0000:0000:0008;3;${J - 1};`);
  assert.equal(rawLine('v6', '2001:0db8:0000:0000:0001:0000:0000:0008'), expectLine('2001:0db8:0000:0000:0001:0000:0000:0008', 3, [J - 1]));
  restore('v6', `*ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255;9;${J - 2};`); // the longest address text (45 characters)
  assert.equal(rawLine('v6', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), expectLine('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 9, [J - 2]));
  const j0 = jiffies();
  restore('v6', '=::ffff:10.1.2.3;1;2000;0;\n');
  restore('v6', '=fe80::1;200;400;');
  const j1 = jiffies();
  const mapped = entry('v6', canonicalAddr('::ffff:10.1.2.3')!.addr);
  assert.equal(mapped.ttl, 1);
  assert.ok(mapped.stamps[0]! >= j0 - HZ * 2 - 1 && mapped.stamps[1]! <= j1 + 1, rawLine('v6', '0000:0000:0000:0000:0000:ffff:0a01:0203'));
  const ll = entry('v6', 'fe80::1');
  assert.equal(ll.ttl, 200);
  assert.ok(ll.stamps[0]! >= j0 - (400 * HZ) / 1000 - 1 && ll.stamps[0]! <= j1 - (400 * HZ) / 1000 + 1);
  observe('ipv6.sample', rawLine('v6', '0000:0000:0000:0000:0000:ffff:0a01:0203'));
});

await check('merge.replace', () => {
  for (let i = 0; i < 3; i++) restore('mrg', '+10.71.0.1');
  restore('mrg', '+10.71.0.2');
  assert.equal(entry('mrg', '10.71.0.1').stamps.length, 3);
  const J = jiffies();
  const abs = `*10.71.0.1;99;${J - 100};${J - 50};`;
  restore('mrg', abs);
  assert.equal(rawLine('mrg', '10.71.0.1'), expectLine('10.71.0.1', 99, [J - 100, J - 50]), 'replaced, not appended');
  assert.equal(entries('mrg').size, 2, 'no second entry for the address');
  restore('mrg', abs);
  assert.equal(rawLine('mrg', '10.71.0.1'), expectLine('10.71.0.1', 99, [J - 100, J - 50]), 'the same line twice: unchanged');
  const j0 = jiffies();
  restore('mrg', '=10.71.0.1;98;1000;');
  const e = entry('mrg', '10.71.0.1');
  assert.equal(e.ttl, 98);
  assert.equal(e.stamps.length, 1, `one stamp: ${rawLine('mrg', '10.71.0.1')}`);
  assert.ok(Math.abs(e.stamps[0]! - (j0 - HZ)) <= 2 + (jiffies() - j0));
  // IPv6 too, and the other entry is left alone.
  restore('mrg', '+2001:db8::71');
  restore('mrg', '+2001:db8::71');
  restore('mrg', `*2001:db8::71;5;${J};`);
  assert.equal(rawLine('mrg', '2001:0db8:0000:0000:0000:0000:0000:0071'), expectLine('2001:0db8:0000:0000:0000:0000:0000:0071', 5, [J]));
  assert.equal(entry('mrg', '10.71.0.2').stamps.length, 1);
  assert.equal(entries('mrg').size, 3);
  // The packet path still appends to a restored entry as to any other.
  restore('mrg', '+10.71.0.1');
  assert.equal(entry('mrg', '10.71.0.1').stamps.length, 2);
  // An IPv4 line right after an IPv6 one: the allocator hands the next write the same buffer, and the
  // IPv4 lookup must not see the IPv6 address's leftover bytes (it compares the whole address union).
  for (let i = 0; i < 8; i++) {
    restore('mrg', `=2001:db8::${100 + i};0;5;`);
    restore('mrg', `=10.71.0.2;${i};5;`);
  }
  const lines = tableText('mrg').split('\n').filter((l) => l.startsWith('src=10.71.0.2 '));
  assert.deepEqual(lines.map((l) => l.replace(/ last_seen.*/, '')), ['src=10.71.0.2 ttl: 7'], 'one entry, replaced each time');
});

await check('merge.lru', () => {
  const tot = Number(readFileSync('/sys/module/xt_recent/parameters/ip_list_tot', 'latin1').trim());
  for (let i = 0; i < tot; i++) restore('lru', `=10.72.${i >> 8}.${i & 255};0;${tot - i};`);
  assert.equal(entries('lru').size, tot, 'the table is full');
  // Re-restoring the least recently used entry makes it the most recently used one...
  restore('lru', '=10.72.0.0;0;5;');
  restore('lru', '+10.72.9.1');
  let now = entries('lru');
  assert.equal(now.size, tot);
  assert.ok(now.has('10.72.0.0'), 'the restored entry survived');
  assert.ok(!now.has('10.72.0.1'), 'the next least recently used was evicted');
  assert.ok(now.has('10.72.9.1'));
  // ...and a restore of a new address evicts like a packet does.
  restore('lru', '=10.72.9.2;0;1;');
  now = entries('lru');
  assert.equal(now.size, tot);
  assert.ok(!now.has('10.72.0.2') && now.has('10.72.9.2') && now.has('10.72.0.0'));
  observe('lru.ip_list_tot', tot);
});

await check('ring.cap', () => {
  const J = jiffies();
  const series = (n: number): number[] => Array.from({ length: n }, (_, i) => J - 10 * (n - i));
  for (const [table, n, keep] of [['ring32', 40, 32], ['ring128', 200, 128], ['ring256', 256, 255]] as const) {
    const s = series(n);
    restore(table, `*10.75.0.1;3;${s.join(';')};`);
    assert.equal(rawLine(table, '10.75.0.1'), expectLine('10.75.0.1', 3, s.slice(n - keep)), `${table}: ${n} stamps`);
  }
  restore('ring32', `=10.75.0.2;0;${Array.from({ length: 33 }, (_, i) => 33 - i).join(';')};`);
  const e = entry('ring32', '10.75.0.2');
  assert.equal(e.stamps.length, 32);
  assert.equal(e.index, 32);
});

// ------------------------------------------------------------------------------------------------
// Real packets from a namespace against --rcheck rules.

const LB4 = '10.77.0.1';
const LB6 = 'fd77::1';
const SRC = { L: '10.77.0.11', Rrel: '10.77.0.12', Rabs: '10.77.0.13', Rold: '10.77.0.14', T64: '10.77.0.15', T10: '10.77.0.16' } as const;
const SRC6 = { L: 'fd77::11', R: 'fd77::12' } as const;

interface Probe {
  id: number;
  family: 4 | 6;
  src: string;
  port: number;
  ttl?: number;
  seconds: number;
  hitcount: number;
  rttl?: boolean;
  /** The entry whose stamps decide it (table addr). */
  entryAddr: string;
}

interface ProbeResult {
  probe: Probe;
  matched: boolean;
  /** The verdict the stamps give at the first and at the last jiffy the probes may have been seen at. */
  expectFirst: boolean;
  expectLast: boolean;
}

let probeRun: { results: ProbeResult[]; window: number } | undefined;
let probeError: Error | undefined;

function expectVerdict(stamps: readonly number[], ttlOk: boolean, j: number, seconds: number, hitcount: number): boolean {
  if (!ttlOk || stamps.length === 0) return false;
  const counted = stamps.filter((s) => seconds === 0 || s >= j - seconds * HZ).length;
  return counted >= Math.max(1, hitcount);
}

/** Counters of the probe rules (comment km:<id>:A for the --rcheck rule, B for the fall-through). */
function counters(save: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of save.split('\n')) {
    const r = /^\[(\d+):\d+\] .*--comment "?km:(\d+):([AB])"?/.exec(line);
    if (r) m.set(`${r[2]}:${r[3]}`, Number(r[1]));
  }
  return m;
}

async function runProbes(): Promise<{ results: ProbeResult[]; window: number }> {
  run('ip', ['netns', 'add', 'kmcl']);
  run('ip', ['link', 'add', 'kmlb0', 'type', 'veth', 'peer', 'name', 'kmcl0', 'netns', 'kmcl']);
  run('ip', ['addr', 'add', `${LB4}/24`, 'dev', 'kmlb0']);
  run('ip', ['-6', 'addr', 'add', `${LB6}/64`, 'dev', 'kmlb0', 'nodad']);
  run('ip', ['link', 'set', 'kmlb0', 'up']);
  const inCl = (...args: string[]): string => run('ip', ['netns', 'exec', 'kmcl', ...args]);
  inCl('ip', 'link', 'set', 'lo', 'up');
  for (const a of Object.values(SRC)) inCl('ip', 'addr', 'add', `${a}/24`, 'dev', 'kmcl0');
  for (const a of Object.values(SRC6)) inCl('ip', '-6', 'addr', 'add', `${a}/64`, 'dev', 'kmcl0', 'nodad');
  inCl('ip', 'link', 'set', 'kmcl0', 'up');

  // Seeding rules first (ring of 32), so that no later --hitcount rule creates the table smaller.
  ipt('-A', 'INPUT', '-i', 'kmlb0', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', 'kt', '--set');
  ip6t('-A', 'INPUT', '-i', 'kmlb0', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', 'kt6', '--set');

  const probes: Probe[] = [];
  const grid4 = [0, 1, 2, 3, 5, 15, 30, 60].flatMap((seconds) => [0, 2, 3, 4].map((hitcount) => ({ seconds, hitcount })));
  grid4.forEach((g, ci) => {
    for (const src of [SRC.L, SRC.Rrel, SRC.Rabs, SRC.Rold]) probes.push({ id: probes.length, family: 4, src, port: 20000 + ci, ...g, entryAddr: src });
  });
  for (const [src, ttl, port] of [[SRC.T64, 64, 30000], [SRC.T10, 64, 30000], [SRC.L, 64, 30000], [SRC.T10, 10, 30001], [SRC.L, 10, 30001]] as const) {
    probes.push({ id: probes.length, family: 4, src, port, ttl, seconds: 0, hitcount: 0, rttl: true, entryAddr: src });
  }
  const grid6 = [0, 1, 3, 30].flatMap((seconds) => [0, 2, 3].map((hitcount) => ({ seconds, hitcount })));
  grid6.forEach((g, ci) => {
    for (const src of [SRC6.L, SRC6.R]) probes.push({ id: probes.length, family: 6, src, port: 21000 + ci, ...g, entryAddr: src });
  });
  const ruleText = (family: 4 | 6): string => {
    const lines = ['*filter'];
    for (const p of probes.filter((x) => x.family === family)) {
      const base = `-A INPUT -s ${p.src} -i kmlb0 -p udp -m udp --dport ${p.port}`;
      const recent =
        `-m recent --name ${family === 4 ? 'kt' : 'kt6'} --rcheck` +
        (p.seconds ? ` --seconds ${p.seconds}` : '') +
        (p.hitcount ? ` --hitcount ${p.hitcount}` : '') +
        (p.rttl ? ' --rttl' : '');
      lines.push(`${base} ${recent} -m comment --comment km:${p.id}:A -j ACCEPT`);
      lines.push(`${base} -m comment --comment km:${p.id}:B -j ACCEPT`);
    }
    lines.push('COMMIT', '');
    return lines.join('\n');
  };
  run('iptables-restore', ['--noflush'], ruleText(4));
  run('ip6tables-restore', ['--noflush'], ruleText(6));

  const sender = new UdpSender('kmcl');
  try {
    let id = 100_000;
    // Three hits made by packets, 1.3 s apart (not a whole second, so the --seconds boundaries of the
    // three hits fall at different moments).
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(1300);
      await sender.send({ id: id++, family: 4, src: SRC.L, dst: LB4, port: 9 });
      await sender.send({ id: id++, family: 6, src: SRC6.L, dst: LB6, port: 9 });
    }
    let L: ParsedRecentLine | undefined;
    let L6: ParsedRecentLine | undefined;
    for (let i = 0; i < 100 && (L?.stamps.length !== 3 || L6?.stamps.length !== 3); i++) {
      await sleep(50);
      L = entries('kt').get(SRC.L);
      L6 = entries('kt6').get(SRC6.L);
    }
    assert.ok(L && L.stamps.length === 3 && L6 && L6.stamps.length === 3, `packet-made entries:\n${tableText('kt')}\n${tableText('kt6')}`);
    assert.equal(L.ttl, 64, 'the packets\' ttl');
    // The same hits restored, relatively and absolutely; an entry with older hits; two for --rttl.
    const J = jiffies();
    const agesOf = (p: ParsedRecentLine): string => chronologicalStamps(p).map((s) => ((J - s) * 1000) / HZ).join(';');
    restore('kt', `=${SRC.Rrel};64;${agesOf(L)};`);
    restore('kt', `*${SRC.Rabs};64;${chronologicalStamps(L).join(';')};`);
    restore('kt', `=${SRC.Rold};64;40000;25000;10000;`);
    restore('kt', `=${SRC.T64};64;1000;`);
    restore('kt', `=${SRC.T10};10;1000;`);
    restore('kt6', `=${SRC6.R};64;${agesOf(L6)};`);
    const stampsOf = new Map<string, { stamps: number[]; ttl: number }>();
    for (const [addr, e] of [...entries('kt'), ...entries('kt6')]) stampsOf.set(addr, { stamps: chronologicalStamps(e), ttl: e.ttl });
    observe('match.entries', [...stampsOf].map(([a, e]) => `${a} ttl ${e.ttl}: ${e.stamps.map((s) => J - s).join(',')} jiffies ago`).join('; '));

    const jFirst = jiffies();
    await Promise.all(probes.map((p) => sender.send({ id: p.id, family: p.family, src: p.src, dst: p.family === 4 ? LB4 : LB6, port: p.port, ...(p.ttl ? { ttl: p.ttl } : {}) })));
    const jLast = jiffies();
    let c4 = new Map<string, number>();
    let c6 = new Map<string, number>();
    const seen = (p: Probe): number => {
      const c = p.family === 4 ? c4 : c6;
      return (c.get(`${p.id}:A`) ?? 0) + (c.get(`${p.id}:B`) ?? 0);
    };
    for (let i = 0; i < 100; i++) {
      c4 = counters(run('iptables-save', ['-c']));
      c6 = counters(run('ip6tables-save', ['-c']));
      if (probes.every((p) => seen(p) >= 1)) break;
      await sleep(100);
    }
    const lost = probes.filter((p) => seen(p) !== 1);
    assert.equal(lost.length, 0, `probes not counted exactly once: ${lost.map((p) => `${p.id}=${seen(p)}`).join(' ')}`);
    const results = probes.map((p): ProbeResult => {
      const e = stampsOf.get(p.entryAddr);
      const stamps = e?.stamps ?? [];
      const ttlOk = !p.rttl || e?.ttl === (p.ttl ?? 64);
      return {
        probe: p,
        matched: ((p.family === 4 ? c4 : c6).get(`${p.id}:A`) ?? 0) === 1,
        expectFirst: expectVerdict(stamps, ttlOk, jFirst, p.seconds, p.hitcount),
        expectLast: expectVerdict(stamps, ttlOk, jLast, p.seconds, p.hitcount),
      };
    });
    return { results, window: jLast - jFirst };
  } finally {
    sender.close();
  }
}

function describeProbe(r: ProbeResult): string {
  const p = r.probe;
  const rule = `${p.seconds ? `--seconds ${p.seconds} ` : ''}${p.hitcount ? `--hitcount ${p.hitcount} ` : ''}${p.rttl ? `--rttl (packet ttl ${p.ttl}) ` : ''}`;
  return `${p.src} ${rule}: ${r.matched ? 'matched' : 'no match'} (stamps say ${r.expectFirst}${r.expectFirst === r.expectLast ? '' : `..${r.expectLast}`})`;
}

/** Asserts every decided probe matched as its stamps say, and that sources alike in `pairs` decided alike. */
function assertProbes(results: ProbeResult[], pairs: readonly (readonly [string, string])[], what: string, minDecided: number): void {
  const decided = results.filter((r) => r.expectFirst === r.expectLast);
  for (const r of decided) assert.equal(r.matched, r.expectFirst, `${what}: ${describeProbe(r)}`);
  assert.ok(decided.length >= minDecided * results.length, `${what}: only ${decided.length} of ${results.length} probes away from a --seconds boundary`);
  assert.ok(decided.some((r) => r.matched) && decided.some((r) => !r.matched), `${what}: the probes should both match and not match`);
  for (const [a, b] of pairs) {
    for (const ra of results.filter((r) => r.probe.src === a)) {
      const rb = results.find((r) => r.probe.src === b && r.probe.port === ra.probe.port && r.probe.ttl === ra.probe.ttl);
      assert.ok(rb, `${what}: no ${b} probe for port ${ra.probe.port}`);
      const bothDecided = ra.expectFirst === ra.expectLast && rb.expectFirst === rb.expectLast;
      if (bothDecided) assert.equal(rb.matched, ra.matched, `${what}: ${describeProbe(ra)} but ${describeProbe(rb)}`);
    }
  }
  observe(`${what}.decided`, `${decided.length} of ${results.length}`);
}

await check('match.hitcount', async () => {
  try {
    probeRun = await runProbes();
  } catch (e) {
    probeError = e as Error;
    throw e;
  }
  observe('match.window-jiffies', probeRun.window);
  const r4 = probeRun.results.filter((r) => r.probe.family === 4 && !r.probe.rttl);
  assertProbes(r4, [[SRC.L, SRC.Rrel], [SRC.L, SRC.Rabs]], 'match.hitcount', 0.6);
  // The old entry has hits 40, 25 and 10 s old: the decisions are far from any boundary.
  const old = r4.filter((r) => r.probe.src === SRC.Rold);
  assert.ok(old.every((r) => r.expectFirst === r.expectLast && r.matched === r.expectFirst), old.map(describeProbe).join('\n'));
  observe('match.hitcount.L', r4.filter((r) => r.probe.src === SRC.L).map(describeProbe).join('; '));
});

await check('match.rttl', () => {
  if (!probeRun) throw new Error(`no probe run: ${probeError?.message ?? 'match.hitcount did not run'}`);
  const rt = probeRun.results.filter((r) => r.probe.rttl);
  const verdict = (src: string, ttl: number): boolean => rt.find((r) => r.probe.src === src && r.probe.ttl === ttl)!.matched;
  assert.equal(verdict(SRC.T64, 64), true, 'restored ttl 64, packet ttl 64');
  assert.equal(verdict(SRC.T10, 64), false, 'restored ttl 10, packet ttl 64');
  assert.equal(verdict(SRC.L, 64), true, 'packet-made ttl 64, packet ttl 64');
  assert.equal(verdict(SRC.T10, 10), true, 'restored ttl 10, packet ttl 10');
  assert.equal(verdict(SRC.L, 10), false, 'packet-made ttl 64, packet ttl 10');
});

await check('match.ipv6', () => {
  if (!probeRun) throw new Error(`no probe run: ${probeError?.message ?? 'match.hitcount did not run'}`);
  assertProbes(probeRun.results.filter((r) => r.probe.family === 6), [[SRC6.L, SRC6.R]], 'match.ipv6', 0.6);
});

await check('protocol.espipe', () => {
  const fd = openSync(join(PROC, 'rel'), 'w');
  try {
    assert.equal(writeSync(fd, '=10.73.0.1;0;5;'), 15);
    assert.throws(() => writeSync(fd, '=10.73.0.2;0;5;'), (e: NodeJS.ErrnoException) => e.code === 'ESPIPE');
    fsExt.seekSync(fd, 0, 0);
    assert.equal(writeSync(fd, '=10.73.0.2;0;5;'), 15);
  } finally {
    closeSync(fd);
  }
  assert.ok(entries('rel').has('10.73.0.1') && entries('rel').has('10.73.0.2'));
});

let dmesgBefore: string[] = [];
let taintBefore = 0;

await check('malformed.einval', () => {
  restore('bad', '=10.66.9.1;1;500;100;');
  restore('bad', '=2001:db8::66;2;50;');
  const tables = ['bad', 'rel', 'v6'];
  const before = new Map(tables.map((t) => [t, tableText(t)]));
  dmesgBefore = dmesgLines();
  taintBefore = tainted();
  const corpus = malformedCorpus(jiffies());
  const failures: string[] = [];
  const byCategory = new Map<MalformedCategory, number>();
  corpus.forEach((m, i) => {
    const target = tables[i % tables.length]!;
    const r = kwrite(target, m.data);
    byCategory.set(m.category, (byCategory.get(m.category) ?? 0) + 1);
    if (r.ok || r.code !== 'EINVAL') failures.push(`${m.category}: ${m.why} (${m.data.length} bytes): ${r.ok ? `taken (${r.n} bytes)` : r.code}`);
  });
  assert.deepEqual(failures, [], 'lines not refused with EINVAL');
  for (const t of tables) assert.equal(tableText(t), before.get(t), `table ${t} changed`);
  assert.ok(corpus.length >= 50, `${corpus.length} lines`);
  assert.ok(corpus.some((m) => m.data.length > RESTORE_LEN_MAX));
  observe('malformed.count', `${corpus.length} lines: ${[...byCategory].map(([c, n]) => `${c} ${n}`).join(', ')}`);
});

await check('malformed.quiet', () => {
  const all = dmesgLines();
  const bad = all.filter((l) => /WARNING|Oops|BUG|Call Trace|RIP:|general protection|stack-protector|KASAN|UBSAN|refcount_t/.test(l));
  assert.deepEqual(bad, [], 'kernel warnings in dmesg');
  const fresh = all.slice(dmesgBefore.length);
  const fromUs = fresh.filter((l) => /xt_recent/.test(l));
  assert.deepEqual(fromUs, [], 'xt_recent logged during the corpus');
  assert.equal(tainted(), taintBefore, `kernel taint changed from ${taintBefore} to ${tainted()}`);
  observe('malformed.dmesg-new-lines', fresh.length);
});

// Tear down the probe namespace before the end-to-end run (its own namespaces).
try {
  run('ip', ['netns', 'del', 'kmcl']);
} catch {
  /* never created */
}

await check('ssyncd.e2e', async () => {
  await ssyncdEndToEnd({ hz: HZ, observe });
});

await check('module.still-ours', () => {
  assert.equal(run('modinfo', ['-F', 'srcversion', KO]).trim(), readFileSync('/sys/module/xt_recent/srcversion', 'latin1').trim());
});

await check(
  'upstream.stock-equal',
  async () => {
    for (const [tool, chains] of [['iptables', ['INPUT', 'KMT']], ['ip6tables', ['INPUT', 'KMT']]] as const) {
      for (const c of chains) run(tool, ['-F', c]);
      run(tool, ['-X', 'KMT']);
    }
    // Namespaces of the end-to-end run go away asynchronously; their rules hold the module until then.
    let gone = false;
    let why = '';
    for (let i = 0; i < 100 && !gone; i++) {
      try {
        run('rmmod', ['xt_recent']);
        gone = true;
      } catch (e) {
        why = (e as Error).message;
        await sleep(200);
      }
    }
    assert.ok(gone, `rmmod xt_recent: ${why}`);
    run('modprobe', ['xt_recent']);
    assert.equal(moduleVersion(), undefined, 'the stock module has no version');
    ipt('-N', 'KMT');
    ipt('-A', 'KMT', '-m', 'recent', '--name', 'up', '--set');
    const stock = runUpstreamSteps('up');
    observe('upstream.stock', showSteps(stock));
    assert.deepEqual(upstreamOurs, stock);
    assert.equal(kwrite('up', `=10.76.0.1;0;5;`).ok, false, 'the stock module refuses restore lines');
  },
  false,
);

save();
process.exit(report.checks.every((c) => c.ok) ? 0 : 1);
