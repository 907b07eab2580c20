// The benchmark runner: argument parsing, and `run.js uma --quick --json` printing a well-formed
// JSON array as its last line (shape only: speed is never asserted in tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs, SUITES } from '../../bench/run.js';
import { TAP_BULK_IN, TAP_BULK_OUT, TAP_HTTP } from '../../bench/tcptap.js';

const runJs = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

test('parseArgs: suites, flags, defaults and errors', () => {
  assert.deepEqual(parseArgs(['uma', '--quick']), { suites: ['uma'], quick: true, json: false, cases: [] });
  assert.deepEqual(parseArgs(['--json']), { suites: [...SUITES], quick: false, json: true, cases: [] });
  assert.throws(() => parseArgs(['nosuch']), /unknown suite/);
  assert.throws(() => parseArgs(['--fast']), /unknown option/);
  assert.deepEqual(parseArgs(['tcp', '--case=idle', '--case=HTTP']).cases, ['idle', 'HTTP']);
  assert.throws(() => parseArgs(['--case=']), /unknown option/);
});

test('unknown suite exits 2 with a usage message', () => {
  const r = spawnSync(process.execPath, [runJs, 'nosuch'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown suite "nosuch"/);
});

test('uma --quick --json: table, then one JSON array of well-formed cases as the last line', () => {
  const r = spawnSync(process.execPath, [runJs, 'uma', '--quick', '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines.slice(0, 3).join('\n'), /suite.*case.*value/, 'a table comes first');
  const results = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>[];
  assert.ok(Array.isArray(results) && results.length >= 10);
  for (const c of results) {
    assert.equal(c.suite, 'uma');
    assert.equal(typeof c.case, 'string');
    assert.equal(typeof c.unit, 'string');
    assert.equal(typeof c.value, 'number');
    assert.ok(Number.isFinite(c.value));
    if ('baseline' in c) {
      assert.equal(typeof c.baselineValue, 'number');
      assert.equal(typeof c.ratio, 'number');
      if (c.baselineValue !== 0) assert.ok(Math.abs((c.ratio as number) - (c.value as number) / (c.baselineValue as number)) <= 1e-3 * Math.max(1, Math.abs(c.ratio as number)));
    }
    if ('efficiency' in c) assert.equal(typeof c.workers, 'number');
  }
  const names = results.map((c) => c.case as string);
  for (const want of ['zalloc+zfree (cache hit)', 'vs Buffer.allocUnsafe(256)', 'vs Buffer.allocUnsafe(2048)', 'vs global lock', 'GC events', 'producer/consumer', 'global lock, 1 worker', 'pairs, 1 worker']) {
    assert.ok(names.some((n) => n.includes(want)), `a case named like "${want}"`);
  }
  const scaling = results.filter((c) => typeof c.efficiency === 'number');
  assert.ok(scaling.some((c) => c.workers === 1 && c.efficiency === 1));
});

test('tcp --quick --case=idle: only the idle cases, 2,000 connections = 4,000 endpoints under the 2 KiB arena goal', () => {
  const r = spawnSync(process.execPath, [runJs, 'tcp', '--quick', '--json', '--case=idle'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const results = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>[];
  assert.deepEqual(
    results.map((c) => c.case),
    ['arena bytes per idle established endpoint', 'JS heap bytes per idle established endpoint'],
  );
  for (const c of results) {
    assert.equal(c.baselineValue, 2048);
    assert.match(c.note as string, /^4000 endpoints = 2000 connections with both ends in this process, 4000 ESTABLISHED/);
  }
  assert.ok((results[0].value as number) <= 2048);
});

test('tcp --quick --json: every case well-formed, baselines measured in the same run', () => {
  const r = spawnSync(process.execPath, [runJs, 'tcp', '--quick', '--json'], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const results = JSON.parse(lines[lines.length - 1]) as Record<string, unknown>[];
  const names = results.map((c) => c.case as string);
  for (const want of ['bulk transfer, lib/net.ts', 'bulk transfer, socket calls', 'HTTP/1.1 keep-alive', 'connection setup + close', 'arena bytes per idle', TAP_BULK_IN, TAP_BULK_OUT, TAP_HTTP]) {
    assert.ok(names.some((n) => n.startsWith(want)), `a case named like "${want}"`);
  }
  for (const c of results) {
    if ('skipped' in c) {
      // The TAP cases need root and tools; where the TAP tests must run (CI=true as root) so must they.
      assert.equal(typeof c.skipped, 'string');
      assert.ok(!(process.env.CI === 'true' && process.getuid?.() === 0), `${c.case} skipped under CI: ${c.skipped}`);
      assert.equal(c.value, null);
      continue;
    }
    assert.equal(c.suite, 'tcp');
    assert.equal(typeof c.value, 'number');
    assert.ok(Number.isFinite(c.value) && (c.value as number) >= 0);
    assert.equal(typeof c.baseline, 'string');
    assert.ok(typeof c.baselineValue === 'number' && c.baselineValue > 0);
    assert.ok(Math.abs((c.ratio as number) - (c.value as number) / (c.baselineValue as number)) <= 1e-3 * Math.max(1, Math.abs(c.ratio as number)));
  }
});
