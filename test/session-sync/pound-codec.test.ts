// Pound's sync frames, pure: the byte examples of spec [7.3] as vectors, u32 fields encoded right,
// Pound's quirks ([7.2]: len 5, omitted empty fields, lengths mod 256) decoded by walking the fields,
// split reads, junk and hostile bytes skipped with a reason without losing the frames after them.

import assert from 'node:assert/strict';
import { decodeFrameAt, encodeFrame, frameProblem, frameSize, type PoundFrame } from '../../session-sync/pound/codec.js';
import { PoundStreamReader } from '../../session-sync/pound/reader.js';
import { poundStyleFrame, SESS_ADD, SESS_DELETE, SESS_UPDATE } from '../helpers/pound-double.js';
import { prng } from '../helpers/prng.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** [7.3]: ssyncd-generated SESS_ADD, farm `web`, L=0 S=1 B=2, key 1.2.3.4, content 192.168.1.10, last_acc 1510243200. */
const ADD_VECTOR = hex(
  'EF AB 06 33 00 02 03 77 65 62 00 00 00 00 01 00 00 00 02 00 00 00 07 31 2E 32 2E 33 2E 34 0C 31 39 32 2E 31 36 38 2E 31 2E 31 30 80 7B 04 5A 00 00 00 00',
);
/** The same frame as Pound sends it: `05 00` in place of `33 00`. */
const ADD_VECTOR_POUND = Buffer.concat([ADD_VECTOR.subarray(0, 3), hex('05 00'), ADD_VECTOR.subarray(5)]);
const ADD_FRAME: PoundFrame = { action: 'add', farm: 'web', listener: 0, service: 1, backend: 2, key: '1.2.3.4', content: '192.168.1.10', lastAcc: 1510243200 };
/** [7.3]: SYNC_REQUEST to Pound for farm `web`. */
const SYNC_VECTOR = hex('EF AB 06 0A 00 01 03 77 65 62');

/** Every frame the reader gives for `chunks`, in order; throws on any skip. */
function readAll(chunks: readonly Buffer[]): PoundFrame[] {
  const r = new PoundStreamReader();
  const out: PoundFrame[] = [];
  for (const c of chunks) {
    const got = r.push(c);
    assert.deepEqual(got.skips, [], 'nothing skipped');
    out.push(...got.frames);
  }
  const last = r.flush();
  assert.deepEqual(last.skips, [], 'nothing skipped at the end');
  out.push(...last.frames);
  assert.equal(r.buffered, 0, 'nothing left waiting');
  return out;
}

const pound = (action: number, o: { farm?: string; l?: number; s?: number; b?: number; key?: string; content?: string; t?: number }): Buffer =>
  poundStyleFrame({ action, farm: o.farm ?? 'web', listener: o.l ?? 0, service: o.s ?? 0, backend: o.b ?? 0, key: o.key ?? 'k', content: o.content ?? '10.0.0.1', lastAcc: o.t ?? 1_700_000_000 });

describe('session-sync/pound/codec: the spec vectors', () => {
  it('encodes the SESS_ADD example byte for byte, with the exact length 0x33', () => {
    assert.deepEqual(encodeFrame(ADD_FRAME), ADD_VECTOR);
    assert.equal(frameSize(ADD_FRAME), 0x33);
  });

  it('encodes the SYNC_REQUEST example (7 + F bytes)', () => {
    assert.deepEqual(encodeFrame({ action: 'sync-request', farm: 'web' }), SYNC_VECTOR);
  });

  it('decodes the example with ssyncd\'s exact length and with Pound\'s constant length 5 alike', () => {
    // `true`: the buffer ends the stream (a lone frame's end is otherwise confirmed by the next header).
    for (const v of [ADD_VECTOR, ADD_VECTOR_POUND]) assert.deepEqual(decodeFrameAt(v, 0, true), { kind: 'frame', frame: ADD_FRAME, end: 0x33 });
    assert.deepEqual(decodeFrameAt(SYNC_VECTOR, 0, true), { kind: 'frame', frame: { action: 'sync-request', farm: 'web' }, end: 10 });
    assert.deepEqual(decodeFrameAt(ADD_VECTOR_POUND, 0), { kind: 'more' });
    assert.equal(decodeFrameAt(Buffer.concat([ADD_VECTOR_POUND, SYNC_VECTOR]), 0).kind, 'frame');
  });

  it('the double writes the example as Pound would (len 5)', () => {
    assert.deepEqual(pound(SESS_ADD, { l: 0, s: 1, b: 2, key: '1.2.3.4', content: '192.168.1.10', t: 1510243200 }), ADD_VECTOR_POUND);
  });
});

describe('session-sync/pound/codec: encoding', () => {
  it('writes u32 fields little-endian in full (v1.0.0 kept only the low byte)', () => {
    const f: PoundFrame = { action: 'write', farm: 'f', listener: 0x01020304, service: 256, backend: 65_535, key: 'k', content: '', lastAcc: 0xfffffffe };
    const b = encodeFrame(f);
    assert.deepEqual(b.subarray(8, 20), hex('04 03 02 01 00 01 00 00 FF FF 00 00'));
    assert.deepEqual(b.subarray(-8), hex('FE FF FF FF 00 00 00 00'));
    assert.equal(b.readUInt16LE(3), b.length);
  });

  it('sizes: DELETE 20+F+K, CLEAR 20+F, and every length byte present even for an empty field', () => {
    const del = encodeFrame({ action: 'delete', farm: 'web', listener: 1, service: 2, backend: 3, key: 'abc' });
    assert.equal(del.length, 20 + 3 + 3);
    assert.equal(del.readUInt16LE(3), del.length);
    const clear = encodeFrame({ action: 'clear', farm: 'web' });
    assert.equal(clear.length, 23);
    const emptyContent = encodeFrame({ ...ADD_FRAME, content: '' });
    assert.equal(emptyContent.length, 29 + 3 + 7);
    assert.equal(emptyContent[5 + 1 + 4 + 12 + 8], 0, 'content length 0 written');
  });

  it('refuses what Pound\'s u8 lengths cannot describe, saying why', () => {
    const long = { ...ADD_FRAME, key: 'x'.repeat(256) };
    assert.match(frameProblem(long)!, /key of 256 bytes: Pound's sync format carries at most 255/);
    assert.throws(() => encodeFrame(long), RangeError);
    assert.match(frameProblem({ ...ADD_FRAME, content: '\u0101' })!, /not one byte/);
    assert.match(frameProblem({ ...ADD_FRAME, listener: -1 })!, /listener -1 is not a u32/);
    assert.equal(frameProblem({ ...ADD_FRAME, key: 'x'.repeat(255) }), undefined);
  });

  it('round-trips every action through the decoder, keys as bytes (latin1)', () => {
    const frames: PoundFrame[] = [
      ADD_FRAME,
      { ...ADD_FRAME, action: 'update', key: 'caf\u00e9\u00ff\u0000;', lastAcc: 5 },
      { ...ADD_FRAME, action: 'write', listener: 3 },
      { action: 'delete', farm: 'web', listener: 4, service: 5, backend: 6, key: 'gone' },
      { action: 'sync-request', farm: 'web' },
    ];
    assert.deepEqual(readAll([Buffer.concat(frames.map(encodeFrame))]), frames);
  });
});

describe('session-sync/pound/codec: Pound\'s quirks', () => {
  it('omitted farm name, key and content (no length byte, no data) are walked around', () => {
    const frames = [
      pound(SESS_ADD, { farm: '', key: 'a', content: '10.0.0.1' }),
      pound(SESS_ADD, { key: '', content: '10.0.0.2', l: 1 }),
      pound(SESS_UPDATE, { key: '\u00e7', content: '', t: 1_700_000_123 }),
      pound(SESS_DELETE, { key: '' }),
      pound(SESS_DELETE, { key: 'd', farm: '' }),
      pound(SESS_ADD, { key: 'after', content: '10.0.0.9' }),
    ];
    const got = readAll([Buffer.concat(frames)]);
    assert.deepEqual(
      got.map((f) => (f.action === 'delete' ? `${f.action} ${f.farm}|${f.key}` : f.action === 'sync-request' || f.action === 'clear' ? f.action : `${f.action} ${f.farm}|${f.listener}|${f.key}|${f.content}|${f.lastAcc}`)),
      ['add |0|a|10.0.0.1|1700000000', 'add web|1||10.0.0.2|1700000000', 'update web|0|\u00e7||1700000123', 'delete web|', 'delete |d', 'add web|0|after|10.0.0.9|1700000000'],
    );
  });

  it('`n, n printable bytes, last_acc` is an omitted key and a content: Pound never sends an empty content', () => {
    const got = readAll([Buffer.concat([pound(SESS_ADD, { key: '', content: '10.0.0.2' }), pound(SESS_ADD, { key: '10.0.0.2', content: '' })])]);
    assert.deepEqual(got.map((f) => ('content' in f ? [f.key, f.content] : [])), [['', '10.0.0.2'], ['', '10.0.0.2']]);
  });

  it('a key or content over 255 bytes (length written mod 256) is found whole and the stream stays in step', () => {
    const key300 = 'K'.repeat(300);
    const key600 = 'cookie='.padEnd(600, 'z');
    const frames = [
      pound(SESS_ADD, { key: key300 }),
      pound(SESS_ADD, { key: 'next' }),
      pound(SESS_DELETE, { key: key600 }),
      pound(SESS_UPDATE, { key: 'k2', content: '1'.repeat(260) }),
      pound(SESS_DELETE, { key: 'last' }),
    ];
    const got = readAll([Buffer.concat(frames)]);
    assert.deepEqual(
      got.map((f) => ('key' in f ? [f.action, f.key.length, 'content' in f ? f.content.length : -1] : [])),
      [['add', 300, 8], ['add', 4, 8], ['delete', 600, -1], ['update', 2, 260], ['delete', 4, -1]],
    );
    assert.equal((got[0] as { key: string }).key, key300);
  });

  it('any split of the stream gives the same frames (partial reads wait for the rest)', () => {
    const stream = Buffer.concat([
      ADD_VECTOR_POUND,
      pound(SESS_ADD, { key: 'L'.repeat(290) }),
      pound(SESS_DELETE, { key: '' }),
      pound(SESS_UPDATE, { key: 'u', content: '' }),
      ADD_VECTOR,
      pound(SESS_DELETE, { key: 'z' }),
    ]);
    const whole = readAll([stream]);
    assert.equal(whole.length, 6);
    for (let i = 1; i < stream.length; i++) assert.deepEqual(readAll([stream.subarray(0, i), stream.subarray(i)]), whole, `split at ${i}`);
    assert.deepEqual(readAll([...stream].map((x) => Buffer.from([x]))), whole, 'one byte at a time');
  });
});

describe('session-sync/pound/reader: what is not a frame', () => {
  it('junk is skipped up to the next header, with where and why; the frame before it goes too (its end is unconfirmed)', () => {
    const r = new PoundStreamReader();
    const a = pound(SESS_ADD, { key: 'a' });
    const b = pound(SESS_ADD, { key: 'b' });
    const junk = Buffer.from('garbage without a header');
    const got = r.push(Buffer.concat([junk, a, b, junk, pound(SESS_ADD, { key: 'c' })]));
    const last = r.flush();
    assert.deepEqual([...got.frames, ...last.frames].map((f) => ('key' in f ? f.key : '')), ['a', 'c']);
    assert.deepEqual([...got.skips, ...last.skips], [
      { at: 0, bytes: junk.length, why: 'bytes outside any frame' },
      { at: junk.length + a.length, bytes: b.length + junk.length, why: 'add frame: not followed by a frame header' },
    ]);
  });

  it('a reserved or unknown action, and a frame no layout fits, are skipped and the next frame read', () => {
    const r = new PoundStreamReader();
    const reserved = Buffer.from([0xef, 0xab, 0x06, 0x05, 0x00, 20, 1, 2, 3]);
    const unknown = Buffer.from([0xef, 0xab, 0x06, 0x05, 0x00, 9]);
    const broken = Buffer.concat([pound(SESS_ADD, { key: 'x' }).subarray(0, 30), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])]);
    const got = r.push(Buffer.concat([reserved, unknown, broken, pound(SESS_ADD, { key: 'ok' })]));
    const last = r.flush();
    got.frames.push(...last.frames);
    got.skips.push(...last.skips);
    assert.deepEqual(got.frames.map((f) => ('key' in f ? f.key : '')), ['ok']);
    assert.deepEqual(
      got.skips.map((s) => s.why.replace(/:.*/, '')),
      ['reserved action 20 (no layout defined), ignored', 'unknown action 9', 'add frame'],
    );
  });

  it('the last frame waits for the next header or for the stream to go quiet (flush)', () => {
    const r = new PoundStreamReader();
    const a = pound(SESS_DELETE, { key: 'a' });
    assert.deepEqual(r.push(a), { frames: [], skips: [] }, 'its key length could have been cut mod 256');
    assert.equal(r.buffered, a.length);
    assert.deepEqual(r.push(pound(SESS_DELETE, { key: 'b' })).frames.map((f) => ('key' in f ? f.key : '')), ['a']);
    assert.deepEqual(r.flush().frames.map((f) => ('key' in f ? f.key : '')), ['b']);
    assert.equal(r.buffered, 0);
  });

  it('a frame still incomplete when the stream goes quiet is skipped, and reading goes on', () => {
    const r = new PoundStreamReader();
    const part = pound(SESS_ADD, { key: 'cut' }).subarray(0, 20);
    assert.deepEqual(r.push(part), { frames: [], skips: [] });
    assert.equal(r.buffered, 20);
    const quiet = r.flush();
    assert.deepEqual(quiet.frames, []);
    assert.deepEqual(quiet.skips, [{ at: 0, bytes: 20, why: 'add frame: cut short' }]);
    assert.equal(r.buffered, 0);
    r.push(pound(SESS_ADD, { key: 'whole' }));
    assert.deepEqual(r.flush().frames.map((f) => ('key' in f ? f.key : '')), ['whole']);
  });

  it('random valid Pound streams in random pieces decode exactly (2,000 frames)', () => {
    const rnd = prng(0x5eed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const want: string[] = [];
    const bytes: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const action = pick([SESS_ADD, SESS_UPDATE, SESS_DELETE]);
      const keyLen = pick([0, 1, 8, 32, 255, 256, 300, 511, 1000]);
      const key = Array.from({ length: keyLen }, () => String.fromCharCode(Math.floor(rnd() * 256))).join('');
      const content = pick(['', '10.0.0.1', '2001:db8::1', 'backend-host.example']);
      const o = { l: Math.floor(rnd() * 4), s: Math.floor(rnd() * 4), b: Math.floor(rnd() * 9), key, content, t: Math.floor(rnd() * 2 ** 32) };
      bytes.push(pound(action, o));
      // A printable key with an empty content reads as an omitted key with that content (see above).
      const swap = content === '' && /^[\x20-\x7e]+$/.test(key) && key.length <= 255;
      const [k, c] = swap ? ['', key] : [key, content];
      want.push(action === SESS_DELETE ? `delete ${o.l}/${o.s}/${o.b} ${key}` : `${action === SESS_ADD ? 'add' : 'update'} ${o.l}/${o.s}/${o.b} ${k} ${c} ${o.t}`);
    }
    const stream = Buffer.concat(bytes);
    const pieces: Buffer[] = [];
    for (let p = 0; p < stream.length; ) {
      const n = 1 + Math.floor(rnd() * 700);
      pieces.push(stream.subarray(p, p + n));
      p += n;
    }
    const got = readAll(pieces).map((f) =>
      f.action === 'delete' ? `delete ${f.listener}/${f.service}/${f.backend} ${f.key}` : 'content' in f ? `${f.action} ${f.listener}/${f.service}/${f.backend} ${f.key} ${f.content} ${f.lastAcc}` : f.action,
    );
    assert.deepEqual(got, want);
  });

  it('10,000 random and mutated frames throw nothing, and a frame after them still decodes', () => {
    const rnd = prng(0xf022);
    const r = new PoundStreamReader();
    const valid = (): Buffer => pound(Math.floor(rnd() * 6), { key: 'k'.repeat(Math.floor(rnd() * 600)), content: rnd() < 0.2 ? '' : '10.1.2.3', l: Math.floor(rnd() * 3) });
    let frames = 0;
    for (let i = 0; i < 10_000; i++) {
      let b: Buffer;
      const mode = rnd();
      if (mode < 0.3) b = Buffer.from(Array.from({ length: Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256)));
      else {
        b = Buffer.from(valid());
        const flips = mode < 0.8 ? 1 + Math.floor(rnd() * 4) : 0;
        for (let k = 0; k < flips; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
        if (rnd() < 0.2) b = b.subarray(0, Math.floor(rnd() * b.length));
      }
      frames += r.push(b).frames.length;
      if (rnd() < 0.05) frames += r.flush().frames.length;
    }
    assert.ok(frames > 1000, `${frames} frames decoded`);
    r.flush();
    assert.equal(r.buffered, 0);
    r.push(ADD_VECTOR_POUND);
    assert.deepEqual(r.flush().frames, [ADD_FRAME]);
  });
});
