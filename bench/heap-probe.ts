// Bench-only preload (`node --import heap-probe.js`): samples the surealived process's memory and
// GC time every 200 ms into $BENCH_HEAP_FILE, so bench/checks.ts can report heap figures.

import { appendFileSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

const file = process.env['BENCH_HEAP_FILE'];
if (file !== undefined) {
  let gcMs = 0;
  let gcMajor = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      if ((e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === 4) gcMajor++;
    }
  }).observe({ entryTypes: ['gc'] });
  writeFileSync(file, '');
  setInterval(() => {
    const m = process.memoryUsage();
    appendFileSync(file, `${performance.now().toFixed(0)} ${m.rss} ${m.heapUsed} ${m.heapTotal} ${m.external} ${gcMs.toFixed(1)} ${gcMajor}\n`);
  }, 200).unref();
}

// BENCH_HEAP_PROF=<file>: a sampling heap profile from 8 s to 16 s after start, counting objects that
// a major GC later collected (i.e. promoted garbage) but not those a scavenge collected.
const profFile = process.env['BENCH_HEAP_PROF'];
if (profFile !== undefined) {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  setTimeout(() => {
    void post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false }).then(() =>
      setTimeout(() => {
        void post('HeapProfiler.stopSampling').then((res) => writeFileSync(profFile, JSON.stringify((res as { profile: unknown }).profile)));
      }, 8000).unref(),
    );
  }, 8000).unref();
}
