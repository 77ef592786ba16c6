// What the master replicates from and the backup writes to: a source reads kernel tables and reports
// changes; a sink writes the backup's copy back into kernel tables. xt_recent and nftables implement
// them today; Pound sessions and the director's own operator state plug in the same way.

import type { Change, Entry, TableRef } from './model.js';

export interface Source {
  /** Stable id: `recent`, or `nft/<family>/<table>/<set>`. */
  readonly id: string;
  /**
   * Reads the tables now; the first poll reports every entry, later ones what changed. A source whose
   * read comes in parts (an nftables dump) may hand changes to `early` as each part is read, so a big
   * table's first parts need not wait for its last; the promise then holds only the rest.
   */
  poll(now: number, early?: (changes: Change[]) => void): Promise<Change[]>;
  /** Whether a table belongs to this source (its tables are dropped when the source stops). */
  owns(table: TableRef): boolean;
  /** Forget what was reported: the next poll reports every entry again. */
  reset(): void;
  close?(): void;
}

export interface SinkReport {
  readonly written: number;
  readonly skipped: number;
  /** Per-entry or per-table problems; empty when all went in. */
  readonly failed: readonly { readonly what: string; readonly why: string }[];
}

export interface Sink {
  /** Writes one table's entries into the kernel, merging (never flushing first). */
  write(table: TableRef, entries: readonly Entry[], now: number): Promise<SinkReport>;
}
