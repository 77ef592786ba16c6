// Loads the XML service configuration (`surealived -t conf.xml`, daemon start and reload):
// read the file, parse it, resolve each <tester>'s tester (built in or third-party), then build
// and validate the ServiceConfig. Never probes anything. Any error rejects the whole file.

import { accessSync, constants, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import type { Tester } from '../../testers/contract.js';
import { TesterLoadError, type TesterRegistry } from '../../testers/registry.js';
import { formatIssue, type ConfigIssue } from './issues.js';
import type { ServiceConfig } from './model.js';
import { buildServiceConfig } from './services.js';
import { parseXml, type XmlElement } from './xml-tree.js';

export { formatIssue, type ConfigIssue };

export interface LoadResult {
  /** Present iff there is no error. */
  readonly config?: ServiceConfig;
  readonly issues: readonly ConfigIssue[];
}

export interface LoadOptions {
  readonly registry: TesterRegistry;
  /** The main config's `modules_path`, where `mod_<proto>.js` third-party testers are looked for. */
  readonly modulesPath?: string;
  /** Why a script cannot be run here (default: checks the file system). */
  readonly canExecute?: (path: string) => string | undefined;
}

export async function loadServiceConfig(path: string, opts: LoadOptions): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return { issues: [{ file: path, line: 0, severity: 'error', message: `cannot read the file: ${osReason(e)}` }] };
  }
  return parseServiceConfig(text, path, opts);
}

/** Same as loadServiceConfig, for text already read (`file` is used for messages and relative module paths). */
export async function parseServiceConfig(text: string, file: string, opts: LoadOptions): Promise<LoadResult> {
  const parsed = parseXml(text);
  if (!parsed.ok) return { issues: [{ file, line: parsed.line, severity: 'error', message: parsed.message }] };
  const baseDir = dirname(resolvePath(file));
  const testers = await resolveTesters(parsed.root, opts, baseDir);
  return buildServiceConfig({ file, root: parsed.root, testers, canExecute: opts.canExecute ?? canExecute });
}

/** The tester of every <tester> element (distinct proto/module pairs are resolved once). */
async function resolveTesters(root: XmlElement, opts: LoadOptions, baseDir: string): Promise<Map<XmlElement, Tester | string>> {
  const out = new Map<XmlElement, Tester | string>();
  const pending = new Map<string, Promise<Tester | string>>();
  const visit = async (el: XmlElement): Promise<void> => {
    if (el.tag === 'tester') {
      const protoText = el.attrs.get('proto')?.value;
      if (protoText === undefined) return;
      const proto = protoText.toLowerCase() === 'no-test' ? 'no-test' : protoText;
      // no-test reads no other attribute (as the original), so not `module` either.
      const module = proto === 'no-test' ? undefined : el.attrs.get('module')?.value;
      const key = JSON.stringify([proto, module ?? null]);
      let p = pending.get(key);
      if (p === undefined) {
        p = opts.registry
          .resolve(proto, { baseDir, ...(module === undefined ? {} : { module }), ...(opts.modulesPath === undefined ? {} : { modulesPath: opts.modulesPath }) })
          .catch((e: unknown) => (e instanceof TesterLoadError ? e.message : `cannot load tester ${proto}: ${String(e)}`));
        pending.set(key, p);
      }
      out.set(el, await p);
    }
    for (const child of el.children) await visit(child);
  };
  await visit(root);
  return out;
}

/** Checks a script the way execve would see it (relative paths from the working directory). */
function canExecute(file: string): string | undefined {
  try {
    if (!statSync(file).isFile()) return 'not a regular file';
    accessSync(file, constants.X_OK);
    return undefined;
  } catch (e) {
    return osReason(e);
  }
}

/** "no such file or directory (ENOENT)" from Node's "ENOENT: no such file or directory, open '/x'". */
function osReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const m = /^[A-Z0-9_]+: (.*?)(?:, \w+(?: '.*')?)?$/s.exec(err.message ?? '');
  return m !== null && err.code !== undefined ? `${m[1]} (${err.code})` : String(err.message ?? e);
}
