// Rules in `ipvsadm -Sn` (ipvsadm-save) form read into a table: the starting kernel table of
// `--dry-run --kernel-table FILE`, so a dry run can start from a real box's dump. Pure.

import { parseAddr, parseUint, PERSISTENCE_MAX, U32_MAX, WEIGHT_MAX } from './address.js';
import { fullNetmask, serviceId, destId, type Destination, type Entry, type ForwardMethod, type ServiceKey, type Service, type Table } from './types.js';

export type RulesParse = { readonly ok: true; readonly table: Table } | { readonly ok: false; readonly errors: readonly string[] };

class RuleError extends Error {}

function endpoint(text: string): { addr: string; family: 'inet' | 'inet6'; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) throw new RuleError(`bad address:port '${text}'`);
  const a = parseAddr(m[1]!);
  if (!a.ok) throw new RuleError(a.reason);
  const p = parseUint(m[2]!, 65535, 'port');
  if (!p.ok) throw new RuleError(p.reason);
  return { ...a.value, port: p.value };
}

function uint(text: string | undefined, max: number, what: string): number {
  if (text === undefined) throw new RuleError(`missing value after ${what}`);
  const p = parseUint(text, max, what);
  if (!p.ok) throw new RuleError(p.reason);
  return p.value;
}

function mask(text: string, family: 'inet' | 'inet6'): number {
  if (family === 'inet6' || /^\d+$/.test(text)) return uint(text, fullNetmask(family), 'netmask');
  const a = parseAddr(text);
  if (!a.ok || a.value.family !== 'inet') throw new RuleError(`bad netmask '${text}'`);
  const bits = a.value.addr.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  if (!/^1*0*$/.test(bits)) throw new RuleError(`non-contiguous netmask '${text}'`);
  return bits.indexOf('0') < 0 ? 32 : bits.indexOf('0');
}

interface RuleLine {
  readonly cmd: '-A' | '-a';
  readonly key: ServiceKey;
  readonly opts: Map<string, string | undefined>;
}

const VALUED = new Set(['-s', '-p', '-M', '-r', '-w', '-x', '-y']);

function parseRule(tokens: readonly string[]): RuleLine {
  const cmd = tokens[0];
  if (cmd !== '-A' && cmd !== '-a') throw new RuleError(`'-A' or '-a' expected, got '${cmd}'`);
  const opts = new Map<string, string | undefined>();
  let key: ServiceKey | undefined;
  let v6 = false;
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === '-t' || t === '-u' || t === '--sctp-service') {
      const e = endpoint(tokens[++i] ?? '');
      key = { kind: 'addr', family: e.family, protocol: t === '-t' ? 'tcp' : t === '-u' ? 'udp' : 'sctp', addr: e.addr, port: e.port };
    } else if (t === '-f') {
      key = { kind: 'fwmark', family: 'inet', fwmark: uint(tokens[++i], U32_MAX, 'fwmark') };
    } else if (t === '-6') {
      v6 = true;
    } else if (VALUED.has(t)) {
      opts.set(t, tokens[++i]);
    } else if (t === '-g' || t === '-i' || t === '-m' || t === '-o' || t === 'ops') {
      opts.set(t === 'ops' ? '-o' : t, undefined);
    } else {
      throw new RuleError(`unknown option '${t}'`);
    }
  }
  if (!key) throw new RuleError('no service (-t, -u, --sctp-service or -f)');
  if (v6 && key.kind === 'fwmark') key = { ...key, family: 'inet6' };
  return { cmd, key, opts };
}

/** Parse ipvsadm-save text (`-A ...` service and `-a ...` destination lines; `#` comments). */
export function parseRules(text: string, file: string): RulesParse {
  const errors: string[] = [];
  const entries = new Map<string, { service: Service; dests: Map<string, Destination> }>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      const r = parseRule(line.split(/\s+/));
      const id = serviceId(r.key);
      if (r.cmd === '-A') {
        if (entries.has(id)) throw new RuleError('duplicate service');
        const pers = r.opts.has('-p');
        entries.set(id, {
          service: {
            key: r.key,
            scheduler: r.opts.get('-s') ?? 'wlc',
            persistent: pers,
            timeout: pers ? uint(r.opts.get('-p') ?? '300', PERSISTENCE_MAX, 'persistence timeout') : 0,
            onePacket: r.opts.has('-o'),
            netmask: r.opts.has('-M') ? mask(r.opts.get('-M') ?? '', r.key.family) : fullNetmask(r.key.family),
          },
          dests: new Map(),
        });
        return;
      }
      const e = entries.get(id);
      if (!e) throw new RuleError('destination of a service not defined above');
      const ep = endpoint(r.opts.get('-r') ?? '');
      const forward: ForwardMethod = r.opts.has('-m') ? 'masq' : r.opts.has('-i') ? 'tunnel' : 'route';
      const d: Destination = {
        addr: ep.addr,
        family: ep.family,
        port: ep.port,
        forward,
        weight: r.opts.has('-w') ? uint(r.opts.get('-w'), WEIGHT_MAX, 'weight') : 1,
        upperThreshold: r.opts.has('-x') ? uint(r.opts.get('-x'), U32_MAX, 'upper threshold') : 0,
        lowerThreshold: r.opts.has('-y') ? uint(r.opts.get('-y'), U32_MAX, 'lower threshold') : 0,
      };
      if (e.dests.has(destId(d))) throw new RuleError('duplicate destination');
      e.dests.set(destId(d), d);
    } catch (err) {
      if (!(err instanceof RuleError)) throw err;
      errors.push(`${file}:${i + 1}: ${err.message}`);
    }
  });
  if (errors.length > 0) return { ok: false, errors };
  const table: Entry[] = [...entries.values()].map((e) => ({ service: e.service, dests: [...e.dests.values()] }));
  return { ok: true, table };
}
