// Glue between the notifier decision and the spawner: updates the virtual's notify state, logs as the
// original, and starts the configured script. The caller rewrites notify.dump when the state changed.

import type { RealState, SorryState, VirtualState } from '../engine/state.js';
import type { Logger } from '../../common/log.js';
import { realNotifierArgv, sorryNotifierArgv, virtualNotifierArgv, type NotifyDirection } from './argv.js';
import { decideVirtualNotify, type NotifyCheck, type NotifyDecision } from './decision.js';
import { spawnNotifier, type NotifierExit, type NotifierSpawner } from './spawn.js';

export interface NotifierRun {
  readonly decision: NotifyDecision | null;
  /** The started script's outcome, when one was started (callers normally ignore it). */
  readonly exit: Promise<NotifierExit> | null;
}

function logCheck(log: Logger, what: string, c: NotifyCheck, pad: string): void {
  if (c.expected === 0) return;
  const u = c.percent ? '%' : ' ';
  log.info(` * is enough ${what}:${pad}${c.enough ? 'TRUE' : 'FALSE'}, curr_${what} = ${c.current}${u} / exp_${what} = ${c.expected}${u}`);
}

/**
 * At a cycle expiry of a virtual with a virtual notifier (notify_up or notify_down): decide, set
 * `v.notifyState`, and run the script for the new state if that one is defined.
 */
export function runVirtualNotifier(v: VirtualState, log: Logger, spawner: NotifierSpawner = spawnNotifier): NotifierRun {
  const decision = decideVirtualNotify(v);
  if (!decision || !decision.fire) return { decision, exit: null };
  v.notifyState = decision.next;
  const c = v.config;
  log.info(`NOTIFY ${decision.fire}: [vname=${c.name} vaddr=${c.addr} vport=${c.port} vproto=${c.proto} vfwmark=${c.fwmark}]`);
  logCheck(log, 'reals', decision.realsCheck, '  ');
  logCheck(log, 'weight', decision.weightCheck, ' ');
  const script = decision.fire === 'UP' ? c.tester.notifyUp : c.tester.notifyDown;
  if (script === undefined) return { decision, exit: null };
  log.info(` * trying to execute notify script [nstate = ${decision.fire}, script = ${script}]`);
  return { decision, exit: spawner(virtualNotifierArgv(script, v, decision.fire), log) };
}

/** At an online transition of a real (spec 4.5): real_notify_up / real_notify_down if defined. */
export function runRealNotifier(r: RealState, dir: NotifyDirection, log: Logger, spawner: NotifierSpawner = spawnNotifier): Promise<NotifierExit> | null {
  const t = r.virtual.config.tester;
  const script = dir === 'UP' ? t.realNotifyUp : t.realNotifyDown;
  if (script === undefined) return null;
  log.info(` * trying to execute real notify script [nstate = ${dir}, script = ${script}]`);
  return spawner(realNotifierArgv(script, r, dir), log);
}

/**
 * The sorry server put in (UP) or taken out (DOWN): its `<sorry notify_up/notify_down>` script if
 * defined (extension; argv as the real notifier's, the sorry server as the real).
 */
export function runSorryNotifier(s: SorryState, dir: NotifyDirection, log: Logger, spawner: NotifierSpawner = spawnNotifier): Promise<NotifierExit> | null {
  const script = dir === 'UP' ? s.config.notifyUp : s.config.notifyDown;
  if (script === undefined) return null;
  log.info(` * trying to execute sorry notify script [nstate = ${dir}, script = ${script}]`);
  return spawner(sorryNotifierArgv(script, s, dir), log);
}
