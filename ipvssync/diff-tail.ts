// Tails the diff files from the current offset, one complete line at a time (a last line without
// its newline waits for it), following `DIFF file=` chains inside diff_sync_dir.

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parseDiffLine, type DiffLineOfReal } from './handoff.js';

export interface TailEntry {
  /** `file:line` of the diff line. */
  readonly where: string;
  readonly line: DiffLineOfReal;
}

export interface TailBatch {
  readonly entries: readonly TailEntry[];
  /** Lines refused (`file:line: reason`); they are skipped. */
  readonly errors: readonly string[];
  /** Notices (a truncated file read again from the start). */
  readonly warnings: readonly string[];
  /** Set when the tail cannot advance (a chain target that cannot be opened yet); retried next read. */
  readonly blocked?: string;
}

/** Longest diff line accepted; a longer one (no newline in sight) is refused and skipped. */
export const MAX_LINE = 65536;
const CHUNK = 1 << 20;
/** How many recently followed files are remembered to refuse chain loops. */
const VISITED_MAX = 64;

/** Split bytes into complete lines; `rest` is how many trailing bytes have no newline yet. */
export function completeLines(buf: Buffer): { lines: string[]; consumed: number } {
  const last = buf.lastIndexOf(0x0a);
  if (last < 0) return { lines: [], consumed: 0 };
  const lines = buf.subarray(0, last).toString('utf8').split('\n');
  return { lines, consumed: last + 1 };
}

/**
 * Reads are synchronous: a diff file is a small local file read from where the last pass stopped, so
 * fstat + read cost a few microseconds, while each fs/promises call took a thread-pool hop and its
 * promise machinery: per-pass costs that, under emulation, the changes right after a load queued behind.
 */
export class DiffTailer {
  private fd: number | undefined;
  /** Reused from pass to pass (a pass's bytes become strings before the next read). */
  private buf = Buffer.allocUnsafe(0);
  private file: string | null;
  private offset = 0;
  private lineNo = 0;
  private skipping = false;
  private readonly visited: string[] = [];

  constructor(private readonly diffDir: string, start: string | null) {
    this.file = start;
    if (start) this.visited.push(start);
  }

  /** The diff file being tailed, or null when the full file named none. */
  get current(): string | null {
    return this.file;
  }

  get position(): { file: string | null; offset: number; line: number } {
    return { file: this.file, offset: this.offset, line: this.lineNo };
  }

  /** Open (or check) the current file; O_NOFOLLOW so a symlink planted in the diff dir is not followed. */
  private ensureOpen(): number {
    if (this.fd === undefined) this.fd = openSync(this.file!, constants.O_RDONLY | constants.O_NOFOLLOW);
    return this.fd;
  }

  /** Read every complete line from the current position to the end of the chain. */
  async read(): Promise<TailBatch> {
    const entries: TailEntry[] = [];
    const errors: string[] = [];
    const warnings: string[] = [];
    if (!this.file) return { entries, errors, warnings };
    let fd: number;
    try {
      fd = this.ensureOpen();
    } catch (e) {
      return { entries, errors, warnings, blocked: `cannot open diff file ${this.file}: ${(e as Error).message}` };
    }
    for (;;) {
      const size = fstatSync(fd).size;
      if (size < this.offset) {
        // Truncated under us (a tester restarted within the same second, spec 11.19): start over.
        warnings.push(`${this.file}: truncated to ${size} bytes (was read up to ${this.offset}), reading it again from the start`);
        this.offset = 0;
        this.lineNo = 0;
        this.skipping = false;
      }
      if (size === this.offset) return { entries, errors, warnings };
      const start = this.offset;
      const len = Math.min(size - start, CHUNK);
      if (this.buf.length < len) this.buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(len, 2 * this.buf.length, 4096)));
      const bytesRead = readSync(fd, this.buf, 0, len, this.offset);
      const chunk = this.buf.subarray(0, bytesRead);
      if (bytesRead === 0) return { entries, errors, warnings };

      if (this.skipping) {
        const nl = chunk.indexOf(0x0a);
        if (nl < 0) {
          this.offset += chunk.length;
          continue;
        }
        this.offset += nl + 1;
        this.lineNo++;
        this.skipping = false;
        continue;
      }

      const { lines, consumed } = completeLines(chunk);
      if (consumed === 0) {
        if (chunk.length > MAX_LINE) {
          errors.push(`${this.file}:${this.lineNo + 1}: line longer than ${MAX_LINE} bytes, skipped`);
          this.offset += chunk.length;
          this.skipping = true;
          continue;
        }
        return { entries, errors, warnings }; // a partial last line: wait for its newline
      }
      let used = 0;
      for (const text of lines) {
        const where = `${this.file}:${this.lineNo + 1}`;
        const lineBytes = Buffer.byteLength(text) + 1;
        const p = parseDiffLine(text, this.diffDir);
        if (!p.ok) errors.push(`${where}: ${p.reason}`);
        else if (p.line.kind === 'real') entries.push({ where, line: p.line });
        else if (p.line.kind === 'chain') {
          const target = p.line.file;
          if (this.visited.includes(target)) {
            errors.push(`${where}: DIFF target '${target}' was already followed (chain loop), line skipped`);
          } else {
            let next: number;
            try {
              next = openSync(target, constants.O_RDONLY | constants.O_NOFOLLOW);
            } catch (e) {
              // Stay before the chain line: surealived creates the target right after writing it.
              this.offset += used;
              return { entries, errors, warnings, blocked: `${where}: cannot open DIFF target: ${(e as Error).message}` };
            }
            closeSync(fd);
            this.fd = fd = next;
            this.file = target;
            this.visited.push(target);
            if (this.visited.length > VISITED_MAX) this.visited.shift();
            this.offset = 0;
            this.lineNo = 0;
            used = -1;
            break;
          }
        }
        used += lineBytes;
        this.lineNo++;
      }
      if (used >= 0) {
        this.offset += used;
        // All there was at the stat has been read: lines written since are for the next read
        // (one stat less per pass; the loop's watch wakes it for them).
        if (len === size - start) return { entries, errors, warnings };
      }
    }
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
