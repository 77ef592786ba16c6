import { strict as assert } from 'node:assert';
import { Engine } from '../../surealived/engine/engine.js';
import { descriptorBudget, MIN_PROBE_DESCRIPTORS, parseNofileLimit, RESERVE_TOTAL } from '../../surealived/engine/descriptor-budget.js';
import { buildState } from '../../surealived/engine/state.js';
import { createLogger } from '../../common/log.js';
import type { ProbeResult, Tester } from '../../testers/contract.js';
import { makeVirtual } from '../helpers/model.js';
import { waitFor } from '../helpers/processes.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            4096                 8192                 files
Max locked memory         8388608              8388608              bytes
`;

describe('descriptor budget arithmetic', () => {
  it('reads the soft and hard RLIMIT_NOFILE from /proc/<pid>/limits', () => {
    assert.deepEqual(parseNofileLimit(LIMITS), { soft: 4096, hard: 8192 });
    assert.deepEqual(parseNofileLimit('Max open files            unlimited            unlimited            files\n'), { soft: Infinity, hard: Infinity });
    assert.equal(parseNofileLimit('Max cpu time unlimited unlimited seconds\n'), undefined);
  });

  it('probes get the soft limit minus what was open at start and the fixed reserve', () => {
    const b = descriptorBudget({ soft: 4096, openAtStart: 30 });
    assert.equal(b.limit, 4096);
    assert.equal(b.reserve, 30 + RESERVE_TOTAL);
    assert.equal(b.probes, 4096 - 30 - RESERVE_TOTAL);
    assert.deepEqual(b.warnings, []);
  });

  it('maxfd set in surealived.cfg lowers the limit; above the soft limit it is refused with a warning', () => {
    assert.equal(descriptorBudget({ soft: 4096, maxfd: 1024, openAtStart: 20 }).probes, 1024 - 20 - RESERVE_TOTAL);
    const high = descriptorBudget({ soft: 512, maxfd: 2048, openAtStart: 20 });
    assert.equal(high.limit, 512);
    assert.match(high.warnings[0]!, /maxfd 2048 is above the descriptor limit 512 \(ulimit -n\): using 512/);
  });

  it('a limit below the reserve still leaves a few descriptors to probes, with a warning', () => {
    const b = descriptorBudget({ soft: 64, openAtStart: 40 });
    assert.equal(b.probes, MIN_PROBE_DESCRIPTORS);
    assert.match(b.warnings[0]!, /descriptor limit 64 leaves 0 descriptors for probes/);
  });

  it('an unlimited soft limit gives an unlimited budget', () => {
    assert.equal(descriptorBudget({ soft: Infinity, openAtStart: 10 }).probes, Infinity);
  });
});

describe('engine: probes beyond the descriptor budget wait in order and are never judged while waiting', () => {
  let engine: Engine | null = null;
  afterEach(() => engine?.stop());

  it('never holds more than the budget, and waiting longer than the timeout does not fail a real', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const order: string[] = [];
    // Each probe takes 120 ms; 12 reals at 2 descriptors each under a budget of 6: three at a time,
    // so a round takes ~480 ms, longer than the 300 ms timeout.
    const tester: Tester = {
      name: 'slow',
      attrs: [],
      descriptorsPerProbe: 2,
      compile: () => ({}),
      probe: async (t): Promise<ProbeResult> => {
        order.push(t.addr);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await sleep(120);
        inFlight--;
        return { ok: true, detail: 'ok' };
      },
    };
    const reals = Array.from({ length: 12 }, (_, i) => ({ name: `r${i}`, addr: `127.0.0.${i + 1}` }));
    const v = makeVirtual({ name: 'v', tester: { loopdelay: 0.2, timeout: 0.3, retries2fail: 1 }, reals }, tester);
    const states = buildState([v]);
    engine = new Engine({ log: createLogger('error', () => undefined), minPeriodMs: 50, startupSpreadMs: 0, descriptorBudget: 6 });
    engine.load(states);
    engine.start();
    await sleep(200);
    assert.ok(engine.probeLoad.waiting > 0, 'some probes wait');
    assert.ok(engine.probeLoad.descriptorsInUse <= 6);
    // The round of 12 takes four 120 ms waits at least, longer on a busy machine: wait for it.
    assert.ok(await waitFor(() => states[0]!.reals.every((r) => r.stats.checksOk >= 1), 20_000), 'every real probed');
    engine.stop();
    assert.equal(maxInFlight, 3);
    for (const r of states[0]!.reals) {
      assert.equal(r.online, true, `${r.config.name} stays online`);
      assert.ok(r.stats.checksOk >= 1, `${r.config.name} probed`);
    }
    assert.equal(engine.counters.failed, 0);
    // Started in the order they became due: the first round in XML order.
    assert.deepEqual(order.slice(0, 12), reals.map((r) => r.addr));
    // Their wait shows as start lateness.
    assert.ok(engine.lateness.sumSeconds > 0.2, `lateness sum ${engine.lateness.sumSeconds}`);
  });

  it('a larger budget set at run time (SIGHUP) starts the waiting probes at once', async () => {
    let started = 0;
    const tester: Tester = { name: 'hold', attrs: [], compile: () => ({}), probe: () => (started++, new Promise<ProbeResult>((r) => setTimeout(() => r({ ok: true, detail: 'ok' }), 200))) };
    const reals = Array.from({ length: 10 }, (_, i) => ({ name: `r${i}`, addr: `127.0.1.${i + 1}` }));
    engine = new Engine({ log: createLogger('error', () => undefined), minPeriodMs: 50, startupSpreadMs: 0, descriptorBudget: 2 });
    engine.load(buildState([makeVirtual({ name: 'v', tester: { loopdelay: 1, timeout: 1 }, reals }, tester)]));
    engine.start();
    await sleep(60);
    assert.equal(started, 2);
    assert.equal(engine.probeLoad.waiting, 8);
    engine.setDescriptorBudget(100);
    assert.equal(started, 10);
    assert.deepEqual(engine.probeLoad, { descriptorBudget: 100, descriptorsInUse: 10, waiting: 0 });
  });
});
