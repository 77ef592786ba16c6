// Parses the lines of /proc/net/xt_recent/<table> (kernel `recent_seq_show`) into plain values, strictly:
// the original daemon matched five unanchored regexes, lost every IPv6 entry and died on an empty stamp
// list (spec 5.2). Pure; the poller and the writer do the reading.
//
// Line shape (spec 5.1, anchors 5a):
//   src=<addr> ttl: <u8> last_seen: <jiffies> oldest_pkt: <index> <s0>, <s1>, ..., <sN-1>
// IPv6 is printed fully expanded (%pI6). `oldest_pkt` is the ring write cursor, 1-based: the newest
// stamp is stamps[index-1] (= last_seen) and, once the ring has wrapped, the oldest is stamps[index].

import { canonicalAddr, type Family } from '../model.js';

/** The most stamps one entry can hold (XT_RECENT_MAX_NSTAMPS; older kernels stopped at 255). */
export const RECENT_MAX_STAMPS = 256;

/** One entry as the kernel printed it; stamps are raw jiffies in ring array order. */
export interface ParsedRecentLine {
  /** Canonical address text (dotted quad, or RFC 5952 IPv6). */
  readonly addr: string;
  readonly family: Family;
  readonly ttl: number;
  readonly lastSeen: number;
  /** The ring write cursor the kernel calls `oldest_pkt` (1-based, at most the number of stamps). */
  readonly index: number;
  /** Raw jiffies, ring array order (not chronological once the ring has wrapped). */
  readonly stamps: readonly number[];
}

/** A line of a recent table that is not what the kernel prints, with where and why. */
export class RecentLineError extends Error {
  constructor(
    readonly table: string,
    /** 1-based line number within the table file as read. */
    readonly line: number,
    readonly why: string,
  ) {
    super(`${table}:${line}: ${why}`);
    this.name = 'RecentLineError';
  }
}

const DIGITS = /^[0-9]+$/;

/**
 * The raw `src=` token of a line, without validating anything else, or undefined. The poller keys its
 * snapshot on it so that an unchanged entry costs a substring and a string compare, not a parse.
 */
export function rawSrc(line: string): string | undefined {
  if (!line.startsWith('src=')) return undefined;
  const end = line.indexOf(' ', 4);
  return end > 4 ? line.slice(4, end) : undefined;
}

/** Parses one line (without its newline). Throws RecentLineError naming table:line and why. */
export function parseRecentLine(table: string, lineNo: number, text: string): ParsedRecentLine {
  const fail = (why: string): never => {
    throw new RecentLineError(table, lineNo, why);
  };
  let pos = 0;
  /** Consumes the literal `label` at pos, then a run of non-space characters; returns that run. */
  const field = (label: string, what: string): string => {
    if (!text.startsWith(label, pos)) fail(`expected "${label.trim()}" ${what}, found ${quote(text.slice(pos, pos + 24))}`);
    pos += label.length;
    const end = text.indexOf(' ', pos);
    const tok = text.slice(pos, end === -1 ? text.length : end);
    pos += tok.length;
    return tok;
  };
  const number = (tok: string, name: string): number => {
    if (!DIGITS.test(tok)) fail(`${name} ${quote(tok)} is not a decimal number`);
    const n = Number(tok);
    // Kernel values are unsigned long; beyond 2^53 a JS number would silently round.
    if (!Number.isSafeInteger(n)) fail(`${name} ${tok} is beyond 2^53`);
    return n;
  };

  if (text.length === 0) fail('empty line');
  const srcTok = field('src=', 'at the start of the line');
  if (srcTok.length === 0) fail('empty address after "src="');
  const ip = canonicalAddr(srcTok);
  if (ip === undefined || srcTok !== srcTok.trim()) fail(`bad address ${quote(srcTok)}`);
  const ttl = number(field(' ttl: ', 'after the address'), 'ttl');
  if (ttl > 255) fail(`ttl ${ttl} is out of range 0-255`);
  const lastSeen = number(field(' last_seen: ', 'after the ttl'), 'last_seen');
  let index = number(field(' oldest_pkt: ', 'after last_seen'), 'oldest_pkt');
  if (pos >= text.length) fail('empty stamp list');
  if (text[pos] !== ' ') fail(`expected a space before the stamps, found ${quote(text.slice(pos, pos + 24))}`);
  const tail = text.slice(pos + 1);
  if (tail.length === 0) fail('empty stamp list');
  const toks = tail.split(', ');
  if (toks.length > RECENT_MAX_STAMPS) fail(`${toks.length} stamps, more than a ring holds (${RECENT_MAX_STAMPS})`);
  const stamps = toks.map((t, i) => number(t, `stamp ${i + 1}`));
  // The kernel keeps 1 <= index <= nstamps (it masks the cursor before each store, then increments),
  // except that the cursor is a u8: a full 256-stamp ring (--hitcount over 128) shows it as 0.
  if (index === 0 && stamps.length === RECENT_MAX_STAMPS) index = RECENT_MAX_STAMPS;
  if (index === 0) fail('oldest_pkt 0: the ring cursor is 1-based (0 only on a full 256-stamp ring)');
  if (index > stamps.length) fail(`oldest_pkt ${index} is beyond the ring of ${stamps.length} stamps`);
  if (stamps[index - 1] !== lastSeen) {
    fail(`last_seen ${lastSeen} is not the stamp before oldest_pkt (${stamps[index - 1]})`);
  }
  if (stamps.every((s) => s === 0)) fail('every stamp is 0 (no hit time)');
  return { addr: ip!.addr, family: ip!.family, ttl, lastSeen, index, stamps };
}

/**
 * The stamps oldest first: the ring read from the cursor on, zero stamps dropped (the original did the
 * same; only a patched-module write can leave one). Sorted as a last resort when a patched-module
 * write left the ring out of order, so that hits are always ascending as the model requires.
 */
export function chronologicalStamps(p: Pick<ParsedRecentLine, 'index' | 'stamps'>): number[] {
  const out = p.stamps.slice(p.index).concat(p.stamps.slice(0, p.index)).filter((s) => s !== 0);
  for (let i = 1; i < out.length; i++) {
    if (out[i]! < out[i - 1]!) return out.sort((a, b) => a - b);
  }
  return out;
}

/** Every line of one table file; malformed lines come back as errors, never thrown. */
export function parseRecentTable(
  table: string,
  text: string,
): { entries: ParsedRecentLine[]; errors: RecentLineError[] } {
  const entries: ParsedRecentLine[] = [];
  const errors: RecentLineError[] = [];
  const lines = text.split('\n');
  // The file ends with a newline, so the last piece is empty; an unterminated last line is still parsed.
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((l, i) => {
    try {
      entries.push(parseRecentLine(table, i + 1, l));
    } catch (e) {
      if (e instanceof RecentLineError) errors.push(e);
      else throw e;
    }
  });
  return { entries, errors };
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);
}
