// The replicated copy: tables of entries keyed by address. The master keeps one as the sum of what its
// sources reported (what a new backup's snapshot is made of); a backup keeps one as what the master
// sent. Pure and synchronous; the journal and the sockets live elsewhere.

import { entryKey, tableId, type Change, type Entry, type TableRef } from './model.js';

interface Slot {
  entry: Entry;
  /** Snapshot generation that last confirmed this entry (backup side; 0 outside snapshots). */
  gen: number;
}

interface Table {
  readonly ref: TableRef;
  readonly entries: Map<string, Slot>;
  gen: number;
}

export class Store {
  private readonly byId = new Map<string, Table>();
  private generation = 0;
  private total = 0;

  /** Number of entries over all tables. */
  get size(): number {
    return this.total;
  }

  /**
   * Applies one change; returns false when it changed nothing (an upsert of an identical entry, a
   * delete of an absent key, a drop of an absent table), so callers forward only real changes.
   */
  apply(c: Change): boolean {
    switch (c.op) {
      case 'upsert':
        return this.upsert(c.table, c.entry);
      case 'delete':
        return this.delete(c.table, c.key);
      case 'drop':
        return this.drop(c.table);
    }
  }

  upsert(ref: TableRef, entry: Entry): boolean {
    const t = this.table(ref, true);
    t.gen = this.generation;
    const key = entryKey(entry);
    const old = t.entries.get(key);
    if (old) {
      old.gen = this.generation;
      if (sameEntry(old.entry, entry)) return false;
      old.entry = entry;
      return true;
    }
    t.entries.set(key, { entry, gen: this.generation });
    this.total += 1;
    return true;
  }

  delete(ref: TableRef, key: string): boolean {
    const t = this.byId.get(tableId(ref));
    if (!t || !t.entries.delete(key)) return false;
    this.total -= 1;
    return true;
  }

  /** Declares a table (a snapshot may carry an empty one). */
  touch(ref: TableRef): void {
    this.table(ref, true).gen = this.generation;
  }

  drop(ref: TableRef): boolean {
    const id = tableId(ref);
    const t = this.byId.get(id);
    if (!t) return false;
    this.total -= t.entries.size;
    this.byId.delete(id);
    return true;
  }

  /** Drops every table (of one kind, when given); returns the drops made. */
  clear(kind?: TableRef['kind'], pick: (ref: TableRef) => boolean = () => true): Change[] {
    const out: Change[] = [];
    for (const t of [...this.byId.values()]) {
      if ((kind === undefined || t.ref.kind === kind) && pick(t.ref)) {
        this.drop(t.ref);
        out.push({ op: 'drop', table: t.ref });
      }
    }
    return out;
  }

  /** Starts a snapshot: everything upserted or touched from now on belongs to the new generation. */
  beginGeneration(): number {
    this.generation += 1;
    return this.generation;
  }

  /**
   * Ends a snapshot: entries and tables the snapshot did not confirm are stale (gone on the master
   * while we were away) and are removed. Returns what was removed, as changes.
   */
  sweep(gen: number): Change[] {
    const out: Change[] = [];
    for (const t of [...this.byId.values()]) {
      if (t.gen !== gen) {
        this.drop(t.ref);
        out.push({ op: 'drop', table: t.ref });
        continue;
      }
      for (const [key, slot] of t.entries) {
        if (slot.gen !== gen) {
          t.entries.delete(key);
          this.total -= 1;
          out.push({ op: 'delete', table: t.ref, key });
        }
      }
    }
    return out;
  }

  /** Removes nftables entries whose expiry has passed (the kernel has dropped them too). */
  expire(now: number): number {
    let n = 0;
    for (const t of this.byId.values()) {
      if (t.ref.kind !== 'nft') continue;
      for (const [key, slot] of t.entries) {
        const e = slot.entry;
        if (e.kind === 'nft' && e.expiresAt !== null && e.expiresAt <= now) {
          t.entries.delete(key);
          n += 1;
        }
      }
    }
    this.total -= n;
    return n;
  }

  has(ref: TableRef): boolean {
    return this.byId.has(tableId(ref));
  }

  get(ref: TableRef, key: string): Entry | undefined {
    return this.byId.get(tableId(ref))?.entries.get(key)?.entry;
  }

  /** Tables in id order (stable output for show and snapshots). */
  tables(kind?: TableRef['kind']): TableRef[] {
    return [...this.byId.entries()]
      .filter(([, t]) => kind === undefined || t.ref.kind === kind)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, t]) => t.ref);
  }

  entries(ref: TableRef): Entry[] {
    const t = this.byId.get(tableId(ref));
    return t ? [...t.entries.values()].map((s) => s.entry) : [];
  }

  count(ref: TableRef): number {
    return this.byId.get(tableId(ref))?.entries.size ?? 0;
  }

  private table(ref: TableRef, create: boolean): Table {
    const id = tableId(ref);
    let t = this.byId.get(id);
    if (!t && create) {
      t = { ref, entries: new Map(), gen: this.generation };
      this.byId.set(id, t);
    }
    return t!;
  }
}

/** Value equality of two entries with the same key. */
export function sameEntry(a: Entry, b: Entry): boolean {
  if (a.kind === 'recent' && b.kind === 'recent') {
    if (a.ttl !== b.ttl || a.family !== b.family || a.hits.length !== b.hits.length) return false;
    for (let i = 0; i < a.hits.length; i++) if (a.hits[i] !== b.hits[i]) return false;
    return true;
  }
  if (a.kind === 'http' && b.kind === 'http') {
    return a.listener === b.listener && a.service === b.service && a.key === b.key && a.backend === b.backend && a.content === b.content && a.lastAccess === b.lastAccess;
  }
  if (a.kind === 'override' && b.kind === 'override') {
    return a.virtual === b.virtual && a.real === b.real && a.weight === b.weight && a.percent === b.percent && a.rstate === b.rstate;
  }
  if (a.kind === 'nft' && b.kind === 'nft') {
    if (a.family !== b.family || a.timeoutMs !== b.timeoutMs || a.expiresAt !== b.expiresAt) return false;
    const x = a.data;
    const y = b.data;
    if (x === null || y === null) return x === y;
    if (x.type === 'mark' && y.type === 'mark') return x.mark === y.mark;
    if (x.type === 'addr_port' && y.type === 'addr_port') return x.addr === y.addr && x.port === y.port;
    return false;
  }
  return false;
}
