/**
 * A small seeded random source (mulberry32) for impairment models and
 * ephemeral ports, so a failing run can be replayed from its seed.
 * One per owner; no lock.
 */
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
