/**
 * UDP headers (RFC 768).
 *
 *   0  source port   2  destination port   4  length (header + data)
 *   6  checksum over pseudo-header + header + data; 0 = none was computed
 *   8  data
 *
 * Allocation-free, lock-free, never sleep.
 */
import { cksumAdd, cksumFinish, cksumFold, pseudoHeaderSum } from './checksum.js';
import { read16, write16 } from './bytes.js';
import { IPPROTO_UDP } from './ipv4.js';
import { WIRE_BAD_CKSUM, WIRE_BAD_LEN, WIRE_OK, WIRE_TRUNCATED } from './codes.js';

export const UDP_SPORT = 0;
export const UDP_DPORT = 2;
export const UDP_ULEN = 4;
export const UDP_SUM = 6;
export const UDP_HLEN = 8;

export function udpSport(u8: Uint8Array, off: number): number {
  return read16(u8, off + UDP_SPORT);
}
export function udpDport(u8: Uint8Array, off: number): number {
  return read16(u8, off + UDP_DPORT);
}
export function udpLen(u8: Uint8Array, off: number): number {
  return read16(u8, off + UDP_ULEN);
}
export function udpSum(u8: Uint8Array, off: number): number {
  return read16(u8, off + UDP_SUM);
}

/**
 * Validate a UDP datagram with `len` bytes of IP payload at u8[off], sent
 * from `src` to `dst`. The UDP length may be shorter than the IP payload
 * (the caller trims) but never longer. A zero checksum means none was sent.
 */
export function udpParse(u8: Uint8Array, off: number, len: number, src: number, dst: number, verifyCksum: boolean): number {
  if (len < UDP_HLEN) return WIRE_TRUNCATED;
  const ulen = read16(u8, off + UDP_ULEN);
  if (ulen < UDP_HLEN || ulen > len) return WIRE_BAD_LEN;
  if (verifyCksum && read16(u8, off + UDP_SUM) !== 0) {
    const s = cksumAdd(u8, off, ulen, pseudoHeaderSum(src, dst, IPPROTO_UDP, ulen));
    if (cksumFold(s) !== 0xffff) return WIRE_BAD_CKSUM;
  }
  return WIRE_OK;
}

/**
 * Write a UDP header at u8[off] for `ulen` bytes (header + data, with the data
 * already in place and contiguous) and checksum it unless `withCksum` is false.
 */
export function udpEmit(u8: Uint8Array, off: number, sport: number, dport: number, ulen: number, src: number, dst: number, withCksum: boolean): void {
  write16(u8, off + UDP_SPORT, sport);
  write16(u8, off + UDP_DPORT, dport);
  write16(u8, off + UDP_ULEN, ulen);
  u8[off + UDP_SUM] = 0;
  u8[off + UDP_SUM + 1] = 0;
  if (withCksum) write16(u8, off + UDP_SUM, udpCksumValue(cksumAdd(u8, off, ulen, pseudoHeaderSum(src, dst, IPPROTO_UDP, ulen))));
}

/** The checksum field for a full sum: 0 is sent as 0xffff (0 means "none"). */
export function udpCksumValue(sum: number): number {
  const c = cksumFinish(sum);
  return c === 0 ? 0xffff : c;
}
