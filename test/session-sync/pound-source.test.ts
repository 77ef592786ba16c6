// The Pound source and writer against the Pound sync-socket double (test/helpers/pound-double.ts) on
// real unix sockets: the dump and the event stream reach the master's copy, Pound restarting is
// reconnected and re-requested with a generation sweep, long keys and junk are refused with reasons
// without desynchronising, and SESS_WRITE puts exactly the sessions into Pound.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, HttpSession } from '../../session-sync/model.js';
import { poundBackend, poundSocketPath } from '../../session-sync/pound/backend.js';
import { PoundSource } from '../../session-sync/pound/source.js';
import { writeToPound } from '../../session-sync/pound/writer.js';
import { Store } from '../../session-sync/store.js';
import { sleep } from '../helpers/netns.js';
import { poundStyleFrame, PoundDouble, SESS_ADD, TEST_POUND_CONFIG, type DoubleSession } from '../helpers/pound-double.js';
import { eventually } from '../helpers/ssyncd.js';

const T = 1_700_000_000;
const FARM = 'web';
const FAST = { reconnectMinMs: 20, reconnectMaxMs: 100, settleMs: 30, maxSettleMs: 2000, quietMs: 20 };
const SEED: DoubleSession[] = [
  { listener: 0, service: 0, key: 'same', backend: 1, lastAcc: T },
  { listener: 0, service: 1, key: 'same', backend: 0, lastAcc: T + 1 },
  { listener: 1, service: 0, key: '192.0.2.7', backend: 260, lastAcc: T + 2 },
];

/** The double's sessions as `L/S/key>B@t` lines. */
const poundLines = (d: PoundDouble): string[] => d.sessions().map((s) => `${s.listener}/${s.service}/${s.key}>${s.backend}@${s.lastAcc}`);

describe('session-sync/pound: source and writer against the Pound double', function () {
  this.timeout(20_000);
  let dir: string;
  let path: string;
  let logs: string[];
  let doubles: PoundDouble[];
  let sources: PoundSource[];
  const log = (level: string, msg: string): void => void logs.push(`${level}: ${msg}`);

  const startDouble = async (sessions: readonly DoubleSession[] = SEED, at = path): Promise<PoundDouble> => {
    const d = await PoundDouble.start({ path: at, name: FARM, config: TEST_POUND_CONFIG, sessions, now: () => T + 100 });
    doubles.push(d);
    return d;
  };
  const open = async (timings = FAST): Promise<PoundSource> => {
    const s = await PoundSource.open({ farm: FARM, socketPath: path, log, timings });
    sources.push(s);
    return s;
  };

  /** The master's copy: a store fed by the source's polls, and every change seen. */
  class Copy {
    readonly store = new Store();
    readonly seen: Change[] = [];
    constructor(private readonly src: PoundSource) {}
    async poll(): Promise<void> {
      for (const c of await this.src.poll(Date.now())) {
        this.seen.push(c);
        this.store.apply(c);
      }
    }
    lines(): string[] {
      return (this.store.entries({ kind: 'http', farm: FARM }) as HttpSession[])
        .map((s) => `${s.listener}/${s.service}/${s.key}>${s.backend}@${s.lastAccess / 1000}`)
        .sort();
    }
    /** Polls until Pound streams to the source and the copy equals its table. */
    async follows(d: PoundDouble, ms = 5000): Promise<void> {
      const ok = await eventually(async () => {
        await this.poll();
        if (!d.streaming) return false;
        return JSON.stringify(this.lines()) === JSON.stringify(poundLines(d).sort());
      }, ms, 20);
      assert.ok(ok, `copy ${JSON.stringify(this.lines())}\npound ${JSON.stringify(poundLines(d))}\n${logs.join('\n')}`);
    }
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pound-src-'));
    path = poundSocketPath(dir, FARM);
    logs = [];
    doubles = [];
    sources = [];
  });
  afterEach(async () => {
    for (const s of sources) s.close();
    for (const d of doubles) await d.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('the source (master side)', () => {
    it('refuses to start when nobody serves the socket, saying which socket and why', async () => {
      await assert.rejects(open(), /cannot connect to Pound's sync socket .*ssync_web\.socket: .*ENOENT/);
    });

    it('sends SYNC_REQUEST; the first polls report the dump, sibling services with the same key apart', async () => {
      const d = await startDouble();
      const copy = new Copy(await open());
      await copy.follows(d);
      assert.ok(d.streaming, 'Pound got SYNC_REQUEST');
      assert.deepEqual(copy.lines(), ['0/0/same>1@1700000000', '0/1/same>0@1700000001', '1/0/192.0.2.7>260@1700000002']);
      assert.ok(copy.seen.every((c) => c.op === 'upsert'));
      assert.ok(await eventually(async () => (await copy.poll(), logs.some((l) => /dump complete, 3 sessions$/.test(l))), 2000, 10), logs.join('\n'));
    });

    it('sessions created, refreshed, deleted and expired in Pound follow', async () => {
      const d = await startDouble();
      const copy = new Copy(await open());
      await copy.follows(d);
      d.add(0, 0, 'new-client', 2, T + 50);
      d.add(0, 1, 'new-client', 1, T + 50);
      d.touch(0, 0, 'same', T + 60);
      d.remove(0, 1, 'same');
      await copy.follows(d);
      assert.equal(d.expire(45), 3, 'idle for more than 45 s at T+100: all but the refreshed session');
      await copy.follows(d);
      assert.deepEqual(copy.lines(), ['0/0/same>1@1700000060']);
      const deletes = copy.seen.filter((c) => c.op === 'delete').map((c) => (c.op === 'delete' ? c.key : ''));
      assert.deepEqual(deletes.sort(), ['0/0/new-client', '0/1/new-client', '0/1/same', '1/0/192.0.2.7']);
    });

    it('Pound going away keeps the copy; back with another table it is re-requested and swept, nothing stale left', async () => {
      const d1 = await startDouble();
      const src = await open();
      const copy = new Copy(src);
      await copy.follows(d1);
      await d1.close();
      assert.ok(await eventually(async () => !src.stats.connected, 2000, 10));
      await copy.poll();
      assert.equal(copy.lines().length, 3, 'the copy is kept while Pound is away');
      assert.match(logs.join('\n'), /connection to .* lost \(closed by Pound\); keeping its 3 sessions and reconnecting/);
      await sleep(150); // a few failed attempts
      const seenBefore = copy.seen.length;
      const d2 = await startDouble([SEED[0]!, { ...SEED[2]!, backend: 3 }, { listener: 0, service: 1, key: 'fresh', backend: 1, lastAcc: T + 9 }]);
      await copy.follows(d2);
      const after = copy.seen.slice(seenBefore).map((c) => (c.op === 'delete' ? `-${c.key}` : c.op === 'upsert' && c.entry.kind === 'http' ? `+${c.entry.key}` : c.op));
      assert.deepEqual(after.sort(), ['+192.0.2.7', '+fresh', '-0/1/same'], 'only what changed: the unchanged session is neither deleted nor re-sent');
      assert.match(logs.join('\n'), /reconnected after \d+ attempts?; sessions requested again/);
      assert.ok(logs.some((l) => /dump complete, 3 sessions, 1 stale removed/.test(l)), logs.join('\n'));
      assert.equal(src.stats.connections, 2);
    });

    it('another client taking Pound\'s only sync connection again and again: backoff, and a quiet log', async () => {
      const d = await startDouble();
      // A connection counts as taken over when it lived less than reconnectMaxMs: 500 ms here, as the
      // rival's take-overs run on this process's event loop, which a busy machine can hold up for
      // longer than FAST's 100 ms.
      const src = await open({ ...FAST, reconnectMaxMs: 500 });
      await new Copy(src).follows(d);
      let rivals = 0;
      let stop = false;
      const rival = (): void => {
        if (stop) return;
        rivals += 1;
        const c = connect({ path });
        c.on('error', () => undefined);
        c.on('close', () => setTimeout(rival, 1));
      };
      rival();
      // The log says so at the 10th take-over in a row (backing off to 500 ms: about 3 s).
      const inARow = /in a row closed within 500 ms: is another client taking Pound's only sync connection\?/;
      const said = await eventually(async () => logs.some((l) => inARow.test(l)), 20_000, 20);
      stop = true;
      const lost = logs.filter((l) => /connection to .* lost/.test(l));
      assert.ok(said, lost.join('\n'));
      assert.ok(src.stats.connections >= 5, `${src.stats.connections} connections`);
      assert.ok(lost.length <= 4, lost.join('\n'));
      assert.ok(rivals >= 5);
    });

    it('a key over 255 bytes is refused with a logged reason; the frames around it are read in step', async () => {
      const d = await startDouble([]);
      const copy = new Copy(await open());
      await copy.follows(d);
      d.add(0, 0, 'before', 0, T);
      d.add(0, 0, `cookie=${'z'.repeat(300)}`, 1, T);
      d.add(0, 0, 'after', 2, T);
      d.remove(0, 0, `cookie=${'z'.repeat(300)}`);
      d.add(0, 1, 'last', 0, T);
      const want = ['0/0/after>2@1700000000', '0/0/before>0@1700000000', '0/1/last>0@1700000000'];
      assert.ok(await eventually(async () => (await copy.poll(), JSON.stringify(copy.lines()) === JSON.stringify(want)), 5000, 20), `${copy.lines()}\n${logs.join('\n')}`);
      assert.match(logs.join('\n'), /warn: pound farm web: add 0\/0\/"cookie=z{33}\.\.\.": key of 307 bytes: Pound's sync format carries at most 255 .*not replicated/);
      assert.equal(sources[0]!.stats.skippedBytes, 0, 'nothing skipped: the long frame was found whole');
    });

    it('junk and a frame cut short are skipped with a logged reason, and the stream goes on', async () => {
      const d = await startDouble([]);
      const copy = new Copy(await open());
      await copy.follows(d);
      d.rawSend(Buffer.from('not a frame at all'));
      d.add(0, 0, 'a', 0, T);
      await sleep(60);
      d.rawSend(poundStyleFrame({ action: SESS_ADD, farm: FARM, listener: 0, service: 0, backend: 0, key: 'cut', content: '10.0.0.1', lastAcc: T }).subarray(0, 25));
      await sleep(60); // quiet: the cut frame is given up
      d.add(0, 0, 'b', 1, T);
      await copy.follows(d);
      assert.deepEqual(copy.lines(), ['0/0/a>0@1700000000', '0/0/b>1@1700000000']);
      assert.match(logs.join('\n'), /bytes outside any frame: skipped 18 bytes at stream offset \d+ and resynchronised on the next frame/);
      assert.match(logs.join('\n'), /add frame: cut short: skipped 25 bytes/);
    });

    it('a frame split across reads is not cut when the event loop was busy: bytes waiting are read before the stream counts as quiet', async () => {
      const d = await startDouble([]);
      const src = await open();
      const copy = new Copy(src);
      await copy.follows(d);
      const frame = poundStyleFrame({ action: SESS_ADD, farm: FARM, listener: 0, service: 0, backend: 1, key: 'split', content: '10.0.0.2', lastAcc: T });
      for (const pollFirst of [false, true]) {
        d.rawSend(frame.subarray(0, 20));
        assert.ok(await eventually(async () => src.stats.buffered === 20, 2000, 1));
        d.rawSend(frame.subarray(20)); // into the socket now; read only once this loop lets go
        const until = performance.now() + 3 * FAST.quietMs;
        while (performance.now() < until) {
          /* busy: the quiet timer expires while the rest waits in the socket */
        }
        if (pollFirst) await copy.poll();
        await sleep(3 * FAST.quietMs);
        await copy.poll();
        assert.equal(src.stats.skippedBytes, 0, logs.join('\n'));
        assert.equal(src.stats.buffered, 0);
      }
      assert.deepEqual(copy.lines(), ['0/0/split>1@1700000000']);
    });

    it('reset reports everything again; close stops following and reconnecting', async () => {
      const d = await startDouble();
      const src = await open();
      const copy = new Copy(src);
      await copy.follows(d);
      src.reset();
      assert.equal((await src.poll(Date.now())).length, 3);
      src.close();
      await d.close();
      const d2 = await startDouble();
      await sleep(200);
      assert.equal(d2.accepted, 0, 'no reconnect after close');
    });
  });

  describe('the writer (write http on the backup)', () => {
    const session = (l: number, s: number, key: string, backend: number, lastAcc: number): HttpSession => ({
      kind: 'http',
      listener: l,
      service: s,
      key,
      backend,
      content: 'ignored by Pound',
      lastAccess: lastAcc * 1000 + 999,
    });

    it('SESS_WRITE puts exactly the sessions into Pound (ordinals over 255 too), merging, and nothing is echoed', async () => {
      const d = await startDouble([{ listener: 0, service: 0, key: 'pound-own', backend: 0, lastAcc: T }]);
      const list = [session(0, 0, 'a', 2, T + 1), session(0, 1, 'a', 1, T + 2), session(1, 0, 'caf\u00e9', 299, T + 3), session(0, 0, 'zero', 0, 0)];
      const r = await writeToPound({ farm: FARM, socketPath: path }, list);
      assert.deepEqual(r, { written: 4, skipped: 0, failed: [] });
      assert.deepEqual(poundLines(d), ['0/0/a>2@1700000001', '0/0/pound-own>0@1700000000', '0/0/zero>0@1700000100', '0/1/a>1@1700000002', '1/0/caf\u00e9>299@1700000003']);
      assert.equal(d.writesTaken, 4);
      assert.equal(d.badFrames, 0);
      assert.equal(d.streaming, false, 'no SYNC_REQUEST on the backup');
    });

    it('refuses sessions Pound\'s format cannot carry and reports them; the rest goes in', async () => {
      const d = await startDouble([]);
      const r = await writeToPound({ farm: FARM, socketPath: path }, [session(0, 0, 'k'.repeat(256), 0, T), session(0, 0, 'ok', 0, T)]);
      assert.equal(r.written, 1);
      assert.deepEqual(r.failed, [{ what: `session 0/0/"${'k'.repeat(40)}..."`, why: "not sent: key of 256 bytes: Pound's sync format carries at most 255 (Pound wrote the length mod 256), so no Pound could take it back; not replicated" }]);
      assert.deepEqual(poundLines(d), ['0/0/ok>0@1700000000']);
    });

    it('ordinals Pound does not have are sent (Pound cannot answer) and logged by Pound', async () => {
      const d = await startDouble([]);
      const r = await writeToPound({ farm: FARM, socketPath: path }, [session(7, 0, 'x', 0, T), session(0, 0, 'y', 9, T)]);
      assert.equal(r.written, 2);
      assert.deepEqual(d.logs, ['thread_sync: no listener found', 'thread_sync: no backend found']);
      assert.equal(d.size, 0);
    });

    it('reports an unreachable Pound instead of success', async () => {
      const r = await writeToPound({ farm: FARM, socketPath: path }, [session(0, 0, 'a', 0, T)]);
      assert.equal(r.written, 0);
      assert.equal(r.failed.length, 1);
      assert.match(r.failed[0]!.why, /^cannot connect: .*ENOENT.*; 1 sessions not written$/);
    });
  });

  describe('the backend', () => {
    it('names the socket ssync_<farm>.socket, refuses bad farm names, and does not write to a Pound it follows', async () => {
      assert.equal(poundSocketPath('/tmp', 'farm1'), '/tmp/ssync_farm1.socket');
      const b = poundBackend({ socketDir: dir, log, timings: FAST });
      await assert.rejects(b.source('../etc'), /farm name may only hold/);
      const d = await startDouble();
      const src = await b.source(FARM);
      assert.equal(src.id, 'http/web');
      const r = await b.write(FARM, [], 0);
      assert.match(r.failed[0]?.why ?? '', /this node follows farm web's Pound/);
      src.close?.();
      assert.deepEqual(await b.write(FARM, [], 0), { written: 0, skipped: 0, failed: [] });
      b.close();
      assert.equal(d.writesTaken, 0);
    });
  });
});
