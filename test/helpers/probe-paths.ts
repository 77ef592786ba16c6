// Runs a tester's plain-connection tests on both probe paths: the native prober (the default where
// `npm install` built it) and the net.Socket path (SUREALIVED_PROBES=js: TLS, fallback).

import assert from 'node:assert/strict';
import { nativeBuilt } from '../../testers/native.js';

export type ProbePath = 'native' | 'js';
export const PROBE_PATHS: readonly ProbePath[] = ['native', 'js'];

/** Sets SUREALIVED_PROBES for the enclosing describe (testers read it when compiling). */
export function useProbePath(path: ProbePath): void {
  let saved: string | undefined;
  before(() => {
    saved = process.env['SUREALIVED_PROBES'];
    if (path === 'js') process.env['SUREALIVED_PROBES'] = 'js';
    else {
      delete process.env['SUREALIVED_PROBES'];
      assert.ok(nativeBuilt(), 'the native prober is not built (npm install builds it with node-gyp)');
    }
  });
  after(() => {
    if (saved === undefined) delete process.env['SUREALIVED_PROBES'];
    else process.env['SUREALIVED_PROBES'] = saved;
  });
}
