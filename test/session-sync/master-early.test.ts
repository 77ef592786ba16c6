// A source read in parts (an nftables dump) hands each part to the master as it is read: the master
// applies it and sends it to its backups at once, before the rest of the poll is done.

import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { createLogger } from '../../common/log.js';
import { BackupNode } from '../../session-sync/backup.js';
import { MasterNode } from '../../session-sync/master.js';
import type { Change, TableRef } from '../../session-sync/model.js';
import type { Source } from '../../session-sync/source.js';
import { eventually } from '../helpers/ssyncd.js';

const table: TableRef = { kind: 'recent', name: 'big' };
const upsert = (addr: string, at: number): Change => ({ op: 'upsert', table, entry: { kind: 'recent', addr, family: 4, ttl: 0, hits: [at] } });

/** A source whose second poll hands over its first part, then waits until the test lets it finish. */
function partedSource(): Source & { finish: () => void; inSecondPoll: Promise<void> } {
  let polls = 0;
  let finish = (): void => undefined;
  let entered = (): void => undefined;
  const inSecondPoll = new Promise<void>((r) => (entered = r));
  return {
    id: 'parted',
    inSecondPoll,
    finish: () => finish(),
    async poll(now, early) {
      polls += 1;
      if (polls === 1) return [upsert('10.0.0.1', now)];
      if (polls > 2) return [];
      early?.([upsert('10.0.0.2', now)]);
      entered();
      await new Promise<void>((r) => (finish = r));
      return [{ op: 'delete', table, key: '10.0.0.1' }];
    },
    owns: (t: TableRef) => t.kind === 'recent',
    reset: () => undefined,
  };
}

describe('session-sync master: a source read in parts', () => {
  it('a part handed over early reaches the backup while the poll is still running; the rest follows when it ends', async function () {
    this.timeout(20_000);
    const quiet = createLogger('error', () => undefined);
    const m = await MasterNode.start({ node: 'm', port: 0, bind: '127.0.0.1', pollIntervalMs: 200, log: quiet });
    const b = BackupNode.start({ node: 'b', masterHost: '127.0.0.1', masterPort: m.port, log: quiet });
    const src = partedSource();
    try {
      m.addSource(src);
      await src.inSecondPoll;
      assert.ok(await eventually(async () => b.store.get(table, '10.0.0.2') !== undefined, 10_000, 20), 'the early part on the backup');
      assert.ok(b.store.get(table, '10.0.0.1'), 'the first poll is there too');
      src.finish();
      assert.ok(await eventually(async () => b.store.get(table, '10.0.0.1') === undefined, 10_000, 20), 'the end of the poll on the backup');
      assert.ok(b.store.get(table, '10.0.0.2'));
      assert.equal(m.store.count(table), 1);
    } finally {
      src.finish();
      await b.close();
      await m.close();
    }
  });
});
