// ipvssync's command line (spec 1.3) plus our additions (--list, --dry-run, --kernel-table, --once):
// getopt-style parsing into typed options, and the usage text. Pure.

import { VERSION } from '../common/version.js';

export interface CliOptions {
  readonly help: boolean;
  readonly version: boolean;
  readonly testConfig: boolean;
  readonly config: string;
  /** -v count minus one, as the original: -1 means "use ipvssync_logging". */
  readonly verbosity: number;
  readonly daemonize: boolean;
  readonly deleteUnmanaged: boolean;
  readonly keepDiffs: boolean;
  readonly list: boolean;
  readonly dryRun: boolean;
  readonly kernelTable: string | undefined;
  readonly once: boolean;
  /** Unknown options: ignored as the original did, but reported. */
  readonly unknown: readonly string[];
}

export type ArgsParse = { readonly ok: true; readonly options: CliOptions } | { readonly ok: false; readonly error: string };

export const DEFAULT_CONFIG = '/etc/surealived/surealived.cfg';

type Flag = 'help' | 'version' | 'testConfig' | 'daemonize' | 'deleteUnmanaged' | 'keepDiffs' | 'list' | 'dryRun' | 'once' | 'verbose';
type Valued = 'config' | 'kernelTable';

const SHORT: Readonly<Record<string, Flag | Valued>> = {
  h: 'help',
  V: 'version',
  t: 'testConfig',
  c: 'config',
  v: 'verbose',
  d: 'daemonize',
  u: 'deleteUnmanaged',
  k: 'keepDiffs',
};

const LONG: Readonly<Record<string, Flag | Valued>> = {
  help: 'help',
  version: 'version',
  'test-config': 'testConfig',
  config: 'config',
  verbose: 'verbose',
  daemonize: 'daemonize',
  'del-umanaged': 'deleteUnmanaged', // the original's spelling
  'del-unmanaged': 'deleteUnmanaged',
  'keep-diffs': 'keepDiffs',
  list: 'list',
  'dry-run': 'dryRun',
  'kernel-table': 'kernelTable',
  once: 'once',
};

const isValued = (k: Flag | Valued): k is Valued => k === 'config' || k === 'kernelTable';

export function parseArgs(argv: readonly string[]): ArgsParse {
  const flags = new Set<Flag>();
  let verbosity = -1;
  const values: Partial<Record<Valued, string>> = {};
  const unknown: string[] = [];
  const set = (k: Flag): void => {
    if (k === 'verbose') verbosity++;
    else flags.add(k);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const k = LONG[name];
      if (!k) {
        unknown.push(a);
        continue;
      }
      if (isValued(k)) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) return { ok: false, error: `option '--${name}' requires an argument` };
        values[k] = v;
      } else set(k);
    } else if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const k = SHORT[a[j]!];
        if (!k) {
          unknown.push(`-${a[j]}`);
          continue;
        }
        if (isValued(k)) {
          const rest = a.slice(j + 1);
          const v = rest !== '' ? rest : argv[++i];
          if (v === undefined) return { ok: false, error: `option requires an argument -- '${a[j]}'` };
          values[k] = v;
          break;
        }
        set(k);
      }
    } else {
      unknown.push(a); // positional arguments mean nothing to ipvssync
    }
  }
  return {
    ok: true,
    options: {
      help: flags.has('help'),
      version: flags.has('version'),
      testConfig: flags.has('testConfig'),
      config: values.config ?? DEFAULT_CONFIG,
      verbosity,
      daemonize: flags.has('daemonize'),
      deleteUnmanaged: flags.has('deleteUnmanaged'),
      keepDiffs: flags.has('keepDiffs'),
      list: flags.has('list'),
      dryRun: flags.has('dryRun'),
      kernelTable: values.kernelTable,
      once: flags.has('once'),
      unknown,
    },
  };
}

export function banner(): string {
  return `=== IPVSSync v.${VERSION} ===\n`;
}

/** The original's usage text, then the options this implementation adds. */
export function usage(): string {
  return (
    banner() +
    'Usage: ipvssync [options]\n' +
    'Ex   : ipvssync -c /home/surealived/surealived.cfg\n' +
    '\n' +
    'Options:\n' +
    '\t--help\t\t-h\t\tThis help info\n' +
    '\t--test-config\t-t\t\tTest ipvsfull.cfg configuration and exit\n' +
    '\t--config\t-c\t\tConfig file (default /etc/surealived/surealived.cfg)\n' +
    '\t--verbose\t-v\t\tIncrease verbosity level\n' +
    '\t--daemonize\t-d\t\tRun in background (daemonize)\n' +
    '\t--del-umanaged\t-u\t\tDelete unmanaged virtuals from IPVS table\n' +
    '\t--keep-diffs\t-k\t\tDon\'t remove processed diff files\n' +
    '\t--version\t-V\t\tShow Version information\n' +
    '\t--list\t\t\t\tPrint the IPVS table like ipvsadm -Ln, then the sync daemons like ipvsadm -L --daemon, and exit\n' +
    '\t--dry-run\t\t\tNever touch the kernel: keep the table in memory, print each op\n' +
    '\t--kernel-table <file>\t\tWith --dry-run: starting table, in ipvsadm -Sn form\n' +
    '\t--once\t\t\t\tStart-up sync only, then exit (with --list: print the table after it)\n'
  );
}

/** `-v` count -> level name, as surealived: -v error, -vv warn, -vvv info, -vvvv debug, more dbdet. */
export function levelFromVerbosity(v: number): 'error' | 'warn' | 'info' | 'debug' | 'dbdet' {
  return (['error', 'warn', 'info', 'debug', 'dbdet'] as const)[Math.min(v, 4)]!;
}
