// The hand-off files surealived writes for ipvssync (spec 8.3 ipvsfull.cfg, 8.4 diff lines), parsed
// into the desired table, plus the diff-line semantics on that table. Pure: text in, data or `file:line: reason` out.
// IPv6 entries come in two forms: `v6virtual`/`v6real`/`cmd=v6addreal`... (written now: the original
// ipvssync skips them whole) and `virtual`/`real`/`cmd=addreal` with IPv6 addresses (written by
// earlier versions, maybe still on disk during an upgrade). Both are read.

import { basename, dirname, resolve } from 'node:path';
import { DOTTED_QUAD_PATTERN, isDottedQuad, parseAddr, parsePort, parseUint, PERSISTENCE_MAX, U32_MAX, WEIGHT_MAX, type Addr } from './address.js';
import {
  formatServiceKey,
  fullNetmask,
  hostPort,
  serviceId,
  destId,
  type Destination,
  type Entry,
  type Family,
  type ForwardMethod,
  type Service,
  type ServiceKey,
  type Table,
} from './types.js';

export interface Real {
  readonly name: string;
  /** Where the real was last defined (`file:line`), for messages. */
  readonly where: string;
  readonly dest: Destination;
}

export interface Virtual {
  readonly name: string;
  readonly where: string;
  readonly service: Service;
  /** The virtual's `vrt`: the forwarding method of reals without `rrt`. */
  readonly forward: ForwardMethod;
  readonly reals: readonly Real[];
}

/** The desired state as the hand-off describes it, in file order. */
export interface HandoffConfig {
  readonly virtuals: readonly Virtual[];
  /** The `DIFF file=` target: the diff file to tail next, or null when the full file names none. */
  readonly diffFile: string | null;
}

export type FullParse =
  | { readonly ok: true; readonly config: HandoffConfig }
  | { readonly ok: false; readonly errors: readonly string[] };

export type DiffCmd = 'addreal' | 'chgreal' | 'delreal';

/** The keyword prefix of an IPv6 entry (see surealived/handoff/format.ts for why). */
const V6 = 'v6';
/** The cmd= values of diff lines, both forms, to the command and whether it is the v6 form. */
const DIFF_CMDS: ReadonlyMap<string, { readonly cmd: DiffCmd; readonly v6: boolean }> = new Map(
  (['addreal', 'chgreal', 'delreal'] as const).flatMap((cmd): [string, { cmd: DiffCmd; v6: boolean }][] => [
    [cmd, { cmd, v6: false }],
    [`${V6}${cmd}`, { cmd, v6: true }],
  ]),
);

/**
 * Why a v6 keyword does not fit its entry, or undefined. The keyword marks an entry with an IPv6
 * address on either side (its virtual's or its real's); on an all-IPv4 one it would hide that entry
 * from the original ipvssync for nothing: a writer's mistake, refused.
 */
function v6Mismatch(keyword: string, service: ServiceKey, real: Family | undefined): string | undefined {
  if (service.family === 'inet6' || real === 'inet6') return undefined;
  return `${keyword} without an IPv6 address (an IPv4 entry is written without the '${V6}' prefix)`;
}

export type DiffLine =
  | { readonly kind: 'empty' }
  | { readonly kind: 'chain'; readonly file: string }
  | {
      readonly kind: 'real';
      readonly cmd: DiffCmd;
      readonly vname: string;
      readonly service: ServiceKey;
      readonly rname: string;
      readonly addr: Addr;
      readonly port: number;
      readonly weight: number;
      readonly lowerThreshold: number;
      readonly upperThreshold: number;
      /** `rrt`, when the real's method differs from its virtual's. */
      readonly rrt: ForwardMethod | undefined;
    };

export type DiffLineParse = { readonly ok: true; readonly line: DiffLine } | { readonly ok: false; readonly reason: string };

/**
 * Service id -> position in `virtuals`. Built once per virtuals array (by parseFullFile as it
 * parses, or on first use) and handed on to the arrays applyDiffLines derives from it (same
 * virtuals, same order), so a diff line costs O(reals of its virtual), not O(table): with 5,000
 * virtuals, rebuilding ids per line dominated the change latency, and building them in the first
 * diff pass after a load delayed it.
 */
const indexCache = new WeakMap<readonly Virtual[], ReadonlyMap<string, number>>();

export const EMPTY_CONFIG: HandoffConfig = { virtuals: [], diffFile: null };

const RT: Readonly<Record<string, ForwardMethod>> = { dr: 'route', masq: 'masq', tun: 'tunnel' };
const DIFF_NAME = /^diff_sync\.(\d+)$/;

/** Why a `DIFF file=` target may not be followed, or undefined when it is a diff file of `diffDir`. */
export function diffTargetProblem(target: string, diffDir: string): string | undefined {
  if (target === '') return 'empty DIFF target';
  if (!DIFF_NAME.test(basename(target))) return `DIFF target '${target}' is not named diff_sync.<digits>`;
  if (resolve(dirname(target)) !== resolve(diffDir)) return `DIFF target '${target}' is outside diff_sync_dir '${diffDir}'`;
  return undefined;
}

/** The number in `diff_sync.<digits>`, or undefined for any other name. */
export function diffNumber(name: string): bigint | undefined {
  const m = DIFF_NAME.exec(name);
  return m ? BigInt(m[1]!) : undefined;
}

/** The keys of hand-off lines that the parser reads; any other key is accepted and ignored. */
const KEYS = [
  'cmd', 'vname', 'vproto', 'vaddr', 'vport', 'vfwmark', 'vrt', 'vsched', 'vpers', 'vops',
  'rname', 'raddr', 'rport', 'rweight', 'ru_thresh', 'rl_thresh', 'rrt',
] as const;
type Key = (typeof KEYS)[number];
const KEY_SLOT = Object.fromEntries(KEYS.map((k, i) => [k, i])) as Record<Key, number>;

/** Known keys by length, first, second and last character (unique for KEYS), then checked in full. */
const keySig = (len: number, c0: number, c1: number, cl: number): number => ((len * 256 + c0) * 256 + c1) * 256 + cl;
const SLOT_BY_SIG = new Map(KEYS.map((k, i) => [keySig(k.length, k.charCodeAt(0), k.charCodeAt(1), k.charCodeAt(k.length - 1)), i]));

function slotOf(text: string, start: number, len: number): number {
  if (len < 3 || len > 9) return -1;
  const c0 = text.charCodeAt(start);
  const c1 = text.charCodeAt(start + 1);
  const cl = text.charCodeAt(start + len - 1);
  if ((c0 | c1 | cl) > 255) return -1;
  const k = SLOT_BY_SIG.get(keySig(len, c0, c1, cl));
  return k !== undefined && text.startsWith(KEYS[k]!, start) ? k : -1;
}

const isBlank = (c: number): boolean => c === 32 || c === 9;

/** String.prototype.trim's whitespace (the line terminators aside, which never occur inside a line). */
function isTrimmed(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

/**
 * The `key=value` tokens of one line, as positions in the text: lines are scanned in place (a
 * 100k-line hand-off must not become 100k line strings, token arrays and maps). Reused line to line.
 */
class Fields {
  private text = '';
  private readonly starts = new Int32Array(KEYS.length);
  private readonly ends = new Int32Array(KEYS.length);
  /** Keys the parser does not read, kept only to refuse duplicates. */
  private readonly others = new Set<string>();

  /** Reads the tokens of text[from, to) (already trimmed); a reason when one is not `key=value`. */
  scan(text: string, from: number, to: number): string | undefined {
    this.text = text;
    this.starts.fill(-1);
    if (this.others.size > 0) this.others.clear();
    let i = from;
    while (i < to) {
      while (i < to && isBlank(text.charCodeAt(i))) i++;
      if (i >= to) break;
      const ts = i;
      let eq = -1;
      while (i < to && !isBlank(text.charCodeAt(i))) {
        if (eq < 0 && text.charCodeAt(i) === 61) eq = i;
        i++;
      }
      if (eq <= ts) return `bad token '${text.slice(ts, i)}' (key=value expected)`;
      const k = slotOf(text, ts, eq - ts);
      if (k >= 0) {
        if (this.starts[k]! >= 0) return `duplicate key '${KEYS[k]}'`;
        this.starts[k] = eq + 1;
        this.ends[k] = i;
      } else {
        const key = text.slice(ts, eq);
        if (this.others.has(key)) return `duplicate key '${key}'`;
        this.others.add(key);
      }
    }
    return undefined;
  }

  get(key: Key): string | undefined {
    const k = KEY_SLOT[key];
    const s = this.starts[k]!;
    return s < 0 ? undefined : this.text.slice(s, this.ends[k]);
  }

  /** The value as a decimal number of 1..10 digits, -1 when absent, -2 when not such a number. */
  digits(key: Key): number {
    const k = KEY_SLOT[key];
    const s = this.starts[k]!;
    if (s < 0) return -1;
    const e = this.ends[k]!;
    if (e === s || e - s > 10) return -2;
    let n = 0;
    for (let i = s; i < e; i++) {
      const c = this.text.charCodeAt(i);
      if (c < 48 || c > 57) return -2;
      n = n * 10 + (c - 48);
    }
    return n;
  }
}

const fieldsOf = new Fields();

/** Where text[from, to) starts and ends with trim()'s whitespace removed. */
function trimStart(text: string, from: number, to: number): number {
  while (from < to && isTrimmed(text.charCodeAt(from))) from++;
  return from;
}
function trimEnd(text: string, from: number, to: number): number {
  while (to > from && isTrimmed(text.charCodeAt(to - 1))) to--;
  return to;
}

/** The first token of a full-file line; the usual ones without a new string. */
function headOf(text: string, from: number, end: number): string {
  const len = end - from;
  if (len === 4 && text.startsWith('real', from)) return 'real';
  if (len === 7 && text.startsWith('virtual', from)) return 'virtual';
  return text.slice(from, end);
}

/** The end of the first token of text[from, to). */
function tokenEnd(text: string, from: number, to: number): number {
  let i = from;
  for (let c = text.charCodeAt(i); i < to && c !== 32 && c !== 9; c = text.charCodeAt(++i));
  return i;
}

function tokensOf(line: string): string[] {
  return line.split(/[ \t]+/).filter((t) => t !== '');
}

class LineError extends Error {}

function need(fields: Fields, key: Key): string {
  const v = fields.get(key);
  if (v === undefined || v === '') throw new LineError(`missing ${key}=`);
  return v;
}

function num(fields: Fields, key: Key, max: number, dflt: number): number {
  const n = fields.digits(key);
  if (n === -1) return dflt;
  if (n >= 0 && n <= max) return n;
  const p = parseUint(fields.get(key)!, max, key);
  if (!p.ok) throw new LineError(p.reason);
  return p.value;
}

function rt(v: string, key: string): ForwardMethod {
  const m = RT[v];
  if (!m) throw new LineError(`bad ${key} '${v}' (dr, masq or tun expected)`);
  return m;
}

function addr(v: string, key: string): Addr {
  if (isDottedQuad(v)) return { addr: v, family: 'inet' };
  const a = parseAddr(v);
  if (!a.ok) throw new LineError(`${key}: ${a.reason}`);
  return a.value;
}

function port(v: string, key: string): number {
  const p = parsePort(v);
  if (!p.ok) throw new LineError(`${key}: ${p.reason}`);
  return p.value;
}

/** A port field: like port(need(fields, key), key), without the string. */
function portField(fields: Fields, key: Key): number {
  const n = fields.digits(key);
  if (n >= 0 && n <= 65535) return n;
  return port(need(fields, key), key);
}

/**
 * The service a virtual (or a diff line's virtual part) maps to (spec 8.5/8.7): a positive vfwmark
 * makes a fwmark service whatever vproto says (family from vaddr when given); otherwise
 * vproto tcp|udp + vaddr + vport. vproto=fwmark without a vfwmark is refused (the original made it 300).
 */
function serviceKeyOf(fields: Fields): ServiceKey {
  const proto = need(fields, 'vproto');
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'fwmark') throw new LineError(`bad vproto '${proto}' (tcp, udp or fwmark expected)`);
  const fwmark = num(fields, 'vfwmark', U32_MAX, 0);
  if (fwmark > 0) {
    const a = fields.get('vaddr');
    const family = a === undefined ? 'inet' : addr(a, 'vaddr').family;
    return { kind: 'fwmark', family, fwmark };
  }
  if (proto === 'fwmark') throw new LineError('vproto=fwmark needs vfwmark=<mark> greater than 0');
  const a = addr(need(fields, 'vaddr'), 'vaddr');
  return { kind: 'addr', family: a.family, protocol: proto, addr: a.addr, port: portField(fields, 'vport') };
}

function checkFamily(service: ServiceKey, a: Addr, forward: ForwardMethod): void {
  // IPVS only mixes address families for tunnelled destinations.
  if (a.family !== service.family && forward !== 'tunnel') {
    throw new LineError(`real ${a.addr} is not in the address family of its virtual (only tun may mix families)`);
  }
}

function parseVirtual(fields: Fields, where: string): Virtual {
  const key = serviceKeyOf(fields);
  const forward = rt(need(fields, 'vrt'), 'vrt');
  const scheduler = need(fields, 'vsched');
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(scheduler)) throw new LineError(`bad vsched '${scheduler}'`);
  const pers = fields.get('vpers');
  let timeout = 0;
  if (pers !== undefined) {
    const p = parseUint(pers, PERSISTENCE_MAX, 'vpers');
    if (!p.ok) throw new LineError(p.reason);
    if (p.value === 0) throw new LineError('bad vpers \'0\' (persistence timeout must be at least 1)');
    timeout = p.value;
  }
  const ops = fields.get('vops');
  return {
    name: fields.get('vname') ?? '',
    where,
    forward,
    reals: [],
    service: {
      key,
      scheduler,
      persistent: pers !== undefined,
      timeout,
      // The original set one-packet for any vops value; `vops=0` meaning "on" is kept out as nonsense.
      onePacket: ops !== undefined && ops !== '0',
      netmask: fullNetmask(key.family),
    },
  };
}

/** A virtual line as surealived writes it (see REAL_FIELDS), IPv4 or fwmark; anything else goes the general way. */
const VIRTUAL_LINE =
  /virtual vname=([^ \t\n]*) vproto=(tcp|udp|fwmark) vaddr=((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}) vport=(\d{1,5}) vrt=(dr|masq|tun) vsched=([A-Za-z0-9_.-]{1,15})(?: vpers=(\d{1,10}))?(?: vfwmark=(\d{1,10}))?(?: vops=([^ \t\n]*))?/y;

function fastVirtual(text: string, from: number, to: number, where: string): Virtual | undefined {
  VIRTUAL_LINE.lastIndex = from;
  const m = VIRTUAL_LINE.exec(text);
  if (!m || VIRTUAL_LINE.lastIndex !== to) return undefined;
  const proto = m[2] as 'tcp' | 'udp' | 'fwmark';
  const port = +m[4]!;
  const timeout = m[7] === undefined ? 0 : +m[7];
  const fwmark = m[8] === undefined ? 0 : +m[8];
  if (port > 65535 || fwmark > U32_MAX || (m[7] !== undefined && (timeout === 0 || timeout > PERSISTENCE_MAX))) return undefined;
  let key: ServiceKey;
  if (fwmark > 0) key = { kind: 'fwmark', family: 'inet', fwmark };
  else if (proto === 'fwmark') return undefined;
  else key = { kind: 'addr', family: 'inet', protocol: proto, addr: m[3]!, port };
  const ops = m[9];
  return {
    name: m[1]!,
    where,
    forward: RT[m[5]!]!,
    reals: [],
    service: { key, scheduler: m[6]!, persistent: m[7] !== undefined, timeout, onePacket: ops !== undefined && ops !== '0', netmask: 32 },
  };
}

/** A real of the full file; its `file:line` is built only when asked for (100k of them stay in memory). */
class FileReal implements Real {
  constructor(
    readonly name: string,
    readonly dest: Destination,
    private readonly file: string,
    private readonly line: number,
  ) {}
  get where(): string {
    return `${this.file}:${this.line}`;
  }
}

function parseReal(fields: Fields, v: Virtual, file: string, line: number): Real {
  const a = addr(need(fields, 'raddr'), 'raddr');
  const rrt = fields.get('rrt');
  const forward = rrt === undefined ? v.forward : rt(rrt, 'rrt');
  checkFamily(v.service.key, a, forward);
  const dest: Destination = {
    addr: a.addr,
    family: a.family,
    port: portField(fields, 'rport'),
    forward,
    weight: num(fields, 'rweight', WEIGHT_MAX, 1),
    upperThreshold: num(fields, 'ru_thresh', U32_MAX, 0),
    lowerThreshold: num(fields, 'rl_thresh', U32_MAX, 0),
  };
  return new FileReal(fields.get('rname') ?? '', dest, file, line);
}

/**
 * The fields of a real as surealived writes them (in its order, one space apart, an IPv4 raddr), as
 * they follow `real ` in a full-file line and `vsched=... ` in a diff line. One regexp for both: it
 * is compiled and warm after a load's 100k real lines, so the first diff lines after a load do not
 * pay for compiling another (under emulation the JIT starts late, and a token scanner's
 * per-character JavaScript dominated a load). Any other line (or any value out of range) is left to
 * the general path, which gives the same result or reports the error.
 */
const REAL_FIELDS =
  /rname=([^ \t\n]*) raddr=((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}) rport=(\d{1,5}) rweight=(\d{1,10})(?: rl_thresh=(\d{1,10}))?(?: ru_thresh=(\d{1,10}))?(?: rrt=(dr|masq|tun))?/y;

/**
 * REAL_FIELDS matched over exactly text[from, to), its values in range, or undefined. Groups: 1 rname,
 * 2 raddr, 3 rport, 4 rweight, 5 rl_thresh, 6 ru_thresh, 7 rrt (see realDest).
 */
function realMatch(text: string, from: number, to: number): RegExpExecArray | undefined {
  REAL_FIELDS.lastIndex = from;
  const m = REAL_FIELDS.exec(text);
  if (!m || REAL_FIELDS.lastIndex !== to) return undefined;
  if (+m[3]! > 65535 || +m[4]! > WEIGHT_MAX || (m[5] !== undefined && +m[5] > U32_MAX) || (m[6] !== undefined && +m[6] > U32_MAX)) return undefined;
  return m;
}

/** The destination of a realMatch, `forward` being the real's rrt or else its virtual's method. */
function realDest(m: RegExpExecArray, forward: ForwardMethod): Destination {
  return {
    addr: m[2]!,
    family: 'inet',
    port: +m[3]!,
    forward,
    weight: +m[4]!,
    upperThreshold: m[6] === undefined ? 0 : +m[6],
    lowerThreshold: m[5] === undefined ? 0 : +m[5],
  };
}

/** A full-file real line as surealived writes it (`real ` + REAL_FIELDS). */
function fastReal(text: string, from: number, to: number, v: Virtual, file: string, line: number): Real | undefined {
  const m = realMatch(text, from + 'real '.length, to);
  if (!m) return undefined;
  const forward = m[7] === undefined ? v.forward : RT[m[7]]!;
  if (v.service.key.family !== 'inet' && forward !== 'tunnel') return undefined;
  return new FileReal(m[1]!, realDest(m, forward), file, line);
}

function parseChain(tokens: readonly string[], diffDir: string): string {
  if (tokens.length !== 2 || !tokens[1]!.startsWith('file=')) throw new LineError("bad DIFF line ('DIFF file=<path>' expected)");
  const target = tokens[1]!.slice('file='.length);
  const problem = diffTargetProblem(target, diffDir);
  if (problem) throw new LineError(problem);
  return target;
}

/**
 * Parse a whole ipvsfull.cfg. Every bad line is reported; any error makes the whole file invalid
 * (the caller keeps its previous desired table). A last line without its newline means a torn write.
 */
export function parseFullFile(text: string, file: string, diffDir: string): FullParse {
  const errors: string[] = [];
  const virtuals: Virtual[] = [];
  const seen = new Map<string, string>();
  // v6: the virtual came as `v6virtual`, so its reals must be `v6real` too.
  let current: { v: Virtual; id: string; v6: boolean; reals: Real[]; realSeen: Set<string> } | undefined;
  // The diff path's service id -> position index, built here from ids computed anyway (see virtualIndex).
  const index = new Map<string, number>();
  let meta = false;
  // Reals of a virtual whose line was refused are not reported again as "real before any virtual".
  let brokenVirtual = false;
  let diffFile: string | null = null;
  const close = (): void => {
    if (current) {
      if (!index.has(current.id)) index.set(current.id, virtuals.length);
      virtuals.push({ ...current.v, reals: current.reals });
    }
    current = undefined;
  };
  const addReal = (r: Real): void => {
    const c = current!;
    const id = destId(r.dest);
    if (c.realSeen.has(id)) {
      const first = c.reals.find((x) => destId(x.dest) === id)!;
      throw new LineError(`duplicate real ${hostPort(r.dest.addr, r.dest.port)} (first at ${first.where})`);
    }
    c.realSeen.add(id);
    c.reals.push(r);
  };
  const fields = fieldsOf;
  let lineNo = 0;
  let pos = 0;
  for (;;) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) break;
    lineNo++;
    // Most lines have nothing to trim: the first and last characters tell.
    const c0 = text.charCodeAt(pos);
    const from = c0 > 32 && c0 < 0xa0 ? pos : trimStart(text, pos, nl);
    const cl = text.charCodeAt(nl - 1);
    const to = from < nl && cl > 32 && cl < 0xa0 ? nl : trimEnd(text, from, nl);
    pos = nl + 1;
    if (from === to) continue;
    try {
      // The bulk of a hand-off: a real line as surealived writes it, before any tokenising.
      if (current && !current.v6 && text.startsWith('real ', from)) {
        const r = fastReal(text, from, to, current.v, file, lineNo);
        if (r) {
          addReal(r);
          continue;
        }
      }
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      errors.push(`${file}:${lineNo}: ${e.message}`);
      continue;
    }
    const headEnd = tokenEnd(text, from, to);
    const head = headOf(text, from, headEnd);
    try {
      if (!meta) {
        if (head !== 'meta') throw new LineError(`'meta' line expected first, got '${head}'`);
        meta = true;
        continue;
      }
      switch (head) {
        case 'meta':
          throw new LineError('duplicate meta line');
        case 'DIFF':
          if (diffFile !== null) throw new LineError('duplicate DIFF line');
          diffFile = parseChain(tokensOf(text.slice(from, to)), diffDir);
          continue;
        case 'virtual':
        case 'v6virtual': {
          close();
          brokenVirtual = true;
          const v6 = head === 'v6virtual';
          const where = `${file}:${lineNo}`;
          let v = v6 ? undefined : fastVirtual(text, from, to, where);
          if (!v) {
            const bad = fields.scan(text, headEnd, to);
            if (bad !== undefined) throw new LineError(bad);
            v = parseVirtual(fields, where);
            const mismatch = v6 ? v6Mismatch(head, v.service.key, undefined) : undefined;
            if (mismatch !== undefined) throw new LineError(mismatch);
          }
          brokenVirtual = false;
          const id = serviceId(v.service.key);
          const first = seen.get(id);
          // Track the duplicate anyway so its reals are not reported as "real before any virtual".
          current = { v, id, v6, reals: [], realSeen: new Set() };
          if (first) throw new LineError(`duplicate virtual ${formatServiceKey(v.service.key)} (first at ${first})`);
          seen.set(id, where);
          continue;
        }
        case 'real':
        case 'v6real': {
          if (!current) {
            if (brokenVirtual) continue;
            throw new LineError(`${head} line before any virtual`);
          }
          const v6 = head === 'v6real';
          if (current.v6 && !v6) {
            // The original would read it into the last `virtual` before the (skipped) v6virtual.
            throw new LineError("'real' line in a v6virtual (its reals are written 'v6real')");
          }
          // (The fast path above did not take it.)
          const bad = fields.scan(text, headEnd, to);
          if (bad !== undefined) throw new LineError(bad);
          const r = parseReal(fields, current.v, file, lineNo);
          const mismatch = v6 ? v6Mismatch(head, current.v.service.key, r.dest.family) : undefined;
          if (mismatch !== undefined) throw new LineError(mismatch);
          addReal(r);
          continue;
        }
        default:
          throw new LineError(`unknown line '${head}'`);
      }
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      errors.push(`${file}:${lineNo}: ${e.message}`);
    }
  }
  // A last line without its newline means a torn write (reported first).
  if (text.slice(pos).trim() !== '') errors.unshift(`${file}:${lineNo + 1}: incomplete last line (no newline): torn file`);
  close();
  if (!meta && errors.length === 0) errors.push(`${file}:1: no 'meta' line (empty or torn file)`);
  if (errors.length > 0) return { ok: false, errors };
  indexCache.set(virtuals, index);
  return { ok: true, config: { virtuals, diffFile } };
}

/**
 * The virtual part of a diff line exactly as surealived writes it (fields in its order, one space
 * apart, IPv4), up to where REAL_FIELDS takes over: the first lines after a load otherwise run the
 * token scanner cold, and under emulation their latency is mostly that. vrt and vsched are not read
 * (the virtual's own are used). Anything else, or a value out of range, goes the general way, with
 * the same result or error. So do IPv6 lines in either form: an IPv6 address on one side at least
 * (which a `cmd=v6...` line must have) never matches these dotted quads.
 */
const DIFF_VIRTUAL = new RegExp(
  `cmd=(addreal|chgreal|delreal) vname=([^ \\t\\n]*) vproto=(tcp|udp|fwmark) vaddr=(${DOTTED_QUAD_PATTERN}) vport=(\\d{1,5}) ` +
    `vfwmark=(\\d{1,10}) vrt=[^ \\t\\n]* vsched=[^ \\t\\n]* `,
  'y',
);

function fastDiffLine(text: string, from: number, to: number): DiffLineOfReal | undefined {
  DIFF_VIRTUAL.lastIndex = from;
  const m = DIFF_VIRTUAL.exec(text);
  if (!m) return undefined;
  const r = realMatch(text, DIFF_VIRTUAL.lastIndex, to);
  if (!r) return undefined;
  const proto = m[3] as 'tcp' | 'udp' | 'fwmark';
  const vport = +m[5]!;
  const fwmark = +m[6]!;
  if (vport > 65535 || fwmark > U32_MAX) return undefined;
  let service: ServiceKey;
  if (fwmark > 0) service = { kind: 'fwmark', family: 'inet', fwmark };
  else if (proto === 'fwmark') return undefined;
  else service = { kind: 'addr', family: 'inet', protocol: proto, addr: m[4]!, port: vport };
  return {
    kind: 'real',
    cmd: m[1] as DiffLineOfReal['cmd'],
    vname: m[2]!,
    service,
    rname: r[1]!,
    addr: { addr: r[2]!, family: 'inet' },
    port: +r[3]!,
    weight: +r[4]!,
    lowerThreshold: r[5] === undefined ? 0 : +r[5],
    upperThreshold: r[6] === undefined ? 0 : +r[6],
    rrt: r[7] === undefined ? undefined : RT[r[7]],
  };
}

/** Parse one complete diff line (without its newline). */
export function parseDiffLine(raw: string, diffDir: string): DiffLineParse {
  const from = trimStart(raw, 0, raw.length);
  const to = trimEnd(raw, from, raw.length);
  if (from === to) return { ok: true, line: { kind: 'empty' } };
  const headEnd = tokenEnd(raw, from, to);
  try {
    if (headEnd - from === 4 && raw.startsWith('DIFF', from)) {
      return { ok: true, line: { kind: 'chain', file: parseChain(tokensOf(raw.slice(from, to)), diffDir) } };
    }
    if (!raw.startsWith('cmd=', from)) throw new LineError(`unknown line '${raw.slice(from, headEnd)}'`);
    const fast = fastDiffLine(raw, from, to);
    if (fast) return { ok: true, line: fast };
    const value = raw.slice(from + 'cmd='.length, headEnd);
    const cmd = DIFF_CMDS.get(value);
    if (!cmd) throw new LineError(`unknown command 'cmd=${value}'`);
    const fields = fieldsOf;
    const bad = fields.scan(raw, from, to);
    if (bad !== undefined) throw new LineError(bad);
    const service = serviceKeyOf(fields);
    const raddr = addr(need(fields, 'raddr'), 'raddr');
    const mismatch = cmd.v6 ? v6Mismatch(`cmd=${value}`, service, raddr.family) : undefined;
    if (mismatch !== undefined) throw new LineError(mismatch);
    const rrt = fields.get('rrt');
    return {
      ok: true,
      line: {
        kind: 'real',
        cmd: cmd.cmd,
        vname: fields.get('vname') ?? '',
        service,
        rname: fields.get('rname') ?? '',
        addr: raddr,
        port: portField(fields, 'rport'),
        weight: num(fields, 'rweight', WEIGHT_MAX, 1),
        lowerThreshold: num(fields, 'rl_thresh', U32_MAX, 0),
        upperThreshold: num(fields, 'ru_thresh', U32_MAX, 0),
        rrt: rrt === undefined ? undefined : rt(rrt, 'rrt'),
      },
    };
  } catch (e) {
    if (!(e instanceof LineError)) throw e;
    return { ok: false, reason: e.message };
  }
}

export type DiffLineOfReal = Extract<DiffLine, { kind: 'real' }>;

/** What one diff line does to its virtual: the virtual's new value, or a warning (unchanged). */
function applyToVirtual(v: Virtual, d: DiffLineOfReal, where: string): { readonly virtual?: Virtual; readonly warning?: string } {
  const rdesc = `real ${d.rname || '?'} ${hostPort(d.addr.addr, d.port)}`;
  const forward = d.rrt ?? v.forward;
  if (d.addr.family !== v.service.key.family && forward !== 'tunnel') {
    return { warning: `${where}: ${d.cmd}: ${rdesc} is not in the address family of its virtual, line skipped` };
  }
  const dest: Destination = {
    addr: d.addr.addr,
    family: d.addr.family,
    port: d.port,
    forward,
    weight: d.weight,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
  };
  const id = destId(dest);
  const ri = v.reals.findIndex((r) => destId(r.dest) === id);
  let reals: Real[];
  switch (d.cmd) {
    case 'addreal':
      if (ri >= 0) return {};
      reals = [...v.reals, { name: d.rname, where, dest }];
      break;
    case 'chgreal':
      if (ri < 0) return { warning: `${where}: chgreal: ${rdesc} unknown in virtual ${v.name || '?'}, line skipped` };
      reals = v.reals.map((r, i) => (i === ri ? { name: d.rname, where, dest } : r));
      break;
    case 'delreal':
      if (ri < 0) return { warning: `${where}: delreal: ${rdesc} unknown in virtual ${v.name || '?'}, line skipped` };
      reals = v.reals.filter((_, i) => i !== ri);
      break;
  }
  return { virtual: { ...v, reals } };
}

/** The service id -> position index of a config's virtuals (see indexCache). */
export function virtualIndex(config: HandoffConfig): ReadonlyMap<string, number> {
  let index = indexCache.get(config.virtuals);
  if (!index) {
    const m = new Map<string, number>();
    config.virtuals.forEach((v, i) => {
      const id = serviceId(v.service.key);
      if (!m.has(id)) m.set(id, i);
    });
    index = m;
    indexCache.set(config.virtuals, index);
  }
  return index;
}

export interface DiffBatchResult {
  readonly config: HandoffConfig;
  readonly warnings: readonly string[];
  /** Service ids of the virtuals whose reals changed. */
  readonly touched: ReadonlySet<string>;
}

/**
 * Apply diff lines in order to the desired config (spec 8.5): addreal adds a missing real (an
 * existing one is left alone), chgreal updates a known real, delreal removes a known real. The
 * virtual is found by fwmark or (protocol, address, port); anything not found is a warning and
 * changes nothing.
 */
export function applyDiffLines(config: HandoffConfig, lines: readonly { readonly line: DiffLineOfReal; readonly where: string }[]): DiffBatchResult {
  const index = virtualIndex(config);
  const warnings: string[] = [];
  const touched = new Set<string>();
  let virtuals: Virtual[] | undefined;
  for (const { line: d, where } of lines) {
    const id = serviceId(d.service);
    const vi = index.get(id);
    if (vi === undefined) {
      warnings.push(`${where}: ${d.cmd}: virtual ${d.vname || '?'} ${formatServiceKey(d.service)} not in config, line skipped`);
      continue;
    }
    const current = (virtuals ?? config.virtuals)[vi]!;
    const r = applyToVirtual(current, d, where);
    if (r.warning) warnings.push(r.warning);
    if (!r.virtual) continue;
    virtuals ??= [...config.virtuals];
    virtuals[vi] = r.virtual;
    touched.add(id);
  }
  if (!virtuals) return { config, warnings, touched };
  indexCache.set(virtuals, index);
  return { config: { ...config, virtuals }, warnings, touched };
}

/** One diff line; see applyDiffLines. */
export function applyDiffLine(
  config: HandoffConfig,
  d: DiffLineOfReal,
  where: string,
): { readonly config: HandoffConfig; readonly warning?: string } {
  const r = applyDiffLines(config, [{ line: d, where }]);
  return r.warnings.length > 0 ? { config: r.config, warning: r.warnings[0]! } : { config: r.config };
}

/** A virtual as a table entry; shared by toTable and tableOf, so the diff path runs code a load has warmed. */
function entryOf(v: Virtual): Entry {
  const dests = new Array<Destination>(v.reals.length);
  for (let j = 0; j < dests.length; j++) dests[j] = v.reals[j]!.dest;
  return { service: v.service, dests };
}

/** The desired table entries of the virtuals with the given service ids (in `ids` order; unknown ids skipped). */
export function tableOf(config: HandoffConfig, ids: Iterable<string>): Table {
  const index = virtualIndex(config);
  const out: Entry[] = [];
  for (const id of ids) {
    const i = index.get(id);
    if (i !== undefined) out.push(entryOf(config.virtuals[i]!));
  }
  return out;
}

/** The desired IPVS table of a hand-off config. */
export function toTable(config: HandoffConfig): Table {
  const vs = config.virtuals;
  const out = new Array<Entry>(vs.length);
  for (let i = 0; i < vs.length; i++) out[i] = entryOf(vs[i]!);
  return out;
}
