// ArenaCopier: copies into the shared arena at any alignment, never past the
// room the caller grants, and byte-exact for every length class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ArenaCopier } from '../../kern/mbuf/copy.js';
import { MJUM16BYTES } from '../../kern/mbuf/layout.js';
import { bytes } from './util.js';

const ARENA = 3 * MJUM16BYTES + 4096;

test('copyIn: every alignment pair and length class lands exactly, nothing written past the room', () => {
  const u8 = new Uint8Array(new SharedArrayBuffer(ARENA));
  const cp = new ArenaCopier(u8);
  const srcBuf = bytes(2 * MJUM16BYTES + 64, 3);
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 7 }), // source misalignment
      fc.integer({ min: 0, max: 7 }), // destination misalignment
      fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 200, max: 2100 }), fc.integer({ min: MJUM16BYTES - 8, max: MJUM16BYTES + 600 })),
      fc.integer({ min: 0, max: 300 }), // extra room granted
      fc.boolean(), // whole source array or a slice of it
      (sa, da, len, extra, whole) => {
        const src = whole ? srcBuf.subarray(sa, sa + len) : srcBuf;
        const srcOff = whole ? 0 : sa + 5;
        const dst = 4096 + da;
        const room = len + extra;
        u8.fill(0xee);
        cp.copyIn(src, srcOff, len, dst, room);
        assert.deepEqual(u8.subarray(dst, dst + len), src.subarray(srcOff, srcOff + len));
        for (let i = 0; i < dst; i++) if (u8[i] !== 0xee) assert.fail(`byte before the run written at ${i}`);
        for (let i = dst + room; i < u8.length; i++) if (u8[i] !== 0xee) assert.fail(`byte past the room written at ${i - dst}`);
      },
    ),
    { numRuns: 300, seed: 42 },
  );
});

test('copyIn from a view of the arena itself: copyWithin, exact bytes', () => {
  const u8 = new Uint8Array(new SharedArrayBuffer(ARENA));
  const cp = new ArenaCopier(u8);
  u8.set(bytes(5000, 8), 10000);
  const want = u8.slice(10003, 10003 + 4000);
  for (const dst of [20000, 20001, 20006]) {
    cp.copyIn(new Uint8Array(u8.buffer, 10000, 5000), 3, 4000, dst, 4000);
    assert.deepEqual(u8.subarray(dst, dst + 4000), want);
  }
});

test('copyOut: every alignment pair and length class (staged through the scratch when they differ) lands exactly, nothing written outside the run', () => {
  const u8 = new Uint8Array(new SharedArrayBuffer(ARENA));
  const cp = new ArenaCopier(u8);
  u8.set(bytes(ARENA, 11));
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 7 }), // source misalignment in the arena
      fc.integer({ min: 0, max: 7 }), // destination offset
      fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 200, max: 2100 }), fc.integer({ min: MJUM16BYTES - 8, max: 2 * MJUM16BYTES + 600 })),
      (sa, dOff, len) => {
        const src = 4096 + sa;
        const dst = new Uint8Array(len + 16).fill(0xee);
        cp.copyOut(src, len, dst, dOff);
        assert.deepEqual(dst.subarray(dOff, dOff + len), u8.subarray(src, src + len));
        assert.ok(dst.subarray(0, dOff).every((b) => b === 0xee), 'nothing before the run');
        assert.ok(dst.subarray(dOff + len).every((b) => b === 0xee), 'nothing after the run');
      },
    ),
    { numRuns: 400 },
  );
});
