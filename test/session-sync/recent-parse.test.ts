// The /proc/net/xt_recent line parser: real kernel line shapes, wrapped rings, IPv6, 11-digit stamps,
// and a corpus of malformed lines each rejected with table:line and its reason.
import assert from 'node:assert/strict';
import {
  chronologicalStamps,
  parseRecentLine,
  parseRecentTable,
  rawSrc,
  RecentLineError,
} from '../../session-sync/recent/parse.js';

describe('session-sync/recent/parse', () => {
  describe('kernel line shapes', () => {
    it('reads the spec example (7 stamps, cursor after the newest)', () => {
      const line =
        'src=203.0.113.9 ttl: 61 last_seen: 4302299386 oldest_pkt: 7 4302292227, 4302293242, 4302294266, ' +
        '4302295290, 4302296314, 4302297338, 4302299386';
      const p = parseRecentLine('t', 1, line);
      assert.deepEqual(p, {
        addr: '203.0.113.9',
        family: 4,
        ttl: 61,
        lastSeen: 4302299386,
        index: 7,
        stamps: [4302292227, 4302293242, 4302294266, 4302295290, 4302296314, 4302297338, 4302299386],
      });
      assert.deepEqual(chronologicalStamps(p), p.stamps);
    });

    it('reads an entry written twice through /proc (ttl 0, two equal stamps)', () => {
      const p = parseRecentLine('t', 1, 'src=10.0.0.5 ttl: 0 last_seen: 4294988338 oldest_pkt: 2 4294988338, 4294988338');
      assert.equal(p.ttl, 0);
      assert.equal(p.index, 2);
      assert.deepEqual(chronologicalStamps(p), [4294988338, 4294988338]);
    });

    it('gives fully expanded IPv6 (%pI6) its canonical compressed form', () => {
      const a = parseRecentLine('t', 1, 'src=2001:0db8:0000:0000:0000:0000:0000:0001 ttl: 0 last_seen: 4294973452 oldest_pkt: 1 4294973452');
      assert.equal(a.addr, '2001:db8::1');
      assert.equal(a.family, 6);
      const lo = parseRecentLine('t', 1, 'src=0000:0000:0000:0000:0000:0000:0000:0001 ttl: 64 last_seen: 4294973493 oldest_pkt: 1 4294973493');
      assert.equal(lo.addr, '::1');
      assert.equal(lo.ttl, 64);
    });

    it('orders a wrapped ring from the cursor on: oldest first', () => {
      // Ring of 4 after 6 hits (101..106): slots hold 105, 106, 103, 104 and the cursor is 2.
      const p = parseRecentLine('t', 1, 'src=10.0.0.1 ttl: 3 last_seen: 106 oldest_pkt: 2 105, 106, 103, 104');
      assert.deepEqual(p.stamps, [105, 106, 103, 104]);
      assert.deepEqual(chronologicalStamps(p), [103, 104, 105, 106]);
    });

    it('keeps array order when the cursor sits at the end of a full ring', () => {
      const p = parseRecentLine('t', 1, 'src=10.0.0.1 ttl: 3 last_seen: 4 oldest_pkt: 4 1, 2, 3, 4');
      assert.deepEqual(chronologicalStamps(p), [1, 2, 3, 4]);
    });

    it('reads 11-digit (and longer) stamps of a long-running host', () => {
      const p = parseRecentLine('t', 1, 'src=198.51.100.7 ttl: 57 last_seen: 12884901888 oldest_pkt: 2 10000000001, 12884901888');
      assert.deepEqual(chronologicalStamps(p), [10000000001, 12884901888]);
      const q = parseRecentLine('t', 1, 'src=198.51.100.7 ttl: 57 last_seen: 4503599627370496 oldest_pkt: 1 4503599627370496');
      assert.equal(q.lastSeen, 2 ** 52);
    });

    it('drops zero stamps, which only a patched-module write leaves', () => {
      const p = parseRecentLine('t', 1, 'src=10.0.0.1 ttl: 0 last_seen: 500 oldest_pkt: 2 0, 500, 0, 0');
      assert.deepEqual(chronologicalStamps(p), [500]);
    });

    it('sorts a ring a patched-module write left out of order, so hits are ascending', () => {
      assert.deepEqual(chronologicalStamps({ index: 3, stamps: [300, 100, 200] }), [100, 200, 300]);
    });

    it('rawSrc takes the address token without parsing the rest', () => {
      assert.equal(rawSrc('src=10.0.0.1 ttl: x'), '10.0.0.1');
      assert.equal(rawSrc('src= ttl:'), undefined);
      assert.equal(rawSrc('garbage'), undefined);
    });
  });

  describe('malformed lines are rejected with table:line and why', () => {
    const ok = ' ttl: 0 last_seen: 5 oldest_pkt: 1 5';
    const corpus: [string, string, RegExp][] = [
      ['empty line', '', /empty line/],
      ['no src=', 'dst=10.0.0.1' + ok, /expected "src=" at the start/],
      ['empty address', 'src=' + ok, /empty address/],
      ['truncated IPv4', 'src=10.0.0' + ok, /bad address "10\.0\.0"/],
      ['IPv6 with a zone id', 'src=fe80::1%eth0' + ok, /bad address/],
      ['host name', 'src=localhost' + ok, /bad address/],
      ['missing ttl', 'src=10.0.0.1 last_seen: 5 oldest_pkt: 1 5', /expected "ttl:" after the address/],
      ['ttl above 255', 'src=10.0.0.1 ttl: 300 last_seen: 5 oldest_pkt: 1 5', /ttl 300 is out of range 0-255/],
      ['negative ttl', 'src=10.0.0.1 ttl: -1 last_seen: 5 oldest_pkt: 1 5', /ttl "-1" is not a decimal number/],
      ['empty ttl', 'src=10.0.0.1 ttl:  last_seen: 5 oldest_pkt: 1 5', /ttl "" is not a decimal number/],
      ['missing last_seen', 'src=10.0.0.1 ttl: 0 oldest_pkt: 1 5', /expected "last_seen:" after the ttl/],
      ['hex last_seen', 'src=10.0.0.1 ttl: 0 last_seen: 0x5 oldest_pkt: 1 5', /last_seen "0x5" is not a decimal/],
      ['empty oldest_pkt', 'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: ', /oldest_pkt "" is not a decimal/],
      ['no stamp list', 'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: 1', /empty stamp list/],
      ['empty stamp list', 'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: 1 ', /empty stamp list/],
      ['a stamp that is no number', 'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: 2 5, x', /stamp 2 "x" is not a decimal/],
      ['a trailing comma', 'src=10.0.0.1 ttl: 0 last_seen: 6 oldest_pkt: 2 5, 6,', /stamp 2 "6," is not a decimal/],
      ['comma without space', 'src=10.0.0.1 ttl: 0 last_seen: 6 oldest_pkt: 2 5,6', /stamp 1 "5,6" is not a decimal/],
      ['a CR line end', 'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: 1 5\r', /stamp 1 "5\\r" is not a decimal/],
      ['a stamp beyond 2^53', 'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: 1 99999999999999999999', /stamp 1 99999999999999999999 is beyond 2\^53/],
      ['cursor 0', 'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: 0 5', /oldest_pkt 0: the ring cursor is 1-based/],
      ['cursor beyond the ring', 'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: 3 4, 5', /oldest_pkt 3 is beyond the ring of 2 stamps/],
      ['last_seen not the newest stamp', 'src=10.0.0.1 ttl: 0 last_seen: 9 oldest_pkt: 2 4, 5', /last_seen 9 is not the stamp before oldest_pkt \(5\)/],
      ['every stamp zero', 'src=10.0.0.1 ttl: 0 last_seen: 0 oldest_pkt: 1 0, 0', /every stamp is 0/],
      [
        'more stamps than a ring holds',
        `src=10.0.0.1 ttl: 0 last_seen: 1 oldest_pkt: 1 ${Array<string>(257).fill('1').join(', ')}`,
        /257 stamps, more than a ring holds \(256\)/,
      ],
    ];
    for (const [what, line, why] of corpus) {
      it(`${what}`, () => {
        assert.throws(
          () => parseRecentLine('_farm_3_sessions', 7, line),
          (e: unknown) => {
            assert.ok(e instanceof RecentLineError, `not a RecentLineError: ${String(e)}`);
            assert.equal(e.table, '_farm_3_sessions');
            assert.equal(e.line, 7);
            assert.match(e.why, why);
            assert.ok(e.message.startsWith('_farm_3_sessions:7: '), e.message);
            return true;
          },
        );
      });
    }

    it('accepts the longest stamp list a ring holds (256)', () => {
      const stamps = Array.from({ length: 256 }, (_, i) => 1000 + i);
      const p = parseRecentLine('t', 1, `src=10.0.0.1 ttl: 0 last_seen: 1255 oldest_pkt: 256 ${stamps.join(', ')}`);
      assert.equal(p.stamps.length, 256);
    });
  });

  it('parseRecentTable returns the good entries and one error per bad line, numbered', () => {
    const text =
      'src=10.0.0.1 ttl: 0 last_seen: 5 oldest_pkt: 1 5\n' +
      'src=10.0.0.2 ttl: 0 last_seen: 5 oldest_pkt: 1\n' +
      'src=2001:0db8:0000:0000:0000:0000:0000:00ff ttl: 64 last_seen: 7 oldest_pkt: 1 7\n';
    const { entries, errors } = parseRecentTable('t9', text);
    assert.deepEqual(entries.map((e) => e.addr), ['10.0.0.1', '2001:db8::ff']);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.message, 't9:2: empty stamp list');
    assert.deepEqual(parseRecentTable('t9', ''), { entries: [], errors: [] });
  });
});

describe('xt_recent line parser: a full 256-stamp ring', () => {
  it('reads the u8 cursor that wrapped to 0 as 256 (the newest stamp is the last slot)', () => {
    const stamps = Array.from({ length: 256 }, (_, i) => 5000 + i);
    const line = `src=10.0.0.1 ttl: 64 last_seen: 5255 oldest_pkt: 0 ${stamps.join(', ')}`;
    const p = parseRecentLine('big', 1, line);
    assert.equal(p.index, 256);
    assert.deepEqual(chronologicalStamps(p), stamps);
  });
});
