// mbuf(9) semantics: edge cases, failure behaviour, tags, limits, netstat -m golden, stress.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakCheck } from '../helpers.js';
import * as MB from '../../kern/mbuf/index.js';
import { setup, build, bytes, exhaust, unexhaust } from './util.js';

const { M_NOWAIT, M_WAITOK, MT_DATA, M_PKTHDR } = MB;

test('netstat -m golden: fresh system, then one packet and one cluster in use', () => {
  const { uma, mb } = setup(16 << 20);
  const lim = MB.defaultLimits(uma.pages.dataPages * 4096);
  const fresh = MB.netstatM(mb);
  assert.equal(
    fresh,
    [
      '0/0/0 mbufs in use (current/cache/total)',
      `0/0/0/${lim.nmbclusters} mbuf clusters in use (current/cache/total/max)`,
      '0/0 mbuf+clusters out of packet secondary zone in use (current/cache)',
      `0/0/0/${lim.nmbjumbop} 4k (page size) jumbo clusters in use (current/cache/total/max)`,
      `0/0/0/${lim.nmbjumbo9} 9k jumbo clusters in use (current/cache/total/max)`,
      `0/0/0/${lim.nmbjumbo16} 16k jumbo clusters in use (current/cache/total/max)`,
      '0K/0K/0K bytes allocated to network (current/cache/total)',
      '0/0/0 requests for mbufs denied (mbufs/clusters/mbuf+clusters)',
      '0/0/0 requests for mbufs delayed (mbufs/clusters/mbuf+clusters)',
      '0/0/0 requests for jumbo clusters delayed (4k/9k/16k)',
      '0/0/0 requests for jumbo clusters denied (4k/9k/16k)',
      '0 requests for sfbufs denied',
      '0 requests for sfbufs delayed',
      '',
    ].join('\n'),
  );
  const p = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  const s = MB.mbufStats(mb);
  assert.equal(s.packetCount, 1);
  assert.equal(s.clusterCount, s.packetCount + s.packetFree);
  const lines = MB.netstatM(mb).split('\n');
  assert.match(lines[0], /^1\/\d+\/\d+ mbufs in use \(current\/cache\/total\)$/);
  assert.match(lines[2], /^1\/\d+ mbuf\+clusters out of packet secondary zone in use \(current\/cache\)$/);
  assert.equal(lines[1].split(' ')[0].split('/')[0], '1');
  mb.m_freem(p);
});

test('limits: nmbclusters reached warns, reclaims the packet zone and runs drain hooks', () => {
  const { uma, mb } = setup(16 << 20);
  const warnings: string[] = [];
  uma.logger = (m) => warnings.push(m);
  const done = leakCheck(uma);
  let drains = 0;
  mb.registerDrain(() => drains++);
  const nodes = new Map(MB.mbufSysctlNodes(mb).map((n) => [n.name, n]));
  nodes.get('kern.ipc.nmbclusters')!.set!(64);
  assert.equal(nodes.get('kern.ipc.nmbclusters')!.get(), 64);
  const got: number[] = [];
  for (;;) {
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
    if (m === 0) break;
    got.push(m);
  }
  assert.ok(got.length > 0 && got.length <= 64);
  assert.ok(warnings.some((w) => w === '[zone: mbuf_cluster] kern.ipc.nmbclusters limit reached'), warnings.join('|'));
  assert.ok(drains >= 1);
  // Free them all: they sit in the packet zone's cache with their clusters...
  for (const m of got) mb.m_freem(m);
  // ...and a plain cluster request at the limit makes the packet zone give them back.
  const c = mb.m_getjcl(M_NOWAIT, MT_DATA, 0, MB.MJUMPAGESIZE);
  assert.ok(c !== 0);
  mb.m_freem(c);
  const m2 = mb.m_gethdr(M_NOWAIT, MT_DATA);
  assert.ok(mb.m_clget(m2, M_NOWAIT), 'cluster available after packet-zone reclaim');
  mb.m_freem(m2);
  nodes.get('kern.ipc.nmbclusters')!.set!(0);
  mb.drainPacketCache();
  done();
});

test('M_NOWAIT failures: m_prepend/m_pullup free the chain, m_copym/m_dup/m_split leave it intact', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const data = bytes(600);
  const m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 500, kind: 'c' }]);
  exhaust(mb); // the chain holds every mbuf and packet item the limits allow
  assert.equal(MB.m_copym(mb, m, 0, MB.M_COPYALL, M_NOWAIT), 0);
  assert.equal(MB.m_dup(mb, m, M_NOWAIT), 0);
  assert.equal(MB.m_split(mb, m, 50, M_NOWAIT), 0);
  assert.deepEqual(MB.m_tobytes(mb, m), data);
  assert.equal(mb.pkthdrLen(m), 600);
  const m2 = MB.m_prepend(mb, m, 10, M_NOWAIT);
  assert.equal(m2, 0); // and m is gone
  unexhaust(mb);
  const a = build(mb, data, [{ len: 100, kind: 'm' }, { len: 500, kind: 'c' }]);
  assert.equal(MB.m_pullup(mb, a, 601), 0); // beyond the chain: freed
  const b = build(mb, data, [{ len: 100, kind: 'm' }, { len: 500, kind: 'c' }]);
  assert.equal(MB.m_pullup(mb, b, MB.MHLEN + 1), 0); // more than MHLEN: freed
  mb.drainPacketCache();
  done();
});

test('m_split inside a cluster shares it: both halves are read-only, data right', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const data = bytes(1000);
  const m = build(mb, data, [{ len: 1000, kind: 'c' }]);
  const t = MB.m_split(mb, m, 400, M_NOWAIT);
  assert.equal(mb.extRefs(m), 2);
  assert.equal(MB.M_WRITABLE(mb, t), false);
  assert.equal(MB.M_TRAILINGSPACE(mb, m), 0);
  assert.equal(MB.M_LEADINGSPACE(mb, t), 0);
  assert.deepEqual(MB.m_tobytes(mb, t), data.subarray(400));
  assert.equal(mb.pkthdrLen(t), 600);
  mb.m_freem(m); // the mref stays until t goes
  assert.equal(mb.extRefs(t), 1);
  assert.equal(MB.M_WRITABLE(mb, t), true);
  mb.m_freem(t);
  mb.drainPacketCache();
  done();
});

test('edge cases: zero lengths, m_getptr at the end, m_adj beyond, M_ASSERTPKTHDR, m_get2, devget offset, uiotombuf', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const offp = new Int32Array(1);
  const m = build(mb, bytes(300), [{ len: 100, kind: 'm' }, { len: 0, kind: 'm' }, { len: 200, kind: 'c' }]);
  const last = MB.m_last(mb, m);
  assert.equal(MB.m_getptr(mb, m, 300, offp), last);
  assert.equal(offp[0], 200);
  assert.equal(MB.m_getptr(mb, m, 301, offp), 0);
  assert.equal(MB.m_getptr(mb, m, 100, offp), last);
  assert.equal(offp[0], 0);
  MB.m_adj(mb, m, -1000);
  assert.equal(MB.m_length(mb, m), 0);
  assert.equal(mb.pkthdrLen(m), 0);
  assert.equal(mb.m_next(m), 0);
  mb.m_freem(m);
  const n = mb.m_get(M_NOWAIT, MT_DATA);
  assert.throws(() => MB.M_ASSERTPKTHDR(mb, n), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => mb.m_get(0, MT_DATA), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_free(n);
  const g = mb.m_get2(3000, M_NOWAIT, MT_DATA, M_PKTHDR);
  assert.equal(mb.extSize(g), MB.MJUMPAGESIZE);
  mb.m_freem(g);
  assert.equal(mb.m_get2(MB.MJUMPAGESIZE + 1, M_NOWAIT, MT_DATA, 0), 0);
  const frame = bytes(1500);
  const d = MB.m_devget(mb, frame, 0, 1500, 2, 7);
  assert.equal(mb.m_data(d), mb.extBuf(d) + 2);
  assert.equal(mb.rcvif(d), 7);
  assert.deepEqual(MB.m_tobytes(mb, d), frame);
  mb.m_freem(d);
  assert.equal(MB.m_devget(mb, frame, 0, 0, 0, 1), 0);
  assert.equal(MB.m_devget(mb, frame, 0, 10, MB.MHLEN + 1, 1), 0);
  const parts = [Buffer.from('hello '), Buffer.from('world'), bytes(5000)];
  const u = MB.m_uiotombuf(mb, parts, M_WAITOK, 0, 8, M_PKTHDR);
  assert.equal(mb.pkthdrLen(u), 5011);
  assert.deepEqual(Buffer.from(MB.m_tobytes(mb, u)), Buffer.concat(parts));
  assert.equal(MB.M_LEADINGSPACE(mb, u), 8);
  const segs = [...MB.m_segments(mb, u)];
  assert.equal(segs.reduce((a, s) => a + s.length, 0), 5011);
  mb.m_freem(u);
  mb.drainPacketCache();
  done();
});

test('m_tags: alloc/prepend/locate/find/delete/nonpersistent/copy_chain, freed with the pkthdr, moved and dup-ed', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
  const t1 = MB.m_tag_alloc(mb, 0xdeadbeef, 5, 8, M_NOWAIT);
  mb.i32[MB.tagData(t1) >> 2] = 42;
  const t2 = MB.m_tag_get(mb, 6 | MB.MTAG_PERSISTENT, 100, M_NOWAIT);
  const t3 = MB.m_tag_get(mb, 5, 0, M_NOWAIT);
  MB.m_tag_prepend(mb, m, t1);
  MB.m_tag_prepend(mb, m, t2);
  MB.m_tag_prepend(mb, m, t3);
  assert.equal(MB.m_tag_locate(mb, m, 0xdeadbeef, 5, 0), t1);
  assert.equal(MB.tagCookie(mb, t1), 0xdeadbeef);
  assert.equal(MB.m_tag_find(mb, m, 5, 0), t3);
  assert.equal(MB.m_tag_find(mb, m, 5, t3), 0);
  const c = mb.m_gethdr(M_NOWAIT, MT_DATA);
  assert.equal(MB.m_dup_pkthdr(mb, c, m, M_NOWAIT), true);
  const ct1 = MB.m_tag_locate(mb, c, 0xdeadbeef, 5, 0);
  assert.ok(ct1 !== 0 && ct1 !== t1);
  assert.equal(mb.i32[MB.tagData(ct1) >> 2], 42);
  MB.m_tag_delete_nonpersistent(mb, c);
  assert.equal(MB.m_tag_first(mb, c), MB.m_tag_find(mb, c, 6 | MB.MTAG_PERSISTENT, 0));
  MB.m_tag_delete(mb, m, t3);
  assert.equal(MB.m_tag_find(mb, m, 5, 0), 0);
  const mv = mb.m_get(M_NOWAIT, MT_DATA);
  MB.m_move_pkthdr(mb, mv, m);
  assert.equal(mb.m_flags(m) & M_PKTHDR, 0);
  assert.equal(MB.m_tag_first(mb, mv), t2);
  MB.m_tag_delete_chain(mb, mv, t2); // keeps t2, frees t1
  assert.equal(MB.m_tag_next(mb, t2), 0);
  mb.m_free(m);
  mb.m_free(mv); // t2 freed with the pkthdr
  mb.m_free(c);
  done();
});

test('lazy MAC labels: attached only while a policy labels mbufs; deep-copied', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const m0 = mb.m_gethdr(M_NOWAIT, MT_DATA);
  assert.equal(MB.macMbufLabel(mb, m0), 0);
  let copies = 0;
  MB.macPolicyRegister(mb, { name: 'biba', labelMbufs: true, initLabel: (s) => (mb.i32[s >> 2] = 7), copyLabel: (a, b) => { copies++; mb.i32[b >> 2] = mb.i32[a >> 2]; } });
  const m1 = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  const l1 = MB.macMbufLabel(mb, m1);
  assert.ok(l1 !== 0);
  assert.equal(mb.i32[l1 >> 2], 7);
  const d = MB.m_dup(mb, m1, M_NOWAIT);
  assert.equal(mb.i32[MB.macMbufLabel(mb, d) >> 2], 7);
  assert.equal(copies, 1);
  assert.equal(MB.m_tag_first(mb, d), MB.macMbufLabel(mb, d) - MB.TAG_HDR); // the fresh label was replaced, not added
  assert.equal(MB.m_tag_next(mb, MB.m_tag_first(mb, d)), 0);
  MB.macPolicyUnregister(mb, 'biba');
  const m2 = mb.m_gethdr(M_NOWAIT, MT_DATA);
  assert.equal(MB.macMbufLabel(mb, m2), 0);
  mb.m_freem(m0);
  mb.m_freem(m1);
  mb.m_freem(d);
  mb.m_freem(m2);
  mb.drainPacketCache();
  done();
});

test('MBUF_STRESS_TEST: defrag random failures leave the chain intact, counters move, nothing leaks', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const nodes = new Map(MB.mbufSysctlNodes(mb).map((n) => [n.name, n]));
  nodes.get('kern.ipc.m_defragrandomfailures')!.set!(1);
  let fails = 0;
  for (let i = 0; i < 2000; i++) {
    const data = bytes(700, i);
    let m = build(mb, data, [{ len: 100, kind: 'm' }, { len: 300, kind: 'c' }, { len: 300, kind: 'c' }]);
    m = MB.m_fragment(mb, m, M_NOWAIT, -2);
    const d = MB.m_defrag(mb, m, M_NOWAIT);
    if (d === 0) {
      fails++;
      assert.deepEqual(MB.m_tobytes(mb, m), data);
      mb.m_freem(m);
    } else {
      assert.deepEqual(MB.m_tobytes(mb, d), data);
      mb.m_freem(d);
    }
  }
  assert.ok(fails > 0 && fails < 100, `random failures: ${fails}`);
  assert.equal(nodes.get('kern.ipc.m_defragfailure')!.get(), fails);
  assert.equal(nodes.get('kern.ipc.m_defragpackets')!.get(), 2000 - fails);
  assert.equal(nodes.get('kern.ipc.m_defragbytes')!.get(), (2000 - fails) * 700);
  mb.drainPacketCache();
  done();
});

test('m_extadd: user storage freed once by its routine; unregistered ids are refused', () => {
  const { uma, mb } = setup(16 << 20);
  const done = leakCheck(uma);
  const freed: number[] = [];
  mb.registerExtFree(3, (_m, buf, a1) => {
    freed.push(a1);
    mb.zJumbop.free(buf);
  });
  const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
  const buf = mb.zJumbop.alloc(M_NOWAIT);
  assert.throws(() => mb.m_extadd(m, buf, 4096, 9, 0, 0, 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  mb.m_extadd(m, buf, 4096, 3, 77, 0, 0);
  const c1 = MB.m_copypacket(mb, m, M_NOWAIT);
  const c2 = MB.m_copym(mb, c1, 0, MB.M_COPYALL, M_NOWAIT);
  mb.m_freem(m);
  mb.m_freem(c2);
  assert.deepEqual(freed, []);
  mb.m_freem(c1);
  assert.deepEqual(freed, [77]);
  done();
});
