// RFC 1071 checksum and RFC 1624 incremental update against a plain reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { cksum, cksumAdd, cksumAddOdd, cksumFinish, cksumFold, cksumUpdate16, cksumUpdate32, pseudoHeaderSum } from '../../wire/checksum.js';

/** Reference: 16-bit one's complement sum, folded after every addition. */
function reference(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    s += (bytes[i] << 8) | (i + 1 < bytes.length ? bytes[i + 1] : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

test('RFC 1071 example bytes', () => {
  // The worked example of RFC 1071 section 3: sum 0xddf2, checksum 0x220d.
  const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(cksumFold(cksumAdd(b, 0, 8, 0)), 0xddf2);
  assert.equal(cksum(b, 0, 8), 0x220d);
});

test('cksum matches the reference at any offset and length', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(7), (data, pad) => {
      const buf = new Uint8Array(data.length + pad + 3).fill(0xa5);
      buf.set(data, pad);
      assert.equal(cksum(buf, pad, data.length), reference(data));
    }),
  );
});

test('summing in pieces (even and odd splits) equals the whole', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.nat(), (data, cut) => {
      const k = cut % (data.length + 1);
      const whole = cksum(data, 0, data.length);
      const first = cksumAdd(data, 0, k, 0);
      const second = (k & 1) === 0 ? cksumAdd(data, k, data.length - k, first) : cksumAddOdd(data, k, data.length - k, first);
      assert.equal(cksumFinish(second), whole);
    }),
  );
});

test('a stored checksum makes the data verify (sum folds to 0xffff)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 200 }), (data) => {
      const b = Uint8Array.from(data.length & 1 ? [...data, 0] : data);
      b[0] = 0;
      b[1] = 0;
      const c = cksum(b, 0, b.length);
      b[0] = c >>> 8;
      b[1] = c & 0xff;
      assert.equal(cksumFold(cksumAdd(b, 0, b.length, 0)), 0xffff);
    }),
  );
});

test('incremental update (RFC 1624) keeps the data verifying', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff }), (data, w, nw, n32) => {
      const b = Uint8Array.from(data);
      b[10] = 0;
      b[11] = 0;
      const c0 = cksum(b, 0, 20);
      b[10] = c0 >>> 8;
      b[11] = c0 & 0xff;
      const i = w === 5 ? 0 : w * 2; // never the checksum word itself
      const old = (b[i] << 8) | b[i + 1];
      b[i] = nw >>> 8;
      b[i + 1] = nw & 0xff;
      const c1 = cksumUpdate16(c0, old, nw);
      b[10] = c1 >>> 8;
      b[11] = c1 & 0xff;
      assert.equal(cksumFold(cksumAdd(b, 0, 20, 0)), 0xffff);
      // and a 32-bit field (bytes 12..15, the source address)
      const old32 = ((b[12] << 24) | (b[13] << 16) | (b[14] << 8) | b[15]) >>> 0;
      b[12] = n32 >>> 24;
      b[13] = (n32 >>> 16) & 0xff;
      b[14] = (n32 >>> 8) & 0xff;
      b[15] = n32 & 0xff;
      const c2 = cksumUpdate32(c1, old32, n32);
      b[10] = c2 >>> 8;
      b[11] = c2 & 0xff;
      assert.equal(cksumFold(cksumAdd(b, 0, 20, 0)), 0xffff);
    }),
  );
});

test('pseudo-header sum equals summing its 12 bytes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffff }), (s, d, p, l) => {
      const b = new Uint8Array(12);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, s);
      dv.setUint32(4, d);
      b[9] = p;
      dv.setUint16(10, l);
      assert.equal(cksumFold(pseudoHeaderSum(s, d, p, l)), cksumFold(cksumAdd(b, 0, 12, 0)));
    }),
  );
});
