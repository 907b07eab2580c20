// Basic allocation, free, accessors and the packet zone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testUma, leakCheck } from '../helpers.js';
import * as MB from '../../kern/mbuf/index.js';

const { M_NOWAIT, M_WAITOK, MT_DATA, M_PKTHDR, M_EXT } = MB;

test('layout: MLEN and MHLEN derived from MSIZE', () => {
  assert.equal(MB.MLEN, MB.MSIZE - MB.MHSIZE);
  assert.equal(MB.MHLEN, MB.MSIZE - MB.MPKTHSIZE);
  assert.ok(MB.M_EXT_END <= MB.MSIZE);
});

test('m_get / m_gethdr / m_getcl / m_free / m_freem', () => {
  const uma = testUma();
  const mb = MB.Mbufs.create(uma);
  const done = leakCheck(uma);
  const m = mb.m_get(M_NOWAIT, MT_DATA);
  assert.ok(m > 0);
  assert.equal(mb.m_len(m), 0);
  assert.equal(mb.m_data(m), m + MB.MHSIZE);
  assert.equal(mb.m_flags(m), 0);
  const h = mb.m_gethdr(M_WAITOK, MT_DATA);
  assert.equal(mb.m_flags(h), M_PKTHDR);
  assert.equal(mb.m_data(h), h + MB.MPKTHSIZE);
  assert.equal(mb.pkthdrLen(h), 0);
  const c = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  assert.equal(mb.m_flags(c), M_PKTHDR | M_EXT);
  assert.equal(mb.extType(c), MB.EXT_PACKET);
  assert.equal(mb.m_data(c), mb.extBuf(c));
  assert.equal(mb.extSize(c), MB.MCLBYTES);
  assert.equal(MB.M_TRAILINGSPACE(mb, c), MB.MCLBYTES);
  mb.setNext(h, c);
  mb.setNext(c, m);
  const payload = new Uint8Array(3000).map((_, i) => i * 7);
  assert.equal(MB.m_append(mb, h, 3000, payload), true);
  assert.equal(MB.m_length(mb, h), 3000);
  assert.equal(mb.pkthdrLen(h), 3000);
  const out = new Uint8Array(3000);
  MB.m_copydata(mb, h, 0, 3000, out);
  assert.deepEqual(out, payload);
  assert.equal(mb.typeCounts()[MT_DATA] >= 3, true);
  mb.m_freem(h);
  assert.equal(mb.typeCounts()[MT_DATA], 0);
  mb.drainPacketCache();
  done();
});
