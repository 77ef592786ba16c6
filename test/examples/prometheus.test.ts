// The shipped monitoring examples: the Prometheus alert rules pass `promtool check rules` and their
// unit tests, and they and the Grafana dashboard use only metrics surealived exports, in PromQL that
// promtool accepts.

import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatMetrics } from '../../surealived/control/metrics.js';
import { LatenessHistogram } from '../../surealived/engine/lateness.js';
import { buildState, newTestCounters } from '../../surealived/engine/state.js';
import { browserUnavailable, ensureBrowserTools } from '../helpers/browser.js';
import { makeVirtual } from '../helpers/model.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const PROM = join(root, 'examples', 'prometheus');
const DASHBOARD = join(root, 'examples', 'grafana', 'surealived.json');

function promtool(args: string[], cwd = PROM): string {
  try {
    return execFileSync('promtool', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')}: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}

/** Every metric name surealived exports (histogram series included), from a real exposition. */
function exportedNames(): Set<string> {
  // A virtual with a panic threshold and a sorry server, so their families are in the exposition too.
  const sorry = { name: 's', addr: '10.0.9.9', family: 4 as const, port: 80, weight: 1, uthresh: 0, lthresh: 0, rt: 'dr' as const, inhibit: false, source: { file: 'x.xml', line: 1 } };
  const vs = buildState([{ ...makeVirtual({ name: 'web', reals: [{ name: 'w1', addr: '10.0.0.1' }] }), panic: 50, sorry }]);
  const counters = newTestCounters();
  counters.localErrors.set('EMFILE', 1);
  const text = formatMetrics(vs, counters, new LatenessHistogram(), { descriptorBudget: 1, descriptorsInUse: 0, waiting: 0 });
  return new Set(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]));
}

const usedNames = (exprs: readonly string[]): string[] => [...new Set(exprs.flatMap((e) => e.match(/\bsurealived_[a-z_]+\b/g) ?? []))].sort();

interface Dashboard {
  readonly panels: ReadonlyArray<{ readonly title: string; readonly targets: ReadonlyArray<{ readonly expr: string }> }>;
  readonly templating: { readonly list: ReadonlyArray<{ readonly definition?: string }> };
}

describe('monitoring examples (examples/prometheus, examples/grafana)', function () {
  this.timeout(15 * 60_000);
  before(function () {
    if (browserUnavailable()) this.skip();
    ensureBrowserTools('prometheus');
  });

  it('the alert rules pass `promtool check rules` and their unit tests, and the scrape config `promtool check config`', () => {
    assert.match(promtool(['check', 'rules', 'surealived.rules.yml']), /SUCCESS: 9 rules found/);
    assert.match(promtool(['test', 'rules', 'surealived.rules.test.yml']), /SUCCESS/);
    assert.match(promtool(['check', 'config', 'prometheus.yml']), /SUCCESS/);
  });

  it('the alert rules use only metrics surealived exports', () => {
    const exported = exportedNames();
    const rules = readFileSync(join(PROM, 'surealived.rules.yml'), 'utf8');
    const names = usedNames([rules]);
    assert.ok(names.length >= 5, names.join(' '));
    for (const n of names) assert.ok(exported.has(n), `${n} is not exported (exported: ${[...exported].join(' ')})`);
  });

  it('the Grafana dashboard queries only exported metrics, and every query is PromQL that promtool accepts', () => {
    const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    const exprs = d.panels.flatMap((p) => p.targets.map((t) => t.expr));
    assert.ok(exprs.length >= 10);
    const exported = exportedNames();
    for (const n of usedNames([...exprs, ...d.templating.list.map((v) => v.definition ?? '')])) assert.ok(exported.has(n), `${n} is not exported`);
    // Each query becomes a recording rule, with the dashboard variables replaced by values.
    const dir = mkdtempSync(join(tmpdir(), 'sd-grafana-'));
    try {
      const concrete = exprs.map((e) => e.replace(/\$__rate_interval/g, '1m').replace(/\$instance|\$virtual/g, '.*'));
      const yaml = `groups:\n  - name: dashboard\n    rules:\n${concrete.map((e, i) => `      - record: dashboard:query${i}\n        expr: ${JSON.stringify(e)}\n`).join('')}`;
      writeFileSync(join(dir, 'dashboard.rules.yml'), yaml);
      assert.match(promtool(['check', 'rules', 'dashboard.rules.yml'], dir), new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
