// A TEST DOUBLE of Zevenet Pound's session-sync socket (`pound -s`, pound_sync.c), for tests and
// benchmarks only: Zevenet Pound is not in Debian or npm. It follows ../shared/specs/ssyncd.md
// [7.1]-[7.3] byte for byte, quirks included, and shares no code with session-sync/pound/:
//   - Pound is the server: the socket path is unlinked, then bound (backlog 2); one client at a time,
//     a new accept replaces the old one (the spec does not say whether Pound closes the old fd; the
//     double closes it);
//   - nothing is sent before SYNC_REQUEST; then every session is dumped as SESS_ADD, and events follow:
//     SESS_ADD on creation, SESS_UPDATE when last_acc (epoch seconds) changes, SESS_DELETE on removal and
//     on expiry;
//   - every frame it sends has the length field 5; an empty farm name, key or content loses its length
//     byte and its data; a length over 255 is written mod 256 with every byte following;
//   - last_acc goes out as the low 32 bits in a u64;
//   - received frames are read as Pound reads them: wait until `len` bytes are there, then walk the u8
//     lengths; SESS_WRITE goes to listener[L] -> service[S] -> backend[B], replacing the key, last_acc 0
//     meaning now, content ignored, nothing echoed; an out-of-range listener or backend is logged as
//     Pound logs it; an out-of-range service (a NULL dereference in Pound) is logged and counted as a
//     fault; other actions are only logged.

import { unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

export interface PoundDoubleConfig {
  /** listeners[L].services[S].backends[B]: each backend's address, which Pound sends as `content`. */
  readonly listeners: readonly { readonly services: readonly { readonly backends: readonly string[] }[] }[];
}

/**
 * The farm the tests use: two services under listener 0 (sibling sessions), and 300 backends under
 * listener 1 (ordinals over 255, of which v1.0.0 sent only the low byte).
 */
export const TEST_POUND_CONFIG: PoundDoubleConfig = {
  listeners: [
    { services: [{ backends: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] }, { backends: ['10.0.1.1', '10.0.1.2'] }] },
    { services: [{ backends: Array.from({ length: 300 }, (_, i) => `10.1.${i >> 8}.${i & 255}`) }] },
  ],
};

export interface DoubleSession {
  readonly listener: number;
  readonly service: number;
  readonly key: string;
  readonly backend: number;
  /** Epoch seconds. */
  readonly lastAcc: number;
}

export interface PoundDoubleOptions {
  readonly path: string;
  /** The farm's `Name`, which Pound puts in every frame. */
  readonly name: string;
  readonly config: PoundDoubleConfig;
  /** Sessions present from the start (no events). */
  readonly sessions?: readonly DoubleSession[];
  /** Epoch seconds. */
  readonly now?: () => number;
}

export const SYNC_REQUEST = 1;
export const SESS_ADD = 2;
export const SESS_DELETE = 3;
export const SESS_UPDATE = 4;
export const SESS_WRITE = 5;

interface Client {
  readonly sock: Socket;
  listenMode: boolean;
  inbox: Buffer;
}

export class PoundDouble {
  /** services[L][S]: key -> session. */
  private readonly table: Map<string, { backend: number; lastAcc: number }>[][];
  private client: Client | undefined;
  private readonly now: () => number;
  /** What Pound would have written to its log. */
  readonly logs: string[] = [];
  accepted = 0;
  writesTaken = 0;
  /** SESS_WRITE frames that would have crashed a real Pound (out-of-range service). */
  faults = 0;
  /** Frames it could not read (our writer must never cause one). */
  badFrames = 0;

  private constructor(
    private readonly server: Server,
    private readonly opts: PoundDoubleOptions,
  ) {
    this.now = opts.now ?? (() => Math.floor(Date.now() / 1000));
    this.table = opts.config.listeners.map((l) => l.services.map(() => new Map()));
    for (const s of opts.sessions ?? []) this.slot(s.listener, s.service).set(s.key, { backend: s.backend, lastAcc: s.lastAcc });
  }

  static async start(opts: PoundDoubleOptions): Promise<PoundDouble> {
    try {
      unlinkSync(opts.path);
    } catch {
      /* nothing there */
    }
    const server = createServer();
    const d = new PoundDouble(server, opts);
    server.on('connection', (s) => d.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: opts.path, backlog: 2 }, () => resolve());
    });
    return d;
  }

  /** Whether a client has sent SYNC_REQUEST on the current connection. */
  get streaming(): boolean {
    return this.client?.listenMode ?? false;
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Every session, ordered by listener, service and key. */
  sessions(): DoubleSession[] {
    const out: DoubleSession[] = [];
    this.table.forEach((services, listener) =>
      services.forEach((m, service) => {
        for (const [key, v] of m) out.push({ listener, service, key, backend: v.backend, lastAcc: v.lastAcc });
      }),
    );
    return out.sort((a, b) => a.listener - b.listener || a.service - b.service || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  get size(): number {
    return this.table.reduce((n, services) => n + services.reduce((m, s) => m + s.size, 0), 0);
  }

  /** A client's first request creates a session: SESS_ADD. */
  add(listener: number, service: number, key: string, backend: number, lastAcc = this.now()): void {
    this.slot(listener, service).set(key, { backend, lastAcc });
    this.emit(SESS_ADD, listener, service, backend, key, lastAcc);
  }

  /** A request that finds the session: SESS_UPDATE only when last_acc changes (once a second at most). */
  touch(listener: number, service: number, key: string, lastAcc = this.now()): boolean {
    const v = this.slot(listener, service).get(key);
    if (!v || v.lastAcc === lastAcc) return false;
    v.lastAcc = lastAcc;
    this.emit(SESS_UPDATE, listener, service, v.backend, key, lastAcc);
    return true;
  }

  /** Explicit removal (the backend went down, a control command): SESS_DELETE. */
  remove(listener: number, service: number, key: string): boolean {
    const m = this.slot(listener, service);
    const v = m.get(key);
    if (!v) return false;
    m.delete(key);
    this.emit(SESS_DELETE, listener, service, v.backend, key, 0);
    return true;
  }

  /** Pound's expiry: sessions idle for longer than `ttl` seconds go, each with a SESS_DELETE. */
  expire(ttl: number): number {
    const limit = this.now() - ttl;
    let n = 0;
    this.table.forEach((services, listener) =>
      services.forEach((m, service) => {
        for (const [key, v] of [...m]) {
          if (v.lastAcc >= limit) continue;
          m.delete(key);
          this.emit(SESS_DELETE, listener, service, v.backend, key, 0);
          n += 1;
        }
      }),
    );
    return n;
  }

  /** Raw bytes to the current client (tests of what Pound might send). */
  rawSend(bytes: Buffer): void {
    this.client?.sock.write(bytes);
  }

  /** Several events in one write (benchmarks). */
  batch(run: () => void): void {
    const s = this.client?.sock;
    s?.cork();
    try {
      run();
    } finally {
      s?.uncork();
    }
  }

  /** Resolves when what was written so far has left for the client. */
  async flushed(): Promise<void> {
    const s = this.client?.sock;
    if (s && s.writableLength > 0) await new Promise<void>((r) => s.once('drain', () => r()));
  }

  /** Pound stopping: the connection and the listening socket go. */
  async close(): Promise<void> {
    this.client?.sock.destroy();
    this.client = undefined;
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private slot(listener: number, service: number): Map<string, { backend: number; lastAcc: number }> {
    const m = this.table[listener]?.[service];
    if (!m) throw new Error(`the double's config has no listener ${listener} service ${service}`);
    return m;
  }

  private accept(sock: Socket): void {
    this.accepted += 1;
    this.client?.sock.destroy();
    const c: Client = { sock, listenMode: false, inbox: Buffer.alloc(0) };
    this.client = c;
    sock.on('data', (chunk: Buffer) => {
      c.inbox = Buffer.concat([c.inbox, chunk]);
      this.readFrames(c);
    });
    sock.on('end', () => sock.end());
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (this.client === c) this.client = undefined;
    });
  }

  private emit(action: number, listener: number, service: number, backend: number, key: string, lastAcc: number): void {
    const c = this.client;
    if (!c || !c.listenMode) return;
    c.sock.write(this.frame(action, listener, service, backend, key, lastAcc));
  }

  private frame(action: number, listener: number, service: number, backend: number, key: string, lastAcc: number): Buffer {
    const content = this.opts.config.listeners[listener]?.services[service]?.backends[backend] ?? '';
    return poundStyleFrame({ action, farm: this.opts.name, listener, service, backend, key, content, lastAcc });
  }

  private dump(c: Client): void {
    c.sock.cork();
    this.table.forEach((services, listener) =>
      services.forEach((m, service) => {
        for (const [key, v] of m) c.sock.write(this.frame(SESS_ADD, listener, service, v.backend, key, v.lastAcc));
      }),
    );
    c.sock.uncork();
  }

  /** Pound's reading: a frame is taken once `len` bytes are there, then its fields are walked. */
  private readFrames(c: Client): void {
    for (;;) {
      const b = c.inbox;
      if (b.length < 5) return;
      if (b[0] !== 0xef || b[1] !== 0xab || b[2] !== 0x06) {
        this.badFrames += 1;
        this.logs.push(`thread_sync: bad frame header ${b.subarray(0, 5).toString('hex')}, input dropped`);
        c.inbox = Buffer.alloc(0);
        return;
      }
      if (b.length < b.readUInt16LE(3)) return;
      const f = walk(b);
      if (f === undefined) return; // fields run past what arrived: wait
      c.inbox = b.subarray(f.size);
      this.take(c, f);
    }
  }

  private take(c: Client, f: Received): void {
    if (f.action === SYNC_REQUEST) {
      c.listenMode = true;
      this.dump(c);
      return;
    }
    if (f.action !== SESS_WRITE) {
      this.logs.push(`thread_sync: action ${f.action} received, ignored`);
      return;
    }
    this.writesTaken += 1;
    const listener = this.table[f.listener];
    if (!listener) {
      this.logs.push('thread_sync: no listener found');
      return;
    }
    const service = listener[f.service];
    if (!service) {
      this.faults += 1;
      this.logs.push(`thread_sync: service ${f.service} out of range (a real Pound dereferences NULL here)`);
      return;
    }
    if (this.opts.config.listeners[f.listener]!.services[f.service]!.backends[f.backend] === undefined) {
      this.logs.push('thread_sync: no backend found');
      return;
    }
    // listen_mode is suspended while a write is applied: nothing is echoed.
    service.set(f.key, { backend: f.backend, lastAcc: f.lastAcc === 0 ? this.now() : f.lastAcc });
  }
}

/** One frame as Pound writes it: len 5, empty fields omitted, lengths mod 256, last_acc in 32 bits. */
export function poundStyleFrame(f: {
  readonly action: number;
  readonly farm: string;
  readonly listener: number;
  readonly service: number;
  readonly backend: number;
  readonly key: string;
  readonly content?: string;
  readonly lastAcc?: number;
}): Buffer {
  const parts: Buffer[] = [Buffer.from([0xef, 0xab, 0x06, 0x05, 0x00, f.action])];
  const field = (s: string): void => {
    if (s.length === 0) return;
    const b = Buffer.from(s, 'latin1');
    parts.push(Buffer.from([b.length & 0xff]), b);
  };
  field(f.farm);
  if (f.action !== SYNC_REQUEST) {
    const ords = Buffer.alloc(12);
    ords.writeUInt32LE(f.listener, 0);
    ords.writeUInt32LE(f.service, 4);
    ords.writeUInt32LE(f.backend, 8);
    parts.push(ords);
    field(f.key);
  }
  if (f.action === SESS_ADD || f.action === SESS_UPDATE || f.action === SESS_WRITE) {
    field(f.content ?? '');
    const t = Buffer.alloc(8);
    t.writeUInt32LE((f.lastAcc ?? 0) >>> 0, 0);
    parts.push(t);
  }
  return Buffer.concat(parts);
}

interface Received {
  size: number;
  action: number;
  listener: number;
  service: number;
  backend: number;
  key: string;
  lastAcc: number;
}

/** Walks one received frame's u8-length fields; undefined when they run past the data. */
function walk(b: Buffer): Received | undefined {
  let p = 5;
  const need = (n: number): boolean => p + n <= b.length;
  if (!need(2)) return undefined;
  const action = b[p]!;
  p += 1 + 1 + b[p + 1]!; // farm name: read and ignored
  const r: Received = { size: 0, action, listener: 0, service: 0, backend: 0, key: '', lastAcc: 0 };
  if (action !== SYNC_REQUEST) {
    if (!need(13)) return undefined;
    r.listener = b.readUInt32LE(p);
    r.service = b.readUInt32LE(p + 4);
    r.backend = b.readUInt32LE(p + 8);
    const k = b[p + 12]!;
    p += 13;
    if (!need(k)) return undefined;
    r.key = b.toString('latin1', p, p + k);
    p += k;
    if (action === SESS_ADD || action === SESS_UPDATE || action === SESS_WRITE) {
      if (!need(1)) return undefined;
      p += 1 + b[p]!; // content: ignored
      if (!need(8)) return undefined;
      r.lastAcc = b.readUInt32LE(p);
      p += 8;
    }
  }
  if (p > b.length) return undefined;
  r.size = p;
  return r;
}
