// The copying read paths of the socket buffer: sbread is byte-exact at every
// alignment and touches nothing outside the requested range of the caller's
// array; sbrecvrecordInto fills a reusable result (no per-datagram object).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { testUma, mbufLeakCheck } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { SockBufs, SbRecordBuf } from '../../kern/socket/sockbuf.js';
import { M_DATA, M_LEN, M_NEXT, MT_DATA, MCLBYTES } from '../../kern/mbuf/layout.js';
import { M_NOWAIT } from '../../uma/flags.js';

function setup() {
  const uma = testUma({ size: 64 << 20 });
  const mb = Mbufs.create(uma);
  return { uma, mb, sbs: new SockBufs(mb), done: mbufLeakCheck(uma, mb) };
}

/**
 * A chain of clusters holding `lens[i]` bytes each, starting `lead` bytes
 * into each cluster (misaligned data), filled with (seed + position * 13)
 * & 0xff by plain stores (no JS allocation). 0 when memory is short.
 */
function chain(mb: Mbufs, lens: readonly number[], lead: number, seed: number): number {
  const i32 = mb.i32;
  const u8 = mb.u8;
  let head = 0;
  let tail = 0;
  let pos = 0;
  for (let i = 0; i < lens.length; i++) {
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
    if (m === 0) throw new Error("m_getcl failed");
    const d = i32[(m + M_DATA) >> 2] + lead;
    i32[(m + M_DATA) >> 2] = d;
    i32[(m + M_LEN) >> 2] = lens[i];
    for (let j = 0; j < lens[i]; j++) u8[d + j] = (seed + (pos + j) * 13) & 0xff;
    pos += lens[i];
    if (head === 0) head = m;
    else i32[(tail + M_NEXT) >> 2] = m;
    tail = m;
  }
  return head;
}

const expected = (seed: number, pos: number) => (seed + pos * 13) & 0xff;

test('sbread copies byte-exact at every source/destination alignment and touches nothing outside the range', () => {
  const { mb, sbs, done } = setup();
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: MCLBYTES - 8 }), { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 0, max: 7 }),
      fc.integer({ min: 0, max: 15 }),
      fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 0, max: 255 }),
      (lens, lead, dstOff, reads, seed) => {
        const sb = sbs.sbcreate(64 * 1024);
        const total = lens.reduce((a, b) => a + b, 0);
        assert.ok(sbs.sbappendstream(sb, chain(mb, lens, lead, seed)));
        let pos = 0;
        for (const want of reads) {
          const dst = new Uint8Array(dstOff + want + 300).fill(0xee);
          const n = sbs.sbread(sb, dst, dstOff, want);
          assert.equal(n, Math.min(want, total - pos));
          for (let j = 0; j < dstOff; j++) assert.equal(dst[j], 0xee, 'bytes before the range untouched');
          for (let j = 0; j < n; j++) if (dst[dstOff + j] !== expected(seed, pos + j)) assert.fail(`byte ${pos + j} differs`);
          for (let j = dstOff + n; j < dst.length; j++) assert.equal(dst[j], 0xee, 'bytes after the range untouched');
          pos += n;
        }
        assert.equal(sbs.sbavail(sb), total - pos);
        sbs.sbdestroy(sb);
      },
    ),
    { numRuns: 150 },
  );
  done();
});

test('sbrecvrecordInto fills a reusable result; sbrecvrecord keeps its old form', () => {
  const { mb, sbs, done } = setup();
  const sb = sbs.sbcreate(64 * 1024);
  const addr = Uint8Array.of(10, 0, 0, 1, 0x1f, 0x90);
  assert.ok(sbs.sbappendaddr(sb, addr, chain(mb, [100], 0, 3)));
  assert.ok(sbs.sbappendrecord(sb, chain(mb, [40], 2, 4)));
  assert.ok(sbs.sbappendaddr(sb, addr.subarray(0, 4), chain(mb, [7], 1, 5)));
  const r = new SbRecordBuf();
  assert.equal(sbs.sbrecvrecordInto(sb, r), true);
  assert.equal(r.len, 100);
  assert.equal(r.addrLen, 6);
  assert.deepEqual(r.addr.subarray(0, r.addrLen), addr);
  assert.equal(mb.u8[mb.i32[(r.m + M_DATA) >> 2]], expected(3, 0));
  mb.m_freem(r.m);
  assert.equal(sbs.sbrecvrecordInto(sb, r), true);
  assert.equal(r.len, 40);
  assert.equal(r.addrLen, -1, 'no address');
  mb.m_freem(r.m);
  const old = sbs.sbrecvrecord(sb);
  assert.ok(old !== null);
  assert.deepEqual(old.addr, addr.subarray(0, 4));
  assert.equal(old.len, 7);
  mb.m_freem(old.m);
  assert.equal(sbs.sbrecvrecordInto(sb, r), false);
  assert.equal(sbs.sbrecvrecord(sb), null);
  sbs.sbdestroy(sb);
  done();
});
