/**
 * Robustness of the runner (and the stack under it): scripts mutated at
 * random (lines dropped, duplicated, numbers and windows changed, times
 * stretched) never make runScriptText throw, never end in an internal
 * error, and never leave an mbuf behind. Seeds are our own scripts, plus the
 * FreeBSD suite when it is present. Fixed fast-check seed: reproducible.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { collectScripts, createEnv, runScriptText } from '../../packetdrill/run.js';
import { findCorpus, REPO_ROOT } from './corpus.js';

const corpus = findCorpus();
const seeds = collectScripts([join(REPO_ROOT, 'test', 'conformance', 'scripts'), ...(corpus === null ? [] : [join(corpus, 'snippets'), join(corpus, 'rcv-icmp')])]).map((f) => ({
  path: f,
  lines: readFileSync(f, 'utf8').split('\n'),
}));

const edit = fc.record({
  kind: fc.constantFrom('drop', 'dup', 'number', 'window', 'time'),
  at: fc.nat(),
  from: fc.nat(),
  delta: fc.integer({ min: -1000, max: 3000 }),
});

function mutate(lines: string[], edits: { kind: string; at: number; from: number; delta: number }[]): string {
  const out = lines.slice();
  for (const e of edits) {
    const i = e.at % out.length;
    if (e.kind === 'drop') out.splice(i, 1);
    else if (e.kind === 'dup') out.splice(i, 0, out[e.from % out.length]);
    else if (e.kind === 'number') out[i] = out[i].replace(/\d+/, (m) => String(Math.max(0, Number(m) + e.delta)));
    else if (e.kind === 'window') out[i] = out[i].replace(/win \d+/, `win ${Math.max(0, e.delta)}`);
    else out[i] = out[i].replace(/\+\d+\.\d+/, `+${(Math.abs(e.delta) / 100).toFixed(2)}`);
  }
  return out.join('\n');
}

test('mutated scripts never throw, never fail inside the runner, never leak', () => {
  const env = createEnv();
  fc.assert(
    fc.property(fc.nat(), fc.array(edit, { minLength: 1, maxLength: 4 }), (pick, edits) => {
      const s = seeds[pick % seeds.length];
      const r = runScriptText(mutate(s.lines, edits), s.path, env);
      assert.ok(r.error === null || !/internal error|leak:/.test(r.error), r.error ?? '');
    }),
    { seed: 20261201, numRuns: 300 },
  );
});
