import { strict as assert } from 'node:assert';
import { Engine } from '../../surealived/engine/engine.js';
import { buildState, type RealState } from '../../surealived/engine/state.js';
import { carryOverState } from '../../surealived/engine/carry-over.js';
import { createLogger, memorySink } from '../../common/log.js';
import type { ProbeResult, Tester } from '../../testers/contract.js';
import { makeVirtual, scriptedTester } from '../helpers/model.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('engine scheduling and verdicts (spec 4)', () => {
  let engine: Engine | null = null;
  afterEach(() => engine?.stop());

  it('probes each real every loopdelay seconds, independently of slower reals', async () => {
    const counts = new Map<string, number>();
    const tester = scriptedTester('t', async (addr) => {
      counts.set(addr, (counts.get(addr) ?? 0) + 1);
      if (addr === '127.0.0.2') await sleep(400); // slow but within timeout
      return { ok: true, detail: 'ok' };
    });
    const v = makeVirtual({ name: 'v', tester: { loopdelay: 0.2, timeout: 1 }, reals: [{ name: 'fast', addr: '127.0.0.1' }, { name: 'slow', addr: '127.0.0.2' }] }, tester);
    engine = new Engine({ log: createLogger('error', () => undefined), minPeriodMs: 50, startupSpreadMs: 50 });
    engine.load(buildState([v]));
    engine.start();
    await sleep(1050);
    const fast = counts.get('127.0.0.1') ?? 0;
    const slow = counts.get('127.0.0.2') ?? 0;
    assert.ok(fast >= 4 && fast <= 6, `fast real probed ${fast} times in ~1 s at loopdelay 0.2`);
    assert.ok(slow >= 2 && slow <= 3, `slow real (400 ms probes) probed ${slow} times`);
  });

  it('a probe that never answers is judged failed at its deadline, its signal aborted, and the real goes offline', async () => {
    let aborted = 0;
    const hang: Tester = {
      name: 'hang',
      attrs: [],
      compile: () => ({}),
      probe: (_t, _p, ctx) =>
        new Promise<ProbeResult>(() => {
          ctx.signal.addEventListener('abort', () => aborted++);
        }),
    };
    const { sink, lines } = memorySink();
    const transitions: RealState[] = [];
    const v = makeVirtual({ name: 'web', addr: '192.0.2.1', tester: { loopdelay: 0.1, timeout: 0.3, retries2fail: 1 }, reals: [{ name: 'r1', addr: '127.0.0.5', port: 8080 }] }, hang);
    engine = new Engine({ log: createLogger('info', sink), minPeriodMs: 50, startupSpreadMs: 0, hooks: { onTransition: (r) => transitions.push(r) } });
    const started = performance.now();
    engine.load(buildState([v]));
    engine.start();
    while (transitions.length === 0 && performance.now() - started < 2000) await sleep(10);
    const took = performance.now() - started;
    assert.equal(transitions.length, 1);
    assert.ok(took >= 290 && took < 450, `deadline honoured: offline after ${took.toFixed(0)} ms with timeout 300 ms`);
    assert.equal(aborted, 1);
    assert.equal(transitions[0]!.online, false);
    assert.match(lines.join(''), /info  : Real: \[web:r1 - 192\.0\.2\.1:80:tcp 127\.0\.0\.5:8080\] changed its test state to OFFLINE \(rstate = ONLINE\)/);
    assert.equal(engine.counters.connProblem, 1);
  });

  it('runs an identical probe of one real shared by several virtuals once, and feeds both', async () => {
    let probes = 0;
    const tester = scriptedTester('t', () => {
      probes++;
      return { ok: false, detail: 'refused', problem: 'rst' };
    });
    const a = makeVirtual({ name: 'a', addr: '192.0.2.1', tester: { loopdelay: 0.2, timeout: 0.5 }, reals: [{ name: 'r', addr: '127.0.0.9' }] }, tester);
    const b = makeVirtual({ name: 'b', addr: '192.0.2.2', tester: { loopdelay: 0.2, timeout: 0.5 }, reals: [{ name: 'r', addr: '127.0.0.9' }] }, tester);
    const states = buildState([a, b]);
    engine = new Engine({ log: createLogger('error', () => undefined), minPeriodMs: 50, startupSpreadMs: 0 });
    engine.load(states);
    assert.equal(engine.probeCount, 1);
    engine.start();
    await sleep(500);
    assert.ok(probes >= 2 && probes <= 4, `${probes} probes for two virtuals over 0.5 s at loopdelay 0.2`);
    assert.equal(states[0]!.reals[0]!.online, false);
    assert.equal(states[1]!.reals[0]!.online, false);
    assert.equal(states[0]!.reals[0]!.stats.checksFailed, states[1]!.reals[0]!.stats.checksFailed);
  });

  it('reports a virtual as tested once each of its reals has been evaluated', async () => {
    const tested: string[] = [];
    const v = makeVirtual({ name: 'v', tester: { loopdelay: 0.2, timeout: 0.5 }, reals: [{ name: 'x', addr: '127.0.0.1' }, { name: 'y', addr: '127.0.0.2' }] }, scriptedTester('t', () => ({ ok: true, detail: 'ok' })));
    const empty = makeVirtual({ name: 'empty', addr: '192.0.2.9', reals: [] });
    engine = new Engine({ log: createLogger('error', () => undefined), minPeriodMs: 50, startupSpreadMs: 100, hooks: { onVirtualTested: (vs) => tested.push(vs.config.name) } });
    engine.load(buildState([v, empty]));
    assert.deepEqual(tested, ['empty']);
    engine.start();
    await sleep(250);
    assert.deepEqual(tested, ['empty', 'v']);
  });

  it('a reload keeps the state of unchanged reals and drops removed ones', () => {
    const v1 = makeVirtual({ name: 'v', addr: '192.0.2.1', reals: [{ name: 'keep', addr: '127.0.0.1' }, { name: 'gone', addr: '127.0.0.2' }] });
    const old = buildState([v1]);
    old[0]!.reals[0]!.online = false;
    old[0]!.reals[0]!.failCount = 1;
    old[0]!.reals[0]!.rstate = 'OFFLINE';
    old[0]!.reals[0]!.override = { weight: 50, percent: true };
    const v2 = makeVirtual({ name: 'v-renamed', addr: '192.0.2.1', reals: [{ name: 'keep', addr: '127.0.0.1' }, { name: 'new', addr: '127.0.0.3' }] });
    const next = buildState([v2]);
    carryOverState(old, next);
    const keep = next[0]!.reals[0]!;
    assert.equal(keep.online, false);
    assert.equal(keep.failCount, 1);
    assert.equal(keep.rstate, 'OFFLINE');
    assert.deepEqual(keep.override, { weight: 50, percent: true });
    assert.equal(next[0]!.reals[1]!.online, true);
    assert.equal(next[0]!.reals[1]!.tested, false);
  });
});
