// The control frame codec: the spec's byte example and one vector per command id, our extension and
// status trailer, reassembly from any split, and every way a frame can be refused.

import { strict as assert } from 'node:assert';
import type { Command } from '../../session-sync/control/commands.js';
import {
  COMMAND_IDS,
  ControlFrameReader,
  decodeCommandFrame,
  encodeCommandFrame,
  encodeStatusTrailer,
  frameProblemText,
  splitStatusTrailer,
  type FrameProblem,
} from '../../session-sync/control/frame.js';
import { prng } from '../helpers/prng.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const original = { json: false, wantStatus: false };

/** Every command with its v1.0.0-format frame (ids 2-19) or ours (32-38). */
const VECTORS: readonly (readonly [Command, string])[] = [
  [{ cmd: 'start-http', farm: 'farm1' }, 'EF AB 07 0C 00 02 05 66 61 72 6D 31'],
  [{ cmd: 'stop-http', farm: 'farm1' }, 'EF AB 07 0C 00 03 05 66 61 72 6D 31'],
  [{ cmd: 'show-http' }, 'EF AB 07 06 00 04'],
  [{ cmd: 'clear-http' }, 'EF AB 07 06 00 05'],
  [{ cmd: 'write-http' }, 'EF AB 07 06 00 06'],
  [{ cmd: 'stop-recent' }, 'EF AB 07 06 00 07'],
  [{ cmd: 'start-recent' }, 'EF AB 07 06 00 08'],
  [{ cmd: 'show-recent' }, 'EF AB 07 06 00 09'],
  [{ cmd: 'clear-recent' }, 'EF AB 07 06 00 0A'],
  [{ cmd: 'clear-recent-table', table: 't1' }, 'EF AB 07 09 00 0B 02 74 31'],
  [{ cmd: 'write-recent-table', table: 't1' }, 'EF AB 07 09 00 0C 02 74 31'],
  [{ cmd: 'write-recent' }, 'EF AB 07 06 00 0D'],
  [{ cmd: 'switch-master', port: 9999 }, 'EF AB 07 09 00 0E 0F 27 00'],
  [{ cmd: 'switch-backup', address: '10.0.0.1', port: 7777 }, 'EF AB 07 0E 00 0F 61 1E 00 01 0A 00 00 01'],
  [{ cmd: 'switch-backup', address: '2001:db8::1', port: 7777 }, 'EF AB 07 1A 00 0F 61 1E 00 02 20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 01'],
  [{ cmd: 'count-recent' }, 'EF AB 07 06 00 10'],
  [{ cmd: 'show-mode' }, 'EF AB 07 06 00 11'],
  [{ cmd: 'quit' }, 'EF AB 07 06 00 12'],
  [{ cmd: 'count-http' }, 'EF AB 07 06 00 13'],
  [{ cmd: 'start-nft', ref: { kind: 'nft', family: 'inet', table: 'filter', set: 'sticky' } }, 'EF AB 07 19 00 20 04 69 6E 65 74 06 66 69 6C 74 65 72 06 73 74 69 63 6B 79'],
  [{ cmd: 'stop-nft', ref: { kind: 'nft', family: 'ip', table: 'nat', set: 's1' } }, 'EF AB 07 10 00 21 02 69 70 03 6E 61 74 02 73 31'],
  [{ cmd: 'show-nft' }, 'EF AB 07 06 00 22'],
  [{ cmd: 'count-nft' }, 'EF AB 07 06 00 23'],
  [{ cmd: 'write-nft' }, 'EF AB 07 06 00 24'],
  [{ cmd: 'clear-nft' }, 'EF AB 07 06 00 25'],
  [{ cmd: 'status' }, 'EF AB 07 06 00 26'],
  [{ cmd: 'start-overrides' }, 'EF AB 07 06 00 27'],
  [{ cmd: 'stop-overrides' }, 'EF AB 07 06 00 28'],
  [{ cmd: 'show-overrides' }, 'EF AB 07 06 00 29'],
  [{ cmd: 'write-overrides' }, 'EF AB 07 06 00 2A'],
];

function problemOf(bytes: Buffer, maxFrame?: number): FrameProblem {
  const r = decodeCommandFrame(bytes, maxFrame);
  assert.equal(r.ok, false, `expected a refusal of ${bytes.toString('hex')}`);
  return (r as { problem: FrameProblem }).problem;
}

describe('control frame codec', () => {
  it('encodes `ssyncdctl start http farm1` as the spec example EF AB 07 0C 00 02 05 66 61 72 6D 31', () => {
    assert.deepEqual(encodeCommandFrame({ cmd: 'start-http', farm: 'farm1' }), hex('EF AB 07 0C 00 02 05 66 61 72 6D 31'));
  });

  it('has one vector per command, and the ids of v1.0.0 (2-19) are the enum of spec 3.2', () => {
    assert.deepEqual(new Set(VECTORS.map(([c]) => c.cmd)), new Set(Object.keys(COMMAND_IDS)));
    assert.deepEqual(
      [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
      ['start-http', 'stop-http', 'show-http', 'clear-http', 'write-http', 'stop-recent', 'start-recent', 'show-recent', 'clear-recent', 'clear-recent-table', 'write-recent-table', 'write-recent', 'switch-master', 'switch-backup', 'count-recent', 'show-mode', 'quit', 'count-http'].map(
        (n) => COMMAND_IDS[n as keyof typeof COMMAND_IDS],
      ),
    );
  });

  for (const [cmd, bytes] of VECTORS) {
    it(`encodes and decodes ${JSON.stringify(cmd)} as ${bytes}`, () => {
      assert.deepEqual(encodeCommandFrame(cmd), hex(bytes));
      assert.deepEqual(decodeCommandFrame(hex(bytes)), { ok: true, request: { kind: 'command', command: cmd, options: original, extended: false } });
    });
  }

  it('appends the extension (E5, flags: bit0 json, bit1 want-status) after the fields and counts it in len', () => {
    assert.deepEqual(encodeCommandFrame({ cmd: 'start-http', farm: 'farm1' }, { json: false, wantStatus: true }), hex('EF AB 07 0E 00 02 05 66 61 72 6D 31 E5 02'));
    assert.deepEqual(encodeCommandFrame({ cmd: 'status' }, { json: true, wantStatus: true }), hex('EF AB 07 08 00 26 E5 03'));
    assert.deepEqual(encodeCommandFrame({ cmd: 'show-recent' }, { json: true, wantStatus: false }), hex('EF AB 07 08 00 09 E5 01'));
    assert.deepEqual(encodeCommandFrame({ cmd: 'quit' }, original), hex('EF AB 07 08 00 12 E5 00'));
    for (const [cmd] of VECTORS) {
      for (const options of [original, { json: true, wantStatus: true }, { json: false, wantStatus: true }]) {
        const r = decodeCommandFrame(encodeCommandFrame(cmd, options));
        assert.deepEqual(r, { ok: true, request: { kind: 'command', command: cmd, options, extended: true } });
      }
    }
  });

  it('reads VOID, the unused ids 20-22 and ids it does not know as unknown commands, with or without an extension', () => {
    for (const id of [1, 20, 21, 22, 23, 31, 43, 200, 255]) {
      const plain = Buffer.from([0xef, 0xab, 7, 6, 0, id]);
      assert.deepEqual(decodeCommandFrame(plain), { ok: true, request: { kind: 'unknown-command', id, options: original, extended: false } });
      const ext = Buffer.from([0xef, 0xab, 7, 8, 0, id, 0xe5, 0x03]);
      assert.deepEqual(decodeCommandFrame(ext), { ok: true, request: { kind: 'unknown-command', id, options: { json: true, wantStatus: true }, extended: true } });
    }
    // An unknown id's own fields are skipped, as v1.0.0 did.
    const r = decodeCommandFrame(hex('EF AB 07 09 00 2B 01 02 03'));
    assert.deepEqual(r, { ok: true, request: { kind: 'unknown-command', id: 43, options: original, extended: false } });
  });

  describe('refuses', () => {
    it('bad magic bytes and other frame types', () => {
      assert.deepEqual(problemOf(Buffer.from('GET / HTTP/1.0\r\n\r\n')), { kind: 'bad-magic', offset: 0, byte: 0x47 });
      assert.deepEqual(problemOf(hex('EF AC 07 06 00 08')), { kind: 'bad-magic', offset: 1, byte: 0xac });
      assert.deepEqual(problemOf(hex('EF AB 04 06 00 08')), { kind: 'bad-type', type: 4 });
      assert.deepEqual(problemOf(hex('EF AB 08 00 00')), { kind: 'bad-type', type: 8 });
    });

    it('length fields below a header and a command id, or over the bound', () => {
      assert.equal(problemOf(hex('EF AB 07 05 00')).kind, 'bad-length');
      assert.equal(problemOf(hex('EF AB 07 00 00 08')).kind, 'bad-length');
      assert.deepEqual(problemOf(hex('EF AB 07 88 13 08')), { kind: 'too-long', len: 5000, max: 1024 });
      assert.deepEqual(problemOf(hex('EF AB 07 0C 00 02 05 66 61 72 6D 31'), 11), { kind: 'too-long', len: 12, max: 11 });
    });

    it('a frame shorter or longer than its length field', () => {
      assert.deepEqual(problemOf(hex('EF AB 07 0C 00 02 05 66')), { kind: 'incomplete', have: 8, need: 12 });
      assert.deepEqual(problemOf(hex('EF AB 07 06 00 08 00')), { kind: 'trailing-bytes', offset: 6, count: 1 });
    });

    it('fields that run past the length field', () => {
      const p = problemOf(hex('EF AB 07 08 00 02 05 66'));
      assert.equal(p.kind, 'bad-field');
      assert.match(frameProblemText(p), /^farm name at byte 7: needs 5 bytes, the frame has 1 left$/);
      assert.equal(problemOf(hex('EF AB 07 06 00 0B')).kind, 'bad-field'); // table name length missing
      assert.equal(problemOf(hex('EF AB 07 08 00 0E 0F 27')).kind, 'bad-field'); // port is 3 bytes
      assert.equal(problemOf(hex('EF AB 07 0B 00 0F 61 1E 00 01 0A')).kind, 'bad-field'); // 1 of 4 octets
      assert.equal(problemOf(hex('EF AB 07 10 00 20 04 69 6E 65 74 06 66 69 6C 74')).kind, 'bad-field');
    });

    it('invalid names, ports, families and addresses (checked once, at the boundary)', () => {
      const cases: [string, RegExp][] = [
        ['EF AB 07 0B 00 02 04 2E 2E 2F 78', /farm name may only hold/], // start http ../x
        ['EF AB 07 07 00 02 00', /empty farm name/],
        ['EF AB 07 08 00 0C 01 2A', /table name may only hold/], // write recent table * (v1.0.0's form)
        ['EF AB 07 09 00 0E 00 00 00', /port 0 is not 1-65535/],
        ['EF AB 07 09 00 0E FF FF FF', /port 16777215 is not 1-65535/],
        ['EF AB 07 0A 00 0F 61 1E 00 02', /IPv6 address at byte 10: needs 16 bytes/], // v1.0.0's IPv6 form: no address
        ['EF AB 07 0E 00 0F 61 1E 00 03 0A 00 00 01', /address family at byte 9: 3 is neither/],
        ['EF AB 07 11 00 20 03 66 6F 6F 03 74 62 6C 02 73 31', /unknown nftables family "foo"/],
        ['EF AB 07 0A 00 0B 03 61 FF 62', /not valid UTF-8/],
      ];
      for (const [bytes, why] of cases) {
        const p = problemOf(hex(bytes));
        assert.equal(p.kind, 'bad-field', bytes);
        assert.match(frameProblemText(p), why, bytes);
      }
    });

    it('bytes after the fields that are not an extension, unknown extension flags, and bytes after the extension', () => {
      assert.deepEqual(problemOf(hex('EF AB 07 0D 00 02 05 66 61 72 6D 31 00')), { kind: 'trailing-bytes', offset: 12, count: 1 });
      const p = problemOf(hex('EF AB 07 08 00 11 E5 04'));
      assert.equal(p.kind, 'bad-field');
      assert.match(frameProblemText(p), /extension flags at byte 7: unknown flag bits 0x04/);
      assert.deepEqual(problemOf(hex('EF AB 07 09 00 11 E5 02 00')), { kind: 'trailing-bytes', offset: 8, count: 1 });
      assert.equal(problemOf(hex('EF AB 07 07 00 11 E5')).kind, 'bad-field'); // extension cut short
    });
  });

  it('refuses to encode an invalid command', () => {
    assert.throws(() => encodeCommandFrame({ cmd: 'start-http', farm: '../etc' }), /cannot encode start-http: farm name/);
    assert.throws(() => encodeCommandFrame({ cmd: 'switch-master', port: 70000 }), /port 70000/);
    assert.throws(() => encodeCommandFrame({ cmd: 'switch-backup', address: 'example.org', port: 1 }), /not an IPv4 or IPv6 address/);
  });

  describe('reassembly', () => {
    it('builds a frame that arrives one byte at a time', () => {
      const bytes = encodeCommandFrame({ cmd: 'start-nft', ref: { kind: 'nft', family: 'inet', table: 'filter', set: 'sticky' } }, { json: false, wantStatus: true });
      const reader = new ControlFrameReader();
      for (let i = 0; i < bytes.length - 1; i++) assert.deepEqual(reader.push(bytes.subarray(i, i + 1)), { state: 'incomplete' }, `after byte ${i}`);
      const r = reader.push(bytes.subarray(bytes.length - 1));
      assert.equal(r.state, 'frame');
      assert.deepEqual(r.state === 'frame' && r.request, decodeCommandFrame(bytes).ok && (decodeCommandFrame(bytes) as { request: unknown }).request);
    });

    it('gives the same result for every random split of every vector', () => {
      const rnd = prng(0x55c7);
      for (const [cmd] of VECTORS) {
        const bytes = encodeCommandFrame(cmd, { json: true, wantStatus: true });
        for (let round = 0; round < 20; round++) {
          const reader = new ControlFrameReader();
          let at = 0;
          let last;
          while (at < bytes.length) {
            const n = 1 + Math.floor(rnd() * 6);
            last = reader.push(bytes.subarray(at, at + n));
            at += n;
            if (at < bytes.length) assert.equal(last.state, 'incomplete');
          }
          assert.deepEqual(last, { state: 'frame', request: { kind: 'command', command: cmd, options: { json: true, wantStatus: true }, extended: true }, frame: bytes, surplus: 0 });
        }
      }
    });

    it('takes one frame per connection and counts what follows it as surplus', () => {
      const a = encodeCommandFrame({ cmd: 'show-mode' });
      const b = encodeCommandFrame({ cmd: 'quit' });
      const reader = new ControlFrameReader();
      const r = reader.push(Buffer.concat([a, b]));
      assert.equal(r.state, 'frame');
      assert.equal(r.state === 'frame' && r.request.kind === 'command' && r.request.command.cmd, 'show-mode');
      assert.equal(r.state === 'frame' && r.surplus, b.length);
      const again = reader.push(Buffer.from([1, 2, 3]));
      assert.equal(again.state === 'frame' && again.surplus, b.length + 3);
    });

    it('refuses garbage at its first byte and an oversized length as soon as the header is in', () => {
      assert.deepEqual(new ControlFrameReader().push(Buffer.from('G')), { state: 'error', problem: { kind: 'bad-magic', offset: 0, byte: 0x47 } });
      const reader = new ControlFrameReader(1024);
      assert.deepEqual(reader.push(hex('EF AB 07 01')), { state: 'incomplete' });
      assert.deepEqual(reader.push(hex('04')), { state: 'error', problem: { kind: 'too-long', len: 1025, max: 1024 } });
      // The state is final: more bytes change nothing and are not buffered.
      assert.deepEqual(reader.push(Buffer.alloc(2000)), { state: 'error', problem: { kind: 'too-long', len: 1025, max: 1024 } });
      assert.equal(reader.received, 5);
    });

    it('never holds more than maxFrame bytes, and reports an unfinished frame at end()', () => {
      const reader = new ControlFrameReader(64);
      assert.deepEqual(reader.push(hex('EF AB 07 40 00 02 3E')), { state: 'incomplete' });
      assert.deepEqual(reader.end(), { state: 'error', problem: { kind: 'incomplete', have: 7, need: 64 } });
      assert.deepEqual(new ControlFrameReader().end(), { state: 'error', problem: { kind: 'incomplete', have: 0, need: undefined } });
      assert.deepEqual(new ControlFrameReader().push(hex('EF AB')), { state: 'incomplete' });
      assert.throws(() => new ControlFrameReader(5), /maxFrame 5 is not 6-65535/);
    });
  });

  describe('status trailer', () => {
    it('is a 6-byte CTL_STATUS frame EF AB 09 06 00 <status> at the end of the reply', () => {
      assert.deepEqual(encodeStatusTrailer(0), hex('EF AB 09 06 00 00'));
      assert.deepEqual(encodeStatusTrailer(1), hex('EF AB 09 06 00 01'));
      const reply = Buffer.concat([Buffer.from('writing datarecent data written correclty'), encodeStatusTrailer(0)]);
      assert.deepEqual(splitStatusTrailer(reply), { text: Buffer.from('writing datarecent data written correclty'), status: 0 });
      assert.deepEqual(splitStatusTrailer(encodeStatusTrailer(1)), { text: Buffer.alloc(0), status: 1 });
    });

    it('is missing from an original reply, a cut one, or one with a status it does not know', () => {
      assert.equal(splitStatusTrailer(Buffer.from('master')), undefined);
      assert.equal(splitStatusTrailer(Buffer.from('m')), undefined);
      assert.equal(splitStatusTrailer(hex('6D 61 73 74 EF AB 09 06 00')), undefined);
      assert.equal(splitStatusTrailer(hex('EF AB 09 06 00 02')), undefined);
      assert.equal(splitStatusTrailer(hex('EF AB 07 06 00 00')), undefined);
    });
  });
});
