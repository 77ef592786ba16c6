// Optional TLS between master and backup (certificates made with openssl for the test): a backup with
// the CA and its own certificate is served; a backup speaking plain TCP to a TLS master gets nothing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import { Netns, netnsUnavailable, sendUdp } from '../helpers/netns.js';
import { Daemon, eventually } from '../helpers/ssyncd.js';

interface CountJson {
  tables: { name: string; count: number }[];
}

function makeCerts(dir: string): void {
  const ossl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=test director CA']);
  for (const n of ['master', 'backup']) {
    ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n}`]);
    ossl(['x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${n}.pem`, '-days', '2']);
  }
}

describe('ssyncd over TLS', function () {
  this.timeout(60_000);
  let ns: Netns;
  let dir: string;
  let master: Daemon, backup: Daemon, plain: Daemon;

  before(async function () {
    const why = netnsUnavailable();
    if (why) throw new Error(`these tests need root on Linux: ${why}`);
    ns = await Netns.create('sstls');
    dir = mkdtempSync(join(tmpdir(), 'ssyncd-tls-'));
    makeCerts(dir);
    await ns.must('iptables', ['-A', 'INPUT', '-p', 'udp', '--dport', '9', '-m', 'recent', '--name', 'tl', '--set']);
    await sendUdp(ns, { family: 4, src: '127.0.0.1', dst: '127.0.0.1' });
    const fast = ['poll_interval_ms 200', 'heartbeat_ms 200', 'dead_time_ms 1000', 'reconnect_max_ms 200', 'key_file none', `tls_ca ${join(dir, 'ca.pem')}`];
    master = new Daemon({ ns, name: 'tlm', args: ['-M', '-p', '7811', '-b', '::1'], config: [...fast, 'sync_recent yes', `tls_cert ${join(dir, 'master.pem')}`, `tls_key ${join(dir, 'master.key')}`] });
    backup = new Daemon({ ns, name: 'tlb', args: ['-B', '-a', '::1', '-p', '7811'], config: [...fast, `tls_cert ${join(dir, 'backup.pem')}`, `tls_key ${join(dir, 'backup.key')}`] });
    plain = new Daemon({ ns, name: 'tlp', args: ['-B', '-a', '::1', '-p', '7811'], config: ['poll_interval_ms 200', 'heartbeat_ms 200', 'dead_time_ms 1000', 'reconnect_max_ms 200', 'key_file none'] });
    await master.start();
  });

  after(async () => {
    for (const d of [master, backup, plain]) await d?.kill9();
    await ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const d of [master, backup, plain]) if (d) rmSync(d.dir, { recursive: true, force: true });
  });

  it('a backup holding the CA and a certificate it signed gets the copy over TLS (IPv6 loopback)', async () => {
    await backup.start();
    assert.ok(await eventually(async () => (await backup.json<CountJson>(['count', 'recent'])).tables.find((t) => t.name === 'tl')?.count === 1, 10_000), backup.log());
    assert.match(master.log(), /TLS/);
  });

  it('a plain-TCP backup against the TLS master never gets a copy, and the master says why', async () => {
    await plain.start();
    await eventually(async () => /TLS handshake with .* failed/.test(master.log()), 5000);
    assert.match(master.log(), /TLS handshake with .* failed/);
    assert.deepEqual((await plain.json<CountJson>(['count', 'recent'])).tables, []);
  });
});
