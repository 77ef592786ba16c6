// The request-line parser and the rset planner: prefix matching, key=value rules, selectors, weight forms.

import { strict as assert } from 'node:assert';
import { parseArgs, parseCommand } from '../../surealived/control/protocol.js';

describe('control protocol: request lines', () => {
  it('matches command words by prefix, in the original order, and flags the json token', () => {
    assert.deepEqual(parseCommand('vlist'), { kind: 'vlist', json: false });
    assert.deepEqual(parseCommand('vlistfoo'), { kind: 'vlist', json: false });
    assert.deepEqual(parseCommand('vlist json'), { kind: 'vlist', json: true });
    assert.deepEqual(parseCommand('vlistjson'), { kind: 'vlist', json: false });
    assert.deepEqual(parseCommand('statsfoo\tjson'), { kind: 'stats', json: true });
    assert.deepEqual(parseCommand('connstatsXYZ'), { kind: 'connstats', json: false });
    assert.deepEqual(parseCommand('metrics'), { kind: 'metrics' });
    assert.equal(parseCommand('rsetting vproto=tcp').kind, 'rset');
    assert.equal(parseCommand('rlist_all vproto=tcp').kind, 'rlist');
  });

  it('anything else, including leading blanks and upper case, is an invalid request echoing the line', () => {
    assert.deepEqual(parseCommand(' vlist'), { kind: 'invalid', line: ' vlist' });
    assert.deepEqual(parseCommand('VLIST'), { kind: 'invalid', line: 'VLIST' });
    assert.deepEqual(parseCommand(''), { kind: 'invalid', line: '' });
    assert.deepEqual(parseCommand('connstat'), { kind: 'invalid', line: 'connstat' });
  });

  it('strips one trailing \\r and cuts the line at a NUL byte, as the C original', () => {
    assert.deepEqual(parseCommand('foo\r'), { kind: 'invalid', line: 'foo' });
    assert.deepEqual(parseCommand('foo\r\r'), { kind: 'invalid', line: 'foo\r' });
    assert.deepEqual(parseCommand('vlist\0garbage'), { kind: 'vlist', json: false });
    assert.deepEqual(parseCommand('ab\0vlist'), { kind: 'invalid', line: 'ab' });
  });

  it('splits key=value tokens like g_strsplit_set: a=b=c is a=b, a= is empty, last duplicate wins', () => {
    const a = parseArgs('rlist  vproto=tcp\tvport=80 x=1=2 empty= =v novalue vport=81');
    assert.equal(a.get('vproto'), 'tcp');
    assert.equal(a.get('vport'), '81');
    assert.equal(a.get('x'), '1');
    assert.equal(a.get('empty'), '');
    assert.equal(a.get(''), 'v');
    assert.equal(a.has('novalue'), false);
    assert.equal(a.has('rlist'), false);
  });

  it('parses the virtual selector: vname extension, vproto required, defaults, C integer wrap, IPv6 canonical', () => {
    const sel = (l: string): unknown => {
      const c = parseCommand(l);
      return c.kind === 'rlist' ? c.virtual : c;
    };
    assert.deepEqual(sel('rlist vname=web'), { kind: 'name', name: 'web' });
    assert.deepEqual(sel('rlist vaddr=10.0.0.1'), { kind: 'invalid', error: 'cmd_find_virt: No vproto specified' });
    assert.deepEqual(sel('rlist vproto=tcp vaddr=10.0.0.256'), { kind: 'invalid', error: 'cmd_find_virt: invalid IP' });
    assert.deepEqual(sel('rlist vproto=tcp'), { kind: 'service', proto: 'tcp', addr: { addr: '0.0.0.0', family: 4 }, port: 0, fwmark: 0 });
    assert.deepEqual(sel('rlist vproto=tcp vaddr=2001:DB8:0:0::10 vport=65616 vfwmark=-1'), {
      kind: 'service',
      proto: 'tcp',
      addr: { addr: '2001:db8::10', family: 6 },
      port: 80,
      fwmark: 4294967295,
    });
    assert.deepEqual(sel('rlist vproto=udp vport=53abc'), { kind: 'service', proto: 'udp', addr: { addr: '0.0.0.0', family: 4 }, port: 53, fwmark: 0 });
  });

  it('hands rset its rstate/rweight values as typed (validated after the real is found, as the original)', () => {
    const change = (l: string): unknown => {
      const c = parseCommand(`rset vproto=tcp raddr=1.2.3.4 rport=80 ${l}`);
      return c.kind === 'rset' ? c.change : c;
    };
    assert.deepEqual(change(''), {});
    assert.deepEqual(change('rstate=online'), { rstate: 'online' });
    assert.deepEqual(change('rweight=50% rstate=DOWN rweight=5%0'), { rstate: 'DOWN', rweight: '5%0' });
    const c = parseCommand('rset vproto=tcp vaddr=10.0.0.1 vport=80 rport=80');
    assert.ok(c.kind === 'rset');
    assert.deepEqual(c.real, { kind: 'invalid', error: 'cmd_find_real: raddr not found' });
  });
});
