import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'mocha';
import { entryKey, type Change, type Entry, type RecentEntry, type TableRef } from '../../session-sync/model.js';
import { BackupHandshake, MasterHandshake } from '../../session-sync/protocol/handshake.js';
import { PeerQueue } from '../../session-sync/protocol/peer-queue.js';
import { Replica } from '../../session-sync/protocol/replica.js';
import { Store } from '../../session-sync/store.js';
import type { Message } from '../../session-sync/wire/messages.js';

const T: TableRef = { kind: 'recent', name: 't1' } as TableRef;
const T2: TableRef = { kind: 'nft', family: 'ip', table: 'lb', set: 's' };
const rec = (addr: string, hits: number[] = [1000]): RecentEntry => ({ kind: 'recent', addr, family: 4, ttl: 64, hits });
const up = (e: Entry, table = T): Change => ({ op: 'upsert', table, entry: e });

/** Runs both handshakes against each other; returns what each side ended with. */
function shake(bk: Buffer | undefined, mk: Buffer | undefined): { backup?: string; master?: string; ready: boolean; sameKeys: boolean } {
  const b = new BackupHandshake(bk, 'lb2', randomBytes(32));
  const m = new MasterHandshake(mk, 'lb1', randomBytes(32));
  let toMaster: Message[] = b.start().send;
  let out: { backup?: string; master?: string; ready: boolean; sameKeys: boolean } = { ready: false, sameKeys: false };
  let bKeys: { send: Buffer; recv: Buffer } | undefined;
  let mKeys: { send: Buffer; recv: Buffer } | undefined;
  let bReady = false;
  let mReady = false;
  for (let round = 0; round < 4 && toMaster.length; round++) {
    const toBackup: Message[] = [];
    for (const msg of toMaster) {
      const s = m.receive(msg);
      toBackup.push(...s.send);
      if (s.fail) out = { ...out, master: s.fail };
      if (s.ready) {
        mReady = true;
        mKeys = s.ready.keys;
      }
    }
    toMaster = [];
    for (const msg of toBackup) {
      const s = b.receive(msg);
      toMaster.push(...s.send);
      if (s.fail) out = { ...out, backup: s.fail };
      if (s.ready) {
        bReady = true;
        bKeys = s.ready.keys;
      }
    }
  }
  const sameKeys = !!bKeys && !!mKeys && bKeys.send.equals(mKeys.recv) && bKeys.recv.equals(mKeys.send);
  return { ...out, ready: bReady && mReady, sameKeys };
}

describe('session-sync protocol: handshake', () => {
  it('without keys both sides are ready at once, as the original (no frame keys)', () => {
    assert.deepEqual(shake(undefined, undefined), { ready: true, sameKeys: false });
  });

  it('with the same key both sides prove it and derive matching per-direction keys', () => {
    const k = randomBytes(32);
    assert.deepEqual(shake(k, Buffer.from(k)), { ready: true, sameKeys: true });
  });

  it('a wrong key is refused by the master', () => {
    const r = shake(randomBytes(32), randomBytes(32));
    assert.equal(r.ready, false);
    assert.match(r.master ?? '', /failed to prove the shared key/);
    assert.match(r.backup ?? '', /master refused: authentication failed/);
  });

  it('a keyed side refuses an unkeyed peer, in both directions', () => {
    const a = shake(undefined, randomBytes(32));
    assert.equal(a.ready, false);
    assert.match(a.master ?? '', /has no key: refused/);
    const b = shake(randomBytes(32), undefined);
    assert.equal(b.ready, false);
    assert.match(b.backup ?? '', /master runs without a key while we have one/);
  });
});

describe('session-sync protocol: replica (backup side)', () => {
  it('a snapshot removes what it did not confirm: entries and whole tables', () => {
    const s = new Store();
    s.upsert(T, rec('10.0.0.1'));
    s.upsert(T, rec('10.0.0.2'));
    s.upsert(T2, { kind: 'nft', addr: '10.9.9.9', family: 4, data: null, timeoutMs: 0, expiresAt: null });
    const r = new Replica(s);
    r.receive({ type: 'snapshot-begin', generation: 1, seq: 0 }, 0);
    r.receive({ type: 'entries', table: T, entries: [rec('10.0.0.2', [5]), rec('10.0.0.3')] }, 0);
    const end = r.receive({ type: 'snapshot-end', generation: 1, tables: 1, entries: 2 }, 0);
    assert.deepEqual([...(end.swept ?? [])].sort((a, b) => a.op.localeCompare(b.op)), [{ op: 'delete', table: T, key: '10.0.0.1' }, { op: 'drop', table: T2 }]);
    assert.deepEqual(s.entries(T).map((e) => entryKey(e)).sort(), ['10.0.0.2', '10.0.0.3']);
    assert.deepEqual((s.get(T, '10.0.0.2') as RecentEntry).hits, [5]);
  });

  it('changes are applied in sequence and acknowledged; a gap or a change before the snapshot fails the link', () => {
    const s = new Store();
    const r = new Replica(s);
    assert.match(r.receive({ type: 'changes', seq: 1, changes: [] }, 0).fail ?? '', /before the snapshot ended/);
    r.receive({ type: 'snapshot-begin', generation: 1, seq: 4 }, 0);
    r.receive({ type: 'snapshot-end', generation: 1, tables: 0, entries: 0 }, 0);
    assert.equal(r.receive({ type: 'changes', seq: 5, changes: [up(rec('1.1.1.1'))] }, 0).ack, 5);
    assert.equal(r.receive({ type: 'changes', seq: 6, changes: [{ op: 'delete', table: T, key: '1.1.1.1' }] }, 0).ack, 6);
    assert.equal(s.size, 0);
    assert.match(r.receive({ type: 'changes', seq: 8, changes: [] }, 0).fail ?? '', /seq 8 after 6/);
  });

  it('entries of the wrong kind for their table are refused', () => {
    const r = new Replica(new Store());
    r.receive({ type: 'snapshot-begin', generation: 1, seq: 0 }, 0);
    const nftEntry: Entry = { kind: 'nft', addr: '1.2.3.4', family: 4, data: null, timeoutMs: 0, expiresAt: null };
    assert.match(r.receive({ type: 'entries', table: T, entries: [nftEntry] }, 0).fail ?? '', /nft entry in recent table/);
  });
});

describe('session-sync protocol: peer queue (master side)', () => {
  it('coalesces repeated changes of one entry into the latest, keeping order', () => {
    const q = new PeerQueue({ maxPending: 100, window: 4, batch: 10 });
    q.offer([up(rec('a', [1])), up(rec('b')), up(rec('a', [2]))]);
    const b = q.take(0)!;
    assert.deepEqual(b.changes.map((c) => (c.op === 'upsert' ? `${entryKey(c.entry)}:${(c.entry as RecentEntry).hits[0]}` : c.op)), ['b:1000', 'a:2']);
  });

  it('a drop supersedes what was pending for its table', () => {
    const q = new PeerQueue({ maxPending: 100, window: 4, batch: 10 });
    q.offer([up(rec('a')), up(rec('b'), T2), { op: 'drop', table: T }]);
    assert.deepEqual(q.take(0)!.changes.map((c) => c.op), ['upsert', 'drop']);
  });

  it('stops at the window until acknowledged; an ACK of a frame never sent is refused', () => {
    const q = new PeerQueue({ maxPending: 100, window: 2, batch: 1 });
    q.offer([up(rec('a')), up(rec('b')), up(rec('c'))]);
    assert.equal(q.take(0)!.seq, 1);
    assert.equal(q.take(0)!.seq, 2);
    assert.equal(q.take(0), undefined);
    assert.equal(q.unacked, 2);
    assert.equal(q.ack(9), false);
    assert.equal(q.ack(2), true);
    assert.equal(q.take(10)!.seq, 3);
    assert.equal(q.lagMs(25), 15);
  });

  it('overflowing the bound asks for a resync instead of growing; sequence numbers go on after it', () => {
    const q = new PeerQueue({ maxPending: 3, window: 2, batch: 10 });
    q.take(0);
    q.offer([up(rec('z'))]);
    q.take(0);
    assert.equal(q.offer([up(rec('a')), up(rec('b')), up(rec('c')), up(rec('d'))]), false);
    assert.equal(q.overflowed, true);
    assert.equal(q.depth, 0);
    q.reset();
    assert.equal(q.lastSent, 1);
    assert.equal(q.ack(1), true, 'a late ACK of a frame sent before the resync is still fine');
    q.offer([up(rec('e'))]);
    assert.equal(q.take(0)!.seq, 2);
  });
});

describe('session-sync store', () => {
  it('reports only real changes, so the master forwards only those', () => {
    const s = new Store();
    assert.equal(s.apply(up(rec('a', [1, 2]))), true);
    assert.equal(s.apply(up(rec('a', [1, 2]))), false);
    assert.equal(s.apply(up(rec('a', [1, 3]))), true);
    assert.equal(s.apply({ op: 'delete', table: T, key: 'x' }), false);
    assert.equal(s.apply({ op: 'drop', table: T2 }), false);
    assert.equal(s.size, 1);
  });

  it('expires nftables entries whose time has passed, never xt_recent ones', () => {
    const s = new Store();
    s.upsert(T2, { kind: 'nft', addr: '1.1.1.1', family: 4, data: null, timeoutMs: 0, expiresAt: 100 });
    s.upsert(T2, { kind: 'nft', addr: '1.1.1.2', family: 4, data: null, timeoutMs: 0, expiresAt: null });
    s.upsert(T, rec('1.1.1.3', [1]));
    assert.equal(s.expire(100), 1);
    assert.equal(s.size, 2);
  });
});
