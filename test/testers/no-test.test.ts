// The no-test tester, and the registry of built-in testers.

import assert from 'node:assert/strict';
import { noTestTester } from '../../testers/no-test.js';
import { BUILTIN_TESTERS } from '../../testers/builtin.js';
import { deadline, target } from '../helpers/servers.js';

describe('no-test tester', () => {
  it('is always up, without any I/O, even for an unreachable address', async () => {
    const p = noTestTester.compile({}, { ssl: false, timeoutMs: 0 });
    const r = await noTestTester.probe(target('127.0.0.1', 1), p, deadline(1000));
    assert.deepEqual(r, { ok: true, detail: 'no-test', connectMs: 0 });
  });
});

describe('built-in testers', () => {
  it('are registered under their proto names, with documented attributes', () => {
    assert.deepEqual(BUILTIN_TESTERS.map((t) => t.name), ['tcp', 'http', 'dns', 'exec', 'no-test', 'smtp', 'udp', 'ping']);
    for (const t of BUILTIN_TESTERS) {
      for (const a of t.attrs) assert.ok(a.doc.length > 10, `${t.name}.${a.name} needs a doc line`);
      assert.equal(new Set(t.attrs.map((a) => a.name)).size, t.attrs.length, `${t.name}: duplicate attribute`);
    }
  });
});
