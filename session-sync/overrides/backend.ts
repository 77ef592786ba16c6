// surealived's operator overrides on this node: override.dump followed on the master (source.ts),
// `rset` through the control port on the backup (sink.ts).

import type { OverridesBackend } from '../service.js';
import { OverridesSink } from './sink.js';
import { OverrideDumpSource, type OverridesLog } from './source.js';

export interface OverridesBackendOptions {
  /** The local surealived's override.dump (master side). */
  readonly overrideDump: string;
  /** The local surealived's control port (backup side). */
  readonly control: { readonly host: string; readonly port: number };
  readonly log: OverridesLog;
}

export function overridesBackend(opts: OverridesBackendOptions): OverridesBackend {
  const sink = new OverridesSink({ control: opts.control, log: opts.log });
  return {
    source: (name) => new OverrideDumpSource({ path: opts.overrideDump, name, log: opts.log }),
    write: (overrides) => sink.write(overrides),
    apply: (changes) => sink.apply(changes),
  };
}
