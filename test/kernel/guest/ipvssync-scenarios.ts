// Runs INSIDE the lab guest (real kernel with IPVS): the real ipvssync CLI against the real IPVS table,
// fed by hand-written hand-offs and by the real surealived; writes an IpvssyncReport as JSON to argv[2].
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IpvsClient } from '../../../ipvs-netlink/index.js';
import { type IpvssyncCheckId } from './ipvssync-checks.js';
import { GuestReportWriter } from './report.js';
import {
  expectedRows,
  formatDiff,
  generateTable,
  handoffPaths,
  ipvsadm,
  ipvsadmRows,
  kernelRows,
  rowDiff,
  sameRows,
  startIpvssync,
  waitFor,
  writeHandoff,
  writeMainConfig,
  type HandoffReal,
  type HandoffVirtual,
  type Proc,
} from './ipvssync-lab.js';
import { runSurealivedScenario } from './ipvssync-surealived.js';

const out = process.argv[2];
if (!out) throw new Error('usage: ipvssync-scenarios.js <result.json>');
const WORK = process.argv[3] ?? '/tmp/ipvssync-lab';

const g = new GuestReportWriter<IpvssyncCheckId>(out);
const report = g.report;
const save = (): void => g.save();
const observe = (k: string, v: string | number): void => g.observe(k, v);
const check = (id: IpvssyncCheckId, body: () => Promise<void> | void): Promise<boolean> => g.check(id, body);

const c = await new IpvsClient().open();
const procs: Proc[] = [];
const track = (p: Proc): Proc => {
  procs.push(p);
  return p;
};

/**
 * Waits until the kernel's rows equal `want`; the assertion names what differs. `ready`, a cheap probe
 * polled first, spares the single vCPU full reads of a 10,000-row table while ipvssync is still busy.
 */
async function converge(want: readonly string[], ms: number, what: string, ready?: () => Promise<boolean>): Promise<void> {
  if (ready) await waitFor(ready, ms, 100);
  let have: string[] = [];
  const ok = await waitFor(async () => sameRows((have = await kernelRows(c)), want), ms, 200, 2000);
  assert.ok(ok, `${what}: the kernel did not converge within ${ms} ms\n${rowDiff(want, have)}`);
}

const countLines = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;

// ------------------------------------------------------------------------------------------------
// 1. A large hand-off; ipvssync killed in the middle of its start-up sync, restarted.

const A = handoffPaths(join(WORK, 'a'));
// -k: the full file names diff_sync.1000, which a 60 s clean-up would delete once the chain moved on to
// .1001 (surealived rewrites the full file at each rotation; this hand-written hand-off does not).
const K = ['-k'];
mkdirSync(A.dir, { recursive: true });
writeMainConfig(A);
const big = generateTable(500, 20);
const diff1 = writeHandoff(A, big, 1000);
const diff2 = join(A.diffDir, 'diff_sync.1001');

// Diff lines already written when ipvssync starts (replayed into memory at start-up): weight changes,
// removals and additions, and a chain to a second diff file. The model `big` follows along.
{
  let text = '';
  for (let i = 0; i < 40; i++) {
    const v = big[i]!;
    const r = v.reals[0]!;
    r.weight = 77;
    text += formatDiff('addreal', v, r) + formatDiff('chgreal', v, r);
  }
  for (let i = 40; i < 50; i++) {
    const v = big[i]!;
    const [r] = v.reals.splice(1, 1);
    text += formatDiff('delreal', v, r!);
  }
  text += `DIFF file=${diff2}\n`;
  writeFileSync(diff1, text);
  let text2 = '';
  for (let i = 50; i < 60; i++) {
    const v = big[i]!;
    const r: HandoffReal = { name: `extra${i}`, addr: `10.250.${i}.1`, port: v.reals[0]!.port, weight: 3 };
    v.reals.push(r);
    text2 += formatDiff('addreal', v, r) + formatDiff('chgreal', v, r);
  }
  writeFileSync(diff2, text2);
}
const bigRows = expectedRows(big);
observe('big table rows', bigRows.length);

let sync: Proc | undefined;
await check('kill.partial', async () => {
  const p = track(startIpvssync(A, join(WORK, 'ipvssync-kill.log'), K));
  let services = 0;
  const t0 = Date.now();
  // Kill as soon as the first services are in: the sync of ~10,500 ops is then well under way.
  const seen = await waitFor(async () => (services = (await c.listServices()).length) >= 10, 60_000, 20);
  await p.stop('SIGKILL');
  observe('kill: ms from start to kill', Date.now() - t0);
  assert.ok(seen, `no service appeared within 60 s\n${p.log().slice(-2000)}`);
  const rows = await kernelRows(c);
  observe('kill: rows in the kernel after SIGKILL', rows.length);
  observe('kill: services seen at the kill', services);
  assert.ok(rows.length > 0 && rows.length < bigRows.length, `not a partial table: ${rows.length} of ${bigRows.length} rows`);
});

await check('kill.converge', async () => {
  const t0 = Date.now();
  sync = track(startIpvssync(A, join(WORK, 'ipvssync-a.log'), K));
  // Ops go in file order: the last virtual complete means the sync is through (then every row is compared).
  const last = big[big.length - 1]!;
  const lastDone = (): Promise<boolean> =>
    c.listDestinations(
      last.fwmark > 0 ? { family: 4, fwmark: last.fwmark } : { family: 4, protocol: last.proto === 'udp' ? 'udp' : 'tcp', address: last.addr, port: last.port },
    ).then(
      (d) => d.length === last.reals.length,
      () => false,
    );
  await converge(bigRows, 120_000, 'restart after SIGKILL', lastDone);
  observe('kill: ms from restart to converged', Date.now() - t0);
});

await check('kill.ipvsadm', () => {
  const want = expectedRows(big, false);
  const have = ipvsadmRows();
  assert.ok(sameRows(have, want), rowDiff(want, have));
});

await check('list', async () => {
  const listed = execFileSync(process.execPath, ['dist/ipvssync/cli.js', '-c', A.config, '--list'], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  }).split('\n');
  const shown = ipvsadm('-Ln').split('\n');
  assert.ok(shown.length > 10_000, `ipvsadm -Ln printed only ${shown.length} lines`);
  assert.equal(listed.length, shown.length, `ipvssync --list printed ${listed.length} lines, ipvsadm -Ln ${shown.length}`);
  const bad = shown.findIndex((l, i) => l !== listed[i]);
  assert.equal(bad, -1, `line ${bad + 1} differs:\n  ipvsadm : ${JSON.stringify(shown[bad])}\n  ipvssync: ${JSON.stringify(listed[bad])}`);
});

await check('diff.tail', async () => {
  assert.ok(sync && !sync.exited(), 'ipvssync is not running');
  let text = '';
  const v0 = big[100]!;
  const r0 = v0.reals[3]!;
  r0.weight = 0;
  text += formatDiff('addreal', v0, r0) + formatDiff('chgreal', v0, r0);
  const v1 = big[101]!;
  const [gone] = v1.reals.splice(2, 1);
  text += formatDiff('delreal', v1, gone!);
  const v2 = big[102]!;
  const added: HandoffReal = { name: 'late', addr: '10.251.0.9', port: v2.reals[0]!.port, weight: 9, uthresh: 40, lthresh: 20 };
  v2.reals.push(added);
  text += formatDiff('addreal', v2, added) + formatDiff('chgreal', v2, added);
  appendFileSync(diff2, text);
  await converge(expectedRows(big), 20_000, 'diff lines');
});

await check('diff.burst', async () => {
  assert.ok(sync && !sync.exited(), 'ipvssync is not running');
  // 300 changes over 30 virtuals, 10 on each real touched, a write every 2 ms: lines keep arriving
  // while a pass reads, reconciles and applies the ones before them; each write tears its last line.
  let torn = '';
  for (let i = 0; i < 300; i++) {
    const v = big[200 + (i % 30)]!;
    const r = v.reals[i % 3]!;
    r.weight = 1 + ((i * 7) % 50);
    const lines = torn + formatDiff('addreal', v, r) + formatDiff('chgreal', v, r);
    const cut = lines.length - 1 - (i % 40);
    appendFileSync(diff2, lines.slice(0, cut));
    torn = lines.slice(cut);
    await sleep(2);
  }
  appendFileSync(diff2, torn);
  await converge(expectedRows(big), 30_000, 'a burst of diff lines');
});

await check('unmanaged.kept', async () => {
  assert.ok(sync, 'ipvssync never started');
  await sync.stop('SIGTERM');
  ipvsadm('-A', '-t', '10.99.0.1:80', '-s', 'rr');
  ipvsadm('-a', '-t', '10.99.0.1:80', '-r', '10.99.1.1:80', '-g', '-w', '1');
  // A managed service deleted by hand: its return shows that the start-up sync has run.
  ipvsadm('-D', '-t', `${big[7]!.addr}:${big[7]!.port}`);
  sync = track(startIpvssync(A, join(WORK, 'ipvssync-nou.log'), K));
  const hand = ['S tcp 10.99.0.1:80 rr p=- o=0', 'D tcp 10.99.0.1:80 > 10.99.1.1:80 route w=1 x=0 y=0'];
  const v7 = big[7]!;
  const v7back = (): Promise<boolean> =>
    c.getService({ family: 4, protocol: 'tcp', address: v7.addr, port: v7.port }).then(
      () => true,
      () => false,
    );
  await converge([...expectedRows(big), ...hand].sort(), 60_000, 'without -u', v7back);
});

await check('unmanaged.removed', async () => {
  assert.ok(sync, 'ipvssync never started');
  await sync.stop('SIGTERM');
  sync = track(startIpvssync(A, join(WORK, 'ipvssync-u.log'), [...K, '-u']));
  const handGone = (): Promise<boolean> =>
    c.getService({ family: 4, protocol: 'tcp', address: '10.99.0.1', port: 80 }).then(
      () => false,
      () => true,
    );
  await converge(expectedRows(big), 60_000, 'with -u', handGone);
  await sync.stop('SIGTERM');
});

// ------------------------------------------------------------------------------------------------
// 2. Kernel errors: an unknown scheduler, and a scheduler module that cannot be loaded until later.

const E = handoffPaths(join(WORK, 'e'));
mkdirSync(E.dir, { recursive: true });
writeMainConfig(E);
const MODPROBE = '/proc/sys/kernel/modprobe';
const modprobe = readFileSync(MODPROBE, 'utf8').trim();
const vGood: HandoffVirtual = {
  name: 'good', proto: 'tcp', addr: '10.7.0.1', port: 80, fwmark: 0, rt: 'dr', sched: 'wrr',
  reals: [{ name: 'g1', addr: '10.7.1.1', port: 80, weight: 5 }, { name: 'g2', addr: '10.7.1.2', port: 80, weight: 6 }],
};
const vBad: HandoffVirtual = {
  name: 'bad', proto: 'tcp', addr: '10.7.0.2', port: 80, fwmark: 0, rt: 'dr', sched: 'nosuch',
  reals: [{ name: 'b1', addr: '10.7.2.1', port: 80, weight: 1 }],
};
// ip_vs_sed is loaded on demand by the kernel; with the modprobe helper disabled that fails (ENOENT).
const vLate: HandoffVirtual = {
  name: 'late', proto: 'udp', addr: '10.7.0.3', port: 53, fwmark: 0, rt: 'masq', sched: 'sed',
  reals: [{ name: 'l1', addr: '10.7.3.1', port: 53, weight: 2 }, { name: 'l2', addr: '10.7.3.2', port: 53, weight: 3 }],
};
let errSync: Proc | undefined;
const badRe = /\berror : IPVS add service tcp 10\.7\.0\.2:80 nosuch failed: ENOSCHED/;
const lateRe = /\berror : IPVS add service udp 10\.7\.0\.3:53 sed failed: ENOSCHED/;

await check('errors.logged', async () => {
  ipvsadm('-C');
  assert.ok(!/\bip_vs_sed\b/.test(readFileSync('/proc/modules', 'utf8')), 'ip_vs_sed is already loaded');
  writeFileSync(MODPROBE, '/nonexistent-modprobe\n');
  writeHandoff(E, [vGood, vBad, vLate]);
  errSync = track(startIpvssync(E, join(WORK, 'ipvssync-e.log')));
  await converge(expectedRows([vGood]), 30_000, 'the good virtual');
  const ok = await waitFor(() => countLines(errSync!.log(), badRe) >= 1 && countLines(errSync!.log(), lateRe) >= 1, 10_000);
  assert.ok(ok, `no error-level line for the refused services:\n${errSync.log().slice(-3000)}`);
  assert.ok(/\berror : IPVS add dest tcp 10\.7\.0\.2:80 -> 10\.7\.2\.1:80 route w=1 failed: ESRCH/.test(errSync.log()), 'the refused service\'s real is not reported');
});

await check('errors.retried', async () => {
  assert.ok(errSync, 'ipvssync never started');
  const log = (): string => errSync!.log();
  const retried = await waitFor(() => countLines(log(), badRe) >= 3 && countLines(log(), lateRe) >= 3, 20_000);
  assert.ok(retried, `the refused ops were not retried (${countLines(log(), badRe)} / ${countLines(log(), lateRe)} error lines)`);
  writeFileSync(MODPROBE, `${modprobe}\n`);
  await converge(expectedRows([vGood, vLate]), 30_000, 'after the scheduler became loadable');
  const before = countLines(log(), badRe);
  const again = await waitFor(() => countLines(log(), badRe) > before, 20_000);
  assert.ok(again, 'the unknown scheduler stopped being retried');
  observe('errors: error lines for the unknown scheduler', countLines(log(), badRe));
  await errSync.stop('SIGTERM');
});
if (readFileSync(MODPROBE, 'utf8').trim() !== modprobe) writeFileSync(MODPROBE, `${modprobe}\n`);

// ------------------------------------------------------------------------------------------------
// 3. The real surealived writing the hand-off.

ipvsadm('-C');
await runSurealivedScenario({ work: join(WORK, 's'), client: c, check, observe, track });

for (const p of procs) await p.stop('SIGKILL', 1000);
c.close();
save();
process.exit(0);
