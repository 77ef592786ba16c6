// The Node flags a daemon runs with when started as its bin: those of its `#!/usr/bin/env -S node ...`
// line. Benchmarks start the daemon with them so that they measure what operators run.

import { readFileSync } from 'node:fs';

export function shebangFlags(script: string): string[] {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env\s+(?:-S\s+)?node\b(.*)$/.exec(first);
  return m ? m[1]!.split(/\s+/).filter((f) => f !== '') : [];
}
