// Parses ipvsadm's own views (`-Sn` rules, `-Ln --thresholds/--tun-info/--timeout`) into plain data,
// so the guest script can compare them with what ipvs-netlink reads.

export interface SavedService {
  key: string;
  scheduler: string;
  persistent?: number;
  netmask?: string;
  onePacket: boolean;
  schedFlags: string[];
  pe?: string;
}

export interface SavedDest {
  service: string;
  server: string;
  forward: string;
  weight: number;
  upper: number;
  lower: number;
  tunType?: string;
  tunPort?: number;
  tunCsum?: string;
}

/** "tcp 10.0.0.1:80", "udp [2001:db8::1]:53", "fwm 5 v4" — the same keys serviceKey() builds. */
export function ipvsadmServiceKey(opt: string, value: string, v6Flag: boolean): string {
  switch (opt) {
    case '-t':
      return `tcp ${value}`;
    case '-u':
      return `udp ${value}`;
    case '--sctp-service':
      return `sctp ${value}`;
    case '-f':
      return `fwm ${value} v${v6Flag ? 6 : 4}`;
    default:
      throw new Error(`unknown service option ${opt}`);
  }
}

export function parseSave(text: string): { services: Map<string, SavedService>; dests: SavedDest[] } {
  const services = new Map<string, SavedService>();
  const dests: SavedDest[] = [];
  for (const line of text.split('\n')) {
    const tok = line.trim().split(/\s+/);
    if (tok[0] !== '-A' && tok[0] !== '-a') continue;
    const opts = new Map<string, string>();
    const switches = new Set<string>();
    let svcOpt = '';
    let svcVal = '';
    for (let i = 1; i < tok.length; i++) {
      const t = tok[i] ?? '';
      if (t === '-t' || t === '-u' || t === '--sctp-service' || t === '-f') {
        svcOpt = t;
        svcVal = tok[++i] ?? '';
      } else if (['-s', '-p', '-M', '-b', '--pe', '-r', '-w', '-x', '-y', '--tun-type', '--tun-port'].includes(t)) {
        opts.set(t, tok[++i] ?? '');
      } else switches.add(t);
    }
    const key = ipvsadmServiceKey(svcOpt, svcVal, switches.has('-6'));
    if (tok[0] === '-A') {
      const s: SavedService = {
        key,
        scheduler: opts.get('-s') ?? '',
        onePacket: switches.has('-o'),
        schedFlags: opts.get('-b')?.split(',') ?? [],
      };
      if (opts.has('-p')) s.persistent = Number(opts.get('-p'));
      const mask = opts.get('-M');
      if (mask !== undefined) s.netmask = mask;
      const pe = opts.get('--pe');
      if (pe !== undefined) s.pe = pe;
      services.set(key, s);
    } else {
      const forward = switches.has('-m') ? 'masq' : switches.has('-i') ? 'tunnel' : switches.has('-g') ? 'route' : '?';
      const d: SavedDest = {
        service: key,
        server: opts.get('-r') ?? '',
        forward,
        weight: Number(opts.get('-w') ?? '1'),
        upper: Number(opts.get('-x') ?? '0'),
        lower: Number(opts.get('-y') ?? '0'),
      };
      const tt = opts.get('--tun-type');
      if (tt !== undefined) d.tunType = tt;
      const tp = opts.get('--tun-port');
      if (tp !== undefined) d.tunPort = Number(tp);
      for (const c of ['--tun-nocsum', '--tun-csum', '--tun-remcsum']) if (switches.has(c)) d.tunCsum = c;
      dests.push(d);
    }
  }
  return { services, dests };
}

/** `-Ln` style listings: per "service line" the dest lines' columns, keyed "<service line> -> <server>". */
export function parseList(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const line of text.split('\n')) {
    if (/^(TCP|UDP|SCTP|FWM)\s/.test(line)) {
      const t = line.trim().split(/\s+/);
      current = `${t[0]} ${t[1]}`;
    } else if (/^\s+->\s/.test(line) && current) {
      const t = line.trim().split(/\s+/);
      if (t[1] === 'RemoteAddress:Port') continue;
      out.set(`${current} -> ${t[1]}`, t.slice(2));
    }
  }
  return out;
}

/** `ipvsadm -Ln --timeout`: "Timeout (tcp tcpfin udp): 900 120 300". */
export function parseTimeouts(text: string): { tcp: number; tcpFin: number; udp: number } {
  const m = /Timeout \(tcp tcpfin udp\): (\d+) (\d+) (\d+)/.exec(text);
  if (!m) throw new Error(`no timeouts in ${JSON.stringify(text)}`);
  return { tcp: Number(m[1]), tcpFin: Number(m[2]), udp: Number(m[3]) };
}
