// The clients of the director-pair lab, run inside the client namespace and driven over stdin/stdout
// (one JSON request per line, one JSON reply per line):
//   {id, op: 'ask', src, port}         one new connection from `src` to the VIP: which real answered
//   {id, op: 'hold', src, port, n}     n long-lived connections, each sending a numbered line every
//                                      200 ms and checking every echo (same real, in order, none lost)
//   {id, op: 'held'}                   how the held connections fared so far
//   {id, op: 'probe', src, port, on}   start/stop polling new connections every 200 ms (outage)
import { createConnection, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

const VIP = process.env['PAIR_VIP'] ?? '10.0.0.100';

/** How one held connection fared (the `held` reply). */
export interface Held {
  real: string;
  sent: number;
  echoed: number;
  /** Longest wait for an echo (ms). */
  maxStallMs: number;
  broken: string;
  wrong: number;
}

function ask(src: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = createConnection({ host: VIP, port, localAddress: src });
    let buf = '';
    const done = (r: string): void => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done('timeout'), timeoutMs);
    s.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(buf.slice(0, nl));
    });
    s.on('error', (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`));
    s.on('close', () => done(buf ? buf.trim() : 'closed'));
  });
}

const held: Held[] = [];

function hold(src: string, port: number): void {
  const h: Held = { real: '', sent: 0, echoed: 0, maxStallMs: 0, broken: '', wrong: 0 };
  held.push(h);
  const s: Socket = createConnection({ host: VIP, port, localAddress: src });
  s.setNoDelay(true);
  let buf = '';
  let waitingSince = 0;
  const timer = setInterval(() => {
    if (h.broken || !h.real) return;
    const now = Date.now();
    if (waitingSince) h.maxStallMs = Math.max(h.maxStallMs, now - waitingSince);
    if (h.echoed < h.sent) return; // one line in flight at a time: a stall is measured, not queued
    h.sent += 1;
    waitingSince = now;
    s.write(`${h.sent}\n`);
  }, 200);
  s.on('data', (b: Buffer) => {
    buf += b.toString('latin1');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!h.real) {
        h.real = line;
        continue;
      }
      if (line === `${h.real} ${h.echoed + 1}`) {
        h.echoed += 1;
        h.maxStallMs = Math.max(h.maxStallMs, Date.now() - waitingSince);
        waitingSince = 0;
      } else h.wrong += 1;
    }
  });
  s.on('error', (e: NodeJS.ErrnoException) => (h.broken ||= `error ${e.code ?? e.message}`));
  s.on('close', () => {
    h.broken ||= 'closed';
    clearInterval(timer);
  });
}

/** New-connection outage: a probe every 200 ms; the longest run of failures (ms) and the count. */
const probe = { on: false, fails: 0, ok: 0, firstFailAt: 0, lastFailAt: 0, longestMs: 0, runStart: 0 };
async function probeLoop(src: string, port: number): Promise<void> {
  while (probe.on) {
    const t0 = Date.now();
    const r = await ask(src, port, 1000);
    const now = Date.now();
    if (r.startsWith('real')) {
      probe.ok += 1;
      if (probe.runStart) probe.longestMs = Math.max(probe.longestMs, now - probe.runStart);
      probe.runStart = 0;
    } else {
      probe.fails += 1;
      probe.firstFailAt ||= t0;
      probe.lastFailAt = now;
      probe.runStart ||= t0;
    }
    await new Promise((r2) => setTimeout(r2, Math.max(0, 200 - (Date.now() - t0))));
  }
}

interface Req {
  id: number;
  op: 'ask' | 'hold' | 'held' | 'probe';
  src: string;
  port: number;
  n?: number;
  on?: boolean;
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = JSON.parse(line) as Req;
  const reply = (result: unknown): void => void process.stdout.write(`${JSON.stringify({ id: req.id, result })}\n`);
  switch (req.op) {
    case 'ask':
      void ask(req.src, req.port).then(reply);
      break;
    case 'hold':
      for (let i = 0; i < (req.n ?? 1); i++) hold(req.src, req.port);
      reply(held.length);
      break;
    case 'held':
      reply(held);
      break;
    case 'probe':
      if (req.on && !probe.on) {
        Object.assign(probe, { on: true, fails: 0, ok: 0, firstFailAt: 0, lastFailAt: 0, longestMs: 0, runStart: 0 });
        void probeLoop(req.src, req.port);
      } else if (!req.on) probe.on = false;
      reply({ ...probe });
      break;
  }
});
rl.on('close', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ id: 0, result: 'ready' })}\n`);
