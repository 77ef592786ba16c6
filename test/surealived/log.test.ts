// The log line format of spec 10: `[YYYY-MM-DD HH:MM:SS.uuuuuu] level : message`, local time.

import assert from 'node:assert/strict';
import { formatLogLine, localDateTime } from '../../common/log.js';

describe('log lines', () => {
  it('stamp local date and time with microseconds; lines within one second and across seconds are each right', () => {
    const base = new Date(2026, 10, 22, 9, 59, 59).getTime() * 1000;
    const times = [base + 1, base + 999_999, base + 1_000_000, base + 1_000_042, base - 1, base + 86_400_000_000];
    for (const t of times) {
      const expected = `[${localDateTime(new Date(Math.floor(t / 1000)))}.${String(t % 1_000_000).padStart(6, '0')}] info  : hello\n`;
      assert.equal(formatLogLine(t, 'info', 'hello'), expected, `at ${t}`);
    }
    assert.equal(formatLogLine(base + 5, 'warn', 'x'), '[2026-11-22 09:59:59.000005] warn  : x\n');
    assert.equal(formatLogLine(base + 1_000_005, 'error', 'y'), '[2026-11-22 10:00:00.000005] error : y\n');
  });
});
