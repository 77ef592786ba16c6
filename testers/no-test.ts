// The no-test tester [spec 6.6]: no probe at all; every real is always up (rstate still applies).

import type { ProbeResult, Tester } from './contract.js';

const UP: ProbeResult = { ok: true, detail: 'no-test', connectMs: 0 };

export const noTestTester: Tester<null> = {
  name: 'no-test',
  attrs: [],
  compile: () => null,
  probe: () => Promise.resolve(UP),
};
