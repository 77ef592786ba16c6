// The end-to-end check of the kmodule lab (runs in the guest, with the patched xt_recent loaded): a
// master and a backup ssyncd in two network namespaces, a client namespace sending real packets into
// the master; the backup's `ssyncdctl write recent` must put the master's entries into its own kernel
// tables with the ttl, the hit count and the age of every hit the master has.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTimerListJiffies } from '../../../session-sync/recent/jiffies.js';
import { chronologicalStamps, parseRecentTable } from '../../../session-sync/recent/parse.js';
import { holderOf, link, Netns, sleep, type Holder } from '../../helpers/netns.js';
import { Daemon, eventually } from '../../helpers/ssyncd.js';
import { UdpSender } from './udp-sender-client.js';

interface RecentJson {
  tables: { name: string; entries: { addr: string; ttl: number; hitsMs: number[] }[] }[];
}

interface KernelEntry {
  ttl: number;
  /** Jiffies, oldest first. */
  stamps: number[];
}

const TABLES = ['sticky', 'sticky6'] as const;

function kernelTable(procDir: string, name: string): Map<string, KernelEntry> {
  const { entries, errors } = parseRecentTable(name, readFileSync(join(procDir, name), 'latin1'));
  assert.deepEqual(errors.map((e) => e.message), [], `${procDir}/${name}`);
  return new Map(entries.map((e) => [e.addr, { ttl: e.ttl, stamps: chronologicalStamps(e) }]));
}

/** `table addr: hits` of every entry, sorted: what must be equal between the copies. */
function shape(tables: Map<string, Map<string, { hits: number }>>): string {
  const out: string[] = [];
  for (const [t, es] of tables) for (const [a, e] of es) out.push(`${t} ${a}: ${e.hits}`);
  return out.sort().join('\n');
}

/** A jiffies reading and the epoch ms it was taken at (the quickest of three reads). */
function clockPair(): { jiffies: number; epoch: number; took: number } {
  let best: { jiffies: number; epoch: number; took: number } | undefined;
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const j = parseTimerListJiffies(readFileSync('/proc/timer_list', 'latin1'));
    const t1 = Date.now();
    if (!best || t1 - t0 < best.took) best = { jiffies: j, epoch: (t0 + t1) / 2, took: t1 - t0 };
  }
  return best!;
}

export async function ssyncdEndToEnd(o: { hz: number; observe: (k: string, v: string | number) => void }): Promise<void> {
  const spaces: Netns[] = [];
  const holders: Holder[] = [];
  const daemons: Daemon[] = [];
  let sender: UdpSender | undefined;
  try {
    for (const p of ['kmc', 'kmm', 'kmb']) spaces.push(await Netns.create(p));
    const [cl, m, b] = spaces as [Netns, Netns, Netns];
    await link(cl, { v4: '10.88.0.1', v6: 'fd88::1' }, m, { v4: '10.88.0.2', v6: 'fd88::2' });
    await link(m, { v4: '10.89.0.1', v6: 'fd89::1' }, b, { v4: '10.89.0.2', v6: 'fd89::2' });
    const clIf = (await cl.must('ip', ['-o', 'link', 'show'])).split('\n').map((l) => /^\d+: (va[0-9a-f]+)@/.exec(l)?.[1]).find(Boolean)!;
    const clients4 = ['10.88.0.11', '10.88.0.12', '10.88.0.13', '10.88.0.14'];
    const clients6 = ['fd88::11', 'fd88::12'];
    for (const a of clients4) await cl.must('ip', ['addr', 'add', `${a}/24`, 'dev', clIf]);
    for (const a of clients6) await cl.must('ip', ['-6', 'addr', 'add', `${a}/64`, 'dev', clIf, 'nodad']);
    for (const lb of [m, b]) {
      await lb.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', 'sticky', '--set']);
      await lb.must('ip6tables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', 'sticky6', '--set']);
    }
    const [hm, hb] = [await holderOf(m), await holderOf(b)];
    holders.push(hm, hb);

    // The master's tables: real packets (1 to 3 hits, 400 ms apart, one client with ttl 33) and two
    // entries restored on the master itself with hits a minute or two old.
    sender = new UdpSender(cl.name);
    let id = 0;
    const plan: [string, 4 | 6, number, number?][] = [
      ['10.88.0.11', 4, 1],
      ['10.88.0.12', 4, 3],
      ['10.88.0.13', 4, 2],
      ['10.88.0.14', 4, 2, 33],
      ['fd88::11', 6, 2],
      ['fd88::12', 6, 1],
    ];
    for (let round = 0; round < 3; round++) {
      if (round > 0) await sleep(400);
      for (const [src, family, hits, ttl] of plan) {
        if (round < hits) await sender.send({ id: id++, family, src, dst: family === 4 ? '10.88.0.2' : 'fd88::2', port: 9, ...(ttl ? { ttl } : {}) });
      }
    }
    writeFileSync(join(hm.procDir, 'sticky'), '=10.88.5.5;50;90000;60000;');
    writeFileSync(join(hm.procDir, 'sticky6'), '=fd88::5:5;51;120000;');
    const expected = 8;
    assert.ok(
      await eventually(async () => TABLES.reduce((n, t) => n + kernelTable(hm.procDir, t).size, 0) === expected, 5000),
      `master tables:\n${TABLES.map((t) => readFileSync(join(hm.procDir, t), 'latin1')).join('')}`,
    );

    const config = ['key_file none', 'poll_interval_ms 200', 'heartbeat_ms 200', 'dead_time_ms 2000', 'reconnect_max_ms 400', 'sync_recent yes'];
    const master = new Daemon({ ns: m, name: 'kmm', args: ['-M', '-p', '7777'], config });
    const backup = new Daemon({ ns: b, name: 'kmb', args: ['-B', '-a', '10.89.0.1', '-p', '7777'], config });
    daemons.push(master, backup);
    await master.start();
    await backup.start();

    const masterShape = (): string =>
      shape(new Map(TABLES.map((t) => [t, new Map([...kernelTable(hm.procDir, t)].map(([a, e]) => [a, { hits: e.stamps.length }]))])));
    const backupCopy = async (): Promise<string> => {
      const j = await backup.json<RecentJson>(['show', 'recent']);
      return shape(new Map(j.tables.map((t) => [t.name, new Map(t.entries.map((e) => [e.addr, { hits: e.hitsMs.length }]))])));
    };
    let copy = '';
    assert.ok(
      await eventually(async () => (copy = await backupCopy()) === masterShape(), 60_000, 250),
      `the backup's copy never matched the master's kernel tables\nmaster:\n${masterShape()}\nbackup copy:\n${copy}\n${backup.log()}\n${master.log()}`,
    );

    // Two yardsticks. What the backup wrote against what it holds (its copy, epoch ms): the restorer and
    // the module, exact but for the jiffies/epoch reading the test takes. What the backup's kernel has
    // against what the master's kernel has: the whole chain, which also carries the link's latency
    // (hits travel as ages, so a frame's time in flight makes them that much younger: measured
    // 0.3-0.4 s under qemu TCG), so it gets seconds of slack; a stock kernel would restart every age.
    const compare = async (when: string): Promise<{ vsCopy: number; vsMaster: number }> => {
      const copy = await backup.json<RecentJson>(['show', 'recent']);
      const ref = clockPair();
      // 100 ms, plus the time the reading took: a daemon descheduled between measuring an age and its
      // write(2) is not what this is about.
      const slack = Math.ceil(o.hz / 10 + (ref.took * o.hz) / 1000);
      let vsCopy = 0;
      let vsMaster = 0;
      for (const t of TABLES) {
        const want = kernelTable(hm.procDir, t);
        const got = kernelTable(hb.procDir, t);
        const held = new Map(copy.tables.find((x) => x.name === t)?.entries.map((e) => [e.addr, e]) ?? []);
        assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${when}: addresses of ${t}`);
        for (const [addr, w] of want) {
          const g = got.get(addr)!;
          const h = held.get(addr);
          assert.ok(h, `${when}: ${t} ${addr} not in the backup's copy`);
          assert.equal(g.ttl, w.ttl, `${when}: ${t} ${addr} ttl`);
          assert.equal(g.ttl, h.ttl, `${when}: ${t} ${addr} ttl of the copy`);
          assert.equal(g.stamps.length, w.stamps.length, `${when}: ${t} ${addr} hits`);
          g.stamps.forEach((s, i) => {
            const fromCopy = ref.jiffies - ((ref.epoch - h.hitsMs[i]!) * o.hz) / 1000;
            const dc = Math.abs(s - fromCopy);
            const dm = Math.abs(s - w.stamps[i]!);
            vsCopy = Math.max(vsCopy, dc);
            vsMaster = Math.max(vsMaster, dm);
            assert.ok(dc <= slack, `${when}: ${t} ${addr} hit ${i}: stamp ${s}, the backup's copy says ${fromCopy.toFixed(1)} (${dc.toFixed(1)} jiffies apart, slack ${slack})`);
            assert.ok(dm <= 3 * o.hz, `${when}: ${t} ${addr} hit ${i}: backup stamp ${s} vs master ${w.stamps[i]} (${dm} jiffies apart)`);
          });
        }
      }
      return { vsCopy: Math.round(vsCopy * 10) / 10, vsMaster };
    };

    // Where the hits' times drift on the way (diagnostics): the master's copy against its kernel, the
    // backup's copy against the master's copy.
    const [mj, bj] = [await master.json<RecentJson>(['show', 'recent']), await backup.json<RecentJson>(['show', 'recent'])];
    const ref = clockPair();
    const drift = (a: RecentJson, b: (t: string, addr: string) => number[] | undefined): string => {
      const d: number[] = [];
      for (const t of a.tables) for (const e of t.entries) b(t.name, e.addr)?.forEach((h, i) => d.push(Math.round(h - e.hitsMs[i]!)));
      return d.length ? `${Math.min(...d)}..${Math.max(...d)} ms` : 'none';
    };
    o.observe(
      'e2e.master-copy-vs-kernel',
      drift(mj, (t, a) => kernelTable(hm.procDir, t).get(a)?.stamps.map((s) => ref.epoch - ((ref.jiffies - s) * 1000) / o.hz)),
    );
    o.observe('e2e.backup-copy-vs-master-copy', drift(mj, (t, a) => bj.tables.find((x) => x.name === t)?.entries.find((e) => e.addr === a)?.hitsMs));

    const w = await backup.ctl(['write', 'recent']);
    assert.equal(w.code, 0, `write recent: ${w.stdout}${w.stderr}\n${backup.log()}`);
    assert.match(w.stdout, /recent data written/);
    const first = await compare('after write recent');
    // The hits made 1-2 minutes before on the master are as old on the backup.
    const jNow = clockPair().jiffies;
    const old = kernelTable(hb.procDir, 'sticky').get('10.88.5.5')!;
    const ages = old.stamps.map((s) => (jNow - s) / o.hz);
    assert.equal(old.ttl, 50);
    assert.ok(ages[0]! >= 89 && ages[1]! >= 59 && ages[0]! - ages[1]! > 29 && ages[0]! - ages[1]! < 31, `ages on the backup: ${ages.join(', ')} s`);
    // Written again (the entries are already there): replaced, not appended.
    const w2 = await backup.ctl(['write', 'recent']);
    assert.equal(w2.code, 0, w2.stdout);
    const second = await compare('after a second write recent');
    o.observe('e2e.jiffies-apart', `backup kernel vs its copy ${first.vsCopy} / ${second.vsCopy}, vs the master's kernel ${first.vsMaster} / ${second.vsMaster} (first / second write)`);
    o.observe('e2e.old-entry-on-backup', `ttl ${old.ttl}, hits ${ages.map((a) => a.toFixed(1)).join(' s, ')} s old`);
  } finally {
    sender?.close();
    for (const d of daemons) await d.kill9();
    for (const h of holders) h.child.kill('SIGKILL');
    for (const s of spaces) await s.destroy();
  }
}
