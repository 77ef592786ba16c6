// Builders of configuration data for tests that exercise the engine and file formats without XML.
// The tester here is config data (probe behaviour injected per test), not a stand-in for a server.

import type { ProbeResult, Tester } from '../../testers/contract.js';
import type { Forwarding, RealConfig, TesterConfig, VirtualConfig, VProto } from '../../surealived/config/model.js';
import { testerConfig } from '../state/fixtures.js';

/** A tester whose verdicts come from a function: lets engine tests script success/failure sequences. */
export function scriptedTester(name: string, verdict: (addr: string, port: number) => ProbeResult | Promise<ProbeResult>): Tester {
  return {
    name,
    attrs: [],
    compile: () => ({}),
    probe: async (t) => verdict(t.addr, t.port),
  };
}

export interface RealInit {
  name: string;
  addr: string;
  port?: number;
  weight?: number;
  testport?: number;
  uthresh?: number;
  lthresh?: number;
  rt?: Forwarding;
}

export interface VirtualInit {
  name: string;
  proto?: VProto;
  addr?: string;
  port?: number;
  fwmark?: number;
  sched?: string;
  rt?: Forwarding;
  pers?: number;
  ops?: boolean;
  tester?: Partial<TesterConfig>;
  reals?: RealInit[];
}

export function makeVirtual(init: VirtualInit, tester: Tester = scriptedTester('no-test', () => ({ ok: true, detail: 'ok' }))): VirtualConfig {
  const family = (init.addr ?? '').includes(':') ? 6 : 4;
  const tc = testerConfig({ proto: tester.name, tester, loopdelay: 1, timeout: 1, retries2fail: 1, ...init.tester });
  const rt = init.rt ?? 'dr';
  const reals: RealConfig[] = (init.reals ?? []).map((r) => {
    const testport = r.testport ?? tc.testport;
    return {
      name: r.name,
      addr: r.addr,
      family: r.addr.includes(':') ? 6 : 4,
      port: r.port ?? 80,
      weight: r.weight ?? 1,
      testport,
      uthresh: r.uthresh ?? 0,
      lthresh: r.lthresh ?? 0,
      rt: r.rt ?? rt,
      values: {},
      params: {},
      probeKey: `${tester.name}|${r.addr}|${testport}|${tc.timeout}|${tc.loopdelay}`,
      source: { file: 'test.xml', line: 2 },
    };
  });
  return {
    name: init.name,
    proto: init.proto ?? 'tcp',
    addr: init.fwmark ? (family === 6 ? '::' : '0.0.0.0') : (init.addr ?? '192.0.2.1'),
    family,
    port: init.fwmark ? 0 : (init.port ?? 80),
    fwmark: init.fwmark ?? 0,
    sched: init.sched ?? 'wrr',
    rt,
    pers: init.pers ?? 0,
    ops: init.ops ?? false,
    tester: tc,
    reals,
    source: { file: 'test.xml', line: 1 },
  };
}
