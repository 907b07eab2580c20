// Bucket memory: UMA's own zones keep on-page headers (an off-page header
// would come from another internal zone), and a thread stashes emptied
// buckets so that full/empty exchanges do not go to the bucket zone each time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testUma, leakCheck } from '../helpers.js';
import { zoneStats } from '../../uma/stats.js';
import { K_OFFPAGE } from '../../uma/keg.js';
import { M_NOWAIT } from '../../uma/flags.js';

test('UMA Buckets slabs carry their header on the page: no slab-header items are used for them', () => {
  const uma = testUma();
  const buckets = uma.zone('UMA Buckets');
  assert.equal(uma.arena.i32[buckets.keg.rec + K_OFFPAGE], 0);
  const headersBefore = zoneStats(uma.zone('UMA Slabs 64')).used;
  const got: number[] = [];
  for (let i = 0; i < 40; i++) got.push(buckets.alloc(M_NOWAIT));
  assert.ok(got.every((b) => b !== 0));
  assert.ok(buckets.keg.slabCount >= 20);
  assert.equal(zoneStats(uma.zone('UMA Slabs 64')).used, headersBefore);
  for (const b of got) buckets.free(b);
});

test('cycling buckets through the zone list reuses stashed empty buckets', () => {
  const uma = testUma({ debug: false });
  const done = leakCheck(uma);
  const zone = uma.zcreate('stash', { size: 256 });
  const buckets = uma.zone('UMA Buckets');
  const items = new Int32Array(2000);
  const round = () => {
    // Fill many buckets (freed to the zone's full list), then empty them again.
    for (let i = 0; i < items.length; i++) items[i] = zone.alloc(M_NOWAIT);
    for (let i = 0; i < items.length; i++) zone.free(items[i]);
  };
  round();
  const before = zoneStats(buckets).requests;
  for (let r = 0; r < 20; r++) round();
  const perRound = (zoneStats(buckets).requests - before) / 20;
  // Each round moves ~30 full and empty buckets; without the stash every empty
  // one went back to the bucket zone and a new one was taken for the next fill.
  assert.ok(perRound < 2, `bucket zone requests per round: ${perRound}`);
  zone.drain();
  done();
});
