import { strict as assert } from 'node:assert';
import { Engine, nextDue } from '../../surealived/engine/engine.js';
import { buildState } from '../../surealived/engine/state.js';
import { createLogger } from '../../common/log.js';
import type { ProbeContext, ProbeResult, Tester } from '../../testers/contract.js';
import { makeVirtual, scriptedTester } from '../helpers/model.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('engine schedule (fixed rate, shared deadlines)', () => {
  let engine: Engine | null = null;
  afterEach(() => engine?.stop());

  it('the next probe is due one period after the previous due time, whatever the lag', () => {
    assert.equal(nextDue(1000, 1040, 1041, 1000), 2000);
    // Late by less than a period: catch up at once (the due time is already past).
    assert.equal(nextDue(1000, 2100, 2101, 1000), 2000);
    // A probe that itself outlasted the period is followed at its end.
    assert.equal(nextDue(1000, 1000, 3000, 1000), 3000);
    // More than a period behind (a stall): skip the missed rounds, keep the phase.
    assert.equal(nextDue(1000, 4500, 4510, 1000), 5000);
  });

  it('a real is probed every loopdelay on average even when the event loop is late at every tick', async () => {
    let t = 0;
    let probes = 0;
    const tester = scriptedTester('t', () => {
      probes++;
      return { ok: true, detail: 'ok' };
    });
    const v = makeVirtual({ name: 'v', tester: { loopdelay: 1, timeout: 2 }, reals: [{ name: 'r', addr: '127.0.0.1' }] }, tester);
    engine = new Engine({ log: createLogger('error', () => undefined), now: () => t, startupSpreadMs: 0 });
    engine.load(buildState([v]));
    engine.start();
    // The wheel is advanced only every 70 ms (a busy event loop), over 100 simulated seconds.
    while (t < 100_000) {
      t += 70;
      engine.tick();
      await settle();
    }
    assert.ok(probes >= 100 && probes <= 101, `${probes} probes in 100 s at loopdelay 1`);
  });

  it('probes that start in one tick share a signal; one that overruns is judged failed at the deadline', async () => {
    let t = 0;
    const signals: AbortSignal[] = [];
    const hangs = new Set(['127.0.0.2']);
    const tester: Tester = {
      name: 't',
      attrs: [],
      compile: () => ({}),
      probe: (target, _p, ctx: ProbeContext) => {
        signals.push(ctx.signal);
        if (!hangs.has(target.addr)) return Promise.resolve({ ok: true, detail: 'ok' });
        return new Promise<ProbeResult>(() => undefined);
      },
    };
    const v = makeVirtual({ name: 'v', tester: { loopdelay: 1, timeout: 0.5, retries2fail: 1 }, reals: [{ name: 'a', addr: '127.0.0.1' }, { name: 'b', addr: '127.0.0.2' }] }, tester);
    const states = buildState([v]);
    engine = new Engine({ log: createLogger('error', () => undefined), now: () => t, startupSpreadMs: 0 });
    engine.load(states);
    engine.start();
    t = 10;
    engine.tick();
    await settle();
    assert.equal(signals.length, 2);
    assert.equal(signals[0], signals[1]);
    assert.equal(states[0]!.reals[0]!.stats.checksOk, 1);
    t = 490;
    engine.tick();
    assert.equal(signals[0]!.aborted, false);
    assert.equal(states[0]!.reals[1]!.online, true);
    t = 520;
    engine.tick();
    assert.equal(signals[0]!.aborted, true);
    assert.equal(states[0]!.reals[1]!.online, false);
    assert.match(states[0]!.reals[1]!.lastDetail, /no verdict within 0.5s/);
    assert.equal(states[0]!.reals[0]!.online, true);
  });
});
