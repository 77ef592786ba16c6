// Pound HTTP sessions between a master and a backup ssyncd in two network namespaces joined by a veth
// pair, with a Pound sync-socket double (test/helpers/pound-double.ts) on each side: the doubles run in
// this process on unix socket paths the daemons reach (a distinct pound_socket_dir per node). Driven
// with the real ssyncdctl; every reply format of the http commands is checked on the way.

import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import { poundSocketPath } from '../../session-sync/pound/backend.js';
import { link, Netns, netnsUnavailable, sleep } from '../helpers/netns.js';
import { PoundDouble, TEST_POUND_CONFIG, type DoubleSession } from '../helpers/pound-double.js';
import { Daemon, eventually } from '../helpers/ssyncd.js';

interface ShowHttpJson {
  farms: { name: string; listeners: { listener: number; services: { service: number; sessions: { key: string; backend: number; lastAccess: number; content: string }[] }[] }[] }[];
}
interface CountHttpJson {
  farms: { name: string; services: { listener: number; service: number; count: number }[]; total: number }[];
  total: number;
}

const NOW = Math.floor(Date.now() / 1000);
const T = NOW - 300;
const SHOP_CONFIG = { listeners: [{ services: [{ backends: ['192.168.50.1', '192.168.50.2'] }] }] };
const WEB_SEED: DoubleSession[] = [
  { listener: 0, service: 0, key: 'JSESSIONID=a1', backend: 0, lastAcc: T },
  { listener: 0, service: 0, key: 'JSESSIONID=b2', backend: 2, lastAcc: T + 1 },
  // The same key in a sibling service: v1.0.0 wiped one with the other.
  { listener: 0, service: 1, key: 'JSESSIONID=a1', backend: 1, lastAcc: T + 2 },
  { listener: 1, service: 0, key: '198.51.100.23', backend: 258, lastAcc: T + 3 },
  { listener: 1, service: 0, key: 'old-client', backend: 5, lastAcc: NOW - 5000 },
];
const SHOP_SEED: DoubleSession[] = [{ listener: 0, service: 0, key: 'cart=42', backend: 1, lastAcc: T + 4 }];

/** `farm L/S/key>B@t` of a double. */
const poundSet = (farm: string, d: PoundDouble): string[] => d.sessions().map((s) => `${farm} ${s.listener}/${s.service}/${s.key}>${s.backend}@${s.lastAcc}`);
/** The same of a daemon's `show http --json`. */
const shownSet = (j: ShowHttpJson): string[] =>
  j.farms.flatMap((f) => f.listeners.flatMap((l) => l.services.flatMap((s) => s.sessions.map((x) => `${f.name} ${l.listener}/${s.service}/${x.key}>${x.backend}@${x.lastAccess}`))));
const sorted = (xs: string[]): string[] => [...xs].sort();

/** `show http` as v1.0.0 prints it, from the doubles' tables (farms and keys sorted, ordinals by number). */
function showText(farms: [string, PoundDouble, typeof TEST_POUND_CONFIG][]): string {
  let out = '';
  for (const [name, d, cfg] of [...farms].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    out += `farm:  ${name}\n`;
    const byL = new Map<number, Map<number, DoubleSession[]>>();
    for (const s of d.sessions()) {
      const m = byL.get(s.listener) ?? new Map<number, DoubleSession[]>();
      byL.set(s.listener, m);
      m.set(s.service, [...(m.get(s.service) ?? []), s]);
    }
    for (const [l, services] of [...byL].sort((a, b) => a[0] - b[0])) {
      out += `\thttp Listener: ${l}\n`;
      for (const [sv, list] of [...services].sort((a, b) => a[0] - b[0])) {
        out += ` \t\tService: ${sv}\n`;
        for (const s of [...list].sort((a, b) => (a.key < b.key ? -1 : 1))) {
          out += `\t\t\tSession: ${s.key} [ ${s.lastAcc} ] >> ${cfg.listeners[s.listener]!.services[s.service]!.backends[s.backend]}\n`;
        }
      }
    }
  }
  return out;
}

describe('ssyncd: Pound HTTP sessions between a master and a backup in network namespaces', function () {
  this.timeout(120_000);
  let lb1: Netns, lb2: Netns;
  let master: Daemon, backup: Daemon;
  let dirM: string, dirB: string;
  let mWeb: PoundDouble, mShop: PoundDouble, bWeb: PoundDouble, bShop: PoundDouble;
  const doubles = (): PoundDouble[] => [mWeb, mShop, bWeb, bShop].filter(Boolean);

  const startDouble = (dir: string, farm: string, config: typeof TEST_POUND_CONFIG, sessions: readonly DoubleSession[]): Promise<PoundDouble> =>
    PoundDouble.start({ path: poundSocketPath(dir, farm), name: farm, config, sessions });
  const backupShows = async (): Promise<string[]> => sorted(shownSet(await backup.json<ShowHttpJson>(['show', 'http'])));
  const masterShows = async (): Promise<string[]> => sorted(shownSet(await master.json<ShowHttpJson>(['show', 'http'])));
  /** The backup's copy is the master's doubles' tables. */
  const converged = async (): Promise<boolean> => {
    const want = sorted([...poundSet('shop', mShop), ...poundSet('web', mWeb)]);
    return JSON.stringify(await backupShows()) === JSON.stringify(want) && JSON.stringify(await masterShows()) === JSON.stringify(want);
  };
  const waitConverged = async (what: string, ms = 20_000): Promise<void> => {
    const ok = await eventually(converged, ms, 150);
    if (!ok) {
      const want = sorted([...poundSet('shop', mShop), ...poundSet('web', mWeb)]);
      assert.fail(`${what}: not converged\nwant   ${want.join('\n       ')}\nmaster ${(await masterShows()).join('\n       ')}\nbackup ${(await backupShows()).join('\n       ')}\n${master.log().slice(-3000)}\n${backup.log().slice(-2000)}`);
    }
  };

  before(async function () {
    const why = netnsUnavailable();
    if (why) throw new Error(`these tests need root on Linux: ${why}`);
    dirM = mkdtempSync(join(tmpdir(), 'pound-m-'));
    dirB = mkdtempSync(join(tmpdir(), 'pound-b-'));
    [lb1, lb2] = await Promise.all(['sspm', 'sspb'].map((p) => Netns.create(p)));
    await link(lb1, { v4: '10.46.0.1', v6: 'fd46::1' }, lb2, { v4: '10.46.0.2', v6: 'fd46::2' });
    const common = ['key_file none', 'poll_interval_ms 200', 'heartbeat_ms 200', 'dead_time_ms 1000', 'reconnect_min_ms 100', 'reconnect_max_ms 400'];
    master = new Daemon({ ns: lb1, name: 'pm', args: ['-M', '-p', '7790'], config: [...common, `pound_socket_dir ${dirM}`] });
    backup = new Daemon({ ns: lb2, name: 'pb', args: ['-B', '-a', '10.46.0.1', '-p', '7790'], config: [...common, `pound_socket_dir ${dirB}`] });
    mWeb = await startDouble(dirM, 'web', TEST_POUND_CONFIG, WEB_SEED);
    mShop = await startDouble(dirM, 'shop', SHOP_CONFIG, SHOP_SEED);
    // The backup's own Pounds have a session of their own: write http merges.
    bWeb = await startDouble(dirB, 'web', TEST_POUND_CONFIG, [{ listener: 0, service: 0, key: 'backup-own', backend: 1, lastAcc: T }]);
    bShop = await startDouble(dirB, 'shop', SHOP_CONFIG, []);
    await master.start();
    await backup.start();
  });

  after(async () => {
    for (const d of [master, backup]) await d?.kill9();
    for (const d of doubles()) await d.close().catch(() => undefined);
    await Promise.all([lb1, lb2].map((n) => n?.destroy()));
    for (const d of [dirM, dirB]) if (d) rmSync(d, { recursive: true, force: true });
    for (const d of [master, backup]) if (d) rmSync(d.dir, { recursive: true, force: true });
  });

  it('start and stop http reply as v1.0.0 where it was right, and say so where it was not', async () => {
    assert.deepEqual(await master.ctl(['show', 'http']), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await master.ctl(['count', 'http']), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await master.ctl(['stop', 'http', 'web']), { code: 1, stdout: 'http sync service not running\n\n', stderr: '' });
    assert.deepEqual(await master.ctl(['start', 'http', 'nopound']), { code: 1, stdout: 'starting http sync service\nerror adding http farm listener\n', stderr: '' });
    assert.match(master.log(), /start http nopound: cannot connect to Pound's sync socket .*\/ssync_nopound\.socket: .*ENOENT/);
    assert.deepEqual(await master.ctl(['start', 'http', 'web']), { code: 0, stdout: 'starting http sync service\nhttp farm added\n', stderr: '' });
    assert.deepEqual(await master.ctl(['start', 'http', 'web']), { code: 0, stdout: 'http farm already added\n', stderr: '' });
    assert.deepEqual(await master.ctl(['start', 'http', 'shop']), { code: 0, stdout: 'http farm added\n', stderr: '' });
    assert.deepEqual(await master.ctl(['stop', 'http', 'nopound']), { code: 1, stdout: 'http farm not found\n', stderr: '' });
    assert.equal(mWeb.accepted, 1, 'one connection to Pound: start http is idempotent');
  });

  it('Pound\'s dump reaches the backup; show and count http in the exact formats, text and JSON', async () => {
    await waitConverged('first dump');
    const want = showText([['web', mWeb, TEST_POUND_CONFIG], ['shop', mShop, SHOP_CONFIG]]);
    assert.equal((await master.ctl(['show', 'http'])).stdout, `${want}\n`);
    assert.equal((await backup.ctl(['show', 'http'])).stdout, `${want}\n`);
    assert.match(want, /farm:  web\n\thttp Listener: 0\n \t\tService: 0\n\t\t\tSession: JSESSIONID=a1 \[ \d+ \] >> 10\.0\.0\.1\n/);
    assert.deepEqual(await backup.ctl(['count', 'http']), { code: 0, stdout: 'farm:  shop\n1\nfarm:  web\n2\n1\n2\n\n', stderr: '' });
    const count = await backup.json<CountHttpJson>(['count', 'http']);
    assert.deepEqual(count, {
      farms: [
        { name: 'shop', services: [{ listener: 0, service: 0, count: 1 }], total: 1 },
        { name: 'web', services: [{ listener: 0, service: 0, count: 2 }, { listener: 0, service: 1, count: 1 }, { listener: 1, service: 0, count: 2 }], total: 5 },
      ],
      total: 6,
    });
    const show = await backup.json<ShowHttpJson>(['show', 'http']);
    assert.deepEqual(show.farms[1]!.listeners[1], { listener: 1, services: [{ service: 0, sessions: [
      { key: '198.51.100.23', backend: 258, lastAccess: T + 3, content: '10.1.1.2' },
      { key: 'old-client', backend: 5, lastAccess: NOW - 5000, content: '10.1.0.5' },
    ] }] });
  });

  it('sessions created, refreshed, deleted and expired on the master\'s Pound reach the backup', async () => {
    mWeb.add(0, 1, 'JSESSIONID=new', 0, NOW);
    mWeb.add(1, 0, '203.0.113.9', 299, NOW);
    mShop.add(0, 0, 'cart=43', 0, NOW);
    assert.ok(mWeb.touch(0, 0, 'JSESSIONID=a1', NOW - 10));
    assert.ok(mWeb.remove(0, 0, 'JSESSIONID=b2'));
    assert.equal(mWeb.expire(3600), 1, 'old-client idled out');
    await waitConverged('events');
    const shown = await backupShows();
    assert.ok(shown.includes(`web 0/0/JSESSIONID=a1>0@${NOW - 10}`), 'refreshed');
    assert.ok(shown.includes(`web 0/1/JSESSIONID=a1>1@${T + 2}`), 'the sibling service\'s session untouched');
    assert.ok(!shown.some((s) => /JSESSIONID=b2|old-client/.test(s)), 'deleted and expired');
  });

  it('write http puts exactly those sessions (ordinals, key, last access) into the backup\'s Pounds, merging', async () => {
    const r = await backup.ctl(['write', 'http']);
    assert.deepEqual(r, { code: 0, stdout: 'http session data written correclty\n', stderr: '' });
    const own = `web 0/0/backup-own>1@${T}`;
    assert.deepEqual(sorted(poundSet('web', bWeb)), sorted([...poundSet('web', mWeb), own]));
    assert.deepEqual(poundSet('shop', bShop), poundSet('shop', mShop));
    for (const d of [bWeb, bShop]) {
      assert.equal(d.badFrames, 0);
      assert.equal(d.faults, 0);
      assert.equal(d.streaming, false, 'no SYNC_REQUEST to the backup\'s Pound');
    }
    assert.match(backup.log(), /write http web: 5 sessions written/);
  });

  it('write http with one of the backup\'s Pounds down says it failed, and why', async () => {
    await bShop.close();
    const r = await backup.ctl(['write', 'http']);
    assert.deepEqual(r, { code: 1, stdout: 'error writing http session data\n', stderr: '' });
    assert.match(backup.log(), /write http shop Pound socket .*ssync_shop\.socket: cannot connect: .*ENOENT.*; 2 sessions not written/);
    bShop = await startDouble(dirB, 'shop', SHOP_CONFIG, []);
    assert.equal((await backup.ctl(['write', 'http'])).code, 0);
  });

  it('a key over 255 bytes is refused with a logged reason on the master; nothing desynchronises', async () => {
    const long = `SESSION=${'x'.repeat(400)}`;
    mWeb.add(0, 0, 'before-long', 1, NOW);
    mWeb.add(0, 0, long, 1, NOW);
    mWeb.add(0, 0, 'after-long', 2, NOW);
    mWeb.touch(0, 0, long, NOW + 1);
    mWeb.remove(0, 0, long);
    mWeb.add(0, 1, 'last', 1, NOW);
    await waitConverged('around the long key');
    assert.match(master.log(), /pound farm web: add 0\/0\/"SESSION=x{32}\.\.\.": key of 408 bytes: Pound's sync format carries at most 255 .*not replicated/);
    assert.doesNotMatch(master.log(), /skipped \d+ bytes/);
  });

  it('the master\'s Pound restarts: the copies are kept meanwhile, then it is re-requested and nothing stale stays', async () => {
    const before = await backupShows();
    await mWeb.close();
    // Noticed by the master (whenever a busy machine lets it), and a second later the backup still
    // holds its copy.
    const lost = /pound farm web: connection to .* lost \(closed by Pound\); keeping its \d+ sessions and reconnecting/;
    assert.ok(await eventually(async () => lost.test(master.log()), 10_000), master.log());
    await sleep(1000);
    assert.deepEqual(await backupShows(), before, 'the backup keeps its copy while the master\'s Pound is away');
    const kept = mWeb.sessions().filter((s) => s.key !== 'after-long');
    mWeb = await startDouble(dirM, 'web', TEST_POUND_CONFIG, [...kept, { listener: 1, service: 0, key: 'while-away', backend: 7, lastAcc: NOW }]);
    await waitConverged('after the Pound restart');
    assert.ok(!(await backupShows()).some((s) => s.includes('after-long')), 'swept');
    assert.match(master.log(), /pound farm web: reconnected after \d+ attempts?; sessions requested again/);
  });

  it('the backup\'s Pound restarts empty: write http fills it again', async () => {
    await bWeb.close();
    bWeb = await startDouble(dirB, 'web', TEST_POUND_CONFIG, []);
    assert.equal((await backup.ctl(['write', 'http'])).code, 0);
    assert.deepEqual(sorted(poundSet('web', bWeb)), sorted(poundSet('web', mWeb)));
  });

  it('kill -9 of the master ssyncd: the backup keeps its copy; restarted (sync_http in its config) it catches up', async () => {
    const before = await backupShows();
    await master.kill9();
    mWeb.add(0, 0, 'during-outage', 0, NOW);
    mWeb.remove(0, 1, 'last');
    await sleep(500);
    assert.deepEqual(await backupShows(), before);
    appendFileSync(master.configPath, 'sync_http web, shop\n');
    await master.start();
    await waitConverged('after the master restart');
    assert.equal(mWeb.accepted, 2, 'the restarted master connected to Pound again');
  });

  it('kill -9 of the backup ssyncd: its journal brings the copy back; write http works', async () => {
    await backup.kill9();
    await mShop.close(); // the master loses shop's Pound meanwhile: the copies keep it
    await backup.start();
    await waitConverged('after the backup restart');
    await bWeb.close();
    bWeb = await startDouble(dirB, 'web', TEST_POUND_CONFIG, []);
    assert.equal((await backup.ctl(['write', 'http'])).code, 0);
    assert.deepEqual(sorted(poundSet('web', bWeb)), sorted(poundSet('web', mWeb)));
    mShop = await startDouble(dirM, 'shop', SHOP_CONFIG, mShop.sessions());
  });

  it('clear http on the master re-sends everything; stop http drops the farm on the backup; clear http on the backup empties its copy', async () => {
    assert.deepEqual(await master.ctl(['clear', 'http']), { code: 0, stdout: '', stderr: '' });
    await waitConverged('after clear http on the master');
    assert.deepEqual(await master.ctl(['stop', 'http', 'shop']), { code: 0, stdout: 'http farm removed\n', stderr: '' });
    assert.ok(await eventually(async () => !(await backupShows()).some((s) => s.startsWith('shop ')), 10_000), 'shop dropped on the backup');
    assert.deepEqual(await master.ctl(['stop', 'http', 'shop']), { code: 1, stdout: 'http farm not found\n', stderr: '' });
    assert.deepEqual(await master.ctl(['stop', 'http', 'web']), { code: 0, stdout: 'http farm removed\n', stderr: '' });
    assert.deepEqual(await master.ctl(['stop', 'http', 'web']), { code: 1, stdout: 'http sync service not running\n\n', stderr: '' });
    assert.ok(await eventually(async () => (await backupShows()).length === 0, 10_000), 'web dropped on the backup');
    assert.ok(await eventually(async () => !mWeb.connected, 5000), 'stop http closed the connection to Pound');
    assert.deepEqual(await backup.ctl(['clear', 'http']), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await backup.ctl(['count', 'http']), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await backup.ctl(['write', 'http']), { code: 0, stdout: 'http session data written correclty\n', stderr: '' });
    for (const d of [master, backup]) assert.ok(d.alive, `${d.spec.name} still running`);
  });
});
