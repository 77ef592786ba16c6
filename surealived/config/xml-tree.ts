// XML text -> a small element tree with line numbers for every element and attribute.
// fast-xml-parser checks the syntax and gives the element tree; each start tag is then scanned for
// its attributes, so an error can point at the line of the attribute at fault.

import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface XmlAttr {
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

export interface XmlElement {
  readonly tag: string;
  readonly line: number;
  /** In source order. Names are case-sensitive. */
  readonly attrs: ReadonlyMap<string, XmlAttr>;
  /** Element children only; text, comments and processing instructions are ignored (as libxml2's users did). */
  readonly children: readonly XmlElement[];
}

export type XmlParse =
  | { readonly ok: true; readonly root: XmlElement }
  | { readonly ok: false; readonly line: number; readonly message: string };

type OrderedNode = Record<string, unknown>;

const META = XMLParser.getMetaDataSymbol() as unknown as string;

/** Parse a whole document; exactly one root element is required (as in XML and libxml2). */
export function parseXml(source: string): XmlParse {
  const text = source.charCodeAt(0) === 0xfeff ? ` ${source.slice(1)}` : source; // keep offsets
  const lines = lineStarts(text);
  if (text.trim() === '') return { ok: false, line: 1, message: 'empty document: no root element' };
  // Characters XML 1.0 forbids (libxml2 refused them; fast-xml-parser does not look).
  const badChar = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.exec(text);
  if (badChar) return { ok: false, line: lineOf(lines, badChar.index), message: `malformed XML: invalid character U+${badChar[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}` };

  const valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  if (valid !== true) {
    const noRoot = valid.err.code === 'InvalidXml' && /start tag expected/i.test(valid.err.msg);
    return { ok: false, line: valid.err.line, message: noRoot ? 'no root element' : `malformed XML: ${valid.err.msg}` };
  }

  const parser = new XMLParser({
    preserveOrder: true,
    captureMetaData: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseAttributeValue: false,
    parseTagValue: false,
    processEntities: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
    allowBooleanAttributes: false,
  });
  let nodes: OrderedNode[];
  try {
    nodes = parser.parse(text) as OrderedNode[];
  } catch (e) {
    return { ok: false, line: 1, message: `malformed XML: ${(e as Error).message}` };
  }
  let roots: XmlElement[];
  try {
    roots = elements(nodes, text, lines);
  } catch (e) {
    if (e instanceof XmlValueError) return { ok: false, line: e.line, message: `malformed XML: ${e.message}` };
    throw e;
  }
  if (roots.length === 0) return { ok: false, line: 1, message: 'no root element' };
  if (roots.length > 1) {
    return { ok: false, line: roots[1]!.line, message: `extra content at the end of the document: <${roots[1]!.tag}> after the root element <${roots[0]!.tag}>` };
  }
  return { ok: true, root: roots[0]! };
}

class XmlValueError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

function elements(nodes: readonly OrderedNode[], text: string, lines: readonly number[]): XmlElement[] {
  const out: XmlElement[] = [];
  for (const node of nodes) {
    const tag = Object.keys(node).find((k) => k !== ':@');
    if (tag === undefined || tag.startsWith('#') || tag.startsWith('?') || tag.startsWith('!')) continue;
    const meta = node[META] as { startIndex?: number } | undefined;
    const start = meta?.startIndex ?? 0;
    const attrs = new Map<string, XmlAttr>();
    // Values are taken from the source and decoded here, as XML says: fast-xml-parser leaves
    // numeric character references alone and drops some of them.
    for (const { name, offset, raw } of scanStartTag(text, start)) {
      const line = lineOf(lines, offset);
      const value = decodeAttrValue(raw);
      if (typeof value !== 'string') throw new XmlValueError(line, `attribute "${name}": ${value.error}`);
      attrs.set(name, { name, value, line });
    }
    const children = Array.isArray(node[tag]) ? elements(node[tag] as OrderedNode[], text, lines) : [];
    out.push({ tag, line: lineOf(lines, start), attrs, children });
  }
  return out;
}

const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * An attribute value as an XML parser returns it: literal tabs and line breaks become spaces
 * (attribute-value normalisation), then the five predefined entities and character references
 * are decoded. Any other entity (&nbsp;) is undefined in XML and an error, as in libxml2.
 */
export function decodeAttrValue(raw: string): string | { error: string } {
  if (raw.includes('<')) return { error: "'<' is not allowed in an attribute value" };
  const normalised = raw.replace(/\r\n?/g, '\n').replace(/[\t\n]/g, ' ');
  let error: string | undefined;
  const value = normalised.replace(/&([^;&\s]*);?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) {
      error ??= `'&' must start an entity or character reference ("${whole}")`;
      return whole;
    }
    const predefined = PREDEFINED[ref];
    if (predefined !== undefined) return predefined;
    const m = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(ref);
    if (m === null) {
      error ??= `undefined entity "${whole}"`;
      return whole;
    }
    const code = m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2]);
    const isXmlChar = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
    if (!isXmlChar) {
      error ??= `invalid character reference "${whole}"`;
      return whole;
    }
    return String.fromCodePoint(code);
  });
  return error === undefined ? value : { error };
}

/** Attributes of the (already validated) start tag beginning at `start`: names, offsets, raw values. */
export function scanStartTag(text: string, start: number): { name: string; offset: number; raw: string }[] {
  const out: { name: string; offset: number; raw: string }[] = [];
  let i = start + 1;
  while (i < text.length && !/[\s/>]/.test(text[i]!)) i++; // tag name
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length || text[i] === '>' || text[i] === '/') return out;
    const nameStart = i;
    while (i < text.length && !/[\s=/>]/.test(text[i]!)) i++;
    const name = text.slice(nameStart, i);
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text[i] !== '=') {
      out.push({ name, offset: nameStart, raw: '' });
      continue;
    }
    i++;
    while (i < text.length && /\s/.test(text[i]!)) i++;
    const quote = text[i];
    let raw = '';
    if (quote === '"' || quote === "'") {
      const end = text.indexOf(quote, i + 1);
      raw = text.slice(i + 1, end < 0 ? text.length : end);
      i = end < 0 ? text.length : end + 1;
    }
    out.push({ name, offset: nameStart, raw });
  }
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/** 1-based line of a character offset. */
function lineOf(starts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
