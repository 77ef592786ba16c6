import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'mocha';
import { Journal, encodeRecord, readRecords } from '../../session-sync/journal.js';
import { entryKey, type RecentEntry, type TableRef } from '../../session-sync/model.js';
import { Store } from '../../session-sync/store.js';

const T: TableRef = { kind: 'recent', name: 'sticky' };
const N: TableRef = { kind: 'nft', family: 'inet', table: 'lb', set: 'm' };
const rec = (addr: string, hits: number[]): RecentEntry => ({ kind: 'recent', addr, family: addr.includes(':') ? 6 : 4, ttl: 64, hits });

describe('session-sync journal (the backup copy on disk)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssyncd-journal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a reopened journal gives back the same copy, hit times exact', () => {
    const path = join(dir, 'a.journal');
    const s1 = new Store();
    const { journal } = Journal.open(path, s1);
    journal.append({ type: 'snapshot-begin', generation: 1, seq: 0 }, 1000);
    journal.append({ type: 'entries', table: T, entries: [rec('10.0.0.1', [10, 20]), rec('2001:db8::5', [30])] }, 1000);
    journal.append({ type: 'snapshot-end', generation: 1, tables: 1, entries: 2 }, 1000);
    journal.append({ type: 'changes', seq: 1, changes: [{ op: 'delete', table: T, key: '10.0.0.1' }] }, 5000);
    journal.append(
      { type: 'changes', seq: 2, changes: [{ op: 'upsert', table: N, entry: { kind: 'nft', addr: '10.1.1.1', family: 4, data: { type: 'mark', mark: 3 }, timeoutMs: 60_000, expiresAt: 65_000 } }] },
      9000,
    );
    journal.close();
    const s2 = new Store();
    const r = Journal.open(path, s2);
    r.journal.close();
    assert.equal(r.messages, 5);
    assert.equal(r.problem, undefined);
    assert.deepEqual(s2.entries(T), [rec('2001:db8::5', [30])]);
    assert.deepEqual(s2.get(N, '10.1.1.1'), { kind: 'nft', addr: '10.1.1.1', family: 4, data: { type: 'mark', mark: 3 }, timeoutMs: 60_000, expiresAt: 65_000 });
  });

  it('a torn last record (crash mid-write) is cut off; everything before it is kept', () => {
    const path = join(dir, 'b.journal');
    const good = encodeRecord({ type: 'entries', table: T, entries: [rec('10.0.0.9', [1])] }, 100);
    const torn = encodeRecord({ type: 'entries', table: T, entries: [rec('10.0.0.8', [1])] }, 100).subarray(0, 11);
    writeFileSync(path, Buffer.concat([encodeRecord({ type: 'snapshot-begin', generation: 1, seq: 0 }, 100), good, torn]));
    const s = new Store();
    const r = Journal.open(path, s);
    assert.match(r.problem ?? '', /torn record/);
    assert.deepEqual(s.entries(T).map((e) => entryKey(e)), ['10.0.0.9']);
    assert.equal(statSync(path).size, readRecords(readFileSync(path)).validBytes);
    r.journal.append({ type: 'changes', seq: 1, changes: [{ op: 'drop', table: T }] }, 200);
    r.journal.close();
    const s2 = new Store();
    const r2 = Journal.open(path, s2);
    r2.journal.close();
    assert.equal(r2.problem, undefined, 'appends after the cut land on a clean record boundary');
    assert.equal(s2.size, 0);
  });

  it('a flipped bit is caught by the checksum', () => {
    const path = join(dir, 'c.journal');
    const rec1 = encodeRecord({ type: 'entries', table: T, entries: [rec('10.0.0.1', [1])] }, 100);
    rec1[rec1.length - 1] ^= 0x40;
    writeFileSync(path, rec1);
    const r = Journal.open(path, new Store());
    r.journal.close();
    assert.match(r.problem ?? '', /checksum mismatch/);
  });

  it('compaction rewrites the file as one snapshot of the copy, and it replays the same', () => {
    const path = join(dir, 'd.journal');
    const s = new Store();
    const { journal } = Journal.open(path, s);
    for (let i = 0; i < 3000; i++) {
      const e = rec(`10.0.${i % 7}.${i % 250}`, [i]);
      s.upsert(T, e);
      journal.append({ type: 'changes', seq: i + 1, changes: [{ op: 'upsert', table: T, entry: e }] }, 5000);
    }
    const before = journal.bytes;
    journal.compact(s, 6000);
    assert.ok(journal.bytes < before / 5, `compacted ${journal.bytes} of ${before}`);
    journal.close();
    const s2 = new Store();
    Journal.open(path, s2).journal.close();
    assert.equal(s2.size, s.size);
    for (const e of s.entries(T)) assert.deepEqual(s2.get(T, entryKey(e)), e);
  });

  it('garbage in place of a journal is reported and cut, never thrown', () => {
    const path = join(dir, 'e.journal');
    writeFileSync(path, 'this is not a journal\n');
    appendFileSync(path, Buffer.alloc(100, 0xff));
    const s = new Store();
    const r = Journal.open(path, s);
    r.journal.close();
    assert.ok(r.problem);
    assert.equal(s.size, 0);
    truncateSync(path, 0);
  });
});
