/**
 * The Internet checksum (RFC 1071) over arena bytes, and its incremental
 * update (RFC 1624). Sums are kept unfolded in a JS number (a double holds
 * 2^53, so no carry is lost before the fold for any packet we can carry) and
 * folded to 16 bits only at the end.
 *
 * Every function here is pure, allocation-free and takes no lock.
 */

/**
 * Add the 16-bit big-endian words of u8[off, off+len) to `sum`. An odd last
 * byte is padded with a zero low byte, as RFC 1071 says. Callers that sum a
 * packet in several pieces must start every piece but the first at an even
 * distance from the first (cksumAddOdd handles a piece that does not).
 * No lock; never sleeps.
 */
export function cksumAdd(u8: Uint8Array, off: number, len: number, sum: number): number {
  let i = off;
  const end = off + (len & ~1);
  // Eight bytes per turn: fewer loop tests on the hot path.
  const end8 = off + (len & ~7);
  let s = 0;
  while (i < end8) {
    s += ((u8[i] << 8) | u8[i + 1]) + ((u8[i + 2] << 8) | u8[i + 3]) + ((u8[i + 4] << 8) | u8[i + 5]) + ((u8[i + 6] << 8) | u8[i + 7]);
    i += 8;
  }
  while (i < end) {
    s += (u8[i] << 8) | u8[i + 1];
    i += 2;
  }
  if (len & 1) s += u8[end] << 8;
  return sum + s;
}

/**
 * Add a piece that starts at an odd distance from the start of the checksummed
 * data: its bytes land in the other half of each word, which the RFC says is a
 * byte swap of the piece's own sum. No lock; never sleeps.
 */
export function cksumAddOdd(u8: Uint8Array, off: number, len: number, sum: number): number {
  const s = cksumFold(cksumAdd(u8, off, len, 0));
  return sum + (((s & 0xff) << 8) | (s >>> 8));
}

/** Fold a running sum to 16 bits with end-around carry. */
export function cksumFold(sum: number): number {
  // Two 32-bit folds first (sum may exceed 2^32), then 16-bit ones.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum field value: the one's complement of the folded sum. */
export function cksumFinish(sum: number): number {
  return ~cksumFold(sum) & 0xffff;
}

/** RFC 1071 checksum of u8[off, off+len), ready to store in a header. */
export function cksum(u8: Uint8Array, off: number, len: number): number {
  return cksumFinish(cksumAdd(u8, off, len, 0));
}

/**
 * The IPv4 pseudo-header sum for UDP/TCP (RFC 768): source and destination
 * addresses (as unsigned 32-bit numbers), protocol and transport length.
 */
export function pseudoHeaderSum(src: number, dst: number, proto: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + len;
}

/**
 * Incremental update (RFC 1624, eqn. 3): the new checksum field after one
 * 16-bit word of the covered data changed from `oldWord` to `newWord`.
 * HC' = ~(~HC + ~m + m'). Used for the TTL decrement and NAT-style rewrites.
 */
export function cksumUpdate16(oldCksum: number, oldWord: number, newWord: number): number {
  const s = (~oldCksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~cksumFold(s) & 0xffff;
}

/** Incremental update for a changed 32-bit field (an address): two word updates. */
export function cksumUpdate32(oldCksum: number, oldVal: number, newVal: number): number {
  const s =
    (~oldCksum & 0xffff) +
    (~(oldVal >>> 16) & 0xffff) +
    (~oldVal & 0xffff) +
    ((newVal >>> 16) & 0xffff) +
    (newVal & 0xffff);
  return ~cksumFold(s) & 0xffff;
}
