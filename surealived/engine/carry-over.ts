// Reload without losing state: copy the runtime state of every real that survives a configuration
// change (same virtual identity, same real address and port) from the old state tree to the new one.

import type { SorryConfig, VirtualConfig } from '../config/model.js';
import type { RealState, VirtualState } from './state.js';

/** Virtual identity as the dump files and the control port see it: fwmark, or proto+addr+port. */
export function virtualIdentity(v: VirtualConfig): string {
  return v.fwmark > 0 ? `fwmark:${v.fwmark}` : `${v.proto}:${v.addr}:${v.port}`;
}

/** The same sorry server (address and port) in the old and the new configuration. */
export function sameSorry(a: SorryConfig, b: SorryConfig): boolean {
  return a.addr === b.addr && a.port === b.port;
}

function realIdentity(r: RealState): string {
  return `${r.config.addr}:${r.config.port}`;
}

/**
 * Mutates `next`: surviving reals keep online state, hysteresis counters (reset when their probe
 * changed), operator overrides, statistics and the tested flag; virtuals keep their notify state, their
 * panic mode and whether their sorry server (same address and port) is in service, as applied so far.
 */
export function carryOverState(prev: readonly VirtualState[], next: readonly VirtualState[]): void {
  const byVirtual = new Map<string, VirtualState>();
  for (const v of prev) byVirtual.set(virtualIdentity(v.config), v);
  for (const v of next) {
    const old = byVirtual.get(virtualIdentity(v.config));
    if (!old) continue;
    v.notifyState = old.notifyState;
    // The fallbacks as applied so far: the daemon compares them with the new plan (log, notify).
    v.panic = old.panic;
    if (v.sorry && old.sorry && sameSorry(v.sorry.config, old.sorry.config)) v.sorry.active = old.sorry.active;
    const reals = new Map<string, RealState>();
    for (const r of old.reals) reals.set(realIdentity(r), r);
    for (const r of v.reals) {
      const o = reals.get(realIdentity(r));
      if (!o) continue;
      const sameProbe = o.config.probeKey === r.config.probeKey;
      r.online = o.online;
      r.okCount = sameProbe ? o.okCount : 0;
      r.failCount = sameProbe ? o.failCount : 0;
      r.rstate = o.rstate;
      r.override = o.override;
      r.tested = o.tested;
      r.lastDetail = o.lastDetail;
      Object.assign(r.stats, o.stats, { samples: r.stats.samples });
      r.stats.samples.push(...o.stats.samples);
    }
  }
}
