// The reconciler: desired table + kernel table -> the minimal list of ops that makes the kernel
// match. Pure. Never flushes; services the hand-off does not manage are deleted only when asked (-u).

import { destId, serviceId, type Destination, type Entry, type Op, type Service, type Table } from './types.js';

export interface ReconcileOptions {
  /** `-u`: delete kernel services that the desired table does not contain. */
  readonly deleteUnmanaged: boolean;
}

/** True when the kernel service already has the desired scheduler, flags, timeout and netmask. */
export function sameServiceAttrs(want: Service, have: Service): boolean {
  return (
    want.scheduler === have.scheduler &&
    want.persistent === have.persistent &&
    // The kernel keeps whatever timeout it was given; it only matters for persistent services.
    (!want.persistent || want.timeout === have.timeout) &&
    want.onePacket === have.onePacket &&
    want.netmask === have.netmask
  );
}

/** True when the kernel destination already has the desired method, weight and thresholds. */
export function sameDestAttrs(want: Destination, have: Destination): boolean {
  return (
    want.forward === have.forward &&
    want.weight === have.weight &&
    want.upperThreshold === have.upperThreshold &&
    want.lowerThreshold === have.lowerThreshold
  );
}

/**
 * Ops in application order: unmanaged service deletions first (with -u), then per desired service
 * (file order): add or edit the service, delete destinations it should not have, edit the ones
 * that differ, add the missing ones. Destinations outside the desired table are always deleted
 * within a managed service, as the original did.
 */
export function reconcile(desired: Table, kernel: Table, opts: ReconcileOptions): Op[] {
  const ops: Op[] = [];
  const kernelById = new Map<string, Entry>();
  for (const e of kernel) kernelById.set(serviceId(e.service.key), e);
  const desiredIds = new Set(desired.map((e) => serviceId(e.service.key)));

  if (opts.deleteUnmanaged) {
    for (const k of kernel) {
      if (!desiredIds.has(serviceId(k.service.key))) ops.push({ kind: 'delete-service', key: k.service.key });
    }
  }

  // Indexed loops: a load of 100k ops runs mostly before the JIT has compiled this (under emulation).
  for (let i = 0; i < desired.length; i++) {
    const want = desired[i]!;
    const key = want.service.key;
    const have = kernelById.get(serviceId(key));
    if (!have) {
      ops.push({ kind: 'add-service', service: want.service });
      const dests = want.dests;
      for (let j = 0; j < dests.length; j++) ops.push({ kind: 'add-dest', service: key, dest: dests[j]! });
      continue;
    }
    if (!sameServiceAttrs(want.service, have.service)) ops.push({ kind: 'edit-service', service: want.service });

    const wantDests = new Map(want.dests.map((d) => [destId(d), d] as const));
    const haveDests = new Map(have.dests.map((d) => [destId(d), d] as const));
    for (const [id, d] of haveDests) {
      if (!wantDests.has(id)) ops.push({ kind: 'delete-dest', service: key, dest: d });
    }
    for (const [id, d] of wantDests) {
      const h = haveDests.get(id);
      if (h && !sameDestAttrs(d, h)) ops.push({ kind: 'edit-dest', service: key, dest: d });
    }
    for (const [id, d] of wantDests) {
      if (!haveDests.has(id)) ops.push({ kind: 'add-dest', service: key, dest: d });
    }
  }
  return ops;
}
