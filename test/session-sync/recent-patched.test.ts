// The patched-module restorer as data: the relative restore line of an entry, the write order, how the
// module is recognised, and detectRestorer's choice. The kernel side is in test/kernel/kmodule.test.ts.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecentEntry } from '../../session-sync/model.js';
import {
  MAX_AGE_MS,
  patchedModuleLoaded,
  patchedRestoreOrder,
  patchedRevision,
  PatchedRestorer,
  relativeRestoreLine,
} from '../../session-sync/recent/patched-restorer.js';
import { detectRestorer, RecentTableError } from '../../session-sync/recent/writer.js';

const entry = (addr: string, ttl: number, ...hits: number[]): RecentEntry => ({
  kind: 'recent',
  addr,
  family: addr.includes(':') ? 6 : 4,
  ttl,
  hits,
});

describe('session-sync/recent/patched-restorer', () => {
  describe('relativeRestoreLine', () => {
    it('gives "=addr;ttl;age;...;" with the ages in ms, oldest hit first', () => {
      assert.equal(relativeRestoreLine(entry('10.0.0.1', 64, 1000, 5000, 9750), 10_000), '=10.0.0.1;64;9000;5000;250;');
    });

    it('writes the canonical address, IPv6 compressed', () => {
      assert.equal(relativeRestoreLine(entry('2001:0DB8:0:0:0:0:0:0001', 0, 7), 7), '=2001:db8::1;0;0;');
      assert.equal(relativeRestoreLine(entry('::ffff:10.1.2.3', 1, 0), 3), '=::ffff:a01:203;1;3;');
    });

    it('rounds ages to whole ms, ages a hit after the reference 0, and caps ages at MAX_AGE_MS', () => {
      assert.equal(relativeRestoreLine(entry('10.0.0.1', 1, 0.4, 1.6, 12), 10), '=10.0.0.1;1;10;8;0;');
      assert.equal(relativeRestoreLine(entry('10.0.0.1', 1, 0, 500), 100 * 86_400_000), `=10.0.0.1;1;${MAX_AGE_MS};${MAX_AGE_MS};`);
    });

    it('sorts hits that arrive out of order, so ages never grow along the line', () => {
      assert.equal(relativeRestoreLine(entry('10.0.0.1', 2, 30, 10, 20), 40), '=10.0.0.1;2;30;20;10;');
    });

    it('keeps only the newest 256 hits, the most one line may carry', () => {
      const hits = Array.from({ length: 300 }, (_, i) => i);
      const line = relativeRestoreLine(entry('10.0.0.1', 0, ...hits), 1000);
      const ages = line.split(';').slice(2, -1).map(Number);
      assert.equal(ages.length, 256);
      assert.equal(ages[0], 1000 - 44);
      assert.equal(ages[255], 1000 - 299);
    });

    it('refuses what no kernel would take: no address, a ttl out of 0-255, no hit', () => {
      assert.throws(() => relativeRestoreLine(entry('10.0.0.256', 0, 1), 2), /not an IPv4 or IPv6 address/);
      assert.throws(() => relativeRestoreLine(entry('10.0.0.1', 256, 1), 2), /ttl 256 is out of range 0-255/);
      assert.throws(() => relativeRestoreLine(entry('10.0.0.1', -1, 1), 2), /ttl -1/);
      assert.throws(() => relativeRestoreLine(entry('10.0.0.1', 0), 2), /no hit to restore/);
      assert.throws(() => relativeRestoreLine(entry('10.0.0.1', 0, NaN), 2), /not a number/);
    });
  });

  it('writes the least recently hit entry first, and an address given twice once', () => {
    const { todo, skipped } = patchedRestoreOrder([
      entry('10.0.0.1', 0, 100, 900),
      entry('10.0.0.2', 0, 50),
      entry('2001:db8::1', 0, 10, 20),
      entry('2001:0db8::0001', 0, 500),
    ]);
    assert.deepEqual(
      todo.map((e) => e.addr),
      ['2001:db8::1', '10.0.0.2', '10.0.0.1'],
    );
    assert.equal(skipped, 1);
  });

  describe('recognising the module', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'xt-recent-sys-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('reads the restore-protocol revision from "surealived-<n>" and nothing else', () => {
      assert.equal(patchedRevision('surealived-1\n'), 1);
      assert.equal(patchedRevision('surealived-12'), 12);
      for (const t of ['', '1.0', 'surealived-', 'surealived-x', ' surealived-1', 'surealived-1 beta', 'zevenet-1']) {
        assert.equal(patchedRevision(t), undefined, JSON.stringify(t));
      }
    });

    it('detectRestorer picks the patched restorer only when /sys/module/xt_recent/version is ours', () => {
      const sys = join(dir, 'xt_recent');
      const proc = join(dir, 'proc');
      assert.equal(patchedModuleLoaded(sys), false, 'no module directory at all');
      assert.equal(detectRestorer(proc, sys).kind, 'stock');
      mkdirSync(sys);
      assert.equal(detectRestorer(proc, sys).kind, 'stock', 'a module without a version file (the stock one)');
      writeFileSync(join(sys, 'version'), '3.0\n');
      assert.equal(detectRestorer(proc, sys).kind, 'stock', 'someone else\'s version');
      writeFileSync(join(sys, 'version'), 'surealived-1\n');
      assert.equal(detectRestorer(proc, sys).kind, 'patched');
      writeFileSync(join(sys, 'version'), 'surealived-0\n');
      assert.equal(detectRestorer(proc, sys).kind, 'stock', 'a revision older than the protocol spoken');
    });
  });

  describe('write', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'xt-recent-proc-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('writes each entry at offset 0 with ages measured at the write, and reports refusals', async () => {
      // A regular file stands in for the /proc file: every line lands at offset 0, the last one on top.
      writeFileSync(join(dir, 'sticky'), '');
      let clock = 50_000;
      const r = new PatchedRestorer({ procDir: dir, epochNow: () => (clock += 10) });
      const res = await r.write('sticky', [entry('10.0.0.1', 64, 40_000), entry('10.0.0.9', 300, 1), entry('10.0.0.2', 33, 45_000, 49_000)], 0);
      assert.deepEqual(res, { written: 2, skipped: 0, failed: [{ addr: '10.0.0.9', why: 'ttl 300 is out of range 0-255' }] });
      // Order: 10.0.0.9 (refused), 10.0.0.1, then 10.0.0.2 measured at the third clock reading.
      assert.equal(readFileSync(join(dir, 'sticky'), 'latin1'), '=10.0.0.2;33;5030;1030;');
    });

    it('a missing table is a RecentTableError naming it', async () => {
      const r = new PatchedRestorer({ procDir: dir });
      await assert.rejects(r.write('gone', [entry('10.0.0.1', 0, 1)], 0), (e: unknown) => {
        assert.ok(e instanceof RecentTableError);
        assert.equal(e.table, 'gone');
        assert.match(e.message, /no such table on this node/);
        return true;
      });
      await assert.rejects(r.write('../x', [], 0), /bad table name/);
    });
  });
});
