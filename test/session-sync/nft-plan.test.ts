// The writer's pure core: which entries become additions, replacements (delete + add) or nothing,
// the times sent with each element, and the encoding of a plan as one transaction split into
// messages of bounded size.
import assert from 'node:assert/strict';
import type { NftEntry } from '../../session-sync/model.js';
import * as abi from '../../session-sync/nft/abi.js';
import { decodeElems, forEachMessage } from '../../session-sync/nft/codec.js';
import { elementTimes, planWrite, PlanMismatch, type WritePlan } from '../../session-sync/nft/plan.js';
import { ElemTable } from '../../session-sync/nft/table.js';
import { echoCost, encodeTransaction } from '../../session-sync/nft/transaction.js';
import { encodeData, type SetLayout } from '../../session-sync/nft/types.js';

const NOW = 5_000_000;
const V4_MARK: SetLayout = { keyFamily: 4, keyLen: 4, data: { type: 'mark' }, dataLen: 4, timeouts: true };
const V4: SetLayout = { keyFamily: 4, keyLen: 4, data: null, dataLen: -1, timeouts: true };
const REF = { kind: 'nft' as const, family: 'inet' as const, table: 'lb', set: 'persist' };

const entry = (addr: string, o: Partial<NftEntry> = {}): NftEntry => ({
  kind: 'nft', addr, family: addr.includes(':') ? 6 : 4, data: null, timeoutMs: 60_000, expiresAt: NOW + 30_000, ...o,
});
const mark = (m: number): NftEntry['data'] => ({ type: 'mark', mark: m });

/** A kernel view holding IPv4 elements with a mark and a deadline. */
function kernel(elems: [string, number, number | null][]): ElemTable {
  const t = new ElemTable(1, 1);
  for (const [addr, m, deadline] of elems) {
    const s = t.insert(Buffer.from(addr.split('.').map(Number)), 0);
    t.setData(s, encodeData({ type: 'mark', mark: m }), 0);
    t.setDeadline(s, deadline ?? NaN);
  }
  return t;
}

const addrs = (p: WritePlan): { add: string[]; replace: string[] } => ({ add: p.add.map((e) => e.addr), replace: p.replace.map((e) => e.addr) });

describe('nft write plan (pure)', () => {
  it('adds what is missing, replaces other data or an earlier deadline, leaves the rest, counts expired entries', () => {
    const current = kernel([
      ['10.0.0.1', 1, NOW + 30_000], // same as the entry
      ['10.0.0.2', 1, NOW + 30_000], // other data
      ['10.0.0.3', 3, NOW + 10_000], // expires earlier than the entry
      ['10.0.0.4', 4, NOW + 90_000], // lives longer: left alone
      ['10.0.0.5', 5, NOW + 29_990], // earlier, but within the tolerance
      ['10.0.0.9', 9, null], // not among the entries: never touched
    ]);
    const p = planWrite({
      layout: V4_MARK, setTimeoutMs: 0, current, now: NOW, toleranceMs: 20,
      entries: [
        entry('10.0.0.1', { data: mark(1) }),
        entry('10.0.0.2', { data: mark(2) }),
        entry('10.0.0.3', { data: mark(3) }),
        entry('10.0.0.4', { data: mark(4) }),
        entry('10.0.0.5', { data: mark(5) }),
        entry('10.0.0.6', { data: mark(6) }),
        entry('10.0.0.7', { data: mark(7), expiresAt: NOW }),
      ],
    });
    assert.deepEqual(addrs(p), { add: ['10.0.0.6'], replace: ['10.0.0.2', '10.0.0.3'] });
    assert.equal(p.skipped, 3);
    assert.equal(p.expired, 1);
    assert.deepEqual(p.add[0], { addr: '10.0.0.6', key: Buffer.from([10, 0, 0, 6]), data: Buffer.from([6, 0, 0, 0]), timeoutMs: 60_000, expirationMs: 30_000 });
  });

  it('a key given twice is written once, with its last entry', () => {
    const p = planWrite({
      layout: V4_MARK, setTimeoutMs: 0, current: kernel([]), now: NOW, toleranceMs: 20,
      entries: [entry('10.0.0.1', { data: mark(1) }), entry('10.0.0.1', { data: mark(2) })],
    });
    assert.equal(p.add.length, 1);
    assert.deepEqual(p.add[0]!.data, Buffer.from([2, 0, 0, 0]));
    assert.equal(p.skipped, 1);
  });

  it('refuses, naming the entry, anything that does not fit the set', () => {
    const plan = (layout: SetLayout, e: NftEntry): void => {
      const fits = entry('10.0.0.1', layout.data ? { data: mark(1) } : layout.timeouts ? {} : { expiresAt: null, timeoutMs: 0 });
      planWrite({ layout, setTimeoutMs: 0, current: kernel([]), now: NOW, toleranceMs: 20, entries: [fits, e] });
    };
    assert.throws(() => plan(V4, entry('2001:db8::1')), (e: unknown) => e instanceof PlanMismatch && e.index === 1 && /IPv6 but the set \(ipv4_addr\) holds IPv4/.test(e.message));
    assert.throws(() => plan(V4, entry('10.0.0.300')), /not an address/);
    assert.throws(() => plan(V4, entry('10.0.0.2', { data: mark(1) })), /holds no data/);
    assert.throws(() => plan(V4_MARK, entry('10.0.0.2', { data: { type: 'addr_port', family: 4, addr: '10.1.1.1', port: 80 } })), /holds mark data/);
    assert.throws(() => plan({ ...V4, timeouts: false }, entry('10.0.0.2')), /no timeout flag/);
    assert.throws(() => plan(V4, entry('10.0.0.2', { family: 6 })), /IPv4/);
    assert.throws(() => plan(V4, entry('10.0.0.2', { timeoutMs: Number.NaN })), /timeout NaN is not a duration/);
    assert.throws(() => plan(V4, entry('10.0.0.2', { expiresAt: Number.POSITIVE_INFINITY })), /expiry Infinity is not a time/);
  });

  describe('times sent with an element', () => {
    it('own timeout and remaining life as they are', () => {
      assert.deepEqual(elementTimes(entry('1.1.1.1', { timeoutMs: 60_000, expiresAt: NOW + 12_345 }), 0, NOW), { timeoutMs: 60_000, expirationMs: 12_345 });
    });
    it('no own timeout under a long enough set default: only the remaining life', () => {
      assert.deepEqual(elementTimes(entry('1.1.1.1', { timeoutMs: 0, expiresAt: NOW + 50_000 }), 1_800_000, NOW), { timeoutMs: 0, expirationMs: 50_000 });
    });
    it('no timeout anywhere (the kernel refuses an expiry without one): the remaining life becomes the timeout', () => {
      assert.deepEqual(elementTimes(entry('1.1.1.1', { timeoutMs: 0, expiresAt: NOW + 50_000 }), 0, NOW), { timeoutMs: 50_000, expirationMs: 50_000 });
    });
    it('a set default shorter than the remaining life: the element gets the remaining life as its timeout, never dies early', () => {
      assert.deepEqual(elementTimes(entry('1.1.1.1', { timeoutMs: 0, expiresAt: NOW + 300_000 }), 60_000, NOW), { timeoutMs: 300_000, expirationMs: 300_000 });
    });
    it('a remaining life a rounding above its own timeout is clamped (the kernel answers ERANGE)', () => {
      assert.deepEqual(elementTimes(entry('1.1.1.1', { timeoutMs: 60_000, expiresAt: NOW + 60_000.4 }), 0, NOW), { timeoutMs: 60_000, expirationMs: 60_000 });
    });
    it('no expiry: the timeout only (the kernel starts a full one), or nothing', () => {
      assert.deepEqual(elementTimes(entry('1.1.1.1', { timeoutMs: 60_000, expiresAt: null }), 0, NOW), { timeoutMs: 60_000, expirationMs: 0 });
      assert.deepEqual(elementTimes(entry('1.1.1.1', { timeoutMs: 0, expiresAt: null }), 0, NOW), { timeoutMs: 0, expirationMs: 0 });
    });
  });
});

describe('nft transaction encoding (pure)', () => {
  const plan = (n: number, replaced: number): WritePlan => {
    const mk = (i: number): WritePlan['add'][number] => ({
      addr: `10.0.${i >> 8}.${i & 255}`, key: Buffer.from([10, 0, i >> 8, i & 255]), data: Buffer.from([i & 255, 0, 0, 0]), timeoutMs: 60_000, expirationMs: 1000 + i,
    });
    return {
      add: Array.from({ length: n }, (_, i) => mk(i)),
      replace: Array.from({ length: replaced }, (_, i) => mk(n + i)),
      skipped: 0,
      expired: 0,
    };
  };

  it('one BEGIN .. END datagram: deletions of replaced elements first, then every addition, messages kept under the size limit', () => {
    const p = plan(300, 40);
    const tx = encodeTransaction(REF, p, 'destroy', 2000);
    const kinds: string[] = [];
    const added: string[] = [];
    const deleted: string[] = [];
    forEachMessage(tx.writer.view(), (type, flags, _seq, off, end) => {
      assert.ok(end - off + 16 <= 2000, `message of ${end - off + 16} bytes`);
      if (type === abi.NFNL_MSG_BATCH_BEGIN || type === abi.NFNL_MSG_BATCH_END) {
        kinds.push(type === abi.NFNL_MSG_BATCH_BEGIN ? 'begin' : 'end');
        return;
      }
      const cmd = type & 0xff;
      kinds.push(cmd === abi.NFT_MSG_NEWSETELEM ? 'add' : cmd === abi.NFT_MSG_DESTROYSETELEM ? 'destroy' : `?${cmd}`);
      if (cmd === abi.NFT_MSG_NEWSETELEM) assert.equal(flags, abi.NLM_F_REQUEST | abi.NLM_F_CREATE);
      for (const e of decodeElems(tx.writer.view(), off, end)) {
        const a = [...e.key!].join('.');
        if (cmd === abi.NFT_MSG_NEWSETELEM) {
          added.push(a);
          assert.ok(e.data && e.timeoutMs === 60_000 && e.expirationMs > 0, `${a} carries data, timeout and remaining life`);
        } else {
          deleted.push(a);
          assert.equal(e.data, null, 'a deletion needs the key only');
        }
      }
    });
    assert.equal(kinds[0], 'begin');
    assert.equal(kinds[kinds.length - 1], 'end');
    const firstAdd = kinds.indexOf('add');
    assert.ok(kinds.lastIndexOf('destroy') < firstAdd, 'every deletion before the first addition');
    assert.ok(kinds.filter((k) => k === 'add').length > 1, 'split into several messages');
    assert.deepEqual(deleted, p.replace.map((e) => e.addr));
    assert.deepEqual(added, [...p.add, ...p.replace].map((e) => e.addr));
    assert.equal(tx.messages.length, kinds.length);
    assert.deepEqual(tx.messages[firstAdd]!.elems[0]!.addr, '10.0.0.0', 'messages map back to their elements for error reports');
  });

  it('the worst-case reply volume covers an error echoing every message', () => {
    const tx = encodeTransaction(REF, plan(2000, 0), 'delete');
    let sum = 0;
    forEachMessage(tx.writer.view(), (_t, _f, _s, off, end) => (sum += echoCost(end - off + 16)));
    assert.ok(tx.worstReplyBytes >= sum, `${tx.worstReplyBytes} >= ${sum}`);
    assert.ok(echoCost(15_900) <= 16_384 + 512, 'a maximal message echo fits one 16 KiB allocation');
  });
});
