// What one op does to an IPVS table, with the kernel's refusals (EEXIST, ESRCH, ENOENT) and
// libipvs's error texts. Pure; the in-memory backend (dry-run, tests) is built on it.

import { destId, serviceId, type Entry, type Op, type Table } from './types.js';

export type ApplyResult = { readonly ok: true; readonly table: Table } | { readonly ok: false; readonly table: Table; readonly error: string };

export function applyOp(table: Table, op: Op): ApplyResult {
  const sid = serviceId(op.kind === 'add-service' || op.kind === 'edit-service' ? op.service.key : op.kind === 'delete-service' ? op.key : op.service);
  const idx = table.findIndex((e) => serviceId(e.service.key) === sid);
  const fail = (error: string): ApplyResult => ({ ok: false, table, error });
  const replace = (e: Entry): ApplyResult => ({ ok: true, table: table.map((x, i) => (i === idx ? e : x)) });

  if (op.kind === 'add-service') {
    if (idx >= 0) return fail('EEXIST: Service already exists');
    return { ok: true, table: [...table, { service: op.service, dests: [] }] };
  }
  if (idx < 0) return fail(op.kind === 'add-dest' ? 'ESRCH: Service not defined' : 'ESRCH: No such service');
  const entry = table[idx]!;
  switch (op.kind) {
    case 'edit-service':
      return replace({ ...entry, service: op.service });
    case 'delete-service':
      return { ok: true, table: table.filter((_, i) => i !== idx) };
    default: {
      const did = destId(op.dest);
      const di = entry.dests.findIndex((d) => destId(d) === did);
      if (op.kind === 'add-dest') {
        if (di >= 0) return fail('EEXIST: Destination already exists');
        return replace({ ...entry, dests: [...entry.dests, { ...op.dest, activeConns: 0, inactConns: 0, persistConns: 0 }] });
      }
      if (di < 0) return fail('ENOENT: No such destination');
      if (op.kind === 'delete-dest') return replace({ ...entry, dests: entry.dests.filter((_, i) => i !== di) });
      const old = entry.dests[di]!;
      const updated = { ...op.dest, activeConns: old.activeConns ?? 0, inactConns: old.inactConns ?? 0, persistConns: old.persistConns ?? 0 };
      return replace({ ...entry, dests: entry.dests.map((d, i) => (i === di ? updated : d)) });
    }
  }
}
