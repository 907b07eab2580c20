// One test per allocation function of mbuf(9) and the buffer macros, against
// FreeBSD's semantics (kern_mbuf.c, sys/mbuf.h), including forced M_NOWAIT
// failures (zones limited to what is in use, caches drained: util.exhaust).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as MB from '../../kern/mbuf/index.js';
import { fresh, build, bytes, exhaust, unexhaust } from './util.js';

const { M_NOWAIT, M_WAITOK, MT_DATA, MT_HEADER, M_PKTHDR, M_EXT, M_EOR } = MB;

/** Scribble over every pkthdr and ext word a previous user could have left behind. */
function dirty(mb: MB.Mbufs, m: number): void {
  for (let off = MB.PH_RCVIF; off < MB.MPKTHSIZE; off += 4) mb.i32[(m + off) >> 2] = -1;
  mb.setNextpkt(m, 0x1230);
}

test('m_get: empty mbuf at m_dat, no flags, its type counted; 0 under M_NOWAIT exhaustion', () => {
  const { mb, fin } = fresh();
  const m = mb.m_get(M_NOWAIT, MT_HEADER);
  assert.equal(mb.m_len(m), 0);
  assert.equal(mb.m_data(m), m + MB.MHSIZE);
  assert.equal(mb.m_flags(m), 0);
  assert.equal(mb.m_type(m), MT_HEADER);
  assert.equal(mb.m_next(m), 0);
  assert.equal(mb.m_nextpkt(m), 0);
  assert.equal(MB.M_TRAILINGSPACE(mb, m), MB.MLEN);
  assert.equal(MB.M_LEADINGSPACE(mb, m), 0);
  assert.equal(mb.typeCounts()[MT_HEADER], 1);
  exhaust(mb);
  assert.equal(mb.m_get(M_NOWAIT, MT_DATA), 0);
  unexhaust(mb);
  assert.throws(() => mb.m_get(M_NOWAIT | M_WAITOK, MT_DATA), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_free(m);
  assert.equal(mb.typeCounts()[MT_HEADER], 0);
  fin();
});

test('m_gethdr: every pkthdr field zero even when the item was used before; data at m_pktdat', () => {
  const { mb, fin } = fresh();
  for (let round = 0; round < 3; round++) {
    const h = mb.m_gethdr(M_NOWAIT, MT_DATA);
    assert.equal(mb.m_flags(h), M_PKTHDR);
    assert.equal(mb.m_data(h), h + MB.MPKTHSIZE);
    assert.equal(mb.m_nextpkt(h), 0);
    for (let off = MB.PH_RCVIF; off < MB.MPKTHSIZE; off += 4) assert.equal(mb.i32[(h + off) >> 2], 0, `pkthdr word at ${off}`);
    assert.equal(MB.M_TRAILINGSPACE(mb, h), MB.MHLEN);
    dirty(mb, h);
    mb.setNextpkt(h, 0);
    mb.i32[(h + MB.PH_TAGS) >> 2] = 0; // no tags to free
    mb.m_free(h); // the same item comes back next round (LIFO cache)
  }
  exhaust(mb);
  assert.equal(mb.m_gethdr(M_NOWAIT, MT_DATA), 0);
  unexhaust(mb);
  fin();
});

test('m_getcl: packet-zone mbuf + cluster, flags kept, reuse after sharing is writable and clean', () => {
  const { mb, fin } = fresh();
  const c = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR | M_EOR);
  assert.equal(mb.m_flags(c), M_PKTHDR | M_EXT | M_EOR);
  assert.equal(mb.extType(c), MB.EXT_PACKET);
  assert.equal(mb.extSize(c), MB.MCLBYTES);
  assert.equal(mb.m_data(c), mb.extBuf(c));
  assert.equal(mb.extRefs(c), 1);
  assert.equal(MB.M_WRITABLE(mb, c), true);
  assert.equal(MB.M_TRAILINGSPACE(mb, c), MB.MCLBYTES);
  for (let off = MB.PH_RCVIF; off < MB.MPKTHSIZE; off += 4) assert.equal(mb.i32[(c + off) >> 2], 0);
  // Share the cluster, drop the original (the counter's holder) first, then the copy:
  // the packet item must go back whole, with its counter at 1 again.
  mb.setLen(c, 10);
  mb.setPkthdrLen(c, 10);
  const copy = MB.m_copypacket(mb, c, M_NOWAIT);
  assert.equal(mb.extRefs(c), 2);
  assert.equal(MB.M_WRITABLE(mb, c), false);
  const buf = mb.extBuf(c);
  mb.m_freem(c);
  assert.equal(mb.extRefs(copy), 1);
  mb.m_freem(copy);
  // Allocate until the packet cache hands that item out again.
  const got: number[] = [];
  let again = 0;
  while (again !== c && got.length < 1000) got.push((again = mb.m_getcl(M_NOWAIT, MT_DATA, 0)));
  assert.equal(again, c, 'the packet item is reused');
  assert.equal(mb.extBuf(again), buf, 'with its cluster still attached');
  assert.equal(mb.extRefs(again), 1);
  assert.equal(MB.M_WRITABLE(mb, again), true);
  assert.equal(mb.m_flags(again), M_EXT);
  assert.equal(mb.m_len(again), 0);
  for (const x of got) mb.m_free(x);
  // An atomic release (two references dropped in the other order) also resets it.
  const d = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
  mb.setLen(d, 1);
  const e = MB.m_copym(mb, d, 0, 1, M_NOWAIT);
  mb.m_free(e);
  mb.m_free(d);
  const f = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
  assert.equal(mb.extRefs(f), 1);
  mb.m_free(f);
  exhaust(mb);
  assert.equal(mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR), 0);
  unexhaust(mb);
  fin();
});

test('m_getjcl: each cluster size in its zone; MCLBYTES through the packet zone; bad size; failure frees the mbuf', () => {
  const { mb, fin } = fresh();
  const sizes: [number, number][] = [
    [MB.MCLBYTES, MB.EXT_PACKET],
    [MB.MJUMPAGESIZE, MB.EXT_JUMBOP],
    [MB.MJUM9BYTES, MB.EXT_JUMBO9],
    [MB.MJUM16BYTES, MB.EXT_JUMBO16],
  ];
  for (const [size, type] of sizes) {
    const m = mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, size);
    assert.equal(mb.extSize(m), size);
    assert.equal(mb.extType(m), type);
    assert.equal(MB.M_TRAILINGSPACE(mb, m), size);
    assert.equal(mb.m_flags(m) & M_PKTHDR, M_PKTHDR);
    mb.m_free(m);
  }
  assert.throws(() => mb.m_getjcl(M_NOWAIT, MT_DATA, 0, 3000), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.zJumbo9.drain();
  mb.zJumbo9.setMaxItems(1);
  const j = mb.m_getjcl(M_NOWAIT, MT_DATA, 0, MB.MJUM9BYTES);
  assert.ok(j !== 0);
  assert.equal(mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, MB.MJUM9BYTES), 0); // the mbuf it took is freed (leak check)
  mb.m_free(j);
  mb.zJumbo9.setMaxItems(0);
  fin();
});

test('m_get2: the smallest buffer that holds size in one piece, 0 above MJUMPAGESIZE', () => {
  const { mb, fin } = fresh();
  const cases: [number, number, number][] = [
    [0, M_PKTHDR, 0],
    [MB.MHLEN, M_PKTHDR, 0],
    [MB.MHLEN + 1, M_PKTHDR, MB.MCLBYTES],
    [MB.MLEN, 0, 0],
    [MB.MLEN + 1, 0, MB.MCLBYTES],
    [MB.MCLBYTES, 0, MB.MCLBYTES],
    [MB.MCLBYTES + 1, M_PKTHDR, MB.MJUMPAGESIZE],
    [MB.MJUMPAGESIZE, 0, MB.MJUMPAGESIZE],
  ];
  for (const [size, flags, ext] of cases) {
    const m = mb.m_get2(size, M_NOWAIT, MT_DATA, flags);
    assert.ok(m !== 0, `size ${size}`);
    assert.equal(mb.m_flags(m) & M_PKTHDR, flags);
    assert.equal(ext === 0 ? 0 : mb.extSize(m), ext, `size ${size}`);
    assert.ok(MB.M_TRAILINGSPACE(mb, m) >= size);
    mb.m_free(m);
  }
  assert.equal(mb.m_get2(MB.MJUMPAGESIZE + 1, M_NOWAIT, MT_DATA, 0), 0);
  assert.throws(() => mb.m_get2(-1, M_NOWAIT, MT_DATA, 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  fin();
});

test('m_getm2 / m_getm: room for len, pkthdr first only, M_EOR last only, len 0, appending, failure leaves m alone', () => {
  const { mb, fin } = fresh();
  const a = MB.m_getm2(mb, 0, 5000, M_NOWAIT, MT_DATA, M_PKTHDR | M_EOR);
  let room = 0;
  let k = 0;
  for (let m = a; m !== 0; m = mb.m_next(m), k++) {
    room += MB.M_TRAILINGSPACE(mb, m);
    assert.equal(mb.m_flags(m) & M_PKTHDR, k === 0 ? M_PKTHDR : 0);
    assert.equal(mb.m_flags(m) & M_EOR, mb.m_next(m) === 0 ? M_EOR : 0);
  }
  assert.ok(room >= 5000);
  assert.equal(mb.extSize(a), MB.MJUMPAGESIZE, 'more than MCLBYTES left: a jumbo page first');
  // Appending to a chain: no second pkthdr, the old tail loses M_EOR.
  const b = MB.m_getm2(mb, a, 100, M_NOWAIT, MT_DATA, M_PKTHDR | M_EOR);
  assert.equal(b, a);
  let tail = MB.m_last(mb, a);
  assert.equal(mb.m_flags(tail), M_EOR, 'a plain mbuf (100 < MINCLSIZE) ending the record');
  let eors = 0;
  for (let m = a; m !== 0; m = mb.m_next(m)) if (mb.m_flags(m) & M_EOR) eors++;
  assert.equal(eors, 1);
  // len 0: nothing appended to m (M_EOR stays only when asked), one empty mbuf without m.
  const count = MB.m_count(mb, a);
  assert.equal(MB.m_getm2(mb, a, 0, M_NOWAIT, MT_DATA, 0), a);
  assert.equal(MB.m_count(mb, a), count);
  assert.equal(mb.m_flags(MB.m_last(mb, a)) & M_EOR, 0);
  assert.equal(MB.m_getm2(mb, a, 0, M_NOWAIT, MT_DATA, M_EOR), a);
  assert.equal(mb.m_flags(MB.m_last(mb, a)) & M_EOR, M_EOR);
  const z = MB.m_getm2(mb, 0, 0, M_NOWAIT, MT_DATA, M_PKTHDR | M_EOR);
  assert.equal(MB.m_count(mb, z), 1);
  assert.equal(mb.m_flags(z), M_PKTHDR | M_EOR);
  assert.equal(mb.m_len(z), 0);
  mb.m_freem(z);
  // m_getm is m_getm2 with M_PKTHDR.
  const g = MB.m_getm(mb, 0, 300, M_NOWAIT, MT_DATA);
  assert.equal(mb.m_flags(g) & M_PKTHDR, M_PKTHDR);
  mb.m_freem(g);
  // Failure: the part made so far is freed, m untouched.
  tail = MB.m_last(mb, a);
  const n = MB.m_count(mb, a);
  exhaust(mb);
  assert.equal(MB.m_getm2(mb, a, 20000, M_NOWAIT, MT_DATA, 0), 0);
  unexhaust(mb);
  assert.equal(MB.m_count(mb, a), n);
  assert.equal(mb.m_next(tail), 0);
  mb.m_freem(a);
  fin();
});

test('m_clget / m_cljget: attach or return a bare cluster; refuse a second storage; failure leaves m as it was', () => {
  const { mb, fin } = fresh();
  const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
  assert.equal(mb.m_clget(m, M_NOWAIT), true);
  assert.equal(mb.m_flags(m), M_PKTHDR | M_EXT);
  assert.equal(mb.extType(m), MB.EXT_CLUSTER);
  assert.equal(mb.m_data(m), mb.extBuf(m));
  assert.throws(() => mb.m_cljget(m, M_NOWAIT, MB.MJUMPAGESIZE), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_free(m);
  const bare = mb.m_cljget(0, M_NOWAIT, MB.MJUM16BYTES);
  assert.ok(bare !== 0);
  mb.zJumbo16.free(bare);
  const n = mb.m_get(M_NOWAIT, MT_DATA);
  exhaust(mb);
  assert.equal(mb.m_cljget(n, M_NOWAIT, MB.MCLBYTES), 0);
  assert.equal(mb.m_clget(n, M_NOWAIT), false);
  unexhaust(mb);
  assert.equal(mb.m_flags(n), 0);
  assert.equal(mb.m_data(n), n + MB.MHSIZE);
  mb.m_free(n);
  fin();
});

test('m_extadd: M_RDONLY storage is not writable; EXT_FLAG_NOFREE storage is never given to a routine', () => {
  const { mb, fin } = fresh();
  const page = mb.zJumbop.alloc(M_NOWAIT);
  let calls = 0;
  mb.registerExtFree(9, () => calls++);
  const m = mb.m_get(M_NOWAIT, MT_DATA);
  mb.m_extadd(m, page, MB.MJUMPAGESIZE, 9, 0, 0, MB.M_RDONLY);
  assert.equal(MB.M_WRITABLE(mb, m), false);
  assert.equal(MB.M_TRAILINGSPACE(mb, m), 0);
  assert.equal(MB.M_LEADINGSPACE(mb, m), 0);
  assert.throws(() => mb.m_extadd(m, page, 10, 9, 0, 0, 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_free(m);
  assert.equal(calls, 1);
  const n = mb.m_get(M_NOWAIT, MT_DATA);
  mb.m_extadd(n, page, MB.MJUMPAGESIZE, 0, 0, 0, MB.EXT_FLAG_NOFREE);
  assert.equal(MB.M_WRITABLE(mb, n), true);
  mb.m_free(n);
  assert.equal(calls, 1);
  const o = mb.m_get(M_NOWAIT, MT_DATA);
  assert.throws(() => mb.m_extadd(o, page, MB.MJUMPAGESIZE, 0, 0, 0, 0, MB.EXT_CLUSTER), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => mb.m_extadd(o, page, MB.MJUMPAGESIZE, 77, 0, 0, 0), { code: 'ERR_SLABNET_INVALID_ARG' }); // no routine 77
  mb.m_free(o);
  mb.zJumbop.free(page);
  fin();
});

test('m_free / m_freem / m_freem_list: next returned, null chain allowed, packet lists freed', () => {
  const { mb, fin } = fresh();
  const m = build(mb, bytes(400), [{ len: 100, kind: 'm' }, { len: 300, kind: 'c' }]);
  const second = mb.m_next(m);
  assert.equal(mb.m_free(m), second);
  mb.m_freem(0);
  mb.m_freem(second);
  const p1 = build(mb, bytes(10), [{ len: 10, kind: 'm' }]);
  const p2 = build(mb, bytes(900), [{ len: 900, kind: 'c' }]);
  mb.setNextpkt(p1, p2);
  mb.m_freem_list(p1);
  fin();
});

test('M_WRITABLE / M_LEADINGSPACE / M_TRAILINGSPACE / M_ASSERTPKTHDR on every kind of mbuf', () => {
  const { mb, fin } = fresh();
  const m = mb.m_get(M_NOWAIT, MT_DATA);
  mb.setData(m, mb.m_data(m) + 10);
  mb.setLen(m, 20);
  assert.equal(MB.M_LEADINGSPACE(mb, m), 10);
  assert.equal(MB.M_TRAILINGSPACE(mb, m), MB.MLEN - 30);
  mb.setFlags(m, mb.m_flags(m) | MB.M_RDONLY);
  assert.equal(MB.M_WRITABLE(mb, m), false);
  assert.equal(MB.M_LEADINGSPACE(mb, m), 0);
  assert.equal(MB.M_TRAILINGSPACE(mb, m), 0);
  assert.throws(() => MB.M_ASSERTPKTHDR(mb, m), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => MB.M_ASSERTPKTHDR(mb, 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_free(m);
  const c = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  MB.M_ASSERTPKTHDR(mb, c);
  mb.setData(c, mb.m_data(c) + 100);
  mb.setLen(c, 1000);
  mb.setPkthdrLen(c, 1000);
  assert.equal(MB.M_LEADINGSPACE(mb, c), 100);
  assert.equal(MB.M_TRAILINGSPACE(mb, c), MB.MCLBYTES - 1100);
  const r = MB.m_copym(mb, c, 0, MB.M_COPYALL, M_NOWAIT); // shares the cluster: both read-only
  for (const x of [c, r]) {
    assert.equal(MB.M_WRITABLE(mb, x), false);
    assert.equal(MB.M_TRAILINGSPACE(mb, x), 0);
    assert.equal(MB.M_LEADINGSPACE(mb, x), 0);
  }
  mb.m_freem(r);
  assert.equal(MB.M_WRITABLE(mb, c), true, 'writable again once the other reference is gone');
  mb.m_freem(c);
  fin();
});
