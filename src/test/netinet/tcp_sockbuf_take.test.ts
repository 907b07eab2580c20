/**
 * Sockbuf.take (tcp_sockbuf.ts), what TCP_READ hands a reader on another
 * thread: any sequence of appends and takes gives back exactly the bytes
 * appended, in order; cc and the storage count (mbcnt) stay those of what
 * is left; the cut mbuf is shared, not copied; nothing leaks.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fresh } from '../mbuf/util.js';
import { Sockbuf } from '../../netinet/tcp_sockbuf.js';
import { m_copydata } from '../../kern/mbuf/ops.js';
import { M_DATA, M_NEXT, M_LEN } from '../../kern/mbuf/layout.js';

/** Storage of the chain from m, as Sockbuf counts it (recomputed by walking). */
function chainBytes(mb: ReturnType<typeof fresh>['mb'], m: number): number {
  let n = 0;
  for (; m !== 0; m = mb.i32[(m + M_NEXT) >> 2]) n += mb.i32[(m + M_LEN) >> 2];
  return n;
}

test('Sockbuf.take: appends and takes of any sizes return the stream in order; cc and mbcnt follow (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ put: fc.integer({ min: 0, max: 9000 }), take: fc.integer({ min: 0, max: 12000 }) }), { minLength: 1, maxLength: 20 }), (ops) => {
      const { mb, fin } = fresh();
      const sb = new Sockbuf(mb, 1 << 20);
      let written = 0;
      let read = 0;
      for (const { put, take } of ops) {
        const src = Buffer.alloc(put);
        for (let i = 0; i < put; i++) src[i] = (written + i) * 7 + 3;
        assert.equal(sb.appendBytes(src, 0, put), put);
        written += put;
        const want = Math.min(take, sb.cc);
        const before = sb.cc;
        const m = sb.take(take);
        if (want === 0) {
          assert.equal(m, 0);
          continue;
        }
        assert.notEqual(m, 0);
        assert.equal(chainBytes(mb, m), want, 'the chain holds what was taken');
        assert.equal(sb.cc, before - want);
        assert.equal(chainBytes(mb, sb.mb0), sb.cc, 'what is left is what cc says');
        const got = Buffer.alloc(want);
        m_copydata(mb, m, 0, want, got);
        for (let i = 0; i < want; i++) assert.equal(got[i], ((read + i) * 7 + 3) & 0xff);
        read += want;
        mb.m_freem(m);
      }
      assert.equal(sb.cc, written - read);
      sb.flush();
      assert.equal(sb.mbcnt, 0, 'storage count back to 0 after flush');
      fin();
    }),
    { numRuns: 200 },
  );
});

test('Sockbuf.take: a cut in the middle of a cluster shares it (no copy): the remainder keeps its bytes', () => {
  const { mb, fin } = fresh();
  const sb = new Sockbuf(mb, 1 << 20);
  const src = Buffer.alloc(3000, 0);
  for (let i = 0; i < src.length; i++) src[i] = i & 0xff;
  sb.appendBytes(src, 0, src.length);
  const m = sb.take(100);
  assert.equal(chainBytes(mb, m), 100);
  // The taken piece and what is left share one cluster: the remainder's data starts 100 bytes after the piece's.
  assert.equal(mb.i32[(sb.mb0 + M_DATA) >> 2], mb.i32[(m + M_DATA) >> 2] + 100);
  const rest = Buffer.alloc(sb.cc);
  sb.copyOut(0, sb.cc, rest, 0);
  assert.deepEqual(rest, src.subarray(100));
  mb.m_freem(m);
  sb.flush();
  fin();
});
