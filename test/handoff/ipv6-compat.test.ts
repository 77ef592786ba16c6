// IPv6 in the hand-off, both ways: a site still running the original ipvssync (see the model of its
// reader) gets exactly the IPv4 table from our hand-off, the IPv6 entries skipped whole; our own
// ipvssync reads the IPv6 form back into the same desired table the writer meant.

import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildState, type RealState, type VirtualState } from '../../surealived/engine/state.js';
import { formatDiffLines, formatFullFile } from '../../surealived/handoff/format.js';
import { HandoffWriter } from '../../surealived/handoff/writer.js';
import { createLogger, memorySink } from '../../common/log.js';
import { applyDiffLines, parseDiffLine, parseFullFile, toTable, type DiffLineOfReal, type HandoffConfig } from '../../ipvssync/handoff.js';
import { formatOp } from '../../ipvssync/format.js';
import { FlockLock } from '../../ipvssync/lock.js';
import { MemoryBackend } from '../../ipvssync/memory-backend.js';
import { Syncer } from '../../ipvssync/syncer.js';
import { destId, serviceId, type Destination, type Entry, type Table } from '../../ipvssync/types.js';
import type { VirtualConfig } from '../../surealived/config/model.js';
import { makeVirtual } from '../helpers/model.js';
import { modelApplyDiff, modelKernelTable, modelReadFull } from './original-ipvssync-model.js';

const DIR = '/var/lib/surealived/diffs';
const DIFF = `${DIR}/diff_sync.1714564805`;
const WHEN = new Date(2024, 4, 1, 12, 0, 5);

// IPv4 virtuals, one with an IPv6 tun real; IPv6 virtuals (two on one port, one with an IPv4 tun
// real, a fwmark one); the IPv4-only twin is the same without any IPv6 entry.
const web = { name: 'web', addr: '192.0.2.10', port: 80 } as const;
const webReals = [
  { name: 'w1', addr: '10.0.1.1', weight: 10 },
  { name: 'w2', addr: '10.0.1.2', weight: 20, rt: 'masq', uthresh: 100, lthresh: 10 },
] as const;
const w6 = { name: 'w6', addr: '2001:db8::7', weight: 5, rt: 'tun' } as const;
const dns = makeVirtual({ name: 'dns', proto: 'udp', addr: '192.0.2.53', port: 53, ops: true, reals: [{ name: 'd1', addr: '10.0.2.1', port: 53, weight: 1 }] });
const fw = makeVirtual({ name: 'fw', proto: 'fwmark', fwmark: 7, reals: [{ name: 'f1', addr: '10.0.3.1', port: 0, weight: 1 }] });
const web6 = makeVirtual({
  name: 'web6',
  addr: '2001:db8::10',
  port: 80,
  reals: [
    { name: 'a', addr: '2001:db8::1', weight: 3 },
    { name: 'b', addr: '2001:db8::2', weight: 4 },
    { name: 't4', addr: '10.0.1.9', weight: 2, rt: 'tun' },
  ],
});
const web6b = makeVirtual({ name: 'web6b', addr: '2001:db8::11', port: 80, reals: [{ name: 'c', addr: '2001:db8::3', weight: 1 }] });
const fw6 = makeVirtual({ name: 'fw6', proto: 'fwmark', addr: '::', fwmark: 8, reals: [{ name: 'g1', addr: '2001:db8::30', port: 0, weight: 1 }] });

const MIXED: readonly VirtualConfig[] = [makeVirtual({ ...web, reals: [...webReals, w6] }), web6, dns, web6b, fw, fw6];
const IPV4_ONLY: readonly VirtualConfig[] = [makeVirtual({ ...web, reals: [...webReals] }), dns, fw];

/** What the previous version wrote: the same lines without the v6 prefix. */
const oldForm = (text: string): string => text.replace(/^v6(virtual|real) /gm, '$1 ').replace(/^cmd=v6/gm, 'cmd=');

/** The state changes every real goes through, each followed by its diff lines. */
const STEPS: ReadonlyArray<[string, (r: RealState) => void]> = [
  ['goes offline', (r) => (r.online = false)],
  ['comes back at 50 %', (r) => ((r.online = true), (r.override = { weight: 50, percent: true }))],
  ['is set DOWN', (r) => (r.rstate = 'DOWN')],
  ['is set ONLINE again', (r) => ((r.rstate = 'ONLINE'), (r.override = null))],
];

function realOf(states: readonly VirtualState[], vname: string, rname: string): RealState | undefined {
  return states.find((v) => v.config.name === vname)?.reals.find((r) => r.config.name === rname);
}

describe('IPv6 hand-off entries read by a model of the original ipvssync', () => {
  for (const cmdByPrefix of [false, true]) {
    const how = cmdByPrefix ? ' (even matching cmd= values by prefix)' : '';

    it(`skips the IPv6 entries of the full file whole and reads the IPv4 ones as before${how}`, () => {
      const mixed = modelReadFull(formatFullFile(buildState(MIXED), WHEN, DIFF));
      const ipv4 = modelReadFull(formatFullFile(buildState(IPV4_ONLY), WHEN, DIFF));
      assert.deepEqual(mixed, ipv4);
      assert.deepEqual([...modelKernelTable(mixed)], [
        ['TCP 192.0.2.10:80', ['10.0.1.1:80 w=10', '10.0.1.2:80 w=20']],
        ['UDP 192.0.2.53:53', ['10.0.2.1:53 w=1']],
        ['FWM 7', ['10.0.3.1:0 w=1']],
      ]);
    });

    it(`applies none of the IPv6 diff lines (a warning at most) and every IPv4 one as before${how}`, () => {
      const mixedStates = buildState(MIXED);
      const ipv4States = buildState(IPV4_ONLY);
      const mixed = modelReadFull(formatFullFile(mixedStates, WHEN, DIFF));
      const ipv4 = modelReadFull(formatFullFile(ipv4States, WHEN, DIFF));
      let v6lines = 0;
      for (const [what, change] of STEPS) {
        for (const v of mixedStates) {
          for (const r of v.reals) {
            const twin = realOf(ipv4States, v.config.name, r.config.name);
            change(r);
            if (twin) change(twin);
            for (const line of formatDiffLines(r).split('\n')) {
              modelApplyDiff(mixed, line, { cmdByPrefix });
              if (line.startsWith('cmd=v6')) v6lines++;
            }
            if (twin) for (const line of formatDiffLines(twin).split('\n')) modelApplyDiff(ipv4, line, { cmdByPrefix });
            assert.deepEqual(mixed.virtuals, ipv4.virtuals, `after ${v.config.name}/${r.config.name} ${what}`);
          }
        }
      }
      assert.ok(v6lines >= 30, `${v6lines} IPv6 diff lines written`);
      assert.ok(mixed.warnings.length > 0);
      assert.deepEqual(mixed.warnings.filter((w) => !/: cmd=v6/.test(w)), ipv4.warnings, 'the IPv4 lines warn as before; every other warning is an IPv6 line');
    });
  }

  it('no v6 keyword begins with one the original acts on, and the first diff token fits its 16-byte buffer', () => {
    const states = buildState(MIXED);
    realOf(states, 'web6', 'b')!.rstate = 'DOWN';
    const full = formatFullFile(states, WHEN, DIFF);
    const diffs = states.flatMap((v) => v.reals.map(formatDiffLines)).join('');
    const heads = new Set([...full.split('\n'), ...diffs.split('\n')].filter((l) => l.includes('v6')).map((l) => l.split(' ')[0]!));
    assert.deepEqual([...heads].sort(), ['cmd=v6addreal', 'cmd=v6chgreal', 'cmd=v6delreal', 'v6real', 'v6virtual']);
    for (const h of heads) {
      const word = h.replace(/^cmd=/, '');
      for (const k of ['meta', 'virtual', 'real', 'DIFF', 'addreal', 'chgreal', 'delreal']) assert.ok(!word.startsWith(k), `${h} begins with ${k}`);
      assert.ok(h.length <= 15, `${h}: longer than 15 bytes`);
    }
  });

  it('the same hand-off in the previous form is half-read, as measured in the lab (which the model thus reproduces)', () => {
    const old = modelReadFull(oldForm(formatFullFile(buildState(MIXED), WHEN, DIFF)));
    const table = modelKernelTable(old);
    // The IPv6 tun real lands in the IPv4 virtual as 0.0.0.0; both IPv6 virtuals on port 80 collapse
    // onto one bogus TCP 0.0.0.0:80 service; the IPv6 fwmark virtual becomes an IPv4 one.
    assert.deepEqual(table.get('TCP 192.0.2.10:80'), ['10.0.1.1:80 w=10', '10.0.1.2:80 w=20', '0.0.0.0:80 w=5']);
    assert.deepEqual(table.get('TCP 0.0.0.0:80'), ['0.0.0.0:80 w=3', '10.0.1.9:80 w=2']);
    assert.deepEqual(table.get('FWM 8'), ['0.0.0.0:0 w=1']);
    // And an IPv6 diff line is applied: the IPv6 tun real of `web`, as 0.0.0.0, gets weight 0.
    const w6off = realOf(buildState(MIXED), 'web', 'w6')!;
    w6off.online = false;
    for (const line of oldForm(formatDiffLines(w6off)).split('\n')) modelApplyDiff(old, line);
    assert.deepEqual(old.warnings, []);
    assert.deepEqual(modelKernelTable(old).get('TCP 192.0.2.10:80'), ['10.0.1.1:80 w=10', '10.0.1.2:80 w=20', '0.0.0.0:80 w=0']);
  });
});

/**
 * A table in a comparable form: services and dests sorted (diff lines append, the full file keeps
 * XML order), without the kernel's connection counters.
 */
function sortedTable(t: Table): Table {
  const by = <T>(id: (x: T) => string) => (x: T, y: T): number => id(x).localeCompare(id(y));
  const bare = ({ activeConns: _a, inactConns: _i, persistConns: _p, ...d }: Destination): Destination => d;
  return [...t]
    .sort(by((e: Entry) => serviceId(e.service.key)))
    .map((e) => ({ ...e, dests: e.dests.map(bare).sort(by(destId)) }));
}

function parsed(text: string): HandoffConfig {
  const p = parseFullFile(text, '/var/lib/surealived/ipvsfull.cfg', DIR);
  if (!p.ok) assert.fail(p.errors.join('\n'));
  return p.config;
}

function diffLinesOf(text: string): DiffLineOfReal[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const p = parseDiffLine(l, DIR);
      if (!p.ok || p.line.kind !== 'real') assert.fail(`${l}: ${JSON.stringify(p)}`);
      return p.line;
    });
}

describe('IPv6 hand-off entries read back by our ipvssync', () => {
  for (const [form, conv] of [
    ['the v6 form', (t: string) => t],
    ['the previous form (still read during an upgrade)', oldForm],
  ] as const) {
    it(`${form}: the full file gives the virtuals and reals the writer meant, both families`, () => {
      const c = parsed(conv(formatFullFile(buildState(MIXED), WHEN, DIFF)));
      const fam = (f: 4 | 6): string => (f === 6 ? 'inet6' : 'inet');
      const RT = { dr: 'route', masq: 'masq', tun: 'tunnel' } as const;
      assert.deepEqual(
        c.virtuals.map((v) => [v.name, v.service.key.family, v.service.netmask, v.reals.map((r) => [r.name, r.dest.addr, r.dest.family, r.dest.port, r.dest.forward, r.dest.weight])]),
        MIXED.map((v) => [v.name, fam(v.family), v.family === 6 ? 128 : 32, v.reals.map((r) => [r.name, r.addr, fam(r.family), r.port, RT[r.rt], r.weight])]),
      );
      assert.deepEqual(c.virtuals.find((v) => v.name === 'fw6')!.service.key, { kind: 'fwmark', family: 'inet6', fwmark: 8 });
      assert.deepEqual(c.virtuals.find((v) => v.name === 'web6')!.service.key, { kind: 'addr', family: 'inet6', protocol: 'tcp', addr: '2001:db8::10', port: 80 });
    });

    it(`${form}: diff lines applied to the parsed full file give the table a fresh full file gives, at every step`, () => {
      const states = buildState(MIXED);
      let config = parsed(conv(formatFullFile(states, WHEN, DIFF)));
      for (const [what, change] of STEPS) {
        for (const v of states) {
          for (const r of v.reals) {
            change(r);
            const lines = diffLinesOf(conv(formatDiffLines(r)));
            const applied = applyDiffLines(config, lines.map((line, i) => ({ line, where: `diff:${i + 1}` })));
            assert.deepEqual(applied.warnings, [], `${v.config.name}/${r.config.name} ${what}`);
            config = applied.config;
            assert.deepEqual(
              sortedTable(toTable(config)),
              sortedTable(toTable(parsed(conv(formatFullFile(states, WHEN, DIFF))))),
              `after ${v.config.name}/${r.config.name} ${what}`,
            );
          }
        }
      }
    });
  }

  it('surealived\'s writer to ipvssync\'s loop: IPv6 services and their changes reach the (in-memory) kernel', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'handoff-v6-'));
    const log = createLogger('debug', memorySink().sink);
    const paths = { lockFile: join(dir, 'ipvsfull.lock'), fullFile: join(dir, 'ipvsfull.cfg'), reloadFile: join(dir, 'ipvsfull.reload'), diffDir: join(dir, 'diffs') };
    const writer = new HandoffWriter({ ...paths, log, now: () => 1_714_564_805_000 });
    const lock = new FlockLock(paths.lockFile);
    const backend = new MemoryBackend();
    const syncer = new Syncer({
      paths: { fullSyncFile: paths.fullFile, fullReloadFile: paths.reloadFile, diffSyncDir: paths.diffDir },
      backend,
      lock,
      log,
      deleteUnmanaged: false,
      keepDiffs: true,
      now: () => 0,
    });
    try {
      const states = buildState(MIXED);
      await writer.writeFull(states, true);
      assert.equal((await syncer.start()).ok, true);
      const want = (): Table => sortedTable(toTable(parsed(formatFullFile(states, WHEN, DIFF))));
      assert.deepEqual(sortedTable(await backend.readTable()), want());

      backend.applied.length = 0;
      const a = realOf(states, 'web6', 'a')!;
      const g1 = realOf(states, 'fw6', 'g1')!;
      const ww6 = realOf(states, 'web', 'w6')!;
      a.online = false;
      g1.rstate = 'DOWN';
      ww6.override = { weight: 9, percent: false };
      for (const r of [a, g1, ww6]) writer.queueReal(r);
      await writer.flush();
      await syncer.iterate();
      assert.deepEqual(backend.applied.map(formatOp).sort(), [
        'delete dest fwmark 8 ipv6 -> [2001:db8::30]:0',
        'edit dest tcp 192.0.2.10:80 -> [2001:db8::7]:80 tunnel w=9',
        'edit dest tcp [2001:db8::10]:80 -> [2001:db8::1]:80 route w=0',
      ]);
      assert.deepEqual(sortedTable(await backend.readTable()), want());
    } finally {
      await syncer.close();
      await writer.close();
      lock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
