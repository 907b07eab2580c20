// Golden-output tests of `vmstat -z` in FreeBSD's format (usr.bin/vmstat domemstat_zone).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testUma, leakCheck } from '../helpers.js';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { zoneStats, type ZoneStats } from '../../uma/stats.js';
import { formatVmstatZ, vmstatZ, VMSTAT_Z_HEADER } from '../../uma/vmstat.js';
import { M_NOWAIT } from '../../uma/flags.js';

const HEADER = 'ITEM                   SIZE  LIMIT     USED     FREE      REQ     FAIL SLEEP XDOMAIN';

function stats(name: string, size: number, limit: number, used: number, free: number, requests: number, fails: number, sleeps: number, xdomain: number): ZoneStats {
  return { name, size, limit, used, free, requests, fails, sleeps, xdomain, items: 0, bucketSize: 0, pages: 0, limitHits: 0 };
}

test('header and rows use FreeBSD column widths exactly', () => {
  assert.equal(VMSTAT_Z_HEADER, HEADER);
  const text = formatVmstatZ([
    stats('mbuf_cluster', 2048, 252540, 1016, 254, 1270, 0, 0, 0),
    stats('mbuf', 256, 0, 1, 2, 3, 4, 5, 6),
    stats('UMA Slabs 64', 64, 0, 12345678, 123456789, 9876543210, 12345, 7, 0),
    stats('a_zone_with_a_long_name', 100, 0, -3, 0.5, 1, 0, 0, 0),
  ]);
  assert.equal(
    text,
    HEADER + '\n' +
      'mbuf_cluster:          2048, 252540,    1016,     254,    1270,   0,   0,   0\n' +
      'mbuf:                   256,      0,       1,       2,       3,   4,   5,   6\n' +
      'UMA Slabs 64:            64,      0,12345678,123456789,9876543210,12345,   7,   0\n' +
      'a_zone_with_a_long_name:    100,      0,       0,       0,       1,   0,   0,   0\n',
  );
});

test('golden report of a fixed sequence of operations on a fresh arena', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  // golden: 256-byte items, 15 per slab; the first bucket fill takes 64 items (5 slabs = 75).
  const g = uma.zcreate('golden', { size: 256 });
  const items: number[] = [];
  for (let i = 0; i < 10; i++) items.push(g.alloc(M_NOWAIT));
  for (let i = 0; i < 4; i++) g.free(items.pop()!);
  // tiny: limit 2, the third NOWAIT allocation fails; 63 items per slab.
  const t = uma.zcreate('tiny', { size: 64 });
  t.setMaxItems(2);
  const a = t.alloc(M_NOWAIT);
  const b = t.alloc(M_NOWAIT);
  assert.equal(t.alloc(M_NOWAIT), 0);
  // A name longer than the ITEM column pushes its row right, as printf does.
  const l = uma.zcreate('a_zone_with_a_long_name', { size: 100 });
  const x = l.alloc(M_NOWAIT);
  // One item freed by a second CPU: a cross-domain free.
  const cpu1 = Uma.attach(Arena.attach(uma.arena.sab));
  cpu1.zone('golden').free(items.pop()!);
  const expected =
    HEADER + '\n' +
    'golden:                 256,      0,       5,      70,      10,   0,   0,   1\n' +
    'tiny:                    64,      2,       2,      61,       2,   1,   0,   0\n' +
    'a_zone_with_a_long_name:    100,      0,       1,     139,       1,   0,   0,   0\n';
  assert.equal(formatVmstatZ([g, t, l].map(zoneStats)), expected);
  // The full report lists UMA's own zones first, then ours in creation order.
  const full = vmstatZ(uma);
  const lines = full.trimEnd().split('\n');
  assert.equal(lines[0], HEADER);
  assert.match(lines[1], /^UMA Buckets: +1040, +0,/);
  assert.ok(full.endsWith(expected.slice(HEADER.length + 1)));
  t.free(a);
  t.free(b);
  l.free(x);
  for (const it of items) g.free(it);
  done();
  // After everything is back, USED is 0 in every row of our zones.
  for (const s of [g, t, l].map(zoneStats)) assert.equal(s.used, 0);
});
