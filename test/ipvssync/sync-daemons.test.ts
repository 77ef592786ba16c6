// The sync-daemon half of ipvssync without I/O: the ipvs_sync_* main-config keys (values and
// file:line errors), the planner (wanted + kernel daemons -> start/stop ops) and the ipvsadm-style lines.

import { strict as assert } from 'node:assert';
import { parseMainConfig } from '../../common/main-config.js';
import { formatSyncDaemon, formatSyncDaemonOp, formatSyncDaemons } from '../../ipvssync/format.js';
import { fromNlSyncDaemon, toNlSyncDaemon } from '../../ipvssync/netlink-backend.js';
import { parseSyncDaemonConfig, type SyncDaemonConfig } from '../../ipvssync/sync-daemon-config.js';
import { kernelMaxlen, planSyncDaemons, wantedSyncDaemons } from '../../ipvssync/sync-daemon-plan.js';
import type { SyncDaemon, SyncDaemonOp } from '../../ipvssync/types.js';

const FILE = '/etc/surealived/surealived.cfg';

function parse(text: string): ReturnType<typeof parseSyncDaemonConfig> {
  const cfg = parseMainConfig(text);
  return parseSyncDaemonConfig(cfg.raw, cfg.lines, FILE);
}

function config(text: string): SyncDaemonConfig {
  const r = parse(text);
  if (!r.ok) assert.fail(r.errors.join('\n'));
  return r.config;
}

function errors(text: string): readonly string[] {
  const r = parse(text);
  assert.equal(r.ok, false, 'expected errors');
  return r.ok ? [] : r.errors;
}

/** A daemon as the kernel reports one started with the defaults on an IPv4 group. */
function running(state: 'master' | 'backup', over: Partial<SyncDaemon> = {}): SyncDaemon {
  return { state, ifname: 'eth1', syncId: 0, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1, ...over };
}

/** Ops as `start master sync daemon (...): why` lines. */
const lines = (ops: readonly SyncDaemonOp[]): string[] => ops.map((op) => `${formatSyncDaemonOp(op)}: ${op.why}`);

describe('ipvssync sync daemons: main-config keys', () => {
  it('without any ipvs_sync_* key ipvssync leaves the daemons alone (none)', () => {
    assert.deepEqual(config('full_sync_file /x\n'), { mode: 'none' });
  });

  it('ipvs_sync_daemon master with an interface takes the kernel defaults for the rest', () => {
    assert.deepEqual(config('ipvs_sync_daemon master\nipvs_sync_interface eth1\n'), {
      mode: 'master',
      settings: { ifname: 'eth1', syncId: 0, maxlen: undefined, group: '224.0.0.81', port: 8848, ttl: 1 },
    });
  });

  it('every key is read; an IPv6 group is kept in canonical form', () => {
    const c = config(
      'ipvs_sync_daemon both\nipvs_sync_interface bond0.10\nipvs_sync_id 255\nipvs_sync_maxlen 1400\n' +
        'ipvs_sync_group FF02:0:0:0:0:0:1:3\nipvs_sync_port 65535\nipvs_sync_ttl 255\n',
    );
    assert.deepEqual(c, {
      mode: 'both',
      settings: { ifname: 'bond0.10', syncId: 255, maxlen: 1400, group: 'ff02::1:3', port: 65535, ttl: 255 },
    });
  });

  it('a mode other than none without ipvs_sync_interface is an error at the ipvs_sync_daemon line', () => {
    assert.deepEqual(errors('# cfg\nipvs_sync_daemon backup\n'), [
      `${FILE}:2: ipvs_sync_daemon: backup needs ipvs_sync_interface (the interface the sync messages use)`,
    ]);
  });

  const bad: [string, string][] = [
    ['ipvs_sync_daemon primary', `${FILE}:1: ipvs_sync_daemon: "primary" is not none, master, backup or both`],
    ['ipvs_sync_interface a-16-bytes-name0', `${FILE}:1: ipvs_sync_interface: "a-16-bytes-name0" is longer than 15 bytes (IFNAMSIZ)`],
    ['ipvs_sync_interface eth0:1', `${FILE}:1: ipvs_sync_interface: "eth0:1" is not a valid interface name`],
    ['ipvs_sync_id 256', `${FILE}:1: ipvs_sync_id: "256" is not a whole number from 0 to 255`],
    ['ipvs_sync_id -1', `${FILE}:1: ipvs_sync_id: "-1" is not a whole number from 0 to 255`],
    ['ipvs_sync_maxlen 0', `${FILE}:1: ipvs_sync_maxlen: "0" is not a whole number from 1 to 65535`],
    ['ipvs_sync_port 8848x', `${FILE}:1: ipvs_sync_port: "8848x" is not a whole number from 1 to 65535`],
    ['ipvs_sync_ttl 0', `${FILE}:1: ipvs_sync_ttl: "0" is not a whole number from 1 to 255`],
    ['ipvs_sync_group 10.0.0.1', `${FILE}:1: ipvs_sync_group: 10.0.0.1 is not a multicast address (224.0.0.0/4 or ff00::/8)`],
    ['ipvs_sync_group fe80::1', `${FILE}:1: ipvs_sync_group: fe80::1 is not a multicast address (224.0.0.0/4 or ff00::/8)`],
    ['ipvs_sync_group 224.0.0', `${FILE}:1: ipvs_sync_group: "224.0.0" is not an IPv4 or IPv6 address`],
  ];
  bad.forEach(([line, message]) => {
    it(`\`${line}\` is refused: ${message.slice(FILE.length + 4)}`, () => {
      assert.deepEqual(errors(`${line}\n`), [message]);
    });
  });

  it('a bad value is an error even while ipvs_sync_daemon is none; every error is reported', () => {
    assert.deepEqual(errors('ipvs_sync_id 300\n\nipvs_sync_ttl x\n'), [
      `${FILE}:1: ipvs_sync_id: "300" is not a whole number from 0 to 255`,
      `${FILE}:3: ipvs_sync_ttl: "x" is not a whole number from 1 to 255`,
    ]);
  });

  it('a later duplicate wins, and its line is the one named', () => {
    assert.deepEqual(errors('ipvs_sync_id 1\nipvs_sync_id 999\n'), [`${FILE}:2: ipvs_sync_id: "999" is not a whole number from 0 to 255`]);
  });
});

describe('ipvssync sync daemons: planner', () => {
  const master = config('ipvs_sync_daemon master\nipvs_sync_interface eth1\n');
  const both = config('ipvs_sync_daemon both\nipvs_sync_interface eth1\nipvs_sync_id 1\n');

  it('none plans nothing, whatever runs', () => {
    assert.deepEqual(planSyncDaemons({ mode: 'none' }, [running('master', { syncId: 9 }), running('backup')]), []);
  });

  it('both wanted, none running: start master, then backup', () => {
    assert.deepEqual(lines(planSyncDaemons(both, [])), [
      'start master sync daemon (mcast=eth1, syncid=1, group=224.0.0.81, port=8848, ttl=1): not running',
      'start backup sync daemon (mcast=eth1, syncid=1, group=224.0.0.81, port=8848, ttl=1): not running',
    ]);
  });

  it('daemons running with the wanted settings are left as they are (a second start changes nothing)', () => {
    assert.deepEqual(planSyncDaemons(both, [running('master', { syncId: 1 }), running('backup', { syncId: 1, maxlen: 8972 })]), []);
  });

  it('a daemon whose sync id differs is stopped and started again with the wanted one', () => {
    assert.deepEqual(lines(planSyncDaemons(both, [running('master', { syncId: 2 }), running('backup', { syncId: 1 })])), [
      'stop master sync daemon (mcast=eth1, syncid=2, maxlen=1472, group=224.0.0.81, port=8848, ttl=1): settings differ: syncid 2 -> 1 (restarting it)',
      'start master sync daemon (mcast=eth1, syncid=1, group=224.0.0.81, port=8848, ttl=1): settings differ: syncid 2 -> 1',
    ]);
  });

  it('every differing setting is named', () => {
    const want = config(
      'ipvs_sync_daemon backup\nipvs_sync_interface eth2\nipvs_sync_id 3\nipvs_sync_maxlen 1200\nipvs_sync_group 239.1.1.1\nipvs_sync_port 9000\nipvs_sync_ttl 2\n',
    );
    const [stop] = planSyncDaemons(want, [running('backup')]);
    assert.equal(
      stop?.why,
      'settings differ: mcast eth1 -> eth2, syncid 0 -> 3, maxlen 1472 -> 1200, group 224.0.0.81 -> 239.1.1.1, port 8848 -> 9000, ttl 1 -> 2 (restarting it)',
    );
  });

  it('a daemon of a state not wanted is stopped (ipvs_sync_daemon master stops a running backup)', () => {
    assert.deepEqual(lines(planSyncDaemons(master, [running('master'), running('backup', { ifname: 'eth9' })])), [
      'stop backup sync daemon (mcast=eth9, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1): not wanted (ipvs_sync_daemon master)',
    ]);
  });

  it('without ipvs_sync_maxlen any size the kernel chose is accepted', () => {
    assert.deepEqual(planSyncDaemons(master, [running('master', { maxlen: 1000 })]), []);
  });

  it('a wanted maxlen is compared as the kernel clamps it (backup at least 1024, at most 65535 less the headers)', () => {
    assert.equal(kernelMaxlen('backup', '224.0.0.81', 500), 1024);
    assert.equal(kernelMaxlen('master', '224.0.0.81', 500), 500);
    assert.equal(kernelMaxlen('master', '224.0.0.81', 65535), 65507);
    assert.equal(kernelMaxlen('master', 'ff02::81', 65535), 65487);
    const small = config('ipvs_sync_daemon backup\nipvs_sync_interface eth1\nipvs_sync_maxlen 500\n');
    assert.deepEqual(planSyncDaemons(small, [running('backup', { maxlen: 1024 })]), [], 'no restart on every reload');
    assert.equal(planSyncDaemons(small, [running('backup', { maxlen: 1472 })]).length, 2);
  });

  it('wantedSyncDaemons: both is master then backup with the same settings', () => {
    assert.deepEqual(
      wantedSyncDaemons(both).map((d) => d.state),
      ['master', 'backup'],
    );
    // ipvs_sync_interface eth1, ipvs_sync_id 1, the rest the documented defaults (group 224.0.0.81,
    // port 8848, ttl 1) and no maxlen: the kernel chooses.
    assert.deepEqual(wantedSyncDaemons(both), [
      { state: 'master', ifname: 'eth1', syncId: 1, maxlen: undefined, group: '224.0.0.81', port: 8848, ttl: 1 },
      { state: 'backup', ifname: 'eth1', syncId: 1, maxlen: undefined, group: '224.0.0.81', port: 8848, ttl: 1 },
    ]);
    assert.deepEqual(wantedSyncDaemons({ mode: 'none' }), []);
  });
});

describe('ipvssync sync daemons: text forms and netlink mapping', () => {
  it('a running daemon prints as ipvsadm -L --daemon does', () => {
    assert.equal(formatSyncDaemon(running('master', { syncId: 1 })), 'master sync daemon (mcast=eth1, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)');
    assert.equal(
      formatSyncDaemon(running('backup', { group: 'ff02::81', maxlen: 1452 })),
      'backup sync daemon (mcast=eth1, syncid=0, maxlen=1452, group=ff02::81, port=8848, ttl=1)',
    );
  });

  it('the list is master first, one line each, nothing for no daemons', () => {
    assert.equal(
      formatSyncDaemons([running('backup'), running('master')]),
      'master sync daemon (mcast=eth1, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n' +
        'backup sync daemon (mcast=eth1, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
    );
    assert.equal(formatSyncDaemons([]), '');
  });

  it('a kernel daemon is canonicalised; settings an old kernel does not report are its fixed defaults', () => {
    assert.deepEqual(fromNlSyncDaemon({ state: 'master', ifname: 'eth0', syncId: 4, maxlen: 1452, group: 'FF02:0::81', port: 9000, ttl: 3 }), {
      state: 'master',
      ifname: 'eth0',
      syncId: 4,
      maxlen: 1452,
      group: 'ff02::81',
      port: 9000,
      ttl: 3,
    });
    assert.deepEqual(fromNlSyncDaemon({ state: 'backup', ifname: 'eth0', syncId: 0 }), running('backup', { ifname: 'eth0', maxlen: 0 }));
  });

  it('a wanted daemon without maxlen is sent without one (the kernel chooses)', () => {
    const [w] = wantedSyncDaemons(config('ipvs_sync_daemon master\nipvs_sync_interface eth1\n'));
    assert.ok(w);
    assert.equal('maxlen' in toNlSyncDaemon(w), false);
    assert.deepEqual(toNlSyncDaemon(w), { state: 'master', ifname: 'eth1', syncId: 0, group: '224.0.0.81', port: 8848, ttl: 1 });
    assert.equal(toNlSyncDaemon({ ...w, maxlen: 1400 }).maxlen, 1400);
  });
});
