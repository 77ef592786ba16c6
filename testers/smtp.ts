// The smtp tester (keepalived's SMTP_CHECK, ldirectord's service=smtp, HAProxy's smtpchk): the
// banner must be 220 and EHLO <helo_name> must get 250; with starttls="1" STARTTLS must get 220,
// the TLS handshake complete and EHLO get 250 again; then QUIT, and its reply is awaited.
// SSL="1" speaks SMTP over TLS from the first byte (submissions on port 465).

import type net from 'node:net';
import type tlsModule from 'node:tls';
import { createRequire } from 'node:module';
import {
  AttrError,
  type AttrSpec,
  type AttrValues,
  type GenericSettings,
  type ProbeContext,
  type ProbeResult,
  type ProbeTarget,
  type Tester,
} from './contract.js';
import { compileTls, describeError, probeConnection, ResetOnDestroyStream, TLS_ATTRS, type ConnectionHooks, type ProbeConnection, type TlsParams } from './socket.js';
import { showBytes } from './steps.js';

/** keepalived's SMTP_CHECK default: mail servers already set up for keepalived's checks see the same name. */
export const DEFAULT_HELO_NAME = 'smtpchecker.keepalived.org';

/** A reply longer than this (all its lines) is not an SMTP server's. */
export const REPLY_LIMIT = 16 * 1024;

export interface SmtpParams {
  readonly heloName: string;
  /** SSL="1": TLS from the first byte. */
  readonly tls?: TlsParams;
  /** starttls="1": STARTTLS after the first EHLO. */
  readonly starttls?: TlsParams;
}

/** One complete reply: the code of its last line, and the text of each line. */
export interface SmtpReply {
  readonly code: number;
  readonly lines: readonly string[];
}

export type ReplyParse =
  | { readonly kind: 'reply'; readonly reply: SmtpReply; /** Bytes the reply took. */ readonly end: number }
  | { readonly kind: 'partial' }
  | { readonly kind: 'malformed'; readonly why: string };

/**
 * Reads one reply from the start of `data` [RFC 5321 4.2]: lines "250-text" continue, "250 text"
 * (or a bare "250") ends it. Line ends may be CRLF or LF. Pure.
 */
export function parseReply(data: Buffer): ReplyParse {
  const lines: string[] = [];
  let pos = 0;
  for (;;) {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) return data.length > REPLY_LIMIT ? { kind: 'malformed', why: `reply over ${REPLY_LIMIT} bytes` } : { kind: 'partial' };
    const line = data.toString('latin1', pos, nl > pos && data[nl - 1] === 0x0d ? nl - 1 : nl);
    const m = /^([2-5]\d\d)([ -]|$)/.exec(line);
    if (m === null) return { kind: 'malformed', why: `not an SMTP reply: ${showBytes(data.subarray(pos, nl + 1))}` };
    lines.push(line.slice(4));
    pos = nl + 1;
    if (m[2] !== '-') return { kind: 'reply', reply: { code: Number(m[1]), lines }, end: pos };
    if (pos > REPLY_LIMIT) return { kind: 'malformed', why: `reply over ${REPLY_LIMIT} bytes` };
  }
}

/** Whether an EHLO reply lists the STARTTLS extension (one keyword per line after the greeting). */
export function offersStarttls(reply: SmtpReply): boolean {
  return reply.lines.slice(1).some((l) => l.trim().split(/\s+/, 1)[0]!.toUpperCase() === 'STARTTLS');
}

/** A reply for a log line: its code and first line. */
function showReply(reply: SmtpReply): string {
  const text = reply.lines[0] ?? '';
  return text === '' ? String(reply.code) : `${reply.code} ${showBytes(Buffer.from(text, 'latin1'), 100)}`;
}

// node:tls is loaded when STARTTLS is first used (compileTls has loaded it already for its context).
const require = createRequire(import.meta.url);
let tlsModuleCache: typeof tlsModule | undefined;
function tls(): typeof tlsModule {
  return (tlsModuleCache ??= require('node:tls') as typeof tlsModule);
}

/** Where the dialogue is: what the probe waits for. */
type Phase = 'banner' | 'ehlo' | 'starttls' | 'handshake' | 'ehlo-tls' | 'quit';

const WAITING: Readonly<Record<Phase, string>> = {
  banner: 'the banner',
  ehlo: 'the reply to EHLO',
  starttls: 'the reply to STARTTLS',
  handshake: 'the STARTTLS handshake',
  'ehlo-tls': 'the reply to EHLO over TLS',
  quit: 'the reply to QUIT',
};

const EMPTY = Buffer.alloc(0);

/** One probe's SMTP dialogue. Records its own debugcomm bytes: after STARTTLS the plain text, not the TLS records. */
class SmtpDialogue implements ConnectionHooks {
  private conn: ProbeConnection | undefined;
  private phase: Phase = 'banner';
  private received: Buffer = EMPTY;
  private readonly done: string[] = [];
  private readonly onData = (chunk: Buffer): void => {
    this.comm?.('read', chunk);
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    this.readReplies();
  };
  private readonly onEnd = (): void => {
    this.comm?.('eof', EMPTY);
    const conn = this.conn!;
    // The server may close right after its reply to QUIT; the verdict was decided before.
    if (this.phase === 'quit') conn.finish(true, `${this.done.join(', ')}, connection closed after QUIT`);
    else conn.finish(false, `connection closed by the server before ${WAITING[this.phase]}${this.sofar()}`);
  };

  constructor(
    private readonly p: SmtpParams,
    private readonly comm: ProbeContext['comm'],
  ) {}

  onConnected(conn: ProbeConnection): void {
    this.conn = conn;
    this.listen(conn.socket);
  }

  private listen(socket: net.Socket): void {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
  }

  private send(line: string): void {
    // Bytes the server sent before our command answer nothing we asked (RFC 3207: after STARTTLS
    // they must be discarded): each command starts from an empty buffer.
    this.received = EMPTY;
    const data = Buffer.from(`${line}\r\n`, 'latin1');
    this.comm?.('write', data);
    this.conn!.socket.write(data);
  }

  private readReplies(): void {
    const conn = this.conn!;
    while (!conn.settled && this.phase !== 'handshake') {
      const r = parseReply(this.received);
      if (r.kind === 'partial') return;
      if (r.kind === 'malformed') return conn.finish(false, `malformed ${WAITING[this.phase].replace(/^the /, '')}: ${r.why}${this.sofar()}`);
      this.received = this.received.subarray(r.end);
      this.answer(conn, r.reply);
    }
  }

  /** The dialogue's next move on a complete reply. */
  private answer(conn: ProbeConnection, reply: SmtpReply): void {
    const code = reply.code;
    switch (this.phase) {
      case 'banner':
        if (code !== 220) return conn.finish(false, `banner ${showReply(reply)}, expected 220`);
        this.done.push('banner 220');
        return this.ehlo('ehlo');
      case 'ehlo':
      case 'ehlo-tls':
        if (code !== 250) return conn.finish(false, `EHLO${this.phase === 'ehlo-tls' ? ' over TLS' : ''} rejected: ${showReply(reply)}${this.sofar()}`);
        this.done.push(this.phase === 'ehlo' ? 'EHLO 250' : 'EHLO over TLS 250');
        if (this.phase === 'ehlo' && this.p.starttls !== undefined) {
          if (!offersStarttls(reply)) return conn.finish(false, `STARTTLS not offered in the reply to EHLO${this.sofar()}`);
          this.phase = 'starttls';
          return this.send('STARTTLS');
        }
        this.phase = 'quit';
        return this.send('QUIT');
      case 'starttls':
        if (code !== 220) return conn.finish(false, `STARTTLS rejected: ${showReply(reply)}${this.sofar()}`);
        return this.startTls(conn, this.p.starttls!);
      case 'quit':
        // keepalived takes any reply to QUIT; so do we, and say which it was.
        return conn.finish(true, `${this.done.join(', ')}, QUIT ${code}`);
      case 'handshake':
        return;
    }
  }

  private ehlo(phase: 'ehlo' | 'ehlo-tls'): void {
    this.phase = phase;
    this.send(`EHLO ${this.p.heloName}`);
  }

  private startTls(conn: ProbeConnection, p: TlsParams): void {
    this.phase = 'handshake';
    this.received = EMPTY;
    const raw = conn.raw;
    raw.removeListener('data', this.onData);
    raw.removeListener('end', this.onEnd);
    const secure = tls().connect({
      socket: new ResetOnDestroyStream(raw),
      secureContext: p.context,
      rejectUnauthorized: p.verify,
      ...(p.servername !== undefined ? { servername: p.servername } : {}),
      checkServerIdentity: (_host, cert) => (p.identity !== undefined ? tls().checkServerIdentity(p.identity, cert) : undefined),
    });
    conn.socket = secure;
    secure.on('error', (err: Error) => conn.socketError(err));
    secure.once('close', () => {
      if (this.phase === 'handshake') conn.socketError(new Error('connection closed during the handshake'));
    });
    secure.once('secureConnect', () => {
      if (conn.settled) return;
      this.done.push('STARTTLS');
      this.listen(secure);
      this.ehlo('ehlo-tls');
    });
  }

  /** What passed so far, for a failure detail. */
  private sofar(): string {
    return this.done.length === 0 ? '' : ` (after ${this.done.join(', ')})`;
  }

  deadlineDetail(conn: ProbeConnection): string {
    const what = this.phase === 'handshake' ? 'STARTTLS handshake not complete' : `no ${WAITING[this.phase].replace(/^the /, '')}`;
    const partial = this.received.length > 0 ? `, received ${showBytes(this.received)}` : '';
    return `${what} within ${conn.ctx.timeoutMs} ms${partial}${this.sofar()}`;
  }

  errorDetail(err: Error): string {
    if (this.phase === 'handshake') return `STARTTLS handshake failed: ${describeError(err)}${this.sofar()}`;
    return `${describeError(err)}, waiting for ${WAITING[this.phase]}${this.sofar()}`;
  }
}

/** helo_name: a host name or an address literal ([192.0.2.1]); one word of visible ASCII. */
function checkHeloName(name: string): void {
  if (!/^[\x21-\x7e]+$/.test(name)) {
    throw new AttrError('helo_name', `invalid helo_name ${JSON.stringify(name)}: one host name or [address], no spaces or control characters`);
  }
}

const SMTP_TLS_ATTRS: readonly AttrSpec[] = TLS_ATTRS.map((a) => ({ ...a, doc: a.doc.replace('With SSL="1"', 'With SSL="1" or starttls="1"') }));

export const smtpTester: Tester<SmtpParams> = {
  name: 'smtp',
  attrs: [
    { name: 'helo_name', type: 'string', maxLength: 255, default: DEFAULT_HELO_NAME, doc: `Name sent with EHLO (keepalived's helo_name); default ${DEFAULT_HELO_NAME} as keepalived.` },
    { name: 'starttls', type: 'bool', default: false, doc: 'After EHLO, STARTTLS must be offered and accepted (220), the TLS handshake complete and EHLO over TLS get 250. Not with SSL="1".' },
    ...SMTP_TLS_ATTRS,
  ],

  compile(values: AttrValues, generic: GenericSettings): SmtpParams {
    const heloName = typeof values.helo_name === 'string' && values.helo_name !== '' ? values.helo_name : DEFAULT_HELO_NAME;
    checkHeloName(heloName);
    const starttls = values.starttls === true;
    if (starttls && generic.ssl) {
      throw new AttrError('starttls', 'starttls="1" with SSL="1": the connection is already TLS from the first byte; use one or the other');
    }
    const tls = compileTls(values, generic);
    if (tls !== undefined) return { heloName, tls };
    if (starttls) return { heloName, starttls: compileTls(values, { ...generic, ssl: true })! };
    return { heloName };
  },

  probe(target: ProbeTarget, params: SmtpParams, ctx: ProbeContext): Promise<ProbeResult> {
    return probeSmtp(target, params, ctx);
  },

  start(target: ProbeTarget, params: SmtpParams, ctx: ProbeContext, done: (r: ProbeResult) => void): void {
    void probeSmtp(target, params, ctx).then(done);
  },
};

function probeSmtp(target: ProbeTarget, params: SmtpParams, ctx: ProbeContext): Promise<ProbeResult> {
  // The dialogue records debugcomm itself; the connection would record TLS records after STARTTLS.
  const plainCtx: ProbeContext = { signal: ctx.signal, timeoutMs: ctx.timeoutMs };
  return probeConnection(target, params.tls, plainCtx, new SmtpDialogue(params, ctx.comm));
}
