// Test data shared by the state, stats and notify tests: plain ServiceConfig-shaped objects and
// their runtime state, built the way config/xml.ts and engine/state.ts would.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RealConfig, TesterConfig, VirtualConfig, VProto } from '../../surealived/config/model.js';
import { buildState, type VirtualState } from '../../surealived/engine/state.js';
import { createLogger, memorySink, type Logger } from '../../common/log.js';
import type { Tester } from '../../testers/contract.js';

/** A tester that is never run: the config needs one. */
export const noopTester: Tester = {
  name: 'tcp',
  attrs: [],
  compile: () => null,
  probe: () => Promise.resolve({ ok: true, detail: 'noop' }),
};

const source = { file: 'test.xml', line: 1 };

export function testerConfig(over: Partial<TesterConfig> = {}): TesterConfig {
  return {
    proto: 'tcp',
    tester: noopTester,
    testport: 80,
    loopdelay: 3,
    timeout: 5,
    retries2ok: 1,
    retries2fail: 3,
    removeOnFail: false,
    debugcomm: false,
    logmicro: false,
    statsSamples: 20,
    ssl: false,
    notifyMinReals: { value: 0, percent: false },
    notifyMinWeight: { value: 0, percent: false },
    values: {},
    source,
    ...over,
  };
}

export function real(name: string, addr: string, port: number, weight: number): RealConfig {
  return {
    name,
    addr,
    family: addr.includes(':') ? 6 : 4,
    port,
    weight,
    testport: port,
    uthresh: 0,
    lthresh: 0,
    rt: 'dr',
    values: {},
    params: null,
    probeKey: `${addr}:${port}`,
    source,
  };
}

export interface VirtualSpec {
  name: string;
  addr?: string;
  port?: number;
  proto?: VProto;
  fwmark?: number;
  tester?: Partial<TesterConfig>;
  reals?: RealConfig[];
}

export function virtual(s: VirtualSpec): VirtualConfig {
  const addr = s.addr ?? '0.0.0.0';
  return {
    name: s.name,
    proto: s.proto ?? 'tcp',
    addr,
    family: addr.includes(':') ? 6 : 4,
    port: s.port ?? 0,
    fwmark: s.fwmark ?? 0,
    sched: 'wlc',
    rt: 'dr',
    pers: 0,
    ops: false,
    tester: testerConfig(s.tester),
    reals: s.reals ?? [],
    source,
  };
}

export function state(...specs: VirtualSpec[]): VirtualState[] {
  return buildState(specs.map(virtual));
}

/** The example service used across tests: a tcp virtual, a udp one, a fwmark one and an IPv6 one. */
export function sampleState(): VirtualState[] {
  return state(
    { name: 'www', addr: '192.168.0.2', port: 80, reals: [real('r1', '212.77.100.101', 80, 10), real('r2', '212.77.100.102', 80, 20)] },
    { name: 'web', addr: '10.0.0.1', port: 80, reals: [real('w1', '10.0.1.5', 80, 20), real('w2', '10.0.1.6', 80, 30)] },
    { name: 'dns', addr: '10.0.0.1', port: 53, proto: 'udp', reals: [real('d1', '10.0.2.1', 53, 5)] },
    { name: 'fw', proto: 'fwmark', fwmark: 7, reals: [real('f1', '10.0.3.1', 80, 1)] },
    { name: 'v6', addr: '2001:db8::1', port: 80, reals: [real('s1', '2001:db8::10', 8080, 3)] },
    { name: 'empty', addr: '10.0.0.9', port: 80 },
  );
}

export function memLogger(): { log: Logger; lines: string[] } {
  const m = memorySink();
  return { log: createLogger('dbdet', m.sink), lines: m.lines };
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'surealived-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function findReal(vs: readonly VirtualState[], vname: string, rname: string) {
  const v = vs.find((x) => x.config.name === vname);
  const r = v?.reals.find((x) => x.config.name === rname);
  if (!r) throw new Error(`no real ${vname}:${rname} in test data`);
  return r;
}
