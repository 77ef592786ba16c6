// The reconciler (desired + kernel -> minimal ops) and what each op does to a table.

import { strict as assert } from 'node:assert';
import { formatOp } from '../../ipvssync/format.js';
import { reconcile } from '../../ipvssync/reconcile.js';
import { applyOp } from '../../ipvssync/table-ops.js';
import type { Destination, Entry, Op, Service, ServiceKey, Table } from '../../ipvssync/types.js';

const tcp = (addr: string, port: number): ServiceKey => ({ kind: 'addr', family: 'inet', protocol: 'tcp', addr, port });
const fwm = (fwmark: number): ServiceKey => ({ kind: 'fwmark', family: 'inet', fwmark });

function svc(key: ServiceKey, scheduler = 'wrr', extra: Partial<Service> = {}): Service {
  return { key, scheduler, persistent: false, timeout: 0, onePacket: false, netmask: 32, ...extra };
}

function dest(addr: string, weight: number, extra: Partial<Destination> = {}): Destination {
  return { addr, family: 'inet', port: 80, forward: 'route', weight, upperThreshold: 0, lowerThreshold: 0, ...extra };
}

const entry = (service: Service, ...dests: Destination[]): Entry => ({ service, dests });
const lines = (ops: readonly Op[]): string[] => ops.map(formatOp);
const KEEP = { deleteUnmanaged: false };
const DEL = { deleteUnmanaged: true };

function applyAll(table: Table, ops: readonly Op[]): Table {
  return ops.reduce((t, op) => {
    const r = applyOp(t, op);
    assert.ok(r.ok, `op refused: ${formatOp(op)}: ${r.ok ? '' : r.error}`);
    return r.table;
  }, table);
}

const WEB = svc(tcp('10.0.0.1', 80));
const FULL: Table = [
  entry(WEB, dest('10.0.1.5', 10), dest('10.0.1.6', 20, { forward: 'masq', upperThreshold: 100, lowerThreshold: 5 })),
  entry(svc(tcp('10.0.0.2', 443), 'rr', { persistent: true, timeout: 300 }), dest('10.0.2.1', 1)),
];

describe('ipvssync reconciler', () => {
  it('empty kernel -> full table: services then their destinations', () => {
    assert.deepEqual(lines(reconcile(FULL, [], KEEP)), [
      'add service tcp 10.0.0.1:80 wrr',
      'add dest tcp 10.0.0.1:80 -> 10.0.1.5:80 route w=10',
      'add dest tcp 10.0.0.1:80 -> 10.0.1.6:80 masq w=20 upper=100 lower=5',
      'add service tcp 10.0.0.2:443 rr persistent 300',
      'add dest tcp 10.0.0.2:443 -> 10.0.2.1:80 route w=1',
    ]);
  });

  it('applying its ops makes the kernel equal the desired table', () => {
    const kernel = applyAll([], reconcile(FULL, [], KEEP));
    assert.deepEqual(reconcile(FULL, kernel, KEEP), []);
    assert.deepEqual(reconcile(FULL, kernel, DEL), []);
  });

  it('full -> same: no ops (kernel counters and order do not matter)', () => {
    const kernel: Table = [...FULL].reverse().map((e) => ({ ...e, dests: [...e.dests].reverse().map((d) => ({ ...d, activeConns: 7, inactConns: 3 })) }));
    assert.deepEqual(reconcile(FULL, kernel, KEEP), []);
  });

  it('a weight change is exactly one edit-dest', () => {
    const desired: Table = [entry(WEB, dest('10.0.1.5', 0), FULL[0]!.dests[1]!), FULL[1]!];
    assert.deepEqual(lines(reconcile(desired, FULL, KEEP)), ['edit dest tcp 10.0.0.1:80 -> 10.0.1.5:80 route w=0']);
  });

  it('threshold and forwarding method changes are edits too', () => {
    const desired: Table = [entry(WEB, dest('10.0.1.5', 10, { forward: 'tunnel', upperThreshold: 9 }), FULL[0]!.dests[1]!), FULL[1]!];
    assert.deepEqual(lines(reconcile(desired, FULL, KEEP)), ['edit dest tcp 10.0.0.1:80 -> 10.0.1.5:80 tunnel w=10 upper=9']);
  });

  it('a scheduler change edits the service, even without -u', () => {
    const desired: Table = [{ ...FULL[0]!, service: svc(WEB.key, 'lc') }, FULL[1]!];
    assert.deepEqual(lines(reconcile(desired, FULL, KEEP)), ['edit service tcp 10.0.0.1:80 lc']);
  });

  it('persistence, one-packet and netmask changes edit the service', () => {
    const base = FULL[1]!;
    const variants: Array<[Partial<Service>, string]> = [
      [{ timeout: 600 }, 'edit service tcp 10.0.0.2:443 rr persistent 600'],
      [{ persistent: false, timeout: 0 }, 'edit service tcp 10.0.0.2:443 rr'],
      [{ onePacket: true }, 'edit service tcp 10.0.0.2:443 rr persistent 300 ops'],
      [{ netmask: 24 }, 'edit service tcp 10.0.0.2:443 rr persistent 300 mask 255.255.255.0'],
    ];
    for (const [change, line] of variants) {
      const desired: Table = [FULL[0]!, { ...base, service: { ...base.service, ...change } }];
      assert.deepEqual(lines(reconcile(desired, FULL, KEEP)), [line]);
    }
  });

  it('ignores the kernel timeout of a non-persistent service', () => {
    const kernel: Table = [{ ...FULL[0]!, service: { ...WEB, timeout: 77 } }, FULL[1]!];
    assert.deepEqual(reconcile(FULL, kernel, KEEP), []);
  });

  it('a removed real is one delete-dest', () => {
    const desired: Table = [entry(WEB, dest('10.0.1.5', 10)), FULL[1]!];
    assert.deepEqual(lines(reconcile(desired, FULL, KEEP)), ['delete dest tcp 10.0.0.1:80 -> 10.0.1.6:80']);
  });

  it('destinations the hand-off does not know are deleted inside managed services, with or without -u', () => {
    const kernel: Table = [entry(WEB, dest('10.0.1.5', 10), dest('10.0.1.99', 1)), FULL[1]!];
    const desired: Table = [entry(WEB, dest('10.0.1.5', 10)), FULL[1]!];
    for (const o of [KEEP, DEL]) assert.deepEqual(lines(reconcile(desired, kernel, o)), ['delete dest tcp 10.0.0.1:80 -> 10.0.1.99:80']);
  });

  it('leaves an unmanaged service alone without -u and deletes it with -u', () => {
    const stranger = entry(svc(tcp('192.168.0.1', 22), 'rr'), dest('192.168.0.2', 1));
    const kernel: Table = [...FULL, stranger];
    assert.deepEqual(reconcile(FULL, kernel, KEEP), []);
    assert.deepEqual(lines(reconcile(FULL, kernel, DEL)), ['delete service tcp 192.168.0.1:22']);
  });

  it('with -u, deletions of unmanaged services come before any add', () => {
    const kernel: Table = [entry(svc(tcp('192.168.0.1', 22)))];
    const ops = lines(reconcile(FULL, kernel, DEL));
    assert.equal(ops[0], 'delete service tcp 192.168.0.1:22');
    assert.equal(ops.length, 6);
  });

  it('a service of the same address but another protocol is a different service', () => {
    const udp: ServiceKey = { kind: 'addr', family: 'inet', protocol: 'udp', addr: '10.0.0.1', port: 80 };
    const kernel: Table = [entry(svc(udp), dest('10.0.1.5', 10))];
    const desired: Table = [entry(WEB, dest('10.0.1.5', 10))];
    assert.deepEqual(lines(reconcile(desired, kernel, KEEP)), ['add service tcp 10.0.0.1:80 wrr', 'add dest tcp 10.0.0.1:80 -> 10.0.1.5:80 route w=10']);
    assert.deepEqual(lines(reconcile(desired, kernel, DEL))[0], 'delete service udp 10.0.0.1:80');
  });

  it('fwmark services are matched by mark and family, never by address', () => {
    const desired: Table = [entry(svc(fwm(300), 'rr'), dest('10.0.1.5', 1, { port: 0 }))];
    assert.deepEqual(lines(reconcile(desired, [], KEEP)), ['add service fwmark 300 rr', 'add dest fwmark 300 -> 10.0.1.5:0 route w=1']);
    const kernel = applyAll([], reconcile(desired, [], KEEP));
    assert.deepEqual(reconcile(desired, kernel, DEL), []);
    const v6: Table = [entry({ ...svc({ kind: 'fwmark', family: 'inet6', fwmark: 300 }, 'rr'), netmask: 128 })];
    assert.deepEqual(lines(reconcile(v6, kernel, DEL)), ['delete service fwmark 300', 'add service fwmark 300 ipv6 rr']);
  });

  it('orders a service\'s destination ops: deletes, then edits, then adds', () => {
    const kernel: Table = [entry(WEB, dest('10.0.1.1', 1), dest('10.0.1.2', 1))];
    const desired: Table = [entry(WEB, dest('10.0.1.3', 1), dest('10.0.1.2', 5))];
    assert.deepEqual(lines(reconcile(desired, kernel, KEEP)), [
      'delete dest tcp 10.0.0.1:80 -> 10.0.1.1:80',
      'edit dest tcp 10.0.0.1:80 -> 10.0.1.2:80 route w=5',
      'add dest tcp 10.0.0.1:80 -> 10.0.1.3:80 route w=1',
    ]);
  });

  it('never flushes: an empty desired table deletes nothing without -u', () => {
    assert.deepEqual(reconcile([], FULL, KEEP), []);
  });

  it('handles IPv6 services and destinations', () => {
    const k6: ServiceKey = { kind: 'addr', family: 'inet6', protocol: 'tcp', addr: '2001:db8::1', port: 443 };
    const desired: Table = [entry({ ...svc(k6), netmask: 128 }, dest('2001:db8::5', 3, { family: 'inet6', port: 443 }))];
    assert.deepEqual(lines(reconcile(desired, [], KEEP)), [
      'add service tcp [2001:db8::1]:443 wrr',
      'add dest tcp [2001:db8::1]:443 -> [2001:db8::5]:443 route w=3',
    ]);
  });
});

describe('ipvssync table ops (kernel semantics of the in-memory table)', () => {
  it('refuses what the kernel refuses, with libipvs\'s texts, and leaves the table as it was', () => {
    const cases: Array<[Op, string]> = [
      [{ kind: 'add-service', service: WEB }, 'EEXIST: Service already exists'],
      [{ kind: 'edit-service', service: svc(tcp('10.9.9.9', 1)) }, 'ESRCH: No such service'],
      [{ kind: 'delete-service', key: tcp('10.9.9.9', 1) }, 'ESRCH: No such service'],
      [{ kind: 'add-dest', service: tcp('10.9.9.9', 1), dest: dest('10.0.1.5', 1) }, 'ESRCH: Service not defined'],
      [{ kind: 'add-dest', service: WEB.key, dest: dest('10.0.1.5', 1) }, 'EEXIST: Destination already exists'],
      [{ kind: 'edit-dest', service: WEB.key, dest: dest('10.0.1.77', 1) }, 'ENOENT: No such destination'],
      [{ kind: 'delete-dest', service: WEB.key, dest: dest('10.0.1.77', 1) }, 'ENOENT: No such destination'],
    ];
    for (const [op, error] of cases) {
      const r = applyOp(FULL, op);
      assert.deepEqual(r, { ok: false, table: FULL, error }, formatOp(op));
    }
  });

  it('deleting a service removes its destinations with it', () => {
    const r = applyOp(FULL, { kind: 'delete-service', key: WEB.key });
    assert.ok(r.ok);
    assert.equal(r.table.length, 1);
  });
});
