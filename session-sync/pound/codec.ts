// Pound's sync frames (HTTP_SYNC, type 6, spec [7.3]) as data: one encoder, and a decoder that walks
// one frame's fields the way Pound really writes them ([7.2]): the length field is always 5, an empty
// farm, key or content loses its length byte as well as its data, and a length over 255 is written
// mod 256 while every byte follows. So a frame's end is found by walking candidate layouts and
// keeping the first one whose fields are plausible and which the next frame's header follows (or the
// end of the stream, once the caller says no more bytes are coming). Pure: buffers in, frames out.

import { MAX_HTTP_FIELD } from '../model.js';

/** First bytes of every frame: the two magic bytes and HTTP_SYNC. */
export const FRAME_MAGIC = Buffer.from([0xef, 0xab, 0x06]);
export const HEADER_BYTES = 5;
/** Longest farm name, key or content Pound's u8 lengths can describe. */
export const POUND_FIELD_MAX = 255;
/** Longest key or content the decoder looks for when Pound wrote its length mod 256. */
export const DECODE_FIELD_MAX = MAX_HTTP_FIELD;
/**
 * Listener, service and backend ordinals at or over this are a misaligned walk, not a Pound
 * configuration (Pound numbers them in config order from 0).
 */
export const ORDINAL_LIMIT = 65_536;

export const ACTION = {
  clear: 0,
  'sync-request': 1,
  add: 2,
  delete: 3,
  update: 4,
  write: 5,
} as const;
export type ActionName = keyof typeof ACTION;
/** BCK_ADD, BCK_DELETE, BCK_UPDATE: reserved; their layout is not defined anywhere. */
const RESERVED_ACTIONS = new Set([20, 21, 22]);
const ACTION_NAMES = new Map<number, ActionName>(Object.entries(ACTION).map(([k, v]) => [v, k as ActionName]));

export interface SessionFields {
  readonly farm: string;
  readonly listener: number;
  readonly service: number;
  readonly backend: number;
  /** One character per byte (latin1), so any key Pound sends goes back byte for byte. */
  readonly key: string;
}

/** One HTTP_SYNC frame. Keys and contents are byte strings (latin1). */
export type PoundFrame =
  | { readonly action: 'sync-request'; readonly farm: string }
  /** CLEAR_DATA: the farm is what counts; v1.0.0 left the ordinals uninitialised. */
  | { readonly action: 'clear'; readonly farm: string }
  | ({ readonly action: 'delete' } & SessionFields)
  | ({
      readonly action: 'add' | 'update' | 'write';
      /** The backend's address as text (Pound ignores it on SESS_WRITE). */
      readonly content: string;
      /** Last access, epoch seconds (Pound truncates it to 32 bits and sends a u64). */
      readonly lastAcc: number;
    } & SessionFields);

// ---- encoding ----

/** Why `s` cannot be a u8-length field of Pound's format, or undefined. */
export function fieldProblem(what: string, s: string, max = POUND_FIELD_MAX): string | undefined {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) return `${what} holds a character that is not one byte`;
  }
  if (s.length > max) return `${what} of ${s.length} bytes: Pound's sync format carries at most ${max} (a u8 length)`;
  return undefined;
}

/** Why a frame cannot be encoded, or undefined. */
export function frameProblem(f: PoundFrame): string | undefined {
  const farm = fieldProblem('farm name', f.farm);
  if (farm) return farm;
  if (f.action === 'sync-request' || f.action === 'clear') return undefined;
  for (const [what, v] of [['listener', f.listener], ['service', f.service], ['backend', f.backend]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) return `${what} ${v} is not a u32`;
  }
  const key = fieldProblem('key', f.key);
  if (key) return key;
  if (f.action === 'delete') return undefined;
  const content = fieldProblem('content', f.content);
  if (content) return content;
  if (!Number.isInteger(f.lastAcc) || f.lastAcc < 0 || f.lastAcc > 0xffffffff) return `last access ${f.lastAcc} is not epoch seconds in 32 bits`;
  return undefined;
}

/** The exact size of a frame as we encode it (ADD/UPDATE/WRITE 29+F+K+C, DELETE/CLEAR 20+F+K, SYNC_REQUEST 7+F). */
export function frameSize(f: PoundFrame): number {
  const farm = 7 + f.farm.length;
  if (f.action === 'sync-request') return farm;
  if (f.action === 'clear') return farm + 13;
  if (f.action === 'delete') return farm + 13 + f.key.length;
  return farm + 22 + f.key.length + f.content.length;
}

/**
 * Encodes one frame the way the format means it: the exact total length, u32 fields little-endian
 * (v1.0.0 shifted them the wrong way and kept only the low byte), every length byte present. Throws
 * a RangeError when a field does not fit (check frameProblem first).
 */
export function encodeFrame(f: PoundFrame): Buffer {
  const why = frameProblem(f);
  if (why) throw new RangeError(why);
  const size = frameSize(f);
  if (size > 0xffff) throw new RangeError(`frame of ${size} bytes does not fit the u16 length`);
  const b = Buffer.allocUnsafe(size);
  FRAME_MAGIC.copy(b, 0);
  b.writeUInt16LE(size, 3);
  b[5] = ACTION[f.action];
  let p = putField(b, 6, f.farm);
  if (f.action === 'sync-request') return b;
  const session = f.action === 'clear' ? { listener: 0, service: 0, backend: 0, key: '' } : f;
  b.writeUInt32LE(session.listener, p);
  b.writeUInt32LE(session.service, p + 4);
  b.writeUInt32LE(session.backend, p + 8);
  p = putField(b, p + 12, session.key);
  if (f.action === 'clear' || f.action === 'delete') return b;
  p = putField(b, p, f.content);
  b.writeUInt32LE(f.lastAcc, p);
  b.writeUInt32LE(0, p + 4);
  return b;
}

function putField(b: Buffer, at: number, s: string): number {
  b[at] = s.length;
  b.write(s, at + 1, 'latin1');
  return at + 1 + s.length;
}

// ---- decoding ----

export type DecodeResult =
  | { readonly kind: 'frame'; readonly frame: PoundFrame; readonly end: number }
  /** Not enough bytes yet to tell where this frame ends. */
  | { readonly kind: 'more' }
  /** No layout fits: the caller skips to the next frame header. */
  | { readonly kind: 'bad'; readonly why: string };

/** Whether the bytes at `at` are (the start of, when the buffer ends early) a frame header. */
export function magicAt(b: Buffer, at: number): boolean {
  for (let i = 0; i < 3 && at + i < b.length; i++) if (b[at + i] !== FRAME_MAGIC[i]) return false;
  return true;
}

/** Index of the next complete magic at or after `from`, or -1. */
export function nextMagic(b: Buffer, from: number): number {
  return b.indexOf(FRAME_MAGIC, from);
}

/** One field's place in the buffer: [start, end). */
type Span = readonly [number, number];
type Walk = { readonly kind: 'ok'; readonly end: number } | { readonly kind: 'more' } | { readonly kind: 'bad'; readonly why: string };

const MORE: Walk = { kind: 'more' };
const bad = (why: string): Walk => ({ kind: 'bad', why });

/**
 * Lengths to try for a field whose length byte is `n`: as written, omitted (Pound drops the byte and
 * the data of an empty field: the byte read is then the next field's), then n + 256, n + 512, ...
 * (Pound wrote the length mod 256). null stands for "omitted"; `omittedFirst` when a frame header
 * right there says the field is absent.
 */
function* lengths(n: number, omittedFirst: boolean): Generator<number | null> {
  if (omittedFirst) yield null;
  yield n;
  if (!omittedFirst) yield null;
  for (let l = n + 256; l <= DECODE_FIELD_MAX; l += 256) yield l;
}

function farmChars(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i]! < 0x21 || b[i]! > 0x7e) return false;
  return true;
}

/** Printable ASCII (the backend's address as text), checked as far as the bytes have arrived. */
function printableUpTo(b: Buffer, from: number, to: number): boolean {
  const stop = Math.min(to, b.length);
  for (let i = from; i < stop; i++) if (b[i]! < 0x20 || b[i]! > 0x7e) return false;
  return true;
}

/** Candidate layouts of one frame, walked field by field (a generator per field, likeliest first). */
class Walker {
  farm: Span | null = null;
  ordinals = 0;
  key: Span | null = null;
  content: Span | null = null;
  lastAcc = 0;

  constructor(
    private readonly b: Buffer,
    private readonly action: ActionName,
    /** No more bytes will come: the end of the buffer is the end of the stream. */
    private readonly final: boolean,
  ) {}

  /**
   * A frame's end is confirmed by the header of the next one. At the end of the data it is not (a
   * long field's length may have been cut mod 256), so the frame waits for more bytes, or for the
   * caller to declare the stream quiet (final).
   */
  private tail(end: number): Walk {
    const b = this.b;
    if (!magicAt(b, end)) return bad('not followed by a frame header');
    return b.length - end >= FRAME_MAGIC.length || this.final ? { kind: 'ok', end } : MORE;
  }

  /** Bytes still to come: wait, unless none will. */
  private short(): Walk {
    return this.final ? bad('cut short') : MORE;
  }

  *frame(p: number): Generator<Walk> {
    const b = this.b;
    if (p >= b.length) return yield this.short();
    for (const present of [true, false]) {
      let q = p;
      this.farm = null;
      if (present) {
        const n = b[q]!;
        const end = q + 1 + n;
        if (!farmChars(b, q + 1, Math.min(end, b.length))) {
          yield bad('farm name not printable');
          continue;
        }
        if (end > b.length) {
          yield this.short();
          continue;
        }
        this.farm = [q + 1, end];
        q = end;
      }
      if (this.action === 'sync-request') {
        yield this.tail(q);
        continue;
      }
      if (q + 12 > b.length) {
        yield this.short();
        continue;
      }
      if (this.action !== 'clear') {
        const [l, sv, be] = [b.readUInt32LE(q), b.readUInt32LE(q + 4), b.readUInt32LE(q + 8)];
        if (l >= ORDINAL_LIMIT || sv >= ORDINAL_LIMIT || be >= ORDINAL_LIMIT) {
          yield bad(`implausible ordinals ${l}/${sv}/${be}`);
          continue;
        }
      }
      this.ordinals = q;
      yield* this.sessionKey(q + 12);
    }
  }

  private *sessionKey(p: number): Generator<Walk> {
    const b = this.b;
    if (p >= b.length) return yield this.short();
    const endsHere = this.action === 'delete' || this.action === 'clear';
    // A DELETE whose key Pound omitted is followed at once by the next frame's header.
    const headerHere = endsHere && b.length - p >= FRAME_MAGIC.length && magicAt(b, p);
    for (const n of lengths(b[p]!, headerHere)) {
      let q = p;
      this.key = null;
      if (n !== null) {
        if (q + 1 + n > b.length) {
          yield this.short();
          continue;
        }
        this.key = [q + 1, q + 1 + n];
        q += 1 + n;
      }
      if (endsHere) yield this.tail(q);
      else yield* this.sessionContent(q);
    }
  }

  private *sessionContent(p: number): Generator<Walk> {
    const b = this.b;
    if (p >= b.length) return yield this.short();
    for (const n of lengths(b[p]!, false)) {
      let q = p;
      this.content = null;
      if (n !== null) {
        if (!printableUpTo(b, q + 1, q + 1 + n)) {
          yield bad('content is not an address as text');
          continue;
        }
        this.content = [q + 1, q + 1 + n];
        q += 1 + n;
      }
      // The upper half of last_acc is zero (Pound sends 32 bits in a u64): what has arrived tells.
      if (b.subarray(q + 4, Math.min(q + 8, b.length)).some((x) => x !== 0)) {
        yield bad('last access over 32 bits');
        continue;
      }
      if (q + 8 > b.length) {
        yield this.short();
        continue;
      }
      this.lastAcc = b.readUInt32LE(q);
      const w = this.tail(q + 8);
      // `u8 n, n printable bytes, last_acc` reads as key + omitted content or as omitted key + content:
      // Pound never sends an empty content (it is the backend's address), so the second reading wins.
      const k = this.key;
      if (w.kind === 'ok' && n === null && k !== null && k[1] === p && k[1] - k[0] <= POUND_FIELD_MAX && printableUpTo(b, k[0], k[1])) {
        this.content = k;
        this.key = null;
      }
      yield w;
    }
  }

  build(): PoundFrame {
    const b = this.b;
    const text = (s: Span | null): string => (s === null ? '' : b.toString('latin1', s[0], s[1]));
    const farm = text(this.farm);
    const action = this.action;
    if (action === 'sync-request' || action === 'clear') return { action, farm };
    const o = this.ordinals;
    const fields = { farm, listener: b.readUInt32LE(o), service: b.readUInt32LE(o + 4), backend: b.readUInt32LE(o + 8), key: text(this.key) };
    if (action === 'delete') return { action, ...fields };
    return { action, ...fields, content: text(this.content), lastAcc: this.lastAcc };
  }
}

/**
 * Decodes the frame at `at` (the caller has seen its magic), walking candidate layouts in order of
 * likelihood; the first that fits wins. `more` while a likelier layout still waits for bytes; with
 * `final` (nothing more will come) the end of the buffer ends the stream, and `more` never comes back.
 */
export function decodeFrameAt(b: Buffer, at: number, final = false): DecodeResult {
  if (b.length - at < HEADER_BYTES + 1) return final ? { kind: 'bad', why: 'frame cut short' } : { kind: 'more' };
  if (!magicAt(b, at)) return { kind: 'bad', why: 'no frame header' };
  const code = b[at + 5]!;
  const action = ACTION_NAMES.get(code);
  if (action === undefined) {
    return { kind: 'bad', why: RESERVED_ACTIONS.has(code) ? `reserved action ${code} (no layout defined), ignored` : `unknown action ${code}` };
  }
  const w = new Walker(b, action, final);
  let first: string | undefined;
  for (const step of w.frame(at + 6)) {
    if (step.kind === 'more') return { kind: 'more' };
    if (step.kind === 'ok') return { kind: 'frame', frame: w.build(), end: step.end };
    first ??= step.why;
  }
  return { kind: 'bad', why: `${action} frame: ${first ?? 'no layout fits'}` };
}
