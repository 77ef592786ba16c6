// The dns tester [spec 6.3]: one query over a connected UDP socket; up iff the matching reply has
// answers (ANCOUNT != 0), and, with `expect`, an answer of the asked type carries that value.

import net from 'node:net';
import { randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Answer, RecordClass, RecordType } from 'dns-packet';
import {
  AttrError,
  type AttrValues,
  type GenericSettings,
  type ProbeContext,
  type ProbeResult,
  type ProbeTarget,
  type Tester,
} from './contract.js';
import { DatagramProbe, startDatagramProbe } from './datagram.js';

// dns-packet (~9 MB of RSS with its dependencies) is loaded when a dns tester is configured.
const require = createRequire(import.meta.url);
let dnsPacketModule: typeof import('dns-packet') | undefined;
function dnsPacket(): typeof import('dns-packet') {
  return (dnsPacketModule ??= require('dns-packet') as typeof import('dns-packet'));
}

const QTYPES: readonly RecordType[] = [
  'A', 'AAAA', 'CAA', 'CNAME', 'DNAME', 'DNSKEY', 'DS', 'HINFO', 'MX', 'NAPTR', 'NS', 'PTR', 'RP', 'SOA', 'SRV', 'SSHFP', 'TLSA', 'TXT',
];
const QCLASSES: readonly RecordClass[] = ['IN', 'CH', 'HS', 'ANY'];
/** Types whose answer data `expect` can be compared with. */
const EXPECTABLE = new Set<RecordType>(['A', 'AAAA', 'CNAME', 'DNAME', 'NS', 'PTR', 'MX', 'TXT']);

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const QR = 0x8000;

export interface DnsParams {
  /** The query with ID 0; each probe copies it and writes a random ID. */
  readonly query: Buffer;
  readonly name: string;
  readonly qtype: RecordType;
  /** Normalised expected answer value (see normalise()). */
  readonly expect?: string;
}

/** Canonical text of an IPv6 address (lower case, all 8 groups, no leading zeros) for comparison. */
function canonicalIPv6(addr: string): string {
  let text = addr.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => Number.parseInt(g, 16).toString(16)).join(':');
}

/** How `expect` and answer data are compared: addresses canonical, names case-blind without the final dot. */
function normalise(qtype: RecordType, value: string): string {
  if (qtype === 'AAAA') return canonicalIPv6(value);
  if (qtype === 'A' || qtype === 'TXT') return value;
  return value.toLowerCase().replace(/\.$/, '');
}

function answerValue(a: Answer): string | undefined {
  switch (a.type) {
    case 'A':
    case 'AAAA':
    case 'CNAME':
    case 'DNAME':
    case 'NS':
    case 'PTR':
      return normalise(a.type, a.data);
    case 'MX':
      return normalise('MX', a.data.exchange);
    case 'TXT': {
      const parts = Array.isArray(a.data) ? a.data : [a.data];
      return parts.map((p) => (typeof p === 'string' ? p : p.toString())).join('');
    }
    default:
      return undefined;
  }
}

function compileName(request: string): string {
  // A trailing dot is accepted (the original sent a malformed packet for it).
  const name = request.endsWith('.') ? request.slice(0, -1) : request;
  if (name.length > 253) throw new AttrError('request', `domain name too long (${name.length} > 253): ${request}`);
  if (name !== '') {
    for (const label of name.split('.')) {
      if (label === '') throw new AttrError('request', `empty label in domain name "${request}"`);
      if (Buffer.byteLength(label) > 63) throw new AttrError('request', `label longer than 63 bytes in "${request}"`);
    }
  }
  return name;
}

/** One probe: the query with its own ID, then the matching answer. */
class DnsQuery extends DatagramProbe {
  private readonly id = randomInt(0x10000);
  private ignored = 0;

  constructor(
    target: ProbeTarget,
    private readonly p: DnsParams,
    ctx: ProbeContext,
    resolve: (r: ProbeResult) => void,
  ) {
    super(target, ctx, resolve, 'query');
  }

  protected datagram(): Buffer {
    const query = Buffer.from(this.p.query);
    query.writeUInt16BE(this.id, 0);
    return query;
  }

  protected reply(msg: Buffer): void {
    // Only the answer to our query counts: other datagrams (late replies to earlier probes,
    // spoofing attempts) are ignored, unlike the original which took the first 12 bytes it got.
    if (msg.length < 12 || msg.readUInt16BE(0) !== this.id || (msg.readUInt16BE(2) & QR) === 0) {
      this.ignored++;
      return;
    }
    const rcode = msg.readUInt16BE(2) & 0x0f;
    const ancount = msg.readUInt16BE(6);
    const rname = RCODES[rcode] ?? `rcode ${rcode}`;
    if (ancount === 0) return this.finish(false, `no answer (${rname})`);
    if (this.p.expect === undefined) return this.finish(true, `${ancount} answer(s) (${rname})`);
    let answers: Answer[];
    try {
      answers = dnsPacket().decode(msg).answers ?? [];
    } catch (err) {
      return this.finish(false, `malformed reply: ${(err as Error).message}`);
    }
    const seen: string[] = [];
    for (const a of answers) {
      if (a.type !== this.p.qtype) continue;
      const value = answerValue(a);
      if (value === this.p.expect) return this.finish(true, `${this.p.qtype} ${this.p.expect} found`);
      if (value !== undefined) seen.push(value);
    }
    this.finish(false, `no ${this.p.qtype} ${this.p.expect} in answer${seen.length > 0 ? ` (got ${seen.join(', ')})` : ''}`);
  }

  protected deadline(): void {
    const more = this.ignored > 0 ? ` (${this.ignored} unrelated datagram(s) ignored)` : '';
    if (this.sentMs === undefined) this.finish(false, `query not sent within ${this.ctx.timeoutMs} ms`, 'conn');
    else this.finish(false, `no reply within ${this.ctx.timeoutMs} ms${more}`);
  }
}

export const dnsTester: Tester<DnsParams> = {
  name: 'dns',
  attrs: [
    { name: 'request', type: 'string', required: true, maxLength: 255, doc: 'Domain name to query ("example.com" or "example.com.").' },
    { name: 'qtype', type: 'string', maxLength: 15, default: 'SOA', doc: 'Query type: SOA (default, as SureAliveD), A, AAAA, NS, MX, TXT, CNAME, PTR, SRV, ...' },
    { name: 'qclass', type: 'string', maxLength: 7, default: 'IN', doc: 'Query class: IN (default), CH, HS or ANY.' },
    { name: 'expect', type: 'string', maxLength: 255, doc: 'An answer of type qtype must have this value (an address for A/AAAA, a name for CNAME/NS/PTR/MX, the text for TXT).' },
  ],

  compile(values: AttrValues, _generic: GenericSettings): DnsParams {
    if (typeof values.request !== 'string' || values.request === '') throw new AttrError('request', 'request is required');
    const name = compileName(values.request);
    const qtypeText = (typeof values.qtype === 'string' && values.qtype !== '' ? values.qtype : 'SOA').toUpperCase();
    const qtype = QTYPES.find((t) => t === qtypeText);
    if (qtype === undefined) throw new AttrError('qtype', `unknown qtype "${values.qtype}" (one of ${QTYPES.join(', ')})`);
    const qclassText = (typeof values.qclass === 'string' && values.qclass !== '' ? values.qclass : 'IN').toUpperCase();
    const qclass = QCLASSES.find((c) => c === qclassText);
    if (qclass === undefined) throw new AttrError('qclass', `unknown qclass "${values.qclass}" (one of ${QCLASSES.join(', ')})`);
    let expect: string | undefined;
    if (typeof values.expect === 'string' && values.expect !== '') {
      if (!EXPECTABLE.has(qtype)) throw new AttrError('expect', `expect is not supported for qtype ${qtype} (only ${[...EXPECTABLE].join(', ')})`);
      if (qtype === 'A' && net.isIPv4(values.expect) === false) throw new AttrError('expect', `"${values.expect}" is not an IPv4 address`);
      if (qtype === 'AAAA' && net.isIPv6(values.expect) === false) throw new AttrError('expect', `"${values.expect}" is not an IPv6 address`);
      expect = normalise(qtype, values.expect);
    }
    // RD clear (we ask the real itself, not its resolver); AA clear, unlike the original's odd AA=1.
    const query = dnsPacket().encode({ type: 'query', id: 0, flags: 0, questions: [{ type: qtype, class: qclass, name }] });
    return { query, name, qtype, ...(expect !== undefined ? { expect } : {}) };
  },

  probe(target: ProbeTarget, params: DnsParams, ctx: ProbeContext): Promise<ProbeResult> {
    return new Promise<ProbeResult>((resolve) => startDatagramProbe(resolve, 'query', () => new DnsQuery(target, params, ctx, resolve)));
  },
};
