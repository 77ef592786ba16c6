// The status page's JSON model and change tracker, pure: built from plain state with a scripted clock.

import { strict as assert } from 'node:assert';
import { buildState, type RealState, type VirtualState } from '../../surealived/engine/state.js';
import { LatenessHistogram } from '../../surealived/engine/lateness.js';
import { jsonForHtml, parseStatusQuery, realCondition, statusOverview, virtualPage, type RealStatus } from '../../surealived/status/model.js';
import { ChangeTracker } from '../../surealived/status/tracker.js';
import { statusPageHtml } from '../../surealived/status/page.js';
import { makeVirtual } from '../helpers/model.js';
import { applyFallbacks } from '../../surealived/engine/fallback.js';
import type { VirtualConfig } from '../../surealived/config/model.js';
import { createLogger } from '../../common/log.js';

function director(): VirtualState[] {
  return buildState([
    makeVirtual({
      name: 'web',
      addr: '192.0.2.10',
      tester: { loopdelay: 2, timeout: 1, retries2fail: 3 },
      reals: [
        { name: 'w1', addr: '10.0.1.1', weight: 10 },
        { name: 'w2', addr: '10.0.1.2', weight: 20 },
        { name: 'w3', addr: '10.0.1.3', weight: 30 },
        { name: 'w4', addr: '10.0.1.4', weight: 40 },
      ],
    }),
    makeVirtual({ name: 'dns', proto: 'udp', addr: '2001:db8::53', port: 53, reals: [{ name: 'd1', addr: '2001:db8::1', port: 53, weight: 5 }] }),
  ]);
}

const real = (vs: VirtualState[], v: number, r: number): RealState => vs[v]!.reals[r]!;

/** Probe results as the engine leaves them: tested, hysteresis counters, detail, counters. */
function probed(r: RealState, ok: boolean, detail: string, online = ok): void {
  r.tested = true;
  r.online = online;
  r.failCount = ok ? 0 : r.failCount + 1;
  r.okCount = ok ? 1 : 0;
  r.lastDetail = detail;
  r.stats.lastLatencyMs = 1.5;
  if (ok) r.stats.checksOk++;
  else r.stats.checksFailed++;
}

describe('status page model', () => {
  it('a real is pending before its first probe, down when its test fails, disabled when the operator took it out, up otherwise', () => {
    const vs = director();
    const [w1, w2, w3, w4] = vs[0]!.reals as [RealState, RealState, RealState, RealState];
    probed(w2, false, 'status 503, expected 200', false);
    probed(w3, true, 'status 200');
    w3.rstate = 'DOWN';
    probed(w4, true, 'status 200');
    assert.deepEqual([w1, w2, w3, w4].map(realCondition), ['pending', 'down', 'disabled', 'up']);
    // Failing while the operator has it OFFLINE still reads as down: the test result matters more.
    w2.rstate = 'OFFLINE';
    assert.equal(realCondition(w2), 'down');
  });

  it('a real shows its weights, override, last probe and detail, change and probe ages, and lateness', () => {
    const vs = director();
    let now = 1000;
    const tracker = new ChangeTracker(() => now);
    tracker.observe(vs);
    const w2 = real(vs, 0, 1);
    now = 1500;
    probed(w2, true, 'status 200');
    w2.override = { weight: 50, percent: true };
    tracker.observe(vs);
    now = 3000;
    probed(w2, false, 'status 503, expected 200', true);
    tracker.observe(vs);
    now = 4250;
    const page = virtualPage(vs, (r) => tracker.times(r), now, { virtual: 0, state: null, offset: 0, limit: 100 })!;
    const s = page.reals[1]!;
    const expected: RealStatus = {
      index: 1,
      name: 'w2',
      addr: '10.0.1.2',
      port: 80,
      state: 'up',
      online: true,
      fails: 1,
      rstate: 'ONLINE',
      override: { weight: 50, percent: true },
      weight: 10,
      configured_weight: 20,
      in_ipvs: true,
      last_probe: 'failed',
      detail: 'status 503, expected 200',
      latency_ms: 1.5,
      changed_s_ago: 2.75,
      probed_s_ago: 1.25,
      probe_late_s: 0,
    };
    assert.deepEqual(s, expected);
    // No result for longer than a period (2 s) plus the timeout (1 s): late by the excess.
    now = 3000 + 3000 + 1700;
    const late = virtualPage(vs, (r) => tracker.times(r), now, { virtual: 0, state: null, offset: 0, limit: 100 })!.reals[1]!;
    assert.equal(late.probe_late_s, 1.7);
    // Never probed since tracking began: lateness counts from then, and the ages are unknown.
    const w1 = virtualPage(vs, (r) => tracker.times(r), now, { virtual: 0, state: null, offset: 0, limit: 100 })!.reals[0]!;
    assert.equal(w1.last_probe, null);
    assert.equal(w1.changed_s_ago, null);
    assert.equal(w1.probed_s_ago, null);
    assert.equal(w1.probe_late_s, 6.7 - 3);
  });

  it('the tracker notes a change of test result, rstate or override, and keeps a real history across a reload', () => {
    const vs = director();
    let now = 0;
    const tracker = new ChangeTracker(() => now);
    tracker.observe(vs);
    const w1 = real(vs, 0, 0);
    now = 100;
    probed(w1, true, 'ok');
    tracker.observe(vs);
    assert.equal(tracker.times(w1).changedAt, 100, 'pending -> up');
    now = 200;
    probed(w1, true, 'ok');
    tracker.observe(vs);
    assert.equal(tracker.times(w1).changedAt, 100, 'a probe with the same outcome is no change');
    assert.equal(tracker.times(w1).probedAt, 200);
    now = 300;
    w1.override = { weight: 3, percent: false };
    tracker.observe(vs);
    assert.equal(tracker.times(w1).changedAt, 300);
    now = 400;
    w1.rstate = 'OFFLINE';
    tracker.observe(vs);
    assert.equal(tracker.times(w1).changedAt, 400);
    // A reload builds new state objects; the same real (same virtual, name, address, port) keeps its times.
    const reloaded = director();
    Object.assign(real(reloaded, 0, 0), { tested: true, online: true, rstate: 'OFFLINE', override: { weight: 3, percent: false } });
    real(reloaded, 0, 0).stats.checksOk = 2;
    now = 500;
    tracker.observe(reloaded);
    assert.deepEqual(tracker.times(real(reloaded, 0, 0)), { ...tracker.times(real(reloaded, 0, 0)), changedAt: 400, probedAt: 200 });
  });

  it('the overview counts reals by state per virtual and in total, lists the problems down first, and pages the virtuals', () => {
    const vs = director();
    const [w1, w2, w3, w4] = vs[0]!.reals as [RealState, RealState, RealState, RealState];
    probed(w1, true, 'ok');
    w1.rstate = 'DOWN';
    probed(w2, true, 'ok');
    probed(w3, false, 'connection refused', false);
    probed(w4, true, 'ok');
    const d1 = real(vs, 1, 0);
    probed(d1, true, 'ok');
    const h = new LatenessHistogram();
    for (const ms of [1, 2, 200, 3]) h.record(ms);
    const tracker = new ChangeTracker(() => 0);
    const o = statusOverview(vs, (r) => tracker.times(r), 5000, 0, { offset: 0, limit: 100 }, h);
    assert.equal(o.uptime_s, 5);
    assert.equal(o.reals_total, 5);
    assert.deepEqual(o.counts, { pending: 0, down: 1, disabled: 1, up: 3 });
    assert.deepEqual(
      o.problems.map((p) => [p.virtual_name, p.name, p.state, p.detail]),
      [
        ['web', 'w3', 'down', 'connection refused'],
        ['web', 'w1', 'disabled', 'ok'],
      ],
    );
    assert.deepEqual(o.lateness, { probes: 4, mean_s: 0.0515, over_100ms: 0.25 });
    const web = o.virtuals[0]!;
    assert.deepEqual([web.name, web.reals, web.counts, web.weight, web.configured_weight, web.detect_s], ['web', 4, { pending: 0, down: 1, disabled: 1, up: 2 }, 60, 100, 7]);
    assert.equal(o.virtuals[1]!.addr, '2001:db8::53');
    const second = statusOverview(vs, (r) => tracker.times(r), 5000, 0, { offset: 1, limit: 1 });
    assert.deepEqual(second.virtuals.map((v) => v.name), ['dns']);
    assert.equal(second.virtuals_total, 2);
    assert.equal(second.lateness, null);
  });

  it('a virtual in panic shows its reals at the weight IPVS has (not 0), and the sorry server when it is in service', () => {
    const web = makeVirtual({ name: 'web', addr: '192.0.2.10', reals: [{ name: 'a', addr: '10.0.1.1', weight: 10 }, { name: 'b', addr: '10.0.1.2', weight: 20 }] });
    const sorry = { name: 'sorry', addr: '10.0.9.9', family: 4 as const, port: 8080, weight: 1, uthresh: 0, lthresh: 0, rt: 'dr' as const, inhibit: false, source: { file: 'test.xml', line: 5 } };
    const vs = buildState([{ ...web, panic: 50, sorry } as VirtualConfig]);
    const v = vs[0]!;
    const [a, b] = v.reals as [RealState, RealState];
    const fx = { log: createLogger('error', () => undefined), queue: () => undefined, notifySorry: () => undefined };
    const summary = () => statusOverview(vs, () => ({ changedAt: null, probedAt: null, firstSeen: 0 }), 0, 0, { offset: 0, limit: 10 }).virtuals[0]!;
    // Both pass: no panic, sorry out.
    probed(a, true, 'ok');
    probed(b, true, 'ok');
    applyFallbacks(v, fx, false);
    assert.deepEqual([summary().panic, summary().sorry?.active, summary().weight], [false, false, 30]);
    // Both fail: below 50 % passing, panic keeps both in at their weights, so the sorry server stays out.
    probed(a, false, 'refused', false);
    probed(b, false, 'refused', false);
    applyFallbacks(v, fx, false);
    assert.deepEqual([summary().panic, summary().sorry?.active, summary().weight], [true, false, 30]);
    const rows = virtualPage(vs, () => ({ changedAt: null, probedAt: null, firstSeen: 0 }), 0, { virtual: 0, state: null, offset: 0, limit: 10 })!.reals;
    assert.deepEqual(rows.map((r) => [r.name, r.state, r.weight, r.in_ipvs]), [['a', 'down', 10, true], ['b', 'down', 20, true]]);
    // The operator takes both out: nothing eligible, no panic, and the sorry server is in service.
    a.rstate = 'OFFLINE';
    b.rstate = 'OFFLINE';
    applyFallbacks(v, fx, false);
    assert.deepEqual(summary().sorry, { name: 'sorry', addr: '10.0.9.9', port: 8080, weight: 1, active: true });
    assert.deepEqual([summary().panic, summary().weight], [false, 0]);
  });

  it('10,000 reals: the overview holds counts and at most 50 problems, a virtual page at most `limit` reals', () => {
    const reals = Array.from({ length: 10_000 }, (_, i) => ({ name: `r${i}`, addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
    const vs = buildState([makeVirtual({ name: 'big', reals })]);
    vs[0]!.reals.forEach((r, i) => probed(r, i % 10 !== 0, i % 10 !== 0 ? 'ok' : 'timeout', i % 10 !== 0));
    const tracker = new ChangeTracker(() => 0);
    tracker.observe(vs);
    const o = statusOverview(vs, (r) => tracker.times(r), 0, 0, { offset: 0, limit: 100 });
    assert.equal(o.problems_total, 1000);
    assert.equal(o.problems.length, 50);
    assert.ok(JSON.stringify(o).length < 40_000, `overview is ${JSON.stringify(o).length} bytes`);
    const downs = virtualPage(vs, (r) => tracker.times(r), 0, { virtual: 0, state: 'down', offset: 900, limit: 200 })!;
    assert.equal(downs.total, 1000);
    assert.deepEqual([downs.reals.length, downs.reals[0]!.name, downs.reals.at(-1)!.name], [100, 'r9000', 'r9990']);
    assert.equal(virtualPage(vs, (r) => tracker.times(r), 0, { virtual: 1, state: null, offset: 0, limit: 1 }), undefined);
  });

  it('query parameters: defaults, paging capped at 1000, a state filter, and errors that name the parameter', () => {
    const p = (s: string): unknown => parseStatusQuery(new URLSearchParams(s));
    assert.deepEqual(p(''), { kind: 'overview', offset: 0, limit: 100 });
    assert.deepEqual(p('offset=200&limit=5000'), { kind: 'overview', offset: 200, limit: 1000 });
    assert.deepEqual(p('virtual=3&state=down&limit=10'), { kind: 'virtual', virtual: 3, state: 'down', offset: 0, limit: 10 });
    assert.deepEqual(p('virtual=0&state='), { kind: 'virtual', virtual: 0, state: null, offset: 0, limit: 100 });
    assert.deepEqual(p('virtual=-1'), { error: 'virtual: expected a non-negative integer, got "-1"' });
    assert.deepEqual(p('virtual=1&state=broken'), { error: 'state: expected one of down, disabled, pending, up, got "broken"' });
    assert.deepEqual(p('limit=0'), { error: 'limit: must be at least 1' });
    assert.deepEqual(p('offset=1e3'), { error: 'offset: expected a non-negative integer, got "1e3"' });
  });

  it('names reach the page as data: the embedded JSON cannot close its script element, and parses back to the same names', () => {
    const evil = '</script><script>alert(1)</script>&amp;\u2028"\'';
    const vs = buildState([makeVirtual({ name: evil, reals: [{ name: `<img src=x onerror=alert(2)>`, addr: '10.0.0.1' }] })]);
    const tracker = new ChangeTracker(() => 0);
    const o = statusOverview(vs, (r) => tracker.times(r), 0, 0, { offset: 0, limit: 100 });
    const text = jsonForHtml(o);
    assert.doesNotMatch(text, /[<>&\u2028\u2029]/);
    assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(o)));
    const html = statusPageHtml(text);
    // The only script elements are ours: the data block and the page script.
    assert.equal(html.match(/<script/g)?.length, 2);
    assert.equal(html.match(/<\/script>/g)?.length, 2);
    assert.equal(JSON.parse(/<script type="application\/json" id="initial">(.*)<\/script>/.exec(html)![1]!).virtuals[0].name, evil);
  });
});
