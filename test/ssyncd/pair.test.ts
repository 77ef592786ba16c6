// Three directors and a client as network namespaces: lb1 (master) joined to lb2 and lb3 (backups)
// by veth pairs, the client cl sending real traffic into lb1. Real iptables `-m recent` rules and
// real nftables timeout sets/maps fill from that traffic and from `+addr` / `nft add element`. Real
// ssyncd daemons run in the directors, driven with the real ssyncdctl.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import { parseRecentTable } from '../../session-sync/recent/parse.js';
import { holderOf, link, Netns, netnsUnavailable, sendUdp, sleep, type Holder } from '../helpers/netns.js';
import { Daemon, eventually } from '../helpers/ssyncd.js';

interface RecentJson {
  tables: { name: string; entries: { addr: string; ttl: number; hitsMs: number[] }[] }[];
}
interface NftJson {
  sets: { family: string; table: string; set: string; elements: { addr: string; data: unknown; timeoutMs: number; expiresInMs: number | null }[] }[];
}
interface NftCliElem {
  elem?: { val: string; timeout?: number; expires?: number };
}

const POLL_MS = 200;
const RULESET = `
table inet lb {
  set persist4 { type ipv4_addr; flags dynamic,timeout; timeout 10m; }
  set persist6 { type ipv6_addr; flags dynamic,timeout; timeout 10m; }
  map client_be { type ipv4_addr : ipv4_addr . inet_service; flags timeout; timeout 10m; }
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 9 update @persist4 { ip saddr }
    udp dport 9 update @persist6 { ip6 saddr }
  }
}
`;
const CLIENTS4 = Array.from({ length: 12 }, (_, i) => `10.1.0.${20 + i}`);
const CLIENTS6 = ['fd01::20', 'fd01::21', 'fd01::22'];

/** `addr -> sorted hits` of a show-recent JSON table. */
function recentMap(j: RecentJson, table: string): Map<string, { ttl: number; hits: number[] }> {
  const t = j.tables.find((x) => x.name === table);
  return new Map((t?.entries ?? []).map((e) => [e.addr, { ttl: e.ttl, hits: e.hitsMs }]));
}

/** The copies agree: same addresses and ttls, every hit within `slackMs`. */
function assertSameRecent(a: RecentJson, b: RecentJson, slackMs: number): void {
  assert.deepEqual(a.tables.map((t) => t.name), b.tables.map((t) => t.name));
  for (const t of a.tables) {
    const x = recentMap(a, t.name);
    const y = recentMap(b, t.name);
    assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort(), `addresses of ${t.name}`);
    for (const [addr, e] of x) {
      const f = y.get(addr)!;
      assert.equal(f.ttl, e.ttl, `${t.name} ${addr} ttl`);
      assert.equal(f.hits.length, e.hits.length, `${t.name} ${addr} hit count`);
      e.hits.forEach((h, i) => assert.ok(Math.abs(h - f.hits[i]!) <= slackMs, `${t.name} ${addr} hit ${i}: ${h} vs ${f.hits[i]}`));
    }
  }
}

function nftMap(j: NftJson, set: string): Map<string, { data: unknown; expiresInMs: number | null }> {
  const s = j.sets.find((x) => x.set === set);
  return new Map((s?.elements ?? []).map((e) => [e.addr, { data: e.data, expiresInMs: e.expiresInMs }]));
}

describe('ssyncd: a master and two backups in network namespaces', function () {
  this.timeout(120_000);
  let cl: Netns, lb1: Netns, lb2: Netns, lb3: Netns;
  let h1: Holder, h2: Holder, h3: Holder;
  let master: Daemon, b2: Daemon, b3: Daemon;
  let dir: string;
  let lb12If = '';

  const masterProc = (table: string): Set<string> => new Set(parseRecentTable(table, readFileSync(join(h1.procDir, table), 'latin1')).entries.map((e) => e.addr));
  const backupProc = (table: string): Set<string> => new Set(parseRecentTable(table, readFileSync(join(h2.procDir, table), 'latin1')).entries.map((e) => e.addr));
  const converged = async (b: Daemon): Promise<boolean> => {
    const [m, x] = await Promise.all([master.json<RecentJson>(['show', 'recent']), b.json<RecentJson>(['show', 'recent'])]);
    const [mn, xn] = await Promise.all([master.json<NftJson>(['show', 'nft']), b.json<NftJson>(['show', 'nft'])]);
    const keys = (j: RecentJson): string => JSON.stringify(j.tables.map((t) => [t.name, t.entries.map((e) => `${e.addr}/${e.hitsMs.length}`)]));
    const nkeys = (j: NftJson): string => JSON.stringify(j.sets.map((s) => [s.set, s.elements.map((e) => e.addr)]));
    return keys(m) === keys(x) && nkeys(mn) === nkeys(xn) && m.tables.length > 0;
  };

  before(async function () {
    const why = netnsUnavailable();
    if (why) throw new Error(`these tests need root on Linux: ${why}`);
    dir = mkdtempSync(join(tmpdir(), 'ssyncd-pair-'));
    [cl, lb1, lb2, lb3] = await Promise.all(['sscl', 'sslb1', 'sslb2', 'sslb3'].map((p) => Netns.create(p)));
    await link(cl, { v4: '10.1.0.1', v6: 'fd01::1' }, lb1, { v4: '10.1.0.2', v6: 'fd01::2' });
    const l12 = await link(lb1, { v4: '10.2.0.1', v6: 'fd02::1' }, lb2, { v4: '10.2.0.2', v6: 'fd02::2' });
    lb12If = l12.aIf;
    await link(lb1, { v4: '10.3.0.1', v6: 'fd03::1' }, lb3, { v4: '10.3.0.2', v6: 'fd03::2' });
    const clIf = (await cl.must('ip', ['-o', 'link', 'show'])).split('\n').map((l) => /^\d+: (va[0-9a-f]+)@/.exec(l)?.[1]).find(Boolean)!;
    for (const a of CLIENTS4) await cl.must('ip', ['addr', 'add', `${a}/24`, 'dev', clIf]);
    for (const a of CLIENTS6) await cl.must('ip', ['-6', 'addr', 'add', `${a}/64`, 'dev', clIf, 'nodad']);
    for (const lb of [lb1, lb2, lb3]) {
      await lb.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', 'sticky', '--set']);
      await lb.must('ip6tables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', 'sticky6', '--set']);
      await lb.must('nft', ['-f', '-'], RULESET);
    }
    [h1, h2, h3] = await Promise.all([holderOf(lb1), holderOf(lb2), holderOf(lb3)]);
    // Real traffic from the clients: each client's first packets set its recent entry and set element.
    for (const [i, a] of CLIENTS4.entries()) await sendUdp(cl, { family: 4, src: a, dst: '10.1.0.2', count: 1 + (i % 3) });
    for (const a of CLIENTS6) await sendUdp(cl, { family: 6, src: a, dst: 'fd01::2' });
    await lb1.sh('echo +192.0.2.77 > /proc/net/xt_recent/sticky');
    await lb1.must('nft', ['add', 'element', 'inet', 'lb', 'client_be', '{ 10.1.0.20 timeout 5m expires 4m : 192.168.7.1 . 80, 10.1.0.21 : 192.168.7.2 . 8080 }']);

    const key = join(dir, 'ssyncd.key');
    writeFileSync(key, 'a shared secret of the director pair, 32+ bytes\n');
    chmodSync(key, 0o600);
    const common = [
      `key_file ${key}`,
      `poll_interval_ms ${POLL_MS}`,
      'heartbeat_ms 200',
      'dead_time_ms 1000',
      'reconnect_max_ms 400',
      'sync_recent yes',
      'sync_nft inet lb persist4, inet lb persist6, inet lb client_be',
    ];
    master = new Daemon({ ns: lb1, name: 'lb1', args: ['-M', '-p', '7777'], config: common });
    b2 = new Daemon({ ns: lb2, name: 'lb2', args: ['-B', '-a', '10.2.0.1', '-p', '7777'], config: common });
    // lb3 is a warm standby: it merges the copy into its own kernel tables as it arrives.
    b3 = new Daemon({ ns: lb3, name: 'lb3', args: ['-B', '-a', 'fd03::1', '-p', '7777'], config: [...common, 'tables_apply continuous'] });
    await master.start();
    await Promise.all([b2.start(), b3.start()]);
  });

  after(async () => {
    for (const d of [master, b2, b3]) await d?.kill9();
    for (const h of [h1, h2, h3]) h?.child.kill('SIGKILL');
    await Promise.all([cl, lb1, lb2, lb3].map((n) => n?.destroy()));
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const d of [master, b2, b3]) if (d) rmSync(d.dir, { recursive: true, force: true });
  });

  it('the master reads its kernel tables and both backups (one over IPv4, one over IPv6) hold the same copy', async () => {
    assert.ok(await eventually(() => converged(b2), 15_000), `lb2 never converged\n${b2.log()}\n${master.log()}`);
    assert.ok(await eventually(() => converged(b3), 15_000), `lb3 never converged\n${b3.log()}`);
    const m = await master.json<RecentJson>(['show', 'recent']);
    // The master's copy is the kernel's table: every address in /proc, traffic and +addr alike.
    assert.deepEqual([...recentMap(m, 'sticky').keys()].sort(), [...masterProc('sticky')].sort());
    assert.ok(recentMap(m, 'sticky').has('192.0.2.77'));
    assert.deepEqual([...recentMap(m, 'sticky6').keys()].sort(), [...CLIENTS6].sort());
    assert.equal(recentMap(m, 'sticky').get('10.1.0.22')?.hits.length, 3, 'three packets, three hits');
    assert.equal(recentMap(m, 'sticky').get('10.1.0.20')?.ttl, 64, 'ttl of the packets');
    for (const b of [b2, b3]) assertSameRecent(m, await b.json<RecentJson>(['show', 'recent']), POLL_MS + 50);
    const tm = Date.now();
    const mn = await master.json<NftJson>(['show', 'nft']);
    const bn = await b2.json<NftJson>(['show', 'nft']);
    const te = Date.now();
    assert.deepEqual([...nftMap(mn, 'persist4').keys()].sort(), [...CLIENTS4].sort());
    assert.deepEqual(nftMap(bn, 'client_be').get('10.1.0.21')?.data, { type: 'addr_port', family: 4, addr: '192.168.7.2', port: 8080 });
    for (const [addr, e] of nftMap(mn, 'persist4')) {
      // The same deadline on both sides within 1.5 s, each shown as the life left when its ssyncdctl
      // asked: the backup was asked later, by up to the te - tm the two asks took (a node start
      // each, which a busy machine can make long), so it may show that much less.
      const lessBy = (e.expiresInMs ?? 0) - (nftMap(bn, 'persist4').get(addr)?.expiresInMs ?? -1e9);
      assert.ok(lessBy > -1500 && lessBy < te - tm + 1500, `${addr} remaining life: ${lessBy} ms less on the backup, asked within ${te - tm} ms`);
    }
    const st = await master.json<{ peers: { state: string }[] }>(['status']);
    assert.deepEqual(st.peers.map((p) => p.state), ['connected', 'connected']);
    assert.match(master.log(), /Backup node connected: lb2 .*\(authenticated\)/);
  });

  it('a backup with `tables_apply continuous` has the tables in its own kernel as they arrive, without a write', async () => {
    const proc3 = (table: string): Set<string> => new Set(parseRecentTable(table, readFileSync(join(h3.procDir, table), 'latin1')).entries.map((e) => e.addr));
    const nft3 = async (set: string): Promise<Map<string, number>> => {
      const j = JSON.parse(await lb3.must('nft', ['-j', 'list', 'set', 'inet', 'lb', set])) as { nftables: { set?: { elem?: (string | NftCliElem)[] } }[] };
      return new Map((j.nftables.find((x) => x.set)?.set?.elem ?? []).map((e) => (typeof e === 'string' ? [e, 0] : [e.elem!.val, e.elem!.expires ?? 0])));
    };
    const hasAll = (got: Set<string> | Map<string, number>, want: Iterable<string>): boolean => [...want].every((a) => got.has(a));
    assert.ok(await eventually(async () => hasAll(proc3('sticky'), masterProc('sticky')) && hasAll(await nft3('persist4'), CLIENTS4), 10_000), `lb3's kernel never got the copy\n${b3.log()}`);
    const m = JSON.parse(await lb1.must('nft', ['-j', 'list', 'set', 'inet', 'lb', 'persist4'])) as { nftables: { set?: { elem?: (string | NftCliElem)[] } }[] };
    const mexp = new Map(m.nftables.find((x) => x.set)!.set!.elem!.map((e) => (typeof e === 'string' ? [e, 0] : [e.elem!.val, e.elem!.expires ?? 0])));
    for (const [a, exp] of await nft3('persist4')) if (mexp.has(a)) assert.ok(Math.abs(exp - mexp.get(a)!) <= 2, `${a}: expires ${exp} on lb3 vs ${mexp.get(a)} on the master`);
    assert.match(await lb3.must('nft', ['list', 'map', 'inet', 'lb', 'client_be']), /10\.1\.0\.21 (timeout \S+ )?expires \S+ : 192\.168\.7\.2 \. 8080/);
    // A change on the master lands in lb3's kernel by itself.
    await lb1.sh('echo +192.0.2.88 > /proc/net/xt_recent/sticky');
    await lb1.must('nft', ['add', 'element', 'inet', 'lb', 'client_be', '{ 10.7.7.7 timeout 5m : 192.168.7.3 . 80 }']);
    const mapped = async (): Promise<boolean> => /10\.7\.7\.7 (timeout \S+ )?expires \S+ : 192\.168\.7\.3 \. 80\b/.test(await lb3.must('nft', ['list', 'map', 'inet', 'lb', 'client_be']));
    assert.ok(await eventually(async () => proc3('sticky').has('192.0.2.88') && (await mapped()), 10_000), `new entries never reached lb3's kernel\n${b3.log()}`);
    assert.ok(!backupProc('sticky').has('192.0.2.88'), 'lb2 (on-write) leaves its kernel alone until `write`');
  });

  it('write recent and write nft reproduce the tables in the backup kernel, merging (nothing flushed)', async () => {
    await lb2.sh('echo +198.51.100.1 > /proc/net/xt_recent/sticky'); // the backup's own entry must survive
    const w = await b2.ctl(['write', 'recent']);
    assert.equal(w.stdout, 'writing datarecent data written correclty\n');
    assert.equal(w.code, 0);
    const want = masterProc('sticky');
    const got = backupProc('sticky');
    for (const a of want) assert.ok(got.has(a), `${a} restored`);
    assert.ok(got.has('198.51.100.1'), 'merge, never flush');
    const w2 = await b2.ctl(['write', 'recent']);
    assert.equal(w2.code, 0);
    const hits = parseRecentTable('sticky', readFileSync(join(h2.procDir, 'sticky'), 'latin1')).entries.find((e) => e.addr === '10.1.0.22')!;
    assert.equal(hits.stamps.length, 1, 'a second write does not add a hit to an entry already there');
    const wn = await b2.ctl(['write', 'nft']);
    assert.equal(wn.code, 0, wn.stdout);
    const listed = JSON.parse(await lb2.must('nft', ['-j', 'list', 'set', 'inet', 'lb', 'persist4'])) as { nftables: { set?: { elem?: (string | NftCliElem)[] } }[] };
    const elems = listed.nftables.find((x) => x.set)!.set!.elem!.map((e) => (typeof e === 'string' ? { val: e } : e.elem!));
    assert.deepEqual(elems.map((e) => e.val).sort(), [...CLIENTS4].sort());
    const masterList = JSON.parse(await lb1.must('nft', ['-j', 'list', 'set', 'inet', 'lb', 'persist4'])) as typeof listed;
    const mexp = new Map(masterList.nftables.find((x) => x.set)!.set!.elem!.map((e) => (typeof e === 'string' ? [e, 0] : [e.elem!.val, e.elem!.expires ?? 0])));
    for (const e of elems) assert.ok(Math.abs((e.expires ?? 0) - (mexp.get(e.val) ?? 0)) <= 2, `${e.val}: expires ${e.expires} vs master ${mexp.get(e.val)}`);
    const map = await lb2.must('nft', ['list', 'map', 'inet', 'lb', 'client_be']);
    assert.match(map, /10\.1\.0\.21 (timeout \S+ )?expires \S+ : 192\.168\.7\.2 \. 8080/);
  });

  it('a deleted recent entry and an expired set element disappear from the backups', async () => {
    await lb1.sh('echo -10.1.0.25 > /proc/net/xt_recent/sticky');
    await lb1.must('nft', ['add', 'element', 'inet', 'lb', 'persist4', '{ 10.9.9.9 timeout 2s }']);
    assert.ok(await eventually(async () => nftMap(await b2.json<NftJson>(['show', 'nft']), 'persist4').has('10.9.9.9'), 5000), 'short-lived element replicated');
    assert.ok(
      await eventually(async () => {
        const r = recentMap(await b3.json<RecentJson>(['show', 'recent']), 'sticky');
        const n = nftMap(await b3.json<NftJson>(['show', 'nft']), 'persist4');
        return !r.has('10.1.0.25') && !n.has('10.9.9.9');
      }, 8000),
      'delete and expiry propagated',
    );
  });

  it('kill -9 of the master, then of a backup: restarted while the master is down it has everything from its journal, and write works', async () => {
    const before = await b2.json<RecentJson>(['show', 'recent']);
    await master.kill9();
    await b2.kill9();
    await lb2.sh('echo / > /proc/net/xt_recent/sticky'); // the backup's kernel table lost too
    await b2.start();
    const after = await b2.json<RecentJson>(['show', 'recent']);
    assertSameRecent(before, after, 1);
    const w = await b2.ctl(['write', 'recent']);
    assert.equal(w.stdout, 'writing datarecent data written correclty\n');
    for (const a of recentMap(before, 'sticky').keys()) assert.ok(backupProc('sticky').has(a), `${a} written from the journal`);
    const st = await b2.json<{ peers: { state: string }[] }>(['status']);
    assert.equal(st.peers[0]?.state, 'down');
  });

  it('the master comes back: what changed while it was down reaches the backups, and nothing stale stays', async () => {
    await lb1.sh('echo -10.1.0.26 > /proc/net/xt_recent/sticky; echo +192.0.2.99 > /proc/net/xt_recent/sticky');
    await lb1.must('nft', ['delete', 'element', 'inet', 'lb', 'persist4', '{ 10.1.0.27 }']);
    await master.start();
    for (const b of [b2, b3]) assert.ok(await eventually(() => converged(b), 15_000), `${b.spec.name} converged after the master restart\n${b.log()}`);
    const r = recentMap(await b2.json<RecentJson>(['show', 'recent']), 'sticky');
    assert.ok(!r.has('10.1.0.26') && r.has('192.0.2.99'));
    assert.ok(!nftMap(await b3.json<NftJson>(['show', 'nft']), 'persist4').has('10.1.0.27'));
  });

  it('link down and up: the backup notices the silence, reconnects, and catches up', async () => {
    await lb1.must('ip', ['link', 'set', lb12If, 'down']);
    await lb1.sh('echo +192.0.2.123 > /proc/net/xt_recent/sticky; echo -192.0.2.99 > /proc/net/xt_recent/sticky');
    assert.ok(await eventually(async () => (await b2.json<{ peers: { state: string }[] }>(['status'])).peers[0]?.state !== 'connected', 6000), 'dead timer fired');
    await lb1.must('ip', ['link', 'set', lb12If, 'up']);
    assert.ok(await eventually(() => converged(b2), 15_000), `lb2 caught up\n${b2.log()}`);
    const r = recentMap(await b2.json<RecentJson>(['show', 'recent']), 'sticky');
    assert.ok(r.has('192.0.2.123') && !r.has('192.0.2.99'));
    assert.match(b2.log(), /disconnected: peer silent for \d+ ms/);
  });

  it('a backup with the wrong key is refused and takes nothing; with the right key again it catches up', async () => {
    await b3.stop();
    const wrong = join(dir, 'wrong.key');
    writeFileSync(wrong, 'not the secret of this director pair at all\n');
    chmodSync(wrong, 0o600);
    await lb1.sh('echo +192.0.2.200 > /proc/net/xt_recent/sticky');
    await b3.start(['-k', wrong]);
    assert.ok(await eventually(async () => /failed to prove the shared key/.test(master.log()), 5000), master.log());
    assert.match(b3.log(), /master refused: authentication failed/);
    assert.ok(!recentMap(await b3.json<RecentJson>(['show', 'recent']), 'sticky').has('192.0.2.200'));
    await b3.stop();
    await b3.start();
    assert.ok(await eventually(() => converged(b3), 15_000));
  });

  it('real traffic on the master after all that still reaches every backup within a poll interval or so', async () => {
    await sendUdp(cl, { family: 4, src: '10.1.0.30', dst: '10.1.0.2', count: 2 });
    const t0 = Date.now();
    assert.ok(await eventually(async () => (recentMap(await b3.json<RecentJson>(['show', 'recent']), 'sticky').get('10.1.0.30')?.hits.length ?? 0) >= 3, 5000));
    assert.ok(Date.now() - t0 < 5000);
    for (const d of [master, b2, b3]) assert.ok(d.alive, `${d.spec.name} still running`);
    await sleep(1);
  });
});
