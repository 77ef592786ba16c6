// The tester plug-in contract: one tester = one probe kind (tcp, http, dns, exec, ...).
// A tester declares its XML attributes, compiles them once into parameters, and probes one real.
// The engine owns scheduling, deadlines, retries and state; a tester only answers "up or down, and why".

/** Types an XML attribute can have; parsing rules follow SureAliveD (see README, XML reference). */
export type AttrType = 'string' | 'port' | 'uint' | 'int' | 'bool';

export interface AttrSpec {
  readonly name: string;
  readonly type: AttrType;
  /** Mandatory on <tester>. On <real> every tester attribute is optional (it overrides the tester's value). */
  readonly required?: boolean;
  /** Maximum length of a string value, in bytes. */
  readonly maxLength?: number;
  /** Value used when the attribute is absent on both <tester> and <real>. */
  readonly default?: string | number | boolean;
  /** One line for the XML reference. */
  readonly doc: string;
}

/** Attribute values after type parsing: strings, numbers (port/uint/int) and booleans. Absent = undefined. */
export type AttrValues = Readonly<Record<string, string | number | boolean | undefined>>;

/** Raised by `Tester.compile` when an attribute value is unusable; the config loader adds file:line. */
export class AttrError extends Error {
  constructor(readonly attr: string, message: string) {
    super(message);
    this.name = 'AttrError';
  }
}

/** Settings of the <tester> element that are not the tester's own but that a tester may need. */
export interface GenericSettings {
  /** SSL="1": run the probe over TLS. */
  readonly ssl: boolean;
  /** Probe deadline in milliseconds (the tester attribute `timeout` in seconds × 1000). */
  readonly timeoutMs: number;
}

/** The endpoint one probe talks to. */
export interface ProbeTarget {
  /** Literal IPv4 or IPv6 address (no brackets). */
  readonly addr: string;
  readonly family: 4 | 6;
  /** Port actually tested (real `testport`, default the tester's `testport`). */
  readonly port: number;
  /** Names, for logs, comm dumps and exec environments. */
  readonly vname: string;
  readonly rname: string;
}

export type CommTag = 'write' | 'read' | 'read_av' | 'eof';

export interface ProbeContext {
  /** Aborted at the probe deadline: the tester must release its socket/process at once. */
  readonly signal: AbortSignal;
  /** Milliseconds from probe start to the deadline. */
  readonly timeoutMs: number;
  /** Present when debugcomm is on for this virtual: record bytes exchanged. */
  readonly comm?: (tag: CommTag, data: Buffer) => void;
}

/** Statistics markers of the original (conntime -1/-2/-3 ms). */
export type ProbeProblem = 'conn' | 'arp' | 'rst';

/**
 * Errors that mean the director is short of something (descriptors, kernel memory, buffers, local
 * ports, processes), not that the real is down. See testers/local-error.ts.
 */
export type LocalErrno = 'EMFILE' | 'ENFILE' | 'ENOBUFS' | 'ENOMEM' | 'EADDRNOTAVAIL' | 'EAGAIN';

export interface ProbeResult {
  readonly ok: boolean;
  /** Why, in a few words: "connection refused", "status 503, expected 200", "exit code 1". */
  readonly detail: string;
  /** Milliseconds from probe start until the connection (and TLS handshake) completed, if it did. */
  readonly connectMs?: number;
  readonly problem?: ProbeProblem;
  /**
   * Set when the probe could not run for a local reason (the director's shortage): no verdict on the
   * real. The engine keeps the real's state, counts the errno and retries at the probe's next slot.
   */
  readonly local?: LocalErrno;
  readonly bytesSent?: number;
  readonly bytesReceived?: number;
}

export interface Tester<P = unknown> {
  /** The value of <tester proto="..."> that selects this tester. */
  readonly name: string;
  readonly attrs: readonly AttrSpec[];
  /**
   * Turn attribute values (tester's, overridden by the real's; defaults applied) into probe
   * parameters. Called once per distinct attribute set at config load, never per probe.
   * Throws AttrError naming the attribute at fault.
   */
  compile(values: AttrValues, generic: GenericSettings): P;
  /**
   * Probe one real. Must settle by the time `ctx.signal` aborts (the engine also enforces the
   * deadline and counts a late probe as failed). Connections are closed with a reset.
   * Must never throw or reject: every failure is a ProbeResult with ok=false.
   */
  probe(target: ProbeTarget, params: P, ctx: ProbeContext): Promise<ProbeResult>;
  /**
   * Optional callback form of `probe`, used by the engine when present: the same rules, the result
   * passed to `done` exactly once. For testers that run thousands of probes a second: a probe's
   * objects live as long as the probe, and a Promise with its reactions per probe is most of them.
   */
  start?(target: ProbeTarget, params: P, ctx: ProbeContext, done: (result: ProbeResult) => void): void;
  /**
   * File descriptors one probe holds at most while it runs (default 1: one socket). The engine's
   * descriptor budget counts these, so probes wait instead of running the process out of descriptors.
   */
  readonly descriptorsPerProbe?: number;
  /** Release shared resources (connection pools, sockets) at shutdown. */
  close?(): Promise<void>;
}

/** What a third-party tester module exports: `export default tester` or `export const tester`. */
export interface TesterModule {
  readonly default?: Tester;
  readonly tester?: Tester;
}
