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

const END = '_SD_CMD_END_\n';
const VLIST = `v:0 vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr\n${END}`;
const VLIST_JSON = `{"virtuals":[{"index":0,"vname":"web","vproto":"tcp","vaddr":"192.0.2.10","vport":80,"vfwmark":0,"vrt":"dr","vsched":"wrr"}]}\n${END}`;
/** The one-line error replies an rlist / rset may give (README "Commands (original)"); a failed save is not among them. */
const SELECT_ERROR = /^(cmd_find_virt: (No vproto specified|Virt not found|invalid IP)|cmd_find_real: (empty realArr|raddr not found|rport not found|invalid IP|Real not found))\n$/;
const RSET_ERROR = /^cmd_rset: (you need to set at least 'rstate' or 'rweight'|rstate unknown \[[^\n]*\])\n$/;

/**
 * What the reply to one request line must be, from the protocol's rules (README, spec 9) rather than
 * the parser: one trailing CR stripped, the line cut at NUL, the command word matched by prefix, a
 * bare `json` token after it asking for JSON, and an unknown word echoed in `Invalid request! [...]`.
 */
function checkFuzzReply(raw: string, reply: string): void {
  const stripped = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const line = stripped.includes('\0') ? stripped.slice(0, stripped.indexOf('\0')) : stripped;
  const json = line.split(/[ \t]/).slice(1).includes('json');
  const what = `reply to ${JSON.stringify(raw)}: ${JSON.stringify(reply.slice(0, 300))}`;
  const word = ['vlist', 'rlist', 'stats', 'rset', 'connstats', 'metrics'].find((w) => line.startsWith(w));
  switch (word) {
    case undefined:
      assert.equal(reply, `Invalid request! [${line}]\n`, what);
      return;
    case 'vlist':
      assert.equal(reply, json ? VLIST_JSON : VLIST, what);
      return;
    case 'stats':
    case 'connstats':
      assert.ok(reply.endsWith(END) && (!json || reply.startsWith('{')), what);
      return;
    case 'metrics':
      assert.ok(reply.startsWith('# HELP ') && reply.endsWith(END), what);
      return;
    case 'rlist':
      assert.ok(SELECT_ERROR.test(reply) || (reply.endsWith(END) && (json ? reply.startsWith('{"virtual":') : reply.startsWith('vname=web '))), what);
      return;
    case 'rset':
      assert.ok(SELECT_ERROR.test(reply) || RSET_ERROR.test(reply) || (reply.endsWith(END) && reply.startsWith(json ? '{"rstate":' : 'Set: rstate=')), what);
      return;
  }
}

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
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
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
      // The diff is queued for the next turn of the event loop and written under the lock: wait for
      // as much as is expected (generously, for a busy machine), then compare it exactly.
      const end = Date.now() + 10_000;
      while (diffs().length < before + c.diff.length && Date.now() < end) await sleep(5);
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
    const failedBefore = daemon.counters.failed;
    const probedBefore = daemon.virtuals[0]!.reals.map((r) => r.stats.checksOk + r.stats.checksFailed);
    const t0 = performance.now();
    // Four connections, each sending its share in one go, then half-closing: the server answers every
    // line in order and closes. After each fuzz line goes a sentinel whose reply is known exactly
    // (an invalid request echoes its line; '#' and capitals never occur in the fuzz), which cuts the
    // stream into one reply per fuzz line.
    const sentinel = (k: number, i: number): string => `#SENTINEL ${k}:${i}`;
    const exchanges = await Promise.all(
      [0, 1, 2, 3].map(
        (k) =>
          new Promise<{ sent: string[]; received: string }>((resolve, reject) => {
            const sent = lines.filter((_, i) => i % 4 === k);
            const chunks: Buffer[] = [];
            const c = createConnection({ host: '127.0.0.1', port });
            c.on('data', (d: Buffer) => chunks.push(d));
            c.on('error', reject);
            c.on('close', () => resolve({ sent, received: Buffer.concat(chunks).toString('utf8') }));
            c.end(sent.map((l, i) => `${l}\n${sentinel(k, i)}\n`).join(''));
          }),
      ),
    );
    const secs = (performance.now() - t0) / 1000;
    exchanges.forEach(({ sent, received }, k) => {
      let at = 0;
      sent.forEach((raw, i) => {
        const mark = `Invalid request! [${sentinel(k, i)}]\n`;
        const end = received.indexOf(mark, at);
        assert.ok(end >= 0, `connection ${k} closed after ${i} of ${sent.length} replies (no reply to ${JSON.stringify(raw)})`);
        checkFuzzReply(raw, received.slice(at, end));
        at = end + mark.length;
      });
      assert.equal(received.slice(at), '', `connection ${k}: nothing after the last sentinel's reply`);
    });
    // Probing goes on through the fuzz: every real is probed again after it began (on a busy machine
    // its slot may come late, hence the wait), and not one probe failed (2 s timeout, loopback reals).
    const probed = (): number[] => daemon.virtuals[0]!.reals.map((r, i) => r.stats.checksOk + r.stats.checksFailed - probedBefore[i]!);
    const end = Date.now() + 10_000;
    while (probed().some((n) => n === 0) && Date.now() < end) await sleep(50);
    assert.ok(probed().every((n) => n > 0), `reals not probed again within 10 s of a ${secs.toFixed(2)} s fuzz: ${probed().join(' ')}`);
    assert.equal(daemon.counters.failed, failedBefore, 'probes failed during the fuzz');
    const vlist = await controlCommand({ port }, 'vlist');
    assert.equal(vlist, 'v:0 vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr\n_SD_CMD_END_\n');
    assert.ok(daemon.virtuals[0]!.reals.every((r) => r.online), 'every real still online');
  });
});
