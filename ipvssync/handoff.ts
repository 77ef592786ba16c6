// The hand-off files surealived writes for ipvssync (spec 8.3 ipvsfull.cfg, 8.4 diff lines), parsed
// into the desired table, plus the diff-line semantics on that table. Pure: text in, data or `file:line: reason` out.

import { basename, dirname, resolve } from 'node:path';
import { parseAddr, parsePort, parseUint, PERSISTENCE_MAX, U32_MAX, WEIGHT_MAX, type Addr } from './address.js';
import {
  formatServiceKey,
  fullNetmask,
  hostPort,
  serviceId,
  destId,
  type Destination,
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

type Fields = Map<string, string>;

function splitFields(tokens: readonly string[]): { ok: true; fields: Fields } | { ok: false; reason: string } {
  const fields: Fields = new Map();
  for (const t of tokens) {
    const eq = t.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `bad token '${t}' (key=value expected)` };
    const key = t.slice(0, eq);
    if (fields.has(key)) return { ok: false, reason: `duplicate key '${key}'` };
    fields.set(key, t.slice(eq + 1));
  }
  return { ok: true, fields };
}

function tokensOf(line: string): string[] {
  return line.split(/[ \t]+/).filter((t) => t !== '');
}

class LineError extends Error {}

function need(fields: Fields, key: string): string {
  const v = fields.get(key);
  if (v === undefined || v === '') throw new LineError(`missing ${key}=`);
  return v;
}

function num(fields: Fields, key: string, max: number, dflt: number): number {
  const v = fields.get(key);
  if (v === undefined) return dflt;
  const p = parseUint(v, max, key);
  if (!p.ok) throw new LineError(p.reason);
  return p.value;
}

function rt(v: string, key: string): ForwardMethod {
  const m = RT[v];
  if (!m) throw new LineError(`bad ${key} '${v}' (dr, masq or tun expected)`);
  return m;
}

function addr(v: string, key: string): Addr {
  const a = parseAddr(v);
  if (!a.ok) throw new LineError(`${key}: ${a.reason}`);
  return a.value;
}

function port(v: string, key: string): number {
  const p = parsePort(v);
  if (!p.ok) throw new LineError(`${key}: ${p.reason}`);
  return p.value;
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
  return { kind: 'addr', family: a.family, protocol: proto, addr: a.addr, port: port(need(fields, 'vport'), 'vport') };
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

function parseReal(fields: Fields, v: Virtual, where: string): Real {
  const a = addr(need(fields, 'raddr'), 'raddr');
  const rrt = fields.get('rrt');
  const forward = rrt === undefined ? v.forward : rt(rrt, 'rrt');
  checkFamily(v.service.key, a, forward);
  return {
    name: fields.get('rname') ?? '',
    where,
    dest: {
      addr: a.addr,
      family: a.family,
      port: port(need(fields, 'rport'), 'rport'),
      forward,
      weight: num(fields, 'rweight', WEIGHT_MAX, 1),
      upperThreshold: num(fields, 'ru_thresh', U32_MAX, 0),
      lowerThreshold: num(fields, 'rl_thresh', U32_MAX, 0),
    },
  };
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
  const lines = text.split('\n');
  const tail = lines.pop()!;
  if (tail.trim() !== '') errors.push(`${file}:${lines.length + 1}: incomplete last line (no newline): torn file`);
  const virtuals: Virtual[] = [];
  const seen = new Map<string, string>();
  let current: { v: Virtual; reals: Real[]; realSeen: Map<string, string> } | undefined;
  let meta = false;
  // Reals of a virtual whose line was refused are not reported again as "real before any virtual".
  let brokenVirtual = false;
  let diffFile: string | null = null;
  const close = (): void => {
    if (current) virtuals.push({ ...current.v, reals: current.reals });
    current = undefined;
  };
  lines.forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const line = raw.trim();
    if (line === '') return;
    const tokens = tokensOf(line);
    const head = tokens[0]!;
    try {
      if (!meta) {
        if (head !== 'meta') throw new LineError(`'meta' line expected first, got '${head}'`);
        meta = true;
        return;
      }
      switch (head) {
        case 'meta':
          throw new LineError('duplicate meta line');
        case 'DIFF':
          if (diffFile !== null) throw new LineError('duplicate DIFF line');
          diffFile = parseChain(tokens, diffDir);
          return;
        case 'virtual': {
          close();
          brokenVirtual = true;
          const f = splitFields(tokens.slice(1));
          if (!f.ok) throw new LineError(f.reason);
          const v = parseVirtual(f.fields, where);
          brokenVirtual = false;
          const id = serviceId(v.service.key);
          const first = seen.get(id);
          // Track the duplicate anyway so its reals are not reported as "real before any virtual".
          current = { v, reals: [], realSeen: new Map() };
          if (first) throw new LineError(`duplicate virtual ${formatServiceKey(v.service.key)} (first at ${first})`);
          seen.set(id, where);
          return;
        }
        case 'real': {
          if (!current) {
            if (brokenVirtual) return;
            throw new LineError('real line before any virtual');
          }
          const f = splitFields(tokens.slice(1));
          if (!f.ok) throw new LineError(f.reason);
          const r = parseReal(f.fields, current.v, where);
          const id = destId(r.dest);
          const first = current.realSeen.get(id);
          if (first) throw new LineError(`duplicate real ${hostPort(r.dest.addr, r.dest.port)} (first at ${first})`);
          current.realSeen.set(id, where);
          current.reals.push(r);
          return;
        }
        default:
          throw new LineError(`unknown line '${head}'`);
      }
    } catch (e) {
      if (!(e instanceof LineError)) throw e;
      errors.push(`${where}: ${e.message}`);
    }
  });
  close();
  if (!meta && errors.length === 0) errors.push(`${file}:1: no 'meta' line (empty or torn file)`);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, config: { virtuals, diffFile } };
}

/** Parse one complete diff line (without its newline). */
export function parseDiffLine(raw: string, diffDir: string): DiffLineParse {
  const line = raw.trim();
  if (line === '') return { ok: true, line: { kind: 'empty' } };
  const tokens = tokensOf(line);
  try {
    if (tokens[0] === 'DIFF') return { ok: true, line: { kind: 'chain', file: parseChain(tokens, diffDir) } };
    if (!tokens[0]!.startsWith('cmd=')) throw new LineError(`unknown line '${tokens[0]}'`);
    const cmd = tokens[0]!.slice('cmd='.length);
    if (cmd !== 'addreal' && cmd !== 'chgreal' && cmd !== 'delreal') throw new LineError(`unknown command 'cmd=${cmd}'`);
    const f = splitFields(tokens);
    if (!f.ok) throw new LineError(f.reason);
    const fields = f.fields;
    const service = serviceKeyOf(fields);
    const rrt = fields.get('rrt');
    return {
      ok: true,
      line: {
        kind: 'real',
        cmd,
        vname: fields.get('vname') ?? '',
        service,
        rname: fields.get('rname') ?? '',
        addr: addr(need(fields, 'raddr'), 'raddr'),
        port: port(need(fields, 'rport'), 'rport'),
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

/**
 * Service id -> position in `virtuals`. Built once per virtuals array and handed on to the arrays
 * applyDiffLines derives from it (same virtuals, same order), so a diff line costs O(reals of its
 * virtual), not O(table): with 5,000 virtuals, rebuilding ids per line dominated the change latency.
 */
const indexCache = new WeakMap<readonly Virtual[], ReadonlyMap<string, number>>();

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

/** The desired table entries of the virtuals with the given service ids (in `ids` order; unknown ids skipped). */
export function tableOf(config: HandoffConfig, ids: Iterable<string>): Table {
  const index = virtualIndex(config);
  const out: { service: Service; dests: Destination[] }[] = [];
  for (const id of ids) {
    const i = index.get(id);
    if (i === undefined) continue;
    const v = config.virtuals[i]!;
    out.push({ service: v.service, dests: v.reals.map((r) => r.dest) });
  }
  return out;
}

/** The desired IPVS table of a hand-off config. */
export function toTable(config: HandoffConfig): Table {
  return config.virtuals.map((v) => ({ service: v.service, dests: v.reals.map((r) => r.dest) }));
}
