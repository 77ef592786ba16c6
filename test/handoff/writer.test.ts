import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { buildState } from '../../surealived/engine/state.js';
import { HandoffWriter } from '../../surealived/handoff/writer.js';
import { memorySink, createLogger } from '../../common/log.js';
import { makeVirtual } from '../helpers/model.js';

describe('hand-off writer (spec 8.1, 8.2, 8.4)', () => {
  let dir: string;
  let w: HandoffWriter;
  let clock: number;
  const sink = memorySink();
  const log = createLogger('debug', sink.sink);
  const states = buildState([
    makeVirtual({ name: 'web', addr: '192.0.2.10', reals: [{ name: 'a', addr: '127.0.0.11', weight: 10 }, { name: 'b', addr: '127.0.0.12', weight: 20 }] }),
  ]);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sd-handoff-'));
    clock = 1_700_000_000_000;
    w = new HandoffWriter({
      lockFile: join(dir, 'ipvsfull.lock'),
      fullFile: join(dir, 'ipvsfull.cfg'),
      reloadFile: join(dir, 'ipvsfull.reload'),
      diffDir: join(dir, 'diffs'),
      log,
      now: () => clock,
    });
  });
  afterEach(async () => {
    await w.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a forced full write creates ipvsfull.cfg naming a new diff file, the diff file and the reload flag', async () => {
    await w.writeFull(states, true);
    const full = readFileSync(join(dir, 'ipvsfull.cfg'), 'utf8');
    const diff = join(dir, 'diffs', 'diff_sync.1700000000');
    assert.ok(full.includes(`\nDIFF file=${diff}\n`));
    assert.equal(w.currentDiffPath, diff);
    assert.equal(readFileSync(diff, 'utf8'), '');
    assert.ok(existsSync(join(dir, 'ipvsfull.reload')));
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  });

  it('a full write that cannot be written (EMFILE, EISDIR, ...) is retried until it lands, reload flag included', async () => {
    sink.lines.length = 0;
    // The temp name taken by a directory: open(2) fails before anything changes on disk.
    mkdirSync(join(dir, 'ipvsfull.cfg.tmp'));
    await w.writeFull(states, true);
    assert.equal(existsSync(join(dir, 'ipvsfull.cfg')), false);
    assert.equal(existsSync(join(dir, 'ipvsfull.reload')), false);
    assert.match(sink.lines.join(''), /error : hand-off write failed: .*EISDIR.* - retrying in 100 ms \(attempt 1\)/);
    rmdirSync(join(dir, 'ipvsfull.cfg.tmp'));
    for (let i = 0; i < 60 && !existsSync(join(dir, 'ipvsfull.cfg')); i++) await new Promise((r) => setTimeout(r, 25));
    await w.idle();
    assert.ok(readFileSync(join(dir, 'ipvsfull.cfg'), 'utf8').includes('DIFF file='));
    assert.ok(existsSync(join(dir, 'ipvsfull.reload')), 'the forced flag survives the retry');
    assert.match(sink.lines.join(''), /hand-off written after 1 failed attempt\(s\)/);
  });

  it('a state change is appended to the current diff file as addreal+chgreal or delreal', async () => {
    await w.writeFull(states, true);
    const b = states[0]!.reals[1]!;
    b.online = false;
    w.queueReal(b);
    await new Promise((r) => setImmediate(r));
    await w.idle();
    assert.equal(
      readFileSync(w.currentDiffPath, 'utf8'),
      'cmd=addreal vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr rname=b raddr=127.0.0.12 rport=80 rweight=0\n' +
        'cmd=chgreal vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr rname=b raddr=127.0.0.12 rport=80 rweight=0\n',
    );
    b.online = true;
  });

  it('a later full write chains the old diff file to the new one, never reusing a name within the same second', async () => {
    await w.writeFull(states, true);
    const first = w.currentDiffPath;
    await w.writeFull(states, false);
    const second = w.currentDiffPath;
    assert.notEqual(first, second);
    assert.equal(second, join(dir, 'diffs', 'diff_sync.1700000001'));
    assert.equal(readFileSync(first, 'utf8'), `DIFF file=${second}\n`);
  });

  it('the periodic full write waits for 60 s and for every real to be tested', async () => {
    await w.writeFull(states, true);
    clock += 61_000;
    assert.equal(w.maybeWritePeriodic(states), null, 'reals not yet tested');
    for (const r of states[0]!.reals) r.tested = true;
    const p = w.maybeWritePeriodic(states);
    assert.ok(p);
    await p;
    assert.equal(w.maybeWritePeriodic(states), null, 'not again within 60 s');
  });

  it('writes nothing while another process holds ipvsfull.lock, and the event loop keeps running', async () => {
    await w.writeFull(states, true);
    const holder = spawn('flock', ['-x', join(dir, 'ipvsfull.lock'), '-c', 'echo locked; sleep 0.6'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(holder.stdout!, 'data');
    states[0]!.reals[0]!.rstate = 'DOWN';
    w.queueReal(states[0]!.reals[0]!);
    let ticks = 0;
    const iv = setInterval(() => ticks++, 20);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(readFileSync(w.currentDiffPath, 'utf8'), '', 'nothing written under a foreign lock');
    await w.idle();
    clearInterval(iv);
    assert.match(readFileSync(w.currentDiffPath, 'utf8'), /^cmd=delreal .* rname=a /);
    assert.ok(ticks >= 10, `event loop ran (${ticks} ticks) while waiting for the lock`);
    states[0]!.reals[0]!.rstate = 'ONLINE';
  });
});
