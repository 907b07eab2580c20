/**
 * A single-producer single-consumer ring of int32 values (mbuf handles) in a
 * SharedArrayBuffer, for the mbuf handoff benchmark. Each side keeps its index
 * in a local and publishes it in batches; a side that finds nothing to do
 * polls a while, then sleeps on the other side's index word after raising its
 * "sleeping" flag, and the other side calls Atomics.notify only when that flag
 * is up (a notify is a trip through V8's futex table even with no waiter).
 * No lost wake-up: the sleeper raises its flag, then looks again before it
 * waits; the waker publishes, then reads the flag (all sequentially
 * consistent), so one of them sees the other. Waits also time out.
 *
 * Layout (Int32Array): [0] head, [1] tail, [2] consumer sleeping, [3]
 * producer sleeping, [4..] slots.
 */
const HEAD = 0;
const TAIL = 1;
const C_SLEEP = 2;
const P_SLEEP = 3;
const SLOT0 = 4;
/** Polls of the other side's index before sleeping. */
const SPIN = 256;
/** Publish the producer's head every this many values (a power of 2). */
const BATCH = 256;

export class SpscRing {
  readonly a: Int32Array;
  readonly slots: number;
  /** The producer's head, or the consumer's tail (whichever side this object is). */
  private pos = 0;
  /** The consumer: head as last read. The producer: tail as last read. */
  private seen = 0;

  constructor(sab: SharedArrayBuffer) {
    this.a = new Int32Array(sab);
    this.slots = this.a.length - SLOT0;
  }

  static bytes(slots: number): number {
    return (SLOT0 + slots) * 4;
  }

  // ---- producer side ----

  /** Append v, waiting for room; published every BATCH values (or by flush). */
  push(v: number): void {
    const a = this.a;
    if (this.pos - this.seen >= this.slots) {
      this.seen = Atomics.load(a, TAIL);
      for (let spin = 0; this.pos - this.seen >= this.slots; spin++) {
        if (spin >= SPIN) this.sleep(P_SLEEP, TAIL, this.seen);
        this.seen = Atomics.load(a, TAIL);
      }
    }
    a[SLOT0 + (this.pos % this.slots)] = v;
    this.pos++;
    if ((this.pos & (BATCH - 1)) === 0) this.flush();
  }

  /** Publish everything pushed so far and wake a sleeping consumer. */
  flush(): void {
    Atomics.store(this.a, HEAD, this.pos);
    if (Atomics.load(this.a, C_SLEEP) !== 0) Atomics.notify(this.a, HEAD);
  }

  // ---- consumer side ----

  /** How many values can be popped now (polls, then sleeps while there are none). */
  waitData(): number {
    const a = this.a;
    let n = this.seen - this.pos;
    if (n > 0) return n;
    for (let spin = 0; ; spin++) {
      this.seen = Atomics.load(a, HEAD);
      n = this.seen - this.pos;
      if (n > 0) return n;
      if (spin >= SPIN) this.sleep(C_SLEEP, HEAD, this.seen);
    }
  }

  /** Values available without waiting (0 when none were published). */
  poll(): number {
    this.seen = Atomics.load(this.a, HEAD);
    return this.seen - this.pos;
  }

  /** The next value; only after waitData/poll said there is one. */
  pop(): number {
    return this.a[SLOT0 + (this.pos++ % this.slots)];
  }

  /** Give the popped slots back to the producer and wake it if it sleeps. */
  release(): void {
    Atomics.store(this.a, TAIL, this.pos);
    if (Atomics.load(this.a, P_SLEEP) !== 0) Atomics.notify(this.a, TAIL);
  }

  /** Raise our flag, look again, sleep on `word` while it still reads `v`. */
  private sleep(flag: number, word: number, v: number): void {
    const a = this.a;
    Atomics.store(a, flag, 1);
    if (Atomics.load(a, word) === v) Atomics.wait(a, word, v, 20);
    Atomics.store(a, flag, 0);
  }
}
