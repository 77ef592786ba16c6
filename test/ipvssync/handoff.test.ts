// The hand-off parser: ipvsfull.cfg and diff lines in the exact spec 8.3/8.4 format, the IPv6
// extension, and every hostile or torn input refused with `file:line: reason`.

import { strict as assert } from 'node:assert';
import { applyDiffLine, parseDiffLine, parseFullFile, toTable, virtualIndex, type DiffLineOfReal, type HandoffConfig } from '../../ipvssync/handoff.js';
import { serviceId } from '../../ipvssync/types.js';
import { fullHead, real, WEB_VIRTUAL, webDiff } from './helpers.js';

const DIR = '/var/lib/surealived/diffs';
const DIFF = `${DIR}/diff_sync.1714557600`;
const F = '/var/lib/surealived/ipvsfull.cfg';

function ok(text: string): HandoffConfig {
  const p = parseFullFile(text, F, DIR);
  if (!p.ok) assert.fail(`unexpected errors: ${p.errors.join('; ')}`);
  return p.config;
}

function errorsOf(text: string): readonly string[] {
  const p = parseFullFile(text, F, DIR);
  assert.equal(p.ok, false, 'the file should be refused');
  return p.ok ? [] : p.errors;
}

function diffOf(line: string): DiffLineOfReal {
  const p = parseDiffLine(line, DIR);
  if (!p.ok || p.line.kind !== 'real') assert.fail(`not a real diff line: ${JSON.stringify(p)}`);
  return p.line;
}

describe('ipvssync hand-off parser: ipvsfull.cfg', () => {
  it('reads the exact format surealived writes, optional fields included', () => {
    const c = ok(
      fullHead(DIFF) +
        'virtual vname=web vproto=tcp vaddr=10.0.0.1 vport=80 vrt=dr vsched=wrr vpers=300\n' +
        'real rname=w1 raddr=10.0.1.5 rport=8080 rweight=10\n' +
        'real rname=w2 raddr=10.0.1.6 rport=8080 rweight=0 rl_thresh=5 ru_thresh=100 rrt=masq\n' +
        '\n' +
        'virtual vname=dns vproto=udp vaddr=10.0.0.53 vport=53 vrt=tun vsched=rr vops=1\n' +
        'real rname=d1 raddr=10.0.2.1 rport=53 rweight=1\n' +
        '\n' +
        'virtual vname=empty vproto=tcp vaddr=10.0.0.9 vport=443 vrt=masq vsched=lc\n',
    );
    assert.equal(c.diffFile, DIFF);
    assert.equal(c.virtuals.length, 3);
    const [web, dns, empty] = c.virtuals;
    assert.deepEqual(web!.service, {
      key: { kind: 'addr', family: 'inet', protocol: 'tcp', addr: '10.0.0.1', port: 80 },
      scheduler: 'wrr',
      persistent: true,
      timeout: 300,
      onePacket: false,
      netmask: 32,
    });
    assert.equal(web!.name, 'web');
    assert.equal(web!.forward, 'route');
    assert.deepEqual(
      web!.reals.map((r) => [r.name, r.dest]),
      [
        ['w1', { addr: '10.0.1.5', family: 'inet', port: 8080, forward: 'route', weight: 10, upperThreshold: 0, lowerThreshold: 0 }],
        ['w2', { addr: '10.0.1.6', family: 'inet', port: 8080, forward: 'masq', weight: 0, upperThreshold: 100, lowerThreshold: 5 }],
      ],
    );
    assert.equal(dns!.service.onePacket, true);
    assert.equal(dns!.service.persistent, false);
    assert.equal(dns!.forward, 'tunnel');
    assert.equal(dns!.reals[0]!.dest.forward, 'tunnel');
    assert.deepEqual(empty!.reals, []);
    assert.equal(empty!.forward, 'masq');
    assert.equal(web!.where, `${F}:5`);
  });

  it('defaults rweight to 1 and the thresholds to 0', () => {
    const c = ok(fullHead(DIFF) + `${WEB_VIRTUAL}\nreal rname=w raddr=10.0.1.5 rport=80\n`);
    const d = c.virtuals[0]!.reals[0]!.dest;
    assert.equal(d.weight, 1);
    assert.equal(d.upperThreshold, 0);
    assert.equal(d.lowerThreshold, 0);
  });

  it('reads the v6 form: v6virtual, its reals as v6real (an IPv4 tun real too), an IPv6 real of an IPv4 virtual as v6real', () => {
    const c = ok(
      fullHead(DIFF) +
        'virtual vname=web vproto=tcp vaddr=10.0.0.1 vport=80 vrt=dr vsched=wrr\n' +
        'real rname=w1 raddr=10.0.1.5 rport=80 rweight=10\n' +
        'v6real rname=w6 raddr=2001:db8::7 rport=80 rweight=5 rrt=tun\n' +
        '\n' +
        'v6virtual vname=v6 vproto=tcp vaddr=2001:DB8:0:0::1 vport=443 vrt=dr vsched=wlc vpers=60\n' +
        'v6real rname=r1 raddr=::1 rport=443 rweight=2 ru_thresh=9\n' +
        'v6real rname=t4 raddr=10.0.1.9 rport=443 rweight=3 rrt=tun\n' +
        '\n' +
        'v6virtual vname=fw6 vproto=fwmark vaddr=:: vport=0 vrt=dr vsched=rr vfwmark=8\n' +
        'v6real rname=g1 raddr=2001:db8::30 rport=0 rweight=1\n',
    );
    const [web, v6, fw6] = c.virtuals;
    assert.deepEqual(web!.service.key, { kind: 'addr', family: 'inet', protocol: 'tcp', addr: '10.0.0.1', port: 80 });
    assert.deepEqual(v6!.service, {
      key: { kind: 'addr', family: 'inet6', protocol: 'tcp', addr: '2001:db8::1', port: 443 },
      scheduler: 'wlc',
      persistent: true,
      timeout: 60,
      onePacket: false,
      netmask: 128,
    });
    assert.deepEqual(fw6!.service.key, { kind: 'fwmark', family: 'inet6', fwmark: 8 });
    assert.deepEqual(
      c.virtuals.map((v) => v.reals.map((r) => [r.name, r.dest.addr, r.dest.family, r.dest.forward, r.dest.weight, r.dest.upperThreshold])),
      [
        [['w1', '10.0.1.5', 'inet', 'route', 10, 0], ['w6', '2001:db8::7', 'inet6', 'tunnel', 5, 0]],
        [['r1', '::1', 'inet6', 'route', 2, 9], ['t4', '10.0.1.9', 'inet', 'tunnel', 3, 0]],
        [['g1', '2001:db8::30', 'inet6', 'route', 1, 0]],
      ],
    );
    assert.equal(web!.reals[1]!.where, `${F}:7`);
  });

  it('still reads IPv6 entries in the previous form (virtual/real lines with IPv6 addresses) and canonicalises them', () => {
    const c = ok(
      fullHead(DIFF) +
        'virtual vname=v6 vproto=tcp vaddr=2001:DB8:0:0::1 vport=443 vrt=dr vsched=wlc\n' +
        'real rname=r1 raddr=::1 rport=443 rweight=2\n' +
        'real rname=r2 raddr=2001:db8:0:0:0:0:1:5 rport=443 rweight=3\n',
    );
    const v = c.virtuals[0]!;
    assert.deepEqual(v.service.key, { kind: 'addr', family: 'inet6', protocol: 'tcp', addr: '2001:db8::1', port: 443 });
    assert.equal(v.service.netmask, 128);
    assert.deepEqual(
      v.reals.map((r) => [r.dest.addr, r.dest.family]),
      [
        ['::1', 'inet6'],
        ['2001:db8::1:5', 'inet6'],
      ],
    );
  });

  it('makes a fwmark service of any virtual with a vfwmark, whatever its vproto', () => {
    const c = ok(
      fullHead(DIFF) +
        'virtual vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vrt=dr vsched=rr vfwmark=300\n' +
        'real rname=a raddr=10.0.1.5 rport=0 rweight=1\n\n' +
        'virtual vname=fw2 vproto=tcp vaddr=0.0.0.0 vport=0 vrt=dr vsched=rr vfwmark=301\n\n' +
        'virtual vname=fw6 vproto=fwmark vaddr=:: vport=0 vrt=dr vsched=rr vfwmark=302\n',
    );
    assert.deepEqual(
      c.virtuals.map((v) => v.service.key),
      [
        { kind: 'fwmark', family: 'inet', fwmark: 300 },
        { kind: 'fwmark', family: 'inet', fwmark: 301 },
        { kind: 'fwmark', family: 'inet6', fwmark: 302 },
      ],
    );
  });

  it('accepts a full file without a DIFF line (nothing to tail)', () => {
    const c = ok(`meta version=1.0 mdate=2024-05-01 mtime=12:00:00\n\n${WEB_VIRTUAL}\n`);
    assert.equal(c.diffFile, null);
  });

  it('maps the desired config to an IPVS table', () => {
    const t = toTable(ok(fullHead(DIFF) + `${WEB_VIRTUAL}\n${real('a', '10.0.1.5', 4)}\n`));
    assert.equal(t.length, 1);
    assert.equal(t[0]!.service.scheduler, 'wrr');
    assert.equal(t[0]!.dests[0]!.weight, 4);
  });
});

describe('ipvssync hand-off parser: hostile or torn ipvsfull.cfg', () => {
  const cases: ReadonlyArray<[string, string, RegExp]> = [
    ['a torn last line (no newline)', fullHead(DIFF) + `${WEB_VIRTUAL}\nreal rname=a raddr=10.0.1.5 rport=8`, /:6: incomplete last line/],
    ['an empty file', '', /:1: no 'meta' line/],
    ['a virtual before the meta line', `${WEB_VIRTUAL}\n`, /:1: 'meta' line expected first/],
    ['a second meta line', fullHead(DIFF) + 'meta version=1.0\n', /:5: duplicate meta line/],
    ['an unknown line', fullHead(DIFF) + 'frobnicate all=1\n', /:5: unknown line 'frobnicate'/],
    ['a real before any virtual', fullHead(DIFF) + `${real('a', '10.0.1.5', 1)}\n`, /:5: real line before any virtual/],
    ['a duplicate virtual', fullHead(DIFF) + `${WEB_VIRTUAL}\n\n${WEB_VIRTUAL}\n`, /:7: duplicate virtual tcp 10\.0\.0\.1:80 \(first at .*:5\)/],
    ['a duplicate real', fullHead(DIFF) + `${WEB_VIRTUAL}\n${real('a', '10.0.1.5', 1)}\n${real('b', '10.0.1.5', 2)}\n`, /:7: duplicate real 10\.0\.1\.5:80/],
    ['a bad vaddr', fullHead(DIFF) + 'virtual vname=x vproto=tcp vaddr=10.0.0.256 vport=80 vrt=dr vsched=rr\n', /:5: vaddr: bad address '10\.0\.0\.256'/],
    ['an inet_aton shorthand raddr', fullHead(DIFF) + `${WEB_VIRTUAL}\n${real('a', '10.1', 1)}\n`, /:6: raddr: bad address '10\.1'/],
    ['a port above 65535', fullHead(DIFF) + `${WEB_VIRTUAL}\nreal rname=a raddr=10.0.1.5 rport=65536 rweight=1\n`, /:6: rport: bad port '65536'/],
    ['a non-numeric vport', fullHead(DIFF) + 'virtual vname=x vproto=tcp vaddr=10.0.0.2 vport=http vrt=dr vsched=rr\n', /:5: vport: bad port 'http'/],
    ['a negative weight', fullHead(DIFF) + `${WEB_VIRTUAL}\n${real('a', '10.0.1.5', -1)}\n`, /:6: bad rweight '-1'/],
    ['a garbage weight', fullHead(DIFF) + `${WEB_VIRTUAL}\nreal rname=a raddr=10.0.1.5 rport=80 rweight=10x\n`, /:6: bad rweight '10x'/],
    ['a bad vrt', fullHead(DIFF) + 'virtual vname=x vproto=tcp vaddr=10.0.0.2 vport=80 vrt=nat vsched=rr\n', /:5: bad vrt 'nat'/],
    ['a bad rrt', fullHead(DIFF) + `${WEB_VIRTUAL}\n${real('a', '10.0.1.5', 1, ' rrt=gre')}\n`, /:6: bad rrt 'gre'/],
    ['a bad vproto', fullHead(DIFF) + 'virtual vname=x vproto=icmp vaddr=10.0.0.2 vport=80 vrt=dr vsched=rr\n', /:5: bad vproto 'icmp'/],
    ['a missing vsched', fullHead(DIFF) + 'virtual vname=x vproto=tcp vaddr=10.0.0.2 vport=80 vrt=dr\n', /:5: missing vsched=/],
    ['a hostile vsched', fullHead(DIFF) + 'virtual vname=x vproto=tcp vaddr=10.0.0.2 vport=80 vrt=dr vsched=../../x\n', /:5: bad vsched/],
    ['vproto=fwmark without vfwmark', fullHead(DIFF) + 'virtual vname=x vproto=fwmark vaddr=0.0.0.0 vport=0 vrt=dr vsched=rr\n', /:5: vproto=fwmark needs vfwmark/],
    ['vpers=0', fullHead(DIFF) + 'virtual vname=x vproto=tcp vaddr=10.0.0.2 vport=80 vrt=dr vsched=rr vpers=0\n', /:5: bad vpers '0'/],
    ['a token without =', fullHead(DIFF) + `${WEB_VIRTUAL} junk\n`, /:5: bad token 'junk'/],
    ['a key given twice', fullHead(DIFF) + `${WEB_VIRTUAL} vport=81\n`, /:5: duplicate key 'vport'/],
    ['an IPv6 real in an IPv4 dr virtual', fullHead(DIFF) + `${WEB_VIRTUAL}\n${real('a', '2001:db8::5', 1)}\n`, /:6: real 2001:db8::5 is not in the address family/],
    ['a DIFF target outside diff_sync_dir', fullHead('/tmp/diff_sync.1'), /:3: DIFF target '\/tmp\/diff_sync\.1' is outside diff_sync_dir/],
    ['a DIFF target escaping with ..', fullHead(`${DIR}/../diff_sync.1`), /:3: DIFF target .* is outside diff_sync_dir/],
    ['a DIFF target not named diff_sync.<digits>', fullHead(`${DIR}/ipvsfull.lock`), /:3: DIFF target .* is not named diff_sync\.<digits>/],
    ['a DIFF target with a non-digit suffix', fullHead(`${DIR}/diff_sync.12a`), /:3: DIFF target .* is not named diff_sync\.<digits>/],
    ['a DIFF line without file=', 'meta version=1.0\nDIFF /x\n', /:2: bad DIFF line/],
    // The v6 form: keywords that do not fit their entry.
    [
      "a 'real' line in a v6virtual (the original would read it into the virtual before)",
      fullHead(DIFF) + 'v6virtual vname=x vproto=tcp vaddr=2001:db8::1 vport=80 vrt=tun vsched=rr\n' + `${real('a', '10.0.1.5', 1)}\n`,
      /:6: 'real' line in a v6virtual \(its reals are written 'v6real'\)/,
    ],
    ['a v6virtual with an IPv4 vaddr', fullHead(DIFF) + 'v6virtual vname=x vproto=tcp vaddr=10.0.0.2 vport=80 vrt=dr vsched=rr\n', /:5: v6virtual without an IPv6 address/],
    ['a v6virtual fwmark without vaddr', fullHead(DIFF) + 'v6virtual vname=x vproto=fwmark vport=0 vrt=dr vsched=rr vfwmark=8\n', /:5: v6virtual without an IPv6 address/],
    ['a v6real of an IPv4 real in an IPv4 virtual', fullHead(DIFF) + `${WEB_VIRTUAL}\nv6real rname=a raddr=10.0.1.5 rport=80 rweight=1\n`, /:6: v6real without an IPv6 address/],
    ['a v6real before any virtual', fullHead(DIFF) + 'v6real rname=a raddr=::1 rport=80 rweight=1\n', /:5: v6real line before any virtual/],
    ['a v6real with a bad raddr', fullHead(DIFF) + 'v6virtual vname=x vproto=tcp vaddr=::1 vport=80 vrt=dr vsched=rr\nv6real rname=a raddr=::g rport=80 rweight=1\n', /:6: raddr: bad address '::g'/],
    [
      'a duplicate of an IPv6 virtual across the two forms',
      fullHead(DIFF) + 'virtual vname=x vproto=tcp vaddr=2001:db8::1 vport=80 vrt=dr vsched=rr\nv6virtual vname=y vproto=tcp vaddr=2001:db8:0::1 vport=80 vrt=dr vsched=rr\n',
      /:6: duplicate virtual tcp \[2001:db8::1\]:80/,
    ],
  ];
  for (const [what, text, re] of cases) {
    it(`refuses ${what} with file:line: reason`, () => {
      const errs = errorsOf(text);
      assert.ok(
        errs.some((e) => e.startsWith(`${F}:`) && re.test(e)),
        `expected ${re} in:\n${errs.join('\n')}`,
      );
    });
  }

  it('reports every bad line, not only the first', () => {
    const errs = errorsOf(fullHead(DIFF) + `${WEB_VIRTUAL}\n${real('a', '10.0.1.999', 1)}\n${real('b', '10.0.1.6', -5)}\nbogus\n`);
    assert.equal(errs.length, 3);
  });

  it('does not blame the reals of a refused virtual on "real before any virtual"', () => {
    const errs = errorsOf(fullHead(DIFF) + `virtual vname=x vproto=tcp vaddr=bad vport=80 vrt=dr vsched=rr\n${real('a', '10.0.1.5', 1)}\n`);
    assert.deepEqual(errs, [`${F}:5: vaddr: bad address 'bad'`]);
  });
});

describe('ipvssync hand-off parser: diff lines', () => {
  it('reads an addreal line with its optional fields', () => {
    const d = diffOf(webDiff('addreal', 'w1', '10.0.1.5', 10, ' rl_thresh=5 ru_thresh=100 rrt=tun'));
    assert.equal(d.cmd, 'addreal');
    assert.deepEqual(d.service, { kind: 'addr', family: 'inet', protocol: 'tcp', addr: '10.0.0.1', port: 80 });
    assert.deepEqual([d.addr.addr, d.port, d.weight, d.lowerThreshold, d.upperThreshold, d.rrt], ['10.0.1.5', 80, 10, 5, 100, 'tunnel']);
  });

  it('finds a fwmark virtual by its mark (vfwmark is always present in diffs)', () => {
    const d = diffOf('cmd=chgreal vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=300 vrt=dr vsched=rr rname=a raddr=10.0.1.5 rport=0 rweight=3');
    assert.deepEqual(d.service, { kind: 'fwmark', family: 'inet', fwmark: 300 });
  });

  it('reads the v6 form: cmd=v6addreal, v6chgreal, v6delreal are addreal, chgreal, delreal', () => {
    const tail = 'vname=v6 vproto=udp vaddr=2001:db8::53 vport=53 vfwmark=0 vrt=dr vsched=rr rname=a raddr=2001:db8::1:5 rport=53 rweight=4';
    for (const cmd of ['addreal', 'chgreal', 'delreal'] as const) {
      const d = diffOf(`cmd=v6${cmd} ${tail}`);
      assert.equal(d.cmd, cmd);
      assert.deepEqual(d.service, { kind: 'addr', family: 'inet6', protocol: 'udp', addr: '2001:db8::53', port: 53 });
      assert.deepEqual([d.addr, d.port, d.weight], [{ addr: '2001:db8::1:5', family: 'inet6' }, 53, 4]);
    }
    // Either side IPv6 is enough: an IPv6 tun real of an IPv4 virtual, an IPv4 tun real of an IPv6 one, an IPv6 fwmark virtual.
    assert.equal(diffOf(webDiff('chgreal', 'w6', '2001:db8::7', 5, ' rrt=tun').replace('cmd=', 'cmd=v6')).addr.family, 'inet6');
    assert.equal(diffOf(`cmd=v6addreal ${tail.replace('raddr=2001:db8::1:5', 'raddr=10.0.1.9')} rrt=tun`).service.family, 'inet6');
    assert.deepEqual(diffOf('cmd=v6delreal vname=fw6 vproto=fwmark vaddr=:: vport=0 vfwmark=8 vrt=dr vsched=rr rname=g raddr=2001:db8::30 rport=0 rweight=0').service, {
      kind: 'fwmark',
      family: 'inet6',
      fwmark: 8,
    });
  });

  it('still reads IPv6 entries in the previous form (cmd=addreal etc. with IPv6 addresses)', () => {
    const d = diffOf('cmd=delreal vname=v6 vproto=udp vaddr=2001:db8::53 vport=53 vfwmark=0 vrt=dr vsched=rr rname=a raddr=2001:db8::1:5 rport=53 rweight=0');
    assert.equal(d.addr.addr, '2001:db8::1:5');
    assert.equal(d.service.family, 'inet6');
  });

  it('reads the DIFF chain line and empty lines', () => {
    assert.deepEqual(parseDiffLine(`DIFF file=${DIR}/diff_sync.1714557660`, DIR), { ok: true, line: { kind: 'chain', file: `${DIR}/diff_sync.1714557660` } });
    assert.deepEqual(parseDiffLine('   ', DIR), { ok: true, line: { kind: 'empty' } });
  });

  // Lines in surealived's field order take a one-regexp path; the same fields in another order take
  // the token scanner. Both must read every line alike, out-of-range values and refusals included.
  const asWritten = [
    webDiff('addreal', 'w1', '10.0.1.5', 10, ' rl_thresh=5 ru_thresh=100 rrt=tun'),
    webDiff('chgreal', '', '255.255.255.254', 0, ' ru_thresh=4294967295 rrt=masq'),
    webDiff('delreal', 'a=b', '10.0.1.5', 2147483647, ' rl_thresh=7'),
    'cmd=chgreal vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=300 vrt=dr vsched=rr rname=a raddr=10.0.1.5 rport=0 rweight=3',
    'cmd=chgreal vname=fw vproto=udp vaddr=10.0.0.1 vport=99999 vfwmark=4294967295 vrt= vsched= rname=a raddr=10.0.1.5 rport=0 rweight=3',
    'cmd=addreal vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=0 vrt=dr vsched=rr rname=a raddr=10.0.1.5 rport=0 rweight=3',
    'cmd=addreal vname=fw vproto=tcp vaddr=0.0.0.0 vport=0 vfwmark=4294967296 vrt=dr vsched=rr rname=a raddr=10.0.1.5 rport=0 rweight=3',
    webDiff('addreal', 'a', '10.0.1.5', 1).replace('rport=80', 'rport=65536'),
    webDiff('addreal', 'a', '10.0.1.5', 2147483648),
    webDiff('addreal', 'a', '10.0.1.5', 1, ' ru_thresh=4294967296'),
    webDiff('addreal', 'a', '10.0.1.05', 1),
    webDiff('addreal', 'a', '10.0.1.5', 1, ' rrt=nat'),
    // IPv6, in the v6 form and in the previous one (the fast path leaves both to the general one).
    'cmd=v6addreal vname=v6 vproto=tcp vaddr=2001:db8::10 vport=443 vfwmark=0 vrt=dr vsched=wrr rname=a raddr=2001:db8::1 rport=443 rweight=3 ru_thresh=9',
    'cmd=addreal vname=v6 vproto=tcp vaddr=2001:db8::10 vport=443 vfwmark=0 vrt=dr vsched=wrr rname=a raddr=2001:db8::1 rport=443 rweight=3 ru_thresh=9',
    webDiff('chgreal', 'w6', '2001:db8::7', 5, ' rrt=tun').replace('cmd=', 'cmd=v6'),
    webDiff('chgreal', 'w6', '2001:db8::7', 5, ' rrt=tun'),
    'cmd=v6delreal vname=v6 vproto=tcp vaddr=2001:db8::10 vport=443 vfwmark=0 vrt=dr vsched=wrr rname=t4 raddr=10.0.1.9 rport=443 rweight=0 rrt=tun',
    'cmd=v6chgreal vname=fw6 vproto=fwmark vaddr=:: vport=0 vfwmark=8 vrt=dr vsched=rr rname=g raddr=2001:db8::30 rport=0 rweight=1',
    webDiff('addreal', 'a', '10.0.1.5', 1).replace('cmd=', 'cmd=v6'),
  ];
  for (const line of asWritten) {
    it(`reads alike in surealived's field order and in another: ${line.trim().slice(-60)}`, () => {
      const tokens = line.trim().split(' ');
      const reordered = [tokens[0]!, ...tokens.slice(1).reverse()].join(' ');
      assert.deepEqual(parseDiffLine(line.trimEnd(), DIR), parseDiffLine(reordered, DIR));
    });
  }

  const bad: ReadonlyArray<[string, string, RegExp]> = [
    ['an unknown command', webDiff('addreal', 'a', '10.0.1.5', 1).replace('addreal', 'rmreal'), /unknown command 'cmd=rmreal'/],
    ['a v6 command for an all-IPv4 line', webDiff('addreal', 'a', '10.0.1.5', 1).replace('cmd=', 'cmd=v6'), /cmd=v6addreal without an IPv6 address/],
    ['a v6 command spelt another way', webDiff('addreal', 'a', '2001:db8::5', 1, ' rrt=tun').replace('cmd=addreal', 'cmd=addreal6'), /unknown command 'cmd=addreal6'/],
    ['a line without cmd=', 'vname=web vproto=tcp\n', /unknown line/],
    ['a bad raddr', webDiff('addreal', 'a', '10.0.1', 1), /raddr: bad address/],
    ['a bad weight', webDiff('chgreal', 'a', '10.0.1.5', 1).replace('rweight=1', 'rweight=1e3'), /bad rweight '1e3'/],
    ['a missing rport', webDiff('addreal', 'a', '10.0.1.5', 1).replace('rport=80 ', ''), /missing rport=/],
    ['a chain outside the diff dir', 'DIFF file=/etc/passwd', /is not named diff_sync|outside/],
    ['a chain to another directory', 'DIFF file=/tmp/diff_sync.5', /outside diff_sync_dir/],
  ];
  for (const [what, line, re] of bad) {
    it(`refuses ${what}`, () => {
      const p = parseDiffLine(line.trimEnd(), DIR);
      assert.equal(p.ok, false);
      if (!p.ok) assert.match(p.reason, re);
    });
  }
});

describe('ipvssync hand-off: diff lines applied to the desired config', () => {
  const base = ok(fullHead(DIFF) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n`);
  const W = 'diff_sync.1:1';

  it('a parsed full file comes with the index diff lines look their virtual up in, kept by every config derived by diff lines', () => {
    const c = ok(
      fullHead(DIFF) +
        `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n\n` +
        'virtual vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vrt=dr vsched=rr vfwmark=300\n' +
        'virtual vname=dns vproto=udp vaddr=10.0.0.53 vport=53 vrt=tun vsched=rr\n',
    );
    const index = virtualIndex(c);
    assert.deepEqual([...index], c.virtuals.map((v, i) => [serviceId(v.service.key), i]));
    const r = applyDiffLine(c, diffOf(webDiff('addreal', 'w2', '10.0.1.6', 5)), W);
    assert.notEqual(r.config.virtuals, c.virtuals);
    assert.equal(virtualIndex(r.config), index, 'the index was rebuilt for the derived config');
  });

  it('addreal adds a missing real with the virtual\'s method', () => {
    const r = applyDiffLine(base, diffOf(webDiff('addreal', 'w2', '10.0.1.6', 5)), W);
    assert.equal(r.warning, undefined);
    const reals = r.config.virtuals[0]!.reals;
    assert.deepEqual(reals.map((x) => [x.name, x.dest.weight, x.dest.forward]), [
      ['w1', 10, 'route'],
      ['w2', 5, 'route'],
    ]);
  });

  it('addreal of a known real changes nothing (the chgreal after it does)', () => {
    const r = applyDiffLine(base, diffOf(webDiff('addreal', 'w1', '10.0.1.5', 99)), W);
    assert.equal(r.config, base);
    assert.equal(r.warning, undefined);
  });

  it('chgreal updates a known real', () => {
    const r = applyDiffLine(base, diffOf(webDiff('chgreal', 'w1', '10.0.1.5', 0, ' rrt=masq')), W);
    assert.deepEqual([r.config.virtuals[0]!.reals[0]!.dest.weight, r.config.virtuals[0]!.reals[0]!.dest.forward], [0, 'masq']);
  });

  it('chgreal and delreal of an unknown real warn and change nothing', () => {
    for (const cmd of ['chgreal', 'delreal'] as const) {
      const r = applyDiffLine(base, diffOf(webDiff(cmd, 'zz', '10.0.1.99', 1)), W);
      assert.equal(r.config, base);
      assert.match(r.warning ?? '', new RegExp(`^${W}: ${cmd}: real zz 10\\.0\\.1\\.99:80 unknown`));
    }
  });

  it('delreal removes a known real', () => {
    const r = applyDiffLine(base, diffOf(webDiff('delreal', 'w1', '10.0.1.5', 0)), W);
    assert.deepEqual(r.config.virtuals[0]!.reals, []);
  });

  it('a line for a virtual not in the config is a warning', () => {
    const line = webDiff('addreal', 'a', '10.0.1.5', 1).replace('vaddr=10.0.0.1', 'vaddr=10.9.9.9');
    const r = applyDiffLine(base, diffOf(line), W);
    assert.equal(r.config, base);
    assert.match(r.warning ?? '', /virtual web tcp 10\.9\.9\.9:80 not in config/);
  });
});
