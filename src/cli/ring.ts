/**
 * A single-producer single-consumer ring of item handles in a SharedArrayBuffer,
 * used by the demo to hand items from one CPU to the next. The producer owns
 * the tail word and the consumer the head word; each publishes its word with
 * Atomics.store after touching the slots, so no lock is needed.
 */
export const RING_HEAD = 0;
export const RING_TAIL = 16; // own cache line
const RING_SLOTS = 32;

export class HandleRing {
  readonly i32: Int32Array;
  private readonly mask: number;

  /** Wrap a buffer made by HandleRing.alloc (in any thread). */
  constructor(sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.mask = this.i32.length - RING_SLOTS - 1;
  }

  /** A buffer for a ring of `capacity` handles (a power of two). */
  static alloc(capacity: number): SharedArrayBuffer {
    if (capacity <= 0 || (capacity & (capacity - 1)) !== 0) throw new RangeError('ring capacity must be a power of two');
    return new SharedArrayBuffer((RING_SLOTS + capacity) * 4);
  }

  /** Producer: append a handle; false when the ring is full. */
  push(h: number): boolean {
    const i32 = this.i32;
    const tail = i32[RING_TAIL];
    if (tail - Atomics.load(i32, RING_HEAD) > this.mask) return false;
    i32[RING_SLOTS + (tail & this.mask)] = h;
    Atomics.store(i32, RING_TAIL, tail + 1);
    return true;
  }

  /** Consumer: take the oldest handle, or 0 when empty (0 is never a handle). */
  pop(): number {
    const i32 = this.i32;
    const head = i32[RING_HEAD];
    if (head === Atomics.load(i32, RING_TAIL)) return 0;
    const h = i32[RING_SLOTS + (head & this.mask)];
    Atomics.store(i32, RING_HEAD, head + 1);
    return h;
  }

  /** Handles in the ring (approximate while both sides run). */
  get length(): number {
    return Atomics.load(this.i32, RING_TAIL) - Atomics.load(this.i32, RING_HEAD);
  }
}
