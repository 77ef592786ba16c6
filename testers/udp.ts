// The udp tester (issue 15; keepalived's UDP_CHECK with payload/require_reply): one datagram to the
// real over a connected UDP socket. An ICMP port unreachable (ECONNREFUSED on the connected socket)
// means the port is closed: down at once. A reply decides at once: up, or down when it does not
// match `expect`/`expect_hex`. Silence: down when a reply is required (`require_reply`, or implied by
// an expectation), else up (keepalived's semantics without require_reply: nothing said the port is
// closed). That "up" is given shortly before the deadline (see silenceMs), since the engine judges a
// probe still running at its deadline as failed.

import { AttrError, type AttrValues, type GenericSettings, type ProbeContext, type ProbeResult, type ProbeTarget, type Tester } from './contract.js';
import { DatagramProbe, startDatagramProbe } from './datagram.js';

/** What a udp probe does, in its failure details ("cannot send the datagram: ..."). */
const SEND = 'send the datagram';

export interface UdpParams {
  readonly payload: Buffer;
  /** A reply must come (require_reply, or implied by expect/expect_hex). */
  readonly requireReply: boolean;
  readonly expect?: RegExp;
  /** The reply must start with these bytes, compared where the mask is 0xff (x = any nibble). */
  readonly expectHex?: { readonly bytes: Buffer; readonly mask: Buffer };
}

/**
 * Hex text as bytes (keepalived's format): hex digits, octets optionally separated by spaces or
 * tabs, a single digit before a space being one octet ("1 ff" = 01 ff). With `wildcards`, an x or X
 * is a nibble that matches anything (mask 0 for those bits).
 */
export function parseHex(text: string, attr: string, wildcards: boolean): { bytes: Buffer; mask: Buffer } {
  const bytes: number[] = [];
  const mask: number[] = [];
  const nibble = (c: string): [value: number, mask: number] => {
    if (/^[0-9a-fA-F]$/.test(c)) return [Number.parseInt(c, 16), 0xf];
    if (wildcards && (c === 'x' || c === 'X')) return [0, 0];
    throw new AttrError(attr, `"${c}" is not a hex digit${wildcards ? ' or x' : ''} in "${text}"`);
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    let [v, m] = nibble(c);
    i++;
    const next = text[i];
    if (next !== undefined && next !== ' ' && next !== '\t') {
      const [v2, m2] = nibble(next);
      v = (v << 4) | v2;
      m = (m << 4) | m2;
      i++;
    }
    bytes.push(v);
    mask.push(m);
  }
  if (bytes.length === 0) throw new AttrError(attr, `no bytes in "${text}"`);
  return { bytes: Buffer.from(bytes), mask: Buffer.from(mask) };
}

/**
 * Payload text with C escapes: \n \r \t \0 \\ and \xHH; any other backslash is kept as it is.
 * Characters above U+00FF are sent as UTF-8.
 */
export function parseText(text: string): Buffer {
  const parts: Buffer[] = [];
  let plain = '';
  const flush = (): void => {
    if (plain !== '') parts.push(Buffer.from(plain, 'utf8'));
    plain = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\' || i + 1 >= text.length) {
      plain += c;
      continue;
    }
    const e = text[i + 1]!;
    const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '0': '\0', '\\': '\\' };
    if (simple[e] !== undefined) {
      plain += simple[e];
      i++;
    } else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
      flush();
      parts.push(Buffer.from([Number.parseInt(text.slice(i + 2, i + 4), 16)]));
      i += 3;
    } else {
      plain += c;
    }
  }
  flush();
  return Buffer.concat(parts);
}

/**
 * The `expect` pattern: a JavaScript regular expression, or "/source/flags" for flags (i, m, s, u;
 * not g or y, whose lastIndex would carry from one probe to the next).
 */
export function compilePattern(text: string): RegExp {
  const slashed = /^\/(.*)\/([a-z]*)$/s.exec(text);
  const source = slashed !== null ? slashed[1]! : text;
  const flags = slashed !== null ? slashed[2]! : '';
  if (/[gy]/.test(flags)) throw new AttrError('expect', `flag "${flags.replace(/[^gy]/g, '')}" is not allowed in "${text}" (i, m, s and u are)`);
  try {
    return new RegExp(source, flags);
  } catch (err) {
    throw new AttrError('expect', `not a regular expression: ${(err as Error).message}`);
  }
}

/** Whether `reply` starts with the expected bytes (compared under the mask). */
export function matchesHex(reply: Buffer, want: { readonly bytes: Buffer; readonly mask: Buffer }): boolean {
  if (reply.length < want.bytes.length) return false;
  for (let i = 0; i < want.bytes.length; i++) if (((reply[i]! ^ want.bytes[i]!) & want.mask[i]!) !== 0) return false;
  return true;
}

/**
 * When silence is taken for "up" (no reply required): shortly before the deadline, so the verdict
 * is in before the engine judges the probe late. 10 % of the timeout before it, at least 10 ms and
 * at most 500 ms.
 */
export function silenceMs(timeoutMs: number): number {
  return Math.max(0, timeoutMs - Math.min(500, Math.max(10, timeoutMs / 10)));
}

/** A reply for the detail: printable text as is, the rest as \xHH, at most 64 bytes. */
function show(reply: Buffer): string {
  const head = reply.subarray(0, 64);
  let out = '';
  for (const b of head) out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return `"${out}"${reply.length > head.length ? `... (${reply.length} bytes)` : ''}`;
}

/** One probe: the datagram, then a reply, an ICMP error or silence. */
class UdpProbe extends DatagramProbe {
  private received = 0;
  private silence: NodeJS.Timeout | undefined;

  constructor(
    target: ProbeTarget,
    private readonly p: UdpParams,
    ctx: ProbeContext,
    resolve: (r: ProbeResult) => void,
  ) {
    super(target, ctx, resolve, SEND);
    if (!p.requireReply) this.silence = setTimeout(() => this.quiet(), silenceMs(ctx.timeoutMs));
  }

  protected datagram(): Buffer {
    return this.p.payload;
  }

  protected reply(msg: Buffer): void {
    this.received += msg.length;
    // The socket is connected: only the real's address and port can send us datagrams.
    if (this.p.expectHex !== undefined && !matchesHex(msg, this.p.expectHex)) {
      return this.finish(false, `reply ${show(msg)} does not start with the expected bytes`);
    }
    if (this.p.expect !== undefined && !this.p.expect.test(msg.toString('latin1'))) {
      return this.finish(false, `reply ${show(msg)} does not match /${this.p.expect.source}/`);
    }
    this.finish(true, this.p.expect !== undefined || this.p.expectHex !== undefined ? `reply matches (${msg.length} bytes)` : `reply received (${msg.length} bytes)`);
  }

  /** No reply required and none came, nor an ICMP error: the port is taken to be open. */
  private quiet(): void {
    if (this.sentMs === undefined) return this.finish(false, `datagram not sent within ${this.ctx.timeoutMs} ms`, 'conn');
    this.finish(true, `no reply and no ICMP port unreachable within ${Math.round(silenceMs(this.ctx.timeoutMs))} ms`);
  }

  protected deadline(): void {
    if (!this.p.requireReply) return this.quiet();
    if (this.sentMs === undefined) this.finish(false, `datagram not sent within ${this.ctx.timeoutMs} ms`, 'conn');
    else this.finish(false, `no reply within ${this.ctx.timeoutMs} ms`);
  }

  protected override extras(): Partial<ProbeResult> {
    return { bytesSent: this.sentMs !== undefined ? this.p.payload.length : 0, bytesReceived: this.received };
  }

  protected override release(): void {
    if (this.silence !== undefined) clearTimeout(this.silence);
  }
}

export const udpTester: Tester<UdpParams> = {
  name: 'udp',
  attrs: [
    { name: 'payload', type: 'string', maxLength: 4095, doc: 'Datagram to send, as text with C escapes (\\n \\r \\t \\0 \\\\ \\xHH); default empty (a zero-length datagram).' },
    { name: 'payload_hex', type: 'string', maxLength: 8191, doc: 'Datagram to send, in hex ("0a 1b2c"), instead of payload (keepalived\'s UDP_CHECK payload).' },
    { name: 'require_reply', type: 'bool', default: false, doc: 'A reply must come before the deadline; default off: silence is up, only an ICMP port unreachable is down.' },
    { name: 'expect', type: 'string', maxLength: 1023, doc: 'Regular expression (JavaScript; "/re/i" for flags) the reply must match, read as Latin-1 text; implies require_reply.' },
    { name: 'expect_hex', type: 'string', maxLength: 8191, doc: 'Bytes the reply must start with, in hex, x = any nibble (keepalived\'s require_reply <hex>); implies require_reply.' },
  ],

  compile(values: AttrValues, generic: GenericSettings): UdpParams {
    if (generic.ssl) throw new AttrError('SSL', 'the udp tester has no TLS (SSL="1" is not supported)');
    const str = (name: string): string | undefined => (typeof values[name] === 'string' && values[name] !== '' ? (values[name] as string) : undefined);
    const text = str('payload');
    const hex = str('payload_hex');
    if (text !== undefined && hex !== undefined) throw new AttrError('payload_hex', 'payload and payload_hex are exclusive: give one');
    const payload = hex !== undefined ? parseHex(hex, 'payload_hex', false).bytes : text !== undefined ? parseText(text) : Buffer.alloc(0);
    if (payload.length > 65507) throw new AttrError(hex !== undefined ? 'payload_hex' : 'payload', `payload of ${payload.length} bytes is larger than a UDP datagram can be`);
    const pattern = str('expect');
    const expect = pattern !== undefined ? compilePattern(pattern) : undefined;
    const expectHexText = str('expect_hex');
    const expectHex = expectHexText !== undefined ? parseHex(expectHexText, 'expect_hex', true) : undefined;
    const requireReply = values.require_reply === true || expect !== undefined || expectHex !== undefined;
    return { payload, requireReply, ...(expect !== undefined ? { expect } : {}), ...(expectHex !== undefined ? { expectHex } : {}) };
  },

  probe(target: ProbeTarget, params: UdpParams, ctx: ProbeContext): Promise<ProbeResult> {
    return new Promise<ProbeResult>((resolve) => startDatagramProbe(resolve, SEND, () => new UdpProbe(target, params, ctx, resolve)));
  },
};
