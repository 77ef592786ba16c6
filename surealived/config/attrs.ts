// Typed parsing of XML attribute values (the original's STRING/PORT/UINT/INT/BOOL, plus seconds,
// thresholds and names). Pure functions: text in, value or reason out; reasons quote the value.

import type { Threshold } from './model.js';

export type Parsed<T> =
  | { readonly ok: true; readonly value: T; readonly warning?: string }
  | { readonly ok: false; readonly reason: string };

const ok = <T>(value: T, warning?: string): Parsed<T> => (warning === undefined ? { ok: true, value } : { ok: true, value, warning });
const fail = <T>(reason: string): Parsed<T> => ({ ok: false, reason });
/** Quoted for messages; DEL and C1 controls, which JSON leaves raw, are escaped too. */
export const quote = (text: string): string => JSON.stringify(text).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const q = quote;

/**
 * A decimal integer, optionally signed, surrounding whitespace ignored. Compatibility choice: the
 * original used atoi, which reads garbage as 0 and "80x" as 80; here any garbage is an error.
 */
export function parseInteger(text: string): Parsed<number> {
  if (!/^\s*[+-]?\d+\s*$/.test(text)) return fail(`${q(text)} is not an integer`);
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n)) return fail(`${q(text)} is out of range`);
  return ok(n === 0 ? 0 : n); // no -0
}

/** An integer in min..max; `what` names the expectation in the reason ("a port", "a weight"). */
export function parseIntRange(text: string, min: number, max: number, what = 'a number'): Parsed<number> {
  const n = parseInteger(text);
  if (!n.ok) return n;
  if (n.value < min || n.value > max) return fail(`${q(text)} is not ${what} (${min}..${max})`);
  return n;
}

export function parsePort(text: string): Parsed<number> {
  return parseIntRange(text, 0, 65535, 'a port');
}

/** UINT: non-negative. The original turned a negative optional value into 0 with a warning; here it is an error. */
export function parseUint(text: string, max = 0xffffffff): Parsed<number> {
  return parseIntRange(text, 0, max, 'a non-negative integer');
}

/** 32-bit signed INT (the original did no check at all). */
export function parseInt32(text: string): Parsed<number> {
  return parseIntRange(text, -0x80000000, 0x7fffffff, 'an integer');
}

/** The original's BOOL: case-insensitive true/on/1 or false/off/0. */
export function parseBool(text: string): Parsed<boolean> {
  const t = text.trim().toLowerCase();
  if (t === 'true' || t === 'on' || t === '1') return ok(true);
  if (t === 'false' || t === 'off' || t === '0') return ok(false);
  return fail(`${q(text)} is not a boolean (true/on/1 or false/off/0)`);
}

/**
 * An "atoi != 0" flag (remove_on_fail, debugcomm, logmicro, ops). Compatibility choice: the words
 * true/on/false/off are accepted with their obvious meaning, with a warning because the original's
 * atoi read every word as 0 (false); negative numbers and other garbage are errors.
 */
export function parseFlag(text: string): Parsed<boolean> {
  const n = parseInteger(text);
  if (n.ok) return n.value < 0 ? fail(`${q(text)} is not a flag (0/1)`) : ok(n.value !== 0);
  const b = parseBool(text);
  if (b.ok) return ok(b.value, `${q(text)} read as ${b.value ? 1 : 0}; the original read every word as 0`);
  return fail(`${q(text)} is not a flag (0/1)`);
}

/**
 * Seconds, integral or decimal (`0.5`: an extension — the original's atoi read it as 0).
 * `minExclusive` makes the lower bound exclusive (timeout must be > 0).
 */
export function parseSeconds(text: string, min: number, max: number, minExclusive = false): Parsed<number> {
  if (!/^\s*\+?(\d+(\.\d*)?|\.\d+)\s*$/.test(text)) return fail(`${q(text)} is not a number of seconds`);
  const n = Number(text.trim());
  const low = minExclusive ? n <= min : n < min;
  if (low || n > max) return fail(`${q(text)} is out of range (${minExclusive ? `> ${min}` : `${min}`}..${max} seconds)`);
  return ok(n);
}

/** notify_min_reals / notify_min_weight: an integer, or an integer followed by `%` (0..100). */
export function parseThreshold(text: string): Parsed<Threshold> {
  const m = /^\s*(\d+)\s*(%?)\s*$/.exec(text);
  if (!m) return fail(`${q(text)} is not a count or a percentage (e.g. 4 or 50%)`);
  const value = Number(m[1]);
  const percent = m[2] === '%';
  if (!Number.isSafeInteger(value) || (percent && value > 100)) return fail(`${q(text)} is out of range`);
  return ok({ value, percent });
}

/**
 * A percentage 0..100, integral or decimal, optionally followed by `%` (`panic="50"`, `"12.5%"`).
 */
export function parsePercent(text: string): Parsed<number> {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(text);
  if (!m) return fail(`${q(text)} is not a percentage (e.g. 50 or 50%)`);
  const value = Number(m[1]);
  if (!(value >= 0 && value <= 100)) return fail(`${q(text)} is out of range (0..100%)`);
  return ok(value);
}

/** A string limited to `maxBytes` bytes (UTF-8), as the original's fixed buffers were. */
export function checkLength(text: string, maxBytes: number): string | undefined {
  const n = Buffer.byteLength(text, 'utf8');
  return n > maxBytes ? `value is ${n} bytes long, at most ${maxBytes} allowed` : undefined;
}

export const NAME_MAX_BYTES = 127;

/**
 * Virtual and real names: 1..127 bytes, no whitespace, `=`, `/` or control characters. Beyond the
 * original (which checked nothing): names are written into space- and `=`-delimited files
 * (ipvsfull.cfg, dumps, diffs, control replies) and into file names (`<vname>_<rname>`).
 */
export function checkName(text: string): string | undefined {
  if (text.length === 0) return 'a name must not be empty';
  const long = checkLength(text, NAME_MAX_BYTES);
  if (long !== undefined) return `${q(text)}: ${long}`;
  // eslint-disable-next-line no-control-regex
  const bad = /[\s=/\u0000-\u001f\u007f]/u.exec(text);
  if (bad) {
    const c = bad[0];
    const shown = /\s/u.test(c) ? 'whitespace' : c === '=' || c === '/' ? `'${c}'` : 'control characters';
    return `${q(text)}: a name must not contain ${shown}`;
  }
  return undefined;
}
