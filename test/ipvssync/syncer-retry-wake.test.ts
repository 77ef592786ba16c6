// The ipvssync loop's pacing (in-memory backend): refused ops retried with a growing wait, diff lines
// that touch only their own virtuals, and a sleep cut short by a change in diff_sync_dir.

import { strict as assert } from 'node:assert';
import { appendFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IpvsBackend } from '../../ipvssync/backend.js';
import { FlockLock } from '../../ipvssync/lock.js';
import { MemoryBackend } from '../../ipvssync/memory-backend.js';
import { Syncer } from '../../ipvssync/syncer.js';
import type { IpvsInfo, Op, OpResult, Table } from '../../ipvssync/types.js';
import { fullHead, handoffDir, memoryLogger, real, WEB_VIRTUAL, webDiff, type HandoffDir } from './helpers.js';

/** Refuses every op `pred` selects, as a kernel refuses an unknown scheduler; counts the table reads. */
class RefusingBackend implements IpvsBackend {
  reads = 0;
  readonly batches: (readonly Op[])[] = [];
  constructor(readonly inner: MemoryBackend, public pred: (op: Op) => boolean) {}
  info(): Promise<IpvsInfo> {
    return this.inner.info();
  }
  readTable(): Promise<Table> {
    this.reads++;
    return this.inner.readTable();
  }
  async apply(ops: readonly Op[]): Promise<OpResult[]> {
    this.batches.push(ops);
    const out: OpResult[] = [];
    for (const op of ops) {
      if (this.pred(op)) out.push({ op, ok: false, error: 'ENOSCHED: Scheduler or persistence engine not found' });
      else out.push(...(await this.inner.apply([op])));
    }
    return out;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const BAD_VIRTUAL = 'virtual vname=bad vproto=tcp vaddr=10.0.0.2 vport=80 vrt=dr vsched=nosuch';

describe('ipvssync loop pacing (in-memory backend)', () => {
  let d: HandoffDir;
  let lock: FlockLock;
  let syncer: Syncer | undefined;
  let clock = 0;
  let logged: { lines: string[] };

  function makeSyncer(backend: IpvsBackend): Syncer {
    const m = memoryLogger();
    logged = m;
    syncer = new Syncer({
      paths: { fullSyncFile: d.fullFile, fullReloadFile: d.reloadFile, diffSyncDir: d.diffDir },
      backend,
      lock,
      log: m.log,
      deleteUnmanaged: false,
      keepDiffs: true,
      now: () => clock,
      maxRetryDelayMs: 1000,
    });
    return syncer;
  }

  beforeEach(() => {
    d = handoffDir();
    lock = new FlockLock(d.lockFile);
    clock = 1_000_000;
  });
  afterEach(async () => {
    await syncer?.close();
    syncer = undefined;
    lock.close();
    d.cleanup();
  });

  it('a refused op is retried on the next pass, then after 200, 400, 800 ms and at most maxRetryDelayMs, each time logged at error level', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n\n${BAD_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const b = new RefusingBackend(new MemoryBackend(), (op) => op.kind === 'add-service' && op.service.scheduler === 'nosuch');
    const s = makeSyncer(b);
    await s.start();
    const errors = (): number => logged.lines.filter((l) => /error : IPVS add service tcp 10\.0\.0\.2:80 nosuch failed: ENOSCHED/.test(l)).length;
    assert.equal(errors(), 1);
    const retriedAfter = async (ms: number): Promise<void> => {
      const before = b.reads;
      clock += ms - 1;
      await s.iterate();
      assert.equal(b.reads, before, `not retried before ${ms} ms`);
      clock += 1;
      await s.iterate();
      assert.equal(b.reads, before + 1, `retried after ${ms} ms`);
    };
    await s.iterate();
    assert.equal(errors(), 2, 'the first retry is on the next pass');
    for (const wait of [200, 400, 800, 1000, 1000]) await retriedAfter(wait);
    assert.equal(errors(), 7);
    assert.equal(s.dirty, true);
  });

  it('while a retry waits, diff lines still reach the kernel, and only their virtual is reconciled', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n\n${BAD_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const inner = new MemoryBackend();
    const b = new RefusingBackend(inner, (op) => op.kind === 'add-service' && op.service.scheduler === 'nosuch');
    const s = makeSyncer(b);
    await s.start();
    await s.iterate(); // first retry, fails again: the next one waits 200 ms
    const reads = b.reads;
    appendFileSync(d.diff(100), webDiff('addreal', 'w1', '10.0.1.5', 3) + webDiff('chgreal', 'w1', '10.0.1.5', 3));
    await s.iterate();
    assert.equal(b.reads, reads, 'no full sync before the wait is over');
    assert.deepEqual(
      b.batches.at(-1)?.map((op) => op.kind),
      ['edit-dest'],
      'one op, for the touched virtual only (the refused one is not re-sent by the diff path)',
    );
    const web = (await inner.readTable()).find((e) => e.service.scheduler === 'wrr');
    assert.equal(web?.dests[0]?.weight, 3);
  });

  it('run() picks up a diff line within milliseconds of its write, not at the end of the interval', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const b = new MemoryBackend();
    const s = makeSyncer(b);
    await s.start();
    const stop = new AbortController();
    const running = s.run(stop.signal, 10_000);
    try {
      await sleep(200); // the first pass is done; the loop now sleeps for 10 s
      const t0 = Date.now();
      appendFileSync(d.diff(100), webDiff('addreal', 'w1', '10.0.1.5', 1));
      while ((await b.readTable())[0]?.dests.length !== 1 && Date.now() - t0 < 5000) await sleep(5);
      assert.equal((await b.readTable())[0]?.dests.length, 1, 'the diff line was not applied within 5 s');
      assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    } finally {
      stop.abort();
      await running;
    }
  });
});
