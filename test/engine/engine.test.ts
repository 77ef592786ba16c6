import { strict as assert } from 'node:assert';
import { Engine } from '../../surealived/engine/engine.js';
import { buildState, type RealState } from '../../surealived/engine/state.js';
import { carryOverState } from '../../surealived/engine/carry-over.js';
import { createLogger, memorySink } from '../../common/log.js';
import type { ProbeResult, Tester } from '../../testers/contract.js';
import { makeVirtual, scriptedTester } from '../helpers/model.js';
import { waitFor } from '../helpers/processes.js';
import { assertAtDeadline, LATE_MS } from '../helpers/timing.js';
import { PROBE_PATHS, useProbePath } from '../helpers/probe-paths.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { httpTester } from '../../testers/http.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('engine scheduling and verdicts (spec 4)', () => {
  let engine: Engine | null = null;
  afterEach(() => engine?.stop());

  it('probes each real every loopdelay seconds, independently of slower reals', async () => {
    // Order, not counts in a wall-clock second (issue 14: a busy machine runs timers late): the fast
    // real's next slot (200 ms) comes before the end of the slow real's 400 ms probe on any machine.
    const counts = new Map<string, number>();
    const events: string[] = [];
    const tester = scriptedTester('t', async (addr) => {
      counts.set(addr, (counts.get(addr) ?? 0) + 1);
      events.push(addr === '127.0.0.2' ? 'slow start' : 'fast start');
      if (addr === '127.0.0.2') {
        await sleep(400); // slow but within timeout
        events.push('slow end');
      }
      return { ok: true, detail: 'ok' };
    });
    const v = makeVirtual({ name: 'v', tester: { loopdelay: 0.2, timeout: 1 }, reals: [{ name: 'fast', addr: '127.0.0.1' }, { name: 'slow', addr: '127.0.0.2' }] }, tester);
    engine = new Engine({ log: createLogger('error', () => undefined), minPeriodMs: 50, startupSpreadMs: 50 });
    engine.load(buildState([v]));
    const t0 = performance.now();
    engine.start();
    assert.ok(await waitFor(() => (counts.get('127.0.0.2') ?? 0) >= 2, 20_000), 'the slow real is probed a second time');
    engine.stop();
    const elapsed = performance.now() - t0;
    const fast = counts.get('127.0.0.1') ?? 0;
    const slow = counts.get('127.0.0.2') ?? 0;
    const beforeSlowEnd = events.slice(0, events.indexOf('slow end')).filter((e) => e === 'fast start').length;
    assert.ok(beforeSlowEnd >= 2, `the fast real is probed again while the slow probe runs: ${events.join(', ')}`);
    // Never more often than the schedule allows in the time that passed: one slot per loopdelay
    // (fast), one per 400 ms probe (slow, which waits for its next slot after overrunning one).
    assert.ok(fast <= Math.floor(elapsed / 200) + 1, `fast real probed ${fast} times in ${elapsed.toFixed(0)} ms at loopdelay 0.2`);
    assert.ok(slow <= Math.floor(elapsed / 400) + 1, `slow real (400 ms probes) probed ${slow} times in ${elapsed.toFixed(0)} ms`);
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
    while (transitions.length === 0 && performance.now() - started < 300 + LATE_MS + 1000) await sleep(10);
    const took = performance.now() - started;
    assert.equal(transitions.length, 1);
    // Not before the 300 ms timeout; not much later either (a loaded event loop adds up to LATE_MS).
    assertAtDeadline(took, 300, 'the OFFLINE verdict');
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
    const t0 = performance.now();
    engine.start();
    assert.ok(await waitFor(() => probes >= 2, 20_000), 'probed twice');
    engine.stop();
    const elapsed = performance.now() - t0;
    // One probe per slot of 200 ms for the two virtuals together: one each would be twice that.
    assert.ok(probes <= Math.floor(elapsed / 200) + 1, `${probes} probes for two virtuals in ${elapsed.toFixed(0)} ms at loopdelay 0.2`);
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
    // Both reals are probed within the 100 ms start-up spread; on a busy machine, whenever that is.
    assert.ok(await waitFor(() => tested.length === 2, 20_000), `tested: ${tested.join(', ')}`);
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

describe('engine deadlines after a stalled event loop (real http probes to a server in another process)', () => {
  for (const path of PROBE_PATHS) {
    describe(`${path} probes`, () => {
      useProbePath(path);
      let engine: Engine | null = null;
      let server: ChildProcess | null = null;
      afterEach(async () => {
        engine?.stop();
        engine = null;
        if (server && server.exitCode === null && server.signalCode === null) {
          const gone = new Promise((r) => server!.once('exit', r));
          server.kill('SIGKILL');
          await gone;
        }
        server = null;
      });

      it('an answer that arrived while the loop was stalled past the deadline is judged by its content, not as a timeout', async () => {
        const timeoutMs = 300;
        // The server tells us (on its stdout) when the request is in, and answers 100 ms later. The
        // stdout line reaches us in an I/O callback that holds the loop for three timeouts (a GC pause,
        // a busy host): the answer comes in meanwhile, and when the loop runs again the deadline is
        // due before the poll phase that reads it.
        const code = `const s=require('http').createServer((q,r)=>{process.stdout.write('request\\n');setTimeout(()=>r.end('ok'),100)});s.listen(0,'127.0.0.1',()=>process.stdout.write('port '+s.address().port+'\\n'));`;
        const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
        server = child;
        let stalls = 0;
        const port = await new Promise<number>((resolve, reject) => {
          child.once('exit', () => reject(new Error('server exited')));
          child.stdout.setEncoding('utf8');
          child.stdout.on('data', (d: string) => {
            const m = /port (\d+)/.exec(d);
            if (m) resolve(Number(m[1]));
            if (d.includes('request') && stalls++ === 0) {
              const until = performance.now() + 3 * timeoutMs;
              while (performance.now() < until);
            }
          });
        });
        const compiled = httpTester.compile({ url: '/', host: 'test' }, { ssl: false, timeoutMs });
        const http: Tester = { name: 'http', attrs: [], compile: () => ({}), probe: (target, _p, ctx) => httpTester.probe(target, compiled, ctx) };
        const v = makeVirtual({ name: 'v', tester: { loopdelay: 60, timeout: timeoutMs / 1000, retries2fail: 1 }, reals: [{ name: 'a', addr: '127.0.0.1', testport: port }] }, http);
        const states = buildState([v]);
        engine = new Engine({ log: createLogger('error', () => undefined), startupSpreadMs: 0 });
        engine.load(states);
        engine.start();
        const r = states[0]!.reals[0]!;
        assert.ok(await waitFor(() => r.tested, 10_000), 'the probe got a verdict');
        assert.equal(stalls, 1, 'the loop was stalled once, by the request');
        assert.equal(r.stats.checksOk, 1, `judged: ${r.lastDetail}`);
        assert.equal(r.online, true);
      });
    });
  }
});
