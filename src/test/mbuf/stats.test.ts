// Per-type counters (mbtypes) in 128-byte per-CPU slots of the arena, summed
// by readers, and `netstat -m` with the FreeBSD 4 per-type breakdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakCheck } from '../helpers.js';
import { Arena } from '../../vm/arena.js';
import { CPU_SLOT_BYTES } from '../../vm/layout.js';
import { Uma } from '../../uma/uma.js';
import * as MB from '../../kern/mbuf/index.js';
import { setup } from './util.js';

const { M_NOWAIT, MT_DATA, MT_HEADER, MT_SONAME, MT_CONTROL, M_PKTHDR } = MB;

test('per-type counters: one padded slot per CPU in the arena; a cross-CPU free leaves the sum right', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  // A second CPU in this thread (its own Arena view, registered like a worker's).
  const arena2 = Arena.attach(uma.arena.sab);
  arena2.registerCpu();
  const uma2 = Uma.attach(arena2);
  const mb2 = MB.Mbufs.attach(uma2);
  const slot0 = mb.shared.typeSlot(uma.arena.cpu);
  const slot1 = mb.shared.typeSlot(arena2.cpu);
  assert.equal(Math.abs(slot1 - slot0) * 4 % CPU_SLOT_BYTES, 0, 'slots are CPU_SLOT_BYTES apart');
  assert.ok(Math.abs(slot1 - slot0) * 4 >= CPU_SLOT_BYTES, 'no two CPUs share a cache line');
  assert.equal((slot0 * 4) % CPU_SLOT_BYTES, 0, 'slots are line-aligned');
  assert.ok(slot0 * 4 > 0 && slot0 * 4 < uma.arena.size);
  const ms = [mb.m_get(M_NOWAIT, MT_DATA), mb.m_gethdr(M_NOWAIT, MT_HEADER), mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR)];
  assert.equal(mb.i32[slot0 + MT_DATA], 2);
  assert.equal(mb.i32[slot0 + MT_HEADER], 1);
  // CPU 2 frees what CPU 1 allocated: its own word goes negative, the sum is right.
  for (const m of ms) mb2.m_free(m);
  assert.equal(mb.i32[slot1 + MT_DATA], -2);
  assert.equal(mb.i32[slot0 + MT_DATA], 2);
  assert.equal(mb.typeCounts()[MT_DATA], 0);
  assert.equal(mb2.typeCounts()[MT_HEADER], 0);
  assert.deepEqual(MB.mbufStats(mb).types.filter((n) => n !== 0), []);
  // m_chtype moves a count between types on the calling CPU.
  const c = mb2.m_get(M_NOWAIT, MT_DATA);
  mb2.m_chtype(c, MT_CONTROL);
  assert.equal(mb.typeCounts()[MT_CONTROL], 1);
  assert.equal(mb.typeCounts()[MT_DATA], 0);
  mb.m_free(c);
  assert.equal(mb.typeCounts()[MT_CONTROL], 0);
  uma2.flushCpuCaches();
  mb.drainPacketCache();
  done();
});

test('netstat -m byType: FreeBSD 4 per-type lines after the first line, only types in use', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const ms = [
    mb.m_get(M_NOWAIT, MT_DATA),
    mb.m_get(M_NOWAIT, MT_DATA),
    mb.m_gethdr(M_NOWAIT, MT_HEADER),
    mb.m_get(M_NOWAIT, MT_SONAME),
    mb.m_get(M_NOWAIT, 3),
  ];
  const text = MB.netstatM(mb, undefined, { byType: true }).split('\n');
  assert.match(text[0], /^5\/\d+\/\d+ mbufs in use \(current\/cache\/total\)$/);
  assert.deepEqual(text.slice(1, 5), [
    '\t2 mbufs allocated to data',
    '\t1 mbufs allocated to packet headers',
    '\t1 mbufs allocated to socket names and addresses',
    '\t1 mbufs allocated to <mbuf type 3>',
  ]);
  assert.match(text[5], / mbuf clusters in use /);
  const plain = MB.netstatM(mb).split('\n');
  assert.equal(plain.length, text.length - 4, 'the default output is the current FreeBSD one');
  for (const m of ms) mb.m_free(m);
  assert.equal(MB.netstatM(mb, undefined, { byType: true }).split('\n').length, plain.length);
  done();
});
