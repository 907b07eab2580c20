/**
 * HalfSipHash-2-4 (Aumasson and Bernstein's 32-bit SipHash): the keyed
 * pseudo-random function behind RFC 6528 ISNs, timestamp offsets and SYN
 * cookies, as FreeBSD keys its tcp_keyed_hash with SipHash. A 64-bit key
 * (two words), 32-bit words of message in, 32 bits out. Pure; allocation-free.
 */

function rotl(x: number, b: number): number {
  return ((x << b) | (x >>> (32 - b))) >>> 0;
}

let v0 = 0;
let v1 = 0;
let v2 = 0;
let v3 = 0;

function round(): void {
  v0 = (v0 + v1) >>> 0;
  v1 = rotl(v1, 5) ^ v0;
  v0 = rotl(v0, 16);
  v2 = (v2 + v3) >>> 0;
  v3 = rotl(v3, 8) ^ v2;
  v0 = (v0 + v3) >>> 0;
  v3 = rotl(v3, 7) ^ v0;
  v2 = (v2 + v1) >>> 0;
  v1 = rotl(v1, 13) ^ v2;
  v2 = rotl(v2, 16);
}

function compress(m: number): void {
  v3 = (v3 ^ m) >>> 0;
  round();
  round();
  v0 = (v0 ^ m) >>> 0;
}

/**
 * HalfSipHash-2-4 of `n` little-endian 32-bit words w[0..n) (a message of
 * 4n bytes) under key (k0, k1), the key's bytes read little-endian.
 */
export function halfSipHash(k0: number, k1: number, w: Uint32Array, n: number): number {
  v0 = k0 >>> 0;
  v1 = k1 >>> 0;
  v2 = (0x6c796765 ^ k0) >>> 0;
  v3 = (0x74656462 ^ k1) >>> 0;
  for (let i = 0; i < n; i++) compress(w[i] >>> 0);
  compress(((4 * n) << 24) >>> 0);
  v2 = (v2 ^ 0xff) >>> 0;
  round();
  round();
  round();
  round();
  return (v1 ^ v3) >>> 0;
}

/** The reference implementation's byte form (for its test vectors): message bytes, any length. */
export function halfSipHashBytes(k0: number, k1: number, msg: Uint8Array): number {
  v0 = k0 >>> 0;
  v1 = k1 >>> 0;
  v2 = (0x6c796765 ^ k0) >>> 0;
  v3 = (0x74656462 ^ k1) >>> 0;
  const full = msg.length & ~3;
  for (let i = 0; i < full; i += 4) compress((msg[i] | (msg[i + 1] << 8) | (msg[i + 2] << 16) | (msg[i + 3] << 24)) >>> 0);
  let b = (msg.length << 24) >>> 0;
  for (let i = full, s = 0; i < msg.length; i++, s += 8) b = (b | (msg[i] << s)) >>> 0;
  compress(b);
  v2 = (v2 ^ 0xff) >>> 0;
  round();
  round();
  round();
  round();
  return (v1 ^ v3) >>> 0;
}
