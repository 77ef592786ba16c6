import { strict as assert } from 'node:assert';
import { Engine } from '../../surealived/engine/engine.js';
import { LocalErrorLog } from '../../surealived/engine/local-errors.js';
import { buildState, type RealState } from '../../surealived/engine/state.js';
import { createLogger, memorySink } from '../../common/log.js';
import { makeVirtual, scriptedTester } from '../helpers/model.js';
import { waitFor } from '../helpers/processes.js';

describe('probes that fail for a local reason (EMFILE, ENOBUFS, ...) are not verdicts', () => {
  let engine: Engine | null = null;
  afterEach(() => engine?.stop());

  it('an online real hit only by EMFILE stays online, its failures uncounted, and is probed again at its next slot', async () => {
    let probes = 0;
    const tester = scriptedTester('t', () => {
      probes++;
      return { ok: false, detail: 'cannot open a probe socket: EMFILE on the director', local: 'EMFILE' };
    });
    const { sink, lines } = memorySink();
    const transitions: RealState[] = [];
    const v = makeVirtual({ name: 'web', tester: { loopdelay: 0.1, timeout: 0.5, retries2fail: 1 }, reals: [{ name: 'a', addr: '127.0.0.1' }, { name: 'b', addr: '127.0.0.2' }] }, tester);
    const states = buildState([v]);
    engine = new Engine({ log: createLogger('info', sink), minPeriodMs: 50, startupSpreadMs: 0, hooks: { onTransition: (r) => transitions.push(r) } });
    engine.load(states);
    const t0 = performance.now();
    engine.start();
    assert.ok(await waitFor(() => probes >= 6, 20_000), `${probes} probes`);
    engine.stop();
    const elapsed = performance.now() - t0;
    assert.equal(transitions.length, 0);
    for (const r of states[0]!.reals) {
      assert.equal(r.online, true);
      assert.equal(r.failCount, 0);
      assert.equal(r.stats.checksFailed, 0);
    }
    assert.equal(engine.counters.failed, 0);
    // Retried on their schedule, not back to back: two reals, one slot each per 100 ms that passed.
    assert.ok(probes <= 2 * (Math.floor(elapsed / 100) + 1), `${probes} probes in ${elapsed.toFixed(0)} ms`);
    assert.equal(engine.counters.localErrors.get('EMFILE'), probes);
    const text = lines.join('');
    assert.equal(text.match(/probes cannot run: EMFILE/g)?.length, 1, text);
    assert.match(text, /error : probes cannot run: EMFILE on the director \(first: web:a 127\.0\.0\.1:80\)/);
    assert.match(text, new RegExp(`error : local probe errors ended: ${probes} probe\\(s\\) not judged over [\\d.]+ s \\(EMFILE ${probes}\\)`));
    assert.doesNotMatch(text, /changed its test state/);
  });

  it('an offline real stays offline through local errors, and real failures around them still count', async () => {
    let n = 0;
    // fail, fail, then local errors only
    const tester = scriptedTester('t', () => (++n <= 2 ? { ok: false, detail: 'connection refused', problem: 'rst' } : { ok: false, detail: 'x', local: 'ENOBUFS' }));
    const transitions: string[] = [];
    const v = makeVirtual({ name: 'web', tester: { loopdelay: 0.1, timeout: 0.5, retries2fail: 2, retries2ok: 1 }, reals: [{ name: 'a', addr: '127.0.0.1' }] }, tester);
    const states = buildState([v]);
    engine = new Engine({ log: createLogger('error', () => undefined), minPeriodMs: 50, startupSpreadMs: 0, hooks: { onTransition: (r) => transitions.push(r.online ? 'ONLINE' : 'OFFLINE') } });
    engine.load(states);
    engine.start();
    // Two failures, then two local errors at least.
    assert.ok(await waitFor(() => n >= 4, 20_000), `${n} probes`);
    engine.stop();
    assert.deepEqual(transitions, ['OFFLINE']);
    const r = states[0]!.reals[0]!;
    assert.equal(r.online, false);
    assert.equal(r.stats.checksFailed, 2);
    assert.equal(engine.counters.failed, 2);
    assert.ok((engine.counters.localErrors.get('ENOBUFS') ?? 0) >= 2);
  });
});

describe('local error log lines (one per burst, with counts)', () => {
  it('logs the start of a burst once, then its counts when it has been quiet for quietMs', () => {
    const log = new LocalErrorLog({ quietMs: 2000, repeatMs: 60_000 });
    assert.match(log.record('EMFILE', 0, 'v:r 10.0.0.1:80') ?? '', /^probes cannot run: EMFILE on the director \(first: v:r 10\.0\.0\.1:80\)/);
    for (let t = 1; t <= 999; t++) assert.equal(log.record(t % 3 === 0 ? 'ENOBUFS' : 'EMFILE', t, 'x'), undefined);
    assert.equal(log.poll(2000), undefined);
    assert.equal(log.poll(2999), 'local probe errors ended: 1000 probe(s) not judged over 1.0 s (EMFILE 667, ENOBUFS 333)');
    assert.equal(log.active, false);
    assert.match(log.record('EMFILE', 5000, 'y') ?? '', /^probes cannot run/);
  });

  it('a burst that does not end is summed up every repeatMs', () => {
    const log = new LocalErrorLog({ quietMs: 2000, repeatMs: 60_000 });
    for (let t = 0; t <= 61_000; t += 500) log.record('ENFILE', t, 'x');
    assert.equal(log.poll(61_000), 'local probe errors continue: 123 probe(s) not judged over 61.0 s so far (ENFILE 123)');
    assert.equal(log.poll(61_500), undefined);
  });
});
