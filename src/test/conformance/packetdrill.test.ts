/**
 * The FreeBSD TCP suite as slabnet's conformance bar (runs when the corpus
 * is present: <repo>/../shared/conformance/tcp-testsuite in CI). Every
 * script runs against the stack on virtual time; the run must agree with
 * test/conformance/expected-failures.txt exactly (a new failure fails the
 * test, and so does a listed script that now passes), and the per-group
 * counts in docs/conformance.md must be the ones this run measured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectScripts, createEnv, runFile } from '../../packetdrill/run.js';
import { checkExpectations, groupCounts, loadExpectedFailures } from '../../packetdrill/report.js';
import { findCorpus, REPO_ROOT } from '../packetdrill/corpus.js';

const corpus = findCorpus();

test('FreeBSD TCP suite: exactly the listed scripts fail, and docs/conformance.md is true', { skip: corpus === null ? 'corpus not present' : false }, () => {
  const env = createEnv();
  const results = collectScripts([corpus!]).map((f) => runFile(f, env));
  const expected = loadExpectedFailures(join(REPO_ROOT, 'test', 'conformance', 'expected-failures.txt'));
  const c = checkExpectations(corpus!, results, expected);
  assert.deepEqual(
    c.unexpectedFailures.map((r) => r.error),
    [],
    'scripts failed that are not in test/conformance/expected-failures.txt',
  );
  assert.deepEqual(c.unexpectedPasses, [], 'listed scripts now pass: remove them from test/conformance/expected-failures.txt');
  assert.deepEqual(c.missing, [], 'listed scripts that are not in the corpus');
  // docs/conformance.md: "| group | passed | scripts |" rows.
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'conformance.md'), 'utf8');
  const rows = new Map<string, [number, number]>();
  for (const m of doc.matchAll(/^\|\s*([a-z-]+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|/gm)) rows.set(m[1], [Number(m[2]), Number(m[3])]);
  for (const [g, n] of groupCounts(corpus!, results)) assert.deepEqual(rows.get(g), [n.pass, n.total], `docs/conformance.md row for ${g}`);
});

test("slabnet's own scripts (test/conformance/scripts: delayed ACK, Nagle, persist, keepalive, NewReno and SACK recovery, RTO, SYN timeout, TIME_WAIT expiry, data after close, SO_LINGER 0, SYN cookies, cc NewReno and CUBIC windows through recovery, ECN negotiation and ECE/CWR) all pass", () => {
  const env = createEnv();
  const dir = join(REPO_ROOT, 'test', 'conformance', 'scripts');
  const results = collectScripts([dir]).map((f) => runFile(f, env));
  assert.ok(results.length >= 15, `found ${results.length} scripts`);
  assert.deepEqual(
    results.filter((r) => !r.pass).map((r) => r.error),
    [],
  );
});
