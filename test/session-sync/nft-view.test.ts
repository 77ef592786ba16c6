// The poller's pure core: the compact element table (checked against a Map under random operations)
// and the diff of one dump against the previous view (what counts as added, changed, removed).
import assert from 'node:assert/strict';
import type { Change, NftEntry } from '../../session-sync/model.js';
import { ElemCursor } from '../../session-sync/nft/codec.js';
import * as abi from '../../session-sync/nft/abi.js';
import { ElemTable } from '../../session-sync/nft/table.js';
import { encodeData, type SetLayout } from '../../session-sync/nft/types.js';
import { SetView } from '../../session-sync/nft/view.js';
import { prng } from '../helpers/prng.js';

const REF = { kind: 'nft' as const, family: 'inet' as const, table: 'lb', set: 's' };

describe('nft element table (pure)', () => {
  for (const keyWords of [1, 4]) {
    it(`matches a Map under 20,000 random inserts, lookups and removals (${keyWords * 4}-byte keys, growing from 16 slots)`, () => {
      const rnd = prng(0x5e7 + keyWords);
      const t = new ElemTable(keyWords, 1, 16);
      const oracle = new Map<string, number>();
      // A small key space so that removals hit and probe chains wrap around the end of the table.
      const key = (): Buffer => {
        const b = Buffer.alloc(keyWords * 4);
        b.writeUInt32BE(Math.floor(rnd() * 3000), b.length - 4);
        return b;
      };
      for (let i = 0; i < 20_000; i++) {
        const k = key();
        const id = k.toString('hex');
        const r = rnd();
        if (r < 0.5) {
          if (t.find(k, 0) < 0) {
            const s = t.insert(k, 0);
            const d = Buffer.alloc(4);
            d.writeUInt32BE(i);
            t.setData(s, d, 0);
            oracle.set(id, i);
          }
        } else if (r < 0.8) {
          assert.equal(t.remove(k, 0), oracle.delete(id), `remove ${id}`);
        } else {
          const s = t.find(k, 0);
          assert.equal(s >= 0, oracle.has(id), `find ${id}`);
          if (s >= 0) {
            const d = Buffer.alloc(4);
            d.writeUInt32BE(oracle.get(id)!);
            assert.ok(t.dataEquals(s, d, 0), `data of ${id} moved with its key`);
            assert.deepEqual(t.keyBytes(s), k);
          }
        }
        assert.equal(t.size, oracle.size);
      }
      for (const id of oracle.keys()) assert.ok(t.find(Buffer.from(id, 'hex'), 0) >= 0, id);
    });
  }
});

describe('nft element table: dump order (pure)', () => {
  const k4 = (i: number): Buffer => Buffer.from([10, 0, i >> 8, i & 255]);

  it('findNear takes the record at the expected position, else the index, stepping over removed records', () => {
    const t = new ElemTable(1, 0, 16);
    for (let i = 0; i < 100; i++) assert.equal(t.insert(k4(i), 0), i, 'records are numbered in insertion order');
    assert.equal(t.findNear(k4(5), 0, 5), 5);
    assert.equal(t.findNear(k4(5), 0, 70), 5, 'wrong hint: found through the index');
    assert.equal(t.findNear(k4(1000), 0, 3), -1);
    t.remove(k4(6), 0);
    t.remove(k4(7), 0);
    assert.equal(t.findNear(k4(8), 0, 6), 8, 'removed records 6 and 7 stepped over');
    assert.equal(t.find(k4(6), 0), -1);
    assert.equal(t.size, 98);
    assert.equal(t.records, 100);
  });

  it('reorder lays out live records in the given order, drops removed ones and keeps every value', () => {
    const rnd = prng(77);
    const t = new ElemTable(1, 1, 16);
    const values = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const r = t.insert(k4(i), 0);
      t.setDeadline(r, i * 10);
      t.setTimeout(r, i);
      const d = Buffer.alloc(4);
      d.writeUInt32BE(i * 3);
      t.setData(r, d, 0);
      values.set(i, i * 3);
    }
    for (let i = 0; i < 500; i += 7) {
      t.remove(k4(i), 0);
      values.delete(i);
    }
    // The new order: a shuffled half of the live records (the rest follow in their old order).
    const live = [...values.keys()].map((i) => t.find(k4(i), 0));
    const order = Int32Array.from(live.sort(() => rnd() - 0.5).slice(0, 200));
    const firstKeys = [...order].map((r) => t.keyBytes(r).readUInt16BE(2));
    t.reorder(order, order.length);
    assert.equal(t.size, values.size);
    assert.equal(t.records, values.size, 'removed records dropped');
    firstKeys.forEach((i, pos) => assert.equal(t.find(k4(i), 0), pos, `key ${i} now at ${pos}`));
    for (const [i, v] of values) {
      const r = t.find(k4(i), 0);
      const d = Buffer.alloc(4);
      d.writeUInt32BE(v);
      assert.ok(r >= 0 && t.dataEquals(r, d, 0) && t.deadline(r) === i * 10 && t.timeout(r) === i, `values of ${i}`);
    }
  });
});

/** A cursor over hand-laid bytes: key, then data. */
function cursor(key: number[], o: { data?: Buffer; timeoutMs?: number; expirationMs?: number; flags?: number } = {}): ElemCursor {
  const c = new ElemCursor();
  const k = Buffer.from(key);
  c.buf = o.data ? Buffer.concat([k, o.data]) : k;
  c.keyOff = 0;
  c.keyLen = k.length;
  c.dataOff = k.length;
  c.dataLen = o.data ? o.data.length : -1;
  c.timeoutMs = o.timeoutMs ?? -1;
  c.expirationMs = o.expirationMs ?? -1;
  c.flags = o.flags ?? 0;
  return c;
}

const V4_MARK: SetLayout = { keyFamily: 4, keyLen: 4, data: { type: 'mark' }, dataLen: 4, timeouts: true };
const mark = (m: number): Buffer => encodeData({ type: 'mark', mark: m });
const lines = (out: Change[]): string[] => out.map((c) => (c.op === 'upsert' ? `upsert ${(c.entry as NftEntry).addr}` : c.op === 'delete' ? `delete ${c.key}` : 'drop'));

describe('nft set view: one dump against the previous (pure)', () => {
  const T = 1_000_000; // epoch ms of the first dump

  /** One dump of `elems` timed at `at`; with `part`, all of them in one dump part (one datagram). */
  function poll(v: SetView, at: number, elems: ElemCursor[], now = at, part = false): { out: Change[]; unsure: Buffer[] } {
    const out: Change[] = [];
    v.beginPoll();
    if (part) v.beginPart();
    for (const c of elems) v.observe(c, at, out);
    if (part) v.endPart(out);
    const unsure = v.sweep(now, out);
    return { out, unsure };
  }

  it('the first dump reports every element with data, own timeout and deadline = time of the dump + remaining life', () => {
    const v = new SetView(REF, V4_MARK, 20);
    const { out, unsure } = poll(v, T, [
      cursor([10, 0, 0, 1], { data: mark(7), timeoutMs: 60_000, expirationMs: 30_000 }),
      cursor([10, 0, 0, 2], { data: mark(8) }),
    ]);
    assert.deepEqual(unsure, []);
    assert.deepEqual(out, [
      { op: 'upsert', table: REF, entry: { kind: 'nft', addr: '10.0.0.1', family: 4, data: { type: 'mark', mark: 7 }, timeoutMs: 60_000, expiresAt: T + 30_000 } },
      { op: 'upsert', table: REF, entry: { kind: 'nft', addr: '10.0.0.2', family: 4, data: { type: 'mark', mark: 8 }, timeoutMs: 0, expiresAt: null } },
    ]);
  });

  it('an unchanged element is not reported, even as its remaining life runs down or jitters within the tolerance', () => {
    const v = new SetView(REF, V4_MARK, 20);
    poll(v, T, [cursor([10, 0, 0, 1], { data: mark(7), expirationMs: 30_000, timeoutMs: 60_000 })]);
    for (const [dt, jitter] of [[1000, 0], [2000, 15], [3000, -20], [4000, 20]]) {
      const { out } = poll(v, T + dt!, [cursor([10, 0, 0, 1], { data: mark(7), expirationMs: 30_000 - dt! + jitter!, timeoutMs: 60_000 })]);
      assert.deepEqual(out, [], `dump at +${dt} ms, deadline off by ${jitter} ms`);
    }
  });

  it('a refresh (deadline later by more than the tolerance), new data or a new timeout is reported; the new values become the reference', () => {
    const v = new SetView(REF, V4_MARK, 20);
    poll(v, T, [cursor([10, 0, 0, 1], { data: mark(7), expirationMs: 30_000 })]);
    let r = poll(v, T + 5000, [cursor([10, 0, 0, 1], { data: mark(7), expirationMs: 30_000 })]);
    assert.deepEqual(lines(r.out), ['upsert 10.0.0.1'], 'refreshed by the packet path');
    assert.equal((r.out[0] as { entry: NftEntry }).entry.expiresAt, T + 35_000);
    r = poll(v, T + 6000, [cursor([10, 0, 0, 1], { data: mark(7), expirationMs: 29_000 })]);
    assert.deepEqual(r.out, [], 'compared with the reported deadline, not the first one');
    r = poll(v, T + 7000, [cursor([10, 0, 0, 1], { data: mark(9), expirationMs: 28_000 })]);
    assert.deepEqual(lines(r.out), ['upsert 10.0.0.1'], 'new data');
    r = poll(v, T + 8000, [cursor([10, 0, 0, 1], { data: mark(9), expirationMs: 27_000, timeoutMs: 90_000 })]);
    assert.deepEqual(lines(r.out), ['upsert 10.0.0.1'], 'a timeout of its own');
    r = poll(v, T + 9000, [cursor([10, 0, 0, 1], { data: mark(9) })]);
    assert.deepEqual(lines(r.out), ['upsert 10.0.0.1'], 'no longer expires');
  });

  it('missing elements: past their deadline they are deleted at once, the others are returned to be looked up', () => {
    const v = new SetView(REF, V4_MARK, 20);
    poll(v, T, [
      cursor([10, 0, 0, 1], { data: mark(1), expirationMs: 1000 }),
      cursor([10, 0, 0, 2], { data: mark(2), expirationMs: 60_000 }),
      cursor([10, 0, 0, 3], { data: mark(3) }),
      cursor([10, 0, 0, 4], { data: mark(4), expirationMs: 60_000 }),
    ]);
    const { out, unsure } = poll(v, T + 1010, [cursor([10, 0, 0, 4], { data: mark(4), expirationMs: 58_990 })]);
    assert.deepEqual(lines(out), ['delete 10.0.0.1'], 'expired (within the tolerance of its deadline)');
    assert.deepEqual(unsure.map((k) => [...k].join('.')).sort(), ['10.0.0.2', '10.0.0.3']);
    const gone: Change[] = [];
    v.gone(unsure[0]!, gone);
    v.gone(unsure[0]!, gone);
    assert.equal(gone.length, 1, 'gone() reports a key once');
    assert.equal(v.size, 2);
  });

  it('an element a dump reports twice is reported once; catch-all and interval-end elements are ignored', () => {
    const v = new SetView(REF, V4_MARK, 20);
    const { out } = poll(v, T, [
      cursor([10, 0, 0, 1], { data: mark(1) }),
      cursor([10, 0, 0, 1], { data: mark(1) }),
      cursor([0, 0, 0, 0], { data: mark(5), flags: abi.NFT_SET_ELEM_CATCHALL }),
    ]);
    assert.deepEqual(lines(out), ['upsert 10.0.0.1']);
  });

  describe('a dump part timed late (we were preempted between the kernel filling it and our clock reading)', () => {
    const many = (n: number, expiration: (i: number) => number): ElemCursor[] =>
      Array.from({ length: n }, (_, i) => cursor([10, 1, 0, i], { data: mark(i), expirationMs: expiration(i) }));

    it('shifts every deadline of the part by the same amount: not a change, and the earlier deadlines stay the reference', () => {
      const v = new SetView(REF, V4_MARK, 20);
      poll(v, T, many(40, (i) => 60_000 + i * 1000), T, true);
      // 1 s later the kernel says 59 s, 60 s, ... left, but our clock reading came 120 ms late.
      assert.deepEqual(poll(v, T + 1120, many(40, (i) => 59_000 + i * 1000), T + 1120, true).out, []);
      assert.deepEqual(poll(v, T + 2000, many(40, (i) => 58_000 + i * 1000), T + 2000, true).out, [], 'correctly timed again: nothing');
      // 22 ms late, with the kernel's jiffy rounding putting half the part under the tolerance.
      assert.deepEqual(poll(v, T + 3022, many(40, (i) => 57_000 + i * 1000 + (i % 2 ? -4 : 0)), T + 3022, true).out, []);
    });

    it('real refreshes move deadlines by different amounts and are reported, as are uniform moves of a few elements or beyond 500 ms', () => {
      const v = new SetView(REF, V4_MARK, 20);
      poll(v, T, many(40, () => 30_000), T, true);
      const refreshed = poll(v, T + 1000, many(40, (i) => 29_000 + 100 + i * 37), T + 1000, true).out;
      assert.equal(refreshed.length, 40, 'every element moved by more than the tolerance');
      const w = new SetView(REF, V4_MARK, 20);
      poll(w, T, many(8, () => 30_000), T, true);
      assert.equal(poll(w, T + 1000, many(8, () => 29_100), T + 1000, true).out.length, 8, 'too few to call it a timing error');
      const x = new SetView(REF, V4_MARK, 20);
      poll(x, T, many(40, () => 30_000), T, true);
      assert.equal(poll(x, T + 1000, many(40, () => 29_700), T + 1000, true).out.length, 40, 'a 700 ms move is a refresh');
    });
  });

  it('a dump in another order than the last one reports nothing, before and after the records are laid out anew', () => {
    const rnd = prng(5);
    const v = new SetView(REF, V4_MARK, 20);
    const elems = (dt: number): ElemCursor[] => Array.from({ length: 300 }, (_, i) => cursor([10, 2, i >> 8, i & 255], { data: mark(i), expirationMs: 60_000 - dt }));
    poll(v, T, elems(0));
    v.endPoll();
    for (let round = 1; round <= 3; round++) {
      const shuffled = elems(round * 1000).sort(() => rnd() - 0.5);
      const r = poll(v, T + round * 1000, shuffled);
      v.endPoll();
      assert.deepEqual([r.out, r.unsure], [[], []], `round ${round}`);
    }
    assert.equal(v.size, 300);
  });

  it('IPv6 keys and addr . port data decode to canonical text', () => {
    const l: SetLayout = { keyFamily: 6, keyLen: 16, data: { type: 'addr_port', family: 4 }, dataLen: 8, timeouts: true };
    const v = new SetView(REF, l, 20);
    const key = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
    const { out } = poll(v, T, [cursor(key, { data: encodeData({ type: 'addr_port', family: 4, addr: '192.0.2.1', port: 80 }), expirationMs: 5 })]);
    assert.deepEqual((out[0] as { entry: NftEntry }).entry, {
      kind: 'nft', addr: '2001:db8::10', family: 6, data: { type: 'addr_port', family: 4, addr: '192.0.2.1', port: 80 }, timeoutMs: 0, expiresAt: T + 5,
    });
  });

  it('an element whose key or data length does not fit the set is an error, not a guess', () => {
    const v = new SetView(REF, V4_MARK, 20);
    assert.throws(() => poll(v, T, [cursor([1, 2, 3, 4, 5, 6, 7, 8], { data: mark(1) })]), /key of 8 bytes/);
    assert.throws(() => poll(v, T, [cursor([1, 2, 3, 4], { data: Buffer.alloc(8) })]), /data of 8 bytes/);
  });
});
