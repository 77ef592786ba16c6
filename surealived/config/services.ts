// The XML element tree -> validated ServiceConfig, with every problem found (not just the first).
// Pure except for two injected callbacks: the testers already resolved per <tester> element, and a
// file check for scripts (whose absence is only ever a warning).
// Structure and messages follow SureAliveD (spec §3); every deliberate difference is commented
// at its rule ("Compatibility choice").

import { AttrError, type AttrSpec, type AttrValues, type GenericSettings, type Tester } from '../../testers/contract.js';
import { GENERIC_TESTER_ATTRS } from '../../testers/registry.js';
import { anyAddr, parseIp, unusableReason, type IpAddr } from '../../common/addr.js';
import {
  checkLength, checkName, parseBool, parseFlag, parseInt32, parseIntRange, parsePercent, parsePort, parseSeconds, parseThreshold,
  parseUint, quote, type Parsed,
} from './attrs.js';
import { IssueList, type ConfigIssue } from './issues.js';
import type {
  Forwarding, RealConfig, ServiceConfig, SorryConfig, SourceRef, TesterConfig, Threshold, VirtualConfig, VProto,
} from './model.js';
import type { XmlAttr, XmlElement } from './xml-tree.js';

export interface BuildInput {
  readonly file: string;
  readonly root: XmlElement;
  /** The tester of each <tester> element, or why it could not be had ("Tester lua not registered"). */
  readonly testers: ReadonlyMap<XmlElement, Tester | string>;
  /** Why a script path cannot be executed here, or undefined if it can. */
  readonly canExecute: (path: string) => string | undefined;
}

export interface BuildResult {
  readonly config?: ServiceConfig;
  readonly issues: readonly ConfigIssue[];
}

/** Documented defaults of absent tester attributes (the original code used 0 — see the warning). */
const TESTER_DEFAULTS = { loopdelay: 3, timeout: 5, retries2ok: 1, retries2fail: 1 } as const;
const STATS_SAMPLES_MAX = 20;
const PATH_MAX_BYTES = 511;
const NO_THRESHOLD: Threshold = { value: 0, percent: false };
/** Testers that do not connect anywhere, so a testport of 0 is meaningful for them. */
const PORTLESS_TESTERS: readonly string[] = ['no-test', 'exec', 'ping'];
const SCHED_RE = /^[a-z0-9_]{1,15}$/;

const q = quote;

/** Reads the attributes of one element, reporting problems under a context ("virtual "wp": real "sg""). */
class AttrReader {
  private readonly used = new Set<string>();

  constructor(
    readonly el: XmlElement,
    readonly ctx: string,
    private readonly issues: IssueList,
  ) {}

  has(name: string): boolean {
    return this.el.attrs.has(name);
  }

  attr(name: string): XmlAttr | undefined {
    this.used.add(name);
    return this.el.attrs.get(name);
  }

  /** Line of an attribute, or of the element when the attribute is absent. */
  line(name: string): number {
    return this.el.attrs.get(name)?.line ?? this.el.line;
  }

  error(name: string | undefined, message: string): void {
    const where = name === undefined ? this.el.line : this.line(name);
    this.issues.error(where, `${this.ctx}: ${name === undefined ? '' : `attribute ${q(name)}: `}${message}`, name);
  }

  warning(name: string | undefined, message: string): void {
    const where = name === undefined ? this.el.line : this.line(name);
    this.issues.warning(where, `${this.ctx}: ${name === undefined ? '' : `attribute ${q(name)}: `}${message}`, name);
  }

  /** Optional attribute: undefined when absent or invalid (an invalid one is reported). */
  opt<T>(name: string, parse: (text: string) => Parsed<T>): T | undefined {
    const a = this.attr(name);
    if (a === undefined) return undefined;
    const r = parse(a.value);
    if (!r.ok) {
      this.error(name, r.reason);
      return undefined;
    }
    if (r.warning !== undefined) this.warning(name, r.warning);
    return r.value;
  }

  /** Mandatory attribute: absence is an error. */
  req<T>(name: string, parse: (text: string) => Parsed<T>): T | undefined {
    if (!this.has(name)) {
      this.used.add(name);
      this.error(undefined, `missing mandatory attribute ${q(name)}`);
      return undefined;
    }
    return this.opt(name, parse);
  }

  /** Mark attributes as deliberately ignored (no "unknown attribute" warning). */
  ignore(...names: string[]): void {
    for (const n of names) this.used.add(n);
  }

  /** Warn about every attribute nobody asked for. `hint` may explain a known-but-misplaced name. */
  warnUnknown(hint: (name: string) => string | undefined = () => undefined): void {
    for (const a of this.el.attrs.values()) {
      if (this.used.has(a.name)) continue;
      const caseMatch = [...this.used].find((u) => u.toLowerCase() === a.name.toLowerCase());
      const extra = hint(a.name) ?? (caseMatch !== undefined ? `did you mean ${q(caseMatch)}? (names are case-sensitive)` : undefined);
      this.issues.warning(a.line, `${this.ctx}: unknown attribute ${q(a.name)} ignored${extra === undefined ? '' : `: ${extra}`}`, a.name);
    }
  }
}

const str = (text: string): Parsed<string> => ({ ok: true, value: text });

function oneOf<T extends string>(allowed: readonly T[]): (text: string) => Parsed<T> {
  // Case-insensitive, as the original's strcasecmp.
  return (text) => {
    const t = text.trim().toLowerCase() as T;
    return allowed.includes(t) ? { ok: true, value: t } : { ok: false, reason: `${q(text)} is not one of ${allowed.join(', ')}` };
  };
}

function name(text: string): Parsed<string> {
  const reason = checkName(text);
  return reason === undefined ? { ok: true, value: text } : { ok: false, reason };
}

function path(text: string): Parsed<string> {
  if (text === '') return { ok: false, reason: 'empty path' };
  const reason = checkLength(text, PATH_MAX_BYTES);
  return reason === undefined ? { ok: true, value: text } : { ok: false, reason };
}

/** An IP address usable by a virtual or a real (not multicast/broadcast/unspecified). */
function hostAddr(text: string): Parsed<IpAddr> {
  const r = parseIp(text);
  if (!r.ok) return { ok: false, reason: `${q(text)}: ${r.reason}` };
  const bad = unusableReason(r.ip);
  return bad === undefined ? { ok: true, value: r.ip } : { ok: false, reason: `${q(text)}: ${bad}` };
}

/** The original's optional BOOL: an invalid value is false, with a warning. */
function lenientBool(text: string): Parsed<boolean> {
  const b = parseBool(text);
  return b.ok ? b : { ok: true, value: false, warning: `${b.reason}; read as false` };
}

/** Parse one tester module attribute by its spec. */
function specParser(spec: AttrSpec, onTester: boolean): (text: string) => Parsed<string | number | boolean> {
  switch (spec.type) {
    case 'string':
      return (text) => {
        const reason = spec.maxLength === undefined ? undefined : checkLength(text, spec.maxLength);
        return reason === undefined ? { ok: true, value: text } : { ok: false, reason };
      };
    case 'port':
      return parsePort;
    case 'uint':
      return (text) => parseUint(text);
    case 'int':
      return parseInt32;
    case 'bool':
      // The original: an invalid optional BOOL is false with a warning; a mandatory one is an error.
      return spec.required === true && onTester ? parseBool : lenientBool;
  }
}

type Compiled = { readonly ok: true; readonly params: unknown } | { readonly ok: false; readonly error: unknown };

/** Keys sorted, undefined dropped: equal objects give equal text. */
function canonicalValues(values: AttrValues): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const k of Object.keys(values).sort()) {
    const v = values[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function isAttrError(e: unknown): e is { attr: string; message: string } {
  // Third-party testers may throw their own copy of AttrError: accept the shape, not only the class.
  return e instanceof AttrError || (e instanceof Error && e.name === 'AttrError' && typeof (e as { attr?: unknown }).attr === 'string');
}

interface TesterPart {
  readonly config: TesterConfig;
  /** Tester module attributes, for per-real overrides. */
  readonly specs: readonly AttrSpec[];
  readonly reader: AttrReader;
  /** False when the tester's own values are unusable (already reported): reals are not compiled. */
  readonly compiles: boolean;
}

interface VirtualDraft {
  readonly name?: string;
  readonly line: number;
  readonly ctx: string;
  readonly identity?: string;
}

export function buildServiceConfig(input: BuildInput): BuildResult {
  return new Builder(input).build();
}

class Builder {
  private readonly issues: IssueList;
  /** compile() results per tester, per distinct (values, generic settings). */
  private readonly compiled = new Map<Tester, Map<string, Compiled>>();
  private readonly testerByName = new Map<string, { tester: Tester; line: number }>();

  constructor(private readonly input: BuildInput) {
    this.issues = new IssueList(input.file);
  }

  build(): BuildResult {
    const root = this.input.root;
    const virtualEls: XmlElement[] = [];
    if (root.tag === 'surealived') {
      new AttrReader(root, '<surealived>', this.issues).warnUnknown();
      for (const child of root.children) {
        if (child.tag === 'virtual') virtualEls.push(child);
        // The original rejected a nested <surealived> too, but said so only at debug level.
        else if (child.tag === 'surealived') this.issues.error(child.line, 'nested <surealived> element');
        else this.issues.error(child.line, `parse_root - unknown tag (${child.tag})`);
      }
    } else if (root.tag === 'virtual') {
      virtualEls.push(root); // a bare <virtual> as the root, as the original allowed
    } else {
      this.issues.error(root.line, `parse_root - unknown tag (${root.tag}): the root element must be <surealived> or <virtual>`);
    }

    const virtuals: VirtualConfig[] = [];
    const drafts: VirtualDraft[] = [];
    virtualEls.forEach((el, n) => {
      const v = this.virtual(el, n);
      drafts.push(v.draft);
      if (v.config !== undefined) virtuals.push(v.config);
    });
    this.checkDuplicateVirtuals(drafts);

    const issues = this.issues.sorted();
    return this.issues.hasErrors ? { issues } : { config: { file: this.input.file, virtuals }, issues };
  }

  /** Beyond the original (which checked nothing): virtual names and identities must be unique. */
  private checkDuplicateVirtuals(drafts: readonly VirtualDraft[]): void {
    const names = new Map<string, VirtualDraft>();
    const identities = new Map<string, VirtualDraft>();
    for (const d of drafts) {
      if (d.name !== undefined) {
        const first = names.get(d.name);
        if (first !== undefined) this.issues.error(d.line, `${d.ctx}: duplicate virtual name (first defined at line ${first.line})`, 'name');
        else names.set(d.name, d);
      }
      if (d.identity !== undefined) {
        const first = identities.get(d.identity);
        if (first !== undefined) this.issues.error(d.line, `${d.ctx}: same service (${d.identity}) as ${first.ctx} at line ${first.line}`);
        else identities.set(d.identity, d);
      }
    }
  }

  private virtual(el: XmlElement, n: number): { draft: VirtualDraft; config?: VirtualConfig } {
    const rawName = el.attrs.get('name')?.value;
    const ctx = rawName !== undefined ? `virtual ${q(rawName)}` : `virtual #${n + 1}`;
    const r = new AttrReader(el, ctx, this.issues);
    const vname = r.req('name', name);
    const fwmarkParsed = r.opt('fwmark', (t) => parseUint(t));
    const fwmarkBad = r.has('fwmark') && fwmarkParsed === undefined; // reported; do not guess what was meant
    const fwmark = fwmarkParsed ?? 0;
    let proto = r.req('proto', oneOf<VProto>(['tcp', 'udp', 'fwmark']));
    let ip: IpAddr | undefined;
    let port: number | undefined;
    if (fwmarkBad) {
      r.ignore('addr', 'port');
    } else if (fwmark > 0) {
      // As the original: with a fwmark, addr and port are not read.
      for (const a of ['addr', 'port']) if (r.has(a)) r.warning(a, `ignored: the virtual has fwmark="${fwmark}"`);
      r.ignore('addr', 'port');
      if (proto === 'tcp' || proto === 'udp') {
        // Compatibility choice: the original's ipvssync honours the fwmark only with proto="fwmark"
        // and would otherwise build a TCP 0.0.0.0:0 service; we take the evident intent.
        r.warning('proto', `${q(proto)} with fwmark="${fwmark}": treated as proto="fwmark" (the original ipvssync would build a TCP 0.0.0.0:0 service)`);
        proto = 'fwmark';
      }
      port = 0;
    } else {
      if (proto === 'fwmark') r.error('proto', `"fwmark" needs a fwmark attribute > 0`);
      ip = r.req('addr', hostAddr);
      port = r.req('port', parsePort);
    }
    const sched = r.req('sched', (t) => (SCHED_RE.test(t) ? str(t) : { ok: false, reason: `${q(t)} is not a scheduler name (a-z, 0-9, _; at most 15)` }));
    const rt = r.req('rt', oneOf<Forwarding>(['dr', 'masq', 'tun']));
    const pers = r.opt('pers', (t) => parseUint(t)) ?? 0;
    const ops = r.opt('ops', parseFlag) ?? false;
    if (ops && proto !== undefined && proto !== 'udp') r.warning('ops', 'one-packet scheduling only applies to udp virtuals (ignored)');
    // Extension: the healthy panic threshold (engine/fallback.ts).
    const panic = r.opt('panic', parsePercent) ?? 0;
    r.warnUnknown();

    const tester = this.testerOf(el, ctx);
    const seen: RealsSeen = { names: new Map(), endpoints: new Map() };
    const reals = this.reals(el, ctx, tester.part, rt, ip?.family, seen);
    if (panic > 0 && tester.realCount === 0) r.warning('panic', 'the virtual has no reals: the panic threshold never applies');

    // A fwmark virtual has no address of its own: its family is that of its reals (tun reals aside).
    let family: 4 | 6 = ip?.family ?? 4;
    if (fwmark > 0) {
      const direct = reals.filter((x) => x.rt !== 'tun');
      family = (direct[0] ?? reals[0])?.family ?? 4;
      for (const x of direct) {
        if (x.family !== family) {
          this.issues.error(x.source.line, `${ctx}: real ${q(x.name)}: attribute "addr": IPv${x.family} real in a fwmark virtual whose reals are IPv${family} (only rt="tun" may mix families)`, 'addr');
        }
      }
    }
    const sorry = this.sorryOf(el, ctx, rt, fwmark > 0 ? family : ip?.family, seen);
    const addr = fwmark > 0 ? anyAddr(family) : ip?.addr;
    const identity = fwmark > 0 ? `fwmark ${fwmark}` : proto !== undefined && addr !== undefined && port !== undefined ? `${proto} ${family === 6 ? `[${addr}]` : addr}:${port}` : undefined;
    const draft: VirtualDraft = { line: el.line, ctx, ...(vname === undefined ? {} : { name: vname }), ...(identity === undefined ? {} : { identity }) };

    const testerDone = tester.part !== undefined && reals.length === tester.realCount;
    if (vname === undefined || proto === undefined || addr === undefined || port === undefined || sched === undefined || rt === undefined || !testerDone || sorry === null) {
      return { draft };
    }
    const source: SourceRef = { file: this.input.file, line: el.line };
    return {
      draft,
      config: {
        name: vname, proto, addr, family, port, fwmark, sched, rt, pers, ops, tester: tester.part!.config, reals, source,
        ...(panic > 0 ? { panic } : {}),
        ...(sorry === undefined ? {} : { sorry }),
      },
    };
  }

  /** The one <tester>, which must be the first element of the virtual; reports structure errors. */
  private testerOf(vel: XmlElement, ctx: string): { part?: TesterPart; realCount: number } {
    let testerEl: XmlElement | undefined;
    let realCount = 0;
    let first = true;
    for (const child of vel.children) {
      if (child.tag === 'tester') {
        if (testerEl !== undefined) this.issues.error(child.line, `${ctx}: double 'tester' tag!`);
        else testerEl = child;
      } else if (child.tag === 'real' || child.tag === 'sorry') {
        if (child.tag === 'real') realCount++;
        // The original's message; it reads oddly, so the reason is added. (<sorry> is ours: checked in sorryOf.)
        if (first) this.issues.error(child.line, `${ctx}: Unknown tag inside virtual: (${child.tag}): the <tester> must be the first element`);
      } else {
        this.issues.error(child.line, `${ctx}: Unknown tag inside virtual: (${child.tag})`);
      }
      first = false;
    }
    if (testerEl === undefined) {
      this.issues.error(vel.line, `${ctx}: No tester tag inside virtual!`);
      return { realCount };
    }
    const part = this.tester(testerEl, `${ctx}: tester`);
    return part === undefined ? { realCount } : { part, realCount };
  }

  private tester(el: XmlElement, ctx: string): TesterPart | undefined {
    const r = new AttrReader(el, ctx, this.issues);
    for (const child of el.children) this.issues.error(child.line, `${ctx}: Unknown tag inside tester: (${child.tag})`);
    const protoText = r.req('proto', str);
    r.ignore('module'); // consumed when the tester was resolved
    if (protoText === undefined) return undefined;
    // `no-test` is matched case-insensitively, module names case-sensitively (as the original).
    const proto = protoText.toLowerCase() === 'no-test' ? 'no-test' : protoText;
    const resolved = this.input.testers.get(el);
    if (resolved === undefined || typeof resolved === 'string') {
      r.error(r.has('module') ? 'module' : 'proto', resolved ?? `Tester ${proto} not registered`);
      return undefined;
    }
    const tester = resolved;
    const seen = this.testerByName.get(tester.name);
    if (seen !== undefined && seen.tester !== tester) {
      r.error('proto', `tester ${q(tester.name)} is already loaded from another module (line ${seen.line})`);
      return undefined;
    }
    this.testerByName.set(tester.name, { tester, line: el.line });

    const noTest = proto === 'no-test';
    const source: SourceRef = { file: this.input.file, line: el.line };
    if (noTest) {
      // As the original: parsing stops after proto, every other attribute is silently ignored
      // (the shipped examples set them) and the documented defaults apply.
      r.ignore(...el.attrs.keys());
    }
    const documented = <K extends keyof typeof TESTER_DEFAULTS>(key: K, parse: (t: string) => Parsed<number>): number => {
      if (noTest) return TESTER_DEFAULTS[key];
      if (!r.has(key)) {
        // Compatibility choice: the documented default, not the original code's 0 (with which, for
        // retries2ok, a real could never go offline).
        r.warning(key, `absent: using the documented default ${TESTER_DEFAULTS[key]} (the original code used 0)`);
        r.ignore(key);
        return TESTER_DEFAULTS[key];
      }
      return r.opt(key, parse) ?? TESTER_DEFAULTS[key];
    };
    const testport = noTest ? 0 : r.req('testport', parsePort);
    if (testport === 0 && !PORTLESS_TESTERS.includes(tester.name)) r.error('testport', `0: the ${tester.name} tester needs a port to test`);
    // Beyond the original: ranges, and decimal seconds for loopdelay/timeout (an extension).
    const loopdelay = documented('loopdelay', (t) => parseSeconds(t, 0, 86400));
    const timeout = documented('timeout', (t) => parseSeconds(t, 0, 3600, true));
    const retries2ok = documented('retries2ok', (t) => parseIntRange(t, 1, 1000, 'a retry count'));
    const retries2fail = documented('retries2fail', (t) => parseIntRange(t, 1, 1000, 'a retry count'));
    const flag = (key: string): boolean => (noTest ? false : r.opt(key, parseFlag) ?? false);
    const removeOnFail = flag('remove_on_fail');
    const debugcomm = flag('debugcomm');
    const logmicro = flag('logmicro');
    let statsSamples = noTest ? 0 : r.opt('stats_samples', (t) => parseUint(t)) ?? 0;
    if (statsSamples > STATS_SAMPLES_MAX) r.warning('stats_samples', `${statsSamples} is more than ${STATS_SAMPLES_MAX}: using ${STATS_SAMPLES_MAX} (as the original)`);
    if (statsSamples === 0 || statsSamples > STATS_SAMPLES_MAX) statsSamples = STATS_SAMPLES_MAX;
    const ssl = noTest ? false : r.opt('SSL', lenientBool) ?? false;
    const script = (key: string): string | undefined => {
      const p = noTest ? undefined : r.opt(key, path);
      if (p !== undefined) this.checkScript(r, key, p);
      return p;
    };
    const notifyUp = script('notify_up');
    const notifyDown = script('notify_down');
    const realNotifyUp = script('real_notify_up');
    const realNotifyDown = script('real_notify_down');
    // Beyond the original (atoi): garbage is an error.
    const notifyMinReals = (noTest ? undefined : r.opt('notify_min_reals', parseThreshold)) ?? NO_THRESHOLD;
    const notifyMinWeight = (noTest ? undefined : r.opt('notify_min_weight', parseThreshold)) ?? NO_THRESHOLD;

    // The tester's own attributes: typed by its specs, defaults applied.
    const values: Record<string, string | number | boolean | undefined> = {};
    let valuesOk = true;
    for (const spec of tester.attrs) {
      if (noTest) {
        if (spec.default !== undefined) values[spec.name] = spec.default;
        continue;
      }
      const v = spec.required === true ? r.req(spec.name, specParser(spec, true)) : r.opt(spec.name, specParser(spec, true));
      if (v !== undefined) values[spec.name] = v;
      else if (r.has(spec.name) || spec.required === true) valuesOk = false; // reported
      else if (spec.default !== undefined) values[spec.name] = spec.default;
    }
    r.warnUnknown((n) => (['name', 'addr', 'port', 'weight', 'rt', 'uthresh', 'lthresh'].includes(n) ? 'a <real> or <virtual> attribute' : undefined));
    if (tester.name === 'exec' && typeof values['exec'] === 'string') this.checkScript(r, 'exec', values['exec']);

    const config: TesterConfig = {
      proto: tester.name, tester, testport: testport ?? 0, loopdelay, timeout, retries2ok, retries2fail, removeOnFail, debugcomm,
      logmicro, statsSamples, ssl, notifyMinReals, notifyMinWeight, values, source,
      ...(notifyUp === undefined ? {} : { notifyUp }),
      ...(notifyDown === undefined ? {} : { notifyDown }),
      ...(realNotifyUp === undefined ? {} : { realNotifyUp }),
      ...(realNotifyDown === undefined ? {} : { realNotifyDown }),
    };
    // Compile the tester's own values even when no real uses them as they are, so a bad value is
    // reported on the tester (a virtual without reals is valid).
    // Not when a value is already reported as unusable: compile would only repeat it, less clearly.
    const c: Compiled = valuesOk ? this.compile(config, values) : { ok: false, error: undefined };
    if (!c.ok && valuesOk) this.reportCompile(c.error, r, undefined);
    return { config, specs: noTest ? [] : tester.attrs, reader: r, compiles: c.ok };
  }

  /** A script that is missing here is only a warning: the config may be checked on another host. */
  private checkScript(r: AttrReader, key: string, file: string): void {
    const why = this.input.canExecute(file);
    if (why !== undefined) r.warning(key, `${q(file)} is not executable here: ${why}; its runs will fail`);
  }

  /** The reals of a virtual; without a usable tester only their own attributes are checked. */
  private reals(vel: XmlElement, vctx: string, part: TesterPart | undefined, vrt: Forwarding | undefined, vfamily: 4 | 6 | undefined, seen: RealsSeen): RealConfig[] {
    const out: RealConfig[] = [];
    const { names, endpoints } = seen;
    const t = part?.config;
    const needsPort = t !== undefined && !PORTLESS_TESTERS.includes(t.tester.name);
    let n = 0;
    for (const el of vel.children) {
      if (el.tag !== 'real') continue;
      n++;
      const rawName = el.attrs.get('name')?.value;
      const ctx = `${vctx}: real ${rawName !== undefined ? q(rawName) : `#${n}`}`;
      const r = new AttrReader(el, ctx, this.issues);
      for (const child of el.children) this.issues.error(child.line, `${ctx}: Unknown tag inside real: (${child.tag})`);
      const rname = r.req('name', name);
      const ip = r.req('addr', hostAddr);
      const port = r.req('port', parsePort);
      // Compatibility choice: the original accepted any int (even negative); IPVS weights are 0..65535.
      const weight = r.req('weight', (x) => parseIntRange(x, 0, 65535, 'a weight'));
      const testport = r.opt('testport', parsePort) ?? t?.testport ?? 0;
      if (r.has('testport') && testport === 0 && needsPort) r.error('testport', `0: the ${t!.tester.name} tester needs a port to test`);
      const uthresh = r.opt('uthresh', (x) => parseUint(x)) ?? 0;
      const lthresh = r.opt('lthresh', (x) => parseUint(x)) ?? 0;
      const rt = r.opt('rt', oneOf<Forwarding>(['dr', 'masq', 'tun'])) ?? vrt;
      r.opt('bindaddr', (x) => { const a = parseIp(x); return a.ok ? { ok: true, value: a.ip } : { ok: false, reason: `${q(x)}: ${a.reason}` }; }); // validated, unused (as the original)

      // Per-real overrides of the tester's own attributes (all optional here).
      const overrides: Record<string, string | number | boolean> = {};
      let overridesOk = true;
      for (const spec of part?.specs ?? []) {
        const v = r.opt(spec.name, specParser(spec, false));
        if (v !== undefined) overrides[spec.name] = v;
        else if (r.has(spec.name)) overridesOk = false; // reported
      }
      // Without a tester its attributes are unknown, so nothing can be called unknown.
      if (part !== undefined) r.warnUnknown((a) => (GENERIC_TESTER_ATTRS.includes(a) ? 'a <tester> attribute that cannot be set per real' : undefined));
      if (t?.tester.name === 'exec' && typeof overrides['exec'] === 'string') this.checkScript(r, 'exec', overrides['exec']);

      // Beyond the original: no two reals of a virtual with the same name or the same endpoint.
      if (rname !== undefined) {
        const first = names.get(rname);
        if (first !== undefined) r.error('name', `duplicate real name (first defined at line ${first})`);
        else names.set(rname, el.line);
      }
      if (ip !== undefined && port !== undefined) {
        const key = endpointKey(ip, port);
        const first = endpoints.get(key);
        if (first !== undefined) r.error('addr', `duplicate real ${key} (first defined at line ${first})`);
        else endpoints.set(key, el.line);
        // IPVS mixes address families only for tunnelling (fwmark virtuals are checked by the caller).
        if (vfamily !== undefined && ip.family !== vfamily && rt !== 'tun') {
          r.error('addr', `IPv${ip.family} real in an IPv${vfamily} virtual (only rt="tun" may mix families)`);
        }
      }

      if (part === undefined || t === undefined || !part.compiles || !overridesOk) continue;
      const values: AttrValues = { ...t.values, ...overrides };
      const compiled = this.compile(t, values);
      if (!compiled.ok) this.reportCompile(compiled.error, part.reader, { reader: r, overrides });
      if (rname === undefined || ip === undefined || port === undefined || weight === undefined || rt === undefined || !compiled.ok) continue;
      out.push({
        name: rname, addr: ip.addr, family: ip.family, port, weight, testport, uthresh, lthresh, rt, values,
        params: compiled.params,
        probeKey: probeKey(t, ip.addr, testport, values),
        source: { file: this.input.file, line: el.line },
      });
    }
    return out;
  }

  /**
   * The virtual's `<sorry>` (extension): undefined when there is none, null when it is unusable
   * (reported). It has a real's attributes minus the probe ones (it is never probed), and must not be
   * one of the virtual's reals (same address and port, or same name).
   */
  private sorryOf(vel: XmlElement, vctx: string, vrt: Forwarding | undefined, vfamily: 4 | 6 | undefined, seen: RealsSeen): SorryConfig | undefined | null {
    const els = vel.children.filter((c) => c.tag === 'sorry');
    if (els.length === 0) return undefined;
    for (const extra of els.slice(1)) this.issues.error(extra.line, `${vctx}: double 'sorry' tag! (first at line ${els[0]!.line}; a virtual has at most one sorry server)`);
    const el = els[0]!;
    const rawName = el.attrs.get('name')?.value;
    const ctx = `${vctx}: sorry ${rawName !== undefined ? q(rawName) : 'server'}`;
    const r = new AttrReader(el, ctx, this.issues);
    for (const child of el.children) this.issues.error(child.line, `${ctx}: Unknown tag inside sorry: (${child.tag})`);
    const sname = r.req('name', name);
    const ip = r.req('addr', hostAddr);
    const port = r.req('port', parsePort);
    // Weight 0 would put a server that can take no connection in place of the reals.
    const weight = r.req('weight', (x) => parseIntRange(x, 1, 65535, 'a sorry server weight'));
    const uthresh = r.opt('uthresh', (x) => parseUint(x)) ?? 0;
    const lthresh = r.opt('lthresh', (x) => parseUint(x)) ?? 0;
    const rt = r.opt('rt', oneOf<Forwarding>(['dr', 'masq', 'tun'])) ?? vrt;
    const inhibit = r.opt('inhibit', parseFlag) ?? false;
    const script = (key: string): string | undefined => {
      const p = r.opt(key, path);
      if (p !== undefined) this.checkScript(r, key, p);
      return p;
    };
    const notifyUp = script('notify_up');
    const notifyDown = script('notify_down');
    r.warnUnknown((a) => (a === 'testport' || a === 'bindaddr' || GENERIC_TESTER_ATTRS.includes(a) ? 'a sorry server is never probed' : undefined));

    let ok = sname !== undefined && ip !== undefined && port !== undefined && weight !== undefined && rt !== undefined;
    if (sname !== undefined) {
      const real = seen.names.get(sname);
      if (real !== undefined) {
        r.error('name', `the real at line ${real} has the same name: a sorry server must not be one of the virtual's reals`);
        ok = false;
      }
    }
    if (ip !== undefined && port !== undefined) {
      const key = endpointKey(ip, port);
      const real = seen.endpoints.get(key);
      if (real !== undefined) {
        r.error('addr', `${key} is also the real at line ${real}: a sorry server must not be one of the virtual's reals`);
        ok = false;
      }
      if (vfamily !== undefined && ip.family !== vfamily && rt !== 'tun') {
        r.error('addr', `IPv${ip.family} sorry server in an IPv${vfamily} virtual (only rt="tun" may mix families)`);
        ok = false;
      }
    }
    if (!ok) return null;
    return {
      name: sname!, addr: ip!.addr, family: ip!.family, port: port!, weight: weight!, uthresh, lthresh, rt: rt!, inhibit,
      ...(notifyUp === undefined ? {} : { notifyUp }),
      ...(notifyDown === undefined ? {} : { notifyDown }),
      source: { file: this.input.file, line: el.line },
    };
  }

  /** Tester.compile, once per distinct (tester, values, generic settings). */
  private compile(t: TesterConfig, values: AttrValues): Compiled {
    const generic: GenericSettings = { ssl: t.ssl, timeoutMs: Math.round(t.timeout * 1000) };
    const key = JSON.stringify([canonicalValues(values), generic.ssl, generic.timeoutMs]);
    let perTester = this.compiled.get(t.tester);
    if (perTester === undefined) this.compiled.set(t.tester, (perTester = new Map()));
    const hit = perTester.get(key);
    if (hit !== undefined) return hit;
    let result: Compiled;
    try {
      result = { ok: true, params: t.tester.compile(values, generic) };
    } catch (error) {
      result = { ok: false, error };
    }
    perTester.set(key, result);
    return result;
  }

  /** An AttrError points at the attribute: on the real if the real set it, else on the tester. */
  private reportCompile(error: unknown, testerReader: AttrReader, real: { reader: AttrReader; overrides: Record<string, unknown> } | undefined): void {
    if (isAttrError(error)) {
      const onReal = real !== undefined && error.attr in real.overrides;
      const reader = onReal ? real.reader : testerReader;
      reader.error(reader.has(error.attr) ? error.attr : undefined, error.message);
      return;
    }
    const reader = real?.reader ?? testerReader;
    reader.error(undefined, `the tester failed to compile these attributes: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Names and endpoints of a virtual's reals (line of the first definition), for the sorry server's checks. */
interface RealsSeen {
  readonly names: Map<string, number>;
  readonly endpoints: Map<string, number>;
}

/** `addr:port`, `[v6]:port`. */
const endpointKey = (ip: IpAddr, port: number): string => (ip.family === 6 ? `[${ip.addr}]:${port}` : `${ip.addr}:${port}`);

/** Equal keys = identical probes (same tester, target, TLS, timing and attribute values). */
function probeKey(t: TesterConfig, addr: string, testport: number, values: AttrValues): string {
  return JSON.stringify([t.tester.name, addr, testport, t.ssl, t.timeout, t.loopdelay, canonicalValues(values)]);
}
