// The ipvssync loop end to end with the in-memory backend: hand-off files written by hand as
// surealived would, and the backend's table checked to converge.

import { strict as assert } from 'node:assert';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IpvsBackend } from '../../ipvssync/backend.js';
import { formatList, formatOp } from '../../ipvssync/format.js';
import { FlockLock } from '../../ipvssync/lock.js';
import { MemoryBackend } from '../../ipvssync/memory-backend.js';
import { Syncer } from '../../ipvssync/syncer.js';
import type { IpvsInfo, Op, OpResult, Table } from '../../ipvssync/types.js';
import { fullHead, handoffDir, memoryLogger, real, WEB_VIRTUAL, webDiff, type HandoffDir } from './helpers.js';

/** Fails the first attempt of every op `pred` selects, like a kernel refusing once (ENOMEM, EBUSY). */
class FlakyBackend implements IpvsBackend {
  private readonly failed = new Set<string>();
  constructor(readonly inner: MemoryBackend, public pred: (op: Op) => boolean) {}
  info(): Promise<IpvsInfo> {
    return this.inner.info();
  }
  readTable(): Promise<Table> {
    return this.inner.readTable();
  }
  async apply(ops: readonly Op[]): Promise<OpResult[]> {
    const out: OpResult[] = [];
    for (const op of ops) {
      const id = formatOp(op);
      if (this.pred(op) && !this.failed.has(id)) {
        this.failed.add(id);
        out.push({ op, ok: false, error: 'ENOMEM: injected failure' });
      } else out.push(...(await this.inner.apply([op])));
    }
    return out;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The backend's table as `ipvsadm -Ln` rows (without the 3 header lines), trailing blanks trimmed. */
async function rows(b: IpvsBackend): Promise<string[]> {
  return formatList(await b.info(), await b.readTable())
    .split('\n')
    .slice(3, -1)
    .map((l) => l.trimEnd());
}

describe('ipvssync loop (in-memory backend)', () => {
  let d: HandoffDir;
  let lock: FlockLock;
  let syncer: Syncer | undefined;
  let clock = 0;
  let logged: { lines: string[] };

  function makeSyncer(backend: IpvsBackend, o: { deleteUnmanaged?: boolean; keepDiffs?: boolean } = {}): Syncer {
    const m = memoryLogger();
    logged = m;
    syncer = new Syncer({
      paths: { fullSyncFile: d.fullFile, fullReloadFile: d.reloadFile, diffSyncDir: d.diffDir },
      backend,
      lock,
      log: m.log,
      deleteUnmanaged: o.deleteUnmanaged ?? false,
      keepDiffs: o.keepDiffs ?? false,
      now: () => clock,
    });
    return syncer;
  }

  const logHas = (re: RegExp): boolean => logged.lines.some((l) => re.test(l));

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

  it('start-up replays the diff chain into memory, then synchronises once', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n${real('w2', '10.0.1.6', 20)}\n\n`);
    writeFileSync(d.diff(100), webDiff('chgreal', 'w1', '10.0.1.5', 0) + `DIFF file=${d.diff(160)}\n`);
    writeFileSync(d.diff(160), webDiff('delreal', 'w2', '10.0.1.6', 0) + webDiff('addreal', 'w3', '10.0.1.7', 5) + webDiff('chgreal', 'w3', '10.0.1.7', 5));
    writeFileSync(d.reloadFile, '');
    const b = new MemoryBackend();
    const s = makeSyncer(b);
    const r = await s.start();
    assert.equal(r.ok, true);
    assert.deepEqual(await rows(b), ['TCP  10.0.0.1:80 wrr', '  -> 10.0.1.5:80                  Route   0      0          0', '  -> 10.0.1.7:80                  Route   5      0          0']);
    // Memory only during the replay: w2 was never added to the kernel, w1 was added with its final weight.
    assert.deepEqual(b.applied.map(formatOp), [
      'add service tcp 10.0.0.1:80 wrr',
      'add dest tcp 10.0.0.1:80 -> 10.0.1.5:80 route w=0',
      'add dest tcp 10.0.0.1:80 -> 10.0.1.7:80 route w=5',
    ]);
    assert.equal(s.currentDiffFile, d.diff(160));
    assert.equal(existsSync(d.reloadFile), false, 'the reload flag is consumed');
  });

  it('refuses to start on an invalid full file', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${real('w1', '10.0.1.5', 10)}\n`);
    writeFileSync(d.diff(100), '');
    const r = await makeSyncer(new MemoryBackend()).start();
    assert.equal(r.ok, false);
    assert.ok(logHas(/ipvsfull\.cfg:5: real line before any virtual/));
  });

  it('refuses a full file whose DIFF file cannot be opened', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n`);
    const r = await makeSyncer(new MemoryBackend()).start();
    assert.equal(r.ok, false);
    assert.ok(!r.ok && /cannot open DIFF file/.test(r.errors[0]!));
  });

  it('tails new diff lines into the kernel with minimal ops, following chains, waiting for torn lines', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n\n`);
    writeFileSync(d.diff(100), '');
    const b = new MemoryBackend();
    const s = makeSyncer(b);
    await s.start();
    b.applied.length = 0;

    appendFileSync(d.diff(100), webDiff('addreal', 'w1', '10.0.1.5', 3) + webDiff('chgreal', 'w1', '10.0.1.5', 3));
    const torn = webDiff('addreal', 'w2', '10.0.1.6', 7);
    appendFileSync(d.diff(100), torn.slice(0, 30));
    await s.iterate();
    assert.deepEqual(b.applied.map(formatOp), ['edit dest tcp 10.0.0.1:80 -> 10.0.1.5:80 route w=3']);

    appendFileSync(d.diff(100), torn.slice(30) + `DIFF file=${d.diff(160)}\n`);
    writeFileSync(d.diff(160), webDiff('delreal', 'w1', '10.0.1.5', 0));
    await s.iterate();
    assert.deepEqual(b.applied.slice(1).map(formatOp), ['delete dest tcp 10.0.0.1:80 -> 10.0.1.5:80', 'add dest tcp 10.0.0.1:80 -> 10.0.1.6:80 route w=7']);
    assert.equal(s.currentDiffFile, d.diff(160));

    // Repeating what is already there costs nothing.
    appendFileSync(d.diff(160), webDiff('addreal', 'w2', '10.0.1.6', 7) + webDiff('chgreal', 'w2', '10.0.1.6', 7));
    await s.iterate();
    assert.equal(b.applied.length, 3);
  });

  it('never crashes on hostile diff lines: they are logged with file:line and skipped', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const b = new MemoryBackend();
    const s = makeSyncer(b);
    await s.start();
    appendFileSync(
      d.diff(100),
      'cmd=rm -rf /\n' + `DIFF file=/etc/diff_sync.1\n` + webDiff('chgreal', 'ghost', '10.0.1.99', 1) + '\0\0\0\n' + webDiff('addreal', 'ok', '10.0.1.5', 1),
    );
    await s.iterate();
    assert.deepEqual(await rows(b), ['TCP  10.0.0.1:80 wrr', '  -> 10.0.1.5:80                  Route   1      0          0']);
    assert.ok(logHas(new RegExp(`error : ${d.diff(100)}:1: unknown command 'cmd=rm'`)));
    assert.ok(logHas(/error : .*:2: DIFF target '\/etc\/diff_sync\.1' is outside diff_sync_dir/));
    assert.ok(logHas(/warn  : .*:3: chgreal: real ghost 10\.0\.1\.99:80 unknown/));
    assert.ok(logHas(/error : .*:4: unknown line/));
  });

  it('a reload flag makes a full reload and is consumed', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n\n`);
    writeFileSync(d.diff(100), '');
    const b = new MemoryBackend();
    const s = makeSyncer(b);
    await s.start();

    // surealived restarted: new full file, new empty diff file, reload flag.
    writeFileSync(d.fullFile, fullHead(d.diff(200)) + 'virtual vname=web vproto=tcp vaddr=10.0.0.1 vport=80 vrt=dr vsched=lc\n' + `${real('w9', '10.0.1.9', 4)}\n\n`);
    writeFileSync(d.diff(200), '');
    writeFileSync(d.reloadFile, '');
    await s.iterate();
    assert.deepEqual(await rows(b), ['TCP  10.0.0.1:80 lc', '  -> 10.0.1.9:80                  Route   4      0          0']);
    assert.equal(existsSync(d.reloadFile), false);
    assert.equal(s.currentDiffFile, d.diff(200));
  });

  it('an invalid full file on reload keeps the old config (and the flag is still consumed); a fixed file is picked up', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n\n`);
    writeFileSync(d.diff(100), '');
    const b = new MemoryBackend();
    const s = makeSyncer(b);
    await s.start();
    const before = await rows(b);

    writeFileSync(d.fullFile, fullHead(d.diff(200)) + `${WEB_VIRTUAL}\nreal rname=w1 raddr=10.0.1.5 rport=80 rwei`); // torn write
    writeFileSync(d.diff(200), '');
    writeFileSync(d.reloadFile, '');
    await s.iterate();
    assert.deepEqual(await rows(b), before);
    assert.equal(existsSync(d.reloadFile), false);
    assert.ok(logHas(/ipvssync config error \[.*ipvsfull\.cfg\], config couln't be reloaded/));
    assert.ok(logHas(/ipvsfull\.cfg:6: incomplete last line/));

    // The old chain keeps being tailed meanwhile.
    appendFileSync(d.diff(100), webDiff('chgreal', 'w1', '10.0.1.5', 2));
    await s.iterate();
    assert.deepEqual(await rows(b), ['TCP  10.0.0.1:80 wrr', '  -> 10.0.1.5:80                  Route   2      0          0']);

    // surealived finishes a good full file: reloaded without a new flag.
    writeFileSync(d.fullFile, fullHead(d.diff(200)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n${real('w2', '10.0.1.6', 10)}\n\n`);
    await s.iterate();
    assert.equal((await rows(b)).length, 3);
    assert.equal(s.currentDiffFile, d.diff(200));
  });

  it('SIGHUP (requestReload) makes a full reload without a flag file', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const b = new MemoryBackend();
    const s = makeSyncer(b);
    await s.start();
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 1)}\n\n`);
    await s.iterate();
    assert.equal((await rows(b)).length, 1, 'the full file alone is not re-read');
    s.requestReload();
    await s.iterate();
    assert.equal((await rows(b)).length, 2);
  });

  it('an op the kernel refuses once is logged at error level and retried on the next pass', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n${real('w2', '10.0.1.6', 10)}\n\n`);
    writeFileSync(d.diff(100), '');
    const inner = new MemoryBackend();
    const b = new FlakyBackend(inner, (op) => op.kind === 'add-dest' && op.dest.addr === '10.0.1.6');
    const s = makeSyncer(b);
    await s.start();
    assert.equal((await rows(inner)).length, 2);
    assert.equal(s.dirty, true);
    assert.ok(logHas(/error : IPVS add dest tcp 10\.0\.0\.1:80 -> 10\.0\.1\.6:80 route w=10 failed: ENOMEM: injected failure/));
    await s.iterate();
    assert.equal((await rows(inner)).length, 3);
    assert.equal(s.dirty, false);

    // A failed diff op is retried the same way, against the kernel's real table.
    appendFileSync(d.diff(100), webDiff('addreal', 'w7', '10.0.1.7', 1));
    b.pred = (op) => op.kind === 'add-dest' && op.dest.addr === '10.0.1.7';
    await s.iterate();
    assert.equal((await rows(inner)).length, 3);
    await s.iterate();
    assert.equal((await rows(inner)).length, 4);
  });

  it('edits an existing service\'s scheduler without -u, and leaves unmanaged services alone', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const initial: Table = [
      { service: { key: { kind: 'addr', family: 'inet', protocol: 'tcp', addr: '10.0.0.1', port: 80 }, scheduler: 'rr', persistent: false, timeout: 0, onePacket: false, netmask: 32 }, dests: [] },
      { service: { key: { kind: 'fwmark', family: 'inet', fwmark: 9 }, scheduler: 'rr', persistent: false, timeout: 0, onePacket: false, netmask: 32 }, dests: [] },
    ];
    const b = new MemoryBackend({ initial });
    await makeSyncer(b).start();
    assert.deepEqual(await rows(b), ['TCP  10.0.0.1:80 wrr', 'FWM  9 rr']);
  });

  it('-u deletes services the hand-off does not manage', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const initial: Table = [
      { service: { key: { kind: 'fwmark', family: 'inet', fwmark: 9 }, scheduler: 'rr', persistent: false, timeout: 0, onePacket: false, netmask: 32 }, dests: [] },
    ];
    const b = new MemoryBackend({ initial });
    await makeSyncer(b, { deleteUnmanaged: true }).start();
    assert.deepEqual(await rows(b), ['TCP  10.0.0.1:80 wrr']);
  });

  it('cleans old diff files at most every 60 s, and never with -k', async () => {
    for (const keepDiffs of [false, true]) {
      writeFileSync(d.fullFile, fullHead(d.diff(160)) + `${WEB_VIRTUAL}\n\n`);
      writeFileSync(d.diff(100), '');
      writeFileSync(d.diff(160), '');
      writeFileSync(`${d.diffDir}/keep.me`, '');
      const s = makeSyncer(new MemoryBackend(), { keepDiffs });
      await s.start();
      await s.iterate();
      assert.equal(existsSync(d.diff(100)), keepDiffs, `keepDiffs=${keepDiffs}`);
      assert.ok(existsSync(d.diff(160)) && existsSync(`${d.diffDir}/keep.me`));

      appendFileSync(d.diff(160), `DIFF file=${d.diff(220)}\n`);
      writeFileSync(d.diff(220), '');
      clock += 30_000;
      await s.iterate();
      assert.equal(s.currentDiffFile, d.diff(220));
      assert.equal(existsSync(d.diff(160)), true, 'not before 60 s');
      clock += 30_000;
      await s.iterate();
      assert.equal(existsSync(d.diff(160)), keepDiffs);
      await s.close();
    }
  });

  it('waits for the lock held by surealived before touching anything, and never holds it while sleeping', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const b = new MemoryBackend();
    const s = makeSyncer(b);
    await s.start();
    const surealived = new FlockLock(d.lockFile);
    try {
      assert.equal(surealived.tryAcquire(), true);
      appendFileSync(d.diff(100), webDiff('addreal', 'w1', '10.0.1.5', 1));
      const pass = s.iterate();
      await sleep(150);
      assert.equal((await rows(b)).length, 1, 'nothing applied while the lock is held elsewhere');
      surealived.release();
      await pass;
      assert.equal((await rows(b)).length, 2);

      const stop = new AbortController();
      const running = s.run(stop.signal, 100);
      let free = 0;
      for (let i = 0; i < 10; i++) {
        await sleep(23);
        if (surealived.tryAcquire()) {
          free++;
          surealived.release();
        }
      }
      stop.abort();
      await running;
      assert.ok(free >= 3, `the lock was free only ${free}/10 times during the loop`);
    } finally {
      surealived.close();
    }
  });

  it('a kernel table that cannot be read marks the sync dirty and is retried', async () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n\n`);
    writeFileSync(d.diff(100), '');
    const inner = new MemoryBackend();
    let fail = true;
    const b: IpvsBackend = {
      info: () => inner.info(),
      readTable: () => (fail ? Promise.reject(new Error('EPERM: Permission denied (you must be root)')) : inner.readTable()),
      apply: (ops) => inner.apply(ops),
      close: () => inner.close(),
    };
    const s = makeSyncer(b);
    await s.start();
    assert.equal(s.dirty, true);
    assert.ok(logHas(/error : cannot read the IPVS table: EPERM/));
    fail = false;
    await s.iterate();
    assert.equal((await rows(inner)).length, 1);
  });
});
