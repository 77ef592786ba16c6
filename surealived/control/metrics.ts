// Prometheus text exposition (format 0.0.4) of the reals' state and the test counters, pure.
// Served by the control port's `metrics` command and by the optional HTTP listener at GET /metrics.

import { LATENESS_BOUNDS_S, type LatenessHistogram } from '../engine/lateness.js';
import type { ProbeLoad } from '../engine/engine.js';
import { ipvsWeight, presentInIpvs, type RealState, type RState, type TestCounters, type VirtualState } from '../engine/state.js';
import { decideFallbacks } from '../engine/fallback.js';

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

function helpText(name: string, type: 'gauge' | 'counter', help: string): string {
  // HELP text escaping: backslash and newline only.
  return `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`;
}

function family(name: string, type: 'gauge' | 'counter', help: string, samples: ReadonlyArray<readonly [Labels, number]>): string {
  let out = helpText(name, type, help);
  for (const [labels, value] of samples) out += `${name}${labelText(labels)} ${valueText(value)}\n`;
  return out;
}

// The label text of a real ("virtual=...,rport=..."), built once per real configuration: a scrape
// of 10,000 reals writes it a dozen times each.
const realLabelCache = new WeakMap<RealState['config'], string>();

function realLabels(r: RealState): string {
  const c = r.config;
  let text = realLabelCache.get(c);
  if (text === undefined) {
    const v = r.virtual.config;
    const pairs: Labels = [
      ['virtual', v.name],
      ['vproto', v.proto],
      ['vaddr', v.addr],
      ['vport', String(v.port)],
      ['vfwmark', String(v.fwmark)],
      ['real', c.name],
      ['raddr', c.addr],
      ['rport', String(c.port)],
    ];
    text = pairs.map(([k, val]) => `${k}="${escapeLabelValue(val)}"`).join(',');
    realLabelCache.set(c, text);
  }
  return text;
}

const RSTATES: readonly RState[] = ['ONLINE', 'OFFLINE', 'DOWN'];

/** One series per real (and per extra label value) of a family. */
interface RealFamily {
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  /** Lines of one real: `${name}{labels${extra}} value`. */
  readonly lines: (r: RealState, labels: string) => string;
}

const g = (name: string, help: string, f: (r: RealState) => number): RealFamily => ({
  name,
  type: 'gauge',
  help,
  lines: (r, l) => `${name}{${l}} ${valueText(f(r))}\n`,
});

const REAL_FAMILIES: readonly RealFamily[] = [
  g('surealived_real_online', 'Test result of the real after the retries hysteresis (1 online, 0 offline).', (r) => (r.online ? 1 : 0)),
  {
    name: 'surealived_real_rstate',
    type: 'gauge',
    help: 'Operator state of the real set by rset (1 for the current state).',
    lines: (r, l) => RSTATES.map((st) => `surealived_real_rstate{${l},rstate="${st}"} ${r.rstate === st ? 1 : 0}\n`).join(''),
  },
  g('surealived_real_in_ipvs', 'Whether the real is present in the IPVS table (1) or removed (0).', (r) => (presentInIpvs(r) ? 1 : 0)),
  g('surealived_real_weight', 'Effective IPVS weight of the real (0 when offline or not ONLINE; in panic a failing real keeps its weight).', ipvsWeight),
  g('surealived_real_configured_weight', 'Weight of the real in the XML configuration.', (r) => r.config.weight),
  g('surealived_real_probe_latency_seconds', 'Duration of the last evaluated probe of the real.', (r) => r.stats.lastLatencyMs / 1000),
  {
    name: 'surealived_real_checks_total',
    type: 'counter',
    help: 'Probes of the real evaluated, by result.',
    lines: (r, l) =>
      `surealived_real_checks_total{${l},result="ok"} ${valueText(r.stats.checksOk)}\n` +
      `surealived_real_checks_total{${l},result="failed"} ${valueText(r.stats.checksFailed)}\n`,
  },
];

/** Reals per chunk of the exposition: small enough that building one costs a few ms. */
const REALS_PER_CHUNK = 1000;

const virtualLabelCache = new WeakMap<VirtualState['config'], string>();

function virtualLabels(v: VirtualState): string {
  const c = v.config;
  let text = virtualLabelCache.get(c);
  if (text === undefined) {
    const pairs: Labels = [
      ['virtual', c.name],
      ['vproto', c.proto],
      ['vaddr', c.addr],
      ['vport', String(c.port)],
      ['vfwmark', String(c.fwmark)],
    ];
    text = pairs.map(([k, val]) => `${k}="${escapeLabelValue(val)}"`).join(',');
    virtualLabelCache.set(c, text);
  }
  return text;
}

/**
 * Per-virtual fallback families (engine/fallback.ts): panic mode of every virtual, its threshold where
 * one is set, reals serving, and the sorry server where one is configured (labelled with the sorry
 * server as `real`, `raddr`, `rport`).
 */
function* fallbackChunks(virtuals: readonly VirtualState[]): Generator<string> {
  const decisions = virtuals.map((v) => decideFallbacks(v));
  const fam = function* (name: string, help: string, line: (v: VirtualState, i: number, l: string) => string | null): Generator<string> {
    let out = helpText(name, 'gauge', help);
    for (let i = 0; i < virtuals.length; i++) {
      const v = virtuals[i]!;
      const text = line(v, i, virtualLabels(v));
      if (text !== null) out += text;
      if ((i + 1) % REALS_PER_CHUNK === 0) {
        yield out;
        out = '';
      }
    }
    if (out !== '') yield out;
  };
  yield* fam('surealived_virtual_panic', 'Whether the virtual is in panic mode (1): too few reals pass their tests, verdicts disregarded, every real kept in IPVS.', (v, _i, l) => `surealived_virtual_panic{${l}} ${v.panic ? 1 : 0}\n`);
  yield* fam('surealived_virtual_panic_threshold_percent', 'Panic threshold of the virtual: panic while fewer than this percentage of its ONLINE reals pass (virtuals with one set).', (_v, i, l) =>
    decisions[i]!.threshold > 0 ? `surealived_virtual_panic_threshold_percent{${l}} ${decisions[i]!.threshold}\n` : null,
  );
  yield* fam('surealived_virtual_reals_passing', 'Reals of the virtual left ONLINE by the operator that pass their tests (the panic share is taken over surealived_virtual_reals_eligible).', (_v, i, l) => `surealived_virtual_reals_passing{${l}} ${decisions[i]!.passing}\n`);
  yield* fam('surealived_virtual_reals_eligible', 'Reals of the virtual left ONLINE by the operator.', (_v, i, l) => `surealived_virtual_reals_eligible{${l}} ${decisions[i]!.eligible}\n`);
  yield* fam('surealived_virtual_reals_serving', 'Reals of the virtual with a non-zero IPVS weight (panic applied); 0 brings the sorry server in.', (_v, i, l) => `surealived_virtual_reals_serving{${l}} ${decisions[i]!.serving}\n`);
  yield* fam('surealived_virtual_sorry_active', 'Whether the sorry server of the virtual is in service (1) (virtuals with one configured).', (v, _i, l) => {
    const so = v.sorry;
    if (so === null) return null;
    const c = so.config;
    return `surealived_virtual_sorry_active{${l},real="${escapeLabelValue(c.name)}",raddr="${escapeLabelValue(c.addr)}",rport="${c.port}"} ${so.active ? 1 : 0}\n`;
  });
}

/** The exposition in chunks, in order; `lateness` is read (and its max taken) by the last chunk. */
function* metricsChunks(virtuals: readonly VirtualState[], counters: TestCounters, lateness?: LatenessHistogram, load?: ProbeLoad): Generator<string> {
  const reals = virtuals.flatMap((v) => v.reals);
  yield family('surealived_virtuals', 'gauge', 'Virtuals in the service configuration.', [[[], virtuals.length]]) +
    family('surealived_reals', 'gauge', 'Reals in the service configuration.', [[[], reals.length]]);
  yield* fallbackChunks(virtuals);
  for (const f of REAL_FAMILIES) {
    let out = helpText(f.name, f.type, f.help);
    for (let i = 0; i < reals.length; i++) {
      const r = reals[i]!;
      out += f.lines(r, realLabels(r));
      if ((i + 1) % REALS_PER_CHUNK === 0) {
        yield out;
        out = '';
      }
    }
    if (out !== '') yield out;
  }
  yield family('surealived_tests_total', 'counter', 'Probes evaluated since start, by result.', [
    [[['result', 'success']], counters.success],
    [[['result', 'failed']], counters.failed],
  ]) +
    family('surealived_state_changes_total', 'counter', 'Reals that changed their test state since start, by new state.', [
      [[['state', 'online']], counters.onlineSet],
      [[['state', 'offline']], counters.offlineSet],
    ]) +
    family('surealived_probe_problems_total', 'counter', 'Failed connects since start: conn (no connect by the deadline), arp (error after >= 1 s), rst (error < 1 s).', [
      [[['problem', 'conn']], counters.connProblem],
      [[['problem', 'arp']], counters.arpProblem],
      [[['problem', 'rst']], counters.rstProblem],
    ]) +
    family('surealived_probe_bytes_total', 'counter', 'Bytes exchanged by probes since start.', [
      [[['direction', 'received']], counters.bytesRcvd],
      [[['direction', 'sent']], counters.bytesSent],
    ]) +
    family(
      'surealived_probe_local_errors_total',
      'counter',
      'Probes that could not run for a local reason (descriptors, memory, buffers, local ports, processes), by errno; never judged as failures of the real.',
      [...counters.localErrors].map(([errno, n]) => [[['errno', errno]], n] as const),
    );
  if (load) yield loadText(load);
  if (lateness) yield latenessText(lateness);
}

/** The whole exposition at once (no end marker; the control command appends it). */
export function formatMetrics(virtuals: readonly VirtualState[], counters: TestCounters, lateness?: LatenessHistogram, load?: ProbeLoad): string {
  let out = '';
  for (const chunk of metricsChunks(virtuals, counters, lateness, load)) out += chunk;
  return out;
}

/**
 * The same exposition built a chunk at a time, giving the event loop back every few ms, so that a
 * scrape of a large director does not hold probes up (one pass over 10,000 reals blocked it for
 * hundreds of ms). Chunks are handed to `write` as they are built.
 */
export async function streamMetrics(
  virtuals: readonly VirtualState[],
  counters: TestCounters,
  lateness: LatenessHistogram | undefined,
  write: (chunk: string) => void,
  load?: ProbeLoad,
): Promise<void> {
  const SLICE_MS = 5;
  let sliceStart = performance.now();
  for (const chunk of metricsChunks(virtuals, counters, lateness, load)) {
    write(chunk);
    if (performance.now() - sliceStart >= SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

/** The descriptor budget of probes and how much of it is taken. */
function loadText(l: ProbeLoad): string {
  return (
    family('surealived_probe_descriptor_budget', 'gauge', 'Descriptors probes may hold at once: the descriptor limit (or maxfd) minus the reserve for state files, logs, control port and notifiers.', [[[], l.descriptorBudget]]) +
    family('surealived_probe_descriptors_in_use', 'gauge', 'Descriptors held by probes in flight.', [[[], l.descriptorsInUse]]) +
    family('surealived_probes_waiting', 'gauge', 'Probes due but waiting for descriptors (not judged while they wait).', [[[], l.waiting]])
  );
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
