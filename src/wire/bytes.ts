/**
 * Big-endian field access on arena bytes. Network byte order everywhere;
 * 32-bit values (IPv4 addresses) come back as unsigned numbers.
 * Allocation-free, lock-free, never sleep.
 */

export function read16(u8: Uint8Array, off: number): number {
  return (u8[off] << 8) | u8[off + 1];
}

export function write16(u8: Uint8Array, off: number, v: number): void {
  u8[off] = v >>> 8;
  u8[off + 1] = v;
}

export function read32(u8: Uint8Array, off: number): number {
  return ((u8[off] << 24) | (u8[off + 1] << 16) | (u8[off + 2] << 8) | u8[off + 3]) >>> 0;
}

export function write32(u8: Uint8Array, off: number, v: number): void {
  u8[off] = v >>> 24;
  u8[off + 1] = v >>> 16;
  u8[off + 2] = v >>> 8;
  u8[off + 3] = v;
}
