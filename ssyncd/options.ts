// ssyncd's command line, compatible with Zevenet ssyncd v1.0.0 (spec 2.1): -M/-B (last wins), -a, -p,
// -d, -h, short options bundled or glued (`-Mdp7777`), long ones with `=` or a separate word. Fixed:
// `--daemon` takes no argument, a bad port is an error instead of atoi's 0. Ours: -b, -k, -c, -s.
// Pure: argv in, options or a usage error out.

export const HELP_TEXT = [
  'Zevenet Ssyncd v1.0.0 ',
  '',
  'Usage: ssyncd -[MB] [adp]',
  '    ',
  'Examples',
  '    ssyncd -M [-p 7777]',
  '    ssyncd -B [-a 127.0.0.1 -p 7777]',
  '',
  'Commands: Either long or short options are allowed.',
  '    -M  --master                        start master node',
  '    -B  --backup                        start backup node',
  '',
  'Options:',
  '    -d  --daemon                        run ssyncd as daemon',
  '    -a  --address   [master address]    master node address',
  '    -p  --port      [master port]       master listening port',
].join('\n');

/** Our additions, printed after the original text. */
export const EXTENSION_HELP = [
  '',
  'Extensions (surealived-ts):',
  '    -b  --bind      [address]           master: listen only here; backup: connect from here',
  '    -k  --key       [key file]          shared key: authenticate peers and every frame',
  '    -c  --config    [file]              configuration file (default /etc/ssyncd/ssyncd.cfg)',
  '    -s  --socket    [path]              control socket (default /run/ssyncd/ssyncd.sock)',
].join('\n');

export interface SsyncdOptions {
  readonly mode: 'master' | 'backup' | undefined;
  readonly daemon: boolean;
  readonly help: boolean;
  readonly address: string | undefined;
  readonly port: number | undefined;
  readonly bind: string | undefined;
  readonly keyFile: string | undefined;
  readonly config: string | undefined;
  readonly socket: string | undefined;
}

export type ParseResult = { readonly ok: true; readonly options: SsyncdOptions } | { readonly ok: false; readonly error: string };

const LONG: Readonly<Record<string, string>> = {
  master: 'M',
  backup: 'B',
  daemon: 'd',
  help: 'h',
  address: 'a',
  port: 'p',
  bind: 'b',
  key: 'k',
  config: 'c',
  socket: 's',
};
const TAKES_VALUE = new Set(['a', 'p', 'b', 'k', 'c', 's']);

export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

export function parseArgs(argv: readonly string[]): ParseResult {
  let mode: SsyncdOptions['mode'];
  let daemon = false;
  let help = false;
  const values = new Map<string, string>();
  const flag = (c: string, value: string | undefined): string | undefined => {
    switch (c) {
      case 'M':
        mode = 'master';
        return undefined;
      case 'B':
        mode = 'backup';
        return undefined;
      case 'd':
        daemon = true;
        return undefined;
      case 'h':
        help = true;
        return undefined;
      default:
        if (!TAKES_VALUE.has(c)) return `unknown option -${c}`;
        if (value === undefined || value === '') return `option -${c} needs a value`;
        values.set(c, value);
        return undefined;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const c = LONG[name];
      if (!c) return { ok: false, error: `unknown option ${a}` };
      let value: string | undefined;
      if (TAKES_VALUE.has(c)) value = eq < 0 ? argv[++i] : a.slice(eq + 1);
      else if (eq >= 0) return { ok: false, error: `option --${name} takes no value` };
      const err = flag(c, value);
      if (err) return { ok: false, error: err };
    } else if (a.startsWith('-') && a.length > 1) {
      for (let k = 1; k < a.length; k++) {
        const c = a[k]!;
        if (TAKES_VALUE.has(c)) {
          const value = k + 1 < a.length ? a.slice(k + 1) : argv[++i];
          const err = flag(c, value);
          if (err) return { ok: false, error: err };
          break;
        }
        const err = flag(c, undefined);
        if (err) return { ok: false, error: err };
      }
    } else return { ok: false, error: `unexpected argument ${JSON.stringify(a)}` };
  }
  let port: number | undefined;
  if (values.has('p')) {
    port = parsePort(values.get('p')!);
    if (port === undefined) return { ok: false, error: `port ${JSON.stringify(values.get('p'))} is not 1-65535` };
  }
  return {
    ok: true,
    options: {
      mode,
      daemon,
      help,
      address: values.get('a'),
      port,
      bind: values.get('b'),
      keyFile: values.get('k'),
      config: values.get('c'),
      socket: values.get('s'),
    },
  };
}
