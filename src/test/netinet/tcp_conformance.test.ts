/**
 * FreeBSD's own packetdrill suite (/work/shared/conformance/tcp-testsuite,
 * 514 scripts) against slabnet's TCP through the packetdrill runner: every
 * script passes except those listed, with their reason, in
 * conformance/tcp-expected-failures.txt (a listed script that starts to
 * pass fails the test too, so the list stays true). Skipped when the
 * corpus is not on this machine.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { collectScripts, createEnv, runFile } from '../../packetdrill/run.js';
import { checkExpectations, loadExpectedFailures } from '../../packetdrill/report.js';

const CORPUS = process.env.SLABNET_TCP_TESTSUITE ?? '/work/shared/conformance/tcp-testsuite';
const LIST = fileURLToPath(new URL('../../../conformance/tcp-expected-failures.txt', import.meta.url));

test('tcp: FreeBSD tcp-testsuite passes except the listed scripts', { skip: !existsSync(CORPUS) && 'corpus not present' }, () => {
  const env = createEnv();
  const results = collectScripts([CORPUS]).map((f) => runFile(f, env));
  assert.ok(results.length >= 500, `found ${results.length} scripts`);
  const c = checkExpectations(CORPUS, results, loadExpectedFailures(LIST));
  const why = c.unexpectedFailures.map((r) => `${r.path}: ${r.error}`).join('\n');
  assert.deepEqual(c.unexpectedPasses, [], 'listed scripts that now pass');
  assert.equal(c.unexpectedFailures.length, 0, why);
});
