// The master's override.dump source on a real directory: first poll reports everything, an unchanged
// file is not read again, replacements by rename and in-place rewrites are seen, a missing file (or
// directory) is no overrides, and a file that cannot be read is an error naming it.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import type { Change } from '../../session-sync/model.js';
import { OverrideDumpSource } from '../../session-sync/overrides/source.js';
import { writeFileAtomic } from '../../surealived/state/atomic-write.js';

const LINE_A = '192.0.2.10:80:0:0 - 10.0.1.1:80 - weight=20  rstate=OFFLINE\n';
const LINE_B = '192.0.2.10:80:0:0 - 10.0.1.2:80 - weight=50% rstate=ONLINE\n';
const LINE_B2 = '192.0.2.10:80:0:0 - 10.0.1.2:80 - weight=60% rstate=ONLINE\n';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until the source reports something (the watch event may take a moment), at most ~5 s. */
async function nextChanges(src: OverrideDumpSource): Promise<Change[]> {
  for (let i = 0; i < 250; i++) {
    const c = await src.poll(Date.now());
    if (c.length) return c;
    await sleep(20);
  }
  return [];
}

const summary = (changes: readonly Change[]): string[] =>
  changes.map((c) => (c.op === 'upsert' && c.entry.kind === 'override' ? `+${c.entry.real} ${c.entry.weight}${c.entry.percent ? '%' : ''} ${c.entry.rstate}` : c.op === 'delete' ? `-${c.key}` : c.op));

describe('session-sync/overrides/source', () => {
  let dir: string;
  let path: string;
  let warnings: string[];
  let src: OverrideDumpSource;
  const make = (p = path): OverrideDumpSource => new OverrideDumpSource({ path: p, name: 'surealived', log: (level, msg) => void (level !== 'info' && warnings.push(msg)) });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ov-source-'));
    path = join(dir, 'override.dump');
    warnings = [];
  });
  afterEach(() => {
    src?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports every override at the first poll, then nothing, without reading an unchanged file again', async () => {
    writeFileSync(path, LINE_A + LINE_B);
    src = make();
    assert.equal(src.id, 'overrides/surealived');
    assert.ok(src.owns({ kind: 'overrides', name: 'surealived' }));
    assert.ok(!src.owns({ kind: 'overrides', name: 'other' }));
    assert.deepEqual(summary(await src.poll(Date.now())), ['+10.0.1.1:80 20 OFFLINE', '+10.0.1.2:80 50% ONLINE']);
    await sleep(50); // let any watch event of the write above arrive before counting
    await src.poll(Date.now());
    const reads = src.reads;
    for (let i = 0; i < 5; i++) assert.deepEqual(await src.poll(Date.now()), []);
    assert.equal(src.reads, reads, 'an unchanged file is only stat-ed');
  });

  it('sees the file replaced by rename, as surealived writes it: changed and removed overrides', async () => {
    writeFileSync(path, LINE_A + LINE_B);
    src = make();
    await src.poll(Date.now());
    await writeFileAtomic(path, LINE_B2);
    assert.deepEqual(summary(await nextChanges(src)), ['+10.0.1.2:80 60% ONLINE', '-192.0.2.10:80:0:0 10.0.1.1:80']);
  });

  it('sees an in-place rewrite of the same size', async () => {
    writeFileSync(path, LINE_B);
    src = make();
    await src.poll(Date.now());
    writeFileSync(path, LINE_B2);
    assert.deepEqual(summary(await nextChanges(src)), ['+10.0.1.2:80 60% ONLINE']);
  });

  it('takes a missing file as no overrides, and its removal as the removal of every override', async () => {
    src = make();
    assert.deepEqual(await src.poll(Date.now()), []);
    writeFileSync(path, LINE_A);
    assert.deepEqual(summary(await nextChanges(src)), ['+10.0.1.1:80 20 OFFLINE']);
    unlinkSync(path);
    assert.deepEqual(summary(await nextChanges(src)), ['-192.0.2.10:80:0:0 10.0.1.1:80']);
  });

  it('follows a file whose directory does not exist yet', async () => {
    const later = join(dir, 'later', 'override.dump');
    src = make(later);
    assert.deepEqual(await src.poll(Date.now()), []);
    assert.equal(warnings.length, 1, 'the missing directory is said once');
    assert.deepEqual(await src.poll(Date.now()), []);
    assert.equal(warnings.length, 1);
    mkdirSync(join(dir, 'later'));
    writeFileSync(later, LINE_A);
    assert.deepEqual(summary(await nextChanges(src)), ['+10.0.1.1:80 20 OFFLINE']);
  });

  it('reports everything again after reset, and logs skipped lines with file:line', async () => {
    writeFileSync(path, `junk\n${LINE_A}`);
    src = make();
    assert.equal((await src.poll(Date.now())).length, 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`${path.replace(/[.]/g, '\\.')}:1: expected`));
    src.reset();
    assert.deepEqual(summary(await src.poll(Date.now())), ['+10.0.1.1:80 20 OFFLINE']);
  });

  it('fails a poll with the path and why when the file cannot be read', async () => {
    mkdirSync(path);
    src = make();
    await assert.rejects(src.poll(Date.now()), (e: Error) => e.message.startsWith(`${path}: `) && /EISDIR/.test(e.message));
  });
});
