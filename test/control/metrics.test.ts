// The Prometheus exposition of a running daemon: served by the `metrics` command and by GET /metrics;
// pinned once against text written out by hand; every line parses as `# HELP`, `# TYPE` or
// `name{labels} value`, labels are escaped, and the per-real figures are those of the real probes.

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { formatMetrics } from '../../surealived/control/metrics.js';
import { TestDaemon, type TestDaemonOptions } from '../helpers/daemon.js';
import { refusedPort } from '../helpers/servers.js';
import { Client, END, RealServers, SAMPLE, ipv6Loopback, type VirtualDef, type XmlOptions } from './helpers.js';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

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
    m = new RegExp(`^# TYPE (${NAME}) (gauge|counter|histogram)$`).exec(line);
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
    // A histogram's samples are <family>_bucket{le=...}, <family>_sum and <family>_count.
    const suffix = HISTOGRAM_SUFFIXES.find((s) => m![1]!.endsWith(s) && types.get(m![1]!.slice(0, -s.length)) === 'histogram');
    const family = types.has(m[1]!) ? m[1]! : suffix !== undefined ? m[1]!.slice(0, -suffix.length) : m[1]!;
    assert.ok(types.has(family) && helps.has(family), `sample ${m[1]} after its HELP and TYPE`);
    if (suffix === '_bucket') assert.ok('le' in labels, `${m[1]} has an le label`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types, helps };
}

const find = (samples: Sample[], name: string, labels: Record<string, string>): number | undefined =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

/** A virtual whose names need escaping in label values. */
const WEIRD: VirtualDef = { name: 'we"ird\\name', proto: 'tcp', addr: '127.0.0.50', port: 80, sched: 'wlc', rt: 'dr', tester: 'tcp', reals: [{ name: 'r"1\\', addr: '127.0.5.1', port: 80, weight: 4 }] };

/** 100 virtuals of 100 reals: 10,000 reals, probed through 100 servers (a real shared by virtuals is probed once). */
const BIG: VirtualDef[] = Array.from({ length: 100 }, (_, v) => ({
  name: `v${v}`,
  proto: 'tcp' as const,
  addr: `127.2.${v}.1`,
  port: 80,
  sched: 'wrr',
  rt: 'dr' as const,
  tester: 'tcp' as const,
  reals: Array.from({ length: 100 }, (_, i) => ({ name: `r${i}`, addr: `127.3.0.${i + 1}`, port: 80, weight: 1 })),
}));

type LastMs = { conn: number; resp: number; total: number };

/** last_ms of every real, by real name, from connstats json (the same probes the metrics report). */
async function lastProbes(c: Client): Promise<Map<string, LastMs>> {
  const j = JSON.parse((await c.ask('connstats json')).split('\n')[0]!) as { virtuals: Array<{ reals: Array<{ rname: string; last_ms: LastMs }> }> };
  return new Map(j.virtuals.flatMap((v) => v.reals.map((r) => [r.rname, r.last_ms] as const)));
}

describe('control port of a running daemon: Prometheus metrics', function () {
  this.timeout(60_000);
  let servers: RealServers | undefined;
  let big: RealServers | undefined;
  const daemons: TestDaemon[] = [];
  const clients: Client[] = [];

  before(async function () {
    // The sample has an IPv6 virtual whose real is probed on ::1.
    if (!(await ipv6Loopback())) this.skip();
    servers = await RealServers.start([...SAMPLE, WEIRD]);
  });
  after(async () => {
    await servers?.close();
    await big?.close();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const d of daemons.splice(0)) await d.stop();
  });

  async function start(o: XmlOptions & Partial<TestDaemonOptions> & { from?: RealServers } = {}): Promise<{ d: TestDaemon; c: Client }> {
    const d = await TestDaemon.start({ ...o, xml: o.xml ?? (await (o.from ?? servers!).xml(o)) });
    daemons.push(d);
    await d.waitAllTested(30_000);
    const c = await Client.open(d.port);
    clients.push(c);
    return { d, c };
  }

  it('the metrics command ends with the end marker and every line parses as name{labels} value', async () => {
    const { c } = await start({ down: ['web2'] });
    assert.equal(await c.ask('rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.1 rport=80 rweight=50%'), `Set: rstate=ONLINE, weight=50, inpercent=TRUE\n${END}`);
    assert.equal(await c.ask('rset vproto=fwmark vfwmark=7 raddr=127.0.3.1 rport=0 rstate=DOWN'), `Set: rstate=DOWN, weight=1, inpercent=FALSE\n${END}`);
    const last = await lastProbes(c);
    const text = await c.ask('metrics');
    assert.ok(text.endsWith(`\n${END}`));
    const { samples, types } = parseExposition(text.slice(0, -END.length));

    const w1 = { virtual: 'web', vproto: 'tcp', vaddr: '127.0.0.10', vport: '80', vfwmark: '0', real: 'web1', raddr: '127.0.1.1', rport: '80' };
    const w2 = { virtual: 'web', real: 'web2' };
    assert.equal(find(samples, 'surealived_virtuals', {}), 6);
    assert.equal(find(samples, 'surealived_reals', {}), 6);
    assert.equal(find(samples, 'surealived_real_online', w1), 1);
    assert.equal(find(samples, 'surealived_real_online', w2), 0, 'its probe was refused');
    assert.equal(find(samples, 'surealived_real_weight', w1), 10, '50 % of 20');
    assert.equal(find(samples, 'surealived_real_weight', w2), 0);
    assert.equal(find(samples, 'surealived_real_configured_weight', w2), 10);
    assert.equal(find(samples, 'surealived_real_rstate', { ...w1, rstate: 'ONLINE' }), 1);
    assert.equal(find(samples, 'surealived_real_rstate', { ...w1, rstate: 'DOWN' }), 0);
    assert.equal(find(samples, 'surealived_real_rstate', { real: 'fw1', rstate: 'DOWN' }), 1);
    assert.equal(find(samples, 'surealived_real_in_ipvs', { real: 'fw1' }), 0);
    for (const r of ['web1', 'web2', 'ns1']) {
      const latency = find(samples, 'surealived_real_probe_latency_seconds', { real: r });
      assert.equal(latency, last.get(r)!.total / 1000, `${r}: the duration of its probe, as connstats json has it`);
      assert.ok(latency! > 0 && latency! < 2, `${r}: ${latency} s, within the 2 s probe timeout`);
    }
    // One probe per real: web2's was refused (an RST problem), the five others answered.
    assert.equal(find(samples, 'surealived_real_checks_total', { ...w1, result: 'ok' }), 1);
    assert.equal(find(samples, 'surealived_real_checks_total', { ...w1, result: 'failed' }), 0);
    assert.equal(find(samples, 'surealived_real_checks_total', { ...w2, result: 'failed' }), 1);
    assert.equal(find(samples, 'surealived_tests_total', { result: 'success' }), 5);
    assert.equal(find(samples, 'surealived_tests_total', { result: 'failed' }), 1);
    assert.equal(find(samples, 'surealived_state_changes_total', { state: 'offline' }), 1);
    assert.equal(find(samples, 'surealived_probe_problems_total', { problem: 'rst' }), 1);
    assert.equal(find(samples, 'surealived_probe_bytes_total', { direction: 'sent' }), 0, 'tcp and dns probes count no payload');
    assert.equal(find(samples, 'surealived_real_weight', { vaddr: '::1', raddr: '::1' }), 3);
    assert.equal(find(samples, 'surealived_probe_start_lateness_seconds_count', {}), 6, 'six probes started');
    assert.equal(types.get('surealived_real_checks_total'), 'counter');
    assert.equal(types.get('surealived_real_weight'), 'gauge');
    assert.equal(types.get('surealived_probe_start_lateness_seconds'), 'histogram');
  });

  it('escapes quotes and backslashes in label values', async () => {
    const { c } = await start();
    const text = await c.ask('metrics');
    assert.ok(text.includes('virtual="we\\"ird\\\\name"'), 'raw text escaped');
    assert.ok(text.includes('real="r\\"1\\\\"'), 'raw text escaped');
    const { samples } = parseExposition(text.slice(0, -END.length));
    assert.equal(find(samples, 'surealived_real_configured_weight', { virtual: 'we"ird\\name', real: 'r"1\\' }), 4);
    assert.equal(find(samples, 'surealived_real_online', { virtual: 'we"ird\\name', real: 'r"1\\' }), 1, 'probed at its server');
  });

  it('serves the same exposition over HTTP at GET /metrics (and the status page at /), nothing else', async () => {
    const httpPort = await refusedPort(); // free a moment ago: metrics_listen_port 0 means "no listener"
    const { c } = await start({ main: { metrics_listen_port: String(httpPort) } });
    // The lateness max is "since the previous scrape": a first scrape makes the next two alike.
    await c.ask('metrics');
    const base = `http://127.0.0.1:${httpPort}`;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const body = await res.text();
    const { samples } = parseExposition(body);
    assert.equal(find(samples, 'surealived_real_weight', { real: 'web1' }), 20);
    assert.equal(await c.ask('metrics'), body + END, 'same text as the metrics command');
    assert.equal((await fetch(`${base}/other`)).status, 404);
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    await page.text();
    assert.equal((await fetch(`${base}/status.json`, { method: 'POST', body: 'x' })).status, 405);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status, 405);
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
  });

  it('pinned: the whole exposition of a small daemon, as written out by hand', async () => {
    const { c } = await start({ xml: await servers!.xml({ down: ['web2'] }).then((x) => onlyWeb(x)) });
    assert.equal(await c.ask('rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.1 rport=80 rweight=50%'), `Set: rstate=ONLINE, weight=50, inpercent=TRUE\n${END}`);
    const last = await lastProbes(c);
    const V = 'virtual="web",vproto="tcp",vaddr="127.0.0.10",vport="80",vfwmark="0"';
    const L1 = `${V},real="web1",raddr="127.0.1.1",rport="80"`;
    const L2 = `${V},real="web2",raddr="127.0.1.2",rport="8080"`;
    // web1 answers (weight 50 % of 20), web2 is refused (offline, weight 0): no panic threshold set,
    // two reals left ONLINE by the operator, one passing and serving; no sorry server.
    // Values in {braces} depend on timing or on the machine; each is checked below.
    const expected = [
      '# HELP surealived_virtuals Virtuals in the service configuration.',
      '# TYPE surealived_virtuals gauge',
      'surealived_virtuals 1',
      '# HELP surealived_reals Reals in the service configuration.',
      '# TYPE surealived_reals gauge',
      'surealived_reals 2',
      '# HELP surealived_virtual_panic Whether the virtual is in panic mode (1): too few reals pass their tests, verdicts disregarded, every real kept in IPVS.',
      '# TYPE surealived_virtual_panic gauge',
      `surealived_virtual_panic{${V}} 0`,
      '# HELP surealived_virtual_panic_threshold_percent Panic threshold of the virtual: panic while fewer than this percentage of its ONLINE reals pass (virtuals with one set).',
      '# TYPE surealived_virtual_panic_threshold_percent gauge',
      '# HELP surealived_virtual_reals_passing Reals of the virtual left ONLINE by the operator that pass their tests (the panic share is taken over surealived_virtual_reals_eligible).',
      '# TYPE surealived_virtual_reals_passing gauge',
      `surealived_virtual_reals_passing{${V}} 1`,
      '# HELP surealived_virtual_reals_eligible Reals of the virtual left ONLINE by the operator.',
      '# TYPE surealived_virtual_reals_eligible gauge',
      `surealived_virtual_reals_eligible{${V}} 2`,
      '# HELP surealived_virtual_reals_serving Reals of the virtual with a non-zero IPVS weight (panic applied); 0 brings the sorry server in.',
      '# TYPE surealived_virtual_reals_serving gauge',
      `surealived_virtual_reals_serving{${V}} 1`,
      '# HELP surealived_virtual_sorry_active Whether the sorry server of the virtual is in service (1) (virtuals with one configured).',
      '# TYPE surealived_virtual_sorry_active gauge',
      '# HELP surealived_real_online Test result of the real after the retries hysteresis (1 online, 0 offline).',
      '# TYPE surealived_real_online gauge',
      `surealived_real_online{${L1}} 1`,
      `surealived_real_online{${L2}} 0`,
      '# HELP surealived_real_rstate Operator state of the real set by rset (1 for the current state).',
      '# TYPE surealived_real_rstate gauge',
      `surealived_real_rstate{${L1},rstate="ONLINE"} 1`,
      `surealived_real_rstate{${L1},rstate="OFFLINE"} 0`,
      `surealived_real_rstate{${L1},rstate="DOWN"} 0`,
      `surealived_real_rstate{${L2},rstate="ONLINE"} 1`,
      `surealived_real_rstate{${L2},rstate="OFFLINE"} 0`,
      `surealived_real_rstate{${L2},rstate="DOWN"} 0`,
      '# HELP surealived_real_in_ipvs Whether the real is present in the IPVS table (1) or removed (0).',
      '# TYPE surealived_real_in_ipvs gauge',
      `surealived_real_in_ipvs{${L1}} 1`,
      `surealived_real_in_ipvs{${L2}} 1`,
      '# HELP surealived_real_weight Effective IPVS weight of the real (0 when offline or not ONLINE; in panic a failing real keeps its weight).',
      '# TYPE surealived_real_weight gauge',
      `surealived_real_weight{${L1}} 10`,
      `surealived_real_weight{${L2}} 0`,
      '# HELP surealived_real_configured_weight Weight of the real in the XML configuration.',
      '# TYPE surealived_real_configured_weight gauge',
      `surealived_real_configured_weight{${L1}} 20`,
      `surealived_real_configured_weight{${L2}} 10`,
      '# HELP surealived_real_probe_latency_seconds Duration of the last evaluated probe of the real.',
      '# TYPE surealived_real_probe_latency_seconds gauge',
      `surealived_real_probe_latency_seconds{${L1}} {latency1}`,
      `surealived_real_probe_latency_seconds{${L2}} {latency2}`,
      '# HELP surealived_real_checks_total Probes of the real evaluated, by result.',
      '# TYPE surealived_real_checks_total counter',
      `surealived_real_checks_total{${L1},result="ok"} 1`,
      `surealived_real_checks_total{${L1},result="failed"} 0`,
      `surealived_real_checks_total{${L2},result="ok"} 0`,
      `surealived_real_checks_total{${L2},result="failed"} 1`,
      '# HELP surealived_tests_total Probes evaluated since start, by result.',
      '# TYPE surealived_tests_total counter',
      'surealived_tests_total{result="success"} 1',
      'surealived_tests_total{result="failed"} 1',
      '# HELP surealived_state_changes_total Reals that changed their test state since start, by new state.',
      '# TYPE surealived_state_changes_total counter',
      'surealived_state_changes_total{state="online"} 0',
      'surealived_state_changes_total{state="offline"} 1',
      '# HELP surealived_probe_problems_total Failed connects since start: conn (no connect by the deadline), arp (error after >= 1 s), rst (error < 1 s).',
      '# TYPE surealived_probe_problems_total counter',
      'surealived_probe_problems_total{problem="conn"} 0',
      'surealived_probe_problems_total{problem="arp"} 0',
      'surealived_probe_problems_total{problem="rst"} 1',
      '# HELP surealived_probe_bytes_total Bytes exchanged by probes since start.',
      '# TYPE surealived_probe_bytes_total counter',
      'surealived_probe_bytes_total{direction="received"} 0',
      'surealived_probe_bytes_total{direction="sent"} 0',
      '# HELP surealived_probe_local_errors_total Probes that could not run for a local reason (descriptors, memory, buffers, local ports, processes), by errno; never judged as failures of the real.',
      '# TYPE surealived_probe_local_errors_total counter',
      '# HELP surealived_probe_descriptor_budget Descriptors probes may hold at once: the descriptor limit (or maxfd) minus the reserve for state files, logs, control port and notifiers.',
      '# TYPE surealived_probe_descriptor_budget gauge',
      'surealived_probe_descriptor_budget {budget}',
      '# HELP surealived_probe_descriptors_in_use Descriptors held by probes in flight.',
      '# TYPE surealived_probe_descriptors_in_use gauge',
      'surealived_probe_descriptors_in_use 0',
      '# HELP surealived_probes_waiting Probes due but waiting for descriptors (not judged while they wait).',
      '# TYPE surealived_probes_waiting gauge',
      'surealived_probes_waiting 0',
      '# HELP surealived_probe_start_lateness_seconds How late probes started against their schedule.',
      '# TYPE surealived_probe_start_lateness_seconds histogram',
      'surealived_probe_start_lateness_seconds_bucket{le="0.005"} {b0}',
      'surealived_probe_start_lateness_seconds_bucket{le="0.01"} {b1}',
      'surealived_probe_start_lateness_seconds_bucket{le="0.025"} {b2}',
      'surealived_probe_start_lateness_seconds_bucket{le="0.05"} {b3}',
      'surealived_probe_start_lateness_seconds_bucket{le="0.1"} {b4}',
      'surealived_probe_start_lateness_seconds_bucket{le="0.25"} {b5}',
      'surealived_probe_start_lateness_seconds_bucket{le="0.5"} {b6}',
      'surealived_probe_start_lateness_seconds_bucket{le="1"} {b7}',
      'surealived_probe_start_lateness_seconds_bucket{le="+Inf"} 2',
      'surealived_probe_start_lateness_seconds_sum {sum}',
      'surealived_probe_start_lateness_seconds_count 2',
      '# HELP surealived_probe_start_lateness_max_seconds Largest probe start lateness since the previous scrape.',
      '# TYPE surealived_probe_start_lateness_max_seconds gauge',
      'surealived_probe_start_lateness_max_seconds {max}',
      '_SD_CMD_END_',
      '',
    ].join('\n');
    const text = await c.ask('metrics');
    const holes: string[] = [];
    const pattern = expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\{(\w+)\\\}/g, (_, name: string) => {
      holes.push(name);
      return '([0-9.e+-]+)';
    });
    const m = new RegExp(`^${pattern}$`).exec(text);
    if (!m) assert.equal(text, expected, 'the exposition, line by line (values in braces vary)');
    const v = Object.fromEntries(holes.map((h, i) => [h, Number(m![i + 1])])) as Record<string, number>;
    assert.equal(v['latency1'], last.get('web1')!.total / 1000, "the duration of web1's probe");
    assert.equal(v['latency2'], last.get('web2')!.total / 1000, "the duration of web2's (refused) probe");
    const soft = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
    assert.ok(Number.isInteger(v['budget']) && v['budget']! > 0 && v['budget']! < soft, `descriptor budget ${v['budget']} below the limit ${soft}`);
    const buckets = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => v[`b${i}`]!);
    assert.ok(buckets.every((b, i) => Number.isInteger(b) && b >= (buckets[i - 1] ?? 0) && b <= 2), `cumulative buckets ${buckets}`);
    assert.ok(v['sum']! >= 0 && v['max']! >= 0 && v['max']! <= v['sum']!, `max ${v['max']} of two latenesses summing to ${v['sum']}`);
  });

  it('builds the exposition of 10,000 reals a slice at a time, giving the event loop turns in between', async () => {
    big = await RealServers.start(BIG);
    const { d, c } = await start({ from: big });
    await c.ask('metrics'); // takes the lateness max: nothing changes between the next two readings
    let turns = 0;
    let stop = false;
    const spin = (): void => {
      turns++;
      if (!stop) setImmediate(spin);
    };
    setImmediate(spin);
    const text = await c.ask('metrics');
    stop = true;
    assert.ok(turns > 1, `the event loop turned ${turns} times while 10,000 reals were rendered`);
    const dm = d.daemon;
    assert.equal(text, formatMetrics(dm.virtuals, dm.counters, dm.lateness, dm.probeLoad) + END, 'same text as built at once');
    assert.equal(text.split('\nsurealived_real_online{').length - 1, 10_000, 'one online series per real');
    const online = text.split('\n').filter((l) => l.startsWith('surealived_real_online{'));
    assert.ok(online.every((l) => l.endsWith('} 1')), 'every real online: its server answered');
  });
});

/** The sample's XML with only its first virtual (web). */
function onlyWeb(xml: string): string {
  const end = xml.indexOf('</virtual>\n') + '</virtual>\n'.length;
  return `${xml.slice(0, end)}</surealived>\n`;
}
