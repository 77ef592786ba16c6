// The ipvssync loop's sync-daemon pass with the in-memory backend: daemons started at start-up,
// left alone by a restart with the same keys, checked again at a full reload, failures logged and
// retried without stopping the loop, and never stopped at exit.

import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { parseMainConfig } from '../../common/main-config.js';
import type { SyncDaemonControl } from '../../ipvssync/backend.js';
import { formatSyncDaemons } from '../../ipvssync/format.js';
import { FlockLock } from '../../ipvssync/lock.js';
import { MemoryBackend } from '../../ipvssync/memory-backend.js';
import { parseSyncDaemonConfig, type SyncDaemonConfig } from '../../ipvssync/sync-daemon-config.js';
import { Syncer } from '../../ipvssync/syncer.js';
import type { SyncDaemon, SyncDaemonState, WantedSyncDaemon } from '../../ipvssync/types.js';
import { fullHead, handoffDir, memoryLogger, real, WEB_VIRTUAL, type HandoffDir } from './helpers.js';

function daemonConfig(text: string): SyncDaemonConfig {
  const cfg = parseMainConfig(text);
  const r = parseSyncDaemonConfig(cfg.raw, cfg.lines, 'surealived.cfg');
  if (!r.ok) assert.fail(r.errors.join('\n'));
  return r.config;
}

const BOTH = daemonConfig('ipvs_sync_daemon both\nipvs_sync_interface eth1\nipvs_sync_id 1\n');

/** Counts calls and fails the ones `fail` selects, like a kernel without the interface yet (ENODEV). */
class ControlSpy implements SyncDaemonControl {
  calls: string[] = [];
  fail: (call: string) => string | undefined = () => undefined;
  constructor(readonly inner: MemoryBackend) {}
  private check(call: string): void {
    this.calls.push(call);
    const why = this.fail(call);
    if (why) throw new Error(why);
  }
  async readDaemons(): Promise<SyncDaemon[]> {
    this.check('read');
    return this.inner.readDaemons();
  }
  async startDaemon(d: WantedSyncDaemon): Promise<void> {
    this.check(`start ${d.state}`);
    return this.inner.startDaemon(d);
  }
  async stopDaemon(state: SyncDaemonState): Promise<void> {
    this.check(`stop ${state}`);
    return this.inner.stopDaemon(state);
  }
}

describe('ipvssync loop: kernel sync daemons (in-memory backend)', () => {
  let d: HandoffDir;
  let lock: FlockLock;
  let clock = 0;
  const syncers: Syncer[] = [];
  let logged: string[] = [];

  function makeSyncer(backend: MemoryBackend, config: SyncDaemonConfig, control: SyncDaemonControl = backend): Syncer {
    const m = memoryLogger();
    logged = m.lines;
    const s = new Syncer({
      paths: { fullSyncFile: d.fullFile, fullReloadFile: d.reloadFile, diffSyncDir: d.diffDir },
      backend,
      lock,
      log: m.log,
      deleteUnmanaged: false,
      keepDiffs: false,
      now: () => clock,
      syncDaemons: { config, control },
    });
    syncers.push(s);
    return s;
  }
  const logHas = (re: RegExp): boolean => logged.some((l) => re.test(l));

  beforeEach(() => {
    d = handoffDir();
    lock = new FlockLock(d.lockFile);
    clock = 1_000_000;
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n\n`);
    writeFileSync(d.diff(100), '');
  });
  afterEach(async () => {
    for (const s of syncers.splice(0)) await s.close();
    lock.close();
    d.cleanup();
  });

  it('start-up starts the wanted daemons; a restart with the same keys changes nothing; exit stops none', async () => {
    const b = new MemoryBackend();
    const first = makeSyncer(b, BOTH);
    assert.equal((await first.start()).ok, true);
    assert.ok(logHas(/IPVS start master sync daemon \(mcast=eth1, syncid=1, group=224\.0\.0\.81, port=8848, ttl=1\): not running/));
    assert.ok(logHas(/IPVS start backup sync daemon/));
    await first.close();
    const listed = formatSyncDaemons(await b.readDaemons());
    assert.equal(
      listed,
      'master sync daemon (mcast=eth1, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n' +
        'backup sync daemon (mcast=eth1, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
      'closing the syncer left both running',
    );

    const spy = new ControlSpy(b);
    assert.equal((await makeSyncer(b, BOTH, spy).start()).ok, true);
    assert.deepEqual(spy.calls, ['read'], 'nothing started or stopped');
    assert.ok(logHas(/IPVS sync daemons as wanted \(ipvs_sync_daemon both\)/));
  });

  it('a changed ipvs_sync_id at the next start restarts the daemon with it, and says why', async () => {
    const b = new MemoryBackend();
    await makeSyncer(b, BOTH).start();
    await makeSyncer(b, daemonConfig('ipvs_sync_daemon both\nipvs_sync_interface eth1\nipvs_sync_id 2\n')).start();
    assert.ok(logHas(/IPVS stop master sync daemon \(mcast=eth1, syncid=1, .*\): settings differ: syncid 1 -> 2 \(restarting it\)/));
    assert.ok(logHas(/IPVS start master sync daemon \(mcast=eth1, syncid=2, .*\): settings differ: syncid 1 -> 2/));
    // The whole of what the operator reads, written out by hand: a stop names the daemon as running
    // (maxlen 1472 = a 1500-byte MTU less IPv4 and UDP headers, the size the kernel picks when none is
    // asked for), a start names what is asked (no maxlen); master before backup, each stop before its start.
    assert.deepEqual(
      logged.filter((l) => l.includes('sync daemon')).map((l) => l.replace(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\] /, '')),
      [
        'info  : IPVS stop master sync daemon (mcast=eth1, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1): settings differ: syncid 1 -> 2 (restarting it)\n',
        'info  : IPVS start master sync daemon (mcast=eth1, syncid=2, group=224.0.0.81, port=8848, ttl=1): settings differ: syncid 1 -> 2\n',
        'info  : IPVS stop backup sync daemon (mcast=eth1, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1): settings differ: syncid 1 -> 2 (restarting it)\n',
        'info  : IPVS start backup sync daemon (mcast=eth1, syncid=2, group=224.0.0.81, port=8848, ttl=1): settings differ: syncid 1 -> 2\n',
      ],
    );
    assert.deepEqual((await b.readDaemons()).map((x) => `${x.state} ${x.syncId}`), ['master 2', 'backup 2']);
  });

  it('ipvs_sync_daemon none never touches the daemons, not even to read them', async () => {
    const b = new MemoryBackend();
    await b.startDaemon({ state: 'backup', ifname: 'eth9', syncId: 7, maxlen: undefined, group: '224.0.0.81', port: 8848, ttl: 1 });
    const spy = new ControlSpy(b);
    const s = makeSyncer(b, { mode: 'none' }, spy);
    await s.start();
    writeFileSync(d.reloadFile, '');
    await s.iterate();
    assert.deepEqual(spy.calls, []);
    assert.equal((await b.readDaemons()).length, 1);
  });

  it('a failed start is logged, the loop goes on, and it is retried until it works', async () => {
    const b = new MemoryBackend();
    const spy = new ControlSpy(b);
    spy.fail = (call) => (call === 'start master' ? 'ENODEV: startDaemon master sync daemon (mcast=eth1, syncid=1): No such network interface' : undefined);
    const s = makeSyncer(b, BOTH, spy);
    assert.equal((await s.start()).ok, true, 'the start-up sync itself succeeds');
    assert.ok(logHas(/IPVS start master sync daemon .* failed: ENODEV: .*No such network interface \(will retry\)/));
    assert.deepEqual((await b.readDaemons()).map((x) => x.state), ['backup'], 'the backup started anyway');
    assert.equal((await b.readTable()).length, 1, 'the table was synchronised');

    await s.iterate(); // first retry: at once
    assert.equal(spy.calls.filter((c) => c === 'start master').length, 2);
    await s.iterate(); // then it waits (200 ms)
    assert.equal(spy.calls.filter((c) => c === 'start master').length, 2);
    spy.fail = () => undefined;
    clock += 200;
    await s.iterate();
    assert.deepEqual((await b.readDaemons()).map((x) => x.state).sort(), ['backup', 'master']);
    const reads = spy.calls.filter((c) => c === 'read').length;
    await s.iterate();
    assert.equal(spy.calls.filter((c) => c === 'read').length, reads, 'no pass once the daemons are as wanted');
  });

  it('a failed read of the daemons is logged and retried', async () => {
    const b = new MemoryBackend();
    const spy = new ControlSpy(b);
    spy.fail = (call) => (call === 'read' ? 'EPERM: getDaemons: Permission denied (you must be root)' : undefined);
    const s = makeSyncer(b, BOTH, spy);
    await s.start();
    assert.ok(logHas(/cannot read the IPVS sync daemons: EPERM: .* \(will retry\)/));
    spy.fail = () => undefined;
    await s.iterate();
    assert.equal((await b.readDaemons()).length, 2);
  });

  it('a daemon that cannot be stopped is not started again over itself (no EEXIST noise)', async () => {
    const b = new MemoryBackend();
    await makeSyncer(b, BOTH).start();
    const spy = new ControlSpy(b);
    spy.fail = (call) => (call === 'stop master' ? 'EBUSY: stopDaemon master sync daemon: Device or resource busy' : undefined);
    await makeSyncer(b, daemonConfig('ipvs_sync_daemon both\nipvs_sync_interface eth2\nipvs_sync_id 1\n'), spy).start();
    assert.deepEqual(spy.calls, ['read', 'stop master', 'stop backup', 'start backup']);
    assert.ok(logHas(/IPVS stop master sync daemon .* failed: EBUSY/));
  });

  it('a full reload checks the daemons again: one stopped behind ipvssync\'s back is started again', async () => {
    const b = new MemoryBackend();
    const s = makeSyncer(b, BOTH);
    await s.start();
    await b.stopDaemon('backup'); // ipvsadm --stop-daemon backup
    await s.iterate();
    assert.equal((await b.readDaemons()).length, 1, 'an ordinary pass does not look');
    writeFileSync(d.reloadFile, '');
    await s.iterate();
    assert.deepEqual((await b.readDaemons()).map((x) => x.state).sort(), ['backup', 'master']);
    assert.ok(logHas(/IPVS start backup sync daemon .*: not running/));
  });

  it('ipvs_sync_daemon master stops a backup daemon that is running', async () => {
    const b = new MemoryBackend();
    await makeSyncer(b, BOTH).start();
    await makeSyncer(b, daemonConfig('ipvs_sync_daemon master\nipvs_sync_interface eth1\nipvs_sync_id 1\n')).start();
    assert.deepEqual((await b.readDaemons()).map((x) => x.state), ['master']);
    assert.ok(logHas(/IPVS stop backup sync daemon .*: not wanted \(ipvs_sync_daemon master\)/));
  });
});
