// Paths of the config loader's fixtures, read from the source tree (the tests run compiled in dist/).

import { fileURLToPath } from 'node:url';

const ROOT = new URL('../../../test/fixtures/', import.meta.url);

/** Absolute path of a file or folder under test/fixtures/. */
export function fixture(rel: string): string {
  return fileURLToPath(new URL(rel, ROOT));
}
