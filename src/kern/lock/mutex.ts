/**
 * A futex-style mutex living in one Int32 word of the arena, after Drepper's
 * "Futexes Are Tricky" (mutex3): 0 = unlocked, 1 = locked, 2 = locked and
 * someone may sleep. Unlock notifies only from state 2, so an uncontended
 * lock/unlock pair is two atomic operations and no system call.
 *
 * Works on workers and on the main thread (Node allows Atomics.wait there; the
 * critical sections guarded by these locks are short and never sleep).
 * Each lock belongs to a named class that witness watches in debug mode.
 */
import { witness } from './witness.js';

const UNLOCKED = 0;
const LOCKED = 1;
const CONTENDED = 2;
const SPINS = 64;

export class Mutex {
  readonly i32: Int32Array;
  readonly index: number;
  readonly className: string;
  /** Times lock() found the word taken: UMA grows bucket sizes on contention. */
  contended = 0;

  constructor(i32: Int32Array, index: number, className: string) {
    this.i32 = i32;
    this.index = index;
    this.className = className;
  }

  /** Acquire; may sleep on the futex word (never from a WAITOK allocation's sleep path). */
  lock(): void {
    if (witness.enabled) witness.beforeLock(this);
    const i32 = this.i32;
    const idx = this.index;
    let c = Atomics.compareExchange(i32, idx, UNLOCKED, LOCKED);
    if (c !== UNLOCKED) {
      this.contended++;
      for (let spin = 0; spin < SPINS && c !== UNLOCKED; spin++) {
        c = Atomics.compareExchange(i32, idx, UNLOCKED, LOCKED);
      }
      if (c !== UNLOCKED) {
        if (c !== CONTENDED) c = Atomics.exchange(i32, idx, CONTENDED);
        while (c !== UNLOCKED) {
          Atomics.wait(i32, idx, CONTENDED);
          c = Atomics.exchange(i32, idx, CONTENDED);
        }
      }
    }
    if (witness.enabled) witness.afterLock(this);
  }

  /** Try to acquire without waiting; true on success. */
  tryLock(): boolean {
    if (Atomics.compareExchange(this.i32, this.index, UNLOCKED, LOCKED) !== UNLOCKED) return false;
    if (witness.enabled) {
      witness.beforeLock(this, true);
      witness.afterLock(this);
    }
    return true;
  }

  /** Release; wakes one sleeper only if the word says someone may sleep. */
  unlock(): void {
    if (witness.enabled) witness.unlocked(this);
    if (Atomics.sub(this.i32, this.index, 1) !== LOCKED) {
      Atomics.store(this.i32, this.index, UNLOCKED);
      Atomics.notify(this.i32, this.index, 1);
    }
  }

  /** True while any thread holds it (for assertions; racy by nature). */
  isLocked(): boolean {
    return Atomics.load(this.i32, this.index) !== UNLOCKED;
  }
}
