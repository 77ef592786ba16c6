// The control frame ssyncdctl sends to ssyncd (CTL_COMMAND, spec 3.2), our backward-compatible
// extension, and the status trailer the daemon appends to a reply when asked. Pure codec: whole-frame
// encode/decode plus an incremental reader that reassembles a frame from any split of reads (the
// original daemon did a single recv and hung on anything short).
//
// Request layout (all integers little-endian, as in the original):
//   0  EF AB 07            magic and type CTL_COMMAND
//   3  u16 len             total frame length including these 5 header bytes
//   5  u8  id              command id (COMMAND_IDS: v1.0.0 ids 1-22 exactly as spec 3.2; ours from 32)
//      fields of the id    2,3: str8 farm        11,12: str8 table      14: u24 port
//                          15: u24 port, u8 family (1 IPv4 + 4 octets, 2 IPv6 + 16 octets)
//                          32,33: str8 nft family, str8 nft table, str8 nft set
//                          34-42: no fields (nft show/count/write/clear, status, overrides start/stop/show/write)
//   [extension]            u8 EXT_MARKER (0xE5), u8 flags (bit0 JSON, bit1 WANT_STATUS, others 0)
// str8 = u8 length + bytes. A frame without the extension is the original format and gets the
// original reply; v1.0.0 daemons walk the fields by their own lengths, so they ignore the extension.
// The original sent IPv6 for id 15 as family 2 with no address at all; that form is refused.
//
// Status trailer (reply side, only when WANT_STATUS was set): the reply text, then the 6 bytes
//   EF AB 09 06 00 <status>      a CTL_STATUS frame (type 9, unused by v1.0.0), status 0 done, 1 refused/failed
// It ends the reply, so a client also learns that the reply arrived whole.

import { addrBytes, addrFromBytes } from '../../common/addr.js';
import { canonicalAddr, type NftFamily } from '../model.js';
import { commandProblem, ORIGINAL_OPTIONS, type Command, type CommandName, type RequestOptions } from './commands.js';

export const MAGIC_0 = 0xef;
export const MAGIC_1 = 0xab;
export const CTL_COMMAND = 7;
export const CTL_STATUS = 9;
export const HEADER_LEN = 5;
/** The smallest frame: header and command id. */
export const MIN_FRAME = HEADER_LEN + 1;
/** Default bound on a request; the largest valid one (start nft, longest names, extension) is 527 bytes. */
export const DEFAULT_MAX_FRAME = 1024;
export const EXT_MARKER = 0xe5;
export const EXT_FLAG_JSON = 0x01;
export const EXT_FLAG_WANT_STATUS = 0x02;
const EXT_KNOWN_FLAGS = EXT_FLAG_JSON | EXT_FLAG_WANT_STATUS;
export const STATUS_TRAILER_LEN = 6;
/** Where ssyncd listens and ssyncdctl connects unless told otherwise (the original used /tmp/ssyncd_path). */
export const DEFAULT_CONTROL_SOCKET = '/run/ssyncd/ssyncd.sock';

/** Command ids. 1-22 are v1.0.0's enum (spec 3.2); 32 and up are ours. */
export const COMMAND_IDS = {
  'start-http': 2,
  'stop-http': 3,
  'show-http': 4,
  'clear-http': 5,
  'write-http': 6,
  'stop-recent': 7,
  'start-recent': 8,
  'show-recent': 9,
  'clear-recent': 10,
  'clear-recent-table': 11,
  'write-recent-table': 12,
  'write-recent': 13,
  'switch-master': 14,
  'switch-backup': 15,
  'count-recent': 16,
  'show-mode': 17,
  quit: 18,
  'count-http': 19,
  'start-nft': 32,
  'stop-nft': 33,
  'show-nft': 34,
  'count-nft': 35,
  'write-nft': 36,
  'clear-nft': 37,
  status: 38,
  'start-overrides': 39,
  'stop-overrides': 40,
  'show-overrides': 41,
  'write-overrides': 42,
} as const satisfies Record<CommandName, number>;

/** v1.0.0 ids that carry no command: VOID (the client refused to send it), CTL_ERROR, STR_MESSAGE, RSYNC. */
export const UNUSED_IDS = { VOID: 1, CTL_ERROR: 20, STR_MESSAGE: 21, RSYNC: 22 } as const;

const NAME_BY_ID = new Map<number, CommandName>(Object.entries(COMMAND_IDS).map(([n, id]) => [id, n as CommandName]));

/** A decoded request: a command we know, or an id we do not (answered `Command no found`). */
export type ControlRequest =
  | { readonly kind: 'command'; readonly command: Command; readonly options: RequestOptions; readonly extended: boolean }
  | { readonly kind: 'unknown-command'; readonly id: number; readonly options: RequestOptions; readonly extended: boolean };

/** Why bytes are not a control frame. Offsets count from the frame's first byte. */
export type FrameProblem =
  | { readonly kind: 'bad-magic'; readonly offset: number; readonly byte: number }
  | { readonly kind: 'bad-type'; readonly type: number }
  | { readonly kind: 'bad-length'; readonly len: number; readonly why: string }
  | { readonly kind: 'too-long'; readonly len: number; readonly max: number }
  | { readonly kind: 'bad-field'; readonly field: string; readonly offset: number; readonly why: string }
  | { readonly kind: 'trailing-bytes'; readonly offset: number; readonly count: number }
  /** The stream ended (or went idle) before the frame was complete. */
  | { readonly kind: 'incomplete'; readonly have: number; readonly need: number | undefined };

export function frameProblemText(p: FrameProblem): string {
  switch (p.kind) {
    case 'bad-magic':
      return `byte ${p.offset} is 0x${hex2(p.byte)}, not the control magic EF AB`;
    case 'bad-type':
      return `frame type ${p.type} is not CTL_COMMAND (7)`;
    case 'bad-length':
      return `length field ${p.len}: ${p.why}`;
    case 'too-long':
      return `length field ${p.len} is over the ${p.max}-byte bound`;
    case 'bad-field':
      return `${p.field} at byte ${p.offset}: ${p.why}`;
    case 'trailing-bytes':
      return `${p.count} unexpected bytes at byte ${p.offset}, after the command's fields`;
    case 'incomplete':
      return p.need === undefined ? `frame incomplete: ${p.have} bytes, header not complete` : `frame incomplete: ${p.have} of ${p.need} bytes`;
  }
}

const hex2 = (b: number): string => b.toString(16).toUpperCase().padStart(2, '0');

// ---- encoding ----

/**
 * The frame for `cmd`. With `options` the extension is appended (what our ssyncdctl sends); without,
 * the frame is byte for byte what v1.0.0's ssyncdctl sends. Throws RangeError on an invalid command.
 */
export function encodeCommandFrame(cmd: Command, options?: RequestOptions): Buffer {
  const problem = commandProblem(cmd);
  if (problem !== undefined) throw new RangeError(`cannot encode ${cmd.cmd}: ${problem}`);
  const parts: Buffer[] = [Buffer.from([COMMAND_IDS[cmd.cmd]])];
  switch (cmd.cmd) {
    case 'start-http':
    case 'stop-http':
      parts.push(str8(cmd.farm));
      break;
    case 'clear-recent-table':
    case 'write-recent-table':
      parts.push(str8(cmd.table));
      break;
    case 'switch-master':
      parts.push(u24(cmd.port));
      break;
    case 'switch-backup': {
      const ip = canonicalAddr(cmd.address)!;
      parts.push(u24(cmd.port), Buffer.from([ip.family === 4 ? 1 : 2]), addrBytes(ip));
      break;
    }
    case 'start-nft':
    case 'stop-nft':
      parts.push(str8(cmd.ref.family), str8(cmd.ref.table), str8(cmd.ref.set));
      break;
    default:
      break;
  }
  if (options) {
    parts.push(Buffer.from([EXT_MARKER, (options.json ? EXT_FLAG_JSON : 0) | (options.wantStatus ? EXT_FLAG_WANT_STATUS : 0)]));
  }
  const body = Buffer.concat(parts);
  const header = Buffer.from([MAGIC_0, MAGIC_1, CTL_COMMAND, 0, 0]);
  header.writeUInt16LE(HEADER_LEN + body.length, 3);
  return Buffer.concat([header, body]);
}

function str8(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length]), b]);
}

function u24(n: number): Buffer {
  const b = Buffer.alloc(3);
  b.writeUIntLE(n, 0, 3);
  return b;
}

// ---- decoding ----

export type DecodeResult = { readonly ok: true; readonly request: ControlRequest } | { readonly ok: false; readonly problem: FrameProblem };

/** Checks the 5 header bytes (or as many as there are); returns the frame length once known. */
export function checkHeader(buf: Buffer, maxFrame = DEFAULT_MAX_FRAME): { readonly ok: true; readonly len: number | undefined } | { readonly ok: false; readonly problem: FrameProblem } {
  if (buf.length > 0 && buf[0] !== MAGIC_0) return { ok: false, problem: { kind: 'bad-magic', offset: 0, byte: buf[0]! } };
  if (buf.length > 1 && buf[1] !== MAGIC_1) return { ok: false, problem: { kind: 'bad-magic', offset: 1, byte: buf[1]! } };
  if (buf.length > 2 && buf[2] !== CTL_COMMAND) return { ok: false, problem: { kind: 'bad-type', type: buf[2]! } };
  if (buf.length < HEADER_LEN) return { ok: true, len: undefined };
  const len = buf.readUInt16LE(3);
  if (len < MIN_FRAME) return { ok: false, problem: { kind: 'bad-length', len, why: `a command frame has at least ${MIN_FRAME} bytes` } };
  if (len > maxFrame) return { ok: false, problem: { kind: 'too-long', len, max: maxFrame } };
  return { ok: true, len };
}

class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly offset: number,
    readonly why: string,
  ) {
    super(`${field} at byte ${offset}: ${why}`);
  }
}

/** Reads fields of one frame body; every read names its field so a bad frame says what was wrong. */
class Fields {
  pos = MIN_FRAME;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  take(n: number, field: string): Buffer {
    if (this.remaining < n) throw new FieldError(field, this.pos, `needs ${n} bytes, the frame has ${this.remaining} left`);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  u8(field: string): number {
    return this.take(1, field)[0]!;
  }

  u24(field: string): number {
    return this.take(3, field).readUIntLE(0, 3);
  }

  str8(field: string): { text: string; at: number } {
    const n = this.u8(`${field} length`);
    const at = this.pos;
    const b = this.take(n, field);
    const text = b.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(b)) throw new FieldError(field, at, 'not valid UTF-8');
    return { text, at };
  }
}

/** Decodes exactly one whole frame (`frame.length` must equal its length field). */
export function decodeCommandFrame(frame: Buffer, maxFrame = DEFAULT_MAX_FRAME): DecodeResult {
  const head = checkHeader(frame, maxFrame);
  if (!head.ok) return head;
  if (head.len === undefined || frame.length < head.len) return { ok: false, problem: { kind: 'incomplete', have: frame.length, need: head.len } };
  if (frame.length > head.len) return { ok: false, problem: { kind: 'trailing-bytes', offset: head.len, count: frame.length - head.len } };
  const id = frame[HEADER_LEN]!;
  const f = new Fields(frame);
  const name = NAME_BY_ID.get(id);
  if (name === undefined) {
    // Unknown layout: only a body that is exactly an extension is read as one (v1.0.0 ignored the rest).
    const ext = f.remaining === 2 && frame[f.pos] === EXT_MARKER ? readExtension(f) : undefined;
    const options = ext !== undefined && !(ext instanceof FieldError) ? ext : ORIGINAL_OPTIONS;
    return { ok: true, request: { kind: 'unknown-command', id, options, extended: options !== ORIGINAL_OPTIONS } };
  }
  try {
    const command = readCommand(name, f);
    const problem = commandProblem(command);
    if (problem !== undefined) throw new FieldError(`${name} arguments`, MIN_FRAME, problem);
    let options = ORIGINAL_OPTIONS;
    let extended = false;
    if (f.remaining > 0) {
      if (frame[f.pos] !== EXT_MARKER) {
        return { ok: false, problem: { kind: 'trailing-bytes', offset: f.pos, count: f.remaining } };
      }
      const ext = readExtension(f);
      if (ext instanceof FieldError) throw ext;
      options = ext;
      extended = true;
      if (f.remaining > 0) return { ok: false, problem: { kind: 'trailing-bytes', offset: f.pos, count: f.remaining } };
    }
    return { ok: true, request: { kind: 'command', command, options, extended } };
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, problem: { kind: 'bad-field', field: e.field, offset: e.offset, why: e.why } };
    throw e;
  }
}

function readExtension(f: Fields): RequestOptions | FieldError {
  f.u8('extension marker');
  const at = f.pos;
  const flags = f.u8('extension flags');
  if ((flags & ~EXT_KNOWN_FLAGS) !== 0) return new FieldError('extension flags', at, `unknown flag bits 0x${hex2(flags & ~EXT_KNOWN_FLAGS)}`);
  return { json: (flags & EXT_FLAG_JSON) !== 0, wantStatus: (flags & EXT_FLAG_WANT_STATUS) !== 0 };
}

function readCommand(name: CommandName, f: Fields): Command {
  switch (name) {
    case 'start-http':
    case 'stop-http':
      return { cmd: name, farm: f.str8('farm name').text };
    case 'clear-recent-table':
    case 'write-recent-table':
      return { cmd: name, table: f.str8('table name').text };
    case 'switch-master':
      return { cmd: name, port: f.u24('port') };
    case 'switch-backup': {
      const port = f.u24('port');
      const at = f.pos;
      const family = f.u8('address family');
      if (family !== 1 && family !== 2) throw new FieldError('address family', at, `${family} is neither 1 (IPv4) nor 2 (IPv6)`);
      const address = addrFromBytes(f.take(family === 1 ? 4 : 16, family === 1 ? 'IPv4 address' : 'IPv6 address')).addr;
      return { cmd: name, address, port };
    }
    case 'start-nft':
    case 'stop-nft': {
      const family = f.str8('nft family').text;
      const table = f.str8('nft table').text;
      const set = f.str8('nft set').text;
      // nftRefProblem (through commandProblem) refuses a family outside NFT_FAMILIES.
      return { cmd: name, ref: { kind: 'nft', family: family as NftFamily, table, set } };
    }
    default:
      return { cmd: name } as Command;
  }
}

// ---- reassembly ----

export type ReadState =
  | { readonly state: 'incomplete' }
  | { readonly state: 'frame'; readonly request: ControlRequest; readonly frame: Buffer; readonly surplus: number }
  | { readonly state: 'error'; readonly problem: FrameProblem };

/**
 * Reassembles one request from the reads of one connection. Refuses as early as the bytes allow
 * (bad magic on the first byte, an oversized length as soon as the header is in) and never buffers
 * more than `maxFrame` bytes. Once a frame or an error is found the state is final; later bytes are
 * only counted as surplus (one command per connection).
 */
export class ControlFrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private len: number | undefined;
  private final: Exclude<ReadState, { state: 'incomplete' }> | undefined;
  private surplus = 0;

  constructor(readonly maxFrame = DEFAULT_MAX_FRAME) {
    if (!Number.isInteger(maxFrame) || maxFrame < MIN_FRAME || maxFrame > 0xffff) {
      throw new RangeError(`maxFrame ${maxFrame} is not ${MIN_FRAME}-65535`);
    }
  }

  push(chunk: Buffer): ReadState {
    if (this.final) {
      if (this.final.state === 'frame') {
        this.surplus += chunk.length;
        this.final = { ...this.final, surplus: this.surplus };
      }
      return this.final;
    }
    // Before the header is complete the frame may be as long as maxFrame (always more than a header).
    const take = chunk.subarray(0, (this.len ?? this.maxFrame) - this.buf.length);
    this.surplus += chunk.length - take.length;
    this.buf = this.buf.length === 0 ? Buffer.from(take) : Buffer.concat([this.buf, take]);
    const head = checkHeader(this.buf, this.maxFrame);
    if (!head.ok) return (this.final = { state: 'error', problem: head.problem });
    this.len = head.len;
    if (this.len === undefined) return { state: 'incomplete' };
    if (this.buf.length > this.len) {
      this.surplus += this.buf.length - this.len;
      this.buf = this.buf.subarray(0, this.len);
    }
    if (this.buf.length < this.len) return { state: 'incomplete' };
    const r = decodeCommandFrame(this.buf, this.maxFrame);
    this.final = r.ok ? { state: 'frame', request: r.request, frame: this.buf, surplus: this.surplus } : { state: 'error', problem: r.problem };
    return this.final;
  }

  /** The stream ended or timed out: the final state, or an `incomplete` problem. */
  end(): Exclude<ReadState, { state: 'incomplete' }> {
    return this.final ?? { state: 'error', problem: { kind: 'incomplete', have: this.buf.length, need: this.len } };
  }

  /** Bytes of the frame held so far (for logs). */
  get received(): number {
    return this.buf.length;
  }
}

// ---- status trailer ----

export type ReplyStatus = 0 | 1;

export function encodeStatusTrailer(status: ReplyStatus): Buffer {
  return Buffer.from([MAGIC_0, MAGIC_1, CTL_STATUS, STATUS_TRAILER_LEN, 0, status]);
}

/** Splits a whole reply into its text and the status of its trailer; undefined when it has none. */
export function splitStatusTrailer(reply: Buffer): { readonly text: Buffer; readonly status: ReplyStatus } | undefined {
  if (reply.length < STATUS_TRAILER_LEN) return undefined;
  const t = reply.subarray(reply.length - STATUS_TRAILER_LEN);
  if (t[0] !== MAGIC_0 || t[1] !== MAGIC_1 || t[2] !== CTL_STATUS || t.readUInt16LE(3) !== STATUS_TRAILER_LEN) return undefined;
  const status = t[5];
  if (status !== 0 && status !== 1) return undefined;
  return { text: reply.subarray(0, reply.length - STATUS_TRAILER_LEN), status };
}
