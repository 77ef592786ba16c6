// Behaviour of notify.dump: exact lines, restore by VKEY, and deletion when older than the boot time.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import {
  bootTimeMs,
  formatNotifyDump,
  loadNotifyDump,
  parseNotifyDump,
  saveNotifyDump,
} from '../../surealived/state/notify-dump.js';
import { memLogger, real, state, tempDir } from './fixtures.js';

function notifyState() {
  return state(
    { name: 'a', addr: '10.0.0.1', port: 80, tester: { notifyUp: '/bin/up' }, reals: [real('r', '10.0.1.1', 80, 1)] },
    { name: 'b', addr: '10.0.0.1', port: 53, proto: 'udp', tester: { notifyDown: '/bin/down' }, reals: [real('r', '10.0.1.1', 53, 1)] },
    { name: 'no-notifier', addr: '10.0.0.2', port: 80, reals: [real('r', '10.0.1.1', 80, 1)] },
    { name: 'no-reals', addr: '10.0.0.3', port: 80, tester: { notifyUp: '/bin/up' } },
    { name: 'fw', proto: 'fwmark', fwmark: 9, tester: { notifyUp: '/bin/up', notifyDown: '/bin/down' }, reals: [real('r', '10.0.1.1', 80, 1)] },
  );
}

describe('state/notify-dump (spec 7.3)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('writes one line per virtual with a notifier and at least one real', () => {
    const vs = notifyState();
    vs[0]!.notifyState = 'UP';
    vs[1]!.notifyState = 'DOWN';
    assert.equal(
      formatNotifyDump(vs),
      'vnotify 10.0.0.1:80:0:0 - state=UP\nvnotify 10.0.0.1:53:1:0 - state=DOWN\nvnotify 0.0.0.0:0:2:9 - state=UNKNOWN\n',
    );
  });

  it('parses by exact VKEY and warns about the rest', () => {
    const vs = notifyState();
    const { states, warnings } = parseNotifyDump(
      'vnotify 10.0.0.1:80:0:0 - state=DOWN\nvnotify 10.0.0.1:80:1:0 - state=UP\nvnotify 10.0.0.1:53:1:0 - state=MAYBE\nvnotify 0.0.0.0:0:2:9 - state=UP\n',
      vs,
      'notify.dump',
    );
    assert.deepEqual(states.map((s) => [s.virtual.config.name, s.state]), [
      ['a', 'DOWN'],
      ['fw', 'UP'],
    ]);
    assert.deepEqual(warnings.map((w) => w.line), [2, 3]);
  });

  it('computes the boot time from /proc/uptime', () => {
    assert.equal(bootTimeMs(1_000_000, '350.25 1200.00\n'), 1_000_000 - 350_250);
    assert.throws(() => bootTimeMs(0, 'x'), /cannot parse uptime/);
  });

  it('restores states from a file written after boot', async () => {
    const path = join(tmp.dir, 'notify.dump');
    const a = notifyState();
    a[0]!.notifyState = 'DOWN';
    a[4]!.notifyState = 'UP';
    await saveNotifyDump(path, a, memLogger().log);
    const b = notifyState();
    const now = Date.now();
    assert.equal(await loadNotifyDump(path, b, { nowMs: now, procUptime: '3600.00 1.00' }, memLogger().log), true);
    assert.deepEqual(b.map((v) => v.notifyState), ['DOWN', 'UNKNOWN', 'UNKNOWN', 'UNKNOWN', 'UP']);
    assert.equal(formatNotifyDump(b), formatNotifyDump(a));
  });

  it('deletes a file older than the boot time, so every notifier fires again', async () => {
    const path = join(tmp.dir, 'notify.dump');
    writeFileSync(path, 'vnotify 10.0.0.1:80:0:0 - state=UP\n');
    const now = Date.now();
    const twoHoursAgo = new Date(now - 2 * 3600_000);
    utimesSync(path, twoHoursAgo, twoHoursAgo);
    const vs = notifyState();
    const { log, lines } = memLogger();
    assert.equal(await loadNotifyDump(path, vs, { nowMs: now, procUptime: '3600.00 1.00' }, log), false);
    assert.equal(existsSync(path), false);
    assert.equal(vs[0]!.notifyState, 'UNKNOWN');
    assert.ok(lines.some((l) => l.includes('Probably system restart was performed')));
  });

  it('a missing file is a warning', async () => {
    const { log, lines } = memLogger();
    assert.equal(await loadNotifyDump(join(tmp.dir, 'none'), notifyState(), { nowMs: Date.now(), procUptime: '1 1' }, log), false);
    assert.ok(lines.some((l) => l.includes("Can't stat")));
  });

  it('the saved file is complete on disk', async () => {
    const path = join(tmp.dir, 'notify.dump');
    await saveNotifyDump(path, notifyState(), memLogger().log);
    assert.equal(readFileSync(path, 'utf8').split('\n').length, 4);
  });
});
