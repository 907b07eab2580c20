// The ring's batch forms in one thread against a model: staged slots stay
// invisible until sbpublish, sbtakev hands out exactly the published chains
// in order with their byte counts, the slot limit refuses a stage without
// taking the chain, and cc (exact here: one thread) follows publications.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { testUma, leakCheck } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { SB_CAP, SockBufs, sockbufZone } from '../../kern/socket/sockbuf.js';
import { MT_DATA, M_LEN } from '../../kern/mbuf/layout.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { m_length } from '../../kern/mbuf/ops.js';

type Op = { k: 'stage'; len: number } | { k: 'publish' } | { k: 'takev'; max: number } | { k: 'read'; n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 200 }).map((len) => ({ k: 'stage' as const, len })) },
  { weight: 2, arbitrary: fc.constant({ k: 'publish' as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 40 }).map((max) => ({ k: 'takev' as const, max })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 500 }).map((n) => ({ k: 'read' as const, n })) },
);

test('sbstage/sbpublish/sbtakev/sbread follow the model; nothing leaks', () => {
  const uma = testUma({ size: 64 << 20 });
  const mb = Mbufs.create(uma);
  const sbs = new SockBufs(mb, sockbufZone(uma, 32)); // a small ring: the slot limit is reached often
  const done = leakCheck(uma);
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      const sb = sbs.sbcreate(1 << 20);
      const cap = sbs.i32[(sb >> 2) + SB_CAP];
      const staged: number[] = []; // lengths staged, not yet published
      const published: number[] = []; // lengths visible to the reader (head first)
      const got = new Int32Array(40);
      const lens = new Int32Array(40);
      const buf = new Uint8Array(500);
      for (const o of ops) {
        if (o.k === 'stage') {
          const m = mb.m_get(M_NOWAIT, MT_DATA);
          mb.i32[(m + M_LEN) >> 2] = Math.min(o.len, 200);
          const ok = sbs.sbstage(sb, m, Math.min(o.len, 200));
          assert.equal(ok, staged.length + published.length < cap, 'stage succeeds exactly while a slot is free');
          if (ok) staged.push(Math.min(o.len, 200));
          else mb.m_freem(m); // refused: still ours
        } else if (o.k === 'publish') {
          sbs.sbpublish(sb);
          published.push(...staged.splice(0));
        } else if (o.k === 'takev') {
          const k = sbs.sbtakev(sb, got, o.max, lens);
          assert.equal(k, Math.min(o.max, published.length));
          for (let j = 0; j < k; j++) {
            const want = published.shift()!;
            assert.equal(lens[j], want);
            assert.equal(m_length(mb, got[j]), want);
            mb.m_freem(got[j]);
          }
        } else {
          const avail = published.reduce((a, b) => a + b, 0);
          const n = sbs.sbread(sb, buf, 0, o.n);
          assert.equal(n, Math.min(o.n, avail));
          let left = n;
          while (left > 0) {
            if (published[0] <= left) left -= published.shift()!;
            else {
              published[0] -= left;
              left = 0;
            }
          }
        }
        assert.equal(sbs.sbavail(sb), published.reduce((a, b) => a + b, 0), 'cc counts published bytes only');
      }
      sbs.sbdestroy(sb); // frees published and staged chains alike
    }),
    { numRuns: 150, seed: 4242 },
  );
  mb.drainPacketCache();
  done();
});

test('sbappendv stops at the slot limit and leaves the rest to the caller', () => {
  const uma = testUma({ size: 32 << 20 });
  const mb = Mbufs.create(uma);
  const sbs = new SockBufs(mb, sockbufZone(uma, 16));
  const done = leakCheck(uma);
  const sb = sbs.sbcreate(1 << 20);
  const chains = new Int32Array(20);
  for (let i = 0; i < 20; i++) {
    chains[i] = mb.m_get(M_NOWAIT, MT_DATA);
    mb.i32[(chains[i] + M_LEN) >> 2] = 10 + i;
  }
  assert.equal(sbs.sbappendv(sb, chains, 20), 16);
  assert.equal(sbs.sbavail(sb), Array.from({ length: 16 }, (_, i) => 10 + i).reduce((a, b) => a + b, 0));
  for (let i = 16; i < 20; i++) mb.m_freem(chains[i]);
  const got = new Int32Array(16);
  assert.equal(sbs.sbtakev(sb, got), 16);
  for (let i = 0; i < 16; i++) assert.equal(got[i], chains[i], 'FIFO order');
  for (let i = 0; i < 16; i++) mb.m_freem(got[i]);
  assert.equal(sbs.sbtakev(sb, got), 0);
  sbs.sbdestroy(sb);
  done();
});
