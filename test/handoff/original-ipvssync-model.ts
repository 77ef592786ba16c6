// A model of the ORIGINAL (DreamLab, C) ipvssync's hand-off reader, written here from the facts
// established about it (issue 10, spec 8.5), not from its code. The tests feed it our hand-off to
// show what a site still running the original ipvssync gets from our surealived. The facts:
// - full file: each whitespace-stripped line is dispatched by its first characters: `meta`,
//   `virtual`, `real`, `DIFF` (a keyword merely beginning with `virtual` or `real` still counts);
//   every other line is skipped. A real belongs to the last virtual read.
// - diff line: `DIFF ...` chains; any other line has its virtual looked up (by fwmark when > 0, else
//   by address, port, protocol), then is applied by its cmd= value: addreal (if the real is not
//   there), chgreal, delreal (if it is); any other value does nothing beyond a warning.
// - addresses are read as IPv4 only: one that does not parse (IPv6) silently becomes 0.0.0.0;
//   numbers as atoi; vproto=fwmark means TCP with vfwmark (300 when absent).

export interface ModelReal {
  addr: string;
  port: number;
  weight: number;
}

export interface ModelVirtual {
  /** `TCP 10.0.0.1:80`, `UDP ...`, or `FWM 7`: what the original would ask the kernel for. */
  readonly key: string;
  readonly protocol: 'TCP' | 'UDP';
  readonly addr: string;
  readonly port: number;
  readonly fwmark: number;
  readonly reals: ModelReal[];
}

export interface ModelConfig {
  readonly virtuals: ModelVirtual[];
  /** What the original only warns about (the line, and why). */
  readonly warnings: string[];
}

export interface ModelOptions {
  /**
   * Match cmd= values by prefix (`addreal...` counts as addreal), as the full-file reader does its
   * keywords: a stricter reader than the facts say, to show the IPv6 form survives that too.
   */
  readonly cmdByPrefix?: boolean;
}

/** The line's `key=value` tokens (split on space/TAB; the value ends at a second `=`). */
function pairs(line: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const t of line.split(/[ \t]+/)) {
    const [k, v] = t.split('=');
    if (k !== undefined && v !== undefined) m.set(k, v);
  }
  return m;
}

/** inet_pton(AF_INET): exactly four decimal parts 0..255; anything else leaves the zeroed 0.0.0.0. */
function ipv4(text: string | undefined): string {
  const parts = (text ?? '').split('.');
  const ok = parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
  return ok ? parts.map(Number).join('.') : '0.0.0.0';
}

/** atoi: leading decimal digits, else 0. */
function atoi(text: string | undefined): number {
  const m = /^\s*([+-]?\d+)/.exec(text ?? '');
  return m ? Number(m[1]) : 0;
}

function service(kv: Map<string, string>): Omit<ModelVirtual, 'reals'> {
  const proto = kv.get('vproto');
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'fwmark') throw new Error(`model: unknown vproto '${proto}'`);
  const protocol = proto === 'udp' ? 'UDP' : 'TCP';
  const fwmark = proto === 'fwmark' ? (kv.has('vfwmark') ? atoi(kv.get('vfwmark')) : 300) : 0;
  const addr = ipv4(kv.get('vaddr'));
  const port = atoi(kv.get('vport'));
  return { key: fwmark > 0 ? `FWM ${fwmark}` : `${protocol} ${addr}:${port}`, protocol, addr, port, fwmark };
}

function real(kv: Map<string, string>): ModelReal {
  return { addr: ipv4(kv.get('raddr')), port: atoi(kv.get('rport')), weight: kv.has('rweight') ? atoi(kv.get('rweight')) : 1 };
}

/** What the original's full-file reader makes of ipvsfull.cfg. */
export function modelReadFull(text: string): ModelConfig {
  const virtuals: ModelVirtual[] = [];
  let last: ModelVirtual | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('virtual')) {
      last = { ...service(pairs(line)), reals: [] };
      virtuals.push(last);
    } else if (line.startsWith('real')) {
      if (!last) throw new Error('model: real line before any virtual');
      last.reals.push(real(pairs(line)));
    }
    // `meta` and `DIFF` carry nothing the model needs; every other line is skipped.
  }
  return { virtuals, warnings: [] };
}

/** What the original's diff reader does with one diff line (the config is updated in place). */
export function modelApplyDiff(config: ModelConfig, raw: string, o: ModelOptions = {}): void {
  const line = raw.trim();
  if (line === '' || line.startsWith('DIFF')) return;
  const kv = pairs(line);
  const s = service(kv);
  const v = config.virtuals.find((x) => (s.fwmark > 0 ? x.fwmark === s.fwmark : x.addr === s.addr && x.port === s.port && x.protocol === s.protocol));
  if (!v) {
    config.warnings.push(`virtual not found: ${line}`);
    return;
  }
  const value = kv.get('cmd') ?? '';
  const is = (name: string): boolean => (o.cmdByPrefix ? value.startsWith(name) : value === name);
  const r = real(kv);
  const i = v.reals.findIndex((x) => x.addr === r.addr && x.port === r.port);
  if (is('addreal')) {
    if (i < 0) v.reals.push(r);
  } else if (is('chgreal') && i >= 0) v.reals[i] = r;
  else if (is('delreal') && i >= 0) v.reals.splice(i, 1);
  else config.warnings.push(`nothing done: ${line}`);
}

/**
 * The kernel table the original would build from a config: one service per key (a second virtual
 * with the same key is refused by the kernel as existing, its reals go to the first), dests by address.
 */
export function modelKernelTable(config: ModelConfig): Map<string, string[]> {
  const t = new Map<string, string[]>();
  for (const v of config.virtuals) {
    const dests = t.get(v.key) ?? [];
    for (const r of v.reals) {
      const d = `${r.addr}:${r.port} w=${r.weight}`;
      if (!dests.some((x) => x.startsWith(`${r.addr}:${r.port} `))) dests.push(d);
    }
    t.set(v.key, dests);
  }
  return t;
}
