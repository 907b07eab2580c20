/**
 * IPv4 headers (RFC 791).
 *
 *   0  version(4) | IHL(4)     1  TOS       2  total length
 *   4  identification          6  flags(3) | fragment offset(13), in 8-byte units
 *   8  TTL     9  protocol    10  header checksum
 *  12  source address         16  destination address
 *  20  options (IHL*4 - 20 bytes), then payload
 *
 * Addresses are unsigned 32-bit numbers. Options are never interpreted, only
 * walked to make sure their lengths stay inside the header (so a bogus option
 * can never make a later reader run past it), then skipped.
 * Allocation-free, lock-free, never sleep.
 */
import { cksum, cksumAdd, cksumFold } from './checksum.js';
import { read16, read32, write16, write32 } from './bytes.js';
import { WIRE_BAD_CKSUM, WIRE_BAD_FRAGMENT, WIRE_BAD_HLEN, WIRE_BAD_LEN, WIRE_BAD_OPTIONS, WIRE_BAD_VERSION, WIRE_OK, WIRE_TRUNCATED } from './codes.js';

export const IP_VHL = 0;
export const IP_TOS = 1;
export const IP_LEN = 2;
export const IP_ID = 4;
export const IP_OFF = 6;
export const IP_TTL = 8;
export const IP_PROTO = 9;
export const IP_SUM = 10;
export const IP_SRC = 12;
export const IP_DST = 16;
export const IP_HLEN_MIN = 20;
export const IP_HLEN_MAX = 60;
export const IP_MAXPACKET = 65535;

/** Flag bits and offset mask of the IP_OFF field. */
export const IP_RF = 0x8000;
export const IP_DF = 0x4000;
export const IP_MF = 0x2000;
export const IP_OFFMASK = 0x1fff;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const IPOPT_EOL = 0;
export const IPOPT_NOP = 1;

export const INADDR_ANY = 0;
export const INADDR_BROADCAST = 0xffff_ffff;
export const INADDR_LOOPBACK = 0x7f00_0001;

export const IPDEFTTL = 64;

/** Header length in bytes from the IHL field. */
export function ipHlen(u8: Uint8Array, off: number): number {
  return (u8[off] & 0x0f) << 2;
}
export function ipVersion(u8: Uint8Array, off: number): number {
  return u8[off] >>> 4;
}
export function ipTotalLen(u8: Uint8Array, off: number): number {
  return read16(u8, off + IP_LEN);
}
export function ipId(u8: Uint8Array, off: number): number {
  return read16(u8, off + IP_ID);
}
/** The whole flags + offset field. */
export function ipOffField(u8: Uint8Array, off: number): number {
  return read16(u8, off + IP_OFF);
}
/** Fragment offset in bytes. */
export function ipFragOff(u8: Uint8Array, off: number): number {
  return (read16(u8, off + IP_OFF) & IP_OFFMASK) << 3;
}
/** True if the packet is a fragment (MF set or a non-zero offset). */
export function ipIsFragment(u8: Uint8Array, off: number): boolean {
  return (read16(u8, off + IP_OFF) & (IP_MF | IP_OFFMASK)) !== 0;
}
export function ipTtl(u8: Uint8Array, off: number): number {
  return u8[off + IP_TTL];
}
export function ipProto(u8: Uint8Array, off: number): number {
  return u8[off + IP_PROTO];
}
export function ipSrc(u8: Uint8Array, off: number): number {
  return read32(u8, off + IP_SRC);
}
export function ipDst(u8: Uint8Array, off: number): number {
  return read32(u8, off + IP_DST);
}

/**
 * Validate an IPv4 header at u8[off] with `len` bytes available (the frame
 * payload, which may carry link padding beyond the total length). Returns a
 * WIRE_* code. `verifyCksum` false trusts a link that needs no checksums
 * (checksum offload). The caller trims the packet to ipTotalLen() afterwards.
 */
export function ipv4Parse(u8: Uint8Array, off: number, len: number, verifyCksum: boolean): number {
  if (len < IP_HLEN_MIN) return WIRE_TRUNCATED;
  if (u8[off] >>> 4 !== 4) return WIRE_BAD_VERSION;
  const hlen = (u8[off] & 0x0f) << 2;
  if (hlen < IP_HLEN_MIN || hlen > len) return WIRE_BAD_HLEN;
  if (verifyCksum && cksumFold(cksumAdd(u8, off, hlen, 0)) !== 0xffff) return WIRE_BAD_CKSUM;
  const total = read16(u8, off + IP_LEN);
  if (total < hlen || total > len) return WIRE_BAD_LEN;
  if (hlen > IP_HLEN_MIN && !ipOptionsValid(u8, off + IP_HLEN_MIN, hlen - IP_HLEN_MIN)) return WIRE_BAD_OPTIONS;
  const offField = read16(u8, off + IP_OFF);
  if ((offField & (IP_MF | IP_OFFMASK)) !== 0) {
    const dataLen = total - hlen;
    if (((offField & IP_OFFMASK) << 3) + dataLen > IP_MAXPACKET) return WIRE_BAD_FRAGMENT;
    // Every fragment but the last carries a non-zero multiple of 8 bytes (RFC 791).
    if ((offField & IP_MF) !== 0 && (dataLen === 0 || (dataLen & 7) !== 0)) return WIRE_BAD_FRAGMENT;
  }
  return WIRE_OK;
}

/**
 * Walk the option bytes u8[off, off+len): EOL ends the list, NOP is one byte,
 * every other option has a length byte of at least 2 that must fit.
 */
export function ipOptionsValid(u8: Uint8Array, off: number, len: number): boolean {
  let i = 0;
  while (i < len) {
    const type = u8[off + i];
    if (type === IPOPT_EOL) return true;
    if (type === IPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= len) return false;
    const olen = u8[off + i + 1];
    if (olen < 2 || i + olen > len) return false;
    i += olen;
  }
  return true;
}

/**
 * Write a 20-byte IPv4 header (no options) at u8[off]. `offField` is the
 * flags | (offset >> 3) word. With `withCksum` false the checksum is left 0
 * for a link that needs none (offload).
 */
export function ipv4Emit(
  u8: Uint8Array,
  off: number,
  tos: number,
  totalLen: number,
  id: number,
  offField: number,
  ttl: number,
  proto: number,
  src: number,
  dst: number,
  withCksum: boolean,
): void {
  u8[off] = 0x45;
  u8[off + IP_TOS] = tos;
  write16(u8, off + IP_LEN, totalLen);
  write16(u8, off + IP_ID, id);
  write16(u8, off + IP_OFF, offField);
  u8[off + IP_TTL] = ttl;
  u8[off + IP_PROTO] = proto;
  u8[off + IP_SUM] = 0;
  u8[off + IP_SUM + 1] = 0;
  write32(u8, off + IP_SRC, src);
  write32(u8, off + IP_DST, dst);
  if (withCksum) write16(u8, off + IP_SUM, cksum(u8, off, IP_HLEN_MIN));
}

/** Recompute the header checksum of a header of any length in place. */
export function ipv4SetCksum(u8: Uint8Array, off: number): void {
  u8[off + IP_SUM] = 0;
  u8[off + IP_SUM + 1] = 0;
  write16(u8, off + IP_SUM, cksum(u8, off, ipHlen(u8, off)));
}

/** "a.b.c.d" of an address number (edges and messages only). */
export function ipToString(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Parse dotted-quad "a.b.c.d"; returns -1 if malformed. */
export function ipFromString(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return -1;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return -1;
    v = v * 256 + b;
  }
  return v;
}

/** Netmask number of a prefix length 0..32. */
export function prefixToMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffff_ffff << (32 - prefix)) >>> 0;
}
