// Behaviour of stats.dump: exact vstats/rstats lines, restore by VKEY / VKEY RKEY, round trips.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import type { VirtualState } from '../../surealived/engine/state.js';
import {
  formatStatsDump,
  loadStatsDump,
  parseStatsDump,
  saveStatsDump,
  saveStatsDumpSync,
} from '../../surealived/state/stats-dump.js';
import { newVirtualStats, recordProbe, rollingAverages, updateVirtualStats, type VirtualStats } from '../../surealived/stats/statistics.js';
import { findReal, memLogger, sampleState, tempDir } from './fixtures.js';

function withStats(vs: VirtualState[]): (v: VirtualState) => VirtualStats {
  const m = new Map(vs.map((v) => [v, newVirtualStats()]));
  return (v) => m.get(v)!;
}

describe('state/stats-dump (spec 7.4)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('writes vstats for every virtual and rstats plus a blank line for virtuals with reals', () => {
    const vs = sampleState();
    const statsOf = withStats(vs);
    const www = vs[0]!;
    recordProbe(findReal(vs, 'www', 'r1').stats, { connMs: 1.5, respMs: 2.25, totalMs: 3.75 }, 20);
    recordProbe(findReal(vs, 'www', 'r1').stats, { connMs: -1, respMs: 5001, totalMs: 5000, problem: 'conn' }, 20);
    recordProbe(findReal(vs, 'www', 'r2').stats, { connMs: 0.5, respMs: 0.25, totalMs: 0.75 }, 20);
    updateVirtualStats(statsOf(www), www.reals);
    const text = formatStatsDump(vs, statsOf);
    const lines = text.split('\n');
    assert.equal(lines[0], 'vstats 192.168.0.2:80:0:0 - 20 1 - 1250:1250:1251 - 1250625:1250937:1251312 - 1:0:0');
    assert.equal(lines[1], 'rstats 212.77.100.101:80 - 2 - 2500:2501:2501 - 2500750:2501625:2501875 - 5001:5003:5003 - 5001500:5003250:5003750 - 1:0:0');
    assert.equal(lines[2], 'rstats 212.77.100.102:80 - 1 - 0:0:0 - 500:250:750 - 0:0:0 - 500:250:750 - 0:0:0');
    assert.equal(lines[3], '');
    assert.ok(text.includes('vstats [2001:db8::1]:80:0:0 - 20 0 - 0:0:0 - 0:0:0 - 0:0:0\nrstats [2001:db8::10]:8080 - 0 - '));
    assert.ok(text.endsWith('vstats 10.0.0.9:80:0:0 - 20 0 - 0:0:0 - 0:0:0 - 0:0:0\n'), 'empty virtual: no blank line');
  });

  it('round-trips: save, restore into a fresh state, same bytes', async () => {
    const path = join(tmp.dir, 'stats.dump');
    const a = sampleState();
    const statsA = withStats(a);
    for (const v of a) {
      for (const r of v.reals) {
        recordProbe(r.stats, { connMs: 1.234, respMs: 5.678, totalMs: 6.912 }, v.config.tester.statsSamples);
        recordProbe(r.stats, { connMs: -3, respMs: 0, totalMs: 0.8, problem: 'rst' }, v.config.tester.statsSamples);
      }
      updateVirtualStats(statsA(v), v.reals);
    }
    assert.equal(await saveStatsDump(path, a, statsA, memLogger().log), true);
    const b = sampleState();
    const statsB = withStats(b);
    assert.equal(await loadStatsDump(path, b, statsB, memLogger().log), true);
    assert.equal(formatStatsDump(b, statsB), readFileSync(path, 'utf8'));
    const r1 = findReal(b, 'www', 'r1').stats;
    assert.equal(r1.total, 2);
    assert.equal(r1.rstProblems, 1);
    assert.ok(Math.abs(rollingAverages(r1).total - 3.856) < 1e-9);
  });

  it('rstats lines belong to the preceding vstats line; unknown ones are warned about', () => {
    const vs = sampleState();
    const text = [
      'rstats 10.0.1.5:80 - 1 - 0:0:0 - 0:0:0 - 0:0:0 - 0:0:0 - 0:0:0',
      'vstats 10.0.0.1:80:0:0 - 20 4 - 1:1:1 - 1000:1000:1000 - 0:0:0',
      'rstats 10.0.1.5:80 - 9 - 2:3:5 - 2000:3000:5000 - 18:27:45 - 18000:27000:45000 - 1:2:3',
      'rstats 212.77.100.101:80 - 9 - 2:3:5 - 2000:3000:5000 - 18:27:45 - 18000:27000:45000 - 1:2:3',
      'vstats 10.9.9.9:80:0:0 - 20 4 - 1:1:1 - 1000:1000:1000 - 0:0:0',
      'rstats 10.0.1.5:80 - 1 - 0:0:0 - 0:0:0 - 0:0:0 - 0:0:0 - 0:0:0',
      'vstats nonsense',
    ].join('\n');
    const p = parseStatsDump(text, vs, 'stats.dump');
    assert.deepEqual(p.virtuals.map((x) => [x.virtual.config.name, x.total]), [['web', 4]]);
    assert.deepEqual(p.reals.map((x) => [x.real.config.name, x.total, x.sum.total, x.rstProblems]), [['w1', 9, 45, 3]]);
    assert.deepEqual(p.warnings.map((w) => w.line), [1, 4, 5, 6, 7]);
  });

  it('the synchronous save (shutdown path) writes the same bytes', () => {
    const path = join(tmp.dir, 'stats.dump');
    const vs = sampleState();
    const statsOf = withStats(vs);
    assert.equal(saveStatsDumpSync(path, vs, statsOf, memLogger().log), true);
    assert.equal(readFileSync(path, 'utf8'), formatStatsDump(vs, statsOf));
  });
});
