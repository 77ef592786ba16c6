// The Prometheus exposition: served by the `metrics` command and by GET /metrics; every line parses as
// `# HELP`, `# TYPE` or `name{labels} value`, labels are escaped, and the per-real figures are right.

import { strict as assert } from 'node:assert';
import { ControlServer } from '../../surealived/control/server.js';
import { formatMetrics, streamMetrics } from '../../surealived/control/metrics.js';
import { Client, END, TestTarget, real, sampleConfig, virtual } from './helpers.js';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** A strict reader of the text format 0.0.4: throws on any line it does not understand. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string>; helps: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  for (const line of text.slice(0, -1).split('\n')) {
    let m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    if (m) {
      helps.set(m[1]!, m[2]!);
      continue;
    }
    m = new RegExp(`^# TYPE (${NAME}) (gauge|counter)$`).exec(line);
    if (m) {
      assert.ok(!types.has(m[1]!), `one TYPE per family: ${m[1]}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`).exec(line);
    assert.ok(m, `unparsable line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
    let at = 0;
    while (at < body.length) {
      re.lastIndex = at;
      const l = re.exec(body);
      assert.ok(l, `bad labels at ${at}: ${body}`);
      labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      at = re.lastIndex;
    }
    const value = Number(m[3]);
    assert.ok(!Number.isNaN(value) || m[3] === 'NaN', `bad value ${m[3]}`);
    assert.ok(types.has(m[1]!) && helps.has(m[1]!), `sample ${m[1]} after its HELP and TYPE`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types, helps };
}

const find = (samples: Sample[], name: string, labels: Record<string, string>): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

describe('control port: Prometheus metrics', () => {
  let target: TestTarget;
  let server: ControlServer;

  beforeEach(async () => {
    target = new TestTarget([
      ...sampleConfig(),
      virtual('we"ird\\name', 'tcp', '10.0.0.50', 80, { reals: [real('r"1\\', '10.0.5.1', 80, 4)] }),
    ]);
    server = await ControlServer.start({ target, port: 0, metricsHttp: { port: 0 } });
  });

  afterEach(() => server.close());

  it('the metrics command ends with the end marker and every line parses as name{labels} value', async () => {
    const web1 = target.real(0, 0);
    web1.override = { weight: 50, percent: true };
    Object.assign(web1.stats, { lastLatencyMs: 12.5, checksOk: 7, checksFailed: 2 });
    target.real(0, 1).online = false;
    target.real(2, 0).rstate = 'DOWN';
    Object.assign(target.counters, { success: 9, failed: 2, bytesSent: 100 });

    const c = await Client.open(server.tcpAddress.port);
    const text = await c.ask('metrics');
    c.close();
    assert.ok(text.endsWith(`\n${END}`));
    const { samples, types } = parseExposition(text.slice(0, -END.length));

    const w1 = { virtual: 'web', vproto: 'tcp', vaddr: '10.0.0.1', vport: '80', vfwmark: '0', real: 'web1', raddr: '10.0.1.1', rport: '80' };
    const w2 = { virtual: 'web', real: 'web2' };
    assert.equal(find(samples, 'surealived_virtuals', {}), 6);
    assert.equal(find(samples, 'surealived_reals', {}), 6);
    assert.equal(find(samples, 'surealived_real_online', w1), 1);
    assert.equal(find(samples, 'surealived_real_online', w2), 0);
    assert.equal(find(samples, 'surealived_real_weight', w1), 10, '50 % of 20');
    assert.equal(find(samples, 'surealived_real_weight', w2), 0);
    assert.equal(find(samples, 'surealived_real_configured_weight', w2), 10);
    assert.equal(find(samples, 'surealived_real_rstate', { ...w1, rstate: 'ONLINE' }), 1);
    assert.equal(find(samples, 'surealived_real_rstate', { ...w1, rstate: 'DOWN' }), 0);
    assert.equal(find(samples, 'surealived_real_rstate', { real: 'fw1', rstate: 'DOWN' }), 1);
    assert.equal(find(samples, 'surealived_real_in_ipvs', { real: 'fw1' }), 0);
    assert.equal(find(samples, 'surealived_real_probe_latency_seconds', w1), 0.0125);
    assert.equal(find(samples, 'surealived_real_checks_total', { ...w1, result: 'ok' }), 7);
    assert.equal(find(samples, 'surealived_real_checks_total', { ...w1, result: 'failed' }), 2);
    assert.equal(find(samples, 'surealived_tests_total', { result: 'success' }), 9);
    assert.equal(find(samples, 'surealived_probe_bytes_total', { direction: 'sent' }), 100);
    assert.equal(find(samples, 'surealived_real_weight', { vaddr: '2001:db8::10', raddr: '2001:db8::1' }), 3);
    assert.equal(types.get('surealived_real_checks_total'), 'counter');
    assert.equal(types.get('surealived_real_weight'), 'gauge');
  });

  it('escapes quotes and backslashes in label values', async () => {
    const c = await Client.open(server.tcpAddress.port);
    const text = await c.ask('metrics');
    c.close();
    assert.ok(text.includes('virtual="we\\"ird\\\\name"'), 'raw text escaped');
    const { samples } = parseExposition(text.slice(0, -END.length));
    assert.equal(find(samples, 'surealived_real_configured_weight', { virtual: 'we"ird\\name', real: 'r"1\\' }), 4);
  });

  it('serves the same exposition over HTTP at GET /metrics (and the status page at /), nothing else', async () => {
    const base = `http://127.0.0.1:${server.httpAddress!.port}`;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const body = await res.text();
    const { samples } = parseExposition(body);
    assert.equal(find(samples, 'surealived_real_weight', { real: 'web1' }), 20);
    const c = await Client.open(server.tcpAddress.port);
    assert.equal(await c.ask('metrics'), body + END, 'same text as the metrics command');
    c.close();
    assert.equal((await fetch(`${base}/other`)).status, 404);
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal((await fetch(`${base}/status.json`, { method: 'POST', body: 'x' })).status, 405);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status, 405);
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
  });

  it('builds the exposition of 10,000 reals a slice at a time, giving the event loop turns in between', async () => {
    const big = new TestTarget(
      Array.from({ length: 100 }, (_, v) =>
        virtual(`v${v}`, 'tcp', `10.2.${v}.1`, 80, { sched: 'wrr', rt: 'dr', reals: Array.from({ length: 100 }, (_, i) => real(`r${i}`, `10.3.${v}.${i + 1}`, 80, 1)) }),
      ),
    );
    let turns = 0;
    let stop = false;
    const spin = (): void => {
      turns++;
      if (!stop) setImmediate(spin);
    };
    setImmediate(spin);
    const chunks: string[] = [];
    await streamMetrics(big.virtuals, big.counters, undefined, (c) => chunks.push(c));
    stop = true;
    assert.ok(turns > 1, `the event loop turned ${turns} times while 10,000 reals were rendered`);
    const text = chunks.join('');
    assert.equal(text, formatMetrics(big.virtuals, big.counters), 'same text as built at once');
    assert.equal(text.split('\nsurealived_real_online{').length - 1, 10_000, 'one online series per real');
  });
});
