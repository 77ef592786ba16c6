import { strict as assert } from 'node:assert';
import { parseIp, unusableReason } from '../../common/addr.js';
import { checkName, parseFlag, parseInteger, parsePort, parseSeconds, parseThreshold } from '../../surealived/config/attrs.js';

const value = <T>(r: { ok: true; value: T } | { ok: false; reason: string }): T | string => (r.ok ? r.value : `ERR ${r.reason}`);

describe('config: address literals', () => {
  it('canonicalises IPv6 (lower-case, longest zero run compressed) and keeps dotted quads', () => {
    const canon = (t: string): string => { const r = parseIp(t); return r.ok ? `${r.ip.family} ${r.ip.addr}` : `ERR ${r.reason}`; };
    assert.equal(canon('2001:DB8:0:0:1:0:0:1'), '6 2001:db8::1:0:0:1');
    assert.equal(canon('2001:db8:0:0:0:0:0:1'), '6 2001:db8::1');
    assert.equal(canon('0:0:0:0:0:0:0:1'), '6 ::1');
    assert.equal(canon(' 192.0.2.1 '), '4 192.0.2.1');
    assert.match(canon('010.0.0.1'), /^ERR .*leading zeros/);
    assert.match(canon('127.1'), /^ERR /);
    assert.match(canon('fe80::1%eth0'), /^ERR .*zone/);
    assert.match(canon('example.com'), /^ERR not an IPv4 or IPv6 address/);
  });

  it('refuses multicast, broadcast and unspecified addresses; 00ff:: is not multicast', () => {
    const why = (t: string): string | undefined => { const r = parseIp(t); assert.ok(r.ok); return unusableReason(r.ip); };
    assert.match(why('239.255.255.250')!, /multicast/);
    assert.match(why('ff02::1')!, /multicast/);
    assert.match(why('255.255.255.255')!, /broadcast/);
    assert.match(why('::')!, /unspecified/);
    assert.match(why('0.0.0.0')!, /unspecified/);
    assert.equal(why('ff::1'), undefined);
    assert.equal(why('223.255.255.255'), undefined);
  });
});

describe('config: attribute values', () => {
  it('integers: decimal with optional sign and surrounding spaces; garbage is an error (not atoi\'s 0)', () => {
    assert.equal(value(parseInteger(' 42 ')), 42);
    assert.equal(value(parseInteger('-0')), 0);
    assert.match(String(value(parseInteger('80x'))), /not an integer/);
    assert.match(String(value(parseInteger(''))), /not an integer/);
    assert.equal(value(parsePort('65535')), 65535);
    assert.equal(value(parsePort('65536')), 'ERR "65536" is not a port (0..65535)');
  });

  it('seconds: integral or decimal, bounds inclusive or exclusive', () => {
    assert.equal(value(parseSeconds('0.5', 0, 10)), 0.5);
    assert.equal(value(parseSeconds('0', 0, 10)), 0);
    assert.match(String(value(parseSeconds('0', 0, 10, true))), /out of range \(> 0\.\.10 seconds\)/);
    assert.match(String(value(parseSeconds('1e3', 0, 10000))), /not a number of seconds/);
  });

  it('thresholds: count or percentage', () => {
    assert.deepEqual(value(parseThreshold('4')), { value: 4, percent: false });
    assert.deepEqual(value(parseThreshold('50%')), { value: 50, percent: true });
    assert.match(String(value(parseThreshold('-1'))), /ERR/);
    assert.match(String(value(parseThreshold('101%'))), /out of range/);
  });

  it('flags: integers as atoi != 0, words accepted with a warning', () => {
    assert.equal(value(parseFlag('0')), false);
    assert.equal(value(parseFlag('2')), true);
    const w = parseFlag('On');
    assert.ok(w.ok && w.value === true && w.warning !== undefined);
    assert.match(String(value(parseFlag('-1'))), /ERR/);
  });

  it('names: 1..127 bytes without whitespace, =, / or control characters', () => {
    assert.equal(checkName('rtsp.stream'), undefined);
    assert.equal(checkName('ż'.repeat(63)), undefined);
    assert.match(checkName('ż'.repeat(64))!, /128 bytes long, at most 127/);
    assert.match(checkName('a\tb')!, /whitespace/);
    assert.match(checkName('')!, /empty/);
  });
});
