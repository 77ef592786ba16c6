import { strict as assert } from 'node:assert';
import { buildState } from '../../surealived/engine/state.js';
import { formatDiffLines, formatFullFile, formatVirtualLine } from '../../surealived/handoff/format.js';
import { makeVirtual } from '../helpers/model.js';

describe('hand-off format (spec 8.3, 8.4)', () => {
  const onet = makeVirtual({
    name: 'onet',
    addr: '192.168.0.1',
    port: 80,
    reals: [
      { name: 'sg', addr: '213.180.146.27', port: 80, weight: 10 },
      { name: 'sg2', addr: '213.180.146.28', port: 81, weight: 5, rt: 'masq', uthresh: 100, lthresh: 10 },
    ],
  });
  const dns = makeVirtual({ name: 'dns', proto: 'udp', addr: '192.168.0.2', port: 53, ops: true, pers: 300, reals: [{ name: 'd1', addr: '10.1.1.1', port: 53, weight: 3 }] });
  const fw = makeVirtual({ name: 'fw', proto: 'fwmark', fwmark: 7, reals: [] });

  it('writes the full file byte for byte: meta, DIFF, virtuals and reals in XML order, blank line after reals', () => {
    const states = buildState([onet, dns, fw]);
    const text = formatFullFile(states, new Date(2024, 4, 1, 12, 0, 5), '/var/lib/surealived/diffs/diff_sync.1714564805');
    assert.equal(
      text,
      'meta version=1.0 mdate=2024-05-01 mtime=12:00:05\n\n' +
        'DIFF file=/var/lib/surealived/diffs/diff_sync.1714564805\n\n' +
        'virtual vname=onet vproto=tcp vaddr=192.168.0.1 vport=80 vrt=dr vsched=wrr\n' +
        'real rname=sg raddr=213.180.146.27 rport=80 rweight=10\n' +
        'real rname=sg2 raddr=213.180.146.28 rport=81 rweight=5 rl_thresh=10 ru_thresh=100 rrt=masq\n' +
        '\n' +
        'virtual vname=dns vproto=udp vaddr=192.168.0.2 vport=53 vrt=dr vsched=wrr vpers=300 vops=1\n' +
        'real rname=d1 raddr=10.1.1.1 rport=53 rweight=3\n' +
        '\n' +
        'virtual vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vrt=dr vsched=wrr vfwmark=7\n',
    );
  });

  it('emits vops only for udp virtuals', () => {
    assert.equal(formatVirtualLine(makeVirtual({ name: 't', ops: true })), 'virtual vname=t vproto=tcp vaddr=192.0.2.1 vport=80 vrt=dr vsched=wrr');
  });

  it('an offline real is written with weight 0, or left out with remove_on_fail; a DOWN real is left out', () => {
    const states = buildState([onet, makeVirtual({ name: 'rof', addr: '192.168.0.3', tester: { removeOnFail: true }, reals: [{ name: 'x', addr: '10.0.0.9', weight: 4 }] })]);
    states[0]!.reals[0]!.online = false;
    states[0]!.reals[1]!.rstate = 'DOWN';
    states[1]!.reals[0]!.online = false;
    const text = formatFullFile(states, new Date(2024, 0, 1), '/d/diff_sync.1');
    assert.match(text, /real rname=sg raddr=213\.180\.146\.27 rport=80 rweight=0\n/);
    assert.doesNotMatch(text, /rname=sg2/);
    assert.doesNotMatch(text, /rname=x/);
  });

  it('a present real gives addreal then an identical chgreal; an absent one a single delreal', () => {
    const [v] = buildState([onet]);
    const r = v!.reals[1]!;
    const line = 'vname=onet vproto=tcp vaddr=192.168.0.1 vport=80 vfwmark=0 vrt=dr vsched=wrr rname=sg2 raddr=213.180.146.28 rport=81 rweight=5 rl_thresh=10 ru_thresh=100 rrt=masq\n';
    assert.equal(formatDiffLines(r), `cmd=addreal ${line}cmd=chgreal ${line}`);
    r.rstate = 'DOWN';
    assert.equal(formatDiffLines(r), `cmd=delreal ${line.replace('rweight=5', 'rweight=0')}`);
  });

  it('applies weight overrides: percent max(1, w*p/100), absolute, OFFLINE -> 0', () => {
    const [v] = buildState([onet]);
    const r = v!.reals[0]!;
    r.override = { weight: 1, percent: true };
    assert.match(formatDiffLines(r), /rweight=1\n/);
    r.override = { weight: 50, percent: true };
    assert.match(formatDiffLines(r), /rweight=5\n/);
    r.override = { weight: 42, percent: false };
    assert.match(formatDiffLines(r), /^cmd=addreal .* rweight=42\ncmd=chgreal .* rweight=42\n$/);
    r.rstate = 'OFFLINE';
    assert.match(formatDiffLines(r), /^cmd=addreal .* rweight=0\n/);
  });

  describe('IPv6 entries: the v6 form, which the original ipvssync skips whole', () => {
    const mixed = [
      makeVirtual({ name: 'web', addr: '192.0.2.10', reals: [{ name: 'w1', addr: '10.0.1.1', weight: 10 }, { name: 'w6', addr: '2001:db8::7', weight: 5, rt: 'tun' }] }),
      makeVirtual({
        name: 'web6',
        addr: '2001:db8::10',
        port: 443,
        pers: 60,
        reals: [{ name: 'a', addr: '2001:db8::1', port: 443, weight: 3, uthresh: 9 }, { name: 't4', addr: '10.0.1.9', port: 443, weight: 2, rt: 'tun' }],
      }),
      makeVirtual({ name: 'fw6', proto: 'fwmark', addr: '::', fwmark: 8, reals: [{ name: 'g1', addr: '2001:db8::30', port: 0, weight: 1 }] }),
    ];

    it('an IPv6 virtual is `v6virtual`, every real of it `v6real` (an IPv4 tun real too), an IPv6 real of an IPv4 virtual `v6real`; IPv4 lines unchanged', () => {
      assert.equal(
        formatFullFile(buildState(mixed), new Date(2024, 4, 1, 12, 0, 5), '/d/diff_sync.1'),
        'meta version=1.0 mdate=2024-05-01 mtime=12:00:05\n\nDIFF file=/d/diff_sync.1\n\n' +
          'virtual vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vrt=dr vsched=wrr\n' +
          'real rname=w1 raddr=10.0.1.1 rport=80 rweight=10\n' +
          'v6real rname=w6 raddr=2001:db8::7 rport=80 rweight=5 rrt=tun\n' +
          '\n' +
          'v6virtual vname=web6 vproto=tcp vaddr=2001:db8::10 vport=443 vrt=dr vsched=wrr vpers=60\n' +
          'v6real rname=a raddr=2001:db8::1 rport=443 rweight=3 ru_thresh=9\n' +
          'v6real rname=t4 raddr=10.0.1.9 rport=443 rweight=2 rrt=tun\n' +
          '\n' +
          'v6virtual vname=fw6 vproto=fwmark vaddr=:: vport=0 vrt=dr vsched=wrr vfwmark=8\n' +
          'v6real rname=g1 raddr=2001:db8::30 rport=0 rweight=1\n' +
          '\n',
      );
    });

    it('a diff line with an IPv6 address on either side is cmd=v6addreal + cmd=v6chgreal, or cmd=v6delreal; IPv4 ones unchanged', () => {
      const [web, web6] = buildState(mixed);
      const [w1, w6] = web!.reals;
      const [a, t4] = web6!.reals;
      assert.match(formatDiffLines(w1!), /^cmd=addreal vname=web .*\ncmd=chgreal vname=web .*\n$/);
      const w6line = 'vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr rname=w6 raddr=2001:db8::7 rport=80 rweight=5 rrt=tun\n';
      assert.equal(formatDiffLines(w6!), `cmd=v6addreal ${w6line}cmd=v6chgreal ${w6line}`);
      const t4line = 'vname=web6 vproto=tcp vaddr=2001:db8::10 vport=443 vfwmark=0 vrt=dr vsched=wrr rname=t4 raddr=10.0.1.9 rport=443 rweight=2 rrt=tun\n';
      assert.equal(formatDiffLines(t4!), `cmd=v6addreal ${t4line}cmd=v6chgreal ${t4line}`);
      a!.rstate = 'DOWN';
      assert.equal(
        formatDiffLines(a!),
        'cmd=v6delreal vname=web6 vproto=tcp vaddr=2001:db8::10 vport=443 vfwmark=0 vrt=dr vsched=wrr rname=a raddr=2001:db8::1 rport=443 rweight=0 ru_thresh=9\n',
      );
    });
  });
});
