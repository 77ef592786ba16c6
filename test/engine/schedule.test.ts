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
    // Due times stay on the real's grid (1000 + k x 1000); they used to be re-timed from the probe's end
    // when it outlasted the period (3020 for the second case below): every probe ending in one late
    // wheel advance then shared one phase, and reals came back from an outage all at once.
    // A failed probe that outlasted the period (a timeout) and ended just after one of its slots is
    // followed at once, on that slot; one that ended well after a slot (its deadline was handled late)
    // waits for the next.
    assert.equal(nextDue(1000, 1000, 3000, 1000, true), 3000);
    assert.equal(nextDue(1000, 1000, 3020, 1000, true), 3000);
    assert.equal(nextDue(1000, 1000, 2500, 1000, true), 3000);
    assert.equal(nextDue(1000, 1000, 3300, 1000, true), 4000);
    // A slow success waits for its next slot: no second probe right behind it.
    assert.equal(nextDue(1000, 1000, 2500, 1000), 3000);
    assert.equal(nextDue(1000, 1000, 3020, 1000), 4000);
    // More than a period behind (a stall): skip the missed rounds, keep the phase.
    assert.equal(nextDue(1000, 4500, 4510, 1000), 5000);
  });

  it('reals that timed out through a stall are probed at their own phases again once they answer', async () => {
    let t = 0;
    let silent = false;
    const starts: number[] = [];
    const tester: Tester = {
      name: 't',
      attrs: [],
      compile: () => ({}),
      probe: () => {
        starts.push(t);
        return silent ? new Promise<ProbeResult>(() => undefined) : Promise.resolve({ ok: true, detail: 'ok' });
      },
    };
    const reals = Array.from({ length: 100 }, (_, i) => ({ name: `r${i}`, addr: `127.0.1.${i + 1}` }));
    const v = makeVirtual({ name: 'v', tester: { loopdelay: 1, timeout: 2, retries2fail: 2 }, reals }, tester);
    engine = new Engine({ log: createLogger('error', () => undefined), now: () => t, startupSpreadMs: 1000 });
    engine.load(buildState([v]));
    engine.start();
    const run = async (until: number): Promise<void> => {
      while (t < until) {
        t += 10;
        engine!.tick();
        await settle();
      }
    };
    await run(3000);
    silent = true;
    await run(5000);
    // The event loop is blocked for 600 ms while every real times out: the deadlines of 60 wheel
    // ticks are handled in one advance.
    t += 600;
    engine.tick();
    await settle();
    await run(9000);
    silent = false;
    await run(12_000);
    // Spread as at start-up: 100 reals over 1 s, at most a few per 10 ms tick (not 60 in one).
    const perTick = new Map<number, number>();
    for (const s of starts.filter((x) => x >= 11_000 && x < 12_000)) perTick.set(s, (perTick.get(s) ?? 0) + 1);
    assert.equal([...perTick.values()].reduce((a, b) => a + b, 0), 100);
    assert.ok(Math.max(...perTick.values()) <= 3, `${Math.max(...perTick.values())} probes started in one tick`);
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

  it('a tester with start() runs there instead of probe(); the deadline verdict stands over what it reports as it lets go', async () => {
    let t = 0;
    let promised = 0;
    const tester: Tester = {
      name: 't',
      attrs: [],
      compile: () => ({}),
      probe: () => {
        promised++;
        return Promise.resolve({ ok: true, detail: 'ok' });
      },
      start: (target, _p, ctx, done) => {
        // 127.0.0.1 cannot start (reported before start() returns); 127.0.0.2 hangs and, at the
        // deadline, reports its own detail synchronously from the abort.
        if (target.addr === '127.0.0.1') return done({ ok: false, detail: 'refused at once', problem: 'rst' });
        ctx.signal.addEventListener('abort', () => done({ ok: false, detail: 'tester detail' }), { once: true });
      },
    };
    const v = makeVirtual({ name: 'v', tester: { loopdelay: 1, timeout: 0.5, retries2fail: 1 }, reals: [{ name: 'a', addr: '127.0.0.1' }, { name: 'b', addr: '127.0.0.2' }] }, tester);
    const states = buildState([v]);
    engine = new Engine({ log: createLogger('error', () => undefined), now: () => t, startupSpreadMs: 0 });
    engine.load(states);
    engine.start();
    t = 10;
    engine.tick();
    assert.equal(states[0]!.reals[0]!.lastDetail, '', 'judged after startProbe, not inside it');
    await settle();
    assert.equal(states[0]!.reals[0]!.lastDetail, 'refused at once');
    assert.equal(states[0]!.reals[0]!.online, false);
    t = 520;
    engine.tick();
    // Deadlines are judged in the check phase, after the poll phase has read what already arrived.
    assert.equal(states[0]!.reals[1]!.online, true, 'not judged inside the timer');
    await settle();
    assert.equal(states[0]!.reals[1]!.online, false);
    assert.match(states[0]!.reals[1]!.lastDetail, /no verdict within 0.5s/);
    assert.equal(promised, 0);
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
    assert.equal(signals[0]!.aborted, false, 'the deadline is judged in the check phase, not inside the timer');
    await settle();
    assert.equal(signals[0]!.aborted, true);
    assert.equal(states[0]!.reals[1]!.online, false);
    assert.match(states[0]!.reals[1]!.lastDetail, /no verdict within 0.5s/);
    assert.equal(states[0]!.reals[0]!.online, true);
  });
});
