// One test per chain function of mbuf(9) against FreeBSD's uipc_mbuf.c
// semantics: zero lengths, offsets at chain ends, read-only (shared) clusters,
// and M_NOWAIT failures that leave the chain intact or free it exactly as
// mbuf(9) says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { zoneStats } from '../../uma/stats.js';
import * as MB from '../../kern/mbuf/index.js';
import { fresh, build, bytes, exhaust, unexhaust } from './util.js';

const { M_NOWAIT, MT_DATA, M_PKTHDR, M_EXT } = MB;

const lens = (mb: MB.Mbufs, m: number): number[] => {
  const out: number[] = [];
  for (; m !== 0; m = mb.m_next(m)) out.push(mb.m_len(m));
  return out;
};

/** A packet whose last mbuf shares its cluster with another reference (read-only); returns both. */
function sharedTail(mb: MB.Mbufs, data: Uint8Array): { m: number; other: number } {
  const m = build(mb, data, [{ len: 50, kind: 'm' }, { len: data.length - 50, kind: 'c' }]);
  const other = MB.m_copym(mb, m, 50, MB.M_COPYALL, M_NOWAIT);
  return { m, other };
}

test('m_length / m_last / m_count / m_fixhdr / m_tobytes / m_segments', () => {
  const { mb, fin } = fresh();
  const data = bytes(700);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 0, kind: 'm' }, { len: 600, kind: 'c' }]);
  assert.equal(MB.m_length(mb, m), 700);
  assert.equal(MB.m_count(mb, m), 3);
  assert.equal(MB.m_last(mb, m), mb.m_next(mb.m_next(m)));
  mb.setPkthdrLen(m, 1);
  assert.equal(MB.m_fixhdr(mb, m), 700);
  assert.equal(mb.pkthdrLen(m), 700);
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  const segs = [...MB.m_segments(mb, m)];
  assert.deepEqual(segs.map((s) => s.length), [100, 600], 'empty mbufs give no view');
  assert.equal(segs[1].buffer, mb.u8.buffer, 'views, not copies');
  mb.m_freem(m);
  fin();
});

test('m_adj: head trims leave empty mbufs, tail trims free past the end, 0 and beyond-the-end', () => {
  const { mb, fin } = fresh();
  const data = bytes(600);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 200, kind: 'm' }, { len: 300, kind: 'c' }]);
  MB.m_adj(mb, m, 0);
  assert.deepEqual(lens(mb, m), [100, 200, 300]);
  MB.m_adj(mb, m, 150);
  assert.deepEqual(lens(mb, m), [0, 150, 300]);
  assert.equal(mb.pkthdrLen(m), 450);
  assert.deepEqual(MB.m_tobytes(mb, m), data.subarray(150));
  MB.m_adj(mb, m, -350);
  assert.deepEqual(lens(mb, m), [0, 100], 'the cluster past the new end is freed');
  assert.equal(mb.pkthdrLen(m), 100);
  MB.m_adj(mb, m, 1000); // more than the packet holds: everything trimmed, nothing freed
  assert.deepEqual(lens(mb, m), [0, 0]);
  assert.equal(mb.pkthdrLen(m), 0);
  MB.m_adj(mb, 0, 5); // null chain: nothing
  assert.throws(() => MB.m_adj(mb, m, 1.5), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_freem(m);
  fin();
});

test('m_append: fills trailing space, then clusters; a read-only tail is not written; failure keeps what was appended', () => {
  const { mb, fin } = fresh();
  const m = build(mb, bytes(10), [{ len: 10, kind: 'm' }]);
  assert.equal(MB.m_append(mb, m, 0, new Uint8Array(0)), true);
  assert.equal(MB.m_count(mb, m), 1);
  const more = bytes(3000, 5);
  assert.equal(MB.m_append(mb, m, 3000, more), true);
  assert.equal(mb.m_len(m), MB.MHLEN, 'the first mbuf filled first');
  assert.equal(mb.pkthdrLen(m), 3010);
  assert.deepEqual(MB.m_tobytes(mb, m).subarray(10), more);
  mb.m_freem(m);
  const data = bytes(500);
  const { m: s, other } = sharedTail(mb, data);
  const before = MB.m_tobytes(mb, other);
  assert.equal(MB.m_append(mb, s, 20, bytes(20, 9)), true);
  assert.equal(MB.m_count(mb, s), 3, 'a new mbuf, not the shared cluster');
  assert.deepEqual(MB.m_tobytes(mb, other), before);
  assert.equal(MB.M_TRAILINGSPACE(mb, other), 0);
  mb.m_freem(other);
  // Failure: the tail's trailing space is used, the rest is not; pkthdr len counts what went in.
  const t = build(mb, bytes(10), [{ len: 10, kind: 'm' }]);
  exhaust(mb);
  assert.equal(MB.m_append(mb, t, 1000, bytes(1000)), false);
  unexhaust(mb);
  assert.equal(mb.m_len(t), MB.MHLEN);
  assert.equal(mb.pkthdrLen(t), MB.MHLEN);
  mb.m_freem(t);
  mb.m_freem(s);
  fin();
});

test('m_apply: segment by segment, stops at the first non-zero result, zero length, offsets at the end', () => {
  const { mb, fin } = fresh();
  const data = bytes(600);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 0, kind: 'm' }, { len: 500, kind: 'c' }]);
  const seen: number[] = [];
  let sum = 0;
  const rv = MB.m_apply(mb, m, 50, 500, (arg, d, len) => {
    assert.equal(arg, 7);
    seen.push(len);
    for (let i = 0; i < len; i++) sum += mb.u8[d + i];
    return 0;
  }, 7);
  assert.equal(rv, 0);
  assert.deepEqual(seen, [50, 0, 450], 'as FreeBSD, an empty mbuf on the way is a call with length 0');
  assert.equal(sum, data.subarray(50, 550).reduce((a, b) => a + b, 0));
  let calls = 0;
  assert.equal(MB.m_apply(mb, m, 0, 600, () => (++calls === 1 ? 0 : 42)), 42, 'the failing callback\'s value');
  assert.equal(calls, 2, 'no call after the failure');
  calls = 0;
  assert.equal(MB.m_apply(mb, m, 600, 0, () => ++calls), 0, 'offset at the end, length 0: no call');
  assert.equal(calls, 0);
  assert.throws(() => MB.m_apply(mb, m, 601, 0, () => 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => MB.m_apply(mb, m, 500, 101, () => 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_freem(m);
  fin();
});

test('m_cat: small writable data is copied in (n freed), clusters and read-only tails are linked; headers untouched', () => {
  const { mb, fin } = fresh();
  const a = build(mb, bytes(10, 1), [{ len: 10, kind: 'm' }]);
  const b = build(mb, bytes(20, 2), [{ len: 20, kind: 'm' }]);
  MB.m_demote_pkthdr(mb, b);
  MB.m_cat(mb, a, b);
  assert.deepEqual(lens(mb, a), [30], 'copied into a, b freed');
  assert.equal(mb.pkthdrLen(a), 10, 'm_cat leaves the pkthdr length alone');
  const e = mb.m_get(M_NOWAIT, MT_DATA); // an empty mbuf is absorbed too
  MB.m_cat(mb, a, e);
  assert.deepEqual(lens(mb, a), [30]);
  const c = build(mb, bytes(900, 3), [{ len: 900, kind: 'c' }]);
  MB.m_demote_pkthdr(mb, c);
  MB.m_cat(mb, a, c);
  assert.deepEqual(lens(mb, a), [30, 900], 'external storage is linked, not copied');
  const { m: s, other } = sharedTail(mb, bytes(300));
  const small = mb.m_get(M_NOWAIT, MT_DATA);
  mb.setLen(small, 5);
  MB.m_cat(mb, other, small);
  assert.deepEqual(lens(mb, other), [250, 5], 'a read-only tail is not written');
  mb.m_freem(other);
  mb.m_freem(s);
  mb.m_freem(a);
  fin();
});

test('m_catpkt: lengths add, the second packet loses its header and tags', () => {
  const { mb, fin } = fresh();
  const a = build(mb, bytes(100), [{ len: 100, kind: 'm' }]);
  const b = build(mb, bytes(1000), [{ len: 1000, kind: 'c' }]);
  MB.m_tag_prepend(mb, b, MB.m_tag_get(mb, 3, 16, M_NOWAIT));
  MB.m_catpkt(mb, a, b);
  assert.equal(mb.pkthdrLen(a), 1100);
  assert.equal(mb.m_flags(b) & M_PKTHDR, 0);
  assert.equal(MB.m_length(mb, a), 1100);
  // An empty packet: nothing but a header.
  const z = mb.m_gethdr(M_NOWAIT, MT_DATA);
  MB.m_catpkt(mb, a, z);
  assert.equal(mb.pkthdrLen(a), 1100);
  assert.equal(MB.m_length(mb, a), 1100);
  const plain = mb.m_get(M_NOWAIT, MT_DATA);
  assert.throws(() => MB.m_catpkt(mb, a, plain), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_free(plain);
  mb.m_freem(a);
  fin();
});

test('m_collapse: absorbs forward, merges pairs into clusters, stops at maxfrags, fails (chain kept) when impossible', () => {
  const { mb, fin } = fresh();
  const data = bytes(1200);
  const segs = Array.from({ length: 12 }, () => ({ len: 100, kind: 'c' as const }));
  const m = build(mb, data, segs);
  assert.equal(MB.m_collapse(mb, m, M_NOWAIT, 12), m, 'already short enough: untouched');
  assert.equal(MB.m_count(mb, m), 12);
  assert.equal(MB.m_collapse(mb, m, M_NOWAIT, 10), m);
  assert.equal(MB.m_count(mb, m), 10, 'stops as soon as it is short enough');
  assert.equal(MB.m_collapse(mb, m, M_NOWAIT, 1), m);
  assert.equal(MB.m_count(mb, m), 1);
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  mb.m_freem(m);
  // Read-only clusters cannot absorb: pairs are copied into fresh clusters.
  const r = build(mb, data, [{ len: 100, kind: 'm' }, { len: 500, kind: 'c' }, { len: 600, kind: 'c' }]);
  const ref = MB.m_copym(mb, r, 0, MB.M_COPYALL, M_NOWAIT);
  assert.equal(MB.m_collapse(mb, ref, M_NOWAIT, 2), ref);
  assert.equal(MB.m_count(mb, ref), 2);
  assert.deepEqual(MB.m_tobytes(mb, ref), data);
  mb.m_freem(ref);
  mb.m_freem(r);
  // Two full clusters into one: impossible (the first is never reallocated).
  const full = build(mb, bytes(4096), [{ len: 2048, kind: 'c' }, { len: 2048, kind: 'c' }]);
  assert.equal(MB.m_collapse(mb, full, M_NOWAIT, 1), 0);
  assert.equal(MB.m_length(mb, full), 4096, 'still a valid chain, the caller\'s');
  mb.m_freem(full);
  // No cluster to merge into: 0, chain intact.
  const f = build(mb, data, [{ len: 100, kind: 'm' }, { len: 100, kind: 'm' }, { len: 100, kind: 'm' }, { len: 100, kind: 'm' }]);
  for (let x = f; x !== 0; x = mb.m_next(x)) mb.setFlags(x, mb.m_flags(x) | MB.M_RDONLY);
  exhaust(mb);
  assert.equal(MB.m_collapse(mb, f, M_NOWAIT, 2), 0);
  unexhaust(mb);
  assert.deepEqual(MB.m_tobytes(mb, f), data.subarray(0, 400));
  assert.throws(() => MB.m_collapse(mb, f, M_NOWAIT, 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_freem(f);
  fin();
});

test('m_copyback: overwrite in place, extend with a zero-filled gap, len 0, read-only tails are not written', () => {
  const { mb, fin } = fresh();
  const data = bytes(300);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 200, kind: 'c' }]);
  MB.m_copyback(mb, m, 90, 20, bytes(20, 4));
  const want = Uint8Array.from(data);
  want.set(bytes(20, 4), 90);
  assert.deepEqual(MB.m_tobytes(mb, m), want);
  MB.m_copyback(mb, m, 1000, 0, new Uint8Array(0));
  assert.equal(MB.m_length(mb, m), 300, 'len 0 does not extend the chain');
  MB.m_copyback(mb, m, 400, 10, bytes(10, 6));
  assert.equal(mb.pkthdrLen(m), 410);
  const got = MB.m_tobytes(mb, m);
  assert.equal(got.length, 410);
  assert.deepEqual(got.subarray(300, 400), new Uint8Array(100), 'the gap is zero-filled');
  assert.deepEqual(got.subarray(400), bytes(10, 6));
  mb.m_freem(m);
  const { m: s, other } = sharedTail(mb, bytes(500));
  const before = MB.m_tobytes(mb, other);
  const sharedBytes = mb.u8.slice(mb.extBuf(other), mb.extBuf(other) + MB.MCLBYTES);
  MB.m_copyback(mb, s, 500, 100, bytes(100, 8));
  assert.deepEqual(MB.m_tobytes(mb, s).subarray(500), bytes(100, 8));
  assert.deepEqual(mb.u8.slice(mb.extBuf(other), mb.extBuf(other) + MB.MCLBYTES), sharedBytes, 'the shared cluster is untouched');
  assert.deepEqual(MB.m_tobytes(mb, other), before);
  mb.m_freem(other);
  mb.m_freem(s);
  fin();
});

test('m_copydata: across segments and empty mbufs, offset at the end with len 0, beyond the end throws', () => {
  const { mb, fin } = fresh();
  const data = bytes(350);
  const m = build(mb, data, [{ len: 50, kind: 'm' }, { len: 0, kind: 'm' }, { len: 300, kind: 'c' }]);
  const out = new Uint8Array(120);
  MB.m_copydata(mb, m, 30, 100, out, 20);
  assert.deepEqual(out.subarray(20), data.subarray(30, 130));
  MB.m_copydata(mb, m, 350, 0, out); // offset at the end, nothing to copy
  assert.throws(() => MB.m_copydata(mb, m, 300, 51, new Uint8Array(51)), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => MB.m_copydata(mb, m, 0, 10, new Uint8Array(5)), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => MB.m_copydata(mb, m, -1, 1, out), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_freem(m);
  fin();
});

test('m_copym / m_copypacket: clusters shared (read-only), small mbufs copied, pkthdr lengths, ends, failure leaves the original', () => {
  const { mb, fin } = fresh();
  const data = bytes(700);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 600, kind: 'c' }]);
  const c = MB.m_copym(mb, m, 50, 300, M_NOWAIT);
  assert.equal(mb.m_flags(c) & M_PKTHDR, 0, 'a copy not from offset 0 has no pkthdr');
  assert.deepEqual(lens(mb, c), [50, 250]);
  assert.deepEqual(MB.m_tobytes(mb, c), data.subarray(50, 350));
  const shared = mb.m_next(c);
  assert.equal(mb.m_flags(shared) & M_EXT, M_EXT);
  assert.equal(mb.extBuf(shared), mb.extBuf(mb.m_next(m)));
  assert.equal(MB.M_WRITABLE(mb, shared), false);
  assert.equal(MB.M_WRITABLE(mb, c), true, 'the copied small mbuf is its own');
  mb.m_freem(c);
  const p = MB.m_copypacket(mb, m, M_NOWAIT);
  assert.equal(mb.pkthdrLen(p), 700);
  assert.deepEqual(MB.m_tobytes(mb, p), data);
  mb.m_freem(p);
  const tail = MB.m_copym(mb, m, 100, MB.M_COPYALL, M_NOWAIT);
  assert.deepEqual(lens(mb, tail), [600], 'an offset at a boundary starts in the next mbuf');
  mb.m_freem(tail);
  assert.equal(MB.m_copym(mb, m, 700, MB.M_COPYALL, M_NOWAIT), 0, 'from the very end: nothing');
  assert.equal(MB.m_copym(mb, m, 0, 0, M_NOWAIT), 0, 'length 0: nothing');
  assert.throws(() => MB.m_copym(mb, m, 701, 1, M_NOWAIT), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => MB.m_copym(mb, m, 600, 101, M_NOWAIT), { code: 'ERR_SLABNET_INVALID_ARG' });
  const plain = mb.m_get(M_NOWAIT, MT_DATA);
  assert.throws(() => MB.m_copypacket(mb, plain, M_NOWAIT), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_free(plain);
  exhaust(mb);
  assert.equal(MB.m_copym(mb, m, 0, MB.M_COPYALL, M_NOWAIT), 0);
  assert.equal(MB.m_copypacket(mb, m, M_NOWAIT), 0);
  unexhaust(mb);
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  assert.equal(mb.extRefs(mb.m_next(m)), 1, 'no reference left behind by the failed copy');
  mb.m_freem(m);
  fin();
});

test('m_copyup: into a new first mbuf with dstoff leading space; too long or no memory frees the chain', () => {
  const { mb, fin } = fresh();
  const data = bytes(500);
  const m = build(mb, data, [{ len: 20, kind: 'm' }, { len: 480, kind: 'c' }]);
  const old = m;
  const u = MB.m_copyup(mb, m, 60, 16);
  assert.ok(u !== 0 && u !== old);
  assert.equal(mb.m_flags(u) & M_PKTHDR, M_PKTHDR, 'the header moved to the new mbuf');
  assert.equal(mb.pkthdrLen(u), 500);
  assert.equal(mb.m_len(u), 60);
  assert.equal(MB.M_LEADINGSPACE(mb, u), 16);
  assert.deepEqual(MB.m_tobytes(mb, u), data);
  assert.equal(MB.m_count(mb, u), 2, 'the emptied first mbuf was freed');
  assert.equal(MB.m_copyup(mb, u, MB.MHLEN - 15, 16), 0, 'len > MHLEN - dstoff: chain freed');
  const s = build(mb, data.subarray(0, 100), [{ len: 100, kind: 'c' }]);
  assert.equal(MB.m_copyup(mb, s, 101, 0), 0, 'more than the chain holds: freed');
  const t = build(mb, data.subarray(0, 100), [{ len: 100, kind: 'c' }]);
  exhaust(mb);
  assert.equal(MB.m_copyup(mb, t, 10, 0), 0, 'no mbuf: freed');
  unexhaust(mb);
  fin();
});

test('m_defrag: fewest buffers, counters (packets, bytes, useless), non-packets untouched, failure keeps the chain', () => {
  const { mb, fin } = fresh();
  const nodes = new Map(MB.mbufSysctlNodes(mb).map((n) => [n.name, n]));
  const get = (n: string): number => nodes.get(`kern.ipc.m_defrag${n}`)!.get() as number;
  const data = bytes(3000);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 900, kind: 'c' }, { len: 1000, kind: 'c' }, { len: 1000, kind: 'c' }]);
  const d = MB.m_defrag(mb, m, M_NOWAIT);
  assert.deepEqual(lens(mb, d), [2048, 952]);
  assert.deepEqual(MB.m_tobytes(mb, d), data);
  assert.equal(mb.pkthdrLen(d), 3000);
  assert.equal(get('packets'), 1);
  assert.equal(get('bytes'), 3000);
  assert.equal(get('useless'), 0);
  const one = build(mb, bytes(10), [{ len: 10, kind: 'm' }]);
  const d1 = MB.m_defrag(mb, one, M_NOWAIT);
  assert.equal(get('useless'), 1, 'a one-mbuf packet is a useless defrag');
  mb.m_freem(d1);
  const plain = mb.m_get(M_NOWAIT, MT_DATA);
  assert.equal(MB.m_defrag(mb, plain, M_NOWAIT), plain);
  mb.m_free(plain);
  exhaust(mb);
  assert.equal(MB.m_defrag(mb, d, M_NOWAIT), 0);
  unexhaust(mb);
  assert.equal(get('failure'), 1);
  assert.deepEqual(MB.m_tobytes(mb, d), data);
  mb.m_freem(d);
  fin();
});

test('m_devget: ETHER_ALIGN offset, link-header room for small frames, long frames chained, failures leak nothing', () => {
  const { mb, fin } = fresh();
  const small = bytes(60);
  const s = MB.m_devget(mb, small, 0, 60, 0, 3);
  assert.equal(mb.m_flags(s) & M_EXT, 0);
  assert.equal(MB.M_LEADINGSPACE(mb, s), MB.MAX_LINKHDR);
  assert.deepEqual(MB.m_tobytes(mb, s), small);
  mb.m_freem(s);
  for (const off of [0, 1, 2, 3, 6]) {
    const frame = bytes(9000, off);
    const m = MB.m_devget(mb, frame, 0, 9000, off, 4);
    assert.equal(mb.pkthdrLen(m), 9000);
    assert.equal(mb.rcvif(m), 4);
    assert.equal(mb.m_data(m) - mb.extBuf(m), off);
    assert.deepEqual(MB.m_tobytes(mb, m), frame, `offset ${off}`);
    mb.m_freem(m);
  }
  const big = bytes(2000, 9);
  const part = MB.m_devget(mb, big, 333, 1000, 2, 1);
  assert.deepEqual(MB.m_tobytes(mb, part), big.subarray(333, 1333), 'from an offset in the source');
  mb.m_freem(part);
  assert.throws(() => MB.m_devget(mb, big, 1500, 1000, 0, 1), { code: 'ERR_SLABNET_INVALID_ARG' });
  exhaust(mb);
  assert.equal(MB.m_devget(mb, big, 0, 2000, 2, 1), 0);
  unexhaust(mb);
  fin();
});

test('m_dup: deep writable copy with header and tags; failure leaves the original', () => {
  const { mb, fin } = fresh();
  const data = bytes(2500);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 2000, kind: 'c' }, { len: 400, kind: 'c' }]);
  const t = MB.m_tag_alloc(mb, 0x1234, 1, 4, M_NOWAIT);
  mb.i32[MB.tagData(t) >> 2] = 99;
  MB.m_tag_prepend(mb, m, t);
  const d = MB.m_dup(mb, m, M_NOWAIT);
  assert.deepEqual(MB.m_tobytes(mb, d), data);
  assert.equal(mb.pkthdrLen(d), 2500);
  for (let x = d; x !== 0; x = mb.m_next(x)) assert.equal(MB.M_WRITABLE(mb, x), true);
  assert.equal(mb.extRefs(mb.m_next(m)), 1, 'nothing shared');
  const dt = MB.m_tag_locate(mb, d, 0x1234, 1, 0);
  assert.ok(dt !== 0 && dt !== t);
  assert.equal(mb.i32[MB.tagData(dt) >> 2], 99);
  mb.m_freem(d);
  assert.equal(MB.m_dup(mb, 0, M_NOWAIT), 0);
  exhaust(mb);
  assert.equal(MB.m_dup(mb, m, M_NOWAIT), 0);
  unexhaust(mb);
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  assert.equal(MB.m_tag_first(mb, m), t);
  mb.m_freem(m);
  fin();
});

test('m_dup_pkthdr: fields copied, tags deep-copied (the copy\'s own tags freed first); tag failure reported', () => {
  const { mb, fin } = fresh();
  const from = mb.m_gethdr(M_NOWAIT, MT_DATA);
  mb.setRcvif(from, 5);
  mb.setPkthdrLen(from, 77);
  mb.i32[(from + MB.PH_FLOWID) >> 2] = 0xabc;
  mb.setFlags(from, mb.m_flags(from) | MB.M_BCAST | MB.M_PROTO1);
  const t1 = MB.m_tag_alloc(mb, 1, 1, 8, M_NOWAIT);
  const t2 = MB.m_tag_alloc(mb, 1, 2, 8, M_NOWAIT);
  mb.i32[MB.tagData(t1) >> 2] = 11;
  mb.i32[MB.tagData(t2) >> 2] = 22;
  MB.m_tag_prepend(mb, from, t1);
  MB.m_tag_prepend(mb, from, t2);
  const to = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  MB.m_tag_prepend(mb, to, MB.m_tag_alloc(mb, 9, 9, 4, M_NOWAIT)); // freed by the dup
  const buf = mb.m_data(to);
  assert.equal(MB.m_dup_pkthdr(mb, to, from, M_NOWAIT), true);
  assert.equal(mb.rcvif(to), 5);
  assert.equal(mb.pkthdrLen(to), 77);
  assert.equal(mb.i32[(to + MB.PH_FLOWID) >> 2], 0xabc);
  assert.equal(mb.m_flags(to), M_PKTHDR | M_EXT | MB.M_BCAST | MB.M_PROTO1);
  assert.equal(mb.m_data(to), buf, 'a clustered copy keeps its data pointer');
  assert.equal(MB.m_tag_locate(mb, to, 9, 9, 0), 0);
  const c1 = MB.m_tag_locate(mb, to, 1, 1, 0);
  const c2 = MB.m_tag_locate(mb, to, 1, 2, 0);
  assert.ok(c1 !== t1 && c2 !== t2 && c1 !== 0 && c2 !== 0);
  assert.equal(mb.i32[MB.tagData(c1) >> 2], 11);
  assert.equal(mb.i32[MB.tagData(c2) >> 2], 22);
  assert.equal(MB.m_tag_first(mb, to), c2, 'order kept');
  mb.i32[MB.tagData(c1) >> 2] = 0;
  assert.equal(mb.i32[MB.tagData(t1) >> 2], 11, 'deep, not shared');
  mb.m_free(to);
  // No memory for the tag copies: false, the fields copied, no tags on the copy.
  const to2 = mb.m_gethdr(M_NOWAIT, MT_DATA);
  const hold: [typeof mb.tagZones[number], number][] = [];
  for (const z of mb.tagZones) {
    z.drain();
    if (zoneStats(z).used === 0) hold.push([z, z.alloc(M_NOWAIT)]);
    z.setMaxItems(zoneStats(z).used);
    z.drain();
  }
  assert.equal(MB.m_dup_pkthdr(mb, to2, from, M_NOWAIT), false);
  assert.equal(mb.pkthdrLen(to2), 77);
  assert.equal(MB.m_tag_first(mb, to2), 0);
  for (const z of mb.tagZones) z.setMaxItems(0);
  for (const [z, t] of hold) z.free(t);
  mb.m_free(to2);
  mb.m_free(from);
  fin();
});

test('m_move_pkthdr: header and tags move, the source loses both; data pointer set for an internal target', () => {
  const { mb, fin } = fresh();
  const from = build(mb, bytes(40), [{ len: 40, kind: 'm' }]);
  mb.setRcvif(from, 8);
  const t = MB.m_tag_get(mb, 4, 4, M_NOWAIT);
  MB.m_tag_prepend(mb, from, t);
  const to = mb.m_get(M_NOWAIT, MT_DATA);
  MB.m_move_pkthdr(mb, to, from);
  assert.equal(mb.m_flags(to) & M_PKTHDR, M_PKTHDR);
  assert.equal(mb.m_data(to), to + MB.MPKTHSIZE);
  assert.equal(mb.rcvif(to), 8);
  assert.equal(mb.pkthdrLen(to), 40);
  assert.equal(MB.m_tag_first(mb, to), t);
  assert.equal(mb.m_flags(from) & M_PKTHDR, 0);
  assert.throws(() => MB.m_move_pkthdr(mb, to, from), { code: 'ERR_SLABNET_INVALID_ARG' }, 'from has no header any more');
  const c = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
  const cd = mb.m_data(c);
  MB.m_move_pkthdr(mb, c, to);
  assert.equal(mb.m_data(c), cd, 'a clustered target keeps its data pointer');
  assert.equal(mb.m_flags(c), M_PKTHDR | M_EXT);
  assert.equal(MB.m_tag_first(mb, c), t);
  mb.m_free(from);
  mb.m_free(to);
  mb.m_free(c); // t freed with the header
  fin();
});

test('m_fragment: modes 0 / n / -1 / -2 / < -2, clamped to MCLBYTES, bytes kept; failure returns the original', () => {
  const { mb, fin } = fresh();
  const data = bytes(3000);
  const mk = (): number => build(mb, data, [{ len: 100, kind: 'm' }, { len: 1400, kind: 'c' }, { len: 1500, kind: 'c' }]);
  let m = mk();
  assert.equal(MB.m_fragment(mb, m, M_NOWAIT, 0), m);
  assert.equal(MB.m_fragment(mb, m, M_NOWAIT, -3), m);
  m = MB.m_fragment(mb, m, M_NOWAIT, 700);
  assert.deepEqual(lens(mb, m), [700, 700, 700, 700, 200]);
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  assert.equal(mb.pkthdrLen(m), 3000);
  m = MB.m_fragment(mb, m, M_NOWAIT, 100000);
  assert.deepEqual(lens(mb, m), [2048, 952]);
  m = MB.m_fragment(mb, m, M_NOWAIT, -1);
  const l1 = lens(mb, m);
  assert.ok(l1[0] >= 1 && l1[0] <= 255);
  assert.ok(l1.slice(0, -1).every((x) => x === l1[0]), 'one random length for every fragment');
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  m = MB.m_fragment(mb, m, M_NOWAIT, -2);
  const l2 = lens(mb, m);
  assert.ok(l2.every((x) => x >= 1 && x <= 255));
  assert.ok(new Set(l2).size > 1, 'a random length per fragment');
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  const plain = mb.m_get(M_NOWAIT, MT_DATA);
  assert.equal(MB.m_fragment(mb, plain, M_NOWAIT, 10), plain, 'no pkthdr: unchanged');
  mb.m_free(plain);
  exhaust(mb);
  assert.equal(MB.m_fragment(mb, m, M_NOWAIT, 100), m);
  unexhaust(mb);
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  mb.m_freem(m);
  fin();
});

test('m_getptr: the mbuf holding a byte, the chain end, empty mbufs, beyond', () => {
  const { mb, fin } = fresh();
  const offp = new Int32Array(1);
  const m = build(mb, bytes(300), [{ len: 100, kind: 'm' }, { len: 0, kind: 'm' }, { len: 200, kind: 'c' }]);
  const c = MB.m_last(mb, m);
  assert.equal(MB.m_getptr(mb, m, 0, offp), m);
  assert.equal(offp[0], 0);
  assert.equal(MB.m_getptr(mb, m, 99, offp), m);
  assert.equal(offp[0], 99);
  assert.equal(MB.m_getptr(mb, m, 100, offp), c, 'empty mbufs are skipped');
  assert.equal(offp[0], 0);
  assert.equal(MB.m_getptr(mb, m, 300, offp), c);
  assert.equal(offp[0], 200);
  assert.equal(MB.m_getptr(mb, m, 301, offp), 0);
  mb.m_freem(m);
  fin();
});

test('m_prepend / M_PREPEND: in place when there is leading space, else a new mbuf with the header; read-only; failure frees', () => {
  const { mb, fin } = fresh();
  const data = bytes(100);
  let m = build(mb, data, [{ len: 100, kind: 'm', lead: 20 }]);
  const same = MB.M_PREPEND(mb, m, 20, M_NOWAIT);
  assert.equal(same, m, 'in place');
  assert.equal(mb.pkthdrLen(m), 120);
  m = MB.M_PREPEND(mb, m, 14, M_NOWAIT);
  assert.notEqual(m, same);
  assert.equal(mb.m_flags(m) & M_PKTHDR, M_PKTHDR);
  assert.equal(mb.m_flags(same) & M_PKTHDR, 0, 'the header moved');
  assert.equal(mb.m_len(m), 14);
  assert.equal(MB.M_TRAILINGSPACE(mb, m), 0, 'data at the end of the new mbuf (M_ALIGN)');
  assert.equal(mb.pkthdrLen(m), 134);
  assert.deepEqual(MB.m_tobytes(mb, m).subarray(34), data);
  mb.m_freem(m);
  // A shared cluster with leading space is read-only: a new mbuf, not its space.
  const c = build(mb, data, [{ len: 100, kind: 'c', lead: 64 }]);
  const r = MB.m_copypacket(mb, c, M_NOWAIT);
  const p = MB.M_PREPEND(mb, r, 8, M_NOWAIT);
  assert.notEqual(p, r);
  assert.equal(MB.m_length(mb, p), 108);
  mb.m_freem(p);
  const q = MB.m_prepend(mb, c, 10, M_NOWAIT);
  assert.equal(mb.m_next(q), c);
  assert.equal(mb.pkthdrLen(q), 100, 'm_prepend itself leaves the length to M_PREPEND');
  assert.throws(() => MB.m_prepend(mb, q, MB.MHLEN + 1, M_NOWAIT), { code: 'ERR_SLABNET_INVALID_ARG' });
  exhaust(mb);
  assert.equal(MB.M_PREPEND(mb, q, MB.MHLEN, M_NOWAIT), 0, 'no mbuf: the chain is freed');
  unexhaust(mb);
  fin();
});

test('m_pulldown: in place, from the next mbufs, into a new buffer, offp; beyond the chain or > MCLBYTES frees it', () => {
  const { mb, fin } = fresh();
  const offp = new Int32Array(1);
  const data = bytes(1000);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 100, kind: 'm' }, { len: 800, kind: 'c' }]);
  assert.equal(MB.m_pulldown(mb, m, 10, 50, offp), m);
  assert.equal(offp[0], 10);
  const n = MB.m_pulldown(mb, m, 150, 100, offp); // spans mbuf 2 and the cluster; mbuf 2 has no room
  const at = mb.m_data(n) + offp[0];
  assert.deepEqual(mb.u8.subarray(at, at + 100), data.subarray(150, 250));
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  assert.equal(MB.m_pulldown(mb, m, 990, 11, offp), 0, 'beyond the chain: freed');
  const e = build(mb, data, [{ len: 1000, kind: 'c' }]);
  assert.equal(MB.m_pulldown(mb, e, 1000, 0, offp), 0, 'offset at the end: no mbuf to point at, freed (FreeBSD)');
  const b = build(mb, bytes(3000), [{ len: 1500, kind: 'c' }, { len: 1500, kind: 'c' }]);
  assert.equal(MB.m_pulldown(mb, b, 0, MB.MCLBYTES + 1, offp), 0, '> MCLBYTES: freed');
  const f = build(mb, data, [{ len: 500, kind: 'c' }, { len: 500, kind: 'c' }]);
  const fr = MB.m_copypacket(mb, f, M_NOWAIT); // read-only: no pulling into its cluster
  exhaust(mb);
  assert.equal(MB.m_pulldown(mb, fr, 450, 100, offp), 0, 'no memory: freed');
  unexhaust(mb);
  mb.m_freem(f);
  fin();
});

test('m_pullup: contiguous first bytes, read-only clusters copied out, beyond the chain or > MHLEN fails with the chain freed', () => {
  const { mb, fin } = fresh();
  const data = bytes(400);
  const m = build(mb, data, [{ len: 10, kind: 'm' }, { len: 20, kind: 'm' }, { len: 370, kind: 'c' }]);
  assert.equal(MB.m_pullup(mb, m, 5), m, 'already contiguous');
  const p = MB.m_pullup(mb, m, 60);
  assert.equal(p, m, 'an internal first mbuf with room is filled in place');
  assert.equal(mb.m_len(p), 60);
  assert.deepEqual(MB.m_tobytes(mb, p), data);
  assert.equal(MB.m_count(mb, p), 2, 'the drained second mbuf was freed');
  mb.m_freem(p);
  const c = build(mb, data, [{ len: 30, kind: 'c' }, { len: 370, kind: 'c' }]);
  const r = MB.m_copypacket(mb, c, M_NOWAIT);
  const q = MB.m_pullup(mb, r, 40);
  assert.notEqual(q, r);
  assert.equal(mb.m_flags(q) & M_EXT, 0, 'the bytes were copied into a plain mbuf');
  assert.equal(mb.m_len(q), 40);
  assert.deepEqual(MB.m_tobytes(mb, q), data);
  assert.deepEqual(MB.m_tobytes(mb, c), data, 'the sharer is untouched');
  mb.m_freem(q);
  assert.equal(MB.m_pullup(mb, c, 401), 0, 'beyond the chain: freed');
  const big = build(mb, data, [{ len: 100, kind: 'c' }, { len: 300, kind: 'c' }]);
  assert.equal(MB.m_pullup(mb, big, MB.MHLEN + 1), 0, '> MHLEN: freed');
  const nm = build(mb, data, [{ len: 100, kind: 'c' }, { len: 300, kind: 'c' }]);
  exhaust(mb);
  assert.equal(MB.m_pullup(mb, nm, 150), 0, 'no mbuf: freed');
  unexhaust(mb);
  fin();
});

test('m_split: at 0, inside an mbuf, inside a cluster (shared, read-only), at the end, beyond; failure keeps the chain', () => {
  const { mb, fin } = fresh();
  const data = bytes(600);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 500, kind: 'c' }]);
  const t = MB.m_split(mb, m, 300, M_NOWAIT);
  assert.equal(mb.pkthdrLen(m), 300);
  assert.equal(mb.pkthdrLen(t), 300);
  assert.equal(mb.m_flags(t) & M_PKTHDR, M_PKTHDR);
  assert.deepEqual(MB.m_tobytes(mb, m), data.subarray(0, 300));
  assert.deepEqual(MB.m_tobytes(mb, t), data.subarray(300));
  assert.equal(MB.M_WRITABLE(mb, MB.m_last(mb, t)), false, 'the cluster is shared');
  const end = MB.m_split(mb, m, 300, M_NOWAIT);
  assert.equal(mb.pkthdrLen(end), 0, 'at the end: an empty packet');
  assert.equal(MB.m_length(mb, end), 0);
  mb.m_freem(end);
  assert.equal(MB.m_split(mb, m, 301, M_NOWAIT), 0, 'beyond: nothing');
  assert.equal(MB.m_length(mb, m), 300);
  const z = MB.m_split(mb, m, 0, M_NOWAIT);
  assert.equal(MB.m_length(mb, z), 300, 'at 0: everything goes to the tail');
  assert.equal(mb.pkthdrLen(z), 300);
  assert.equal(mb.pkthdrLen(m), 0);
  mb.m_freem(z);
  mb.m_freem(m);
  // Without a pkthdr: a split at a boundary hands back the next mbuf.
  const a = mb.m_get(M_NOWAIT, MT_DATA);
  const b = mb.m_get(M_NOWAIT, MT_DATA);
  mb.setLen(a, 10);
  mb.setLen(b, 10);
  mb.setNext(a, b);
  assert.equal(MB.m_split(mb, a, 10, M_NOWAIT), b);
  assert.equal(mb.m_next(a), 0);
  mb.m_free(b);
  const k = MB.m_split(mb, a, 4, M_NOWAIT);
  assert.deepEqual([mb.m_len(a), mb.m_len(k)], [4, 6]);
  mb.m_free(k);
  mb.m_free(a);
  t && mb.m_freem(t);
  const f = build(mb, data, [{ len: 600, kind: 'c' }]);
  exhaust(mb);
  assert.equal(MB.m_split(mb, f, 100, M_NOWAIT), 0);
  unexhaust(mb);
  assert.deepEqual(MB.m_tobytes(mb, f), data);
  assert.equal(mb.pkthdrLen(f), 600);
  mb.m_freem(f);
  fin();
});

test('m_uiotombuf: iovec of Buffers, len limit, align, zero bytes, no pkthdr, failure and align >= MHLEN', () => {
  const { mb, fin } = fresh();
  const iov = [Buffer.from('abc'), new Uint8Array(0), bytes(3000, 2), Buffer.from('xyz')];
  const all = Buffer.concat(iov);
  const m = MB.m_uiotombuf(mb, iov, M_NOWAIT, 1000, 4, M_PKTHDR);
  assert.equal(mb.pkthdrLen(m), 1000);
  assert.deepEqual(Buffer.from(MB.m_tobytes(mb, m)), all.subarray(0, 1000));
  assert.equal(MB.M_LEADINGSPACE(mb, m), 4);
  mb.m_freem(m);
  const z = MB.m_uiotombuf(mb, [], M_NOWAIT, 0, 0, M_PKTHDR);
  assert.equal(MB.m_length(mb, z), 0);
  assert.equal(mb.pkthdrLen(z), 0);
  mb.m_freem(z);
  const n = MB.m_uiotombuf(mb, all, M_NOWAIT, 0, 0, 0);
  assert.equal(mb.m_flags(n) & M_PKTHDR, 0);
  assert.deepEqual(Buffer.from(MB.m_tobytes(mb, n)), all);
  mb.m_freem(n);
  assert.equal(MB.m_uiotombuf(mb, all, M_NOWAIT, 0, MB.MHLEN, M_PKTHDR), 0);
  assert.throws(() => MB.m_uiotombuf(mb, ['x' as unknown as Uint8Array], M_NOWAIT, 0, 0, 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  exhaust(mb);
  assert.equal(MB.m_uiotombuf(mb, all, M_NOWAIT, 0, 0, M_PKTHDR), 0);
  unexhaust(mb);
  fin();
});

test('m_unshare: shared and read-only data copied, writable mbufs kept, the sharer untouched; failure frees', () => {
  const { mb, fin } = fresh();
  const data = bytes(1500);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 1400, kind: 'c' }]);
  const r = MB.m_copypacket(mb, m, M_NOWAIT);
  const first = r;
  const u = MB.m_unshare(mb, r, M_NOWAIT);
  assert.equal(u, first, 'the writable first mbuf stays');
  for (let x = u; x !== 0; x = mb.m_next(x)) assert.equal(MB.M_WRITABLE(mb, x), true);
  assert.deepEqual(MB.m_tobytes(mb, u), data);
  assert.equal(mb.pkthdrLen(u), 1500);
  assert.equal(mb.extRefs(mb.m_next(m)), 1, 'the original cluster is no longer shared');
  mb.m_freem(u);
  // A small shared tail folds into the writable mbuf before it.
  const s = build(mb, data.subarray(0, 150), [{ len: 100, kind: 'm' }, { len: 50, kind: 'c' }]);
  mb.setData(s, mb.m_data(s)); // keep MHLEN room: 100 + 50 <= MHLEN
  const sr = MB.m_copypacket(mb, s, M_NOWAIT);
  const su = MB.m_unshare(mb, sr, M_NOWAIT);
  assert.equal(MB.m_count(mb, su), 1);
  assert.deepEqual(MB.m_tobytes(mb, su), data.subarray(0, 150));
  mb.m_freem(su);
  mb.m_freem(s);
  // A shared jumbo cluster becomes a chain of clusters.
  const j = mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, MB.MJUM9BYTES);
  const jd = bytes(9000, 3);
  mb.u8.set(jd, mb.m_data(j));
  mb.setLen(j, 9000);
  mb.setPkthdrLen(j, 9000);
  const jr = MB.m_copypacket(mb, j, M_NOWAIT);
  const ju = MB.m_unshare(mb, jr, M_NOWAIT);
  assert.deepEqual(MB.m_tobytes(mb, ju), jd);
  for (let x = ju; x !== 0; x = mb.m_next(x)) assert.equal(MB.M_WRITABLE(mb, x), true);
  assert.equal(mb.pkthdrLen(ju), 9000);
  mb.m_freem(ju);
  const fr = MB.m_copypacket(mb, m, M_NOWAIT);
  exhaust(mb);
  assert.equal(MB.m_unshare(mb, fr, M_NOWAIT), 0, 'no memory: the chain is freed');
  unexhaust(mb);
  assert.equal(mb.extRefs(mb.m_next(m)), 1);
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  mb.m_freem(j);
  mb.m_freem(m);
  fin();
});
