// Old diff cleanup: only diff_sync.<digits> files numbered below the current one, compared as numbers.

import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupDiffs, diffsToDelete } from '../../ipvssync/cleanup.js';
import { handoffDir } from './helpers.js';

describe('ipvssync old diff cleanup', () => {
  it('selects only diff_sync.<digits> names with a lower number, numerically', () => {
    const names = ['diff_sync.99', 'diff_sync.100', 'diff_sync.1000', 'diff_sync.0999', 'diff_sync.12a', 'diff_sync.', 'notes.txt', 'diff_sync.5.bak', 'adiff_sync.1'];
    // Byte order would call "diff_sync.1000" lower than "diff_sync.999" and delete it (spec 11.13).
    assert.deepEqual(diffsToDelete(names, '/x/diff_sync.999'), ['diff_sync.99', 'diff_sync.100']);
    assert.deepEqual(diffsToDelete(names, '/x/diff_sync.1000'), ['diff_sync.99', 'diff_sync.100', 'diff_sync.0999']);
    assert.deepEqual(diffsToDelete(names, '/x/not-a-diff'), []);
  });

  it('deletes the old diff files of the directory and nothing else', async () => {
    const d = handoffDir();
    try {
      for (const n of ['diff_sync.100', 'diff_sync.160', 'diff_sync.220', 'diff_sync.9999', 'README', 'diff_sync.50.old']) writeFileSync(join(d.diffDir, n), '');
      mkdirSync(join(d.diffDir, 'diff_sync.10'));
      const r = await cleanupDiffs(d.diffDir, d.diff(220));
      assert.deepEqual([...r.deleted].sort(), [d.diff(100), d.diff(160)]);
      assert.deepEqual(readdirSync(d.diffDir).sort(), ['README', 'diff_sync.10', 'diff_sync.220', 'diff_sync.50.old', 'diff_sync.9999']);
      assert.ok(existsSync(join(d.diffDir, 'diff_sync.10')), 'a directory is never removed');
    } finally {
      d.cleanup();
    }
  });
});
