// One farm's sessions from Pound's frames, pure: keyed by listener/service/key (sibling services never
// wiped), only real changes reported, a new dump swept as a generation, refusals with reasons.

import assert from 'node:assert/strict';
import type { Change } from '../../session-sync/model.js';
import type { PoundFrame } from '../../session-sync/pound/codec.js';
import { FarmSessions } from '../../session-sync/pound/view.js';

const T = 1_700_000_000;
type Upsert = Extract<PoundFrame, { readonly content: string }>;
const add = (l: number, s: number, key: string, b = 0, t = T, action: Upsert['action'] = 'add'): Upsert => ({
  action,
  farm: 'web',
  listener: l,
  service: s,
  backend: b,
  key,
  content: `10.0.0.${b + 1}`,
  lastAcc: t,
});
const del = (l: number, s: number, key: string): PoundFrame => ({ action: 'delete', farm: 'web', listener: l, service: s, backend: 0, key });

/** `+L/S/key>B@t` for upserts, `-L/S/key` for deletes. */
function show(changes: readonly Change[]): string[] {
  return changes.map((c) => {
    if (c.op === 'drop') return 'drop';
    if (c.op === 'delete') return `-${c.key}`;
    const e = c.entry;
    return e.kind === 'http' ? `+${e.listener}/${e.service}/${e.key}>${e.backend}@${e.lastAccess / 1000 - T}` : '?';
  });
}

describe('session-sync/pound/view', () => {
  let v: FarmSessions;
  beforeEach(() => {
    v = new FarmSessions({ kind: 'http', farm: 'web' });
    v.beginDump();
  });

  it('reports the dump as upserts, last access in epoch ms, then only what changed', () => {
    for (const f of [add(0, 0, 'a'), add(0, 1, 'b', 2), add(1, 0, 'c', 1, T + 5)]) assert.equal(v.apply(f), undefined);
    const first = v.take();
    assert.deepEqual(show(first), ['+0/0/a>0@0', '+0/1/b>2@0', '+1/0/c>1@5']);
    assert.deepEqual(first[0], {
      op: 'upsert',
      table: { kind: 'http', farm: 'web' },
      entry: { kind: 'http', listener: 0, service: 0, key: 'a', backend: 0, content: '10.0.0.1', lastAccess: T * 1000 },
    });
    v.apply(add(0, 0, 'a')); // the same again: nothing to report
    v.apply(add(0, 0, 'a', 0, T + 1, 'update'));
    v.apply(add(0, 0, 'a', 0, T + 2, 'update')); // coalesced: the latest wins
    v.apply(del(1, 0, 'c'));
    v.apply(del(1, 0, 'never-seen'));
    assert.deepEqual(show(v.take()), ['+0/0/a>0@2', '-1/0/c']);
    assert.deepEqual(v.take(), []);
  });

  it('the same key in sibling services and listeners is three sessions; deleting one leaves the others', () => {
    v.apply(add(0, 0, 'same'));
    v.apply(add(0, 1, 'same', 1));
    v.apply(add(1, 0, 'same', 2));
    v.take();
    v.apply(add(0, 2, 'new-service')); // v1.0.0 replaced listener 0's map here, wiping 0/0 and 0/1
    v.apply(del(0, 1, 'same'));
    assert.deepEqual(show(v.take()), ['+0/2/new-service>0@0', '-0/1/same']);
    assert.deepEqual(v.list().map((s) => `${s.listener}/${s.service}/${s.key}`).sort(), ['0/0/same', '0/2/new-service', '1/0/same']);
  });

  it('a new dump replaces the old view: confirmed sessions stay silent, stale ones are deleted only when it ends', () => {
    for (const k of ['keep', 'changes', 'stale']) v.apply(add(0, 0, k));
    v.endDump();
    v.take();
    v.beginDump(); // Pound came back
    v.apply(add(0, 0, 'keep'));
    v.apply(add(0, 0, 'changes', 3));
    v.apply(add(0, 0, 'new'));
    assert.deepEqual(show(v.take()), ['+0/0/changes>3@0', '+0/0/new>0@0'], 'nothing deleted while the dump runs');
    assert.equal(v.size, 4);
    assert.equal(v.endDump(), 1);
    assert.deepEqual(show(v.take()), ['-0/0/stale']);
    assert.equal(v.inDump, false);
  });

  it('a session the live stream touches during the new dump counts as confirmed', () => {
    v.apply(add(0, 0, 'live'));
    v.endDump();
    v.beginDump();
    v.apply(add(0, 0, 'live', 0, T + 9, 'update'));
    assert.equal(v.endDump(), 0);
  });

  it('reset reports every session again', () => {
    v.apply(add(0, 0, 'a'));
    v.apply(add(0, 1, 'b'));
    v.take();
    v.apply(del(0, 1, 'b'));
    v.reset();
    assert.deepEqual(show(v.take()), ['+0/0/a>0@0']);
  });

  it('refuses an empty key, a key or content over 255 bytes, and actions only ssyncd sends, saying why', () => {
    assert.match(v.apply(add(0, 0, ''))!.why, /empty key/);
    const long = v.apply(add(0, 0, 'x'.repeat(300)))!;
    assert.equal(long.kind, 'unusable session');
    assert.match(long.why, /^add 0\/0\/"x{40}\.\.\.": key of 300 bytes: Pound's sync format carries at most 255 .*not replicated$/);
    assert.match(v.apply({ ...add(0, 0, 'k'), content: '1'.repeat(256) })!.why, /content of 256 bytes/);
    assert.deepEqual(v.apply({ action: 'sync-request', farm: 'web' }), { kind: 'ignored action', why: 'Pound sent sync-request, which only ssyncd sends; ignored' });
    assert.equal(v.apply(add(0, 0, 'w', 0, T, 'write'))?.kind, 'ignored action');
    assert.equal(v.apply({ action: 'clear', farm: 'web' })?.kind, 'ignored action');
    assert.deepEqual(v.take(), []);
    assert.equal(v.apply(add(0, 0, 'x'.repeat(255))), undefined, '255 bytes fit');
  });
});
