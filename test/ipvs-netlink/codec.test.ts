// Host tests of the pure IPVS codec: bytes checked against the ABI by hand (anchors.md section 4),
// encode -> decode round trips, typed errors; plus open() of a family the kernel lacks failing with ENOIPVS.
import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import {
  canonicalAddress,
  decodeDaemon,
  decodeDestination,
  decodeService,
  decodeStats,
  encodeDaemon,
  encodeDaemonState,
  encodeDestination,
  encodeOp,
  encodeService,
  encodeServiceSelector,
  makeDestination,
  makeService,
  writeOpMessage,
} from '../../ipvs-netlink/codec.js';
import { IpvsClient, IpvsError } from '../../ipvs-netlink/index.js';
import { kernelError } from '../../ipvs-netlink/errors.js';
import { AttrWriter, parseAttrs, parseGenl, parseMessages, readErrno, WireError } from '../../ipvs-netlink/wire.js';
import type { Destination, IpvsOp, Service, ServiceSelector, SyncDaemon } from '../../ipvs-netlink/types.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');
/** The payload of the nested attribute at the start of `b` (skipping its 4-byte header). */
const inner = (b: Buffer): Buffer => b.subarray(4, b.readUInt16LE(0));
/**
 * IPVS_CMD_ATTR_DEST of the IPv4 masq destination 192.168.1.10:443 weight 3, every settable field
 * (derived by hand from the ABI: see "whole ops, byte for byte from the ABI").
 */
const MASQ_DEST = `
        3c00 0200
          0600 0b00 0200 0000
          0800 0100 c0a8010a
          0600 0200 01bb 0000
          0800 0300 00000000
          0800 0400 03000000
          0800 0500 00000000
          0800 0600 00000000`;

describe('ipvs-netlink codec (host, no kernel)', function () {
  before(function () {
    // The hand-computed bytes below are for little-endian hosts (netlink integers are host order).
    if (endianness() !== 'LE') this.skip();
  });

  describe('service encoding matches the ABI byte for byte', function () {
    const svc = makeService({
      family: 4,
      protocol: 'tcp',
      address: '10.0.0.1',
      port: 80,
      scheduler: 'rr',
      flags: { persistent: true },
      timeout: 300,
      netmask: 0xffffff00,
    });

    it('a persistent TCP service is AF, PROTOCOL, ADDR, PORT (big-endian), SCHED, FLAGS{flags,mask=~0}, TIMEOUT, NETMASK (big-endian)', function () {
      const expected = hex(`
        4800 0100
        0600 0100 0200 0000
        0600 0200 0600 0000
        0800 0300 0a000001
        0600 0400 0050 0000
        0700 0600 727200 00
        0c00 0700 01000000 ffffffff
        0800 0800 2c010000
        0800 0900 ffffff00`);
      assert.deepEqual(encodeService(svc), expected);
    });

    it('the HASHED bit (0x2) is never sent even if a caller smuggles it in as a decoded flag set', function () {
      const attrs = parseAttrs(inner(encodeService(svc)));
      const flags = attrs.get(7);
      assert.ok(flags);
      assert.equal(flags.readUInt32LE(0) & 0x2, 0);
      assert.equal(flags.readUInt32LE(4), 0xffffffff);
    });

    it('an IPv6 netmask is a prefix length in host order; a v4 one is the mask in network order', function () {
      const v6 = makeService({ family: 6, protocol: 'udp', address: '2001:db8::1', port: 53, netmask: 64 });
      const a6 = parseAttrs(inner(encodeService(v6)));
      assert.deepEqual(a6.get(9), hex('40000000'));
      assert.deepEqual(a6.get(1), hex('0a00'));
      assert.deepEqual(a6.get(3), hex('20010db8000000000000000000000001'));
      assert.deepEqual(a6.get(4), hex('0035'));
      const v4 = makeService({ family: 4, protocol: 'udp', address: '1.2.3.4', port: 53 });
      assert.deepEqual(parseAttrs(inner(encodeService(v4))).get(9), hex('ffffffff'));
    });

    it('a fwmark selector is AF + FWMARK only (host order), no protocol/address/port', function () {
      assert.deepEqual(encodeServiceSelector({ family: 4, fwmark: 258 }), hex('1400 0100 | 0600 0100 0200 0000 | 0800 0500 02010000'));
    });

    it('sctp is protocol 132, udp 17', function () {
      const p = (protocol: 'sctp' | 'udp'): Buffer | undefined =>
        parseAttrs(inner(encodeServiceSelector({ family: 4, protocol, address: '1.1.1.1', port: 1 }))).get(2);
      assert.deepEqual(p('sctp'), hex('8400'));
      assert.deepEqual(p('udp'), hex('1100'));
    });

    it('one-packet, sched1..3 and a persistence engine are carried', function () {
      const s = makeService({
        family: 4,
        protocol: 'udp',
        address: '1.1.1.1',
        port: 5060,
        scheduler: 'sh',
        flags: { onePacket: true, sched1: true, sched2: true, sched3: true, persistent: true },
        timeout: 60,
        peName: 'sip',
      });
      const a = parseAttrs(inner(encodeService(s)));
      assert.equal(a.get(7)?.readUInt32LE(0), 0x1 | 0x4 | 0x8 | 0x10 | 0x20);
      assert.deepEqual(a.get(11), hex('73697000'));
    });
  });

  describe('destination encoding', function () {
    const dest: Destination = {
      family: 6,
      address: '2001:db8::2',
      port: 8080,
      forward: 'tunnel',
      weight: 2147483647,
      upperThreshold: 100,
      lowerThreshold: 10,
      tunnelType: 'gue',
      tunnelPort: 6080,
      tunnelFlags: { csum: true, remoteCsum: false },
    };

    it('port and tunnel port are big-endian, weight/thresholds host order, AF always set', function () {
      const a = parseAttrs(inner(encodeDestination(dest, 4)));
      assert.deepEqual(a.get(11), hex('0a00'), 'ADDR_FAMILY = AF_INET6 although the service is IPv4');
      assert.deepEqual(a.get(1), hex('20010db8000000000000000000000002'));
      assert.deepEqual(a.get(2), hex('1f90'), 'port 8080');
      assert.deepEqual(a.get(3), hex('02000000'), 'IP_VS_CONN_F_TUNNEL');
      assert.deepEqual(a.get(4), hex('ffffff7f'));
      assert.deepEqual(a.get(5), hex('64000000'));
      assert.deepEqual(a.get(6), hex('0a000000'));
      assert.deepEqual(a.get(13), hex('01'), 'GUE');
      assert.deepEqual(a.get(14), hex('17c0'), 'tunnel port 6080');
      assert.deepEqual(a.get(15), hex('0100'), 'IP_VS_TUNNEL_ENCAP_FLAG_CSUM');
    });

    it('the whole IPv4 masq destination, byte for byte', function () {
      const d = makeDestination({ address: '192.168.1.10', port: 443, forward: 'masq', weight: 3 }, 4);
      assert.deepEqual(encodeDestination(d, 4), hex(MASQ_DEST));
    });

    it('tunnel attributes are left out unless asked for (older kernels lack them)', function () {
      const d = makeDestination({ address: '10.0.0.2', port: 0, forward: 'tunnel' }, 4);
      const a = parseAttrs(inner(encodeDestination(d, 4)));
      assert.equal(a.has(13) || a.has(14) || a.has(15), false);
    });

    it('forwarding methods map to IP_VS_CONN_F_*: masq 0, local 1, tunnel 2, route 3, bypass 4', function () {
      const methods = ['masq', 'local', 'tunnel', 'route', 'bypass'] as const;
      methods.forEach((forward, i) => {
        const a = parseAttrs(inner(encodeDestination(makeDestination({ address: '1.1.1.1', port: 1, forward }, 4), 4)));
        assert.equal(a.get(3)?.readUInt32LE(0), i);
      });
    });
  });

  describe('decoding what the kernel dumps', function () {
    it('a service dump: HASHED stripped, 16-byte address with IPv4 first, STATS64 preferred', function () {
      const w = new AttrWriter();
      w.u16(1, 2).u16(2, 6).bytes(3, hex('0a0000010000000000000000000000000')).be16(4, 80);
      w.str(6, 'wlc').bytes(7, hex('03000000ffffffff')).u32(8, 300).be32(9, 0xffff0000);
      const st = w.begin(10);
      w.u32(1, 1).u32(2, 2);
      w.end(st);
      const st64 = w.begin(12);
      w.bytes(1, hex('0500000000000000')).bytes(4, hex('0000000001000000'));
      w.end(st64);
      const svc = decodeService(w.take());
      assert.equal(svc.address, '10.0.0.1');
      assert.equal(svc.port, 80);
      assert.equal(svc.protocol, 'tcp');
      assert.deepEqual(svc.flags, { persistent: true, onePacket: false, sched1: false, sched2: false, sched3: false });
      assert.equal(svc.netmask, 0xffff0000);
      assert.equal(svc.stats?.conns, 5);
      assert.equal(svc.stats?.inBytes, 2 ** 32);
    });

    it('a fwmark service dump (AF + FWMARK, no protocol/address/port) decodes as tcp 0.0.0.0:0', function () {
      const w = new AttrWriter();
      w.u16(1, 10).u32(5, 7).str(6, 'sh').bytes(7, hex('1200000000000000')).u32(8, 0).u32(9, 128);
      const svc = decodeService(w.take());
      assert.deepEqual(
        { ...svc },
        makeService({ family: 6, fwmark: 7, scheduler: 'sh', flags: { sched2: true } }),
      );
    });

    it('a destination dump of a non-tunnel dest has no tunnel fields even though 6.x sends TUN_*', function () {
      const w = new AttrWriter();
      w.bytes(1, hex('0a000002000000000000000000000000')).be16(2, 80).u32(3, 0).u32(4, 0).u32(5, 0).u32(6, 0);
      w.u32(7, 3).u32(8, 4).u32(9, 5).u16(11, 2).u8(13, 0).be16(14, 0).u16(15, 0);
      const d = decodeDestination(w.take(), 4);
      assert.equal(d.forward, 'masq');
      assert.equal(d.weight, 0);
      assert.equal(d.activeConns, 3);
      assert.equal(d.inactiveConns, 4);
      assert.equal(d.persistConns, 5);
      assert.equal('tunnelType' in d, false);
    });

    it('legacy STATS (u32 counters, u64 bytes) decode by attribute length', function () {
      const w = new AttrWriter();
      w.u32(1, 9).bytes(5, hex('0100000001000000'));
      const s = decodeStats(w.take());
      assert.equal(s.conns, 9);
      assert.equal(s.outBytes, 2 ** 32 + 1);
    });
  });

  describe('sync daemons', function () {
    const master: SyncDaemon = { state: 'master', ifname: 'eth1', syncId: 1, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1 };

    it('a master with every setting is STATE, MCAST_IFN (NUL), SYNC_ID, MAXLEN, GROUP (network order), PORT (host order), TTL', function () {
      const expected = hex(`
        4000 0300
        0800 0100 01000000
        0900 0200 65746831 00 000000
        0800 0300 01000000
        0600 0400 c005 0000
        0800 0500 e0000051
        0600 0700 9022 0000
        0500 0800 01 000000`);
      assert.deepEqual(encodeDaemon(master), expected);
    });

    it('a backup with only the required fields leaves every other setting to the kernel', function () {
      assert.deepEqual(
        encodeDaemon({ state: 'backup', ifname: 'syncd0', syncId: 255 }),
        hex('2000 0300 | 0800 0100 02000000 | 0b00 0200 73796e636430 00 00 | 0800 0300 ff000000'),
      );
    });

    it('an IPv6 group goes in MCAST_GROUP6 (16 bytes), never in MCAST_GROUP', function () {
      const a = parseAttrs(inner(encodeDaemon({ state: 'master', ifname: 'eth1', syncId: 0, group: 'FF02::1:2' })));
      assert.equal(a.has(5), false);
      assert.deepEqual(a.get(6), hex('ff020000000000000000000000010002'));
    });

    it('a stop names only the state', function () {
      assert.deepEqual(encodeDaemonState('backup'), hex('0c00 0300 | 0800 0100 02000000'));
      assert.deepEqual(encodeDaemonState('master'), hex('0c00 0300 | 0800 0100 01000000'));
    });

    it('a dump in the kernel\'s attribute order decodes to every field', function () {
      const w = new AttrWriter();
      w.u32(1, 2).str(2, 'eth1').u32(3, 7).u16(4, 1472).u16(7, 8849).u8(8, 2).bytes(5, hex('ef000001'));
      assert.deepEqual(decodeDaemon(w.take()), { state: 'backup', ifname: 'eth1', syncId: 7, maxlen: 1472, group: '239.0.0.1', port: 8849, ttl: 2 });
      w.u32(1, 1).str(2, 'eth2').u32(3, 0).u16(4, 1452).u16(7, 8848).u8(8, 1).bytes(6, hex('ff050000000000000000000000000081'));
      assert.equal(decodeDaemon(w.take()).group, 'ff05::81');
    });

    it('survives encode -> decode, with the IPv6 group canonicalised', function () {
      const d: SyncDaemon = { state: 'backup', ifname: 'a-15-byte-name0', syncId: 200, maxlen: 65000, group: 'ff15:0:0:0:0:0:0:abcd', port: 65535, ttl: 255 };
      assert.deepEqual(decodeDaemon(inner(encodeDaemon(d))), { ...d, group: 'ff15::abcd' });
    });

    it('an old kernel\'s dump (state, interface, sync id only) leaves the other fields absent', function () {
      const w = new AttrWriter();
      w.u32(1, 1).str(2, 'eth0').u32(3, 3);
      assert.deepEqual(decodeDaemon(w.take()), { state: 'master', ifname: 'eth0', syncId: 3 });
    });

    const malformed: [string, (w: AttrWriter) => void, RegExp][] = [
      ['without STATE', (w) => w.str(2, 'eth0').u32(3, 1), /sync daemon without STATE \(attribute 1\)/],
      ['without MCAST_IFN', (w) => w.u32(1, 1).u32(3, 1), /sync daemon without MCAST_IFN/],
      ['without SYNC_ID', (w) => w.u32(1, 1).str(2, 'eth0'), /sync daemon without SYNC_ID/],
      ['with state 3', (w) => w.u32(1, 3).str(2, 'eth0').u32(3, 1), /unknown sync daemon state 3/],
      ['with a 3-byte MCAST_GROUP', (w) => w.u32(1, 1).str(2, 'eth0').u32(3, 1).bytes(5, hex('e00000')), /MCAST_GROUP: 3 bytes, expected 4/],
      ['with a 4-byte MCAST_GROUP6', (w) => w.u32(1, 1).str(2, 'eth0').u32(3, 1).bytes(6, hex('ff020000')), /MCAST_GROUP6: 4 bytes, expected 16/],
      ['with a 1-byte SYNC_ID', (w) => w.u32(1, 1).str(2, 'eth0').u8(3, 1), /u32: 1 bytes, expected 4/],
      ['with a truncated attribute', (w) => w.u32(1, 1).raw(hex('0800 0200 6574')), /bad attribute length 8 at offset 8/],
    ];
    malformed.forEach(([what, write, message]) => {
      it(`a dump ${what} is refused with a WireError saying so`, function () {
        const w = new AttrWriter();
        write(w);
        assert.throws(() => decodeDaemon(w.take()), (e: unknown) => e instanceof WireError && message.test(e.message));
      });
    });

    const bad: [string, SyncDaemon, RegExp][] = [
      ['a 16-byte interface name', { ...master, ifname: 'x'.repeat(16) }, /sync interface name must be 1\.\.15 bytes/],
      ['an empty interface name', { ...master, ifname: '' }, /sync interface name/],
      ['sync id 256', { ...master, syncId: 256 }, /sync id must be an integer 0\.\.255, got 256/],
      ['a unicast IPv4 group', { ...master, group: '10.0.0.1' }, /sync group must be a multicast address/],
      ['a unicast IPv6 group', { ...master, group: 'fe80::1' }, /sync group must be a multicast address/],
      ['a group that is no address', { ...master, group: '224.0.0' }, /not an IPv4 address/],
      ['port 0', { ...master, port: 0 }, /sync port must be an integer 1\.\.65535, got 0/],
      ['ttl 256', { ...master, ttl: 256 }, /sync ttl must be an integer 1\.\.255/],
      ['maxlen 65536', { ...master, maxlen: 65536 }, /sync maxlen/],
      ['state "both"', { ...master, state: 'both' as 'master' }, /sync daemon state must be master or backup/],
    ];
    bad.forEach(([what, d, message]) => {
      it(`${what} is refused before sending, as EINVAL naming the daemon`, async function () {
        assert.throws(() => encodeDaemon(d), (e: unknown) => e instanceof WireError && message.test(e.message));
        // The client refuses it before it even needs a socket.
        await assert.rejects(new IpvsClient().startDaemon(d), (e: unknown) => {
          assert.ok(e instanceof IpvsError && e.code === 'EINVAL' && e.op === 'startDaemon', String(e));
          assert.ok(e.message.startsWith(`startDaemon ${d.state} sync daemon (mcast=${d.ifname}, syncid=${d.syncId}): `), e.message);
          return true;
        });
      });
    });
  });

  describe('round trips', function () {
    const services: Service[] = [
      makeService({ family: 4, protocol: 'tcp', address: '10.1.2.3', port: 443, scheduler: 'wrr' }),
      makeService({ family: 4, protocol: 'udp', address: '10.1.2.3', port: 53, scheduler: 'sh', flags: { onePacket: true, sched1: true } }),
      makeService({ family: 4, protocol: 'sctp', address: '10.9.9.9', port: 3868, scheduler: 'lc', flags: { persistent: true }, timeout: 1800, netmask: 0xffffff00 }),
      makeService({ family: 6, protocol: 'tcp', address: '2001:db8:0:1::80', port: 65535, scheduler: 'mh', flags: { persistent: true }, timeout: 60, netmask: 96 }),
      makeService({ family: 4, fwmark: 4294967295, scheduler: 'rr' }),
      makeService({ family: 6, fwmark: 1, scheduler: 'dh', peName: 'sip', flags: { persistent: true }, timeout: 5 }),
    ];
    services.forEach((svc) => {
      it(`service ${svc.fwmark ? `FWM ${svc.fwmark}` : `${svc.protocol} ${svc.address}:${svc.port}`} (IPv${svc.family}) survives encode -> decode`, function () {
        assert.deepEqual(decodeService(inner(encodeService(svc))), svc);
      });
    });

    const dests: [Destination, 4 | 6][] = [
      [makeDestination({ address: '10.0.0.2', port: 80, forward: 'masq', weight: 0 }, 4), 4],
      [makeDestination({ address: '10.0.0.3', port: 0, forward: 'route', weight: 4294967295, upperThreshold: 4294967295, lowerThreshold: 1 }, 4), 4],
      [makeDestination({ address: '::ffff:10.0.0.4', port: 1, forward: 'local' }, 6), 6],
      [{ ...makeDestination({ address: '2001:db8::9', port: 80, forward: 'tunnel' }, 6), tunnelType: 'gre', tunnelFlags: { csum: false, remoteCsum: true } }, 4],
    ];
    dests.forEach(([d, svcFamily]) => {
      it(`destination ${d.address}:${d.port} (${d.forward}) survives encode -> decode`, function () {
        const back = decodeDestination(inner(encodeDestination(d, svcFamily)), svcFamily);
        assert.deepEqual(back, { ...d, activeConns: 0, inactiveConns: 0, persistConns: 0 });
      });
    });
  });

  describe('addresses', function () {
    const cases: [string, string][] = [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::', '::'],
      ['1::', '1::'],
      ['::1', '::1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::FFFF:192.0.2.1', '::ffff:192.0.2.1'],
      ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ];
    cases.forEach(([input, out]) => {
      it(`${input} reads back as ${out} (RFC 5952, as inet_ntop / ipvsadm print it)`, function () {
        assert.equal(canonicalAddress(input, 6), out);
      });
    });
  });

  describe('invalid input is refused before sending, as EINVAL', function () {
    const bad: [string, () => unknown][] = [
      ['an IPv4 address with a leading zero', () => encodeOp({ kind: 'deleteService', service: { family: 4, protocol: 'tcp', address: '10.0.0.01', port: 80 } })],
      ['an IPv6 address for an IPv4 service', () => encodeOp({ kind: 'deleteService', service: { family: 4, protocol: 'tcp', address: '::1', port: 80 } })],
      ['port 65536', () => encodeOp({ kind: 'deleteService', service: { family: 4, protocol: 'tcp', address: '1.1.1.1', port: 65536 } })],
      ['a 16-byte scheduler name', () => encodeOp({ kind: 'addService', service: makeService({ family: 4, fwmark: 1, scheduler: 'x'.repeat(16) }) })],
      ['an IPv6 netmask of 0', () => encodeOp({ kind: 'addService', service: makeService({ family: 6, fwmark: 1, netmask: 0 }) })],
      ['a weight of 2^32', () => encodeOp({ kind: 'addDestination', service: { family: 4, fwmark: 1 }, destination: makeDestination({ address: '1.1.1.1', port: 0, weight: 2 ** 32 }, 4) })],
      ['a negative threshold', () => encodeOp({ kind: 'addDestination', service: { family: 4, fwmark: 1 }, destination: makeDestination({ address: '1.1.1.1', port: 0, upperThreshold: -1 }, 4) })],
    ];
    bad.forEach(([what, f]) => {
      it(`${what}`, function () {
        assert.throws(f, (e: unknown) => e instanceof IpvsError && e.code === 'EINVAL');
      });
    });
  });

  describe('framing and errors', function () {
    it('a GET_INFO request is nlmsghdr{len 20, type, flags REQUEST|ACK, seq, pid 0} + genlmsghdr{cmd 15, version 1}', function () {
      const w = new AttrWriter();
      w.endMessage(w.beginMessage(0x1a, 0x5, 7, 15, 1));
      assert.deepEqual(w.take(), hex('14000000 1a00 0500 07000000 00000000 0f010000'));
    });

    it('a kernel error reply yields its errno, matched to its sequence number', function () {
      const reply = hex('24000000 0200 0001 2a000000 99999999 efffffff 14000000 1a00 0500 2a000000 00000000 0f010000');
      const [m] = parseMessages(reply);
      assert.ok(m);
      assert.equal(m.type, 2);
      assert.equal(m.seq, 42);
      assert.equal(readErrno(m.payload), 17);
    });

    it('a genl reply splits into command and top-level attributes', function () {
      const w = new AttrWriter();
      const m = w.beginMessage(0x1a, 0, 1, 14, 1);
      w.u32(1, 0x010201).u32(2, 4096);
      w.endMessage(m);
      const [msg] = parseMessages(w.take());
      assert.ok(msg);
      const g = parseGenl(msg.payload);
      assert.equal(g.cmd, 14);
      assert.equal(g.attrs.get(2)?.readUInt32LE(0), 4096);
    });

    describe('whole ops, byte for byte from the ABI', function () {
      // Derived by hand from include/uapi/linux/ip_vs.h (anchors.md section 4), not from the encoder:
      //   nlmsghdr  {u32 len; u16 type = the IPVS family id (0x1a here); u16 flags; u32 seq; u32 pid}:
      //             flags and seq are 0 in a batch (the transport stamps them), pid 0 = the kernel
      //   genlmsghdr{u8 cmd; u8 version = IPVS_GENL_VERSION 1; u16 reserved}
      //   attrs     nlattr{u16 len (header included, padding not); u16 type} + value padded to 4
      // IPVS_CMD_ATTR_SERVICE (1) holds the service's identity:
      //   IPVS_SVC_ATTR_AF (1) u16 AF_INET 2 | PROTOCOL (2) u16 IPPROTO_TCP 6 | ADDR (3) 10.0.0.1 |
      //   PORT (4) 80 = 0x0050 in network order        -> 4 + 4 x 8 = 36 = 0x24 bytes
      // IPVS_CMD_ATTR_DEST (2) for NEW_DEST holds every settable field:
      //   IPVS_DEST_ATTR_ADDR_FAMILY (11) u16 2 | ADDR (1) 192.168.1.10 = c0a8010a |
      //   PORT (2) 443 = 0x01bb network order | FWD_METHOD (3) u32 IP_VS_CONN_F_MASQ 0 |
      //   WEIGHT (4) u32 3 | U_THRESH (5) u32 0 | L_THRESH (6) u32 0 -> 4 + 7 x 8 = 60 = 0x3c bytes
      // u16/u32 values are host order (little-endian, checked in `before`); ports and addresses are not.
      const service: ServiceSelector = { family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80 };
      const destination = makeDestination({ address: '192.168.1.10', port: 443, forward: 'masq', weight: 3 }, 4);
      const SERVICE = `
        2400 0100
          0600 0100 0200 0000
          0600 0200 0600 0000
          0800 0300 0a000001
          0600 0400 0050 0000`;
      const DEST = MASQ_DEST;

      it('addDestination is IPVS_CMD_NEW_DEST (5) with SERVICE then DEST, from encodeOp and written into a batch (fast path)', function () {
        const op: IpvsOp = { kind: 'addDestination', service, destination };
        const req = encodeOp(op);
        assert.equal(req.cmd, 5);
        assert.deepEqual(req.attrs, hex(SERVICE + DEST));
        // 16 (nlmsghdr) + 4 (genlmsghdr) + 36 + 60 = 116 = 0x74
        const w = new AttrWriter(16);
        writeOpMessage(w, 0x1a, 1, op);
        assert.deepEqual(w.take(), hex(`74000000 1a00 0000 00000000 00000000 | 05 01 0000` + SERVICE + DEST));
      });

      it('deleteDestination is IPVS_CMD_DEL_DEST (7) with SERVICE then DEST{ADDR_FAMILY, ADDR, PORT} only (general path)', function () {
        // DEST selector: 4 + 3 x 8 = 28 = 0x1c; message 16 + 4 + 36 + 28 = 84 = 0x54
        const w = new AttrWriter(16);
        writeOpMessage(w, 0x1a, 1, { kind: 'deleteDestination', service, destination: { family: 4, address: '192.168.1.10', port: 443 } });
        assert.deepEqual(
          w.take(),
          hex(`54000000 1a00 0000 00000000 00000000 | 07 01 0000` + SERVICE + `
            1c00 0200
              0600 0b00 0200 0000
              0800 0100 c0a8010a
              0600 0200 01bb 0000`),
        );
      });
    });

    it('ops written straight into a batch are whole messages with the same attributes as encodeOp, fast path or not', function () {
      const sels: ServiceSelector[] = [
        { family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80 },
        { family: 4, protocol: 'udp', address: '192.168.255.254', port: 65535 },
        { family: 4, protocol: 'sctp', address: '0.0.0.0', port: 0 },
        { family: 4, fwmark: 4294967295 },
        { family: 4, fwmark: 7 },
        { family: 6, protocol: 'tcp', address: '2001:db8::1', port: 443 },
      ];
      const dests: Destination[] = [
        makeDestination({ address: '10.1.2.3', port: 8080, weight: 2147483647, upperThreshold: 70000, lowerThreshold: 65536 }, 4),
        makeDestination({ address: '255.255.255.255', port: 0, forward: 'masq', weight: 0 }, 4),
        makeDestination({ address: '1.2.3.4', port: 1, forward: 'tunnel', weight: 4294967295 }, 4),
        makeDestination({ address: '1.2.3.4', port: 53, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080 }, 4),
        makeDestination({ address: '2001:db8::5', port: 80, forward: 'tunnel', family: 6 }, 4),
        makeDestination({ address: '10.0.0.2', port: 80, forward: 'local' }, 4),
      ];
      const ops: IpvsOp[] = [];
      for (const service of sels) {
        for (const destination of dests) {
          ops.push({ kind: 'addDestination', service, destination }, { kind: 'updateDestination', service, destination });
        }
        ops.push({ kind: 'deleteDestination', service, destination: { address: '10.1.2.3', port: 8080, family: 4 } });
      }
      const services: Service[] = [
        makeService({ family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'wrr' }),
        makeService({ family: 4, protocol: 'udp', address: '10.9.8.7', port: 53, scheduler: 'sh', flags: { onePacket: true, sched1: true, sched2: true, sched3: true } }),
        makeService({ family: 4, protocol: 'sctp', address: '1.1.1.1', port: 65535, scheduler: 'a-15-char-sched', flags: { persistent: true }, timeout: 2678400, netmask: 0xffffff00 }),
        makeService({ family: 4, fwmark: 4294967295, scheduler: 'mh', timeout: 300, netmask: 0 }),
        makeService({ family: 4, fwmark: 9, scheduler: 'rr', peName: 'sip' }),
        makeService({ family: 6, protocol: 'tcp', address: '2001:db8::1', port: 443, scheduler: 'wlc', netmask: 64 }),
      ];
      for (const service of services) ops.push({ kind: 'addService', service }, { kind: 'updateService', service });
      const w = new AttrWriter(16);
      for (const op of ops) writeOpMessage(w, 0x1a, 1, op);
      const msgs = parseMessages(w.take());
      assert.equal(msgs.length, ops.length);
      msgs.forEach((m, i) => {
        const want = encodeOp(ops[i]!);
        assert.equal(m.type, 0x1a);
        assert.equal(m.flags, 0, 'flags are stamped by the transport');
        assert.equal(m.seq, 0, 'sequence numbers are stamped by the transport');
        assert.deepEqual([m.payload[0], m.payload[1]], [want.cmd, 1]);
        assert.deepEqual(m.payload.subarray(4), want.attrs, `op ${i}: ${JSON.stringify(ops[i])}`);
      });
    });

    it('an invalid op written into a batch leaves nothing behind and is refused as EINVAL', function () {
      const w = new AttrWriter(16);
      writeOpMessage(w, 0x1a, 1, { kind: 'flush' });
      const before = w.off;
      const bad: IpvsOp = { kind: 'addDestination', service: { family: 4, fwmark: 1 }, destination: makeDestination({ address: '10.0.0.01', port: 80 }, 4) };
      assert.throws(() => writeOpMessage(w, 0x1a, 1, bad), (e: unknown) => e instanceof IpvsError && e.code === 'EINVAL');
      assert.equal(w.off, before);
    });

    const texts: [Parameters<typeof kernelError>, string, string][] = [
      [['addService', 17, 'TCP 1.1.1.1:80'], 'EEXIST', 'addService TCP 1.1.1.1:80: Service already exists'],
      [['addService', 2, 'TCP 1.1.1.1:80'], 'ENOSCHED', 'addService TCP 1.1.1.1:80: Scheduler or persistence engine not found'],
      [['updateService', 3, 'FWM 1'], 'ESRCH', 'updateService FWM 1: No such service'],
      [['addDestination', 3, 'FWM 1 -> 1.1.1.1:0'], 'ESRCH', 'addDestination FWM 1 -> 1.1.1.1:0: Service not defined'],
      [['addDestination', 17, 'FWM 1 -> 1.1.1.1:0'], 'EEXIST', 'addDestination FWM 1 -> 1.1.1.1:0: Destination already exists'],
      [['deleteDestination', 2, 'FWM 1 -> 1.1.1.1:0'], 'ENOENT', 'deleteDestination FWM 1 -> 1.1.1.1:0: No such destination'],
      [['flush', 1], 'EPERM', 'flush: Permission denied (you must be root)'],
      [['startDaemon', 17, 'master sync daemon (mcast=eth1, syncid=1)'], 'EEXIST', 'startDaemon master sync daemon (mcast=eth1, syncid=1): A sync daemon of this state is already running'],
      [['startDaemon', 19, 'backup sync daemon (mcast=nosuch0, syncid=0)'], 'ENODEV', 'startDaemon backup sync daemon (mcast=nosuch0, syncid=0): No such network interface'],
      [['stopDaemon', 3, 'backup sync daemon'], 'ESRCH', 'stopDaemon backup sync daemon: No daemon is running'],
    ];
    texts.forEach(([args, code, message]) => {
      it(`errno ${args[1]} on ${args[0]} is ${code}: "${message}"`, function () {
        const e = kernelError(...args);
        assert.equal(e.code, code);
        assert.equal(e.message, message);
        assert.equal(e.op, args[0]);
      });
    });
  });
});

describe('IpvsClient where the kernel lacks the family', function () {
  it('open() fails with the typed ENOIPVS error when nlctrl knows no such generic-netlink family', async function () {
    // The same path as a kernel without ip_vs (CTRL_CMD_GETFAMILY answers ENOENT), but for a family
    // name no kernel registers, so it runs whether or not this host has IPVS loaded.
    const c = new IpvsClient({ genlFamily: 'NO_SUCH_FAMILY' });
    await assert.rejects(c.open(), (e: unknown) => {
      assert.ok(e instanceof IpvsError, String(e));
      assert.equal(e.code, 'ENOIPVS');
      assert.equal(e.op, 'open');
      assert.equal(e.errno, 2);
      assert.match(e.message, /^open: the kernel has no IPVS generic-netlink family/);
      return true;
    });
    await assert.rejects(c.getInfo(), (e: unknown) => e instanceof IpvsError && e.code === 'ECLOSED', 'a failed open() leaves the client closed');
  });

  it('a method called before open() fails with ECLOSED instead of touching the kernel', async function () {
    await assert.rejects(new IpvsClient().getInfo(), (e: unknown) => e instanceof IpvsError && e.code === 'ECLOSED');
  });
});
