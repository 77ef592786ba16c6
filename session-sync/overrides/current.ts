// What a surealived has overridden right now, read from its control port's JSON (`vlist json`, then
// `rlist ... json` per virtual), pure: the reply texts in, the overrides it would write to
// override.dump out, keyed like the master's. Untrusted JSON is checked once, here.

import { isNeutralOverride, parseRState } from '../../common/override-line.js';
import { VKEY_PROTOS, canonicalAddr, formatParsedRKey, formatParsedVKey, type ParsedVKey } from '../../common/state-keys.js';
import { entryKey, type OperatorOverride } from '../model.js';

/** A reply that is not what `vlist json` / `rlist json` answer. */
export class ControlReplyError extends Error {
  override readonly name = 'ControlReplyError';
}

type Json = Record<string, unknown>;

/** The JSON line of a `... json` reply; an error reply (`cmd_find_virt: ...`) is thrown as is. */
function jsonOf(what: string, reply: string): Json {
  const m = /^(\{[^\n]*\})\n_SD_CMD_END_\n$/.exec(reply);
  if (!m) throw new ControlReplyError(`${what}: ${reply.trim() || 'empty reply'}`);
  let v: unknown;
  try {
    v = JSON.parse(m[1]!);
  } catch (e) {
    throw new ControlReplyError(`${what}: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ControlReplyError(`${what}: not a JSON object`);
  return v as Json;
}

function field<T>(what: string, o: Json, name: string, ok: (v: unknown) => v is T): T {
  const v = o[name];
  if (!ok(v)) throw new ControlReplyError(`${what}: field ${name} is ${JSON.stringify(v)}`);
  return v;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isArr = (v: unknown): v is unknown[] => Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => Number.isInteger(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

function virtualKey(what: string, v: Json): ParsedVKey {
  const proto = VKEY_PROTOS.indexOf(field(what, v, 'vproto', isStr) as (typeof VKEY_PROTOS)[number]);
  if (proto < 0) throw new ControlReplyError(`${what}: unknown vproto ${JSON.stringify(v['vproto'])}`);
  const addr = canonicalAddr(field(what, v, 'vaddr', isStr));
  return { addr, family: addr.includes(':') ? 6 : 4, port: field(what, v, 'vport', isInt), proto, fwmark: field(what, v, 'vfwmark', isInt) >>> 0 };
}

/** The virtuals of a `vlist json` reply, each once (surealived's selectors reach only the first of twins). */
export function virtualsOfVlist(reply: string): ParsedVKey[] {
  const list = field('vlist', jsonOf('vlist', reply), 'virtuals', isArr);
  const seen = new Map<string, ParsedVKey>();
  for (const v of list) {
    if (!isObj(v)) throw new ControlReplyError('vlist: a virtual is not an object');
    const k = virtualKey('vlist', v);
    const text = formatParsedVKey(k);
    if (!seen.has(text)) seen.set(text, k);
  }
  return [...seen.values()];
}

/**
 * The overrides among the reals of an `rlist json` reply: every real that is not neutral, with the
 * configured weight pinned when only rstate is set, as override.dump writes it.
 */
export function overridesOfRlist(reply: string): OperatorOverride[] {
  const j = jsonOf('rlist', reply);
  const virtual = formatParsedVKey(virtualKey('rlist', field('rlist', j, 'virtual', isObj)));
  const what = `rlist ${virtual}`;
  const out: OperatorOverride[] = [];
  for (const r of field(what, j, 'reals', isArr)) {
    if (!isObj(r)) throw new ControlReplyError(`${what}: a real is not an object`);
    const rstate = parseRState(field(what, r, 'rstate', isStr));
    if (!rstate) throw new ControlReplyError(`${what}: unknown rstate ${JSON.stringify(r['rstate'])}`);
    const configured = field(what, r, 'confwgt', isInt);
    const ov = r['override'];
    let override: { weight: number; percent: boolean } | null = null;
    if (ov !== null) {
      if (!isObj(ov)) throw new ControlReplyError(`${what}: field override is ${JSON.stringify(ov)}`);
      override = { weight: field(what, ov, 'weight', isInt), percent: field(what, ov, 'percent', isBool) };
    }
    if (isNeutralOverride(rstate, override, configured)) continue;
    const w = override ?? { weight: configured, percent: false };
    const real = formatParsedRKey({ addr: canonicalAddr(field(what, r, 'raddr', isStr)), port: field(what, r, 'rport', isInt) });
    out.push({ kind: 'override', virtual, real, weight: w.weight >>> 0, percent: w.percent, rstate });
  }
  return out;
}

/** Every override of a director, by entry key. */
export function currentOverrides(rlistReplies: readonly string[]): Map<string, OperatorOverride> {
  const m = new Map<string, OperatorOverride>();
  for (const reply of rlistReplies) for (const o of overridesOfRlist(reply)) m.set(entryKey(o), o);
  return m;
}
