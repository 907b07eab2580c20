// Smoke test of the UMA core: alloc/free through per-CPU buckets, drain to zero pages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testUma, leakCheck } from '../helpers.js';
import { M_NOWAIT } from '../../uma/flags.js';

test('alloc and free 10000 items, drain gives every page back', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('smoke', { size: 256 });
  const items: number[] = [];
  for (let i = 0; i < 10000; i++) items.push(z.alloc(M_NOWAIT));
  assert.equal(new Set(items).size, 10000);
  assert.ok(items.every((x) => x > 0 && x % 16 === 0));
  for (const it of items) z.free(it);
  z.drain();
  assert.equal(z.items, 0);
  assert.equal(z.keg.pagesHeld, 0);
  done();
});
