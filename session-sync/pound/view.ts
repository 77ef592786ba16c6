// One farm's sessions as the master knows them from Pound's frames, and the changes not yet reported.
// Sessions are keyed by listener/service/key, so a session of one service never touches another's
// (v1.0.0 replaced the whole listener's map and wiped the sibling services). A new dump after a
// reconnect is a generation: what it (or the live stream meanwhile) confirms stays, the rest is swept
// once it is complete; the copy is never emptied and refilled. Pure.

import { POUND_FIELD_MAX, type PoundFrame } from './codec.js';
import { httpKey, type Change, type HttpSession, type TableRef } from '../model.js';

export type HttpTable = Extract<TableRef, { kind: 'http' }>;

interface Slot {
  session: HttpSession;
  /** Dump generation that last confirmed it. */
  gen: number;
}

/** A frame the view did not take, and why. `kind` groups the reasons for rate-limited logs. */
export interface Refusal {
  readonly kind: 'unusable session' | 'ignored action';
  readonly why: string;
}

/** Why a session from Pound is not replicated, or undefined. */
export function sessionProblem(key: string, content: string): string | undefined {
  if (key.length === 0) return 'empty key (Pound omits an empty field, so the session cannot be told apart)';
  for (const [what, v] of [['key', key], ['content', content]] as const) {
    if (v.length > POUND_FIELD_MAX) {
      return `${what} of ${v.length} bytes: Pound's sync format carries at most ${POUND_FIELD_MAX} (Pound wrote the length mod 256), so no Pound could take it back; not replicated`;
    }
  }
  return undefined;
}

/** A short, printable form of a key for logs. */
export function keyForLog(key: string): string {
  const shown = key.length > 40 ? `${key.slice(0, 40)}...` : key;
  return JSON.stringify(shown);
}

export class FarmSessions {
  private readonly sessions = new Map<string, Slot>();
  private pending = new Map<string, Change>();
  private gen = 0;
  private dumping = false;

  constructor(readonly table: HttpTable) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Whether a dump is being received (its end has not been declared yet). */
  get inDump(): boolean {
    return this.dumping;
  }

  /** Applies one frame from Pound; returns why it was not taken, if it was not. */
  apply(f: PoundFrame): Refusal | undefined {
    switch (f.action) {
      case 'add':
      case 'update': {
        const why = sessionProblem(f.key, f.content);
        if (why) return { kind: 'unusable session', why: `${f.action} ${f.listener}/${f.service}/${keyForLog(f.key)}: ${why}` };
        const session: HttpSession = {
          kind: 'http',
          listener: f.listener,
          service: f.service,
          key: f.key,
          backend: f.backend,
          content: f.content,
          lastAccess: f.lastAcc * 1000,
        };
        const id = httpKey(f.listener, f.service, f.key);
        const slot = this.sessions.get(id);
        if (slot) {
          slot.gen = this.gen;
          if (sameSession(slot.session, session)) return undefined;
          slot.session = session;
        } else this.sessions.set(id, { session, gen: this.gen });
        this.queue(id, { op: 'upsert', table: this.table, entry: session });
        return undefined;
      }
      case 'delete': {
        const id = httpKey(f.listener, f.service, f.key);
        if (this.sessions.delete(id)) this.queue(id, { op: 'delete', table: this.table, key: id });
        return undefined;
      }
      default:
        return { kind: 'ignored action', why: `Pound sent ${f.action}, which only ssyncd sends; ignored` };
    }
  }

  /** A SYNC_REQUEST went out on a new connection: the dump that follows is a new generation. */
  beginDump(): void {
    this.gen += 1;
    this.dumping = true;
  }

  /** The dump is complete: sessions it did not confirm are gone from Pound. Returns how many. */
  endDump(): number {
    this.dumping = false;
    let n = 0;
    for (const [id, slot] of this.sessions) {
      if (slot.gen === this.gen) continue;
      this.sessions.delete(id);
      this.queue(id, { op: 'delete', table: this.table, key: id });
      n += 1;
    }
    return n;
  }

  /** The next take() reports every session again (the master dropped its copy). */
  reset(): void {
    this.pending = new Map();
    for (const [id, slot] of this.sessions) this.pending.set(id, { op: 'upsert', table: this.table, entry: slot.session });
  }

  /** The changes since the last take, the latest per session. */
  take(): Change[] {
    if (this.pending.size === 0) return [];
    const out = [...this.pending.values()];
    this.pending = new Map();
    return out;
  }

  list(): HttpSession[] {
    return [...this.sessions.values()].map((s) => s.session);
  }

  private queue(id: string, c: Change): void {
    // Re-inserted so the order of reports follows the order of the last changes.
    this.pending.delete(id);
    this.pending.set(id, c);
  }
}

function sameSession(a: HttpSession, b: HttpSession): boolean {
  return a.backend === b.backend && a.content === b.content && a.lastAccess === b.lastAccess;
}
