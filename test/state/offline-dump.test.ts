// Behaviour of offline.dump: exact lines, tolerant parsing with warnings, start-up seeding, round trips.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import {
  applyOffline,
  formatOfflineDump,
  loadOfflineDump,
  parseOfflineDump,
  saveOfflineDump,
  saveOfflineDumpSync,
} from '../../surealived/state/offline-dump.js';
import { findReal, memLogger, sampleState, tempDir } from './fixtures.js';

describe('state/offline-dump (spec 7.1)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('writes one `VKEY - RKEY` line per offline real, exactly as the original', () => {
    const vs = sampleState();
    findReal(vs, 'www', 'r1').online = false;
    findReal(vs, 'fw', 'f1').online = false;
    findReal(vs, 'v6', 's1').online = false;
    assert.equal(
      formatOfflineDump(vs),
      '192.168.0.2:80:0:0 - 212.77.100.101:80\n0.0.0.0:0:2:7 - 10.0.3.1:80\n[2001:db8::1]:80:0:0 - [2001:db8::10]:8080\n',
    );
  });

  it('an empty set gives an empty file', () => {
    assert.equal(formatOfflineDump(sampleState()), '');
  });

  it('parses matched reals and warns about unmatched and garbage lines with their line numbers', () => {
    const vs = sampleState();
    const text = [
      '192.168.0.2:80:0:0 - 212.77.100.101:80',
      'garbage',
      '10.9.9.9:80:0:0 - 10.0.1.5:80',
      '',
      '0.0.0.0:0:2:7 - 10.0.3.1:80',
      '192.168.0.2:80:0:0 - 212.77.100.101:80',
      '10.0.0.1:80:0:0 - 10.0.1.5:80\r',
      '192.168.0.2:80:0 - 212.77.100.101:80',
    ].join('\n');
    const { reals, warnings } = parseOfflineDump(text, vs, '/x/offline.dump');
    assert.deepEqual(reals.map((r) => `${r.virtual.config.name}:${r.config.name}`), ['www:r1', 'fw:f1', 'web:w1']);
    assert.deepEqual(
      warnings.map((w) => [w.line, w.text]),
      [
        [2, 'garbage'],
        [3, '10.9.9.9:80:0:0 - 10.0.1.5:80'],
        [8, '192.168.0.2:80:0 - 212.77.100.101:80'],
      ],
    );
    assert.match(warnings[1]!.reason, /no such real/);
    assert.equal(warnings[0]!.file, '/x/offline.dump');
  });

  it('seeds matched reals offline with the fail counter at retries2fail', () => {
    const vs = sampleState();
    const r = findReal(vs, 'web', 'w2');
    r.okCount = 1;
    applyOffline([r]);
    assert.equal(r.online, false);
    assert.equal(r.okCount, 0);
    assert.equal(r.failCount, 3);
  });

  it('round-trips through the file: save, load into a fresh state, same offline set', async () => {
    const path = join(tmp.dir, 'offline.dump');
    const a = sampleState();
    findReal(a, 'web', 'w2').online = false;
    findReal(a, 'v6', 's1').online = false;
    assert.equal(await saveOfflineDump(path, a, memLogger().log), true);
    const b = sampleState();
    const { log } = memLogger();
    const set = await loadOfflineDump(path, b, log);
    assert.deepEqual(set.map((r) => r.config.name), ['w2', 's1']);
    assert.equal(findReal(b, 'web', 'w2').online, false);
    assert.equal(findReal(b, 'web', 'w1').online, true);
    assert.equal(formatOfflineDump(b), formatOfflineDump(a));
  });

  it('at start-up drops unmatched lines by rewriting the file, and logs them', async () => {
    const path = join(tmp.dir, 'offline.dump');
    writeFileSync(path, 'nonsense\n10.0.0.1:80:0:0 - 10.0.1.6:80\n10.0.0.1:80:0:0 - 10.0.1.99:80\n');
    const { log, lines } = memLogger();
    await loadOfflineDump(path, sampleState(), log);
    assert.equal(readFileSync(path, 'utf8'), '10.0.0.1:80:0:0 - 10.0.1.6:80\n');
    assert.ok(lines.some((l) => l.includes('offline.dump:1: expected')));
    assert.ok(lines.some((l) => l.includes('offline.dump:3: no such real')));
    assert.ok(lines.some((l) => l.includes('Set real: web:w2 (10.0.0.1:80:0:0 - 10.0.1.6:80) to OFFLINE')));
  });

  it('a missing file is a warning, not an error', async () => {
    const { log, lines } = memLogger();
    assert.deepEqual(await loadOfflineDump(join(tmp.dir, 'none'), sampleState(), log), []);
    assert.ok(lines.some((l) => l.includes('No dump file!')));
  });

  it('the synchronous save writes the same bytes and leaves no temp file', () => {
    const path = join(tmp.dir, 'offline.dump');
    const vs = sampleState();
    findReal(vs, 'dns', 'd1').online = false;
    assert.equal(saveOfflineDumpSync(path, vs, memLogger().log), true);
    assert.equal(readFileSync(path, 'utf8'), '10.0.0.1:53:1:0 - 10.0.2.1:53\n');
    assert.deepEqual(readdirSync(tmp.dir), ['offline.dump']);
  });

  it('a save into a missing directory is logged and reported, not thrown', async () => {
    const { log, lines } = memLogger();
    assert.equal(await saveOfflineDump(join(tmp.dir, 'no', 'offline.dump'), sampleState(), log), false);
    assert.ok(lines.some((l) => l.includes('Unable to write dump file')));
  });
});
