/**
 * The MP core's tunables as sysctl nodes (kern.mp.*). The values are arena
 * tunables (src/kern/sysctl/tunables.ts): one shared Int32 word each, read live
 * by every thread with Atomics.load, so a write through any thread's tree
 * applies to every CPU and user worker at once.
 *
 *   kern.mp.spin_us        how long a waiter (a CPU before sleeping, a
 *                          worker in domsg before Atomics.wait) spins
 *   kern.mp.idle_block_us  how long an idle CPU without poll hooks blocks in
 *                          Atomics.wait before arming Atomics.waitAsync
 */
import type { Arena } from '../../vm/arena.js';
import { registerTunable } from '../sysctl/tunables.js';
import type { Sysctl } from '../sysctl/sysctl.js';
import { SPIN_US_DEFAULT } from './msgport.js';
import { IDLE_BLOCK_US_DEFAULT } from './protothread.js';

/** Upper bounds: a waiter never spins longer than 100 ms or blocks longer than 1 s. */
export const SPIN_US_MAX = 100_000;
export const IDLE_BLOCK_US_MAX = 1_000_000;

/**
 * Register kern.mp.* on `sysctl` (once per tree; a second call is a no-op).
 * Takes the tunable table lock (cold); does not sleep.
 */
export function registerMpSysctls(sysctl: Sysctl, arena: Arena): void {
  if (!sysctl.has('kern.mp.spin_us')) {
    registerTunable(sysctl, arena, { name: 'kern.mp.spin_us', description: 'Microseconds a waiter spins before it sleeps', initial: SPIN_US_DEFAULT, min: 0, max: SPIN_US_MAX });
  }
  if (!sysctl.has('kern.mp.idle_block_us')) {
    registerTunable(sysctl, arena, {
      name: 'kern.mp.idle_block_us',
      description: 'Microseconds an idle CPU without poll hooks blocks in Atomics.wait before waiting asynchronously (0: never block)',
      initial: IDLE_BLOCK_US_DEFAULT,
      min: 0,
      max: IDLE_BLOCK_US_MAX,
    });
  }
}
