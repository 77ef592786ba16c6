// The log line format of spec 10: `[YYYY-MM-DD HH:MM:SS.uuuuuu] level : message`, local time.

import assert from 'node:assert/strict';
import { formatLogLine } from '../../common/log.js';

describe('log lines', () => {
  it('stamp local date and time with microseconds; lines within one second and across seconds are each right', () => {
    // 2026-11-22 09:59:59 on this host's wall clock, whatever its zone.
    const base = new Date(2026, 10, 22, 9, 59, 59).getTime() * 1000;
    const cases: [number, string][] = [
      [base + 1, '2026-11-22 09:59:59.000001'],
      [base + 999_999, '2026-11-22 09:59:59.999999'],
      [base + 1_000_000, '2026-11-22 10:00:00.000000'],
      [base + 1_000_042, '2026-11-22 10:00:00.000042'],
      [base - 1, '2026-11-22 09:59:58.999999'],
      [base + 86_400_000_000, '2026-11-23 09:59:59.000000'],
    ];
    for (const [t, stamp] of cases) assert.equal(formatLogLine(t, 'info', 'hello'), `[${stamp}] info  : hello\n`, `at ${t}`);
    assert.equal(formatLogLine(base + 5, 'warn', 'x'), '[2026-11-22 09:59:59.000005] warn  : x\n');
    assert.equal(formatLogLine(base + 1_000_005, 'error', 'y'), '[2026-11-22 10:00:00.000005] error : y\n');
  });

  it('the stamp is the wall clock of the zone in force: fixed instants under TZ=UTC and TZ=Asia/Kolkata (+05:30)', () => {
    // Epoch seconds worked out by hand (calendar.timegm): 2026-11-22 08:59:59 UTC = 1795337999,
    // 2026-12-31 23:59:59 UTC = 1798761599. Each line uses a new second: the stamp is cached per second.
    const tz = process.env['TZ'];
    try {
      process.env['TZ'] = 'UTC';
      assert.equal(formatLogLine(1_795_337_999_123_456, 'info', 'hello'), '[2026-11-22 08:59:59.123456] info  : hello\n');
      assert.equal(formatLogLine(1_798_761_599_999_999, 'debug', 'a'), '[2026-12-31 23:59:59.999999] debug : a\n');
      assert.equal(formatLogLine(1_798_761_600_000_000, 'dbdet', 'b'), '[2027-01-01 00:00:00.000000] dbdet : b\n');
      process.env['TZ'] = 'Asia/Kolkata';
      assert.equal(formatLogLine(1_795_337_998_000_001, 'warn', 'c'), '[2026-11-22 14:29:58.000001] warn  : c\n');
      assert.equal(formatLogLine(1_798_761_599_500_000, 'error', 'd'), '[2027-01-01 05:29:59.500000] error : d\n');
    } finally {
      if (tz === undefined) delete process.env['TZ'];
      else process.env['TZ'] = tz;
    }
  });
});
