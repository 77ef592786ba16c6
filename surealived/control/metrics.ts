// Prometheus text exposition (format 0.0.4) of the reals' state and the test counters, pure.
// Served by the control port's `metrics` command and by the optional HTTP listener at GET /metrics.

import { LATENESS_BOUNDS_S, type LatenessHistogram } from '../engine/lateness.js';
import { effectiveWeight, presentInIpvs, type RealState, type RState, type TestCounters, type VirtualState } from '../engine/state.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Label value escaping of the text format: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

type Labels = ReadonlyArray<readonly [string, string]>;

function labelText(labels: Labels): string {
  if (labels.length === 0) return '';
  return `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/** Go's ParseFloat reads JS number text, except that non-finite values are spelled differently. */
function valueText(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

class Exposition {
  private out = '';
  family(name: string, type: 'gauge' | 'counter', help: string, samples: ReadonlyArray<readonly [Labels, number]>): void {
    // HELP text escaping: backslash and newline only.
    this.out += `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`;
    for (const [labels, value] of samples) this.out += `${name}${labelText(labels)} ${valueText(value)}\n`;
  }
  text(): string {
    return this.out;
  }
}

function realLabels(r: RealState): Labels {
  const v = r.virtual.config;
  const c = r.config;
  return [
    ['virtual', v.name],
    ['vproto', v.proto],
    ['vaddr', v.addr],
    ['vport', String(v.port)],
    ['vfwmark', String(v.fwmark)],
    ['real', c.name],
    ['raddr', c.addr],
    ['rport', String(c.port)],
  ];
}

const RSTATES: readonly RState[] = ['ONLINE', 'OFFLINE', 'DOWN'];

/** The whole exposition (no end marker; the control command appends it). */
export function formatMetrics(virtuals: readonly VirtualState[], counters: TestCounters, lateness?: LatenessHistogram): string {
  const reals = virtuals.flatMap((v) => v.reals);
  const per = (f: (r: RealState) => number): Array<readonly [Labels, number]> => reals.map((r) => [realLabels(r), f(r)] as const);
  const e = new Exposition();
  e.family('surealived_virtuals', 'gauge', 'Virtuals in the service configuration.', [[[], virtuals.length]]);
  e.family('surealived_reals', 'gauge', 'Reals in the service configuration.', [[[], reals.length]]);
  e.family('surealived_real_online', 'gauge', 'Test result of the real after the retries hysteresis (1 online, 0 offline).', per((r) => (r.online ? 1 : 0)));
  e.family(
    'surealived_real_rstate',
    'gauge',
    'Operator state of the real set by rset (1 for the current state).',
    reals.flatMap((r) => RSTATES.map((s) => [[...realLabels(r), ['rstate', s]] as Labels, r.rstate === s ? 1 : 0] as const)),
  );
  e.family('surealived_real_in_ipvs', 'gauge', 'Whether the real is present in the IPVS table (1) or removed (0).', per((r) => (presentInIpvs(r) ? 1 : 0)));
  e.family('surealived_real_weight', 'gauge', 'Effective IPVS weight of the real (0 when offline or not ONLINE).', per(effectiveWeight));
  e.family('surealived_real_configured_weight', 'gauge', 'Weight of the real in the XML configuration.', per((r) => r.config.weight));
  e.family('surealived_real_probe_latency_seconds', 'gauge', 'Duration of the last evaluated probe of the real.', per((r) => r.stats.lastLatencyMs / 1000));
  e.family(
    'surealived_real_checks_total',
    'counter',
    'Probes of the real evaluated, by result.',
    reals.flatMap((r) => [
      [[...realLabels(r), ['result', 'ok']] as Labels, r.stats.checksOk] as const,
      [[...realLabels(r), ['result', 'failed']] as Labels, r.stats.checksFailed] as const,
    ]),
  );
  e.family('surealived_tests_total', 'counter', 'Probes evaluated since start, by result.', [
    [[['result', 'success']], counters.success],
    [[['result', 'failed']], counters.failed],
  ]);
  e.family('surealived_state_changes_total', 'counter', 'Reals that changed their test state since start, by new state.', [
    [[['state', 'online']], counters.onlineSet],
    [[['state', 'offline']], counters.offlineSet],
  ]);
  e.family('surealived_probe_problems_total', 'counter', 'Failed connects since start: conn (no connect by the deadline), arp (error after >= 1 s), rst (error < 1 s).', [
    [[['problem', 'conn']], counters.connProblem],
    [[['problem', 'arp']], counters.arpProblem],
    [[['problem', 'rst']], counters.rstProblem],
  ]);
  e.family('surealived_probe_bytes_total', 'counter', 'Bytes exchanged by probes since start.', [
    [[['direction', 'received']], counters.bytesRcvd],
    [[['direction', 'sent']], counters.bytesSent],
  ]);
  return lateness ? e.text() + latenessText(lateness) : e.text();
}

/** The probe start lateness histogram, and its largest value since the previous scrape. */
function latenessText(h: LatenessHistogram): string {
  const name = 'surealived_probe_start_lateness_seconds';
  const cum = h.cumulative();
  let s = `# HELP ${name} How late probes started against their schedule.\n# TYPE ${name} histogram\n`;
  LATENESS_BOUNDS_S.forEach((b, i) => (s += `${name}_bucket{le="${b}"} ${cum[i]}\n`));
  s += `${name}_bucket{le="+Inf"} ${h.count}\n${name}_sum ${h.sumSeconds}\n${name}_count ${h.count}\n`;
  const max = 'surealived_probe_start_lateness_max_seconds';
  s += `# HELP ${max} Largest probe start lateness since the previous scrape.\n# TYPE ${max} gauge\n${max} ${h.takeMax()}\n`;
  return s;
}
