// A dump write that fails (EMFILE under descriptor pressure, a missing directory) is never lost:
// it is retried, with the newest content, until it lands; writes to one path never overtake each other.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { retryDelayMs, saveDump, saveDumpSync, settleDumpWrites } from '../../surealived/state/dump-file.js';
import { memLogger, tempDir } from './fixtures.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('state/dump-file: writes retried until they land', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('retries back off from 100 ms to at most 5 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map(retryDelayMs), [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it('a failed write is logged once with its reason and lands, with the newest content, once it can', async () => {
    const { log, lines } = memLogger();
    const dir = join(tmp.dir, 'later');
    const path = join(dir, 'offline.dump');
    assert.equal(await saveDump(path, 'old\n', log), false);
    const newer = saveDump(path, 'newer\n', log);
    await sleep(350);
    const failures = lines.filter((l) => l.includes('Unable to write dump file'));
    assert.equal(failures.length, 1, lines.join(''));
    assert.match(failures[0]!, /error : Unable to write dump file - .*offline\.dump \[ENOENT: .*\] - retrying/);
    assert.equal(await newer, false, 'its first attempt (a retry) failed too');
    mkdirSync(dir);
    // No further save: the retry alone lands it, at its next attempt (at most 5 s apart).
    for (const end = Date.now() + 15_000; Date.now() < end && !existsSync(path); ) await sleep(20);
    assert.equal(readFileSync(path, 'utf8'), 'newer\n');
    assert.ok(lines.some((l) => /dump file .*offline\.dump written after \d+ failed attempt\(s\)/.test(l)));
    assert.deepEqual(readdirSync(dir), ['offline.dump'], 'no temp file left behind');
  });

  it('many saves in a burst are written one at a time, the last content last', async () => {
    const { log } = memLogger();
    const path = join(tmp.dir, 'stats.dump');
    const all = Array.from({ length: 50 }, (_, i) => saveDump(path, `v${i}\n`, log));
    assert.ok((await Promise.all(all)).every((ok) => ok));
    assert.equal(readFileSync(path, 'utf8'), 'v49\n');
  });

  it('at shutdown, content still waiting for a retry is written synchronously, and a later sync save supersedes it', async () => {
    const { log } = memLogger();
    const dir = join(tmp.dir, 'gone');
    const a = join(dir, 'notify.dump');
    assert.equal(await saveDump(a, 'pending\n', log), false);
    mkdirSync(dir);
    await settleDumpWrites();
    assert.equal(readFileSync(a, 'utf8'), 'pending\n');
    assert.equal(saveDumpSync(a, 'final\n', log), true);
    await sleep(250);
    assert.equal(readFileSync(a, 'utf8'), 'final\n');
  });
});
