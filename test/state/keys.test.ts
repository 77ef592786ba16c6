// Behaviour of VKEY/RKEY formatting, strict parsing and the spec-7 matching of dump lines to the config.

import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import {
  KeyError,
  findReals,
  parseRKey,
  parseVKey,
  rkey,
  virtualMatches,
  vkey,
} from '../../surealived/state/keys.js';
import { findReal, sampleState } from './fixtures.js';

describe('state/keys', () => {
  const vs = sampleState();

  it('formats VKEY and RKEY exactly as the original for IPv4, with numeric protocol codes', () => {
    assert.equal(vkey(vs[0]!.config), '192.168.0.2:80:0:0');
    assert.equal(vkey(vs[2]!.config), '10.0.0.1:53:1:0');
    assert.equal(vkey(vs[3]!.config), '0.0.0.0:0:2:7');
    assert.equal(rkey(findReal(vs, 'www', 'r1').config), '212.77.100.101:80');
  });

  it('brackets IPv6 addresses', () => {
    assert.equal(vkey(vs[4]!.config), '[2001:db8::1]:80:0:0');
    assert.equal(rkey(findReal(vs, 'v6', 's1').config), '[2001:db8::10]:8080');
  });

  it('parses both families, canonicalising IPv6', () => {
    assert.deepEqual(parseVKey('192.168.0.2:80:0:0'), { addr: '192.168.0.2', family: 4, port: 80, proto: 0, fwmark: 0 });
    assert.deepEqual(parseVKey('[2001:0DB8::0001]:443:1:0'), { addr: '2001:db8::1', family: 6, port: 443, proto: 1, fwmark: 0 });
    assert.deepEqual(parseRKey('[::1]:80'), { addr: '::1', family: 6, port: 80 });
    assert.deepEqual(parseVKey('0.0.0.0:0:2:4294967295').fwmark, 4294967295);
  });

  it('rejects malformed keys with a message naming the fault', () => {
    const bad: Array<[string, RegExp]> = [
      ['192.168.0.2:80:0', /expected '<addr>:<port>:<proto#>:<fwmark>'/],
      ['192.168.0.256:80:0:0', /invalid IPv4 address '192.168.0.256'/],
      ['2001:db8::1:80:0:0', /IPv6 addresses must be in brackets/],
      ['[2001:db8::1:80:0:0', /missing '\]'/],
      ['10.0.0.1:99999:0:0', /port 99999 is out of range/],
      ['10.0.0.1:80:3:0', /protocol number 3 is out of range/],
      ['10.0.0.1:80:0:-1', /fwmark '-1' is not an unsigned integer/],
      ['10.0.0.1:+80:0:0', /port '\+80'/],
    ];
    for (const [text, re] of bad) {
      assert.throws(() => parseVKey(text), (e: unknown) => e instanceof KeyError && re.test(e.message), text);
    }
    assert.throws(() => parseRKey('10.0.0.1'), KeyError);
    assert.throws(() => parseRKey('[::1]80'), /expected ':' after '\]'/);
  });

  it('matches a line to a virtual by fwmark, or by address, port and protocol', () => {
    const fw = vs[3]!.config;
    assert.ok(virtualMatches(fw, parseVKey('0.0.0.0:0:2:7')));
    assert.ok(virtualMatches(fw, parseVKey('1.2.3.4:9:0:7')), 'fwmark > 0 and equal is enough');
    assert.ok(!virtualMatches(fw, parseVKey('0.0.0.0:0:2:8')));
    const www = vs[0]!.config;
    assert.ok(virtualMatches(www, parseVKey('192.168.0.2:80:0:0')));
    assert.ok(!virtualMatches(www, parseVKey('192.168.0.2:80:1:0')), 'protocol differs');
    assert.ok(!virtualMatches(www, parseVKey('192.168.0.2:81:0:0')), 'port differs');
    assert.ok(!virtualMatches(vs[4]!.config, parseVKey('[::]:80:0:0')), 'the any-address never matches by address');
    assert.ok(virtualMatches(vs[4]!.config, parseVKey('[2001:db8:0::1]:80:0:0')));
  });

  it('finds the real by address and port within the matching virtuals', () => {
    const found = findReals(vs, parseVKey('10.0.0.1:80:0:0'), parseRKey('10.0.1.6:80'));
    assert.deepEqual(found.map((r) => r.config.name), ['w2']);
    assert.deepEqual(findReals(vs, parseVKey('10.0.0.1:53:1:0'), parseRKey('10.0.1.6:80')), []);
  });
});
