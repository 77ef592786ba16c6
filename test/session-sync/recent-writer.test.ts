// The stock-kernel restore plan as data: which addresses get a `+addr`, in which order, and which are
// skipped or refused. The kernel side is in recent-kernel.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecentEntry } from '../../session-sync/model.js';
import { planRestore, RecentTableError, RecentWriter } from '../../session-sync/recent/writer.js';

const entry = (addr: string, ...hits: number[]): RecentEntry => ({
  kind: 'recent',
  addr,
  family: addr.includes(':') ? 6 : 4,
  ttl: 0,
  hits,
});

describe('session-sync/recent/writer', () => {
  it('adds only addresses the kernel table lacks, least recently hit first', () => {
    const plan = planRestore(new Set(['10.0.0.2']), [
      entry('10.0.0.1', 100, 900),
      entry('10.0.0.2', 50),
      entry('10.0.0.3', 300),
      entry('2001:db8::1', 10, 20),
    ]);
    assert.deepEqual(plan, { add: ['2001:db8::1', '10.0.0.3', '10.0.0.1'], skipped: 1, failed: [] });
  });

  it('matches addresses by canonical form and writes each once', () => {
    const plan = planRestore(new Set(['2001:db8::1']), [
      entry('2001:0DB8:0:0:0:0:0:1', 5), // the kernel table has it, spelled canonically
      entry('2001:db8::a', 1),
      entry('2001:0db8::000a', 2),
    ]);
    assert.deepEqual(plan, { add: ['2001:db8::a'], skipped: 2, failed: [] });
  });

  it('refuses an entry whose address is no address, and still plans the rest', () => {
    const plan = planRestore(new Set(), [entry('10.0.0.256', 1), entry('10.0.0.1', 2)]);
    assert.deepEqual(plan, { add: ['10.0.0.1'], skipped: 0, failed: [{ addr: '10.0.0.256', why: 'not an IPv4 or IPv6 address' }] });
  });

  it('a missing table or a bad table name is a RecentTableError naming the table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recent-writer-'));
    try {
      const w = new RecentWriter({ procDir: dir });
      await assert.rejects(w.write('_farm_1_sessions', [entry('10.0.0.1', 1)], 0), (e: unknown) => {
        assert.ok(e instanceof RecentTableError);
        assert.equal(e.table, '_farm_1_sessions');
        assert.equal(e.path, join(dir, '_farm_1_sessions'));
        assert.match(e.message, /xt_recent table "_farm_1_sessions": no such table on this node/);
        return true;
      });
      await assert.rejects(w.clear('a/b'), /table "a\/b": bad table name: table name may only hold/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
