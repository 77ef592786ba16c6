// The diff tailer on real files: complete lines only, offsets kept between reads, DIFF file= chains,
// hostile chain targets, truncation and overlong lines.

import { strict as assert } from 'node:assert';
import { appendFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiffTailer, MAX_LINE, completeLines } from '../../ipvssync/diff-tail.js';
import { handoffDir, webDiff, type HandoffDir } from './helpers.js';

describe('ipvssync diff tailer', () => {
  let d: HandoffDir;
  let tailer: DiffTailer;
  beforeEach(() => {
    d = handoffDir();
  });
  afterEach(async () => {
    await tailer?.close();
    d.cleanup();
  });

  const names = (b: { entries: readonly { line: { rname: string; cmd: string } }[] }): string[] => b.entries.map((e) => `${e.line.cmd} ${e.line.rname}`);

  it('splits complete lines and leaves the partial tail', () => {
    assert.deepEqual(completeLines(Buffer.from('a\nb\nc')), { lines: ['a', 'b'], consumed: 4 });
    assert.deepEqual(completeLines(Buffer.from('abc')), { lines: [], consumed: 0 });
  });

  it('reads new lines from the current offset, waiting for the newline of a partial last line', async () => {
    writeFileSync(d.diff(100), webDiff('addreal', 'a', '10.0.1.5', 1));
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    assert.deepEqual(names(await tailer.read()), ['addreal a']);
    assert.deepEqual(names(await tailer.read()), []);

    const line = webDiff('chgreal', 'b', '10.0.1.6', 2);
    appendFileSync(d.diff(100), line.slice(0, 40));
    assert.deepEqual(names(await tailer.read()), [], 'a torn line is not applied');
    appendFileSync(d.diff(100), line.slice(40));
    const b = await tailer.read();
    assert.deepEqual(names(b), ['chgreal b']);
    assert.equal(b.entries[0]!.where, `${d.diff(100)}:2`);
  });

  it('reads each pass whole whatever the size of the pass before it: a long batch, a short line, a long line again', async () => {
    const batch = (n: number, w: number): string =>
      Array.from({ length: n }, (_, i) => webDiff('chgreal', `r${i}`, `10.0.${(i >> 8) & 255}.${i & 255}`, w)).join('');
    writeFileSync(d.diff(100), batch(500, 1));
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    const first = await tailer.read();
    assert.equal(first.entries.length, 500);
    appendFileSync(d.diff(100), webDiff('delreal', 'short', '10.0.9.9', 0));
    assert.deepEqual(names(await tailer.read()), ['delreal short'], 'nothing left over from the longer pass before');
    const long = webDiff('addreal', `x${'y'.repeat(20_000)}`, '10.0.9.8', 3);
    appendFileSync(d.diff(100), long + batch(3, 2));
    const b = await tailer.read();
    assert.deepEqual(names(b).slice(1), ['chgreal r0', 'chgreal r1', 'chgreal r2']);
    assert.equal(b.entries[0]!.line.rname.length, 20_001);
    assert.equal(b.entries[3]!.where, `${d.diff(100)}:505`);
  });

  it('follows DIFF file= chains within one read, and lines after the chain line are not read', async () => {
    writeFileSync(d.diff(100), webDiff('addreal', 'a', '10.0.1.5', 1) + `DIFF file=${d.diff(160)}\n` + webDiff('addreal', 'ignored', '10.0.1.9', 1));
    writeFileSync(d.diff(160), webDiff('delreal', 'a', '10.0.1.5', 0) + `DIFF file=${d.diff(220)}\n`);
    writeFileSync(d.diff(220), webDiff('addreal', 'c', '10.0.1.7', 1));
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    const b = await tailer.read();
    assert.deepEqual(names(b), ['addreal a', 'delreal a', 'addreal c']);
    assert.equal(tailer.current, d.diff(220));
    assert.equal(b.entries[2]!.where, `${d.diff(220)}:1`);
  });

  it('waits at a chain line whose target does not exist yet, then follows it', async () => {
    writeFileSync(d.diff(100), `DIFF file=${d.diff(160)}\n`);
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    const b = await tailer.read();
    assert.match(b.blocked ?? '', /:1: cannot open DIFF target/);
    assert.equal(tailer.current, d.diff(100));
    writeFileSync(d.diff(160), webDiff('addreal', 'a', '10.0.1.5', 1));
    const b2 = await tailer.read();
    assert.equal(b2.blocked, undefined);
    assert.deepEqual(names(b2), ['addreal a']);
  });

  it('refuses chain lines pointing outside diff_sync_dir or at other names, and keeps tailing', async () => {
    writeFileSync(d.diff(100), `DIFF file=${join(d.root, 'diff_sync.5')}\nDIFF file=${join(d.diffDir, 'evil')}\nDIFF file=${d.diffDir}/../diffs/../x/diff_sync.6\n` + webDiff('addreal', 'a', '10.0.1.5', 1));
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    const b = await tailer.read();
    assert.deepEqual(names(b), ['addreal a']);
    assert.equal(b.errors.length, 3);
    assert.match(b.errors[0]!, new RegExp(`^${d.diff(100)}:1: DIFF target .* is outside diff_sync_dir`));
    assert.match(b.errors[1]!, /:2: DIFF target .* is not named diff_sync\.<digits>/);
    assert.match(b.errors[2]!, /:3: DIFF target .* is outside diff_sync_dir/);
    assert.equal(tailer.current, d.diff(100));
  });

  it('does not follow a chain target that is a symlink', async () => {
    writeFileSync(join(d.root, 'secret'), webDiff('addreal', 'x', '10.0.1.5', 1));
    symlinkSync(join(d.root, 'secret'), d.diff(160));
    writeFileSync(d.diff(100), `DIFF file=${d.diff(160)}\n`);
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    const b = await tailer.read();
    assert.deepEqual(names(b), []);
    assert.match(b.blocked ?? '', /cannot open DIFF target/);
  });

  it('refuses chain loops', async () => {
    writeFileSync(d.diff(100), `DIFF file=${d.diff(160)}\n`);
    writeFileSync(d.diff(160), webDiff('addreal', 'a', '10.0.1.5', 1) + `DIFF file=${d.diff(100)}\n`);
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    const b = await tailer.read();
    assert.deepEqual(names(b), ['addreal a']);
    assert.match(b.errors[0] ?? '', /:2: DIFF target .* was already followed \(chain loop\)/);
    assert.deepEqual(names(await tailer.read()), []);
  });

  it('reports bad lines with file:line and skips them', async () => {
    writeFileSync(d.diff(100), 'cmd=explode vname=web\n' + 'garbage\n' + webDiff('addreal', 'a', '10.0.1.300', 1) + webDiff('addreal', 'ok', '10.0.1.5', 1));
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    const b = await tailer.read();
    assert.deepEqual(names(b), ['addreal ok']);
    assert.deepEqual(
      b.errors.map((e) => e.replace(d.diff(100), 'F')),
      ["F:1: unknown command 'cmd=explode'", "F:2: unknown line 'garbage'", "F:3: raddr: bad address '10.0.1.300'"],
    );
  });

  it('reads a truncated file again from the start', async () => {
    writeFileSync(d.diff(100), webDiff('addreal', 'a', '10.0.1.5', 1) + webDiff('addreal', 'b', '10.0.1.6', 1));
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    await tailer.read();
    truncateSync(d.diff(100), 0);
    appendFileSync(d.diff(100), webDiff('delreal', 'a', '10.0.1.5', 0));
    const b = await tailer.read();
    assert.match(b.warnings[0] ?? '', /truncated/);
    assert.deepEqual(names(b), ['delreal a']);
  });

  it('skips a line longer than the limit without a newline in sight, then resumes', async () => {
    writeFileSync(d.diff(100), 'x'.repeat(MAX_LINE + 10));
    tailer = new DiffTailer(d.diffDir, d.diff(100));
    const b = await tailer.read();
    assert.match(b.errors[0] ?? '', /:1: line longer than/);
    appendFileSync(d.diff(100), 'yyy\n' + webDiff('addreal', 'a', '10.0.1.5', 1));
    const b2 = await tailer.read();
    assert.deepEqual(names(b2), ['addreal a']);
    assert.equal(b2.entries[0]!.where, `${d.diff(100)}:2`);
  });

  it('tails nothing when the full file named no diff file', async () => {
    tailer = new DiffTailer(d.diffDir, null);
    assert.deepEqual(await tailer.read(), { entries: [], errors: [], warnings: [] });
  });
});
