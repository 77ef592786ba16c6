// Behaviour of the atomic dump writer: no temp files left, no torn file ever visible to a reader.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { writeFileAtomic, writeFileAtomicSync } from '../../surealived/state/atomic-write.js';
import { tempDir } from './fixtures.js';

/**
 * A reader in another thread, so it really runs while the writes are in flight; it reads until the
 * writer says it is done (workerData.shared[0] set), however long a busy machine makes that, and
 * counts its reads in shared[1] as it goes.
 */
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const valid = new Set(workerData.valid);
let reads = 0, torn = 0;
while (Atomics.load(workerData.shared, 0) === 0) {
  let text;
  try { text = readFileSync(workerData.path, 'utf8'); } catch { continue; }
  reads++;
  Atomics.add(workerData.shared, 1, 1);
  if (!valid.has(text)) torn++;
}
parentPort.postMessage({ reads, torn });
`;

describe('state/atomic-write', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('replaces the content and leaves no temp file', async () => {
    const path = join(tmp.dir, 'offline.dump');
    writeFileSync(path, 'old content that is longer than the new one\n');
    await writeFileAtomic(path, 'new\n');
    assert.equal(readFileSync(path, 'utf8'), 'new\n');
    writeFileAtomicSync(path, Buffer.from('sync\n'));
    assert.equal(readFileSync(path, 'utf8'), 'sync\n');
    assert.deepEqual(readdirSync(tmp.dir), ['offline.dump']);
  });

  it('creates files with the umask-filtered 0666 mode like fopen', async () => {
    const path = join(tmp.dir, 'x');
    await writeFileAtomic(path, '');
    const umask = process.umask();
    assert.equal(statSync(path).mode & 0o777, 0o666 & ~umask);
  });

  it('a failed write leaves the old file intact and no temp file', async () => {
    const path = join(tmp.dir, 'sub');
    await assert.rejects(writeFileAtomic(join(path, 'f'), 'x'), /ENOENT/);
    assert.deepEqual(readdirSync(tmp.dir), []);
  });

  it('a concurrent reader never sees a torn or empty file', async () => {
    const path = join(tmp.dir, 'stats.dump');
    // Large, distinct contents: a truncate-in-place writer would be caught half-way.
    const contents = ['A', 'B', 'C', 'D'].map((c) => `${c.repeat(200_000)}\n`);
    writeFileSync(path, contents[0]!);
    const shared = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(READER, { eval: true, workerData: { path, valid: contents, shared } });
    const result = new Promise<{ reads: number; torn: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    // 1.2 s of write rounds, at least 6 of them (each flushes to disk: slow on a busy disk), and on
    // until the reader (a thread that can be slow to start on a busy machine) read 6 times meanwhile.
    const until = Date.now() + 1200;
    const giveUp = Date.now() + 20_000;
    let writes = 0;
    while ((Date.now() < until || writes <= 5 || Atomics.load(shared, 1) <= 5) && Date.now() < giveUp) {
      await Promise.all([writeFileAtomic(path, contents[writes % 4]!), writeFileAtomic(path, contents[(writes + 1) % 4]!)]);
      writeFileAtomicSync(path, contents[(writes + 2) % 4]!);
      writes += 1;
    }
    Atomics.store(shared, 0, 1);
    const { reads, torn } = await result;
    await worker.terminate();
    assert.ok(writes > 5, `only ${writes} write rounds`);
    assert.ok(reads > 5, `only ${reads} reads`);
    assert.equal(torn, 0);
    assert.deepEqual(readdirSync(tmp.dir), ['stats.dump']);
  });
});
