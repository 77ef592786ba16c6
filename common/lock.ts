// The advisory lock shared by surealived and ipvssync: an exclusive flock(2) on ipvsfull.lock
// (spec 8.1). Acquired asynchronously (the wait runs on libuv's thread pool), so a long hold by
// ipvssync never stalls the probes in surealived's event loop (the original blocked: bug 11.20).

import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';

type FlockFlag = 'sh' | 'ex' | 'shnb' | 'exnb' | 'un';
interface FsExt {
  flock(fd: number, flags: FlockFlag, cb: (err: NodeJS.ErrnoException | null) => void): void;
  flockSync(fd: number, flags: FlockFlag): void;
}
const fsExt = createRequire(import.meta.url)('fs-ext') as FsExt;

export class FileLock {
  private fd: number;
  private held = false;

  /** Opens (creating if `create`, mode 0744 as the original) the lock file. */
  constructor(readonly path: string, create: boolean) {
    this.fd = openSync(path, create ? 'a' : 'r', 0o744);
  }

  /** Wait for the exclusive lock. */
  acquire(): Promise<void> {
    return new Promise((resolve, reject) => {
      fsExt.flock(this.fd, 'ex', (err) => {
        if (err) reject(new Error(`flock ${this.path}: ${err.message}`));
        else {
          this.held = true;
          resolve();
        }
      });
    });
  }

  /** Take the lock only if free right now. */
  tryAcquire(): boolean {
    try {
      fsExt.flockSync(this.fd, 'exnb');
      this.held = true;
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EWOULDBLOCK' || (e as NodeJS.ErrnoException).code === 'EAGAIN') return false;
      throw e;
    }
  }

  /** Blocking acquire, for shutdown paths only. */
  acquireSync(): void {
    fsExt.flockSync(this.fd, 'ex');
    this.held = true;
  }

  release(): void {
    if (!this.held) return;
    fsExt.flockSync(this.fd, 'un');
    this.held = false;
  }

  /** Run `fn` under the lock; the lock is released whatever happens. */
  async with<T>(fn: () => T | Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  close(): void {
    this.release();
    closeSync(this.fd);
  }
}
