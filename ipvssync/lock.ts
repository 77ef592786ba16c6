// The advisory lock shared with surealived (spec 8.1): exclusive flock(2) on lock_sync_file, held
// around the start-up sync and each loop iteration, never while sleeping. The file must already exist.

import { FileLock } from '../common/lock.js';

/** What the sync loop needs from a lock; tests may pass a no-op one where the lock is not the subject. */
export interface SyncLock {
  acquire(): Promise<void>;
  release(): void;
}

/** The hand-off lock opened read-only, as the original: throws ENOENT when surealived has not created it. */
export class FlockLock extends FileLock implements SyncLock {
  constructor(path: string) {
    super(path, false);
  }

  /**
   * A free lock (the usual case: surealived holds it only while writing) is taken at once with a
   * non-blocking flock; only a held one is waited for on the thread pool. Every pass takes the lock,
   * and the hop to the pool and back was a fixed cost of each diff pass.
   */
  override acquire(): Promise<void> {
    return this.tryAcquire() ? Promise.resolve() : super.acquire();
  }
}

/** For callers that run without surealived (tests of other parts). */
export const noLock: SyncLock = { acquire: async () => undefined, release: () => undefined };
