// Property tests: random chains and random operation sequences against a plain byte-array model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { leakCheck } from '../helpers.js';
import * as MB from '../../kern/mbuf/index.js';
import { setup, build, bytes } from './util.js';

const { M_NOWAIT } = MB;

// Internal mbufs hold at most MHLEN bytes (the first carries the pkthdr), clusters up to 300 here.
const segArb = fc.oneof(
  fc.record({ len: fc.integer({ min: 0, max: MB.MHLEN }), kind: fc.constant<'m' | 'c'>('m') }),
  fc.record({ len: fc.integer({ min: 0, max: 300 }), kind: fc.constant<'m' | 'c'>('c') }),
);
const opArb = fc.oneof(
  fc.record({ op: fc.constant('adj' as const), n: fc.integer({ min: -400, max: 400 }) }),
  fc.record({ op: fc.constant('prepend' as const), n: fc.integer({ min: 0, max: 100 }) }),
  fc.record({ op: fc.constant('append' as const), n: fc.integer({ min: 0, max: 3000 }) }),
  fc.record({ op: fc.constant('pullup' as const), n: fc.integer({ min: 0, max: 200 }) }),
  fc.record({ op: fc.constant('copyback' as const), off: fc.integer({ min: 0, max: 500 }), n: fc.integer({ min: 0, max: 400 }) }),
  fc.record({ op: fc.constant('splitcat' as const), n: fc.integer({ min: 0, max: 2000 }) }),
  fc.record({ op: fc.constant('copym' as const), off: fc.integer({ min: 0, max: 1000 }), n: fc.integer({ min: 0, max: 1000 }) }),
  fc.record({ op: fc.constant('dup' as const) }),
  fc.record({ op: fc.constant('defrag' as const) }),
  fc.record({ op: fc.constant('unshare' as const) }),
  fc.record({ op: fc.constant('collapse' as const), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('fragment' as const), n: fc.integer({ min: -2, max: 700 }) }),
  fc.record({ op: fc.constant('pulldown' as const), off: fc.integer({ min: 0, max: 1500 }), n: fc.integer({ min: 1, max: 300 }) }),
);

test('random chains and op sequences match a byte-array model; zones back to start', () => {
  const { uma, mb } = setup();
  const done = leakCheck(uma);
  const offp = new Int32Array(1);
  fc.assert(
    fc.property(fc.array(segArb, { minLength: 1, maxLength: 6 }), fc.array(opArb, { maxLength: 12 }), (segs, ops) => {
      let model = Array.from(bytes(segs.reduce((a, s) => a + s.len, 0), segs.length));
      let m = build(mb, Uint8Array.from(model), segs);
      const extra: number[] = [];
      try { for (const o of ops) {
        switch (o.op) {
          case 'adj':
            MB.m_adj(mb, m, o.n);
            model = o.n >= 0 ? model.slice(o.n) : model.slice(0, Math.max(0, model.length + o.n));
            break;
          case 'prepend': {
            const r = MB.M_PREPEND(mb, m, o.n, M_NOWAIT);
            assert.ok(r !== 0);
            m = r;
            const fill = bytes(o.n, 7);
            mb.u8.set(fill, mb.m_data(m));
            model = [...fill, ...model];
            break;
          }
          case 'append': {
            const src = bytes(o.n, 3);
            assert.equal(MB.m_append(mb, m, o.n, src), true);
            model = [...model, ...src];
            break;
          }
          case 'pullup': {
            const r = MB.m_pullup(mb, m, o.n);
            if (o.n > model.length || (o.n > MB.MHLEN && mb.m_len(m) < o.n)) {
              if (r === 0) {
                // m_pullup freed the chain, as documented: only the copies are left.
                for (const c of extra) mb.m_freem(c);
                return true;
              }
            }
            assert.ok(r !== 0);
            m = r;
            assert.ok(mb.m_len(m) >= Math.min(o.n, model.length));
            break;
          }
          case 'copyback': {
            // Make the target writable first (as callers must).
            m = MB.m_unshare(mb, m, M_NOWAIT);
            assert.ok(m !== 0);
            const src = bytes(o.n, 9);
            MB.m_copyback(mb, m, o.off, o.n, src);
            while (o.n > 0 && model.length < o.off) model.push(0);
            for (let i = 0; i < o.n; i++) model[o.off + i] = src[i];
            break;
          }
          case 'splitcat': {
            if (o.n > model.length) break;
            const t = MB.m_split(mb, m, o.n, M_NOWAIT);
            assert.ok(t !== 0 || (o.n === model.length && false) || t !== 0);
            assert.equal(mb.pkthdrLen(m), o.n);
            assert.equal(MB.m_length(mb, t), model.length - o.n);
            assert.equal(mb.pkthdrLen(t), model.length - o.n);
            MB.m_catpkt(mb, m, t);
            break;
          }
          case 'copym': {
            if (o.off > model.length) break;
            const len = Math.min(o.n, model.length - o.off);
            const c = MB.m_copym(mb, m, o.off, len, M_NOWAIT);
            if (len === 0) {
              assert.equal(c, 0);
              break;
            }
            assert.deepEqual(Array.from(MB.m_tobytes(mb, c)), model.slice(o.off, o.off + len));
            extra.push(c);
            break;
          }
          case 'dup': {
            const d = MB.m_dup(mb, m, M_NOWAIT);
            assert.deepEqual(Array.from(MB.m_tobytes(mb, d)), model);
            for (let x = d; x !== 0; x = mb.m_next(x)) assert.ok(MB.M_WRITABLE(mb, x));
            mb.m_freem(m);
            m = d;
            break;
          }
          case 'defrag': {
            const d = MB.m_defrag(mb, m, M_NOWAIT);
            assert.ok(d !== 0);
            m = d;
            break;
          }
          case 'unshare': {
            m = MB.m_unshare(mb, m, M_NOWAIT);
            assert.ok(m !== 0);
            for (let x = m; x !== 0; x = mb.m_next(x)) assert.ok(MB.M_WRITABLE(mb, x));
            break;
          }
          case 'collapse': {
            const r = MB.m_collapse(mb, m, M_NOWAIT, o.n);
            if (r !== 0) assert.ok(MB.m_count(mb, r) <= o.n);
            break;
          }
          case 'fragment':
            m = MB.m_fragment(mb, m, M_NOWAIT, o.n);
            if (o.n > 0 && model.length > 0) {
              for (let x = m; mb.m_next(x) !== 0; x = mb.m_next(x)) assert.equal(mb.m_len(x), Math.min(o.n, MB.MCLBYTES));
            }
            break;
          case 'pulldown': {
            if (o.off + o.n > model.length) break;
            const n = MB.m_pulldown(mb, m, o.off, o.n, offp);
            assert.ok(n !== 0);
            const view = mb.u8.subarray(mb.m_data(n) + offp[0], mb.m_data(n) + offp[0] + o.n);
            assert.deepEqual(Array.from(view), model.slice(o.off, o.off + o.n));
            break;
          }
        }
        assert.equal(MB.m_length(mb, m), model.length, `length after ${o.op}`);
        assert.equal(mb.pkthdrLen(m), model.length, `pkthdr len after ${o.op}`);
        assert.deepEqual(Array.from(MB.m_tobytes(mb, m)), model, `bytes after ${JSON.stringify(o)}`);
      }
      } catch (e) {
        // fast-check reports only the shrunk case; show the first failure in full.
        if (!(globalThis as { __shown?: number }).__shown) {
          (globalThis as { __shown?: number }).__shown = 1;
          console.error("first failure", JSON.stringify(segs), JSON.stringify(ops), e);
        }
        throw e;
      }
      for (const c of extra) mb.m_freem(c);
      mb.m_freem(m);
      return true;
    }),
    { numRuns: 150, seed: 4242 },
  );
  mb.drainPacketCache();
  done();
});
