// Crash-safe file replacement for the dump files: write a temp file in the same directory, fsync,
// rename over the target, fsync the directory. The original truncated in place (spec 11.18).

import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;

/** Same directory (rename must not cross filesystems), dot-prefixed, unique per process and call. */
function tempPathFor(path: string): string {
  counter = (counter + 1) % 1_000_000_000;
  return join(dirname(path), `.${basename(path)}.${process.pid}.${counter}.tmp`);
}

export interface AtomicWriteOptions {
  /** Mode of a newly created file, before umask; the original's fopen() gives 0666 & ~umask. */
  readonly mode?: number;
}

/** Replaces `path` with `data` so that readers see either the old or the new content, never a mix. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'wx', opts.mode ?? 0o666);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dirname(path));
}

/** Synchronous variant for the shutdown path, where the event loop may not run again. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'wx', opts.mode ?? 0o666);
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file was never created or is already gone
    }
    throw e;
  }
  fsyncDirSync(dirname(path));
}

/** Makes the rename durable. Some filesystems refuse fsync on a directory (EINVAL/EISDIR): not an error for us. */
async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    if (!isIgnorableDirSyncError(e)) throw e;
  } finally {
    await fh?.close();
  }
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    if (!isIgnorableDirSyncError(e)) throw e;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function isIgnorableDirSyncError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EINVAL' || code === 'EISDIR' || code === 'EPERM' || code === 'EBADF';
}
