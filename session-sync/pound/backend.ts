// Pound HTTP sessions on this node: a source per farm over Pound's sync socket for the master, and
// SESS_WRITE for `write http` on the backup. Pound's socket is `<socketDir>/ssync_<farm>.socket`.

import { join } from 'node:path';
import { farmNameProblem, type HttpSession } from '../model.js';
import type { HttpBackend } from '../service.js';
import type { SinkReport, Source } from '../source.js';
import { PoundSource, type PoundLog, type PoundTimings } from './source.js';
import { writeToPound } from './writer.js';

export interface PoundBackendOptions {
  /** Where Pound's sync sockets live: `<dir>/ssync_<farm>.socket` (Zevenet: /tmp). */
  readonly socketDir: string;
  readonly log: PoundLog;
  /** Reconnect, settle and stall times of the sources (defaults: DEFAULT_POUND_TIMINGS). */
  readonly timings?: Partial<PoundTimings>;
}

/** Pound's sync socket of a farm (Pound names it from its `Name` directive). */
export function poundSocketPath(socketDir: string, farm: string): string {
  return join(socketDir, `ssync_${farm}.socket`);
}

export function poundBackend(opts: PoundBackendOptions): HttpBackend {
  const open = new Map<string, PoundSource>();
  const checkedPath = (farm: string): string => {
    const why = farmNameProblem(farm);
    if (why) throw new Error(why);
    return poundSocketPath(opts.socketDir, farm);
  };
  return {
    async source(farm: string): Promise<Source> {
      const src: PoundSource = await PoundSource.open({
        farm,
        socketPath: checkedPath(farm),
        log: opts.log,
        ...(opts.timings ? { timings: opts.timings } : {}),
        onClose: () => {
          if (open.get(farm) === src) open.delete(farm);
        },
      });
      open.set(farm, src);
      return src;
    },
    async write(farm: string, sessions: readonly HttpSession[]): Promise<SinkReport> {
      const socketPath = checkedPath(farm);
      // Pound serves one sync client at a time: writing would take the connection this node's own
      // source follows (and the source, reconnecting, would cut the write short).
      if (open.has(farm)) {
        return { written: 0, skipped: 0, failed: [{ what: `farm ${farm}`, why: `this node follows farm ${farm}'s Pound (start http): not writing its own sessions back to it` }] };
      }
      return writeToPound({ farm, socketPath }, sessions);
    },
    close(): void {
      for (const src of [...open.values()]) src.close();
    },
  };
}
