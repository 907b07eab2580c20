/**
 * Where the FreeBSD TCP suite lives: beside the repository in CI
 * (<repo>/../shared/conformance/tcp-testsuite), or in the shared work area.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is dist/test/packetdrill/corpus.js). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The corpus directory, or null when it is not present. */
export function findCorpus(): string | null {
  for (const p of [join(REPO_ROOT, '..', 'shared', 'conformance', 'tcp-testsuite'), '/work/shared/conformance/tcp-testsuite']) if (existsSync(p)) return p;
  return null;
}
