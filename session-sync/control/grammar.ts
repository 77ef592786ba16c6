// ssyncdctl's command line: argv into one Command (or help, or a usage error). Pure. The words and the
// error texts of v1.0.0 (spec 3.3) are kept; unlike v1.0.0, the words must form exactly one command
// (v1.0.0 ignored unknown words and let the last keyword win), `write|clear recent table <name>` act
// on that table, and `help` prints a usage text.

import { canonicalAddr, nftRefProblem, recentNameProblem, type NftFamily } from '../model.js';
import { acceptsJson, farmNameProblem, type Command, type NftRef, type RequestOptions } from './commands.js';
import { DEFAULT_CONTROL_SOCKET } from './frame.js';

export type CliRequest =
  | { readonly kind: 'command'; readonly command: Command; readonly options: RequestOptions; readonly socket: string }
  | { readonly kind: 'help' }
  | { readonly kind: 'usage'; readonly message: string };

export type WordsParse = { readonly ok: true; readonly command: Command } | { readonly ok: false; readonly message: string };

/** Usage error texts; the first seven are v1.0.0's (` port number not valid` has its leading space). */
export const USAGE_ERRORS = {
  noFarm: 'no farm specified',
  startTarget: 'target to start not valid',
  stopService: 'service to stop not valid',
  service: 'service not valid',
  noTable: 'table name not specified',
  mode: 'mode not valid',
  port: ' port number not valid',
  command: 'Command not valid:',
  unknownService: 'unknown service:',
  address: 'address not valid',
  noNftSet: 'nft set not specified',
  jsonNotApplicable: '--json applies only to show, count and status',
} as const;

export const USAGE_TEXT = `Usage: ssyncdctl [-s <socket>] [--json] <command>

Commands:
  start recent                          replicate the xt_recent tables (master)
  start http <farm>                     replicate the sessions of a Pound farm (master)
  start nft [<family>] <table> <set>    replicate an nftables set or map (family inet when omitted)
  stop recent
  stop http <farm>
  stop nft [<family>] <table> <set>
  show recent|http|nft                  print the replicated data
  show mode                             print master or backup
  count recent|http|nft                 print the number of entries
  clear recent [table <name>]           drop the replicated copy (never the kernel's tables);
  clear http                            on a master the sources re-read the kernel
  clear nft
  write recent [table <name>]           write the copy to the kernel tables (or one table)
  write http                            send the copy to Pound
  write nft                             write the copy to the nftables sets
  switch master port <port>             become master, listening on <port>
  switch backup address <addr> port <port>
                                        become backup of the master at <addr>:<port>
  start overrides | stop overrides      replicate surealived's operator overrides (rset)
  show overrides                        print the replicated overrides
  write overrides                       apply them to the local surealived
  status                                peers, lag, last snapshot, queue depth
  quit                                  stop the daemon
  help                                  this text

Options:
  -s, --socket <path>   control socket (default ${DEFAULT_CONTROL_SOCKET})
  --json                reply in JSON (show, count and status)

Exit status: 0 done, 1 refused or failed, 2 usage error, 254 daemon not running.`;

/** Options then words, in any order; `--` ends the options. */
export function parseArgv(argv: readonly string[], defaultSocket = DEFAULT_CONTROL_SOCKET): CliRequest {
  let socket = defaultSocket;
  let json = false;
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-h' || a === '--help') return { kind: 'help' };
    if (a === '--json') {
      json = true;
    } else if (a === '-s' || a === '--socket') {
      const v = argv[i + 1];
      if (v === undefined || v === '') return { kind: 'usage', message: `option ${a} needs a socket path` };
      socket = v;
      i++;
    } else if (a.startsWith('--socket=')) {
      socket = a.slice('--socket='.length);
      if (socket === '') return { kind: 'usage', message: 'option --socket needs a socket path' };
    } else if (a.startsWith('-') && a.length > 1) {
      return { kind: 'usage', message: `unknown option ${a}` };
    } else {
      words.push(a);
    }
  }
  if (words[0] === 'help') return { kind: 'help' };
  const r = parseWords(words);
  if (!r.ok) return { kind: 'usage', message: r.message };
  if (json && !acceptsJson(r.command)) return { kind: 'usage', message: USAGE_ERRORS.jsonNotApplicable };
  return { kind: 'command', command: r.command, options: { json, wantStatus: true }, socket };
}

const bad = (message: string): WordsParse => ({ ok: false, message });
const ok = (command: Command): WordsParse => ({ ok: true, command });
const withWord = (message: string, w: string | undefined): string => (w === undefined ? message : `${message}: ${w}`);

/** The command words (`start http farm1`) into a Command; every word must be used. */
export function parseWords(words: readonly string[]): WordsParse {
  const [verb, ...rest] = words;
  switch (verb) {
    case undefined:
      return bad(USAGE_ERRORS.command);
    case 'start':
    case 'stop':
      return parseStartStop(verb, rest);
    case 'show':
      return parseShowCount('show', rest);
    case 'count':
      return parseShowCount('count', rest);
    case 'clear':
    case 'write':
      return parseClearWrite(verb, rest);
    case 'switch':
      return parseSwitch(rest);
    case 'quit':
    case 'status':
      return end(rest, { cmd: verb });
    default:
      return bad(`${USAGE_ERRORS.command} ${words.join(' ')}`);
  }
}

/** `cmd` when no words are left, else the leftover words as a usage error. */
function end(rest: readonly string[], cmd: Command): WordsParse {
  return rest.length === 0 ? ok(cmd) : bad(`${USAGE_ERRORS.command} unexpected ${rest.join(' ')}`);
}

function parseStartStop(verb: 'start' | 'stop', rest: readonly string[]): WordsParse {
  const [service, ...args] = rest;
  switch (service) {
    case 'recent':
      return end(args, { cmd: verb === 'start' ? 'start-recent' : 'stop-recent' });
    case 'http': {
      const [farm, ...more] = args;
      if (farm === undefined) return bad(USAGE_ERRORS.noFarm);
      const problem = farmNameProblem(farm);
      if (problem !== undefined) return bad(`farm name not valid: ${problem}`);
      return end(more, { cmd: verb === 'start' ? 'start-http' : 'stop-http', farm });
    }
    case 'nft': {
      const ref = parseNftRef(args);
      if ('message' in ref) return bad(ref.message);
      return ok({ cmd: verb === 'start' ? 'start-nft' : 'stop-nft', ref });
    }
    case 'overrides':
      return end(args, { cmd: verb === 'start' ? 'start-overrides' : 'stop-overrides' });
    default:
      return verb === 'start' ? bad(withWord(USAGE_ERRORS.startTarget, service)) : bad(service === undefined ? USAGE_ERRORS.stopService : `${USAGE_ERRORS.unknownService} ${service}`);
  }
}

/** `[<family>] <table> <set>`, family inet when omitted. */
function parseNftRef(args: readonly string[]): NftRef | { message: string } {
  if (args.length < 2) return { message: USAGE_ERRORS.noNftSet };
  if (args.length > 3) return { message: `${USAGE_ERRORS.command} unexpected ${args.slice(3).join(' ')}` };
  const [family, table, set] = args.length === 3 ? args : ['inet', ...args];
  const fields = { family: family!, table: table!, set: set! };
  const problem = nftRefProblem(fields);
  if (problem !== undefined) return { message: `nft set not valid: ${problem}` };
  return { kind: 'nft', family: fields.family as NftFamily, table: fields.table, set: fields.set };
}

function parseShowCount(verb: 'show' | 'count', rest: readonly string[]): WordsParse {
  const [service, ...args] = rest;
  switch (service) {
    case 'recent':
    case 'http':
    case 'nft':
      return end(args, { cmd: `${verb}-${service}` });
    case 'mode':
      if (verb === 'show') return end(args, { cmd: 'show-mode' });
      return bad(withWord(USAGE_ERRORS.service, service));
    case 'overrides':
      if (verb === 'show') return end(args, { cmd: 'show-overrides' });
      return bad(withWord(USAGE_ERRORS.service, service));
    default:
      return bad(withWord(USAGE_ERRORS.service, service));
  }
}

function parseClearWrite(verb: 'clear' | 'write', rest: readonly string[]): WordsParse {
  const [service, ...args] = rest;
  switch (service) {
    case 'http':
    case 'nft':
      return end(args, { cmd: `${verb}-${service}` });
    case 'overrides':
      if (verb === 'write') return end(args, { cmd: 'write-overrides' });
      return bad(withWord(USAGE_ERRORS.service, service));
    case 'recent': {
      if (args.length === 0) return ok({ cmd: `${verb}-recent` });
      const [kw, table, ...more] = args;
      if (kw !== 'table') return bad(`${USAGE_ERRORS.command} unexpected ${args.join(' ')}`);
      if (table === undefined) return bad(USAGE_ERRORS.noTable);
      const problem = recentNameProblem(table);
      if (problem !== undefined) return bad(`table name not valid: ${problem}`);
      return end(more, { cmd: `${verb}-recent-table`, table });
    }
    default:
      return bad(withWord(USAGE_ERRORS.service, service));
  }
}

function parsePort(kw: string | undefined, value: string | undefined): number | undefined {
  if (kw !== 'port' || value === undefined || !/^[0-9]{1,5}$/.test(value)) return undefined;
  const port = Number(value);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function parseSwitch(rest: readonly string[]): WordsParse {
  const [mode, ...args] = rest;
  if (mode === 'master') {
    const port = parsePort(args[0], args[1]);
    if (port === undefined) return bad(USAGE_ERRORS.port);
    return end(args.slice(2), { cmd: 'switch-master', port });
  }
  if (mode === 'backup') {
    if (args[0] !== 'address' || args[1] === undefined) return bad(USAGE_ERRORS.address);
    const ip = canonical(args[1]);
    if (ip === undefined) return bad(`${USAGE_ERRORS.address}: ${args[1]}`);
    const port = parsePort(args[2], args[3]);
    if (port === undefined) return bad(USAGE_ERRORS.port);
    return end(args.slice(4), { cmd: 'switch-backup', address: ip, port });
  }
  return bad(withWord(USAGE_ERRORS.mode, mode));
}

function canonical(text: string): string | undefined {
  // An IP literal only: v1.0.0 carried 4 raw octets, and a name would need a resolver here.
  const r = /^[0-9A-Fa-f:.]+$/.test(text) ? canonicalAddr(text) : undefined;
  return r?.addr;
}
