// m_tag(9) functions one by one against FreeBSD's uipc_mbuf2.c semantics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakCheck } from '../helpers.js';
import { zoneStats } from '../../uma/stats.js';
import * as MB from '../../kern/mbuf/index.js';
import { setup } from './util.js';

const { M_NOWAIT, MT_DATA } = MB;

test('m_tag_alloc / m_tag_get / m_tag_free: header fields, 32-bit cookies, MTAG_ABI_COMPAT, size checks', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const t = MB.m_tag_alloc(mb, 0xfeedface, 7, 100, M_NOWAIT);
  assert.equal(MB.tagCookie(mb, t) >>> 0, 0xfeedface);
  assert.equal(MB.tagId(mb, t), 7);
  assert.equal(MB.tagLen(mb, t), 100);
  assert.equal(MB.tagData(t), t + MB.TAG_HDR);
  assert.equal(MB.m_tag_next(mb, t), 0);
  const g = MB.m_tag_get(mb, 7, 0, M_NOWAIT);
  assert.equal(MB.tagCookie(mb, g), MB.MTAG_ABI_COMPAT);
  const big = MB.m_tag_alloc(mb, 1, 1, MB.MTAG_MAX_LEN, M_NOWAIT);
  assert.ok(big !== 0);
  assert.throws(() => MB.m_tag_alloc(mb, 1, 1, MB.MTAG_MAX_LEN + 1, M_NOWAIT), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => MB.m_tag_alloc(mb, 1, -1, 4, M_NOWAIT), { code: 'ERR_SLABNET_INVALID_ARG' });
  for (const x of [t, g, big]) MB.m_tag_free(mb, x);
  done();
});

test('m_tag_prepend / m_tag_first / m_tag_next / m_tag_unlink / m_tag_delete / m_tag_init', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
  assert.equal(MB.m_tag_first(mb, m), 0);
  const [a, b, c] = [1, 2, 3].map((id) => MB.m_tag_get(mb, id, 4, M_NOWAIT));
  MB.m_tag_prepend(mb, m, a);
  MB.m_tag_prepend(mb, m, b);
  MB.m_tag_prepend(mb, m, c);
  assert.deepEqual([MB.m_tag_first(mb, m), MB.m_tag_next(mb, c), MB.m_tag_next(mb, b), MB.m_tag_next(mb, a)], [c, b, a, 0]);
  MB.m_tag_unlink(mb, m, b); // from the middle; b stays allocated
  assert.equal(MB.m_tag_next(mb, c), a);
  MB.m_tag_free(mb, b);
  MB.m_tag_delete(mb, m, c); // the first one
  assert.equal(MB.m_tag_first(mb, m), a);
  MB.m_tag_delete(mb, m, a); // the last one
  assert.equal(MB.m_tag_first(mb, m), 0);
  mb.i32[(m + MB.PH_TAGS) >> 2] = 12345; // garbage, as in an uninitialized header
  MB.m_tag_init(mb, m);
  assert.equal(MB.m_tag_first(mb, m), 0);
  mb.m_free(m);
  done();
});

test('m_tag_locate / m_tag_find: cookie and id both match, search continues after a given tag', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
  const x1 = MB.m_tag_alloc(mb, 0xaaaa, 5, 0, M_NOWAIT);
  const y = MB.m_tag_alloc(mb, 0xbbbb, 5, 0, M_NOWAIT);
  const x2 = MB.m_tag_alloc(mb, 0xaaaa, 5, 0, M_NOWAIT);
  const o = MB.m_tag_get(mb, 5, 0, M_NOWAIT);
  for (const t of [o, x2, y, x1]) MB.m_tag_prepend(mb, m, t); // order: x1 y x2 o
  assert.equal(MB.m_tag_locate(mb, m, 0xaaaa, 5, 0), x1);
  assert.equal(MB.m_tag_locate(mb, m, 0xaaaa, 5, x1), x2);
  assert.equal(MB.m_tag_locate(mb, m, 0xaaaa, 5, x2), 0);
  assert.equal(MB.m_tag_locate(mb, m, 0xaaaa, 6, 0), 0, 'the id must match too');
  assert.equal(MB.m_tag_find(mb, m, 5, 0), o, 'm_tag_find only sees MTAG_ABI_COMPAT tags');
  assert.equal(MB.m_tag_find(mb, m, 5, o), 0);
  mb.m_free(m); // all four freed with the header
  done();
});

test('m_tag_delete_chain / m_tag_delete_nonpersistent: which tags go and which stay', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
  const ids = [1, 2 | MB.MTAG_PERSISTENT, 3, 4 | MB.MTAG_PERSISTENT];
  const tags = ids.map((id) => MB.m_tag_get(mb, id, 8, M_NOWAIT));
  for (const t of [...tags].reverse()) MB.m_tag_prepend(mb, m, t); // order as ids
  MB.m_tag_delete_nonpersistent(mb, m);
  assert.deepEqual([MB.m_tag_first(mb, m), MB.m_tag_next(mb, tags[1])], [tags[1], tags[3]]);
  MB.m_tag_delete_chain(mb, m, tags[1]); // everything after tags[1]
  assert.equal(MB.m_tag_first(mb, m), tags[1]);
  assert.equal(MB.m_tag_next(mb, tags[1]), 0);
  MB.m_tag_delete_chain(mb, m, 0); // everything
  assert.equal(MB.m_tag_first(mb, m), 0);
  const plain = mb.m_get(M_NOWAIT, MT_DATA);
  assert.throws(() => MB.m_tag_delete_chain(mb, plain, 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_free(plain);
  mb.m_free(m);
  done();
});

test('m_tag_copy / m_tag_copy_chain: deep copies in order; to\'s old tags replaced; failure leaves to with none', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const from = mb.m_gethdr(M_NOWAIT, MT_DATA);
  const to = mb.m_gethdr(M_NOWAIT, MT_DATA);
  const a = MB.m_tag_alloc(mb, 0x77, 1, 12, M_NOWAIT);
  const b = MB.m_tag_alloc(mb, 0x77, 2, 600, M_NOWAIT);
  mb.u8.set([1, 2, 3], MB.tagData(a));
  mb.u8.fill(9, MB.tagData(b), MB.tagData(b) + 600);
  MB.m_tag_prepend(mb, from, b);
  MB.m_tag_prepend(mb, from, a);
  const c = MB.m_tag_copy(mb, a, M_NOWAIT);
  assert.notEqual(c, a);
  assert.deepEqual([MB.tagCookie(mb, c), MB.tagId(mb, c), MB.tagLen(mb, c)], [0x77, 1, 12]);
  assert.deepEqual([...mb.u8.subarray(MB.tagData(c), MB.tagData(c) + 3)], [1, 2, 3]);
  assert.equal(MB.m_tag_next(mb, c), 0, 'a copy is on no list');
  MB.m_tag_free(mb, c);
  MB.m_tag_prepend(mb, to, MB.m_tag_get(mb, 99, 0, M_NOWAIT));
  assert.equal(MB.m_tag_copy_chain(mb, to, from, M_NOWAIT), true);
  const ca = MB.m_tag_first(mb, to);
  const cb = MB.m_tag_next(mb, ca);
  assert.deepEqual([MB.tagId(mb, ca), MB.tagId(mb, cb), MB.m_tag_next(mb, cb)], [1, 2, 0], 'same order, the old tag gone');
  assert.equal(mb.u8[MB.tagData(cb) + 599], 9);
  // Failure: the 1024-byte class cannot give another item.
  MB.m_tag_delete_chain(mb, to, 0);
  const z = mb.tagZones.find((zz) => zoneStats(zz).size >= 600 + MB.TAG_HDR && zoneStats(zz).size < 2048)!;
  z.drain();
  z.setMaxItems(zoneStats(z).used);
  z.drain();
  MB.m_tag_prepend(mb, to, MB.m_tag_get(mb, 98, 0, M_NOWAIT)); // a small tag: freed by the failed copy
  assert.equal(MB.m_tag_copy_chain(mb, to, from, M_NOWAIT), false);
  assert.equal(MB.m_tag_first(mb, to), 0, 'FreeBSD: to ends with no tags');
  assert.equal(MB.m_tag_copy(mb, b, M_NOWAIT), 0);
  z.setMaxItems(0);
  mb.m_free(to);
  mb.m_free(from);
  done();
});
