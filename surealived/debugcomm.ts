// debugcomm dumps (spec 4.7): every chunk a probe writes or reads, appended to
// `<debug_comm_path>/<vname>_<rname>` with a timestamp and direction tag; the file restarts at each test.

import { appendFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommTag } from '../testers/contract.js';
import { logTimestamp, nowMicros, type Logger } from '../common/log.js';

/** The original's tags, each with its leading space (so two spaces follow the `]`). */
export const COMM_TAGS: Readonly<Record<CommTag, string>> = {
  write: ' sd_write ->',
  read: ' sd_read <-',
  read_av: ' sd_read_av <-',
  eof: ' sd_eof <-',
};

/** `[YYYY-MM-DD HH:MM:SS.uuuuuu] ` + tag + `\n` + raw bytes + `\n`. */
export function formatCommChunk(epochMicros: number, tag: CommTag, data: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${logTimestamp(epochMicros)} ${COMM_TAGS[tag]}\n`), data, Buffer.from('\n')]);
}

export function commDumpPath(debugCommPath: string, vname: string, rname: string): string {
  return join(debugCommPath, `${vname}_${rname}`);
}

/** Dumps are on when main `debug_comm` is 1 and the tester's `debugcomm` is set (READ_AV included: spec 11.10 fixed). */
export function commDumpEnabled(mainDebugComm: boolean, testerDebugcomm: boolean): boolean {
  return mainDebugComm && testerDebugcomm;
}

export interface CommDump {
  readonly path: string;
  /** Deletes the file: called at each test start when main `debug_comm` is 1. */
  reset(): void;
  /** Appends one chunk, timestamped now; fits `ProbeContext.comm`. */
  record(tag: CommTag, data: Uint8Array): void;
  /** Resolves when everything queued so far is on disk (or failed and was logged). */
  flush(): Promise<void>;
}

/**
 * Writes are queued in order (a reset is never overtaken by a later chunk) and never block the event
 * loop. A missing directory or any write error is logged once until a write succeeds again, and never
 * aborts the process (spec 11.10).
 */
export function createCommDump(path: string, log: Logger, clock: () => number = nowMicros): CommDump {
  let chain: Promise<void> = Promise.resolve();
  let failing = false;
  const enqueue = (op: () => Promise<void>): void => {
    chain = chain.then(op).then(
      () => {
        failing = false;
      },
      (e: Error) => {
        if (!failing) log.warn(`debugcomm: unable to write '${path}' [${e.message}]`);
        failing = true;
      },
    );
  };
  return {
    path,
    reset() {
      enqueue(() =>
        unlink(path).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        }),
      );
    },
    record(tag, data) {
      const chunk = formatCommChunk(clock(), tag, data);
      enqueue(() => appendFile(path, chunk));
    },
    flush() {
      return chain;
    },
  };
}
