// The flock shared with surealived: real contention with another open file and another process.

import { strict as assert } from 'node:assert';
import { FlockLock } from '../../ipvssync/lock.js';
import { handoffDir, holdLockInChild, untilWaitingForLock, type HandoffDir } from './helpers.js';

/** Whether `p` settles within `ms`; the timer is cleared either way, so none outlives the test. */
async function settlesWithin<T>(p: Promise<T>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('ipvssync lock', () => {
  let d: HandoffDir;
  beforeEach(() => {
    d = handoffDir();
  });
  afterEach(() => d.cleanup());

  it('waits while another open file holds the lock, and gets it once released', async () => {
    const ours = new FlockLock(d.lockFile);
    const theirs = new FlockLock(d.lockFile);
    try {
      assert.equal(theirs.tryAcquire(), true);
      const waiting = ours.acquire();
      await untilWaitingForLock(d.lockFile, process.pid);
      assert.equal(await settlesWithin(waiting, 150), false, 'acquired a lock held elsewhere');
      theirs.release();
      assert.equal(await settlesWithin(waiting, 10_000), true);
      assert.equal(theirs.tryAcquire(), false, 'our lock is exclusive');
      ours.release();
      assert.equal(theirs.tryAcquire(), true);
    } finally {
      ours.close();
      theirs.close();
    }
  });

  it('waits while another process holds the lock', async () => {
    const holder = await holdLockInChild(d.lockFile);
    const ours = new FlockLock(d.lockFile);
    try {
      const waiting = ours.acquire();
      await untilWaitingForLock(d.lockFile, process.pid);
      assert.equal(await settlesWithin(waiting, 200), false);
      await holder.release();
      assert.equal(await settlesWithin(waiting, 10_000), true);
    } finally {
      ours.close();
      holder.close();
    }
  });

  it('takes a free lock at once: it is held as soon as acquire() returns, before any await', async () => {
    const ours = new FlockLock(d.lockFile);
    const theirs = new FlockLock(d.lockFile);
    try {
      const acquired = ours.acquire();
      assert.equal(theirs.tryAcquire(), false, 'the lock was not taken synchronously');
      await acquired;
      ours.release();
      assert.equal(theirs.tryAcquire(), true);
    } finally {
      ours.close();
      theirs.close();
    }
  });

  it('refuses a lock file that does not exist (surealived creates it)', () => {
    assert.throws(() => new FlockLock(`${d.root}/missing.lock`), /ENOENT/);
  });
});
