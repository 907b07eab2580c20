/**
 * ARP for IPv4 over Ethernet (RFC 826), the only kind we speak.
 *
 *   0  hardware type (1 = Ethernet)      2  protocol type (0x0800)
 *   4  hardware size (6)                 5  protocol size (4)
 *   6  opcode (1 request, 2 reply)
 *   8  sender MAC   14 sender IPv4   18 target MAC   24 target IPv4
 *  28  end
 *
 * Allocation-free, lock-free, never sleeps.
 */
import { WIRE_BAD_FORMAT, WIRE_OK, WIRE_TRUNCATED } from './codes.js';
import { readMac, writeMac } from './ethernet.js';
import { read32, write32 } from './bytes.js';

export const ARP_HTYPE = 0;
export const ARP_PTYPE = 2;
export const ARP_HLEN_F = 4;
export const ARP_PLEN_F = 5;
export const ARP_OP = 6;
export const ARP_SHA = 8;
export const ARP_SPA = 14;
export const ARP_THA = 18;
export const ARP_TPA = 24;
export const ARP_LEN = 28;

export const ARPHRD_ETHER = 1;
export const ARPOP_REQUEST = 1;
export const ARPOP_REPLY = 2;

/** Validate an ARP packet of `len` bytes at u8[off]: Ethernet/IPv4, request or reply. */
export function arpParse(u8: Uint8Array, off: number, len: number): number {
  if (len < ARP_LEN) return WIRE_TRUNCATED;
  if (((u8[off] << 8) | u8[off + 1]) !== ARPHRD_ETHER) return WIRE_BAD_FORMAT;
  if (((u8[off + 2] << 8) | u8[off + 3]) !== 0x0800) return WIRE_BAD_FORMAT;
  if (u8[off + ARP_HLEN_F] !== 6 || u8[off + ARP_PLEN_F] !== 4) return WIRE_BAD_FORMAT;
  const op = arpOp(u8, off);
  if (op !== ARPOP_REQUEST && op !== ARPOP_REPLY) return WIRE_BAD_FORMAT;
  return WIRE_OK;
}

export function arpOp(u8: Uint8Array, off: number): number {
  return (u8[off + ARP_OP] << 8) | u8[off + ARP_OP + 1];
}
export function arpSha(u8: Uint8Array, off: number): number {
  return readMac(u8, off + ARP_SHA);
}
export function arpTha(u8: Uint8Array, off: number): number {
  return readMac(u8, off + ARP_THA);
}
export function arpSpa(u8: Uint8Array, off: number): number {
  return read32(u8, off + ARP_SPA);
}
export function arpTpa(u8: Uint8Array, off: number): number {
  return read32(u8, off + ARP_TPA);
}

/** Write a whole ARP packet (28 bytes) at u8[off]. */
export function arpEmit(u8: Uint8Array, off: number, op: number, sha: number, spa: number, tha: number, tpa: number): void {
  u8[off] = 0;
  u8[off + 1] = ARPHRD_ETHER;
  u8[off + 2] = 0x08;
  u8[off + 3] = 0x00;
  u8[off + ARP_HLEN_F] = 6;
  u8[off + ARP_PLEN_F] = 4;
  u8[off + ARP_OP] = op >>> 8;
  u8[off + ARP_OP + 1] = op;
  writeMac(u8, off + ARP_SHA, sha);
  write32(u8, off + ARP_SPA, spa);
  writeMac(u8, off + ARP_THA, tha);
  write32(u8, off + ARP_TPA, tpa);
}
