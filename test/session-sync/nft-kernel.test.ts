// NftPoller and NftWriter against real nftables sets in network namespaces: sets and maps filled with
// `nft` and by real UDP traffic on loopback (packet-path `update @set`), read and written over
// netlink by nft-harness.js running inside each namespace, and checked against `nft -j list`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NftEntry } from '../../session-sync/model.js';
import type { PollStats } from '../../session-sync/nft/poller.js';
import type { NftRef } from '../../session-sync/nft/sets.js';
import { Netns, netnsUnavailable } from '../helpers/netns.js';
import { assertExpiresClose, Harness, HarnessError, nftElems, summary, upserts, type NftListing } from './nft-helpers.js';

const RULESET = `
table inet lb {
  set v4 { type ipv4_addr; flags timeout; }
  set v6 { type ipv6_addr; flags timeout; timeout 10m; }
  map mk { type ipv4_addr : mark; flags timeout; }
  map ap4 { type ipv4_addr : ipv4_addr . inet_service; flags timeout; }
  map ap6 { type ipv6_addr : ipv6_addr . inet_service; flags timeout; }
  set plain { type ipv4_addr; }
  set short { type ipv4_addr; flags timeout; timeout 1m; }
  set dyn { type ipv4_addr; flags dynamic,timeout; timeout 1m; }
  set dyn6 { type ipv6_addr; flags dynamic,timeout; timeout 1m; }
  set ranges { type ipv4_addr; flags interval; }
  set ports { type inet_service; }
  set pairs { type ipv4_addr . inet_service; }
  map verdicts { type ipv4_addr : verdict; }
  map toport { type ipv4_addr : inet_service; }
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 5353 update @dyn { ip saddr }
    udp dport 5353 update @dyn6 { ip6 saddr }
  }
}
`;

/** Tolerance for polls asserting that nothing changed: a loaded machine may delay a dump part by some ms. */
const TOL = { toleranceMs: 250 };
/** `nft -j list set` once it shows `n` elements (nft's dump, like ours, may skip some while the kernel resizes the set). */
async function settled(ns: Netns, ref: NftRef, n: number): Promise<NftListing> {
  let l = await nftElems(ns, ref, 'set');
  for (let i = 0; i < 10 && l.size !== n; i++) {
    await sleep(300);
    l = await nftElems(ns, ref, 'set');
  }
  assert.equal(l.size, n, `nft lists ${l.size} elements`);
  return l;
}

const ref = (set: string): NftRef => ({ kind: 'nft', family: 'inet', table: 'lb', set });

/**
 * A deadline read by a poll whose clock was `now`, of an element added `lifeMs` before its expiry
 * between `added` and `now`: the kernel counted down from the add, and the dump (between `now` and
 * `polled`) saw what was left, so it is early by as much as the dump came after `now` (a loaded
 * machine can make that long), never late. 50 ms for the kernel's and nft's rounding.
 */
function assertExpiresAt(expiresAt: number, lifeMs: number, added: number, now: number, polled: number): void {
  const lo = added + lifeMs - (polled - now) - 50;
  const hi = now + lifeMs + 50;
  assert.ok(expiresAt >= lo && expiresAt <= hi, `expiresAt ${expiresAt - now} ms after the poll's clock; expected ${lo - now}..${hi - now}`);
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown>, code: string, text: RegExp): Promise<HarnessError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HarnessError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, text);
    return e;
  }
  assert.fail(`expected an NftError ${code}`);
}

/** Every element of `kernel` (nft -j) matches the entry the library reported, times within a second. */
function assertSameAsNft(kernel: NftListing, entries: Map<string, NftEntry>, what: string): void {
  assert.deepEqual([...entries.keys()].sort(), [...kernel.keys()].sort(), `${what}: the same elements`);
  for (const [addr, k] of kernel) {
    const e = entries.get(addr)!;
    if (k.timeout === undefined) assert.equal(e.timeoutMs, 0, `${what} ${addr}: no own timeout`);
    else assert.equal(e.timeoutMs, k.timeout * 1000, `${what} ${addr}: timeout`);
    if (k.expires === undefined) assert.equal(e.expiresAt, null, `${what} ${addr}: never expires`);
    else assertExpiresClose(k.expires, e.expiresAt!, kernel, `${what} ${addr}`);
    if (k.data === undefined) assert.equal(e.data, null);
    else if (typeof k.data === 'number') assert.deepEqual(e.data, { type: 'mark', mark: k.data });
    else assert.deepEqual(e.data && e.data.type === 'addr_port' ? [e.data.addr, e.data.port] : null, k.data, `${what} ${addr}: data`);
  }
}

describe('nftables sets over netlink in network namespaces', function () {
  this.timeout(60_000);
  let master: Netns;
  let backup: Netns;
  let hm: Harness;
  let hb: Harness;

  before(async function () {
    const why = netnsUnavailable();
    assert.equal(why, undefined, `these tests need network namespaces: ${why}`);
    this.timeout(10 * 60_000); // may install nftables on a fresh machine
    master = await Netns.create('ssnft');
    backup = await Netns.create('ssnft');
    await master.must('nft', ['-f', '-'], RULESET);
    await backup.must('nft', ['-f', '-'], RULESET);
    hm = new Harness(master);
    hb = new Harness(backup);
  });

  after(async () => {
    await hm?.close();
    await hb?.close();
    await master?.destroy();
    await backup?.destroy();
  });

  describe('listSets', () => {
    it('lists every named set with its types, and says why the ones that cannot be replicated cannot', async () => {
      const sets = new Map((await hm.listSets({ family: 'inet', table: 'lb' })).map((s) => [s.ref.set, s]));
      assert.deepEqual([...sets.keys()].sort(), ['ap4', 'ap6', 'dyn', 'dyn6', 'mk', 'pairs', 'plain', 'ports', 'ranges', 'short', 'toport', 'v4', 'v6', 'verdicts']);
      for (const n of ['v4', 'v6', 'mk', 'ap4', 'ap6', 'plain', 'dyn', 'dyn6', 'short']) assert.equal(sets.get(n)!.supported, true, n);
      assert.equal(sets.get('ap6')!.dataType, 'ipv6_addr . inet_service');
      assert.equal(sets.get('mk')!.dataType, 'mark');
      assert.deepEqual(sets.get('dyn')!.flags, ['timeout', 'dynamic']);
      assert.equal(sets.get('v6')!.timeoutMs, 600_000);
      assert.match(sets.get('ranges')!.problem!, /interval/);
      assert.match(sets.get('ports')!.problem!, /key type inet_service/);
      assert.match(sets.get('pairs')!.problem!, /key type ipv4_addr \. inet_service/);
      assert.match(sets.get('verdicts')!.problem!, /verdict map/);
      assert.match(sets.get('toport')!.problem!, /map data type inet_service/);
      // Without a filter every family's sets are there too (the namespace has only this table).
      assert.equal((await hm.listSets()).length, sets.size);
      assert.deepEqual(await hm.listSets({ family: 'ip', table: 'nosuch' }), []);
    });
  });

  describe('NftPoller reads what nft shows', () => {
    it('an IPv4 set: own timeouts, expires given on add, and an element without either', async () => {
      const added = Date.now();
      await master.must('nft', ['add element inet lb v4 { 10.0.0.1 timeout 2m expires 90s, 10.0.0.2 timeout 30s, 10.0.0.3 timeout 1h expires 59m, 10.0.0.4 }']);
      const now = Date.now();
      const changes = await hm.poll(ref('v4'), { now, ...TOL });
      const polled = Date.now();
      assert.deepEqual(summary(changes), ['upsert 10.0.0.1', 'upsert 10.0.0.2', 'upsert 10.0.0.3', 'upsert 10.0.0.4']);
      const got = upserts(changes);
      assertSameAsNft(await nftElems(master, ref('v4'), 'set'), got, 'v4');
      assert.equal(got.get('10.0.0.1')!.timeoutMs, 120_000);
      assertExpiresAt(got.get('10.0.0.1')!.expiresAt!, 90_000, added, now, polled);
      assert.equal(got.get('10.0.0.4')!.expiresAt, null);
      assert.deepEqual(await hm.poll(ref('v4'), TOL), [], 'nothing changed: nothing reported');
    });

    it('an IPv6 set with a default timeout: elements without their own report timeout 0 and expire by the default', async () => {
      const added = Date.now();
      await master.must('nft', ['add element inet lb v6 { 2001:db8::1, 2001:db8::2 timeout 1h, ::ffff:10.1.2.3, fe80::1:2 }']);
      const now = Date.now();
      const got = upserts(await hm.poll(ref('v6'), { now }));
      const polled = Date.now();
      assertSameAsNft(await nftElems(master, ref('v6'), 'set'), got, 'v6');
      assert.equal(got.get('2001:db8::1')!.timeoutMs, 0);
      assertExpiresAt(got.get('2001:db8::1')!.expiresAt!, 600_000, added, now, polled);
      assert.equal(got.get('2001:db8::2')!.timeoutMs, 3_600_000);
      assert.equal(got.get('::ffff:a01:203')!.family, 6, 'keys are canonical address text');
    });

    it('a map to marks (host byte order)', async () => {
      await master.must('nft', ['add element inet lb mk { 10.0.1.1 timeout 1m : 0x2a, 10.0.1.2 : 0xffffffff, 10.0.1.3 timeout 5m expires 1m : 1 }']);
      const now = Date.now();
      const got = upserts(await hm.poll(ref('mk'), { now }));
      assertSameAsNft(await nftElems(master, ref('mk'), 'map'), got, 'mk');
      assert.deepEqual(got.get('10.0.1.2')!.data, { type: 'mark', mark: 0xffffffff });
    });

    it('maps to ipv4_addr . inet_service and ipv6_addr . inet_service', async () => {
      await master.must('nft', ['add element inet lb ap4 { 10.0.2.1 timeout 10m : 192.168.0.1 . 80, 10.0.2.2 timeout 1m expires 30s : 192.168.0.2 . 65535 }']);
      await master.must('nft', ['add element inet lb ap6 { 2001:db8::a timeout 10m : 2001:db8:1::1 . 443, ::1 : fd00::2 . 1 }']);
      const now = Date.now();
      const g4 = upserts(await hm.poll(ref('ap4'), { now }));
      const g6 = upserts(await hm.poll(ref('ap6'), { now }));
      assertSameAsNft(await nftElems(master, ref('ap4'), 'map'), g4, 'ap4');
      assertSameAsNft(await nftElems(master, ref('ap6'), 'map'), g6, 'ap6');
      assert.deepEqual(g4.get('10.0.2.2')!.data, { type: 'addr_port', family: 4, addr: '192.168.0.2', port: 65535 });
      assert.deepEqual(g6.get('2001:db8::a')!.data, { type: 'addr_port', family: 6, addr: '2001:db8:1::1', port: 443 });
    });

    it('a set without the timeout flag: elements never expire', async () => {
      await master.must('nft', ['add element inet lb plain { 10.0.3.1, 10.0.3.2 }']);
      const got = upserts(await hm.poll(ref('plain')));
      assert.deepEqual([...got.values()].map((e) => [e.addr, e.timeoutMs, e.expiresAt]).sort(), [
        ['10.0.3.1', 0, null],
        ['10.0.3.2', 0, null],
      ]);
    });

    it('a set that cannot be replicated is refused with the reason', async () => {
      await rejectsWith(hm.poll(ref('ranges')), 'unsupported', /interval set/);
      await rejectsWith(hm.poll(ref('verdicts')), 'unsupported', /verdict map/);
    });
  });

  describe('NftPoller reports changes', () => {
    const s = ref('short');
    it('the first poll reports everything, later polls only what was added, changed or removed', async () => {
      await master.must('nft', ['add element inet lb short { 10.0.4.1, 10.0.4.2, 10.0.4.3 timeout 2s }']);
      assert.deepEqual(summary(await hm.poll(s, TOL)), ['upsert 10.0.4.1', 'upsert 10.0.4.2', 'upsert 10.0.4.3']);
      assert.deepEqual(await hm.poll(s, TOL), []);
      await master.must('nft', ['add element inet lb short { 10.0.4.4 }']);
      assert.deepEqual(summary(await hm.poll(s, TOL)), ['upsert 10.0.4.4'], 'an added element');
      await master.must('nft', ['delete element inet lb short { 10.0.4.2 }']);
      assert.deepEqual(summary(await hm.poll(s, TOL)), ['delete 10.0.4.2'], 'a deleted element, long before its expiry');
      // Replacing an element with a later expiry moves its deadline: reported as changed.
      await master.must('nft', ['-f', '-'], 'delete element inet lb short { 10.0.4.1 }\nadd element inet lb short { 10.0.4.1 timeout 5m }\n');
      const moved = await hm.poll(s, TOL);
      assert.deepEqual(summary(moved), ['upsert 10.0.4.1']);
      assert.equal(upserts(moved).get('10.0.4.1')!.timeoutMs, 300_000);
      await sleep(2500);
      assert.deepEqual(summary(await hm.poll(s, TOL)), ['delete 10.0.4.3'], 'an element that expired');
    });

    it('with an early callback, each dump part\'s upserts come as it is read and deletes come at the end', async function () {
      this.timeout(60_000);
      const n = 6000;
      const lines = ['add set inet lb streamed { type ipv4_addr; flags timeout; }', 'add element inet lb streamed {'];
      for (let i = 0; i < n; i++) lines.push(`10.40.${i >> 8}.${i & 255} timeout 1h,`);
      lines.push('}');
      await master.must('nft', ['-f', '-'], `${lines.join('\n')}\n`);
      const st = ref('streamed');
      await settled(master, st, n);
      const first = await hm.pollEarly(st, TOL);
      // 6,000 elements take several 32 KiB dump parts: they arrive in more than one hand-over.
      assert.ok(first.parts.length >= 2, `${first.parts.length} parts`);
      const seen = new Set<string>();
      for (const part of first.parts) for (const line of summary(part)) {
        assert.match(line, /^upsert /);
        assert.ok(!seen.has(line), `${line} handed over twice`);
        seen.add(line);
      }
      assert.equal(seen.size, n);
      assert.deepEqual(first.rest, [], 'nothing left for the end of the first poll');
      await master.must('nft', ['-f', '-'], 'delete element inet lb streamed { 10.40.0.1, 10.40.20.7 }\nadd element inet lb streamed { 10.41.0.1 timeout 1h }\n');
      const second = await hm.pollEarly(st, TOL);
      assert.deepEqual(second.parts.flatMap((p) => summary(p)), ['upsert 10.41.0.1'], 'the new element, handed over with its part');
      assert.deepEqual(summary(second.rest).sort(), ['delete 10.40.0.1', 'delete 10.40.20.7'], 'deletes are known only at the end');
      await master.must('nft', ['delete set inet lb streamed']);
    });

    it('a data change in a map is reported; a deadline moving less than the tolerance is not', async () => {
      const m = ref('mk');
      await hm.poll(m);
      await master.must('nft', ['-f', '-'], 'delete element inet lb mk { 10.0.1.1 }\nadd element inet lb mk { 10.0.1.1 timeout 1m : 0x2b }\n');
      const changes = await hm.poll(m);
      assert.deepEqual(summary(changes), ['upsert 10.0.1.1']);
      assert.deepEqual(upserts(changes).get('10.0.1.1')!.data, { type: 'mark', mark: 0x2b });
      // With a 2-minute tolerance, re-adding an element one second later is not a change.
      await hm.poll(m, { toleranceMs: 120_000 });
      await sleep(1100);
      await master.must('nft', ['-f', '-'], 'delete element inet lb mk { 10.0.1.1 }\nadd element inet lb mk { 10.0.1.1 timeout 1m : 0x2b }\n');
      assert.deepEqual(await hm.poll(m, { toleranceMs: 120_000 }), []);
      assert.deepEqual(summary(await hm.poll(m)), ['upsert 10.0.1.1'], 'the default 20 ms tolerance sees it');
    });

    it('a set that vanishes gives one drop; when it comes back everything is reported again', async () => {
      await master.must('nft', ['add set inet lb gone { type ipv4_addr; flags timeout; }']);
      await master.must('nft', ['add element inet lb gone { 10.0.5.1, 10.0.5.2 }']);
      const g = ref('gone');
      assert.equal((await hm.poll(g, TOL)).length, 2);
      await master.must('nft', ['delete set inet lb gone']);
      assert.deepEqual(summary(await hm.poll(g, TOL)), ['drop']);
      assert.deepEqual(await hm.poll(g, TOL), [], 'only one drop');
      await master.must('nft', ['add set inet lb gone { type ipv4_addr; flags timeout; }']);
      await master.must('nft', ['add element inet lb gone { 10.0.5.1 }']);
      assert.deepEqual(summary(await hm.poll(g, TOL)), ['upsert 10.0.5.1']);
      // Redefined with another type: dropped, then reported in its new shape.
      await master.must('nft', ['-f', '-'], 'delete set inet lb gone\nadd map inet lb gone { type ipv4_addr : mark; flags timeout; }\nadd element inet lb gone { 10.0.5.1 : 7 }\n');
      const redefined = await hm.poll(g, TOL);
      assert.deepEqual(summary(redefined), ['drop', 'upsert 10.0.5.1']);
      assert.equal(redefined[0]!.op, 'drop', 'the drop comes first');
      // A missing table is a vanished set too.
      assert.deepEqual(summary(await hm.poll({ kind: 'nft', family: 'ip', table: 'nosuch', set: 'x' })), ['drop']);
    });

    it('while the set churns under it, every deletion is reported once, no element that stayed is reported deleted, and the changes add up to what nft lists', async function () {
      this.timeout(120_000);
      // 20,000 elements: a dump takes ~25 parts and the kernel restarts its walk for each, so
      // elements added or deleted between parts shift the walk; the poller must neither lose nor
      // invent elements because of it.
      const base: string[] = [];
      for (let a = 0; a < 200; a++) for (let b = 0; b < 100; b++) base.push(`10.60.${a}.${b}`);
      await master.must('nft', ['-f', '-'], `add set inet lb churn { type ipv4_addr; flags timeout; }\nadd element inet lb churn { ${base.join(', ')} }\n`);
      const c = ref('churn');
      const replica = new Map<string, NftEntry>();
      const deleted: string[] = [];
      const apply = (changes: Awaited<ReturnType<Harness['poll']>>): void => {
        for (const ch of changes) {
          if (ch.op === 'upsert' && ch.entry.kind === 'nft') replica.set(ch.entry.addr, ch.entry);
          else if (ch.op === 'delete') {
            assert.ok(replica.delete(ch.key), `delete of ${ch.key}, which was never reported`);
            deleted.push(ch.key);
          } else assert.fail(`unexpected ${ch.op}`);
        }
      };
      // A dump taken while the kernel resizes its hash table may skip elements it has never reported:
      // they come with the next poll (known elements it skips are looked up, never reported deleted).
      for (let i = 0; i < 10 && replica.size < base.length; i++) apply(await hm.poll(c, TOL));
      assert.equal(replica.size, base.length);
      // 100 transactions, each adding 100 new elements and deleting 100 old ones.
      const dir = mkdtempSync(join(tmpdir(), 'nft-churn-'));
      const churned: string[] = [];
      for (let k = 0; k < 100; k++) {
        const add = Array.from({ length: 100 }, (_, j) => `10.70.${k}.${j}`).join(', ');
        const gone = Array.from({ length: 100 }, (_, j) => `10.60.${k * 2 + (j >> 6)}.${j & 63}`);
        churned.push(...gone);
        const del = gone.join(', ');
        writeFileSync(join(dir, `${String(k).padStart(3, '0')}.nft`), `add element inet lb churn { ${add} }\ndelete element inet lb churn { ${del} }\n`);
      }
      const script = `for f in ${dir}/*.nft; do nft -f "$f" || exit 1; done`;
      const churner = master.sh(script);
      let done = false;
      void churner.finally(() => (done = true));
      let polls = 0;
      let lookups = 0;
      while (!done) {
        apply(await hm.poll(c, TOL));
        lookups += (await hm.call<PollStats>({ op: 'stats', ref: c, ...TOL })).lookups;
        polls++;
      }
      if (process.env['NFT_DEBUG']) process.stderr.write(`churn: ${polls} polls, ${lookups} lookups\n`);
      await churner;
      rmSync(dir, { recursive: true });
      apply(await hm.poll(c, TOL));
      const final = await nftElems(master, c, 'set');
      assert.equal(final.size, base.length, 'as many added as deleted');
      assert.deepEqual([...replica.keys()].sort(), [...final.keys()].sort(), `after ${polls} polls during the churn`);
      // Each deleted element reported deleted exactly once, and no element that stayed ever reported
      // deleted (a dump that missed it because the walk shifted is not a deletion).
      assert.deepEqual(deleted.sort(), churned.sort());
    });

    it('reset() forgets the view: the next poll reports every element again', async () => {
      const s2 = ref('plain');
      await hm.poll(s2, TOL);
      assert.deepEqual(await hm.poll(s2, TOL), []);
      await hm.call({ op: 'reset', ref: s2 });
      assert.deepEqual(summary(await hm.poll(s2, TOL)), ['upsert 10.0.3.1', 'upsert 10.0.3.2']);
    });
  });

  describe('a dynamic set updated from the packet path (no netlink events: polling finds it)', () => {
    it('elements added by traffic appear, a refresh by traffic moves the deadline, no traffic changes nothing', async () => {
      const d4 = ref('dyn');
      const d6 = ref('dyn6');
      assert.deepEqual(await hm.poll(d4, TOL), []);
      await hm.call({ op: 'udp', from: '127.0.0.2', to: '127.0.0.1', port: 5353 });
      await hm.call({ op: 'udp', from: '127.0.0.3', to: '127.0.0.1', port: 5353 });
      await hm.call({ op: 'udp', from: '::1', to: '::1', port: 5353 });
      const t1 = Date.now();
      const first = upserts(await hm.poll(d4, { now: t1, ...TOL }));
      assert.deepEqual([...first.keys()].sort(), ['127.0.0.2', '127.0.0.3']);
      assertSameAsNft(await nftElems(master, d4, 'set'), first, 'dyn');
      assert.deepEqual(summary(await hm.poll(d6, TOL)), ['upsert ::1']);

      await sleep(1500);
      assert.deepEqual(await hm.poll(d4, TOL), [], 'no traffic: the deadline stands still');
      await hm.call({ op: 'udp', from: '127.0.0.2', to: '127.0.0.1', port: 5353 });
      const b = Date.now();
      const refreshed = await hm.poll(d4, TOL);
      const dumpMs = Date.now() - b;
      assert.deepEqual(summary(refreshed), ['upsert 127.0.0.2'], 'only the refreshed element');
      // The refresh came 1.5 s after the first packet at least; a deadline read from a dump is early by
      // as much as the dump was late (its time is taken before it), so less what this poll took.
      const later = upserts(refreshed).get('127.0.0.2')!.expiresAt! - first.get('127.0.0.2')!.expiresAt!;
      assert.ok(later >= 1500 - dumpMs - 50, `the refresh moved the deadline later by ${later} ms (poll took ${dumpMs} ms)`);
    });
  });

  describe('NftWriter', () => {
    it('reproduces each kind of set on the backup: nft there shows the same elements, timeouts and remaining expires', async () => {
      for (const [name, kind] of [['v4', 'set'], ['v6', 'set'], ['mk', 'map'], ['ap4', 'map'], ['ap6', 'map'], ['plain', 'set']] as const) {
        await hm.call({ op: 'reset', ref: ref(name) });
        const entries = [...upserts(await hm.poll(ref(name))).values()];
        assert.ok(entries.length > 0, name);
        const res = await hb.write(ref(name), entries);
        assert.deepEqual(res, { written: entries.length, skipped: 0, expired: 0 }, name);
        const mine = await nftElems(master, ref(name), kind);
        const theirs = await nftElems(backup, ref(name), kind);
        // nft on both sides agrees with the entries read from the master and written to the backup.
        const written = new Map(entries.map((e) => [e.addr, e]));
        assertSameAsNft(mine, written, `${name} on the master`);
        assertSameAsNft(theirs, written, `${name} on the backup`);
        for (const [addr, m] of mine) {
          const b = theirs.get(addr)!;
          assert.deepEqual(b.data, m.data, `${name} ${addr} data`);
          assert.equal(b.timeout, m.timeout, `${name} ${addr} timeout`);
        }
        // The backup, polled, tells the same story.
        assertSameAsNft(theirs, upserts(await hb.poll(ref(name))), `${name} polled on the backup`);
        assert.deepEqual(await hb.write(ref(name), entries), { written: 0, skipped: entries.length, expired: 0 }, `${name}: writing again changes nothing`);
      }
    });

    it('an entry outliving the backup set\'s default timeout keeps its whole remaining life', async () => {
      const now = Date.now();
      const res = await hb.write(ref('short'), [{ kind: 'nft', addr: '10.0.6.1', family: 4, data: null, timeoutMs: 0, expiresAt: now + 300_000 }], now);
      assert.equal(res.written, 1);
      const listing = await nftElems(backup, ref('short'), 'set');
      const e = listing.get('10.0.6.1')!;
      // 300 s at the write, less the time until nft listed it (whole seconds).
      assert.ok(e.expires! >= 300 - (listing.after - now) / 1000 - 1 && e.expires! <= 300, `expires ${e.expires}s, listed ${listing.after - now} ms after the write`);
    });

    it('merges: adds the missing, replaces changed data or an earlier deadline, leaves the rest, skips expired entries', async () => {
      const s = ref('mk');
      await backup.must('nft', ['flush map inet lb mk']);
      await backup.must('nft', ['add element inet lb mk { 10.7.0.1 timeout 1h : 1, 10.7.0.2 timeout 1h : 2, 10.7.0.3 timeout 1h expires 10m : 3, 10.7.0.4 timeout 1h : 4 }']);
      const now = Date.now();
      const entry = (addr: string, mark: number, expiresIn: number): NftEntry => ({
        kind: 'nft', addr, family: 4, data: { type: 'mark', mark }, timeoutMs: 3_600_000, expiresAt: now + expiresIn,
      });
      const res = await hb.write(s, [
        entry('10.7.0.1', 1, 1_800_000), // same data, kernel lives longer: left alone
        entry('10.7.0.2', 22, 1_800_000), // other data: replaced
        entry('10.7.0.3', 3, 1_800_000), // kernel expires earlier: replaced
        entry('10.7.0.5', 5, 1_800_000), // missing: added
        entry('10.7.0.6', 6, -1), // expired: not written
      ], now);
      assert.deepEqual(res, { written: 3, skipped: 1, expired: 1 });
      const k = await nftElems(backup, s, 'map');
      assert.deepEqual([...k.keys()].sort(), ['10.7.0.1', '10.7.0.2', '10.7.0.3', '10.7.0.4', '10.7.0.5'], '10.7.0.4 was not in the entries and stays');
      assert.ok(k.get('10.7.0.1')!.expires! > 3500, 'untouched');
      assert.equal(k.get('10.7.0.2')!.data, 22);
      // 1800 s at the write, less the time until nft listed it (whole seconds).
      const lo = 1800 - (k.after - now) / 1000 - 1;
      assert.ok(k.get('10.7.0.3')!.expires! >= lo && k.get('10.7.0.3')!.expires! <= 1800, `moved to the later deadline: ${k.get('10.7.0.3')!.expires}s`);
      assert.ok(k.get('10.7.0.5')!.expires! >= lo && k.get('10.7.0.5')!.expires! <= 1800, `${k.get('10.7.0.5')!.expires}s`);
    });

    it('a transaction is all or nothing: a full set or one invalid element applies none of it', async () => {
      await backup.must('nft', ['add set inet lb tiny { type ipv4_addr; flags timeout; size 3; }']);
      const now = Date.now();
      const five = [1, 2, 3, 4, 5].map((i): NftEntry => ({ kind: 'nft', addr: `10.8.0.${i}`, family: 4, data: null, timeoutMs: 60_000, expiresAt: now + 30_000 }));
      const e = await rejectsWith(hb.write(ref('tiny'), five, now), 'kernel', /ENFILE.*nothing was applied/);
      assert.equal(e.errno, 23);
      assert.equal((await nftElems(backup, ref('tiny'), 'set')).size, 0);
      // Raw: two valid IPv4 keys around a 3-byte key, in one message of one transaction.
      const errnos = await hb.call<number[]>({ op: 'rawAdd', ref: ref('tiny'), elems: [{ key: '0a080001' }, { key: '0a0800' }, { key: '0a080003' }] });
      assert.deepEqual(errnos, [0, 22, 0], 'EINVAL for the element message');
      assert.equal((await nftElems(backup, ref('tiny'), 'set')).size, 0, 'not even the valid elements');
      assert.deepEqual(await hb.call<number[]>({ op: 'rawAdd', ref: ref('tiny'), elems: [{ key: '0a080001' }] }), [0, 0, 0]);
      assert.deepEqual([...(await nftElems(backup, ref('tiny'), 'set')).keys()], ['10.8.0.1']);
    });

    it('refuses a missing set, an unsupported set and entries of the wrong type, naming the set and the reason', async () => {
      const v4 = (addr: string, extra: Partial<NftEntry> = {}): NftEntry => ({ kind: 'nft', addr, family: 4, data: null, timeoutMs: 0, expiresAt: null, ...extra });
      await rejectsWith(hb.write(ref('nosuch'), [v4('10.9.0.1')]), 'no-such-set', /nft inet lb nosuch: the set does not exist/);
      await rejectsWith(hb.write({ kind: 'nft', family: 'ip', table: 'nosuch', set: 's' }, [v4('10.9.0.1')]), 'no-such-set', /nft ip nosuch s/);
      await rejectsWith(hb.write(ref('ranges'), [v4('10.9.0.1')]), 'unsupported', /nft inet lb ranges: interval set/);
      await rejectsWith(hb.write(ref('v4'), [v4('10.9.0.1'), { kind: 'nft', addr: '2001:db8::9', family: 6, data: null, timeoutMs: 0, expiresAt: null }]), 'mismatch', /entry 1: 2001:db8::9 is IPv6 but the set \(ipv4_addr\) holds IPv4 keys/);
      await rejectsWith(hb.write(ref('ap4'), [v4('10.9.0.1', { data: { type: 'mark', mark: 1 } })]), 'mismatch', /holds addr_port data but the entry maps to mark/);
      await rejectsWith(hb.write(ref('ap6'), [{ kind: 'nft', addr: '::9', family: 6, data: { type: 'addr_port', family: 4, addr: '10.0.0.1', port: 1 }, timeoutMs: 0, expiresAt: null }]), 'mismatch', /IPv6 backends/);
      await rejectsWith(hb.write(ref('v4'), [v4('10.9.0.1', { data: { type: 'mark', mark: 1 } })]), 'mismatch', /holds no data/);
      await rejectsWith(hb.write(ref('plain'), [v4('10.9.0.1', { expiresAt: Date.now() + 1000 })]), 'mismatch', /no timeout flag/);
      assert.equal((await nftElems(backup, ref('v4'), 'set')).has('10.9.0.1'), false, 'nothing written');
    });

    it('clear() flushes the set in one transaction', async () => {
      assert.ok((await nftElems(backup, ref('mk'), 'map')).size > 0);
      await hb.call({ op: 'clear', ref: ref('mk') });
      assert.equal((await nftElems(backup, ref('mk'), 'map')).size, 0);
      await rejectsWith(hb.call({ op: 'clear', ref: ref('nosuch') }), 'no-such-set', /nosuch/);
    });
  });

  describe('100,000 elements', function () {
    this.timeout(300_000);
    it('round trip: polled on the master, written in one transaction on the backup, nft shows the same on both', async () => {
      const n = 100_000;
      const lines = ['add set inet lb big { type ipv4_addr; flags timeout; }', 'add element inet lb big {'];
      for (let i = 0; i < n; i++) lines.push(`10.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255} timeout 1h expires ${600 + (i % 3000)}s,`);
      lines.push('}');
      await master.must('nft', ['-f', '-'], `${lines.join('\n')}\n`);
      await backup.must('nft', ['add set inet lb big { type ipv4_addr; flags timeout; }']);
      const big = ref('big');
      const t = Date.now();
      // Right after a bulk insert the kernel grows its hash table, and a dump taken meanwhile may
      // skip elements: they are reported by the next poll.
      const written = upserts(await hm.poll(big, { now: t, ...TOL }));
      for (let i = 0; i < 10 && written.size < n; i++) for (const [a, e] of upserts(await hm.poll(big, TOL))) written.set(a, e);
      assert.equal(written.size, n);
      assert.deepEqual(await hm.poll(big, TOL), [], 'the idle poll reports nothing');
      const entries = [...written.values()];
      assert.deepEqual(await hb.write(big, entries), { written: n, skipped: 0, expired: 0 });
      const mine = await settled(master, big, n);
      const theirs = await settled(backup, big, n);
      for (const [addr, m] of mine) {
        const b = theirs.get(addr);
        assert.ok(b, addr);
        assert.equal(b.timeout, 3600);
        const e = written.get(addr)!;
        assertExpiresClose(m.expires, e.expiresAt!, mine, `${addr} on the master`);
        assertExpiresClose(b.expires, e.expiresAt!, theirs, `${addr} on the backup`);
      }
    });
  });
});
