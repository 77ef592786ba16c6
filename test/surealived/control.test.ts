import { strict as assert } from 'node:assert';
import { createServer, createConnection, type Server } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../surealived/daemon.js';
import { testMainConfig } from '../helpers/main-config.js';
import { createLogger } from '../../common/log.js';
import { controlCommand } from '../../common/control-client.js';
import { prng } from '../helpers/prng.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('control port on a running surealived (real probes, real hand-off files)', function () {
  this.timeout(60000);
  const PORT = 18631;
  const REALS = 20;
  let dir: string;
  let daemon: Daemon;
  let servers: Server[];
  let port: number;

  const diffs = (): string =>
    readdirSync(join(dir, 'diffs'))
      .sort()
      .map((f) => readFileSync(join(dir, 'diffs', f), 'utf8'))
      .join('');
  const override = (): string => readFileSync(join(dir, 'override.dump'), 'utf8');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-control-'));
    servers = [];
    for (let i = 1; i <= REALS; i++) {
      const s = createServer((c) => c.on('error', () => undefined).end());
      await new Promise<void>((r) => s.listen(PORT, `127.0.1.${i}`, () => r()));
      servers.push(s);
    }
    const reals = Array.from({ length: REALS }, (_, i) => `<real name="r${i + 1}" addr="127.0.1.${i + 1}" port="80" weight="10"/>`).join('\n');
    writeFileSync(
      join(dir, 'services.xml'),
      `<surealived><virtual name="web" addr="192.0.2.10" port="80" proto="tcp" sched="wrr" rt="dr">
  <tester proto="tcp" testport="${PORT}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1"/>
${reals}
</virtual></surealived>`,
    );
    const main = testMainConfig(dir);
    daemon = await Daemon.start({ xmlPath: join(dir, 'services.xml'), main, log: createLogger('error', () => undefined) });
    port = daemon.controlAddress!.port;
  });
  after(async () => {
    await daemon.stop();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const sel = 'vproto=tcp vaddr=192.0.2.10 vport=80 raddr=127.0.1.1 rport=80';
  const line = (cmd: string, w: number): string =>
    `cmd=${cmd} vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr rname=r1 raddr=127.0.1.1 rport=80 rweight=${w}\n`;
  const cases: Array<{ change: string; reply: string; diff: string; dump: string }> = [
    { change: 'rstate=DOWN', reply: 'Set: rstate=DOWN, weight=10, inpercent=FALSE', diff: line('delreal', 0), dump: '192.0.2.10:80:0:0 - 127.0.1.1:80 - weight=10  rstate=DOWN\n' },
    { change: 'rstate=ONLINE', reply: 'Set: rstate=ONLINE, weight=10, inpercent=FALSE', diff: line('addreal', 10) + line('chgreal', 10), dump: '' },
    { change: 'rweight=5', reply: 'Set: rstate=ONLINE, weight=5, inpercent=FALSE', diff: line('addreal', 5) + line('chgreal', 5), dump: '192.0.2.10:80:0:0 - 127.0.1.1:80 - weight=5  rstate=ONLINE\n' },
    { change: 'rweight=200%', reply: 'Set: rstate=ONLINE, weight=200, inpercent=TRUE', diff: line('addreal', 20) + line('chgreal', 20), dump: '192.0.2.10:80:0:0 - 127.0.1.1:80 - weight=200% rstate=ONLINE\n' },
    { change: 'rstate=OFFLINE rweight=1%', reply: 'Set: rstate=OFFLINE, weight=1, inpercent=TRUE', diff: line('addreal', 0) + line('chgreal', 0), dump: '192.0.2.10:80:0:0 - 127.0.1.1:80 - weight=1% rstate=OFFLINE\n' },
    { change: 'rstate=ONLINE rweight=100%', reply: 'Set: rstate=ONLINE, weight=100, inpercent=TRUE', diff: line('addreal', 10) + line('chgreal', 10), dump: '' },
  ];
  for (const c of cases) {
    it(`rset ${c.change}: exact reply, the diff lines at once, override.dump`, async () => {
      const before = diffs().length;
      const reply = await controlCommand({ port }, `rset ${sel} ${c.change}`);
      assert.equal(reply, `${c.reply}\n_SD_CMD_END_\n`);
      // The diff is queued for the next turn of the event loop and written under the lock.
      for (let i = 0; i < 40 && diffs().length === before; i++) await sleep(5);
      assert.equal(diffs().slice(before), c.diff);
      assert.equal(override(), c.dump);
    });
  }

  it('rlist shows the result of the operator changes', async () => {
    await controlCommand({ port }, `rset ${sel} rstate=OFFLINE`);
    const list = await controlCommand({ port }, 'rlist vname=web');
    assert.match(list, /^vname=web vproto=tcp vaddr=192\.0\.2\.10 vport=80 vfwmark=0 vrt=dr vsched=wrr\n/);
    assert.match(list, /\nr:0 rname=r1 raddr=127\.0\.1\.1 rport=80 currwgt=0 confwgt=10 ronline=TRUE rstate=OFFLINE\n/);
    assert.match(list, /\nr:1 rname=r2 raddr=127\.0\.1\.2 rport=80 currwgt=10 confwgt=10 ronline=TRUE rstate=ONLINE\n/);
    await controlCommand({ port }, `rset ${sel} rstate=ONLINE`);
  });

  it('survives 10,000 random and mutated command lines, still answers exactly, and keeps probing on time', async () => {
    const rand = prng(0x5eed);
    const good = [
      'vlist',
      'rlist vproto=tcp vaddr=192.0.2.10 vport=80',
      `rset ${sel} rweight=50%`,
      'stats',
      'connstats',
      'vlist json',
      'metrics',
      'rlist vname=web json',
    ];
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789=%. :\t-\r\u0000\u00ff[]{}"\\';
    const mutate = (s: string): string => {
      const chars = [...s];
      const n = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < n; i++) {
        const at = Math.floor(rand() * (chars.length + 1));
        const op = rand();
        const ch = alphabet[Math.floor(rand() * alphabet.length)]!;
        if (op < 0.4) chars.splice(at, 0, ch);
        else if (op < 0.7) chars.splice(at, 1);
        else chars[at] = ch;
      }
      return chars.join('');
    };
    const lines: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const r = rand();
      if (r < 0.5) lines.push(mutate(good[Math.floor(rand() * good.length)]!));
      else if (r < 0.8) lines.push(Array.from({ length: Math.floor(rand() * 200) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join(''));
      else lines.push(`${['vlist', 'rlist', 'rset', 'stats', 'connstats', 'metrics', 'x'][Math.floor(rand() * 7)]} ${Array.from({ length: 4 }, () => `${['vproto', 'vaddr', 'vport', 'raddr', 'rport', 'rstate', 'rweight', 'vname', 'vfwmark'][Math.floor(rand() * 9)]}=${Math.floor(rand() * 1e6) - 5e5}`).join(' ')}`);
    }
    const checksBefore = daemon.counters.success + daemon.counters.failed;
    const t0 = performance.now();
    // Four connections, each sending its share in one go and reading whatever comes back.
    await Promise.all(
      [0, 1, 2, 3].map(
        (k) =>
          new Promise<void>((resolve) => {
            const c = createConnection({ host: '127.0.0.1', port });
            c.on('data', () => undefined);
            c.on('error', () => resolve());
            c.on('close', () => resolve());
            c.end(lines.filter((_, i) => i % 4 === k).join('\n') + '\n');
          }),
      ),
    );
    const secs = (performance.now() - t0) / 1000;
    await sleep(300);
    const checks = daemon.counters.success + daemon.counters.failed - checksBefore;
    // 20 reals every 0.2 s = 100 probes a second; allow for a slow, shared CI machine.
    const expected = (REALS / 0.2) * (secs + 0.3);
    assert.ok(checks >= expected * 0.6, `probes kept running during the fuzz: ${checks} in ${(secs + 0.3).toFixed(2)} s, expected about ${expected.toFixed(0)}`);
    const vlist = await controlCommand({ port }, 'vlist');
    assert.equal(vlist, 'v:0 vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr\n_SD_CMD_END_\n');
    assert.ok(daemon.virtuals[0]!.reals.every((r) => r.online), 'every real still online');
  });
});
