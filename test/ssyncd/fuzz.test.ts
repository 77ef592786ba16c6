// 10,000 random and mutated frames against each daemon: a master attacked by fake backups, and a
// backup served by a fake master. Neither may crash, and the master keeps serving a real backup.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import { Netns, netnsUnavailable, REPO, sendUdp } from '../helpers/netns.js';
import { Daemon, eventually } from '../helpers/ssyncd.js';

const FUZZER = join(REPO, 'dist', 'test', 'ssyncd', 'fuzz-peer.js');

interface CountJson {
  tables: { name: string; count: number }[];
}

describe('ssyncd under hostile frames', function () {
  this.timeout(180_000);
  let ns: Netns;
  let master: Daemon, real: Daemon, victim: Daemon;

  before(async function () {
    const why = netnsUnavailable();
    if (why) throw new Error(`these tests need root on Linux: ${why}`);
    ns = await Netns.create('ssfz');
    await ns.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', 'fz', '--set']);
    for (let i = 1; i <= 20; i++) await ns.must('ip', ['addr', 'add', `127.1.0.${i}/8`, 'dev', 'lo']).catch(() => '');
    for (let i = 1; i <= 20; i++) await sendUdp(ns, { family: 4, src: `127.1.0.${i}`, dst: '127.0.0.1' });
    const fast = ['poll_interval_ms 200', 'heartbeat_ms 200', 'dead_time_ms 1000', 'reconnect_min_ms 10', 'reconnect_max_ms 40', 'key_file none'];
    master = new Daemon({ ns, name: 'fzm', args: ['-M', '-p', '7801', '-b', '127.0.0.1'], config: [...fast, 'sync_recent yes'] });
    real = new Daemon({ ns, name: 'fzb', args: ['-B', '-a', '127.0.0.1', '-p', '7801'], config: fast });
    victim = new Daemon({ ns, name: 'fzv', args: ['-B', '-a', '127.0.0.1', '-p', '7802'], config: fast });
    await master.start();
    await real.start();
  });

  after(async () => {
    for (const d of [master, real, victim]) await d?.kill9();
    await ns?.destroy();
    for (const d of [master, real, victim]) if (d) rmSync(d.dir, { recursive: true, force: true });
  });

  it('a master without a key says so at start, and serves a backup', async () => {
    assert.match(master.log(), /no key file: backups are not authenticated/);
    assert.ok(await eventually(async () => (await real.json<CountJson>(['count', 'recent'])).tables.find((t) => t.name === 'fz')?.count === 20, 10_000));
  });

  it('10,000 frames from fake backups: the master closes each bad connection and keeps serving the real backup', async () => {
    const out = JSON.parse(
      await ns.must('node', [FUZZER, JSON.stringify({ mode: 'attack-master', host: '127.0.0.1', port: 7801, frames: 10_000, seed: 0xf00d, validShare: 0.8 })]),
    ) as { sent: number; connections: number };
    assert.equal(out.sent, 10_000);
    assert.ok(out.connections > 100, `${out.connections} connections`);
    assert.ok(master.alive, master.log().slice(-2000));
    assert.match(master.log(), /bad frame from 127\.0\.0\.1:\d+: /);
    // Still replicating: a new client reaches the real backup.
    await ns.must('ip', ['addr', 'add', '127.1.0.99/8', 'dev', 'lo']);
    await sendUdp(ns, { family: 4, src: '127.1.0.99', dst: '127.0.0.1' });
    assert.ok(await eventually(async () => (await real.json<CountJson>(['count', 'recent'])).tables.find((t) => t.name === 'fz')?.count === 21, 10_000));
    assert.equal((await master.ctl(['show', 'mode'])).stdout, 'master\n');
  });

  it('10,000 frames from a fake master: the backup refuses each bad stream, keeps running and answers', async () => {
    await victim.start();
    const out = JSON.parse(
      await ns.must('node', [FUZZER, JSON.stringify({ mode: 'fake-master', host: '127.0.0.1', port: 7802, frames: 10_000, seed: 0xbeef, validShare: 0.9 })]),
    ) as { sent: number; connections: number };
    assert.equal(out.sent, 10_000);
    assert.ok(out.connections > 100, `${out.connections} connections`);
    assert.ok(victim.alive, victim.log().slice(-2000));
    assert.match(victim.log(), /bad frame from 127\.0\.0\.1:7802|master 127\.0\.0\.1:7802: /);
    const st = await victim.json<{ mode: string }>(['status']);
    assert.equal(st.mode, 'backup');
    // What it holds came only from frames that decoded: every address is one the fuzzer could send.
    const shown = await victim.json<{ tables: { name: string; entries: { addr: string }[] }[] }>(['show', 'recent']);
    for (const t of shown.tables) for (const e of t.entries) assert.match(e.addr, /^10\.77\.|^fd77::/);
  });
});
