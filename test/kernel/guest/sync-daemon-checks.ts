// Runs INSIDE the lab guest, called by ipvs-roundtrip.ts: the kernel's connection-sync daemons through
// ipvs-netlink and through the ipvssync CLI, compared line for line with `ipvsadm -L --daemon`.
// The daemons use a dummy interface made here (syncd0), so nothing leaves the guest.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { IpvsError, type IpvsClient, type IpvsErrorCode, type SyncDaemon } from '../../../ipvs-netlink/index.js';
import { formatSyncDaemons } from '../../../ipvssync/format.js';
import { fromNlSyncDaemon } from '../../../ipvssync/netlink-backend.js';
import type { IpvsCheckId } from './checks.js';
import { handoffPaths, writeHandoff, writeMainConfig, type HandoffPaths, type HandoffVirtual } from './ipvssync-lab.js';

type Check = (id: IpvsCheckId, body: () => Promise<void> | void) => Promise<unknown>;

const IF = 'syncd0';
const ipvsadm = (...args: string[]): string => execFileSync('ipvsadm', args, { encoding: 'utf8' });
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });

/** A dummy interface with IPv4 and IPv6 addresses and multicast on, for the daemons' sockets. */
function makeSyncInterface(): void {
  ip('link', 'add', IF, 'type', 'dummy');
  ip('link', 'set', IF, 'multicast', 'on', 'up');
  ip('addr', 'add', '10.254.0.1/24', 'dev', IF);
  ip('-6', 'addr', 'add', 'fd00:254::1/64', 'dev', IF, 'nodad');
}

async function rejectsWith(p: Promise<unknown>, code: IpvsErrorCode, text: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof IpvsError, `not an IpvsError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(text), `message ${JSON.stringify(e.message)} should include ${JSON.stringify(text)}`);
    return true;
  });
}

/** `ipvsadm -L --daemon` and the same daemons as ipvssync prints them from getDaemons(). */
async function bothViews(c: IpvsClient): Promise<{ ipvsadm: string; ours: string }> {
  return { ipvsadm: ipvsadm('-L', '--daemon'), ours: formatSyncDaemons((await c.getDaemons()).map(fromNlSyncDaemon)) };
}

async function sameAsIpvsadm(c: IpvsClient, want: string): Promise<void> {
  const v = await bothViews(c);
  assert.equal(v.ours, v.ipvsadm, 'ipvssync and ipvsadm print the daemons differently');
  assert.equal(v.ipvsadm, want);
}

/** The sync daemons' kernel threads as `pid name` (ipvs-m:<gen>:<id>, ipvs-b:...), sorted. */
function syncThreads(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue; // gone meanwhile
    }
    if (/^ipvs-[mb]:/.test(comm)) out.push(`${pid} ${comm}`);
  }
  return out.sort();
}

async function stopAll(c: IpvsClient): Promise<void> {
  for (const d of await c.getDaemons()) await c.stopDaemon(d.state);
}

/** Runs before the table is flushed: the table under test has an IPv6 tunnel destination in an IPv4 service. */
export async function mixedFamilyCheck(check: Check, c: IpvsClient): Promise<void> {
  await check('daemons.mixed-family', async () => {
    makeSyncInterface();
    await rejectsWith(c.startDaemon({ state: 'master', ifname: IF, syncId: 0 }), 'EINVAL', 'destinations of the other address family');
    assert.deepEqual(await c.getDaemons(), []);
  });
}

export async function daemonChecks(check: Check, c: IpvsClient, observe: (k: string, v: string) => void): Promise<void> {
  const master: SyncDaemon = { state: 'master', ifname: IF, syncId: 1 };
  const backup: SyncDaemon = { state: 'backup', ifname: IF, syncId: 2, maxlen: 2000, group: '239.1.2.3', port: 9000, ttl: 3 };
  const LINES =
    `master sync daemon (mcast=${IF}, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n` +
    `backup sync daemon (mcast=${IF}, syncid=2, maxlen=2000, group=239.1.2.3, port=9000, ttl=3)\n`;

  await check('daemons.start', async () => {
    await c.startDaemon(master);
    await c.startDaemon(backup);
    assert.deepEqual(await c.getDaemons(), [{ ...master, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1 }, backup]);
    const threads = syncThreads();
    observe('sync daemon threads', threads.join(', '));
    assert.deepEqual(threads.map((t) => t.split(' ')[1]?.slice(0, 6)).sort(), ['ipvs-b', 'ipvs-m']);
  });

  await check('daemons.ipvsadm', async () => {
    observe('ipvsadm -L --daemon', ipvsadm('-L', '--daemon'));
    await sameAsIpvsadm(c, LINES);
  });

  await check('daemons.stop', async () => {
    const backupThread = syncThreads().filter((t) => t.includes('ipvs-b:'));
    await c.stopDaemon('master');
    assert.deepEqual(await c.getDaemons(), [backup]);
    await sameAsIpvsadm(c, LINES.split('\n')[1] + '\n');
    assert.deepEqual(syncThreads(), backupThread);
  });

  await check('daemons.errors', async () => {
    await rejectsWith(c.startDaemon({ ...backup, syncId: 9 }), 'EEXIST', 'A sync daemon of this state is already running');
    await rejectsWith(c.stopDaemon('master'), 'ESRCH', 'stopDaemon master sync daemon: No daemon is running');
    await rejectsWith(c.startDaemon({ ...master, ifname: 'nosuch0' }), 'ENODEV', 'startDaemon master sync daemon (mcast=nosuch0, syncid=1): No such network interface');
    await rejectsWith(c.startDaemon({ ...master, group: '10.0.0.1' }), 'EINVAL', 'sync group must be a multicast address');
    assert.deepEqual(await c.getDaemons(), [backup], 'the failed calls changed nothing');
    await c.stopDaemon('backup');
    assert.deepEqual(await c.getDaemons(), []);
    assert.equal(ipvsadm('-L', '--daemon'), '');
  });

  await check('daemons.from-ipvsadm', async () => {
    ipvsadm('--start-daemon', 'master', '--mcast-interface', IF, '--syncid', '5', '--sync-maxlen', '1400', '--mcast-group', '224.0.0.90', '--mcast-port', '8850', '--mcast-ttl', '4');
    assert.deepEqual(await c.getDaemons(), [{ state: 'master', ifname: IF, syncId: 5, maxlen: 1400, group: '224.0.0.90', port: 8850, ttl: 4 }]);
    await sameAsIpvsadm(c, `master sync daemon (mcast=${IF}, syncid=5, maxlen=1400, group=224.0.0.90, port=8850, ttl=4)\n`);
    await c.stopDaemon('master');
  });

  await check('daemons.ipv6', async () => {
    await c.startDaemon({ state: 'master', ifname: IF, syncId: 6, group: 'ff02::81' });
    await c.startDaemon({ state: 'backup', ifname: IF, syncId: 6, group: 'FF02:0::82', port: 8900 });
    assert.deepEqual(await c.getDaemons(), [
      { state: 'master', ifname: IF, syncId: 6, maxlen: 1452, group: 'ff02::81', port: 8848, ttl: 1 },
      { state: 'backup', ifname: IF, syncId: 6, maxlen: 1452, group: 'ff02::82', port: 8900, ttl: 1 },
    ]);
    await sameAsIpvsadm(
      c,
      `master sync daemon (mcast=${IF}, syncid=6, maxlen=1452, group=ff02::81, port=8848, ttl=1)\n` +
        `backup sync daemon (mcast=${IF}, syncid=6, maxlen=1452, group=ff02::82, port=8900, ttl=1)\n`,
    );
    await stopAll(c);
  });
}

// ------------------------------------------------------------------------------------------------
// The ipvssync CLI with the ipvs_sync_* keys.

const VIRTUAL: HandoffVirtual = {
  name: 'web',
  proto: 'tcp',
  addr: '10.30.0.1',
  port: 80,
  fwmark: 0,
  rt: 'dr',
  sched: 'wrr',
  reals: [{ name: 'w1', addr: '10.30.1.1', port: 80, weight: 5 }],
};

function runIpvssync(p: HandoffPaths, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['dist/ipvssync/cli.js', '-c', p.config, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Main config + hand-off with `keys` as the ipvs_sync_* lines; the log of the last run is observed. */
function configure(p: HandoffPaths, keys: readonly string[]): void {
  writeMainConfig(p, keys);
  writeHandoff(p, [VIRTUAL]);
}

export async function ipvssyncDaemonChecks(check: Check, c: IpvsClient, observe: (k: string, v: string) => void): Promise<void> {
  const p = handoffPaths('/tmp/sync-daemon-lab');
  rmSync(p.dir, { recursive: true, force: true });
  const keys = (id: number, mode = 'both'): string[] => [`ipvs_sync_daemon ${mode}`, `ipvs_sync_interface ${IF}`, `ipvs_sync_id ${id}`, 'ipvs_sync_ttl 2'];
  const lines = (id: number): string =>
    `master sync daemon (mcast=${IF}, syncid=${id}, maxlen=1472, group=224.0.0.81, port=8848, ttl=2)\n` +
    `backup sync daemon (mcast=${IF}, syncid=${id}, maxlen=1472, group=224.0.0.81, port=8848, ttl=2)\n`;
  let threads: string[] = [];

  await check('ipvssync.daemons.start', async () => {
    await stopAll(c);
    configure(p, keys(1));
    const r = runIpvssync(p, '--once');
    observe('ipvssync --once log (start)', r.err);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /IPVS start master sync daemon \(mcast=syncd0, syncid=1, group=224\.0\.0\.81, port=8848, ttl=2\): not running/);
    assert.match(r.err, /IPVS start backup sync daemon /);
    // ipvssync has exited: the daemons run on.
    await sameAsIpvsadm(c, lines(1));
    threads = syncThreads();
    assert.equal(threads.length, 2, threads.join(', '));
  });

  await check('ipvssync.daemons.list', async () => {
    const r = runIpvssync(p, '--list');
    assert.equal(r.code, 0, r.err);
    observe('ipvssync --list', r.out);
    assert.equal(r.out, ipvsadm('-Ln') + ipvsadm('-L', '--daemon'));
    assert.ok(r.out.endsWith(lines(1)));
  });

  await check('ipvssync.daemons.again', async () => {
    const r = runIpvssync(p, '--once');
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /IPVS sync daemons as wanted \(ipvs_sync_daemon both\)/);
    assert.doesNotMatch(r.err, /IPVS (start|stop) /);
    assert.deepEqual(syncThreads(), threads, 'the same kernel threads still run');
    await sameAsIpvsadm(c, lines(1));
  });

  await check('ipvssync.daemons.restart', async () => {
    configure(p, keys(2));
    const r = runIpvssync(p, '--once');
    observe('ipvssync --once log (restart)', r.err);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /IPVS stop master sync daemon \(mcast=syncd0, syncid=1, .*\): settings differ: syncid 1 -> 2 \(restarting it\)/);
    assert.match(r.err, /IPVS start master sync daemon \(mcast=syncd0, syncid=2, .*\): settings differ: syncid 1 -> 2/);
    assert.match(r.err, /IPVS start backup sync daemon \(mcast=syncd0, syncid=2, /);
    await sameAsIpvsadm(c, lines(2));
    const now = syncThreads();
    assert.equal(now.length, 2);
    assert.equal(now.filter((t) => threads.includes(t)).length, 0, `new threads expected: ${threads.join(', ')} -> ${now.join(', ')}`);

    configure(p, keys(2, 'master'));
    const m = runIpvssync(p, '--once');
    assert.equal(m.code, 0, m.err);
    assert.match(m.err, /IPVS stop backup sync daemon .*: not wanted \(ipvs_sync_daemon master\)/);
    await sameAsIpvsadm(c, lines(2).split('\n')[0] + '\n');
  });

  await stopAll(c).catch(() => undefined);
  await c.flush().catch(() => undefined);
}

export function removeSyncInterface(): void {
  try {
    ip('link', 'del', IF);
  } catch {
    // already gone
  }
}
