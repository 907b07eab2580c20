// A fresh copy of read-only storage is writable: m_dup, m_unshare, m_defrag
// and m_fragment build new storage, so M_RDONLY (a property of the old
// storage) must not follow the packet header onto the copy. With it, the
// usual "while (!M_WRITABLE(m)) m = m_unshare(m)" loop never ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as MB from '../../kern/mbuf/index.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { fresh } from './util.js';

const DATA = Uint8Array.from({ length: 600 }, (_, i) => (i * 7) & 0xff);

/** A packet whose header mbuf carries read-only external storage (a page lent by "a driver"), then one ordinary mbuf. */
function readOnlyPacket(mb: MB.Mbufs): { m: number; page: number } {
  const page = mb.zJumbop.alloc(M_NOWAIT);
  mb.u8.set(DATA.subarray(0, 500), page);
  mb.registerExtFree(11, () => {});
  const m = mb.m_gethdr(M_NOWAIT, MB.MT_DATA);
  mb.m_extadd(m, page, MB.MJUMPAGESIZE, 11, 0, 0, MB.M_RDONLY);
  mb.setLen(m, 500);
  const n = mb.m_get(M_NOWAIT, MB.MT_DATA);
  mb.u8.set(DATA.subarray(500), mb.m_data(n));
  mb.setLen(n, 100);
  mb.setNext(m, n);
  mb.setPkthdrLen(m, 600);
  mb.setFlags(m, mb.m_flags(m) | MB.M_BCAST); // an ordinary copyable flag, which must survive
  assert.equal(MB.M_WRITABLE(mb, m), false);
  return { m, page };
}

function assertWritableCopy(mb: MB.Mbufs, c: number, what: string): void {
  assert.ok(c !== 0, `${what} failed`);
  for (let x = c; x !== 0; x = mb.m_next(x)) {
    assert.equal(MB.M_WRITABLE(mb, x), true, `${what}: mbuf ${x} of the copy is not writable`);
    assert.equal(mb.m_flags(x) & MB.M_RDONLY, 0, `${what}: M_RDONLY on fresh storage`);
  }
  assert.ok((mb.m_flags(c) & MB.M_BCAST) !== 0, `${what}: other header flags are kept`);
  assert.deepEqual(MB.m_tobytes(mb, c), DATA, `${what}: same bytes`);
}

test('m_dup of read-only storage is writable', () => {
  const { mb, fin } = fresh();
  const { m, page } = readOnlyPacket(mb);
  const c = MB.m_dup(mb, m, M_NOWAIT);
  assertWritableCopy(mb, c, 'm_dup');
  assert.equal(MB.M_WRITABLE(mb, m), false, 'the original stays read-only');
  mb.m_freem(c);
  mb.m_freem(m);
  mb.zJumbop.free(page);
  fin();
});

test('m_unshare of read-only storage is writable: the unshare loop ends after one pass', () => {
  const { mb, fin } = fresh();
  let { m, page } = readOnlyPacket(mb);
  let passes = 0;
  const allWritable = (x: number): boolean => {
    for (; x !== 0; x = mb.m_next(x)) if (!MB.M_WRITABLE(mb, x)) return false;
    return true;
  };
  while (!allWritable(m)) {
    assert.ok(++passes <= 3, 'm_unshare never makes the packet writable');
    m = MB.m_unshare(mb, m, M_NOWAIT);
    assert.ok(m !== 0);
  }
  assert.equal(passes, 1);
  assertWritableCopy(mb, m, 'm_unshare');
  mb.m_freem(m);
  mb.zJumbop.free(page);
  fin();
});

test('m_defrag of read-only storage is writable', () => {
  const { mb, fin } = fresh();
  const { m, page } = readOnlyPacket(mb);
  const c = MB.m_defrag(mb, m, M_NOWAIT);
  assertWritableCopy(mb, c, 'm_defrag');
  mb.m_freem(c);
  mb.zJumbop.free(page);
  fin();
});

test('m_fragment of read-only storage is writable', () => {
  const { mb, fin } = fresh();
  const { m, page } = readOnlyPacket(mb);
  const c = MB.m_fragment(mb, m, M_NOWAIT, 128);
  assert.notEqual(c, m);
  assertWritableCopy(mb, c, 'm_fragment');
  mb.m_freem(c);
  mb.zJumbop.free(page);
  fin();
});

test('m_move_pkthdr onto fresh storage does not carry M_RDONLY; m_copym (shared storage) stays read-only', () => {
  const { mb, fin } = fresh();
  const { m, page } = readOnlyPacket(mb);
  const r = MB.m_copym(mb, m, 0, MB.M_COPYALL, M_NOWAIT);
  assert.ok(r !== 0);
  assert.equal(MB.M_WRITABLE(mb, r), false, 'a reference to read-only storage is read-only');
  mb.m_freem(r);
  const h = mb.m_gethdr(M_NOWAIT, MB.MT_DATA);
  MB.m_move_pkthdr(mb, h, m);
  assert.equal(mb.m_flags(h) & MB.M_RDONLY, 0);
  assert.ok((mb.m_flags(m) & MB.M_RDONLY) !== 0, 'the storage that was read-only still is');
  mb.m_free(h);
  mb.m_freem(m);
  mb.zJumbop.free(page);
  fin();
});
