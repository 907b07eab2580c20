/**
 * ICMP for IPv4 (RFC 792).
 *
 *   0  type   1  code   2  checksum (over the whole message)
 *   4  rest of header: id | seq for echo, unused | next-hop MTU for
 *      "fragmentation needed", unused for the other errors
 *   8  data: for errors, the offending IP header + its first 8 payload bytes
 *
 * Allocation-free, lock-free, never sleep.
 */
import { cksum, cksumAdd, cksumFold } from './checksum.js';
import { read16, write16 } from './bytes.js';
import { WIRE_BAD_CKSUM, WIRE_OK, WIRE_TRUNCATED } from './codes.js';

export const ICMP_TYPE = 0;
export const ICMP_CODE = 1;
export const ICMP_SUM = 2;
export const ICMP_ID = 4;
export const ICMP_SEQ = 6;
export const ICMP_NEXTMTU = 6;
export const ICMP_HLEN = 8;

export const ICMP_ECHOREPLY = 0;
export const ICMP_UNREACH = 3;
export const ICMP_SOURCEQUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO = 8;
export const ICMP_TIMXCEED = 11;
export const ICMP_PARAMPROB = 12;
export const ICMP_MAXTYPE = 18;

export const ICMP_UNREACH_NET = 0;
export const ICMP_UNREACH_HOST = 1;
export const ICMP_UNREACH_PROTOCOL = 2;
export const ICMP_UNREACH_PORT = 3;
export const ICMP_UNREACH_NEEDFRAG = 4;
export const ICMP_TIMXCEED_INTRANS = 0;
export const ICMP_TIMXCEED_REASS = 1;

/** True for the error types that must never be answered with another error. */
export function icmpIsError(type: number): boolean {
  return type === ICMP_UNREACH || type === ICMP_SOURCEQUENCH || type === ICMP_REDIRECT || type === ICMP_TIMXCEED || type === ICMP_PARAMPROB;
}

/** Validate an ICMP message of `len` bytes at u8[off] (header size and checksum). */
export function icmpParse(u8: Uint8Array, off: number, len: number, verifyCksum: boolean): number {
  if (len < ICMP_HLEN) return WIRE_TRUNCATED;
  if (verifyCksum && cksumFold(cksumAdd(u8, off, len, 0)) !== 0xffff) return WIRE_BAD_CKSUM;
  return WIRE_OK;
}

export function icmpType(u8: Uint8Array, off: number): number {
  return u8[off + ICMP_TYPE];
}
export function icmpCode(u8: Uint8Array, off: number): number {
  return u8[off + ICMP_CODE];
}
export function icmpId(u8: Uint8Array, off: number): number {
  return read16(u8, off + ICMP_ID);
}
export function icmpSeq(u8: Uint8Array, off: number): number {
  return read16(u8, off + ICMP_SEQ);
}

/**
 * Write an ICMP header at u8[off] with `rest` as the 32-bit second word, and
 * checksum the whole `len`-byte message (header + data already in place).
 */
export function icmpEmit(u8: Uint8Array, off: number, type: number, code: number, rest: number, len: number): void {
  u8[off + ICMP_TYPE] = type;
  u8[off + ICMP_CODE] = code;
  u8[off + ICMP_SUM] = 0;
  u8[off + ICMP_SUM + 1] = 0;
  write16(u8, off + 4, rest >>> 16);
  write16(u8, off + 6, rest & 0xffff);
  write16(u8, off + ICMP_SUM, cksum(u8, off, len));
}
