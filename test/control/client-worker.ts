// A control-port client running on its own thread, so that the test's thread (where the daemon runs)
// only serves. Sends each connection's bytes, then a sentinel line, and waits for its echo; reports
// progress through shared memory so the main thread can tell, at any moment, whether it is done.

import { connect } from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface WorkerConnection {
  /** Raw bytes to send, in order, each as one write. */
  readonly chunks: readonly Uint8Array[];
  /** Sent last as `<sentinel>\n`; its `Invalid request! [<sentinel>]` echo means every earlier line was answered. */
  readonly sentinel: string;
}

export interface WorkerJob {
  readonly port: number;
  readonly connections: readonly WorkerConnection[];
  /** Return everything received (for byte-exact checks of floods). */
  readonly returnOutput: boolean;
  /**
   * Int32 slots, two per connection: [2i] bytes received so far, [2i+1] 1 once the connection is done
   * (sentinel echoed or connection closed). Written with Atomics as data arrives.
   */
  readonly progress?: SharedArrayBuffer;
}

export interface WorkerResult {
  readonly bytes: number;
  readonly closedEarly: boolean;
  readonly output?: string;
}

/** Progress of connection `i` as the worker last stored it. */
export function progressOf(progress: SharedArrayBuffer, i: number): { bytes: number; done: boolean } {
  const a = new Int32Array(progress);
  return { bytes: Atomics.load(a, 2 * i), done: Atomics.load(a, 2 * i + 1) === 1 };
}

function run(port: number, conn: WorkerConnection, returnOutput: boolean, slots: Int32Array | null, i: number): Promise<WorkerResult> {
  return new Promise((resolve) => {
    const echo = Buffer.from(`Invalid request! [${conn.sentinel}]\n`);
    const received: Buffer[] = [];
    let bytes = 0;
    let tail = Buffer.alloc(0);
    let done = false;
    const finish = (closedEarly: boolean): void => {
      if (done) return;
      done = true;
      if (slots) Atomics.store(slots, 2 * i + 1, 1);
      socket.destroy();
      resolve({ bytes, closedEarly, ...(returnOutput ? { output: Buffer.concat(received).toString('utf8') } : {}) });
    };
    const socket = connect({ port, host: '127.0.0.1' }, () => {
      for (const c of conn.chunks) socket.write(c);
      socket.write(`${conn.sentinel}\n`);
    });
    socket.on('data', (d: Buffer) => {
      bytes += d.length;
      if (slots) Atomics.store(slots, 2 * i, bytes);
      if (returnOutput) received.push(d);
      // Only the last bytes can hold the echo (it is the last reply): keep a short tail.
      tail = Buffer.concat([tail, d]).subarray(-(echo.length + d.length));
      if (tail.subarray(-echo.length).equals(echo)) finish(false);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

// Mocha loads every file of the directory as a spec: do nothing unless started as a worker.
if (!isMainThread && parentPort) {
  const job = workerData as WorkerJob;
  const slots = job.progress ? new Int32Array(job.progress) : null;
  const results = await Promise.all(job.connections.map((c, i) => run(job.port, c, job.returnOutput, slots, i)));
  parentPort.postMessage(results);
}
