// Issue 9 at CI scale: 2,000 http reals behind one server in a network namespace, the daemon under
// `prlimit --nofile=512`. Every real goes silent at once (SYNs dropped) and comes back: each real
// changes state exactly once each way, no probe is judged on a local error, every state-file write
// lands, and the daemon stays under its descriptor limit throughout.

import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Netns, netnsUnavailable, REPO, sleep } from '../helpers/netns.js';

const REALS = 2000;
const LIMIT = 512;
const PORT = 18960;
const cli = join(REPO, 'dist/surealived/cli.js');

const SERVER = `
const net = require('node:net');
const res = Buffer.from('HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n');
const s = net.createServer((c) => { c.on('error', () => {}); c.once('data', () => c.end(res)); });
s.listen({ port: Number(process.argv[1]), host: '0.0.0.0', backlog: 4096 }, () => process.stdout.write('ready\\n'));
`;

/** Loopback address of real i: the whole of 127/8 is local inside the namespace. */
const realAddr = (i: number): string => `127.${10 + Math.floor(i / 62500)}.${(Math.floor(i / 250) % 250) + 1}.${(i % 250) + 1}`;

function servicesXml(): string {
  const out = ['<surealived>'];
  for (let v = 0; v * 100 < REALS; v++) {
    out.push(`<virtual name="v${v}" addr="198.18.0.${v + 1}" port="80" proto="tcp" sched="wrr" rt="dr">`);
    out.push(`<tester proto="http" testport="${PORT}" loopdelay="1" timeout="1" retries2ok="1" retries2fail="2" url="/" host="t"/>`);
    for (let i = v * 100; i < Math.min(REALS, (v + 1) * 100); i++) out.push(`<real name="r${i}" addr="${realAddr(i)}" port="80" weight="1"/>`);
    out.push('</virtual>');
  }
  out.push('</surealived>\n');
  return out.join('\n');
}

const lineCount = (path: string): number => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').length : -1);

describe('surealived under descriptor pressure (issue 9): 2,000 silent reals, limit 512, in a network namespace', function () {
  this.timeout(120_000);
  let ns: Netns | null = null;
  let dir = '';
  const children: ChildProcess[] = [];

  before(function () {
    const why = netnsUnavailable();
    if (why !== undefined) this.skip();
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await ns?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('no real changes state for a local error, every transition is real, no dump write is lost, descriptors stay under the limit', async () => {
    ns = await Netns.create('sdfd');
    dir = mkdtempSync(join(tmpdir(), 'sd-fd-'));
    const cfg = join(dir, 'surealived.cfg');
    const xml = join(dir, 'services.xml');
    writeFileSync(xml, servicesXml());
    writeFileSync(
      cfg,
      ['listen_port 0', 'startup_delay_ms 1000', 'stats_dump_savesec 1',
        ...['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'].map((l) => l.replace(' ', ` ${dir}/`)),
        ''].join('\n'),
    );
    const server = ns.spawn(process.execPath, ['-e', SERVER, String(PORT)]);
    children.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.once('data', () => resolve());
      server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });

    const daemon = ns.spawn('prlimit', [`--nofile=${LIMIT}:${LIMIT}`, process.execPath, cli, '-c', cfg, '-vvv', xml]);
    children.push(daemon);
    let log = '';
    daemon.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const pid = daemon.pid!;
    let maxFds = 0;
    const sampler = setInterval(() => {
      try {
        maxFds = Math.max(maxFds, readdirSync(`/proc/${pid}/fd`).length);
      } catch {
        /* not started or gone */
      }
    }, 50);
    const count = (re: RegExp): number => log.match(re)?.length ?? 0;
    const until = async (what: string, ok: () => boolean, ms: number): Promise<void> => {
      const end = Date.now() + ms;
      while (!ok()) {
        if (Date.now() > end) assert.fail(`timed out (${ms} ms) waiting for ${what}\n${log.slice(-3000)}`);
        await sleep(100);
      }
    };
    const drop = ['INPUT', '-p', 'tcp', '--dport', String(PORT), '--syn', '-j', 'DROP'];
    try {
      await until('the daemon to start', () => /surealived: \d+ virtuals, 2000 reals/.test(log), 20_000);
      assert.match(log, new RegExp(`descriptor limit ${LIMIT}: up to \\d+ for probes`));
      // A round of probes at full health first.
      await sleep(3000);
      assert.ok(lineCount(join(dir, 'offline.dump')) <= 0, 'no real offline (offline.dump absent or empty)');
      assert.equal(count(/changed its test state/g), 0);

      await ns.must('iptables', ['-I', ...drop]);
      const tSilent = Date.now();
      await until('every real OFFLINE in offline.dump', () => lineCount(join(dir, 'offline.dump')) === REALS, 40_000);
      const toOffline = Date.now() - tSilent;
      await ns.must('iptables', ['-D', ...drop]);
      const tBack = Date.now();
      await until('every real back ONLINE in offline.dump', () => lineCount(join(dir, 'offline.dump')) === 0, 40_000);
      const toOnline = Date.now() - tBack;
      // No flapping afterwards: three more rounds.
      await sleep(3000);
      process.stdout.write(`      all offline after ${toOffline} ms, all online after ${toOnline} ms, peak ${maxFds} descriptors (limit ${LIMIT})\n`);

      assert.equal(count(/changed its test state to OFFLINE/g), REALS, 'one OFFLINE transition per real');
      assert.equal(count(/changed its test state to ONLINE/g), REALS, 'one ONLINE transition per real');
      assert.doesNotMatch(log, /\[(?:[^\]]*)(EMFILE|ENFILE|ENOBUFS|EADDRNOTAVAIL)/, 'no transition carries a local errno');
      assert.doesNotMatch(log, /Unable to write dump file|hand-off write failed/);
      assert.ok(maxFds < LIMIT, `peak ${maxFds} descriptors under the limit of ${LIMIT}`);
      // The hand-off says the same: the last diff lines put every real back at weight 1.
      const diffs = readdirSync(join(dir, 'diffs')).sort().map((f) => readFileSync(join(dir, 'diffs', f), 'utf8')).join('');
      const last = new Map<string, string>();
      for (const m of diffs.matchAll(/^cmd=chgreal .* raddr=(\S+) rport=\d+ rweight=(\d+)/gm)) last.set(m[1]!, m[2]!);
      assert.equal(last.size, REALS);
      assert.ok([...last.values()].every((w) => w === '1'));
    } finally {
      clearInterval(sampler);
      await ns.exec('iptables', ['-D', ...drop]);
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
    assert.equal(lineCount(join(dir, 'offline.dump')), 0, 'offline.dump written at stop');
    assert.ok(existsSync(join(dir, 'stats.dump')));
  });
});
