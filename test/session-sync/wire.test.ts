import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'mocha';
import type { Change, Entry, TableRef } from '../../session-sync/model.js';
import { WireError } from '../../session-sync/wire/bytes.js';
import { backupProof, frameMac, masterProof, sessionKeys } from '../../session-sync/wire/auth.js';
import { FrameDecoder, FrameEncoder, HEADER_BYTES, MAX_PAYLOAD } from '../../session-sync/wire/frame.js';
import { decodePayload, encodePayload, MSG, typeCode, type Message } from '../../session-sync/wire/messages.js';
import { prng } from '../helpers/prng.js';

const recent: TableRef = { kind: 'recent', name: '_farm_1_sessions' };
const nft: TableRef = { kind: 'nft', family: 'inet', table: 'lb', set: 'persist4' };
const NOW = 1_765_000_000_000;

function roundTrip(m: Message, sendNow = NOW, recvNow = NOW): Message {
  return decodePayload(typeCode(m), encodePayload(m, sendNow), recvNow);
}

describe('session-sync wire: messages', () => {
  it('an xt_recent entry crosses as ages: the receiver rebuilds each hit against its own clock', () => {
    const e: Entry = { kind: 'recent', addr: '203.0.113.9', family: 4, ttl: 61, hits: [NOW - 9000, NOW - 2500, NOW - 10] };
    const m = roundTrip({ type: 'entries', table: recent, entries: [e] }, NOW, NOW + 123_456) as Extract<Message, { type: 'entries' }>;
    assert.deepEqual(m.table, recent);
    assert.deepEqual(m.entries[0], { ...e, hits: e.hits.map((h) => h + 123_456) });
  });

  it('IPv6 keys, map data and expiries survive a round trip', () => {
    const entries: Entry[] = [
      { kind: 'nft', addr: '2001:db8::1', family: 6, data: { type: 'mark', mark: 0xdeadbeef }, timeoutMs: 600_000, expiresAt: NOW + 30_000 },
      { kind: 'nft', addr: '10.0.0.1', family: 4, data: { type: 'addr_port', family: 6, addr: 'fd00::2', port: 8080 }, timeoutMs: 0, expiresAt: null },
      { kind: 'nft', addr: '10.0.0.2', family: 4, data: null, timeoutMs: 1800_000, expiresAt: NOW + 1 },
    ];
    const m = roundTrip({ type: 'entries', table: nft, entries }) as Extract<Message, { type: 'entries' }>;
    assert.deepEqual(m.entries, entries);
  });

  it('changes keep their order and kinds (upsert, delete, drop)', () => {
    const changes: Change[] = [
      { op: 'upsert', table: recent, entry: { kind: 'recent', addr: '::1', family: 6, ttl: 0, hits: [NOW] } },
      { op: 'delete', table: nft, key: '2001:db8::42' },
      { op: 'delete', table: recent, key: '192.0.2.1' },
      { op: 'drop', table: recent },
    ];
    assert.deepEqual(roundTrip({ type: 'changes', seq: 77, changes }), { type: 'changes', seq: 77, changes });
  });

  it('Pound sessions (long keys included) and operator overrides round-trip; their deletes carry their keys', () => {
    const http: TableRef = { kind: 'http', farm: 'web' };
    const ov: TableRef = { kind: 'overrides', name: 'surealived' };
    const session: Entry = { kind: 'http', listener: 0, service: 70_000, key: 'c'.repeat(1000), backend: 2, content: '192.168.1.10', lastAccess: NOW - 5000 };
    const override: Entry = { kind: 'override', virtual: '[2001:db8::10]:80:0:0', real: '[2001:db8::11]:80', weight: 50, percent: true, rstate: 'OFFLINE' };
    const changes: Change[] = [
      { op: 'upsert', table: http, entry: session },
      { op: 'upsert', table: ov, entry: override },
      { op: 'delete', table: http, key: '0/1/a/b' },
      { op: 'delete', table: ov, key: '10.0.0.1:80:0:0 10.0.0.2:80' },
      { op: 'drop', table: http },
    ];
    assert.deepEqual(roundTrip({ type: 'changes', seq: 3, changes }, NOW, NOW + 10), {
      type: 'changes',
      seq: 3,
      changes: [{ ...changes[0]!, entry: { ...session, lastAccess: session.lastAccess + 10 } }, ...changes.slice(1)],
    });
    const bad = encodePayload({ type: 'changes', seq: 1, changes: [{ op: 'delete', table: http, key: 'no-slashes' }] }, NOW);
    assert.throws(() => decodePayload(MSG.CHANGES, bad, NOW), /not listener\/service\/key/);
    const evil = encodePayload({ type: 'entries', table: { kind: 'http', farm: 'abcd' }, entries: [] }, NOW);
    evil.write('../x', 2, 'latin1');
    assert.throws(() => decodePayload(MSG.ENTRIES, evil, NOW), /http farm name/);
  });

  it('every control message round-trips', () => {
    const nonce = randomBytes(32);
    const msgs: Message[] = [
      { type: 'hello', role: 'backup', auth: true, nonce, node: 'lb2' },
      { type: 'hello', role: 'master', auth: false, nonce, node: 'lb1.example' },
      { type: 'auth', proof: randomBytes(32) },
      { type: 'auth-ok', proof: randomBytes(32) },
      { type: 'refuse', reason: 'authentication failed' },
      { type: 'snapshot-begin', generation: 3, seq: 12 },
      { type: 'snapshot-end', generation: 3, tables: 2, entries: 100_000 },
      { type: 'ack', seq: 2 ** 40 },
      { type: 'heartbeat', seq: 9 },
    ];
    for (const m of msgs) assert.deepEqual(roundTrip(m), m);
  });

  it('refuses what a hostile master could use: path characters in a table name, bad families, hit counts, trailing bytes', () => {
    const good = encodePayload({ type: 'entries', table: { kind: 'recent', name: 'abcde' }, entries: [] }, NOW);
    const evil = Buffer.from(good);
    evil.write('../..', 2, 'latin1'); // the name bytes
    assert.throws(() => decodePayload(MSG.ENTRIES, evil, NOW), (e: unknown) => e instanceof WireError && /recent table name/.test(e.message));
    assert.throws(() => decodePayload(MSG.ENTRIES, Buffer.concat([good, Buffer.from([0])]), NOW), /trailing/);
    const e: Entry = { kind: 'recent', addr: '10.0.0.1', family: 4, ttl: 1, hits: [NOW] };
    const one = encodePayload({ type: 'entries', table: recent, entries: [e] }, NOW);
    const famAt = one.length - (1 + 4 + 1 + 2 + 6); // family byte of the one entry: family, address, ttl, count, one age
    const badFam = Buffer.from(one);
    badFam[famAt] = 5;
    assert.throws(() => decodePayload(MSG.ENTRIES, badFam, NOW), /must be 4 or 6, not 5/);
    const zeroHits = Buffer.from(one);
    zeroHits.writeUInt16BE(0, one.length - 6 - 2);
    assert.throws(() => decodePayload(MSG.ENTRIES, zeroHits, NOW), /hit count/);
    const huge = Buffer.from(one);
    huge.writeUInt32BE(0xffffffff, famAt - 4);
    assert.throws(() => decodePayload(MSG.ENTRIES, huge, NOW), /cannot fit/);
    assert.throws(() => decodePayload(99, Buffer.alloc(0), NOW), /unknown message type 99/);
  });
});

describe('session-sync wire: frames', () => {
  it('reassembles frames from any split of the stream, one byte at a time included', () => {
    const enc = new FrameEncoder();
    const frames = [Buffer.from('a'), Buffer.alloc(0), randomBytes(70_000)].map((p, i) => enc.encode(MSG.HEARTBEAT + i, p));
    const stream = Buffer.concat(frames);
    for (const step of [1, 7, 4096, stream.length]) {
      const dec = new FrameDecoder();
      const got: Buffer[] = [];
      for (let i = 0; i < stream.length; i += step) {
        dec.push(stream.subarray(i, i + step));
        for (let f = dec.next(); f; f = dec.next()) got.push(f.payload);
      }
      assert.equal(got.length, 3);
      assert.equal(got[2]!.length, 70_000);
    }
  });

  it('tells an original ssyncd peer apart, and refuses wrong versions and oversize lengths before buffering them', () => {
    const dec = new FrameDecoder();
    dec.push(Buffer.from([0xef, 0xab, 0x08, 0x00, 0x00, 0x00]));
    assert.throws(() => dec.next(), /original ssyncd v1.0.0 protocol/);
    const d2 = new FrameDecoder();
    d2.push(Buffer.from([9]));
    assert.throws(() => d2.next(), /version 9/);
    const d3 = new FrameDecoder();
    const h = Buffer.alloc(HEADER_BYTES);
    h[0] = 1;
    h[1] = MSG.CHANGES;
    h.writeUInt32BE(MAX_PAYLOAD + 1, 2);
    d3.push(h);
    assert.throws(() => d3.next(), /over the .* limit/);
  });

  it('with a key, a forged, replayed or reordered frame fails its MAC', () => {
    const key = randomBytes(32);
    const enc = new FrameEncoder();
    enc.keyWith(key);
    const f0 = enc.encode(MSG.ACK, Buffer.from([0, 0, 0, 0, 0, 1]));
    const f1 = enc.encode(MSG.ACK, Buffer.from([0, 0, 0, 0, 0, 2]));
    const ok = new FrameDecoder();
    ok.keyWith(key);
    ok.push(Buffer.concat([f0, f1]));
    assert.ok(ok.next() && ok.next());
    const replay = new FrameDecoder();
    replay.keyWith(key);
    replay.push(Buffer.concat([f0, f0]));
    replay.next();
    assert.throws(() => replay.next(), /MAC/);
    const reorder = new FrameDecoder();
    reorder.keyWith(key);
    reorder.push(f1);
    assert.throws(() => reorder.next(), /MAC/);
    const forged = Buffer.from(f0);
    forged[HEADER_BYTES + 5] ^= 1;
    const fd = new FrameDecoder();
    fd.keyWith(key);
    fd.push(forged);
    assert.throws(() => fd.next(), /MAC/);
    const wrongKey = new FrameDecoder();
    wrongKey.keyWith(randomBytes(32));
    wrongKey.push(f0);
    assert.throws(() => wrongKey.next(), /MAC/);
  });

  it('proofs and session keys depend on both nonces and on the direction', () => {
    const key = randomBytes(32);
    const a = randomBytes(32);
    const b = randomBytes(32);
    assert.notDeepEqual(backupProof(key, a, b), masterProof(key, a, b));
    assert.notDeepEqual(backupProof(key, a, b), backupProof(key, b, a));
    const k = sessionKeys(key, a, b);
    assert.notDeepEqual(k.toBackup, k.toMaster);
    assert.notDeepEqual(frameMac(k.toBackup, 0, Buffer.alloc(6), Buffer.alloc(0)), frameMac(k.toBackup, 1, Buffer.alloc(6), Buffer.alloc(0)));
  });

  it('10,000 random and mutated payloads of every type decode or fail with a WireError, nothing else', () => {
    const rnd = prng(0x55e0);
    const seeds: Message[] = [
      { type: 'entries', table: recent, entries: [{ kind: 'recent', addr: '10.1.2.3', family: 4, ttl: 3, hits: [NOW - 5, NOW] }] },
      { type: 'entries', table: nft, entries: [{ kind: 'nft', addr: '::2', family: 6, data: { type: 'mark', mark: 7 }, timeoutMs: 5, expiresAt: NOW }] },
      { type: 'changes', seq: 1, changes: [{ op: 'delete', table: nft, key: '10.0.0.9' }, { op: 'drop', table: recent }] },
      { type: 'hello', role: 'master', auth: true, nonce: randomBytes(32), node: 'n' },
    ];
    let decoded = 0;
    for (let i = 0; i < 10_000; i++) {
      const seed = seeds[i % seeds.length]!;
      const buf = Buffer.from(encodePayload(seed, NOW));
      const mode = i % 3;
      let payload: Buffer;
      if (mode === 0) payload = Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
      else if (mode === 1) {
        for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
        payload = buf;
      } else payload = buf.subarray(0, Math.floor(rnd() * buf.length));
      const type = mode === 0 ? 1 + Math.floor(rnd() * 12) : typeCode(seed);
      try {
        decodePayload(type, payload, NOW);
        decoded += 1;
      } catch (e) {
        assert.ok(e instanceof WireError || e instanceof RangeError, `iteration ${i}: ${String(e)}`);
      }
    }
    assert.ok(decoded > 0 && decoded < 10_000);
  });
});
