// RecentPoller and RecentWriter against real `iptables -m recent` tables in network namespaces: tables
// filled by real UDP traffic on loopback and by /proc writes, read and written from the host through
// /proc/<pid>/net/xt_recent of a process that lives inside the namespace.
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { entryKey, type Change, type RecentEntry } from '../../session-sync/model.js';
import { KernelJiffiesClock } from '../../session-sync/recent/jiffies.js';
import { chronologicalStamps, parseRecentTable, type ParsedRecentLine } from '../../session-sync/recent/parse.js';
import { RecentPoller } from '../../session-sync/recent/poller.js';
import { detectRestorer, RecentTableError, RecentWriter } from '../../session-sync/recent/writer.js';
import { holderOf, Netns, netnsUnavailable, sendUdp, sleep, type Holder } from '../helpers/netns.js';

const fsExt = createRequire(import.meta.url)('fs-ext') as { seekSync(fd: number, off: number, whence: number): number };

/** A process parked inside `ns`; its /proc/<pid>/net is the namespace's. */
/** Raw `+addr` writes (each appends a hit), one command per write(2) at offset 0. */
function plus(path: string, addrs: readonly string[], times = 1): void {
  const fd = openSync(path, 'w');
  try {
    for (let t = 0; t < times; t++) {
      for (const a of addrs) {
        fsExt.seekSync(fd, 0, 0);
        writeSync(fd, `+${a}`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** One raw command (`-addr`, `/`) to a table. */
function command(path: string, cmd: string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, cmd);
  } finally {
    closeSync(fd);
  }
}

function kernelTable(procDir: string, name: string): Map<string, ParsedRecentLine> {
  const { entries, errors } = parseRecentTable(name, readFileSync(join(procDir, name), 'latin1'));
  assert.deepEqual(errors, []);
  return new Map(entries.map((e) => [e.addr, e]));
}

function upserts(changes: readonly Change[], table: string): Map<string, RecentEntry> {
  const out = new Map<string, RecentEntry>();
  for (const c of changes) {
    if (c.op === 'upsert' && c.table.kind === 'recent' && c.table.name === table && c.entry.kind === 'recent') {
      out.set(c.entry.addr, c.entry);
    }
  }
  return out;
}

function summary(changes: readonly Change[]): string[] {
  return changes.map((c) => {
    const t = c.table.kind === 'recent' ? c.table.name : '?';
    if (c.op === 'upsert') return `upsert ${t} ${entryKey(c.entry)}`;
    return c.op === 'delete' ? `delete ${t} ${c.key}` : `drop ${t}`;
  });
}

function ringSize(): number {
  // Stock kernels: ip_pkt_list_tot when set, else 32 (for rules without a larger --hitcount).
  let tot = 0;
  try {
    tot = Number(readFileSync('/sys/module/xt_recent/parameters/ip_pkt_list_tot', 'latin1').trim());
  } catch {
    /* built without the parameter file */
  }
  return tot > 0 ? 2 ** Math.ceil(Math.log2(tot)) : 32;
}

describe('xt_recent in network namespaces (real kernel)', function () {
  this.timeout(60_000);
  let master: Netns;
  let backup: Netns;
  let hm: Holder;
  let hb: Holder;
  let clock: KernelJiffiesClock;
  const tag = randomBytes(3).toString('hex');
  const tv4 = `v4_${tag}`;
  const tv6 = `v6_${tag}`;

  before(async function () {
    const why = netnsUnavailable();
    if (why) throw new Error(`these tests need network namespaces: ${why}`);
    master = await Netns.create('ssrec');
    backup = await Netns.create('ssrec');
    hm = await holderOf(master);
    hb = await holderOf(backup);
    await master.must('ip', ['-6', 'addr', 'add', '2001:db8::10/128', 'dev', 'lo', 'nodad']);
    await master.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', tv4, '--set']);
    await master.must('ip6tables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', tv6, '--set']);
    clock = await KernelJiffiesClock.start();
  });

  after(async () => {
    hm?.child.kill('SIGKILL');
    hb?.child.kill('SIGKILL');
    await master?.destroy();
    await backup?.destroy();
  });

  it("reading and writing through /proc/<pid>/net/xt_recent act on that namespace's tables", async () => {
    const name = `via_${tag}`;
    await master.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '19', '-m', 'recent', '--name', name, '--set']);
    assert.ok(existsSync(join(hm.procDir, name)), 'the table shows under the holder');
    assert.ok(!existsSync(join('/proc/net/xt_recent', name)), "the host's namespace has no such table");
    assert.ok(!existsSync(join(hb.procDir, name)), 'the other namespace has no such table');
    // Host writes land in the namespace's table...
    const w = await new RecentWriter({ procDir: hm.procDir }).write(
      name,
      [{ kind: 'recent', addr: '10.9.9.1', family: 4, ttl: 0, hits: [Date.now()] }],
      Date.now(),
    );
    assert.deepEqual(w, { written: 1, skipped: 0, failed: [] });
    assert.match(await master.must('cat', [`/proc/net/xt_recent/${name}`]), /^src=10\.9\.9\.1 ttl: 0 /m);
    // ...and what is written inside is what the host reads.
    await master.sh(`echo +10.9.9.2 > /proc/net/xt_recent/${name}`);
    const p = new RecentPoller({ procDir: hm.procDir, clock, filter: (n) => n === name });
    assert.deepEqual(summary(p.poll(Date.now())).sort(), [`upsert ${name} 10.9.9.1`, `upsert ${name} 10.9.9.2`]);
    await master.must('iptables', ['-D', 'INPUT', '-p', 'udp', '--dport', '19', '-m', 'recent', '--name', name, '--set']);
    assert.ok(!existsSync(join(hm.procDir, name)), 'the table goes with its last rule');
  });

  describe('RecentPoller on the master namespace', () => {
    let poller: RecentPoller;
    const logs: string[] = [];
    const mine = (n: string): boolean => n === tv4 || n === tv6 || n.startsWith(`new_${tag}`) || n.startsWith(`ring_${tag}`);

    before(() => {
      poller = new RecentPoller({ procDir: hm.procDir, clock, log: (m) => logs.push(m), filter: mine });
    });
    after(() => assert.deepEqual(logs, [], 'no line of a real kernel table is malformed'));

    it('first poll reports every entry of IPv4 and IPv6 tables, from traffic and from /proc writes, with its ttl', async () => {
      await sendUdp(master, { family: 4, src: '127.0.0.2', dst: '127.0.0.1' });
      await sendUdp(master, { family: 4, src: '127.0.0.3', dst: '127.0.0.1', count: 2, ttl: 33 });
      await sendUdp(master, { family: 6, src: '::1', dst: '::1' });
      await sendUdp(master, { family: 6, src: '2001:db8::10', dst: '::1', ttl: 17 });
      plus(join(hm.procDir, tv4), ['192.0.2.1']);
      const changes = poller.poll(Date.now());
      assert.deepEqual(summary(changes).sort(), [
        `upsert ${tv4} 127.0.0.2`,
        `upsert ${tv4} 127.0.0.3`,
        `upsert ${tv4} 192.0.2.1`,
        `upsert ${tv6} 2001:db8::10`,
        `upsert ${tv6} ::1`,
      ]);
      const v4 = upserts(changes, tv4);
      const v6 = upserts(changes, tv6);
      assert.equal(v4.get('127.0.0.2')!.ttl, 64);
      assert.equal(v4.get('127.0.0.2')!.hits.length, 1);
      assert.equal(v4.get('127.0.0.3')!.ttl, 33);
      assert.equal(v4.get('127.0.0.3')!.hits.length, 2);
      assert.equal(v4.get('192.0.2.1')!.ttl, 0, 'proc-written entries get ttl 0');
      assert.equal(v6.get('2001:db8::10')!.ttl, 17);
      assert.equal(v6.get('2001:db8::10')!.family, 6);
      assert.deepEqual(poller.tables(), [tv4, tv6]);
    });

    it('an unchanged namespace reports nothing; a new hit reports the entry again with one more hit', async () => {
      assert.deepEqual(poller.poll(Date.now()), []);
      await sendUdp(master, { family: 4, src: '127.0.0.2', dst: '127.0.0.1' });
      const changes = poller.poll(Date.now());
      assert.deepEqual(summary(changes), [`upsert ${tv4} 127.0.0.2`]);
      assert.equal(upserts(changes, tv4).get('127.0.0.2')!.hits.length, 2);
    });

    it('hit times match the packet times within a poll interval', async () => {
      const before = Date.now();
      await sendUdp(master, { family: 4, src: '127.0.0.4', dst: '127.0.0.1' });
      const after = Date.now();
      await sleep(1500); // old enough that an age of 0 would show
      const now = Date.now();
      const hit = upserts(poller.poll(now), tv4).get('127.0.0.4')!.hits[0]!;
      assert.ok(hit >= before - 1000 && hit <= after + 1000, `hit ${hit - before} ms after the send started (took ${after - before} ms)`);
      assert.ok(now - hit >= 500, `age ${now - hit} ms, expected about 1500`);
    });

    it('a ring that wrapped comes out oldest first, one hit per ring slot', async () => {
      const name = `ring_${tag}`;
      await master.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '29', '-m', 'recent', '--name', name, '--set']);
      const ring = ringSize();
      const n = ring + 8;
      const times: number[] = [];
      const done: number[] = [];
      for (let i = 0; i < n; i++) {
        times.push(Date.now());
        plus(join(hm.procDir, name), ['10.7.7.7']);
        done.push(Date.now());
        await sleep(Math.ceil(2000 / clock.hz)); // two jiffies apart: every stamp distinct
      }
      const raw = kernelTable(hm.procDir, name).get('10.7.7.7')!;
      assert.equal(raw.stamps.length, ring);
      assert.equal(raw.index, n % ring, 'the cursor wrapped');
      assert.notDeepEqual(raw.stamps, [...raw.stamps].sort((a, b) => a - b), 'array order is not time order');
      const hits = upserts(poller.poll(Date.now()), name).get('10.7.7.7')!.hits;
      assert.equal(hits.length, ring);
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i]! > hits[i - 1]!, `hits ascending at ${i}: ${hits.join(',')}`);
      // The kept hits are the newest `ring` writes, spread as the writes were: each stamp was taken
      // during its write, so the span lies between the writes' spans measured tightly and loosely
      // (a busy machine can stall a write), give or take a tick or two at each end.
      const span = hits[ring - 1]! - hits[0]!;
      const jiffy = 1000 / clock.hz;
      const lo = times[n - 1]! - done[n - ring]! - 4 * jiffy;
      const hi = done[n - 1]! - times[n - ring]! + 4 * jiffy;
      assert.ok(span >= lo && span <= hi, `hit span ${span} ms, writes ${lo.toFixed(0)}..${hi.toFixed(0)} ms`);
      assert.deepEqual(chronologicalStamps(raw), [...raw.stamps].sort((a, b) => a - b));
    });

    it('an address removed with -addr is a delete', () => {
      command(join(hm.procDir, tv4), '-127.0.0.2');
      assert.deepEqual(summary(poller.poll(Date.now())), [`delete ${tv4} 127.0.0.2`]);
    });

    it('a flushed table is one delete per entry', () => {
      command(join(hm.procDir, tv6), '/');
      assert.deepEqual(summary(poller.poll(Date.now())).sort(), [`delete ${tv6} 2001:db8::10`, `delete ${tv6} ::1`]);
      assert.ok(poller.tables().includes(tv6), 'a flushed table is still a table');
    });

    it('a table appears with its first rule and is dropped when its last rule goes', async () => {
      const name = `new_${tag}`;
      const rule = ['INPUT', '-p', 'udp', '--dport', '39', '-m', 'recent', '--name', name, '--set'];
      await master.must('iptables', ['-A', ...rule]);
      await sendUdp(master, { family: 4, src: '127.0.0.9', dst: '127.0.0.1', port: 39 });
      assert.deepEqual(summary(poller.poll(Date.now())), [`upsert ${name} 127.0.0.9`]);
      assert.ok(poller.tables().includes(name));
      await master.must('iptables', ['-D', ...rule]);
      assert.deepEqual(summary(poller.poll(Date.now())), [`drop ${name}`]);
      assert.ok(!poller.tables().includes(name));
    });
  });

  describe('RecentWriter restoring into the backup namespace', () => {
    const bk = `bk_${tag}`;
    let path: string;
    let writer: RecentWriter;

    before(async () => {
      await backup.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', bk, '--set']);
      path = join(hb.procDir, bk);
      plus(path, ['10.5.0.1']); // already here: one hit
      plus(path, ['10.5.0.9'], 2); // a live entry the master does not have
      writer = new RecentWriter({ procDir: hb.procDir });
    });

    it('merges: absent addresses are added, a present one is not hit again, nothing is flushed', async () => {
      const before = readFileSync(path, 'latin1');
      const now = Date.now();
      // What the master reports, taken from a real poll of its table plus an entry the backup has.
      const fromMaster = [...upserts(new RecentPoller({ procDir: hm.procDir, clock }).poll(now), tv4).values()];
      assert.ok(fromMaster.length >= 2);
      const entries: RecentEntry[] = [
        ...fromMaster,
        { kind: 'recent', addr: '10.5.0.1', family: 4, ttl: 50, hits: [now - 3000, now - 2000, now - 1000] },
        { kind: 'recent', addr: '2001:db8::77', family: 6, ttl: 9, hits: [now - 500] },
      ];
      const r = await writer.write(bk, entries, now);
      assert.deepEqual(r, { written: fromMaster.length + 1, skipped: 1, failed: [] });
      const after = kernelTable(hb.procDir, bk);
      for (const e of entries) assert.ok(after.has(e.addr), `${e.addr} restored`);
      assert.equal(after.get('10.5.0.1')!.stamps.length, 1, 'the present address got no extra hit');
      const kept = before.split('\n').find((l) => l.startsWith('src=10.5.0.9 '));
      assert.ok(readFileSync(path, 'latin1').split('\n').includes(kept!), 'the live entry is untouched');
      for (const e of fromMaster) {
        assert.equal(after.get(e.addr)!.ttl, 0, 'a stock kernel cannot take the ttl');
        assert.equal(after.get(e.addr)!.stamps.length, 1, 'one hit, stamped at write time');
      }
      // The backup's poller reads back what was restored, IPv6 included.
      const seen = upserts(new RecentPoller({ procDir: hb.procDir, clock }).poll(Date.now()), bk);
      assert.deepEqual([...seen.keys()].sort(), [...new Set([...entries.map((e) => entryKey(e)), '10.5.0.9'])].sort());
    });

    it('writing the same entries again changes nothing in the kernel', async () => {
      const before = readFileSync(path, 'latin1');
      const now = Date.now();
      const again: RecentEntry[] = [{ kind: 'recent', addr: '2001:db8::77', family: 6, ttl: 9, hits: [now] }];
      assert.deepEqual(await writer.write(bk, again, now), { written: 0, skipped: 1, failed: [] });
      assert.equal(readFileSync(path, 'latin1'), before);
    });

    it('an address listed twice is written once', async () => {
      const now = Date.now();
      const e: RecentEntry = { kind: 'recent', addr: '10.5.0.33', family: 4, ttl: 0, hits: [now] };
      assert.deepEqual(await writer.write(bk, [e, e], now), { written: 1, skipped: 1, failed: [] });
      assert.equal(kernelTable(hb.procDir, bk).get('10.5.0.33')!.stamps.length, 1);
    });

    it('an entry whose address is no address is reported as failed and the rest still written', async () => {
      const now = Date.now();
      const r = await writer.write(
        bk,
        [
          { kind: 'recent', addr: 'not-an-ip', family: 4, ttl: 0, hits: [now] },
          { kind: 'recent', addr: '10.5.0.44', family: 4, ttl: 0, hits: [now] },
        ],
        now,
      );
      assert.equal(r.written, 1);
      assert.deepEqual(r.failed, [{ addr: 'not-an-ip', why: 'not an IPv4 or IPv6 address' }]);
    });

    it('a table that does not exist on the backup is an error naming it', async () => {
      const missing = `nosuch_${tag}`;
      const e: RecentEntry = { kind: 'recent', addr: '10.5.0.2', family: 4, ttl: 0, hits: [Date.now()] };
      for (const attempt of [() => writer.write(missing, [e], Date.now()), () => writer.clear(missing)]) {
        await assert.rejects(attempt, (err: unknown) => {
          assert.ok(err instanceof RecentTableError);
          assert.equal(err.table, missing);
          assert.ok(err.message.includes(missing), err.message);
          assert.match(err.message, /no such table on this node \(it exists only while an iptables rule uses -m recent/);
          return true;
        });
      }
      assert.ok(!existsSync(join(hb.procDir, missing)));
      await assert.rejects(writer.write('../x', [e], Date.now()), /bad table name/);
    });

    it('clear empties the table; detectRestorer gives the stock writer on a stock kernel', async () => {
      const restorer = detectRestorer(hb.procDir);
      assert.equal(restorer.kind, 'stock');
      await restorer.clear(bk);
      assert.equal(readFileSync(path, 'latin1'), '');
    });
  });

  describe('cost (figures printed, not asserted)', () => {
    let ns: Netns;
    let h: Holder;
    const TABLES = 200;
    const ENTRIES = 100;
    const HITS = 4;

    before(async function () {
      this.timeout(120_000);
      ns = await Netns.create('ssrec');
      h = await holderOf(ns);
      const rules = Array.from(
        { length: TABLES },
        (_, i) => `-A INPUT -p udp --dport 7 -m recent --name p${i}_${tag} --set`,
      );
      await ns.must('iptables-restore', ['--noflush'], `*filter\n${rules.join('\n')}\nCOMMIT\n`);
      for (let t = 0; t < TABLES; t++) {
        const addrs = Array.from({ length: ENTRIES }, (_, i) => `10.${t >> 8}.${t & 255}.${i}`);
        plus(join(h.procDir, `p${t}_${tag}`), addrs, HITS);
      }
    });
    after(async () => {
      h?.child.kill('SIGKILL');
      await ns?.destroy();
    });

    it(`polls ${TABLES} tables x ${ENTRIES} entries (${HITS} hits each), and writes ${ENTRIES} entries`, async () => {
      const poller = new RecentPoller({ procDir: h.procDir, clock });
      const measure = (f: () => number): { wallMs: number; cpuMs: number; n: number } => {
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const n = f();
        const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
        const c = process.cpuUsage(c0);
        return { wallMs, cpuMs: (c.user + c.system) / 1000, n };
      };
      const first = measure(() => poller.poll(Date.now()).length);
      assert.equal(first.n, TABLES * ENTRIES);
      const steady: { wallMs: number; cpuMs: number }[] = [];
      for (let i = 0; i < 7; i++) {
        const m = measure(() => poller.poll(Date.now()).length);
        assert.equal(m.n, 0);
        steady.push(m);
      }
      steady.sort((a, b) => a.wallMs - b.wallMs);
      const med = steady[3]!;
      // One new hit in every table: 200 changed entries, five rounds.
      const rounds: { wallMs: number; cpuMs: number }[] = [];
      for (let r = 0; r < 5; r++) {
        for (let t = 0; t < TABLES; t++) plus(join(h.procDir, `p${t}_${tag}`), [`10.${t >> 8}.${t & 255}.${r}`]);
        const m = measure(() => poller.poll(Date.now()).length);
        assert.equal(m.n, TABLES);
        rounds.push(m);
      }
      rounds.sort((a, b) => a.wallMs - b.wallMs);
      const changed = rounds[2]!;
      poller.reset();
      const reload = measure(() => poller.poll(Date.now()).length);
      assert.equal(reload.n, TABLES * ENTRIES);

      await ns.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '8', '-m', 'recent', '--name', `w_${tag}`, '--set']);
      const now = Date.now();
      const entries: RecentEntry[] = Array.from({ length: ENTRIES }, (_, i) => ({
        kind: 'recent',
        addr: `10.200.0.${i}`,
        family: 4,
        ttl: 0,
        hits: [now - 1000 + i],
      }));
      const w0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      const r = await new RecentWriter({ procDir: h.procDir }).write(`w_${tag}`, entries, now);
      const wc = process.cpuUsage(c0);
      const wMs = Number(process.hrtime.bigint() - w0) / 1e6;
      assert.deepEqual(r, { written: ENTRIES, skipped: 0, failed: [] });
      const f = (x: number): string => x.toFixed(1);
      console.log(
        `      (first poll ${f(first.wallMs)} ms wall / ${f(first.cpuMs)} ms CPU; after reset ${f(reload.wallMs)} / ` +
          `${f(reload.cpuMs)}; unchanged poll median ${f(med.wallMs)} / ${f(med.cpuMs)}; ${TABLES} changed entries ` +
          `median ${f(changed.wallMs)} / ${f(changed.cpuMs)}; write of ${ENTRIES} entries ${f(wMs)} / ` +
          `${f((wc.user + wc.system) / 1000)})`,
      );
    });
  });
});
