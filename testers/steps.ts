// The tcp tester's send/expect steps (HAProxy's tcp-check send/expect): the attributes
// send1/expect1 ... send8/expect8 parsed once at config load, and expectations judged against the
// bytes received. Pure: no sockets here (testers/tcp.ts runs the steps on a probe connection).

import { AttrError, type AttrSpec, type AttrValues } from './contract.js';

/** Numbered step pairs: sendN is written, then expectN awaited, for N = 1..MAX_STEPS. */
export const MAX_STEPS = 8;

/** Bytes a regex expectation may search before the step fails (the http tester reads as much body). */
export const EXPECT_LIMIT = 64 * 1024;

/** What an expectation looks for in the bytes received since the last match (or the last send). */
export type Matcher =
  /** text or hex: the reply must begin with these bytes. Decided as soon as the bytes differ. */
  | { readonly kind: 'bytes'; readonly bytes: Buffer; readonly shown: string }
  /** re: a JavaScript regular expression searched in the bytes (read as Latin-1: \xHH is a byte). */
  | { readonly kind: 'regex'; readonly re: RegExp; readonly shown: string };

export type Step =
  | { readonly kind: 'send'; readonly n: number; readonly attr: string; readonly data: Buffer }
  | { readonly kind: 'expect'; readonly n: number; readonly attr: string; readonly match: Matcher };

export type Judgement =
  /** Matched: the bytes up to `end` are consumed. */
  | { readonly kind: 'match'; readonly end: number }
  /** Not decided yet: more bytes are needed. */
  | { readonly kind: 'wait' }
  | { readonly kind: 'fail'; readonly why: string };

const sendDoc = (n: number): string =>
  n === 1
    ? 'Step 1: bytes to send once connected: text as written (line ends as &#13;&#10;), or hex:50494e470d0a for bytes. Bytes not yet read are discarded first.'
    : `Step ${n}: bytes to send after step ${n - 1}, written as send1.`;
const expectDoc = (n: number): string =>
  `Step ${n}: what must come back${n === 1 ? ' (alone: a banner)' : ''}: text or hex:2b4f4b the reply begins with, or re:<regex> found in it (JavaScript syntax, bytes as \\xHH).`;

/** send1, expect1, send2, expect2, ... in the order the steps run. */
export const STEP_ATTRS: readonly AttrSpec[] = Array.from({ length: MAX_STEPS }, (_, i): AttrSpec[] => [
  { name: `send${i + 1}`, type: 'string', maxLength: 4095, doc: sendDoc(i + 1) },
  { name: `expect${i + 1}`, type: 'string', maxLength: 4095, doc: expectDoc(i + 1) },
]).flat();

/**
 * The steps configured in `values`, in order; empty when none is (the plain connect check).
 * An absent or empty attribute is no step, so a real can drop one of its tester's steps with
 * sendN="". Throws AttrError naming the attribute and the step.
 */
export function parseSteps(values: AttrValues): Step[] {
  const steps: Step[] = [];
  for (let n = 1; n <= MAX_STEPS; n++) {
    const send = values[`send${n}`];
    if (typeof send === 'string' && send !== '') steps.push({ kind: 'send', n, attr: `send${n}`, data: parseSend(send, n) });
    const expect = values[`expect${n}`];
    if (typeof expect === 'string' && expect !== '') steps.push({ kind: 'expect', n, attr: `expect${n}`, match: parseExpect(expect, n) });
  }
  return steps;
}

type Kind = 'text' | 'hex' | 're';

/** The kind prefix of a value: hex:, re:, text: (which only protects text starting with a prefix), or none (text). */
function splitKind(value: string): { kind: Kind; body: string } {
  for (const kind of ['hex', 're', 'text'] as const) {
    if (value.startsWith(`${kind}:`)) return { kind, body: value.slice(kind.length + 1) };
  }
  return { kind: 'text', body: value };
}

function stepError(attr: string, n: number, why: string): AttrError {
  return new AttrError(attr, `step ${n}: ${why}`);
}

/** Bytes of `sendN`. */
export function parseSend(value: string, n: number): Buffer {
  const attr = `send${n}`;
  const { kind, body } = splitKind(value);
  if (kind === 're') throw stepError(attr, n, `a send cannot be a regular expression (re:); write text, or hex:... for bytes`);
  const bytes = kind === 'hex' ? parseHex(body, attr, n) : Buffer.from(body, 'utf8');
  if (bytes.length === 0) throw stepError(attr, n, `nothing to send after "${kind}:"`);
  return bytes;
}

/** The matcher of `expectN`. */
export function parseExpect(value: string, n: number): Matcher {
  const attr = `expect${n}`;
  const { kind, body } = splitKind(value);
  if (kind === 're') return { kind: 'regex', re: parseRegex(body, attr, n), shown: `re:${body}` };
  const bytes = kind === 'hex' ? parseHex(body, attr, n) : Buffer.from(body, 'utf8');
  if (bytes.length === 0) throw stepError(attr, n, `nothing to expect after "${kind}:"`);
  return { kind: 'bytes', bytes, shown: kind === 'hex' ? `hex:${bytes.toString('hex')}` : showBytes(bytes) };
}

/** hex:... -> bytes: pairs of hex digits, whitespace between them ignored. */
function parseHex(body: string, attr: string, n: number): Buffer {
  const digits = body.replace(/\s+/g, '');
  const bad = /[^0-9a-fA-F]/.exec(digits);
  if (bad !== null) throw stepError(attr, n, `hex: ${JSON.stringify(bad[0])} is not a hex digit (write bytes as pairs: hex:2b504f4e47)`);
  if (digits.length % 2 !== 0) throw stepError(attr, n, `hex: odd number of hex digits (${digits.length}); every byte is two digits`);
  return Buffer.from(digits, 'hex');
}

function parseRegex(source: string, attr: string, n: number): RegExp {
  if (source === '') throw stepError(attr, n, 'empty regular expression after "re:"');
  // Received bytes are matched as Latin-1 text, one character per byte: a non-ASCII character in
  // the pattern would stand for one byte, not for its UTF-8 encoding. Bytes are written \xHH.
  const nonAscii = /[^\u0000-\u007f]/.exec(source);
  if (nonAscii !== null) throw stepError(attr, n, `re: ${JSON.stringify(nonAscii[0])} is not ASCII; match bytes with \\xHH`);
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (err) {
    throw stepError(attr, n, `re: invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
  if (re.test('')) throw stepError(attr, n, `re: /${source}/ matches an empty reply, so it would pass whatever the server says`);
  return re;
}

/**
 * Judges an expectation against the bytes received since the last match or send. `closed`: the
 * server has closed its side, no more bytes will come.
 */
export function judge(m: Matcher, received: Buffer, closed: boolean): Judgement {
  if (m.kind === 'bytes') {
    const want = m.bytes;
    const n = Math.min(want.length, received.length);
    if (received.compare(want, 0, n, 0, n) !== 0) return { kind: 'fail', why: `expected ${m.shown}, received ${showBytes(received)}` };
    if (n === want.length) return { kind: 'match', end: n };
  } else {
    const hit = m.re.exec(received.toString('latin1'));
    if (hit !== null) return { kind: 'match', end: hit.index + hit[0].length };
    if (received.length >= EXPECT_LIMIT) return { kind: 'fail', why: `no match for ${m.shown} in the first ${EXPECT_LIMIT} bytes` };
  }
  if (closed) return { kind: 'fail', why: `connection closed by the server, expected ${m.shown}, received ${received.length === 0 ? 'nothing' : showBytes(received)}` };
  return { kind: 'wait' };
}

/** What an expectation still waits for at the deadline. */
export function waitingDetail(m: Matcher, received: Buffer, timeoutMs: number): string {
  return `no ${m.shown} within ${timeoutMs} ms, received ${received.length === 0 ? 'nothing' : showBytes(received)}`;
}

const SHOW_MAX = 64;

/** Bytes for a log line: quoted, printable ASCII as is, \r \n \t and \xHH for the rest, at most 64 bytes. */
export function showBytes(data: Buffer, max = SHOW_MAX): string {
  let out = '';
  const end = Math.min(data.length, max);
  for (let i = 0; i < end; i++) {
    const b = data[i]!;
    if (b === 0x0d) out += '\\r';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x09) out += '\\t';
    else if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return `"${out}"${data.length > max ? `... (${data.length} bytes)` : ''}`;
}
