// RecentPoller over a directory of table files written by the test (the kernel's line format, a fake
// clock): change detection on the whole line, deletes, drops, new tables, malformed lines and bad names.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change } from '../../session-sync/model.js';
import { AnchoredClock, type TimeSource } from '../../session-sync/recent/jiffies.js';
import { RecentPoller } from '../../session-sync/recent/poller.js';

const EPOCH = 1_700_000_000_000;
const J0 = 4_295_000_000; // jiffies at EPOCH
const HZ = 250;

function line(addr: string, ttl: number, index: number, stamps: number[]): string {
  return `src=${addr} ttl: ${ttl} last_seen: ${stamps[index - 1]} oldest_pkt: ${index} ${stamps.join(', ')}`;
}

/** Compact view of changes for assertions: `upsert t 10.0.0.1 ttl [ages ms]`, `delete t k`, `drop t`. */
function show(changes: readonly Change[], now = EPOCH): string[] {
  return changes.map((c) => {
    const name = c.table.kind === 'recent' ? c.table.name : '?';
    if (c.op === 'drop') return `drop ${name}`;
    if (c.op === 'delete') return `delete ${name} ${c.key}`;
    if (c.entry.kind !== 'recent') return 'not recent';
    return `upsert ${name} ${c.entry.addr} ${c.entry.ttl} [${c.entry.hits.map((h) => now - h).join(' ')}]`;
  });
}

describe('session-sync/recent/poller (table files from the test)', () => {
  let dir: string;
  let logs: string[];
  let poller: RecentPoller;
  const time: TimeSource = { monoNow: () => 0, epochNow: () => EPOCH };
  const clock = new AnchoredClock(HZ, { jiffies: J0, monoMs: 0 }, time);
  const put = (table: string, lines: string[]): void =>
    writeFileSync(join(dir, table), lines.map((l) => `${l}\n`).join(''));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'recent-poller-'));
    logs = [];
    poller = new RecentPoller({ procDir: dir, clock, log: (m) => logs.push(m) });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reports every entry as an upsert on the first poll, with hits aged from the stamps, oldest first', () => {
    put('t1', [
      line('10.0.0.1', 61, 2, [J0 - 250, J0 - 25]), // 1 s and 100 ms ago
      // Wrapped ring of 3: oldest is at the cursor.
      line('2001:0db8:0000:0000:0000:0000:0000:0001', 0, 1, [J0, J0 - 500, J0 - 250]),
    ]);
    put('t2', [line('192.0.2.9', 64, 1, [J0 - 2500])]);
    assert.deepEqual(show(poller.poll(EPOCH)), [
      'upsert t1 10.0.0.1 61 [1000 100]',
      'upsert t1 2001:db8::1 0 [2000 1000 0]',
      'upsert t2 192.0.2.9 64 [10000]',
    ]);
    assert.deepEqual(poller.tables(), ['t1', 't2']);
  });

  it('reports nothing when nothing changed, even as time passes', () => {
    put('t1', [line('10.0.0.1', 0, 1, [J0 - 10])]);
    poller.poll(EPOCH);
    assert.deepEqual(poller.poll(EPOCH + 5000), []);
  });

  it('sees changes the original missed: same ring cursor with new stamps, and a ttl change', () => {
    put('t1', [line('10.0.0.1', 5, 1, [J0 - 50, J0 - 100])]);
    poller.poll(EPOCH);
    // Exactly one full ring of new hits: the cursor is back where it was.
    put('t1', [line('10.0.0.1', 5, 1, [J0 - 20, J0 - 30])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert t1 10.0.0.1 5 [120 80]']);
    put('t1', [line('10.0.0.1', 6, 1, [J0 - 20, J0 - 30])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert t1 10.0.0.1 6 [120 80]']);
  });

  it('reports a vanished address as a delete keyed by its canonical form', () => {
    put('t1', [line('2001:0db8:0000:0000:0000:0000:0000:0010', 0, 1, [J0]), line('10.0.0.2', 0, 1, [J0])]);
    poller.poll(EPOCH);
    put('t1', [line('10.0.0.2', 0, 1, [J0])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['delete t1 2001:db8::10']);
  });

  it('reports a flushed table as one delete per entry, and keeps the empty table', () => {
    put('t1', [line('10.0.0.1', 0, 1, [J0]), line('10.0.0.2', 0, 1, [J0])]);
    poller.poll(EPOCH);
    put('t1', []);
    assert.deepEqual(show(poller.poll(EPOCH)), ['delete t1 10.0.0.1', 'delete t1 10.0.0.2']);
    assert.deepEqual(poller.tables(), ['t1']);
  });

  it('reports a vanished table as one drop, and a new table with its entries', () => {
    put('t1', [line('10.0.0.1', 0, 1, [J0]), line('10.0.0.2', 0, 1, [J0])]);
    poller.poll(EPOCH);
    unlinkSync(join(dir, 't1'));
    put('t3', [line('10.0.0.3', 0, 1, [J0])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert t3 10.0.0.3 0 [0]', 'drop t1']);
    assert.deepEqual(poller.tables(), ['t3']);
  });

  it('drops every table when the directory itself goes, and logs why once', () => {
    put('t1', [line('10.0.0.1', 0, 1, [J0])]);
    poller.poll(EPOCH);
    rmSync(dir, { recursive: true });
    assert.deepEqual(show(poller.poll(EPOCH)), ['drop t1']);
    assert.deepEqual(poller.poll(EPOCH), []);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /no such directory, so no xt_recent tables/);
    mkdirSync(dir);
  });

  it('logs a malformed line once with path:line and why, skips it, and keeps the others', () => {
    const bad = 'src=10.0.0.9 ttl: 0 last_seen: 5 oldest_pkt: 1';
    put('t1', [line('10.0.0.1', 0, 1, [J0]), bad, line('10.0.0.2', 0, 1, [J0])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert t1 10.0.0.1 0 [0]', 'upsert t1 10.0.0.2 0 [0]']);
    assert.deepEqual(poller.poll(EPOCH), []);
    assert.deepEqual(logs, [`${dir}/t1:2: empty stamp list (line skipped)`]);
  });

  it('keeps the last good state of an entry whose line turns malformed, and reports it when it heals', () => {
    put('t1', [line('10.0.0.1', 0, 1, [J0])]);
    poller.poll(EPOCH);
    put('t1', ['src=10.0.0.1 ttl: 999 last_seen: 5 oldest_pkt: 1 5']);
    assert.deepEqual(poller.poll(EPOCH), []); // not a delete: the address is still in the kernel
    assert.match(logs[0]!, /t1:1: ttl 999 is out of range/);
    put('t1', [line('10.0.0.1', 0, 1, [J0 - 250])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert t1 10.0.0.1 0 [1000]']);
  });

  it('skips tables whose names cannot be a table, with one log line each, and ignores directories', () => {
    put('bad name', [line('10.0.0.1', 0, 1, [J0])]);
    mkdirSync(join(dir, 'subdir'));
    put('ok', [line('10.0.0.2', 0, 1, [J0])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert ok 10.0.0.2 0 [0]']);
    poller.poll(EPOCH);
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /bad name: table skipped: table name may only hold/);
  });

  it('polls only the tables the filter accepts', () => {
    poller = new RecentPoller({ procDir: dir, clock, filter: (n) => n.startsWith('_farm') });
    put('_farm_1_sessions', [line('10.0.0.1', 0, 1, [J0])]);
    put('other', [line('10.0.0.2', 0, 1, [J0])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert _farm_1_sessions 10.0.0.1 0 [0]']);
    assert.deepEqual(poller.tables(), ['_farm_1_sessions']);
  });

  it('after reset reports every entry again (the original re-emitted nothing after stop/start)', () => {
    put('t1', [line('10.0.0.1', 0, 1, [J0])]);
    poller.poll(EPOCH);
    poller.reset();
    assert.deepEqual(poller.tables(), []);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert t1 10.0.0.1 0 [0]']);
  });

  it('never puts a hit in the future when a stamp is ahead of the clock', () => {
    put('t1', [line('10.0.0.1', 0, 1, [J0 + 3])]);
    assert.deepEqual(show(poller.poll(EPOCH)), ['upsert t1 10.0.0.1 0 [0]']);
  });

  it('reads a table larger than its first buffer (100 entries of 256 stamps)', () => {
    // 11-digit stamps (a host up for years) make the lines as long as they get: about 300 kB in all.
    const stamps = Array.from({ length: 256 }, (_, i) => 12_884_901_888 + i);
    const lines = Array.from({ length: 100 }, (_, i) => line(`10.1.0.${i}`, 0, 256, stamps));
    put('big', lines);
    const changes = poller.poll(EPOCH);
    assert.equal(changes.length, 100);
    const last = changes[99]!;
    assert.ok(last.op === 'upsert' && last.entry.kind === 'recent' && last.entry.hits.length === 256);
    assert.deepEqual(logs, []);
  });
});
