// Behaviour of the stats log: exact START/real/END block in ms and µs, file names, appender.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import {
  createStatsLogWriter,
  ensureStatsDir,
  formatHTime,
  formatStatsLog,
  fullStatsPath,
  virtStatsPath,
  type CycleRecord,
} from '../../surealived/stats/stats-log.js';
import { memLogger, real, tempDir, virtual } from '../state/fixtures.js';

const at = (h: number, m: number, s: number, ms: number): number => new Date(2024, 4, 1, h, m, s, ms).getTime();

function cycle(logmicro: boolean): CycleRecord {
  const v = virtual({
    name: 'www',
    addr: '192.168.0.2',
    port: 80,
    tester: { logmicro },
    reals: [real('r1', '212.77.100.101', 8080, 1), real('r2', '212.77.100.102', 80, 1), real('r6', '2001:db8::10', 80, 1)],
  });
  return {
    virtual: v,
    startMs: at(12, 0, 0, 5),
    deadlineMs: at(12, 0, 5, 250),
    reals: [
      { real: v.reals[0]!, startMs: at(12, 0, 0, 123.9), connMs: 1.2345, respMs: 2.5, totalMs: 3.7345, currtest: true, online: true },
      { real: v.reals[1]!, startMs: at(12, 0, 0, 223), connMs: -1, respMs: 5001, totalMs: 5000, currtest: false, online: false },
      { real: v.reals[2]!, startMs: at(12, 0, 0, 323), connMs: -3, respMs: 0, totalMs: 0.4, currtest: false, online: true },
    ],
  };
}

describe('stats/stats-log (spec 4.8)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('formats local time with milliseconds', () => {
    assert.equal(formatHTime(at(9, 5, 7, 42.9)), '2024-05-01 09:05:07.042');
  });

  it('writes START, one line per real, END and the separator, in ms', () => {
    assert.equal(
      formatStatsLog(cycle(false)),
      'START Virtual: www start time=2024-05-01 12:00:00.005\n' +
        '2024-05-01 12:00:00.123 virt=www:80 vproto=tcp vaddr=192.168.0.2:80 real=r1:8080 raddr=212.77.100.101:8080 conntime=1ms resptime=2ms totaltime=3ms currtest=TRUE online=TRUE\n' +
        '2024-05-01 12:00:00.223 virt=www:80 vproto=tcp vaddr=192.168.0.2:80 real=r2:80 raddr=212.77.100.102:80 conntime=-1ms resptime=5001ms totaltime=5000ms currtest=FALSE online=FALSE\n' +
        '2024-05-01 12:00:00.323 virt=www:80 vproto=tcp vaddr=192.168.0.2:80 real=r6:80 raddr=[2001:db8::10]:80 conntime=-3ms resptime=0ms totaltime=0ms currtest=FALSE online=TRUE\n' +
        'END   Virtual: www end time=2024-05-01 12:00:05.250\n' +
        '--------------\n',
    );
  });

  it('uses µs with logmicro, markers becoming -1000/-3000', () => {
    const lines = formatStatsLog(cycle(true)).split('\n');
    assert.match(lines[1]!, / conntime=1234us resptime=2500us totaltime=3734us /);
    assert.match(lines[2]!, / conntime=-1000us resptime=5001000us totaltime=5000000us /);
    assert.match(lines[3]!, / conntime=-3000us resptime=0us totaltime=400us /);
  });

  it('names the files sd_fullstats.log and sd_virtstats_<vname>:<vport>.<deadline sec>', () => {
    const c = cycle(false);
    assert.equal(fullStatsPath('/s'), '/s/sd_fullstats.log');
    assert.equal(virtStatsPath('/s', c.virtual, 1714564805250), '/s/sd_virtstats_www:80.1714564805');
  });

  it('appends to the combined file and writes one file per cycle', async () => {
    const statsDir = join(tmp.dir, 'stats');
    const opts = { statsDir, logStats: true, logStatsCombined: true };
    const { log } = memLogger();
    await ensureStatsDir(opts, log);
    const w = createStatsLogWriter(opts, log);
    const c = cycle(false);
    const second = { ...c, deadlineMs: c.deadlineMs + 10_000 };
    await Promise.all([w.write(c), w.write(second)]);
    const block = formatStatsLog(c);
    assert.equal(readFileSync(fullStatsPath(statsDir), 'utf8'), block + formatStatsLog(second));
    assert.deepEqual(readdirSync(statsDir).sort(), [
      'sd_fullstats.log',
      `sd_virtstats_www:80.${Math.floor(c.deadlineMs / 1000)}`,
      `sd_virtstats_www:80.${Math.floor(second.deadlineMs / 1000)}`,
    ]);
  });

  it('a missing stats directory is logged, not thrown', async () => {
    const { log, lines } = memLogger();
    const w = createStatsLogWriter({ statsDir: join(tmp.dir, 'missing'), logStats: true, logStatsCombined: true }, log);
    await w.write(cycle(false));
    assert.equal(lines.filter((l) => l.includes('Unable to open file')).length, 2);
  });
});
