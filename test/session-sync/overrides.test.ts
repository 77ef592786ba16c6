// The pure half of operator-override sync: override.dump read as a table (file:line warnings, canonical
// keys), diffs between two reads, the rset lines a VKEY/RKEY pair becomes (IPv4, IPv6, fwmark), the
// backup's current overrides from its JSON replies, and the plan of what to send. The surealived side
// is a real daemon (its testers probing real servers on loopback), reached over its control port:
// what it answers and the override.dump it writes.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'mocha';
import { formatOverrideText } from '../../common/override-line.js';
import { controlCommand } from '../../common/control-client.js';
import type { Change, OperatorOverride, TableRef } from '../../session-sync/model.js';
import { currentOverrides, virtualsOfVlist, ControlReplyError } from '../../session-sync/overrides/current.js';
import { diffOverrides } from '../../session-sync/overrides/diff.js';
import { readOverrideDump } from '../../session-sync/overrides/dump.js';
import { planApply, planWrite } from '../../session-sync/overrides/plan.js';
import { parseTarget, resetLine, rlistLine, rsetLine, rsetOutcome, type RealTarget } from '../../session-sync/overrides/rset.js';
import { TestDaemon, until } from '../helpers/daemon.js';
import { RealServers, ipv6Loopback, realDef, tcpVirtual, type VirtualDef } from '../control/helpers.js';

const TABLE: TableRef = { kind: 'overrides', name: 'surealived' };

const ov = (virtual: string, real: string, weight: number, percent: boolean, rstate: OperatorOverride['rstate']): OperatorOverride => ({
  kind: 'override',
  virtual,
  real,
  weight,
  percent,
  rstate,
});

function target(v: string, r: string): RealTarget {
  const p = parseTarget(v, r);
  assert.ok(p.ok, `${v} ${r}`);
  return p.target;
}

/** A director's configuration with every kind of virtual: tcp, udp, fwmark (IPv4 and IPv6), IPv6 tcp; loopback only. */
const DIRECTOR: readonly VirtualDef[] = [
  tcpVirtual('web', '127.0.0.10', 80, [realDef('w1', '127.0.1.1', 80, 20), realDef('w2', '127.0.1.2', 80, 10)]),
  { name: 'dns', proto: 'udp', addr: '127.0.0.10', port: 53, sched: 'wlc', rt: 'dr', tester: 'dns', reals: [{ name: 'd1', addr: '127.0.2.1', port: 53, weight: 5 }] },
  { name: 'fw', proto: 'fwmark', fwmark: 7, sched: 'wlc', rt: 'dr', tester: 'tcp', reals: [{ name: 'f1', addr: '127.0.3.1', port: 0, weight: 1 }] },
  { name: 'fw6', proto: 'fwmark', fwmark: 9, sched: 'wlc', rt: 'dr', tester: 'tcp', reals: [{ name: 'g1', addr: '::1', port: 0, weight: 4 }] },
  tcpVirtual('v6', '::1', 443, [realDef('s1', '::1', 443, 3), realDef('s2', '::1', 8443, 3)]),
];

/** Every real of DIRECTOR by its override.dump keys (spec 7: VKEY with the numeric proto, IPv6 in brackets). */
const DIRECTOR_KEYS: ReadonlyArray<readonly [vkey: string, rkey: string, rname: string]> = [
  ['127.0.0.10:80:0:0', '127.0.1.1:80', 'w1'],
  ['127.0.0.10:80:0:0', '127.0.1.2:80', 'w2'],
  ['127.0.0.10:53:1:0', '127.0.2.1:53', 'd1'],
  ['0.0.0.0:0:2:7', '127.0.3.1:0', 'f1'],
  ['[::]:0:2:9', '[::1]:0', 'g1'],
  ['[::1]:443:0:0', '[::1]:443', 's1'],
  ['[::1]:443:0:0', '[::1]:8443', 's2'],
];

/** A running surealived: its control port answers as the sink would be answered. */
const ask = (d: TestDaemon, line: string): Promise<string> => controlCommand({ port: d.port }, line);

/** What the sink reads from a surealived: vlist json, then rlist json per virtual. */
async function currentOf(d: TestDaemon): Promise<Map<string, OperatorOverride>> {
  const virtuals = virtualsOfVlist(await ask(d, 'vlist json'));
  const rlists: string[] = [];
  for (const v of virtuals) rlists.push(await ask(d, rlistLine(v)));
  return currentOverrides(rlists);
}

describe('session-sync/overrides (pure)', () => {
  describe('override.dump as a table', () => {
    it('reads absolute, percent, OFFLINE and DOWN lines, with IPv6 keys made canonical', () => {
      const text =
        '192.0.2.10:80:0:0 - 10.0.1.1:80 - weight=20  rstate=OFFLINE\n' +
        '192.0.2.10:80:0:0 - 10.0.1.2:80 - weight=50% rstate=ONLINE\n' +
        '0.0.0.0:0:2:7 - 10.0.3.1:0 - weight=1  rstate=DOWN\n' +
        '[2001:0DB8::0010]:443:0:0 - [2001:DB8:0::1]:443 - weight=4294967295  rstate=ONLINE\n';
      const r = readOverrideDump(text, '/var/lib/surealived/override.dump');
      assert.deepEqual(r.warnings, []);
      assert.deepEqual(
        [...r.overrides.values()],
        [
          ov('192.0.2.10:80:0:0', '10.0.1.1:80', 20, false, 'OFFLINE'),
          ov('192.0.2.10:80:0:0', '10.0.1.2:80', 50, true, 'ONLINE'),
          ov('0.0.0.0:0:2:7', '10.0.3.1:0', 1, false, 'DOWN'),
          ov('[2001:db8::10]:443:0:0', '[2001:db8::1]:443', 4294967295, false, 'ONLINE'),
        ],
      );
      assert.deepEqual([...r.overrides.keys()][0], '192.0.2.10:80:0:0 10.0.1.1:80');
    });

    it('skips bad lines with file:line and why, keeps the rest, and never throws on garbage', () => {
      const text =
        'garbage\n' +
        '192.0.2.10:80:0:0 - 10.0.1.1:80 - weight=20  rstate=SIDEWAYS\n' +
        '\n' +
        '192.0.2.10:80:0:0 - 10.0.1.1:80 - weight=99999999999  rstate=OFFLINE\n' +
        '2001:db8::1:80:0:0 - 10.0.1.1:80 - weight=1  rstate=DOWN\n' +
        '192.0.2.10:80:0:0 - 10.0.1.2:80 - weight=5  rstate=DOWN\r\n';
      const r = readOverrideDump(text, 'o.dump');
      assert.deepEqual(
        r.warnings.map((w) => [w.file, w.line]),
        [
          ['o.dump', 1],
          ['o.dump', 2],
          ['o.dump', 4],
          ['o.dump', 5],
        ],
      );
      assert.match(r.warnings[1]!.reason, /unknown rstate 'SIDEWAYS'/);
      assert.match(r.warnings[2]!.reason, /out of range/);
      assert.match(r.warnings[3]!.reason, /IPv6 addresses must be in brackets/);
      assert.deepEqual([...r.overrides.values()], [ov('192.0.2.10:80:0:0', '10.0.1.2:80', 5, false, 'DOWN')]);
      for (const junk of ['\0\xff\n - - \n', ' - ', 'a - b - weight=1 rstate=DOWN', '-'.repeat(10_000)]) readOverrideDump(junk, 'x');
    });

    it('keeps the last line of a real named twice, however its keys are spelled', () => {
      const r = readOverrideDump('[2001:db8::10]:443:0:0 - [2001:db8::1]:443 - weight=1  rstate=DOWN\n[2001:DB8::10]:443:0:0 - [2001:db8:0::1]:443 - weight=2% rstate=OFFLINE\n', 'f');
      assert.deepEqual([...r.overrides.values()], [ov('[2001:db8::10]:443:0:0', '[2001:db8::1]:443', 2, true, 'OFFLINE')]);
    });
  });

  describe('diff', () => {
    const a = ov('192.0.2.10:80:0:0', '10.0.1.1:80', 20, false, 'OFFLINE');
    const b = ov('192.0.2.10:80:0:0', '10.0.1.2:80', 50, true, 'ONLINE');
    const m = (...list: OperatorOverride[]) => new Map(list.map((o) => [`${o.virtual} ${o.real}`, o]));

    it('reports everything as upserts against nothing, and nothing against itself', () => {
      assert.deepEqual(diffOverrides(TABLE, m(), m(a, b)), [
        { op: 'upsert', table: TABLE, entry: a },
        { op: 'upsert', table: TABLE, entry: b },
      ]);
      assert.deepEqual(diffOverrides(TABLE, m(a, b), m(a, b)), []);
    });

    it('reports a changed weight, flag or rstate as an upsert and a removed real as a delete by key', () => {
      const a2 = { ...a, rstate: 'DOWN' as const };
      const b2 = { ...b, percent: false };
      assert.deepEqual(diffOverrides(TABLE, m(a, b), m(a2)), [
        { op: 'upsert', table: TABLE, entry: a2 },
        { op: 'delete', table: TABLE, key: '192.0.2.10:80:0:0 10.0.1.2:80' },
      ]);
      assert.deepEqual(diffOverrides(TABLE, m(b), m(b2)), [{ op: 'upsert', table: TABLE, entry: b2 }]);
    });
  });

  describe('rset lines', () => {
    it('name a tcp or udp virtual by proto, address and port, the real by address and port', () => {
      assert.equal(
        rsetLine(target('192.0.2.10:80:0:0', '10.0.1.1:80'), { weight: 20, percent: false, rstate: 'OFFLINE' }),
        'rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=10.0.1.1 rport=80 rstate=OFFLINE rweight=20',
      );
      assert.equal(
        rsetLine(target('192.0.2.10:53:1:0', '10.0.2.1:53'), { weight: 50, percent: true, rstate: 'ONLINE' }),
        'rset vproto=udp vaddr=192.0.2.10 vport=53 raddr=10.0.2.1 rport=53 rstate=ONLINE rweight=50%',
      );
    });

    it('write IPv6 addresses bare and canonical', () => {
      assert.equal(
        rsetLine(target('[2001:DB8::10]:443:0:0', '[2001:db8:0::1]:443'), { weight: 3, percent: false, rstate: 'DOWN' }),
        'rset vproto=tcp vaddr=2001:db8::10 vport=443 raddr=2001:db8::1 rport=443 rstate=DOWN rweight=3',
      );
    });

    it('name a fwmark virtual by its mark, IPv4 or IPv6', () => {
      assert.equal(
        rsetLine(target('0.0.0.0:0:2:7', '10.0.3.1:0'), { weight: 1, percent: true, rstate: 'OFFLINE' }),
        'rset vproto=fwmark vfwmark=7 raddr=10.0.3.1 rport=0 rstate=OFFLINE rweight=1%',
      );
      assert.equal(resetLine(target('[::]:0:2:9', '[2001:db8::31]:0')), 'rset vproto=fwmark vfwmark=9 raddr=2001:db8::31 rport=0 rstate=ONLINE rweight=100%');
      assert.equal(rlistLine(target('[::]:0:2:9', '[2001:db8::31]:0').virtual), 'rlist vproto=fwmark vfwmark=9 json');
    });

    it('refuse keys that do not parse, saying why', () => {
      const p = parseTarget('192.0.2.10:80:7:0', '10.0.1.1:80');
      assert.ok(!p.ok);
      assert.match(p.why, /protocol number 7 is out of range/);
      assert.ok(!parseTarget('192.0.2.10:80:0:0', 'nope').ok);
    });

    it('read surealived replies: Set is success, a missing real is said plainly with surealived’s words', () => {
      assert.deepEqual(rsetOutcome('Set: rstate=DOWN, weight=20, inpercent=FALSE\n_SD_CMD_END_\n'), { ok: true });
      const missing = rsetOutcome('cmd_find_real: Real not found\n');
      assert.ok(!missing.ok);
      assert.equal(missing.why, "no such real in the local surealived's configuration (cmd_find_real: Real not found)");
      const virt = rsetOutcome('cmd_find_virt: Virt not found\n');
      assert.ok(!virt.ok && /no such virtual/.test(virt.why));
      assert.deepEqual(rsetOutcome(''), { ok: false, why: 'empty reply' });
    });
  });

  describe("a backup's current overrides (control-port JSON)", () => {
    it('refuse replies that are not what vlist/rlist json answer', () => {
      assert.throws(() => virtualsOfVlist('cmd_find_virt: Virt not found\n'), ControlReplyError);
      assert.throws(() => virtualsOfVlist('{"virtuals":[{"vproto":"sctp"}]}\n_SD_CMD_END_\n'), /unknown vproto/);
      assert.throws(() => virtualsOfVlist('{"virtuals":\n_SD_CMD_END_\n'), ControlReplyError);
      assert.throws(() => currentOverrides(['{"virtual":{"vproto":"tcp","vaddr":"10.0.0.1","vport":80,"vfwmark":0},"reals":[{"rstate":"ONLINE","confwgt":"x"}]}\n_SD_CMD_END_\n']), /confwgt/);
    });
  });

  describe('plan', () => {
    it('write: sets what differs, resets what the list lacks, skips what is already so', () => {
      const current = new Map([
        ['192.0.2.10:80:0:0 10.0.1.1:80', ov('192.0.2.10:80:0:0', '10.0.1.1:80', 20, false, 'OFFLINE')],
        ['192.0.2.10:80:0:0 10.0.1.2:80', ov('192.0.2.10:80:0:0', '10.0.1.2:80', 10, false, 'DOWN')],
      ]);
      const p = planWrite(current, [ov('192.0.2.10:80:0:0', '10.0.1.1:80', 20, false, 'OFFLINE'), ov('[2001:DB8::10]:443:0:0', '[2001:db8::1]:443', 50, true, 'ONLINE')]);
      assert.equal(p.skipped, 1);
      assert.deepEqual(p.failed, []);
      assert.deepEqual(p.rsets, [
        { what: '192.0.2.10:80:0:0 - 10.0.1.2:80', line: 'rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=10.0.1.2 rport=80 rstate=ONLINE rweight=100%' },
        { what: '[2001:db8::10]:443:0:0 - [2001:db8::1]:443', line: 'rset vproto=tcp vaddr=2001:db8::10 vport=443 raddr=2001:db8::1 rport=443 rstate=ONLINE rweight=50%' },
      ]);
    });

    it('apply: the last change of a real wins, deletes reset only what the backup has, drops take nothing away', () => {
      const current = new Map([['0.0.0.0:0:2:7 10.0.3.1:0', ov('0.0.0.0:0:2:7', '10.0.3.1:0', 1, false, 'DOWN')]]);
      const a = ov('192.0.2.10:80:0:0', '10.0.1.1:80', 20, false, 'OFFLINE');
      const changes: Change[] = [
        { op: 'upsert', table: TABLE, entry: a },
        { op: 'upsert', table: TABLE, entry: { ...a, rstate: 'DOWN' } },
        { op: 'delete', table: TABLE, key: '192.0.2.10:80:0:0 10.0.1.2:80' },
        { op: 'delete', table: TABLE, key: '0.0.0.0:0:2:7 10.0.3.1:0' },
        { op: 'drop', table: TABLE },
        { op: 'delete', table: TABLE, key: 'bogus key' },
      ];
      const p = planApply(current, changes);
      assert.deepEqual(
        p.rsets.map((r) => r.line),
        ['rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=10.0.1.1 rport=80 rstate=DOWN rweight=20', 'rset vproto=fwmark vfwmark=7 raddr=10.0.3.1 rport=0 rstate=ONLINE rweight=100%'],
      );
      assert.equal(p.skipped, 1);
      assert.deepEqual(p.failed.map((f) => f.what), ['bogus - key']);
    });
  });
});

describe('session-sync/overrides with a running surealived (control port, override.dump)', function () {
  this.timeout(30_000);
  let servers: RealServers | undefined;
  const daemons: TestDaemon[] = [];

  before(async function () {
    // The director has IPv6 reals, probed on ::1.
    if (!(await ipv6Loopback())) this.skip();
    servers = await RealServers.start(DIRECTOR);
  });
  after(async () => {
    await servers?.close();
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
  });

  /** A surealived on the director's configuration (without the real `withoutReal`), every real probed once. */
  async function surealived(withoutReal?: string): Promise<TestDaemon> {
    let xml = await servers!.xml();
    if (withoutReal !== undefined) xml = xml.replace(new RegExp(`  <real name="${withoutReal}" [^\n]*\n`), '');
    const d = await TestDaemon.start({ xml });
    daemons.push(d);
    await d.waitAllTested();
    return d;
  }

  it('override.dump reads back exactly as surealived writes it', async () => {
    const d = await surealived();
    assert.match(await ask(d, 'rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.1 rport=80 rstate=OFFLINE'), /^Set: /);
    assert.match(await ask(d, 'rset vproto=fwmark vfwmark=9 raddr=::1 rport=0 rweight=150%'), /^Set: /);
    const text = d.overrideDump();
    assert.equal(text, '127.0.0.10:80:0:0 - 127.0.1.1:80 - weight=20  rstate=OFFLINE\n[::]:0:2:9 - [::1]:0 - weight=150% rstate=ONLINE\n');
    const read = [...readOverrideDump(text, 'f').overrides.values()];
    assert.equal(read.map((o) => formatOverrideText(o.virtual, o.real, o.weight, o.percent, o.rstate)).join(''), text);
  });

  it('rset lines select in surealived exactly the real they name, and no other, for every kind of virtual', async () => {
    const d = await surealived();
    for (const [vk, rk, rname] of DIRECTOR_KEYS) {
      const diffs = d.diffs();
      assert.match(await ask(d, rsetLine(target(vk, rk), { weight: 7, percent: false, rstate: 'DOWN' })), /^Set: rstate=DOWN, weight=7/);
      // override.dump is written before the reply: one entry, this real's.
      assert.equal(d.overrideDump(), `${vk} - ${rk} - weight=7  rstate=DOWN\n`, `${vk} ${rk}`);
      // ...and the hand-off removes this real, and no other.
      await until(() => d.diffs() !== diffs, `the diff line of ${rname}`);
      assert.match(d.diffs().slice(diffs.length), new RegExp(`^cmd=(v6)?delreal [^\n]* rname=${rname} [^\n]*rweight=0\n$`), `${vk} ${rk}`);
      const downed = d.diffs();
      assert.match(await ask(d, resetLine(target(vk, rk))), /^Set: rstate=ONLINE, weight=100, inpercent=TRUE/);
      assert.equal(d.overrideDump(), '', `${vk} ${rk} reset`);
      // Back in with its weight (and waited for, so the next real's lines are its own).
      await until(() => d.diffs() !== downed, `the diff lines of ${rname} reset`);
      assert.match(d.diffs().slice(downed.length), new RegExp(`^cmd=(v6)?addreal [^\\n]* rname=${rname} [^\\n]*\\ncmd=(v6)?chgreal [^\\n]* rname=${rname} [^\\n]*\\n$`), `${vk} ${rk} reset`);
    }
    assert.equal((await currentOf(d)).size, 0, 'every real back to ONLINE at its configured weight');
  });

  it("a backup's current overrides are what its override.dump holds, pinned weights included", async () => {
    const d = await surealived();
    for (const line of [
      'rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.1 rport=80 rstate=OFFLINE',
      'rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.2 rport=80 rweight=10',
      'rset vproto=tcp vaddr=::1 vport=443 raddr=::1 rport=8443 rweight=40%',
      'rset vproto=fwmark vfwmark=7 raddr=127.0.3.1 rport=0 rstate=DOWN rweight=100%',
      'rset vproto=udp vaddr=127.0.0.10 vport=53 raddr=127.0.2.1 rport=53 rstate=ONLINE rweight=100%',
    ]) {
      assert.match(await ask(d, line), /^Set: /, line);
    }
    const dump = readOverrideDump(d.overrideDump(), 'override.dump').overrides;
    assert.deepEqual(await currentOf(d), dump);
    assert.equal(dump.size, 3);
  });

  it('plan: makes a backup surealived’s override.dump equal the master’s, for every kind of virtual', async () => {
    const master = await surealived();
    const backup = await surealived();
    assert.match(await ask(backup, 'rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.2 rport=80 rstate=DOWN'), /^Set: /);
    for (const line of [
      'rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.1 rport=80 rstate=OFFLINE',
      'rset vproto=udp vaddr=127.0.0.10 vport=53 raddr=127.0.2.1 rport=53 rweight=3',
      'rset vproto=fwmark vfwmark=7 raddr=127.0.3.1 rport=0 rweight=250%',
      'rset vproto=fwmark vfwmark=9 raddr=::1 rport=0 rstate=DOWN rweight=1%',
      'rset vproto=tcp vaddr=::1 vport=443 raddr=::1 rport=8443 rstate=OFFLINE rweight=2',
    ]) {
      assert.match(await ask(master, line), /^Set: /, line);
    }
    const list = [...readOverrideDump(master.overrideDump(), 'master').overrides.values()];
    assert.equal(list.length, 5);
    const p = planWrite(await currentOf(backup), list);
    assert.equal(p.rsets.length, 6);
    for (const r of p.rsets) assert.match(await ask(backup, r.line), /^Set: /, r.line);
    assert.equal(backup.overrideDump(), master.overrideDump());
    // A second write finds everything already so: nothing is sent, so no diff file is written.
    assert.deepEqual(planWrite(await currentOf(backup), list), { rsets: [], skipped: 5, failed: [] });
  });

  it('plan: sends an override of a real the backup lacks to that real only: surealived refuses it, no other real changes', async () => {
    const backup = await surealived('w1');
    const diffs = backup.diffs();
    const p = planWrite(await currentOf(backup), [ov('127.0.0.10:80:0:0', '127.0.1.1:80', 20, false, 'OFFLINE')]);
    assert.equal(p.rsets.length, 1);
    const o = rsetOutcome(await ask(backup, p.rsets[0]!.line));
    assert.deepEqual(o, { ok: false, why: "no such real in the local surealived's configuration (cmd_find_real: Real not found)" });
    assert.equal(backup.overrideDump(), '', 'no override.dump written');
    for (const v of virtualsOfVlist(await ask(backup, 'vlist json'))) {
      const j = JSON.parse((await ask(backup, rlistLine(v))).split('\n')[0]!) as { reals: Array<{ rstate: string; override: unknown }> };
      assert.ok(j.reals.every((r) => r.rstate === 'ONLINE' && r.override === null), JSON.stringify(j));
    }
    // Hand-off writes are serialised: had the refused rset been handed off, its line would come before
    // those of this valid one, which changes nothing (w2 ONLINE at its configured weight).
    assert.match(await ask(backup, 'rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.2 rport=80 rweight=10'), /^Set: /);
    await until(() => backup.diffs() !== diffs, 'the diff lines of the valid rset');
    assert.match(backup.diffs().slice(diffs.length), /^cmd=addreal [^\n]* rname=w2 [^\n]*rweight=10\ncmd=chgreal [^\n]* rname=w2 [^\n]*rweight=10\n$/, 'nothing handed off for w1');
  });
});
