// The tester registry: testers by name — the built-ins, plus third-party testers loaded from a
// module named by the <tester module="..."> attribute or found as `<modules_path>/mod_<name>.js`.

import { stat } from 'node:fs/promises';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AttrType, Tester, TesterModule } from './contract.js';
import { BUILTIN_TESTERS } from './builtin.js';

/** A tester could not be found or loaded; the message is ready for the user (the loader adds file:line). */
export class TesterLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TesterLoadError';
  }
}

export interface ResolveOptions {
  /** The <tester module="..."> attribute: a path (relative to `baseDir`, or absolute) or a package name. */
  readonly module?: string;
  /** Directory of the XML file, for relative module paths. */
  readonly baseDir: string;
  /** The main config's `modules_path`: `<modulesPath>/mod_<name>.js` is tried for unknown names. */
  readonly modulesPath?: string;
}

/** Attribute names handled by the loader for every tester; a tester may not declare them itself. */
export const GENERIC_TESTER_ATTRS: readonly string[] = [
  'proto', 'module', 'testport', 'loopdelay', 'timeout', 'retries2ok', 'retries2fail', 'remove_on_fail',
  'debugcomm', 'logmicro', 'stats_samples', 'SSL', 'notify_up', 'notify_down', 'notify_min_reals',
  'notify_min_weight', 'real_notify_up', 'real_notify_down',
];

/** Real attributes of the loader; a tester attribute with one of these names could not be overridden per real. */
const REAL_ATTRS: readonly string[] = ['name', 'addr', 'port', 'weight', 'rt', 'uthresh', 'lthresh', 'bindaddr'];

const ATTR_TYPES: readonly AttrType[] = ['string', 'port', 'uint', 'int', 'bool'];

export class TesterRegistry {
  private readonly testers = new Map<string, Tester>();

  static withBuiltins(): TesterRegistry {
    const r = new TesterRegistry();
    for (const t of BUILTIN_TESTERS) r.add(t);
    return r;
  }

  get(name: string): Tester | undefined {
    return this.testers.get(name);
  }

  /** Register (or replace, as the original did for a later module of the same name) a tester. */
  add(tester: Tester): void {
    const problem = testerShapeProblem(tester);
    if (problem !== undefined) throw new TesterLoadError(`invalid tester: ${problem}`);
    this.testers.set(tester.name, tester);
  }

  names(): string[] {
    return [...this.testers.keys()].sort();
  }

  /**
   * Find the tester for a <tester proto="...">: from `opts.module` when given (it wins over a
   * registered tester of that name), else a registered tester, else `<modulesPath>/mod_<name>.js`.
   * Third-party testers are returned, not added: each config load resolves them afresh (Node's
   * module cache makes a repeated import free). Throws TesterLoadError.
   */
  async resolve(name: string, opts: ResolveOptions): Promise<Tester> {
    if (opts.module !== undefined) return checkName(await loadTesterModule(opts.module, opts.baseDir), name, opts.module);
    const known = this.get(name);
    if (known !== undefined) return known;
    if (opts.modulesPath !== undefined && /^[A-Za-z0-9_.-]+$/.test(name)) {
      const file = resolvePath(opts.modulesPath, `mod_${name}.js`);
      if (await isFile(file)) return checkName(await loadTesterModule(file, opts.baseDir), name, file);
    }
    throw new TesterLoadError(`Tester ${name} not registered`);
  }
}

function checkName(tester: Tester, name: string, spec: string): Tester {
  if (tester.name !== name) {
    throw new TesterLoadError(`module "${spec}" provides tester "${tester.name}", not "${name}"`);
  }
  return tester;
}

/**
 * Import a tester module and validate what it exports (`export default tester` or
 * `export const tester`; a CommonJS `module.exports = { tester }` works too).
 */
export async function loadTesterModule(spec: string, baseDir: string): Promise<Tester> {
  const isPath = isAbsolute(spec) || spec.startsWith('./') || spec.startsWith('../') || spec === '.' || spec === '..';
  // Bare names are package names, resolved from surealived's own installation like any dependency.
  const target = isPath ? pathToFileURL(resolvePath(baseDir, spec)).href : spec;
  let mod: TesterModule & Record<string, unknown>;
  try {
    mod = (await import(target)) as TesterModule & Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const reason = err.code === 'ERR_MODULE_NOT_FOUND' ? 'module not found' : `${err.name}: ${err.message}`;
    throw new TesterLoadError(`cannot load tester module "${spec}": ${reason}`);
  }
  const def = mod.default as (Record<string, unknown> | undefined);
  const candidates: unknown[] = [mod.tester, mod.default, def?.['tester']];
  const found = candidates.find((c) => typeof c === 'object' && c !== null);
  if (found === undefined) {
    throw new TesterLoadError(`module "${spec}" does not export a tester (expected \`export default\` or \`export const tester\`)`);
  }
  const problem = testerShapeProblem(found);
  if (problem !== undefined) throw new TesterLoadError(`module "${spec}" does not export a valid tester: ${problem}`);
  return found as Tester;
}

/** Why `x` is not a Tester (name, attrs, compile, probe), or undefined when it is one. */
export function testerShapeProblem(x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const t = x as Record<string, unknown>;
  if (typeof t['name'] !== 'string' || t['name'] === '') return 'missing `name` (a non-empty string)';
  if (!Array.isArray(t['attrs'])) return `tester "${t['name']}": missing \`attrs\` (an array of attribute specs)`;
  if (typeof t['compile'] !== 'function') return `tester "${t['name']}": missing \`compile(values, generic)\``;
  if (typeof t['probe'] !== 'function') return `tester "${t['name']}": missing \`probe(target, params, ctx)\``;
  if (t['close'] !== undefined && typeof t['close'] !== 'function') return `tester "${t['name']}": \`close\` is not a function`;
  const seen = new Set<string>();
  for (const a of t['attrs'] as unknown[]) {
    const spec = a as Record<string, unknown> | null;
    if (typeof spec !== 'object' || spec === null || typeof spec['name'] !== 'string' || spec['name'] === '') {
      return `tester "${t['name']}": an attribute spec has no name`;
    }
    const n = spec['name'];
    if (!ATTR_TYPES.includes(spec['type'] as AttrType)) return `tester "${t['name']}": attribute "${n}" has an unknown type ${JSON.stringify(spec['type'])}`;
    if (GENERIC_TESTER_ATTRS.includes(n) || REAL_ATTRS.includes(n)) return `tester "${t['name']}": attribute "${n}" clashes with a generic attribute`;
    if (seen.has(n)) return `tester "${t['name']}": attribute "${n}" declared twice`;
    seen.add(n);
  }
  return undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
