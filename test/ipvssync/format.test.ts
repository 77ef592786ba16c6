// Text forms (op lines, ipvsadm -Ln listing), the ipvsadm -Sn reader of --kernel-table, the command
// line parser, and the netlink adapter's field mapping.

import { strict as assert } from 'node:assert';
import { formatList, formatOp } from '../../ipvssync/format.js';
import { parseRules } from '../../ipvssync/kernel-table-file.js';
import { fromNlDestination, fromNlService, netmaskFromKernel, netmaskToKernel, toNlOp, toNlService } from '../../ipvssync/netlink-backend.js';
import { levelFromVerbosity, parseArgs } from '../../ipvssync/options.js';
import type { Service, Table } from '../../ipvssync/types.js';

const RULES = [
  '# ipvsadm -Sn',
  '-A -u 10.0.0.53:53 -s rr -p 60 -M 255.255.255.0 ops',
  '-a -u 10.0.0.53:53 -r 10.0.2.1:53 -m -w 3 -x 100 -y 50',
  '-A -t [2001:db8::1]:443 -s wlc',
  '-a -t [2001:db8::1]:443 -r [2001:db8::1:5]:443 -g -w 1',
  '-A -f 300 -s sh',
  '-a -f 300 -r 10.0.1.9:0 -i -w 7',
  '-A -t 10.0.0.1:80 -s wrr',
  '-a -t 10.0.0.1:80 -r 10.0.1.6:80 -g -w 20',
  '-a -t 10.0.0.1:80 -r 10.0.1.5:80 -g -w 10',
  '',
].join('\n');

function rules(): Table {
  const p = parseRules(RULES, 'rules');
  if (!p.ok) assert.fail(p.errors.join('\n'));
  return p.table;
}

describe('ipvssync text forms', () => {
  it('prints the table like ipvsadm -Ln: its header, sort order and columns', () => {
    assert.equal(
      formatList({ version: '1.2.1', connTabSize: 4096 }, rules()),
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        'TCP  10.0.0.1:80 wrr\n' +
        '  -> 10.0.1.5:80                  Route   10     0          0         \n' +
        '  -> 10.0.1.6:80                  Route   20     0          0         \n' +
        'UDP  10.0.0.53:53 rr persistent 60 mask 255.255.255.0 ops\n' +
        '  -> 10.0.2.1:53                  Masq    3      0          0         \n' +
        'TCP  [2001:db8::1]:443 wlc\n' +
        '  -> [2001:db8::1:5]:443          Route   1      0          0         \n' +
        'FWM  300 sh\n' +
        '  -> 10.0.1.9:0                   Tunnel  7      0          0         \n',
    );
  });

  it('prints each op as one line', () => {
    const [udp] = rules().filter((e) => e.service.key.kind === 'addr' && e.service.key.protocol === 'udp');
    assert.equal(formatOp({ kind: 'add-service', service: udp!.service }), 'add service udp 10.0.0.53:53 rr persistent 60 mask 255.255.255.0 ops');
    assert.equal(formatOp({ kind: 'edit-dest', service: udp!.service.key, dest: udp!.dests[0]! }), 'edit dest udp 10.0.0.53:53 -> 10.0.2.1:53 masq w=3 upper=100 lower=50');
    assert.equal(formatOp({ kind: 'delete-service', key: { kind: 'fwmark', family: 'inet6', fwmark: 5 } }), 'delete service fwmark 5 ipv6');
  });

  it('refuses bad ipvsadm rules with file:line', () => {
    const p = parseRules('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.2:80 -r 10.0.1.5:80\n-X\n-A -t 10.0.0.1 -s rr\n', 'rules');
    assert.equal(p.ok, false);
    if (!p.ok) {
      assert.deepEqual(p.errors, [
        'rules:2: destination of a service not defined above',
        "rules:3: '-A' or '-a' expected, got '-X'",
        "rules:4: bad address:port '10.0.0.1'",
      ]);
    }
  });
});

describe('ipvssync command line parsing', () => {
  it('reads the original options, bundled or not, long and short', () => {
    const p = parseArgs(['-vvuk', '-c', '/etc/x.cfg', '--test-config', '--daemonize', '-V', '-h']);
    assert.ok(p.ok);
    if (!p.ok) return;
    const o = p.options;
    assert.deepEqual(
      [o.verbosity, o.deleteUnmanaged, o.keepDiffs, o.config, o.testConfig, o.daemonize, o.version, o.help],
      [1, true, true, '/etc/x.cfg', true, true, true, true],
    );
  });

  it('accepts -cPATH, --config=PATH, and the original\'s --del-umanaged spelling', () => {
    const a = parseArgs(['-c/etc/a.cfg']);
    const b = parseArgs(['--config=/etc/b.cfg', '--del-umanaged', '--keep-diffs']);
    assert.ok(a.ok && b.ok);
    if (a.ok && b.ok) {
      assert.equal(a.options.config, '/etc/a.cfg');
      assert.equal(b.options.config, '/etc/b.cfg');
      assert.equal(b.options.deleteUnmanaged, true);
    }
  });

  it('defaults: /etc/surealived/surealived.cfg, verbosity -1 (use ipvssync_logging)', () => {
    const p = parseArgs([]);
    assert.ok(p.ok && p.options.config === '/etc/surealived/surealived.cfg' && p.options.verbosity === -1);
  });

  it('ignores unknown options (reporting them) and refuses a missing -c value', () => {
    const p = parseArgs(['-x', '--frob', 'pos']);
    assert.ok(p.ok);
    if (p.ok) assert.deepEqual(p.options.unknown, ['-x', '--frob', 'pos']);
    assert.deepEqual(parseArgs(['-c']), { ok: false, error: "option requires an argument -- 'c'" });
    assert.equal(parseArgs(['--kernel-table']).ok, false);
  });

  it('reads the additions: --list, --dry-run, --kernel-table, --once', () => {
    const p = parseArgs(['--list', '--dry-run', '--kernel-table', 't.rules', '--once']);
    assert.ok(p.ok);
    if (p.ok) assert.deepEqual([p.options.list, p.options.dryRun, p.options.kernelTable, p.options.once], [true, true, 't.rules', true]);
  });

  it('maps -v counts to levels as surealived does', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 9].map(levelFromVerbosity), ['error', 'warn', 'info', 'debug', 'dbdet', 'dbdet']);
  });
});

describe('ipvssync netlink adapter mapping', () => {
  const svc: Service = {
    key: { kind: 'addr', family: 'inet', protocol: 'udp', addr: '10.0.0.53', port: 53 },
    scheduler: 'rr',
    persistent: true,
    timeout: 60,
    onePacket: true,
    netmask: 24,
  };

  it('converts netmasks: IPv4 as the mask value, IPv6 as the prefix length', () => {
    assert.equal(netmaskToKernel('inet', 32), 0xffffffff);
    assert.equal(netmaskToKernel('inet', 24), 0xffffff00);
    assert.equal(netmaskFromKernel('inet', 0xffffffff), 32);
    assert.equal(netmaskFromKernel('inet', 0xffff0000), 16);
    assert.equal(netmaskToKernel('inet6', 128), 128);
    assert.equal(netmaskFromKernel('inet6', 64), 64);
  });

  it('maps a service both ways, and a fwmark service as TCP 0.0.0.0:0 with the mark', () => {
    const nl = toNlService(svc);
    assert.deepEqual(nl.flags, { persistent: true, onePacket: true, sched1: false, sched2: false, sched3: false });
    assert.equal(nl.family, 4);
    assert.deepEqual(fromNlService(nl), svc);
    const fw = toNlService({ ...svc, key: { kind: 'fwmark', family: 'inet6', fwmark: 300 }, persistent: false, netmask: 128 });
    assert.deepEqual([fw.family, fw.protocol, fw.address, fw.port, fw.fwmark, fw.timeout], [6, 'tcp', '::', 0, 300, 0]);
    assert.deepEqual(fromNlService(fw).key, { kind: 'fwmark', family: 'inet6', fwmark: 300 });
  });

  it('canonicalises kernel addresses and maps counters', () => {
    const d = fromNlDestination({
      family: 6,
      address: '2001:DB8:0:0::5',
      port: 80,
      forward: 'tunnel',
      weight: 3,
      upperThreshold: 0,
      lowerThreshold: 0,
      activeConns: 4,
      inactiveConns: 2,
    });
    assert.deepEqual([d.addr, d.family, d.activeConns, d.inactConns, d.persistConns], ['2001:db8::5', 'inet6', 4, 2, 0]);
  });

  it('maps every op kind to the client\'s', () => {
    const dest = { addr: '10.0.2.1', family: 'inet' as const, port: 53, forward: 'masq' as const, weight: 1, upperThreshold: 0, lowerThreshold: 0 };
    assert.deepEqual(
      [
        toNlOp({ kind: 'add-service', service: svc }).kind,
        toNlOp({ kind: 'edit-service', service: svc }).kind,
        toNlOp({ kind: 'delete-service', key: svc.key }).kind,
        toNlOp({ kind: 'add-dest', service: svc.key, dest }).kind,
        toNlOp({ kind: 'edit-dest', service: svc.key, dest }).kind,
      ],
      ['addService', 'updateService', 'deleteService', 'addDestination', 'updateDestination'],
    );
    assert.deepEqual(toNlOp({ kind: 'delete-dest', service: svc.key, dest }), {
      kind: 'deleteDestination',
      service: { family: 4, protocol: 'udp', address: '10.0.0.53', port: 53 },
      destination: { address: '10.0.2.1', port: 53, family: 4 },
    });
  });
});
