// The pure half of operator-override sync: override.dump read as a table (file:line warnings, canonical
// keys), diffs between two reads, the rset lines a VKEY/RKEY pair becomes (IPv4, IPv6, fwmark), the
// backup's current overrides from its JSON replies, and the plan of what to send. The backup side is
// checked against surealived's own command code, run in memory.

import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { formatOverrideText } from '../../common/override-line.js';
import type { Change, OperatorOverride, TableRef } from '../../session-sync/model.js';
import { currentOverrides, virtualsOfVlist, ControlReplyError } from '../../session-sync/overrides/current.js';
import { diffOverrides } from '../../session-sync/overrides/diff.js';
import { readOverrideDump } from '../../session-sync/overrides/dump.js';
import { planApply, planWrite } from '../../session-sync/overrides/plan.js';
import { parseTarget, resetLine, rlistLine, rsetLine, rsetOutcome, type RealTarget } from '../../session-sync/overrides/rset.js';
import { executeCommand } from '../../surealived/control/commands.js';
import { parseCommand } from '../../surealived/control/protocol.js';
import type { VirtualConfig } from '../../surealived/config/model.js';
import { rkey, vkey } from '../../surealived/state/keys.js';
import { formatOverrideDump } from '../../surealived/state/override-dump.js';
import { fixedProcessStats, real, TestTarget, virtual } from '../control/helpers.js';

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

/** A director's configuration with every kind of virtual: tcp, udp, fwmark (IPv4 and IPv6), IPv6 tcp. */
function director(withoutReal?: string): VirtualConfig[] {
  const reals = (list: ReturnType<typeof real>[]) => list.filter((r) => r.name !== withoutReal);
  return [
    virtual('web', 'tcp', '192.0.2.10', 80, { reals: reals([real('w1', '10.0.1.1', 80, 20), real('w2', '10.0.1.2', 80, 10)]) }),
    virtual('dns', 'udp', '192.0.2.10', 53, { reals: reals([real('d1', '10.0.2.1', 53, 5)]) }),
    virtual('fw', 'fwmark', '0.0.0.0', 0, { fwmark: 7, reals: reals([real('f1', '10.0.3.1', 0, 1)]) }),
    virtual('fw6', 'fwmark', '::', 0, { fwmark: 9, reals: reals([real('g1', '2001:db8::31', 0, 4)]) }),
    virtual('v6', 'tcp', '2001:db8::10', 443, { reals: reals([real('s1', '2001:db8::1', 443, 3), real('s2', '2001:db8::2', 443, 3)]) }),
  ];
}

/** surealived's control port in memory: parse, select, apply, reply, exactly as the daemon does. */
function run(t: TestTarget, line: string): string {
  const reply = executeCommand(parseCommand(line), { target: t, processStats: () => Promise.resolve(fixedProcessStats) });
  assert.equal(typeof reply, 'string');
  return reply as string;
}

/** What the sink reads from a surealived: vlist json, then rlist json per virtual. */
function currentOf(t: TestTarget): Map<string, OperatorOverride> {
  return currentOverrides(virtualsOfVlist(run(t, 'vlist json')).map((v) => run(t, rlistLine(v))));
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

    it('reads back exactly what surealived writes', () => {
      const t = new TestTarget(director());
      run(t, 'rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=10.0.1.1 rport=80 rstate=OFFLINE');
      run(t, 'rset vproto=fwmark vfwmark=9 raddr=2001:db8::31 rport=0 rweight=150%');
      const text = formatOverrideDump(t.virtuals);
      const read = [...readOverrideDump(text, 'f').overrides.values()];
      assert.equal(read.map((o) => formatOverrideText(o.virtual, o.real, o.weight, o.percent, o.rstate)).join(''), text);
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

    it('select in surealived exactly the real they name, and no other, for every kind of virtual', () => {
      const t = new TestTarget(director());
      for (const v of t.virtuals) {
        for (const r of v.reals) {
          const vk = vkey(v.config);
          const rk = rkey(r.config);
          const before = t.virtuals.flatMap((x) => x.reals.map((y) => `${y.rstate}/${JSON.stringify(y.override)}`));
          assert.match(run(t, rsetLine(target(vk, rk), { weight: 7, percent: false, rstate: 'DOWN' })), /^Set: rstate=DOWN, weight=7/);
          const after = t.virtuals.flatMap((x) => x.reals.map((y) => `${y.rstate}/${JSON.stringify(y.override)}`));
          const changed = after.map((s, i) => (s !== before[i] ? i : -1)).filter((i) => i >= 0);
          const index = t.virtuals.flatMap((x) => x.reals).indexOf(r);
          assert.deepEqual(changed, [index], `${vk} ${rk}`);
          run(t, resetLine(target(vk, rk)));
        }
      }
      assert.equal(formatOverrideDump(t.virtuals), '');
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
    it('are what its override.dump holds, pinned weights included', () => {
      const t = new TestTarget(director());
      run(t, 'rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=10.0.1.1 rport=80 rstate=OFFLINE');
      run(t, 'rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=10.0.1.2 rport=80 rweight=10');
      run(t, 'rset vproto=tcp vaddr=2001:db8::10 vport=443 raddr=2001:db8::2 rport=443 rweight=40%');
      run(t, 'rset vproto=fwmark vfwmark=7 raddr=10.0.3.1 rport=0 rstate=DOWN rweight=100%');
      run(t, 'rset vproto=udp vaddr=192.0.2.10 vport=53 raddr=10.0.2.1 rport=53 rstate=ONLINE rweight=100%');
      const dump = readOverrideDump(formatOverrideDump(t.virtuals), 'f').overrides;
      assert.deepEqual(currentOf(t), dump);
      assert.equal(dump.size, 3);
    });

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

    it('makes a backup surealived’s override.dump equal the master’s, for every kind of virtual', () => {
      const master = new TestTarget(director());
      const backup = new TestTarget(director());
      run(backup, 'rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=10.0.1.2 rport=80 rstate=DOWN');
      for (const line of [
        'rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=10.0.1.1 rport=80 rstate=OFFLINE',
        'rset vproto=udp vaddr=192.0.2.10 vport=53 raddr=10.0.2.1 rport=53 rweight=3',
        'rset vproto=fwmark vfwmark=7 raddr=10.0.3.1 rport=0 rweight=250%',
        'rset vproto=fwmark vfwmark=9 raddr=2001:db8::31 rport=0 rstate=DOWN rweight=1%',
        'rset vproto=tcp vaddr=2001:db8::10 vport=443 raddr=2001:db8::2 rport=443 rstate=OFFLINE rweight=2',
      ]) {
        assert.match(run(master, line), /^Set: /);
      }
      const list = [...readOverrideDump(formatOverrideDump(master.virtuals), 'master').overrides.values()];
      const p = planWrite(currentOf(backup), list);
      assert.equal(p.rsets.length, 6);
      for (const r of p.rsets) assert.match(run(backup, r.line), /^Set: /, r.line);
      assert.equal(formatOverrideDump(backup.virtuals), formatOverrideDump(master.virtuals));
      // A second write finds everything already so: nothing is sent, so no diff file is written.
      assert.deepEqual(planWrite(currentOf(backup), list), { rsets: [], skipped: 5, failed: [] });
    });

    it('sends an override of a real the backup lacks to that real only: surealived refuses it, no other real changes', () => {
      const backup = new TestTarget(director('w1'));
      const before = formatOverrideDump(backup.virtuals);
      const p = planWrite(currentOf(backup), [ov('192.0.2.10:80:0:0', '10.0.1.1:80', 20, false, 'OFFLINE')]);
      assert.equal(p.rsets.length, 1);
      const o = rsetOutcome(run(backup, p.rsets[0]!.line));
      assert.deepEqual(o, { ok: false, why: "no such real in the local surealived's configuration (cmd_find_real: Real not found)" });
      assert.equal(formatOverrideDump(backup.virtuals), before);
      assert.ok(backup.virtuals.every((v) => v.reals.every((r) => r.rstate === 'ONLINE' && r.override === null)));
    });
  });
});
