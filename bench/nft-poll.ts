// `node dist/bench/nft-poll.js [--n 100000] [--polls 10] [--interval 1000] [--default-timeout] [--sweep 10000,25000,50000]`:
// the cost of watching and writing a large nftables timeout set over netlink. In a fresh namespace
// a set is filled with `nft -f`; inside it this script (re-run as a child) times the first full poll
// (the snapshot read) and then idle polls (CPU per poll from process.cpuUsage, user + kernel); in a
// second namespace it times NftWriter.write of the same number of entries into an empty set.
// `nft -j list set` is timed beside. --default-timeout gives the set `timeout 1h` and the elements
// only an expiry (the shape of a dynamic set refreshed by `update @set`: 28 instead of 40 dump bytes
// per element). --sweep also measures idle polls at other sizes. Needs root (network namespaces).

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { NftEntry } from '../session-sync/model.js';
import { NftPoller } from '../session-sync/nft/poller.js';
import type { NftRef } from '../session-sync/nft/sets.js';
import { NftWriter } from '../session-sync/nft/writer.js';
import { Netns } from '../test/helpers/netns.js';

const SELF = fileURLToPath(import.meta.url);
const TARGET_IDLE_CPU_MS = 50; // 5 % of one core at a 1 s poll interval
const TARGET_SNAPSHOT_MS = 2000;
const REF: NftRef = { kind: 'nft', family: 'inet', table: 'bench', set: 'persist4' };

const addrOf = (i: number): string => `10.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const avg = (a: number[]): number => a.reduce((s, x) => s + x, 0) / a.length;
const fmt = (n: number): string => n.toFixed(1).padStart(8);

function setDef(defaultTimeout: boolean): string {
  return `add table inet bench\nadd set inet bench persist4 { type ipv4_addr; flags timeout; ${defaultTimeout ? 'timeout 1h; ' : ''}}\n`;
}

interface IdlePoll {
  wallMs: number;
  cpuMs: number;
  userMs: number;
  systemMs: number;
  changes: number;
  parts: number;
}
interface PollFigures {
  firstWallMs: number;
  firstCpuMs: number;
  firstChanges: number;
  idle: IdlePoll[];
}
interface WriteFigures {
  wallMs: number;
  cpuMs: number;
  written: number;
  elementsAfter: number;
}

/** Inside the namespace: one first poll, then idle polls `interval` ms apart. */
async function innerPoll(polls: number, interval: number): Promise<PollFigures> {
  const p = new NftPoller(REF);
  let c0 = process.cpuUsage();
  let w0 = performance.now();
  const first = await p.poll(Date.now());
  const firstWallMs = performance.now() - w0;
  const firstCpuMs = cpuMs(process.cpuUsage(c0));
  const idle: IdlePoll[] = [];
  for (let i = 0; i < polls; i++) {
    await sleep(interval);
    c0 = process.cpuUsage();
    w0 = performance.now();
    const ch = await p.poll(Date.now());
    const wallMs = performance.now() - w0;
    const u = process.cpuUsage(c0);
    idle.push({ wallMs, cpuMs: cpuMs(u), userMs: u.user / 1000, systemMs: u.system / 1000, changes: ch.length, parts: p.lastStats.parts });
  }
  p.close();
  return { firstWallMs, firstCpuMs, firstChanges: first.length, idle };
}

/** Inside the namespace: n entries with 10..60 min left, written into the empty set. */
async function innerWrite(n: number, defaultTimeout: boolean): Promise<WriteFigures> {
  const now = Date.now();
  const entries: NftEntry[] = [];
  for (let i = 0; i < n; i++) {
    entries.push({ kind: 'nft', addr: addrOf(i), family: 4, data: null, timeoutMs: defaultTimeout ? 0 : 3_600_000, expiresAt: now + 600_000 + (i % 3000) * 1000 });
  }
  const w = new NftWriter();
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const r = await w.write(REF, entries, Date.now());
  const wallMs = performance.now() - w0;
  const cpu = cpuMs(process.cpuUsage(c0));
  // Count what the set holds once the kernel has finished growing its hash table (a dump taken
  // meanwhile skips elements; the poller reports them at its next poll).
  const p = new NftPoller(REF);
  let after = 0;
  for (let i = 0; i < 5; i++) {
    await sleep(500);
    after += (await p.poll(Date.now())).filter((c) => c.op === 'upsert').length;
    if (after >= n) break;
  }
  p.close();
  w.close();
  return { wallMs, cpuMs: cpu, written: r.written, elementsAfter: after };
}

function opt(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
}

/** A fresh namespace holding the bench set with n elements; returns it and how long `nft -f` took. */
async function filled(n: number, defaultTimeout: boolean): Promise<{ ns: Netns; fillMs: number }> {
  const ns = await Netns.create('nftbench');
  const lines = [setDef(defaultTimeout), 'add element inet bench persist4 {'];
  for (let i = 0; i < n; i++) lines.push(`${addrOf(i)} ${defaultTimeout ? '' : 'timeout 1h '}expires ${600 + (i % 3000)}s,`);
  lines.push('}');
  const t = performance.now();
  await ns.must('nft', ['-f', '-'], `${lines.join('\n')}\n`);
  return { ns, fillMs: performance.now() - t };
}

function inside(ns: Netns, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns.name, process.execPath, SELF, ...args], { maxBuffer: 64 << 20, encoding: 'utf8' });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--inner-poll') {
    process.stdout.write(JSON.stringify(await innerPoll(Number(argv[1]), Number(argv[2]))));
    return;
  }
  if (argv[0] === '--inner-write') {
    process.stdout.write(JSON.stringify(await innerWrite(Number(argv[1]), argv[2] === 'default')));
    return;
  }
  const n = Number(opt(argv, '--n', '100000'));
  const polls = Number(opt(argv, '--polls', '10'));
  const interval = Number(opt(argv, '--interval', '1000'));
  const defaultTimeout = argv.includes('--default-timeout');
  const sweep = opt(argv, '--sweep', '').split(',').filter(Boolean).map(Number);

  const out: string[] = [
    `nftables set of ${n} timeout elements, ${defaultTimeout ? 'set timeout 1h, elements with an expiry only' : 'elements with timeout 1h and an expiry'}` +
      ` (Linux ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, node ${process.version})`,
  ];
  const { ns: master, fillMs } = await filled(n, defaultTimeout);
  const backup = await Netns.create('nftbench');
  try {
    await backup.must('nft', ['-f', '-'], setDef(defaultTimeout));
    let t = performance.now();
    await master.must('nft', ['-j', 'list', 'set', 'inet', 'bench', 'persist4']);
    const nftListMs = performance.now() - t;
    const pf = JSON.parse(inside(master, ['--inner-poll', String(polls), String(interval)])) as PollFigures;
    const wf = JSON.parse(inside(backup, ['--inner-write', String(n), defaultTimeout ? 'default' : 'own'])) as WriteFigures;
    const idleCpu = pf.idle.map((x) => x.cpuMs);
    out.push(
      `  fill with nft -f                         ${fmt(fillMs)} ms wall`,
      `  nft -j list set (for comparison)         ${fmt(nftListMs)} ms wall`,
      `  first full poll (snapshot read)          ${fmt(pf.firstWallMs)} ms wall ${fmt(pf.firstCpuMs)} ms CPU   ${pf.firstChanges} upserts   target well under ${TARGET_SNAPSHOT_MS} ms`,
      `  idle polls (${pf.idle.length}, ${interval} ms apart, ${pf.idle[0]?.parts ?? 0} dump parts each):`,
      ...pf.idle.map(
        (x, i) =>
          `    #${String(i + 1).padStart(2)}  ${fmt(x.wallMs)} ms wall ${fmt(x.cpuMs)} ms CPU (user ${x.userMs.toFixed(1)}, kernel ${x.systemMs.toFixed(1)})  ${x.changes} changes`,
      ),
      `  idle poll CPU   mean ${fmt(avg(idleCpu))} ms (user ${avg(pf.idle.map((x) => x.userMs)).toFixed(1)}, kernel ${avg(pf.idle.map((x) => x.systemMs)).toFixed(1)})` +
        `  max ${fmt(Math.max(...idleCpu))} ms   target <= ${TARGET_IDLE_CPU_MS} ms ${Math.max(...idleCpu) <= TARGET_IDLE_CPU_MS ? '(met)' : '(MISSED)'}`,
      `  idle poll wall  mean ${fmt(avg(pf.idle.map((x) => x.wallMs)))} ms`,
      `  NftWriter.write of ${n} into an empty set ${fmt(wf.wallMs)} ms wall ${fmt(wf.cpuMs)} ms CPU   written ${wf.written}, set then holds ${wf.elementsAfter}`,
    );
  } finally {
    await master.destroy();
    await backup.destroy();
  }
  if (sweep.length) {
    out.push(`  idle poll CPU by set size (5 polls, ${interval} ms apart; the kernel restarts its walk of the set for every 32 KiB dump part):`);
    for (const size of sweep) {
      const { ns } = await filled(size, defaultTimeout);
      try {
        const pf = JSON.parse(inside(ns, ['--inner-poll', '5', String(interval)])) as PollFigures;
        out.push(
          `    ${String(size).padStart(7)} elements ${String(pf.idle[0]?.parts ?? 0).padStart(4)} parts  CPU ${fmt(avg(pf.idle.map((x) => x.cpuMs)))} ms` +
            ` (user ${avg(pf.idle.map((x) => x.userMs)).toFixed(1)}, kernel ${avg(pf.idle.map((x) => x.systemMs)).toFixed(1)})  wall ${fmt(avg(pf.idle.map((x) => x.wallMs)))} ms`,
        );
      } finally {
        await ns.destroy();
      }
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
