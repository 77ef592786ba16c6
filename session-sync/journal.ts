// The backup's copy on disk: every snapshot and change the backup applied, appended as it arrives, so
// a backup restarted while the master is down still has everything and `write` works from it.
// Record: u32 body length, 4-byte checksum (SHA-256 prefix of the body), body = u8 message type,
// u48 time written (epoch ms), message payload encoded against that time (so ages come back exact).
// A torn last record (crash mid-write) is cut off at replay; compaction rewrites the file as one
// snapshot (temp file, fsync, rename, fsync of the directory).

import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Store } from './store.js';
import { WireError } from './wire/bytes.js';
import { decodePayload, encodePayload, typeCode, type Message } from './wire/messages.js';

const RECORD_HEAD = 8;
/** Entries per ENTRIES record when compacting. */
const CHUNK = 2000;

function checksum(body: Buffer): Buffer {
  return createHash('sha256').update(body).digest().subarray(0, 4);
}

export function encodeRecord(m: Message, writtenAt: number): Buffer {
  const payload = encodePayload(m, writtenAt);
  const out = Buffer.allocUnsafe(RECORD_HEAD + 7 + payload.length);
  out.writeUInt32BE(7 + payload.length, 0);
  out[8] = typeCode(m);
  out.writeUIntBE(Math.max(0, Math.floor(writtenAt)), 9, 6);
  payload.copy(out, 15);
  checksum(out.subarray(8)).copy(out, 4);
  return out;
}

export interface ReadResult {
  readonly messages: Message[];
  /** Bytes of whole, valid records; anything after is torn or corrupt. */
  readonly validBytes: number;
  /** Why reading stopped early, if it did. */
  readonly problem?: string;
}

/** Parses a journal's bytes. Pure. */
export function readRecords(buf: Buffer): ReadResult {
  const messages: Message[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < RECORD_HEAD) return { messages, validBytes: pos, problem: `torn record head at byte ${pos}` };
    const len = buf.readUInt32BE(pos);
    if (len < 7 || len > 64 << 20) return { messages, validBytes: pos, problem: `record length ${len} at byte ${pos} is impossible` };
    if (buf.length - pos - RECORD_HEAD < len) return { messages, validBytes: pos, problem: `torn record at byte ${pos}` };
    const body = buf.subarray(pos + RECORD_HEAD, pos + RECORD_HEAD + len);
    if (!checksum(body).equals(buf.subarray(pos + 4, pos + 8))) {
      return { messages, validBytes: pos, problem: `checksum mismatch in the record at byte ${pos}` };
    }
    try {
      messages.push(decodePayload(body[0]!, body.subarray(7), body.readUIntBE(1, 6)));
    } catch (e) {
      const why = e instanceof WireError ? e.message : String(e);
      return { messages, validBytes: pos, problem: `record at byte ${pos}: ${why}` };
    }
    pos += RECORD_HEAD + len;
  }
  return { messages, validBytes: pos };
}

/** Applies journal messages to a store without the live link's sequence checks. Pure. */
export function replayInto(store: Store, messages: readonly Message[]): void {
  let gen = 0;
  for (const m of messages) {
    if (m.type === 'snapshot-begin') gen = store.beginGeneration();
    else if (m.type === 'entries') {
      store.touch(m.table);
      for (const e of m.entries) store.upsert(m.table, e);
    } else if (m.type === 'snapshot-end' && gen > 0) store.sweep(gen);
    else if (m.type === 'changes') for (const c of m.changes) store.apply(c);
  }
}

/** The store as journal messages: one complete snapshot. */
export function snapshotMessages(store: Store): Message[] {
  const out: Message[] = [{ type: 'snapshot-begin', generation: 0, seq: 0 }];
  const tables = store.tables();
  for (const table of tables) {
    const entries = store.entries(table);
    if (entries.length === 0) out.push({ type: 'entries', table, entries: [] });
    for (let i = 0; i < entries.length; i += CHUNK) out.push({ type: 'entries', table, entries: entries.slice(i, i + CHUNK) });
  }
  out.push({ type: 'snapshot-end', generation: 0, tables: tables.length, entries: store.size });
  return out;
}

export class Journal {
  private fd: number;
  private size: number;
  private compactedSize: number;
  private dirty = false;

  private constructor(
    readonly path: string,
    fd: number,
    size: number,
  ) {
    this.fd = fd;
    this.size = size;
    this.compactedSize = size;
  }

  /**
   * Opens (creating) the journal, replays it into `store`, and cuts off a torn tail. Returns the
   * journal and what replay found, for the start-up log.
   */
  static open(path: string, store: Store): { journal: Journal; messages: number; problem?: string } {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const fd = openSync(path, 'a+', 0o600);
    const buf = readFileSync(path);
    const r = readRecords(buf);
    replayInto(store, r.messages);
    if (r.validBytes < buf.length) ftruncateSync(fd, r.validBytes);
    const j = new Journal(path, fd, r.validBytes);
    return r.problem === undefined ? { journal: j, messages: r.messages.length } : { journal: j, messages: r.messages.length, problem: r.problem };
  }

  get bytes(): number {
    return this.size;
  }

  append(m: Message, now: number): void {
    const rec = encodeRecord(m, now);
    writeSync(this.fd, rec);
    this.size += rec.length;
    this.dirty = true;
  }

  /** Worth compacting: the file has grown to well over one snapshot of the store. */
  wantsCompaction(): boolean {
    return this.size > 2 * this.compactedSize + (1 << 20);
  }

  /** Rewrites the journal as one snapshot of `store`, atomically. */
  compact(store: Store, now: number): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    let size = 0;
    try {
      for (const m of snapshotMessages(store)) {
        const rec = encodeRecord(m, now);
        writeSync(fd, rec);
        size += rec.length;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dfd = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = this.compactedSize = size;
    this.dirty = false;
  }

  /** Flush to the disk (called on a timer and at close; a crashed process loses nothing written). */
  sync(): void {
    if (!this.dirty) return;
    fdatasyncSync(this.fd);
    this.dirty = false;
  }

  close(): void {
    try {
      this.sync();
    } finally {
      closeSync(this.fd);
    }
  }

  /** For tests: the size the kernel reports. */
  statSize(): number {
    return fstatSync(this.fd).size;
  }
}
