/**
 * Randomness for protocol code.
 *
 * - Prng: a small seeded source (mulberry32) for impairment models, so a
 *   failing run can be replayed from its seed. One per owner; no lock.
 * - The per-boot secret (RFC 6056 section 3.3.3, RFC 6528 section 3): 128
 *   bits made from crypto random bytes by the first thread that asks for
 *   them in an arena (Machine.start, or the first Stack of a single-thread
 *   system), kept as four arena tunables so every CPU of a machine reads the
 *   same key, and different on every run.
 * - halfSipHash: HalfSipHash-2-4 (Aumasson and Bernstein's SipHash on 32-bit
 *   words, the kernel's hsiphash), a keyed hash fast enough for the packet
 *   path, with the helpers protocol code uses: the ephemeral port offset
 *   (RFC 6056 algorithm 3), the ISN offset (RFC 6528) and randomized IP IDs
 *   (RFC 6864 section 4.1, a per-CPU generator seeded from the secret).
 *
 * Nothing here locks on the fast path; bootSecret takes the tunable table
 * lock once per arena and thread (cold).
 */
import { randomFillSync } from 'node:crypto';
import type { Arena } from '../vm/arena.js';
import { tunableIndex } from './sysctl/tunables.js';

export class Prng {
  private s: number;
  readonly seed: number;
  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.s = this.seed;
  }
  /** Next value in [0, 2^32). */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Next value in [0, 1). */
  next(): number {
    return this.u32() / 0x1_0000_0000;
  }
  /** Integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

// ------------------------------------------------------------ HalfSipHash-2-4

const rotl = (x: number, b: number): number => (x << b) | (x >>> (32 - b));

/** The four state words of one hash, reused (one thread runs one hash at a time). */
const v = new Int32Array(4);

function sipRound(): void {
  let v0 = v[0];
  let v1 = v[1];
  let v2 = v[2];
  let v3 = v[3];
  v0 = (v0 + v1) | 0;
  v1 = rotl(v1, 5) ^ v0;
  v0 = rotl(v0, 16);
  v2 = (v2 + v3) | 0;
  v3 = rotl(v3, 8) ^ v2;
  v0 = (v0 + v3) | 0;
  v3 = rotl(v3, 7) ^ v0;
  v2 = (v2 + v1) | 0;
  v1 = rotl(v1, 13) ^ v2;
  v2 = rotl(v2, 16);
  v[0] = v0;
  v[1] = v1;
  v[2] = v2;
  v[3] = v3;
}

function sipBegin(k0: number, k1: number): void {
  v[0] = k0;
  v[1] = k1;
  v[2] = 0x6c796765 ^ k0;
  v[3] = 0x74656462 ^ k1;
}

function sipWord(m: number): void {
  v[3] ^= m;
  sipRound();
  sipRound();
  v[0] ^= m;
}

function sipEnd(bytes: number): number {
  const b = (bytes & 0xff) << 24;
  v[3] ^= b;
  sipRound();
  sipRound();
  v[0] ^= b;
  v[2] ^= 0xff;
  sipRound();
  sipRound();
  sipRound();
  sipRound();
  return (v[1] ^ v[3]) >>> 0;
}

/**
 * HalfSipHash-2-4 with 32-bit output of `n` little-endian 32-bit words
 * (4n bytes of message) under the 64-bit key (k0, k1). Same results as the
 * reference implementation on byte strings whose length is a multiple of 4.
 * No allocation; does not sleep.
 */
export function halfSipHash(k0: number, k1: number, words: ArrayLike<number>, n = words.length): number {
  sipBegin(k0, k1);
  for (let i = 0; i < n; i++) sipWord(words[i] | 0);
  return sipEnd(n * 4);
}

/** halfSipHash of three words without an array (the packet path's form). */
export function halfSipHash3(k0: number, k1: number, a: number, b: number, c: number): number {
  sipBegin(k0, k1);
  sipWord(a | 0);
  sipWord(b | 0);
  sipWord(c | 0);
  return sipEnd(12);
}

// ------------------------------------------------------------ per-boot secret

/** The 128-bit per-boot secret of an arena: k[0], k[1] key ports and IDs, k[2], k[3] key ISNs. */
export interface BootSecret {
  readonly k: Int32Array;
}

const secrets = new WeakMap<SharedArrayBuffer, BootSecret>();

/**
 * The per-boot secret of `arena`: made from crypto random bytes by the first
 * thread that asks (each word is an arena tunable created once with its
 * random initial value, so racing threads agree), read by every other.
 * Cached per thread. Takes the tunable table lock the first time (cold).
 */
export function bootSecret(arena: Arena): BootSecret {
  let s = secrets.get(arena.sab);
  if (s !== undefined) return s;
  const fresh = new Int32Array(4);
  randomFillSync(fresh);
  const k = new Int32Array(4);
  for (let i = 0; i < 4; i++) k[i] = Atomics.load(arena.i32, tunableIndex(arena, `kern.prng.boot_secret${i}`, fresh[i]));
  s = { k };
  secrets.set(arena.sab, s);
  return s;
}

/**
 * A 32-bit seed derived from the secret for `salt` (a per-layer, per-CPU
 * number): different on every run, the same in every thread for the same
 * salt. Cold (bootSecret) on first use per thread.
 */
export function bootSeed(arena: Arena, salt: number): number {
  const k = bootSecret(arena).k;
  return halfSipHash3(k[0], k[1], 0x5eed5eed, salt, 0);
}

/**
 * RFC 6056 algorithm 3, F(laddr, faddr, fport, secret): the offset into the
 * ephemeral range where the search for a free local port toward
 * (faddr, fport) starts; the caller adds its per-table counter. No lock.
 */
export function ephemeralPortOffset(secret: BootSecret, laddr: number, faddr: number, fport: number): number {
  return halfSipHash3(secret.k[0], secret.k[1], laddr, faddr, fport & 0xffff);
}

/**
 * RFC 6528: F(localip, localport, remoteip, remoteport, secretkey), the
 * per-connection offset of an initial sequence number (ISN = M + F, M the
 * 4 µs clock). Keyed with the secret's second half. No lock.
 */
export function isnOffset(secret: BootSecret, laddr: number, lport: number, faddr: number, fport: number): number {
  return halfSipHash3(secret.k[2], secret.k[3], laddr, faddr, ((lport & 0xffff) << 16) | (fport & 0xffff));
}

let idArena: SharedArrayBuffer | null = null;
let idRng: Prng | null = null;

/**
 * A randomized IPv4 identification (RFC 6864 section 4.1, FreeBSD's
 * ip_random_id): 16 bits from this thread's (this CPU's) generator, seeded
 * from the boot secret and the CPU id, so IDs are unpredictable and differ
 * from run to run. One compare and one step of the generator per call.
 */
export function ipRandomId(arena: Arena): number {
  if (idArena !== arena.sab || idRng === null) {
    idRng = new Prng(bootSeed(arena, 0x1d000000 + arena.cpu));
    idArena = arena.sab;
  }
  return idRng.u32() & 0xffff;
}
