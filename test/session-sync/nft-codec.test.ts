// The nftables netlink codec and set types, without a kernel: bytes built by hand from the ABI
// (linux/netlink.h, netfilter/nfnetlink.h, netfilter/nf_tables.h) and checked both ways.
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import * as abi from '../../session-sync/nft/abi.js';
import {
  beginElemMessage,
  decodeElems,
  decodeSetInfo,
  elemMessageOverhead,
  elemSize,
  endElemMessage,
  forEachMessage,
  NftCodecError,
  NlWriter,
  readErrno,
  stampSeqs,
  writeBatchBegin,
  writeBatchEnd,
  writeElem,
  writeElemDump,
  writeElemGet,
  writeFlush,
  writeGetGen,
  writeGetSet,
  type NftSetInfo,
} from '../../session-sync/nft/codec.js';
import { classifySet, dataProblem, decodeData, encodeData, layoutName, typeName, type SetLayout } from '../../session-sync/nft/types.js';

/** Hex bytes, one group of fields per line; after three or more spaces the rest of a line is a comment. */
const hex = (s: string): Buffer =>
  Buffer.from(
    s
      .split('\n')
      .map((l) => l.trim().split(/\s{3,}/)[0]!.replace(/[\s|]/g, ''))
      .join(''),
    'hex',
  );

describe('nft codec (no kernel)', function () {
  before(function () {
    // Netlink headers are host byte order; the vectors below are written for little-endian hosts.
    assert.equal(endianness(), 'LE', 'the hand-built vectors assume a little-endian host');
  });

  describe('requests match the ABI byte for byte', () => {
    it('an element dump of inet lb s4: nlmsghdr, nfgenmsg, LIST_TABLE and LIST_SET strings', () => {
      const w = new NlWriter();
      writeElemDump(w, 'inet', 'lb', 's4');
      stampSeqs(w, 1);
      assert.deepEqual(
        w.view(),
        hex(`
          24000000 0d0a 0103 01000000 00000000   len 36, type NFNL_SUBSYS_NFTABLES<<8 | GETSETELEM(13), REQUEST|DUMP(0x300), seq 1, pid 0
          01 00 0000                             nfgenmsg: NFPROTO_INET, NFNETLINK_V0, res_id 0
          0700 0100 6c6200 00                    NFTA_SET_ELEM_LIST_TABLE "lb\\0" + 1 byte of padding
          0700 0200 733400 00                    NFTA_SET_ELEM_LIST_SET "s4\\0"`),
      );
    });

    it('GETSET of one set asks for an ACK; GETGEN (the fence) is an empty nftables request', () => {
      const w = new NlWriter();
      writeGetSet(w, 'ip', 't', 's');
      writeGetGen(w);
      stampSeqs(w, 7);
      assert.deepEqual(
        w.view(),
        hex(`
          24000000 0a0a 0500 07000000 00000000   len 36, GETSET(10), REQUEST|ACK, seq 7
          02 00 0000                             NFPROTO_IPV4
          0600 0100 7400 0000                    NFTA_SET_TABLE "t"
          0600 0200 7300 0000                    NFTA_SET_NAME "s"
          14000000 100a 0500 08000000 00000000   len 20, GETGEN(16), REQUEST|ACK, seq 8
          00 00 0000`),
      );
    });

    it('one element with key, timeout and expiration: nested attributes carry NLA_F_NESTED, u64 values are big-endian ms', () => {
      const w = new NlWriter();
      writeElem(w, Buffer.from([10, 0, 0, 1]), null, 120_000, 30_000);
      assert.deepEqual(
        w.view(),
        hex(`
          2800 0180                      NFTA_LIST_ELEM (1 | NLA_F_NESTED), 40 bytes
          0c00 0180                      NFTA_SET_ELEM_KEY (nested)
          0800 0100 0a000001             NFTA_DATA_VALUE 10.0.0.1 (network order)
          0c00 0400 00000000 0001d4c0    NFTA_SET_ELEM_TIMEOUT 120000 ms
          0c00 0500 00000000 00007530    NFTA_SET_ELEM_EXPIRATION 30000 ms`),
      );
      assert.equal(elemSize(4, -1, 120_000, 30_000), 40);
    });

    it('map data: a mark is host order; addr . port pads the port to a 4-byte register', () => {
      const w = new NlWriter();
      writeElem(w, Buffer.from([10, 0, 0, 2]), encodeData({ type: 'mark', mark: 0x2a }), 0, 0);
      writeElem(w, Buffer.from([10, 0, 0, 3]), encodeData({ type: 'addr_port', family: 4, addr: '192.168.0.1', port: 443 }), 0, 0);
      assert.deepEqual(
        w.view(),
        hex(`
          1c00 0180 | 0c00 0180 0800 0100 0a000002 | 0c00 0280 0800 0100 2a000000       mark 42, u32 little-endian
          2000 0180 | 0c00 0180 0800 0100 0a000003 | 1000 0280 0c00 0100 c0a80001 01bb 0000   192.168.0.1 . 443`),
      );
      assert.equal(elemSize(4, 4, 0, 0), 28);
      assert.equal(elemSize(4, 8, 0, 0), 32);
    });

    it('a transaction: BATCH_BEGIN and BATCH_END carry res_id NFNL_SUBSYS_NFTABLES (big-endian); NEWSETELEM has NLM_F_CREATE', () => {
      const w = new NlWriter();
      writeBatchBegin(w);
      const m = beginElemMessage(w, 'add', 'inet', 'lb', 's4');
      writeElem(w, Buffer.from([10, 0, 0, 1]), null, 0, 0);
      endElemMessage(w, m);
      writeBatchEnd(w);
      stampSeqs(w, 100);
      assert.deepEqual(
        w.view(),
        hex(`
          14000000 1000 0100 64000000 00000000 | 00 00 000a    BATCH_BEGIN (0x10), REQUEST, seq 100, res_id 10
          38000000 0c0a 0104 65000000 00000000 | 01 00 0000    NEWSETELEM(12), REQUEST|CREATE(0x400), 56 bytes
          0700 0100 6c620000 | 0700 0200 73340000
          1400 0380                                            NFTA_SET_ELEM_LIST_ELEMENTS (nested)
          1000 0180 0c00 0180 0800 0100 0a000001
          14000000 1100 0100 66000000 00000000 | 00 00 000a    BATCH_END (0x11)`),
      );
      assert.equal(w.messageCount, 3);
      assert.equal(elemMessageOverhead('lb', 's4') + elemSize(4, -1, 0, 0), 0x38);
    });

    it('delete, destroy, flush and lookup messages', () => {
      const w = new NlWriter();
      const d = beginElemMessage(w, 'delete', 'ip', 't', 's');
      endElemMessage(w, d);
      const x = beginElemMessage(w, 'destroy', 'ip', 't', 's');
      endElemMessage(w, x);
      writeFlush(w, 'ip', 't', 's');
      writeElemGet(w, 'ip', 't', 's', Buffer.from([1, 2, 3, 4]));
      const types: string[] = [];
      forEachMessage(w.view(), (type, flags, _seq, off, end) => types.push(`${(type & 0xff).toString()}/${flags.toString(16)}/${end - off}`));
      assert.deepEqual(types, [
        '14/1/24', // DELSETELEM, REQUEST, nfgenmsg + table + set + empty element list
        '30/1/24', // DESTROYSETELEM (Linux >= 6.3)
        '14/1/20', // DELSETELEM without an element list: flush
        '13/1/40', // GETSETELEM doit (no ACK: the reply or an error answers it)
      ]);
    });
  });

  describe('replies are parsed from hand-built kernel messages', () => {
    it('a NEWSET: names, flags, key and data types, default timeout, handle and size; unknown attributes skipped', () => {
      const payload = hex(`
        01 00 0000                       NFPROTO_INET
        0700 0100 6c620000               NFTA_SET_TABLE "lb"
        0c00 0200 70657273 69737400      NFTA_SET_NAME "persist"
        0800 0300 00000038               NFTA_SET_FLAGS timeout|dynamic|map (0x10|0x20|0x08), big-endian
        0800 0400 00000007               NFTA_SET_KEY_TYPE ipv4_addr
        0800 0500 00000004               NFTA_SET_KEY_LEN 4
        0800 0600 000001cd               NFTA_SET_DATA_TYPE (7 << 6) | 13 = 461
        0800 0700 00000008               NFTA_SET_DATA_LEN 8
        0c00 0b00 00000000 001b7740      NFTA_SET_TIMEOUT 1800000 ms
        0c00 1000 00000000 00000005      NFTA_SET_HANDLE 5
        0c00 0980 0800 0100 0000ffff     NFTA_SET_DESC { NFTA_SET_DESC_SIZE 65535 }
        0800 0d00 01020304               NFTA_SET_USERDATA (ignored)`);
      const info = decodeSetInfo(payload, 0, payload.length);
      assert.deepEqual(info, {
        family: 'inet', table: 'lb', name: 'persist', handle: 5, flags: 0x38, keyType: 7, keyLen: 4,
        dataType: 461, dataLen: 8, timeoutMs: 1_800_000, size: 65535,
      });
    });

    it('NEWSETELEM elements: key, data, verdict, flags, timeout and expiration; padding attributes skipped', () => {
      const payload = hex(`
        02 00 0000
        0700 0100 6c620000 | 0700 0200 73340000
        6000 0380                                   NFTA_SET_ELEM_LIST_ELEMENTS, 96 bytes
          2c00 0180                                 element 1 (44 bytes)
            0c00 0180 0800 0100 0a000001            key 10.0.0.1
            0400 0800                               NFTA_SET_ELEM_PAD (empty)
            0c00 0400 00000000 0001d4c0             timeout 120000
            0c00 0500 00000000 00007530             expiration 30000
          1c00 0180                                 element 2 (28 bytes)
            0c00 0180 0800 0100 0a000002
            0c00 0280 0800 0100 2a000000            data: mark 42
          1400 0180                                 element 3: a catch-all with a verdict
            0800 0300 00000002                      NFTA_SET_ELEM_FLAGS NFT_SET_ELEM_CATCHALL
            0800 0280 0400 0280                     data: NFTA_DATA_VERDICT (nested, empty here)`);
      const elems = decodeElems(payload, 0, payload.length);
      assert.deepEqual(elems, [
        { key: Buffer.from([10, 0, 0, 1]), data: null, verdict: false, flags: 0, timeoutMs: 120_000, expirationMs: 30_000 },
        { key: Buffer.from([10, 0, 0, 2]), data: Buffer.from([0x2a, 0, 0, 0]), verdict: false, flags: 0, timeoutMs: -1, expirationMs: -1 },
        { key: null, data: null, verdict: true, flags: abi.NFT_SET_ELEM_CATCHALL, timeoutMs: -1, expirationMs: -1 },
      ]);
    });

    it('a datagram of several messages, and the errno of NLMSG_ERROR / NLMSG_DONE', () => {
      const dgram = hex(`
        24000000 0200 0001 05000000 00000000 | feffffff | 14000000 0c0a 0100 05000000 00000000   NLMSG_ERROR -2 echoing a 20-byte header
        14000000 0300 0200 06000000 00000000 | 00000000                                          NLMSG_DONE, 0`);
      const seen: [number, number, number][] = [];
      forEachMessage(dgram, (type, _f, seq, off, end) => seen.push([type, seq, readErrno(dgram, off, end)]));
      assert.deepEqual(seen, [
        [abi.NLMSG_ERROR, 5, 2],
        [abi.NLMSG_DONE, 6, 0],
      ]);
    });

    it('lengths that overrun the buffer are refused, never read past', () => {
      assert.throws(() => forEachMessage(hex('ff000000 0300 0000 00000000 00000000'), () => undefined), NftCodecError);
      const bad = hex('02 00 0000 | 0800 0380 | 4000 0180');
      assert.throws(() => decodeElems(bad, 0, bad.length), /bad attribute length 64/);
      const short = hex('02 00 0000 | 1000 0380 | 0c00 0180 | 0800 0400 00000001');
      assert.throws(() => decodeElems(short, 0, short.length), /element timeout of 4 bytes/);
      assert.throws(() => decodeSetInfo(hex('63 00 0000'), 0, 4), /unknown family 99/);
    });
  });

  describe('set types', () => {
    const info = (o: Partial<NftSetInfo>): NftSetInfo => ({
      family: 'inet', table: 't', name: 's', handle: 1, flags: abi.NFT_SET_TIMEOUT, keyType: 7, keyLen: 4, dataType: null, dataLen: 0, timeoutMs: 0, size: 0, ...o,
    });
    const layout = (o: Partial<NftSetInfo>): SetLayout => {
      const c = classifySet(info(o));
      assert.ok(c.ok, c.ok ? '' : c.reason);
      return c.layout;
    };
    const reason = (o: Partial<NftSetInfo>): string => {
      const c = classifySet(info(o));
      assert.ok(!c.ok);
      return c.reason;
    };

    it('names datatypes, concatenations 6 bits per field, first field highest', () => {
      assert.equal(typeName(7), 'ipv4_addr');
      assert.equal(typeName((7 << 6) | 13), 'ipv4_addr . inet_service');
      assert.equal(typeName((8 << 12) | (13 << 6) | 12), 'ipv6_addr . inet_service . inet_proto');
      assert.equal(typeName(63), 'datatype 63');
    });

    it('accepts address keys with no data, a mark, or addr . port', () => {
      assert.equal(layoutName(layout({})), 'ipv4_addr');
      assert.equal(layoutName(layout({ keyType: 8, keyLen: 16, flags: 0 })), 'ipv6_addr');
      assert.equal(layout({ flags: 0 }).timeouts, false);
      assert.equal(layoutName(layout({ flags: 0x18, dataType: 19, dataLen: 4 })), 'ipv4_addr : mark');
      assert.equal(layoutName(layout({ flags: 0x18, dataType: 461, dataLen: 8 })), 'ipv4_addr : ipv4_addr . inet_service');
      assert.equal(layoutName(layout({ flags: 0x18, keyType: 8, keyLen: 16, dataType: 525, dataLen: 20 })), 'ipv6_addr : ipv6_addr . inet_service');
    });

    it('refuses everything else with a reason', () => {
      assert.match(reason({ flags: abi.NFT_SET_INTERVAL }), /interval set/);
      assert.match(reason({ flags: abi.NFT_SET_ANONYMOUS }), /anonymous/);
      assert.match(reason({ flags: abi.NFT_SET_OBJECT | abi.NFT_SET_MAP }), /object map/);
      assert.match(reason({ keyType: 13, keyLen: 2 }), /key type inet_service \(2 bytes\)/);
      assert.match(reason({ keyType: 461, keyLen: 8, flags: abi.NFT_SET_CONCAT }), /key type ipv4_addr \. inet_service/);
      assert.match(reason({ keyType: 7, keyLen: 16 }), /key type ipv4_addr \(16 bytes\)/);
      assert.match(reason({ flags: abi.NFT_SET_MAP, dataType: abi.NFT_DATA_VERDICT, dataLen: 16 }), /verdict map/);
      assert.match(reason({ flags: abi.NFT_SET_MAP, dataType: 13, dataLen: 2 }), /map data type inet_service/);
      assert.match(reason({ flags: abi.NFT_SET_MAP, dataType: 461, dataLen: 12 }), /map data type ipv4_addr \. inet_service \(12 bytes\)/);
    });

    it('data bytes round trip; problems with entry data are named', () => {
      const mark = { type: 'mark' as const };
      assert.deepEqual(decodeData(mark, encodeData({ type: 'mark', mark: 0xdeadbeef }), 0, 4), { type: 'mark', mark: 0xdeadbeef });
      const ap6 = { type: 'addr_port' as const, family: 6 as const };
      const b = encodeData({ type: 'addr_port', family: 6, addr: '2001:db8::1', port: 8080 });
      assert.deepEqual(b, hex('20010db8 00000000 00000000 00000001 1f90 0000'));
      assert.deepEqual(decodeData(ap6, b, 0, b.length), { type: 'addr_port', family: 6, addr: '2001:db8::1', port: 8080 });
      const l = layout({ flags: 0x18, dataType: 19, dataLen: 4 });
      assert.equal(dataProblem(l, { type: 'mark', mark: 1 }), undefined);
      assert.match(dataProblem(l, null)!, /needs a mark/);
      assert.match(dataProblem(l, { type: 'mark', mark: 2 ** 32 })!, /not a u32/);
      assert.match(dataProblem(layout({}), { type: 'mark', mark: 1 })!, /holds no data/);
    });
  });
});
