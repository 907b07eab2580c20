/**
 * Ethernet II frames (no FCS: neither TAP nor our links carry it).
 *
 *   0  destination MAC (6)
 *   6  source MAC (6)
 *  12  EtherType (2)
 *  14  payload
 *
 * A MAC address travels through the stack as one JS number holding the 48-bit
 * value (exact in a double), so ARP entries and comparisons need no objects.
 * All functions are allocation-free, lock-free and never sleep.
 */
import { WIRE_OK, WIRE_TRUNCATED } from './codes.js';

export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;
export const ETH_HLEN = 14;
/** Smallest frame on the wire without FCS; shorter frames are padded on output. */
export const ETH_MIN_FRAME = 60;
/** Default payload MTU. */
export const ETH_MTU = 1500;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_IPV6 = 0x86dd;

export const MAC_BROADCAST = 0xffff_ffff_ffff;
const TWO32 = 0x1_0000_0000;

/** Read a 48-bit MAC at u8[off] as a number. */
export function readMac(u8: Uint8Array, off: number): number {
  const hi = (u8[off] << 8) | u8[off + 1];
  const lo = ((u8[off + 2] << 24) | (u8[off + 3] << 16) | (u8[off + 4] << 8) | u8[off + 5]) >>> 0;
  return hi * TWO32 + lo;
}

/** Write a 48-bit MAC number at u8[off]. */
export function writeMac(u8: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / TWO32);
  const lo = mac >>> 0;
  u8[off] = hi >>> 8;
  u8[off + 1] = hi;
  u8[off + 2] = lo >>> 24;
  u8[off + 3] = lo >>> 16;
  u8[off + 4] = lo >>> 8;
  u8[off + 5] = lo;
}

/** True for group (multicast or broadcast) addresses: the I/G bit of the first octet. */
export function macIsGroup(mac: number): boolean {
  return (Math.floor(mac / 0x100_0000_0000) & 1) === 1;
}

/** Check a received frame of `len` bytes: only the header length can be wrong. */
export function ethParse(_u8: Uint8Array, _off: number, len: number): number {
  return len < ETH_HLEN ? WIRE_TRUNCATED : WIRE_OK;
}

export function ethDst(u8: Uint8Array, off: number): number {
  return readMac(u8, off + ETH_DST);
}
export function ethSrc(u8: Uint8Array, off: number): number {
  return readMac(u8, off + ETH_SRC);
}
export function ethType(u8: Uint8Array, off: number): number {
  return (u8[off + ETH_TYPE] << 8) | u8[off + ETH_TYPE + 1];
}

/** Write an Ethernet header at u8[off]. */
export function ethEmit(u8: Uint8Array, off: number, dst: number, src: number, type: number): void {
  writeMac(u8, off + ETH_DST, dst);
  writeMac(u8, off + ETH_SRC, src);
  u8[off + ETH_TYPE] = type >>> 8;
  u8[off + ETH_TYPE + 1] = type;
}

/** "aa:bb:cc:dd:ee:ff" for a MAC number (edges and messages only). */
export function macToString(mac: number): string {
  const b: string[] = [];
  for (let i = 5; i >= 0; i--) b.push((Math.floor(mac / 2 ** (8 * i)) & 0xff).toString(16).padStart(2, '0'));
  return b.join(':');
}

/** Parse "aa:bb:cc:dd:ee:ff" (or with '-'); returns -1 if malformed. */
export function macFromString(s: string): number {
  const parts = s.split(/[:-]/);
  if (parts.length !== 6) return -1;
  let v = 0;
  for (const p of parts) {
    if (!/^[0-9a-fA-F]{1,2}$/.test(p)) return -1;
    v = v * 256 + parseInt(p, 16);
  }
  return v;
}
