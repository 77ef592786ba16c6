// Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most self time and the most
// inclusive time, as `ms  %  function  file:line`. Used by bench/sync.ts --profile; also runnable:
// `node dist/bench/cpuprofile-top.js <file.cpuprofile> [rows]`.

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FrameTime {
  readonly frame: string;
  readonly selfMs: number;
  readonly totalMs: number;
}

const META = new Set(['(root)', '(program)', '(idle)']);

function label(n: ProfileNode, root: string): string {
  const f = n.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const url = f.url.startsWith('file://') ? relative(root, fileURLToPath(f.url)) : f.url;
  return `${name}  ${url}:${f.lineNumber + 1}`;
}

/** Self and inclusive ms per function (frames with the same name and place are summed). */
export function summarise(file: string, root = process.cwd()): { frames: FrameTime[]; sampledMs: number; busyMs: number } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfById = new Map<number, number>();
  let sampledMs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the gap after a sample to it instead.
    const ms = (p.timeDeltas[i + 1] ?? 0) / 1000;
    sampledMs += ms;
    selfById.set(p.samples[i]!, (selfById.get(p.samples[i]!) ?? 0) + ms);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busyMs = 0;
  for (const [id, ms] of selfById) {
    const n = byId.get(id)!;
    const l = label(n, root);
    self.set(l, (self.get(l) ?? 0) + ms);
    if (n.callFrame.functionName !== '(idle)') busyMs += ms;
    // Inclusive: every distinct frame on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cl = label(byId.get(cur)!, root);
      if (seen.has(cl)) continue;
      seen.add(cl);
      total.set(cl, (total.get(cl) ?? 0) + ms);
    }
  }
  const frames = [...total.keys()].map((f) => ({ frame: f, selfMs: self.get(f) ?? 0, totalMs: total.get(f) ?? 0 }));
  return { frames, sampledMs, busyMs };
}

export function formatTop(file: string, rows = 20, root = process.cwd()): string {
  const { frames, sampledMs, busyMs } = summarise(file, root);
  const pct = (ms: number): string => `${((ms / Math.max(1e-9, busyMs)) * 100).toFixed(1).padStart(5)}%`;
  const line = (f: FrameTime, ms: number): string => `    ${ms.toFixed(0).padStart(7)} ms ${pct(ms)}  ${f.frame}`;
  const bySelf = frames.filter((f) => !META.has(f.frame) && f.selfMs > 0).sort((a, b) => b.selfMs - a.selfMs).slice(0, rows);
  const byTotal = frames.filter((f) => !META.has(f.frame)).sort((a, b) => b.totalMs - a.totalMs).slice(0, rows);
  return [
    `  profile ${file}: ${(sampledMs / 1000).toFixed(1)} s sampled, ${(busyMs / 1000).toFixed(2)} s not idle (percentages of that)`,
    `  top self time:`,
    ...bySelf.map((f) => line(f, f.selfMs)),
    `  top inclusive time:`,
    ...byTotal.map((f) => line(f, f.totalMs)),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: cpuprofile-top <file.cpuprofile> [rows]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatTop(file, Number(process.argv[3] ?? 20))}\n`);
}
