// Find the virtual and the real a control command names (spec 9.2), pure, with the original's error strings.

import type { RealState, VirtualState } from '../engine/state.js';
import type { RealSelector, VirtualSelector } from './protocol.js';

export type Selected<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** First match in XML order, as the original (duplicates after it are unreachable by selector). */
export function selectVirtual(virtuals: readonly VirtualState[], sel: VirtualSelector): Selected<VirtualState> {
  if (sel.kind === 'invalid') return { ok: false, error: sel.error };
  for (const v of virtuals) {
    const c = v.config;
    if (sel.kind === 'name') {
      if (c.name === sel.name) return { ok: true, value: v };
      continue;
    }
    // One pass testing both rules, like the original loop: with vfwmark > 0 *and* a matching
    // non-fwmark proto/addr/port, whichever virtual comes first in the XML wins.
    if (sel.fwmark > 0 && c.fwmark > 0 && c.fwmark === sel.fwmark) return { ok: true, value: v };
    if (c.fwmark === 0 && c.addr === sel.addr.addr && c.port === sel.port && c.proto === sel.proto) return { ok: true, value: v };
  }
  return { ok: false, error: 'cmd_find_virt: Virt not found' };
}

export function selectReal(v: VirtualState, sel: RealSelector): Selected<RealState> {
  // Checked before the arguments, as the original (a virtual without reals had no real array).
  if (v.reals.length === 0) return { ok: false, error: 'cmd_find_real: empty realArr' };
  if (sel.kind === 'invalid') return { ok: false, error: sel.error };
  const r = v.reals.find((x) => x.config.addr === sel.addr.addr && x.config.port === sel.port);
  // Not in spec 9.2's list, but the original's sd_cmd_find_real has exactly this string.
  if (!r) return { ok: false, error: 'cmd_find_real: Real not found' };
  return { ok: true, value: r };
}
