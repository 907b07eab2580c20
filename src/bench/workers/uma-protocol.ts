/** Messages and shared control words between bench/uma.ts and its worker CPUs. */

/** Int32 indices of the control SharedArrayBuffer. */
export const CTRL_GO = 0; // start-line generation: workers run when it equals their command's `go`
export const CTRL_STOP = 1; // set by the producer's side when it is done (consumer then drains)
export const CTRL_WORDS = 4;

/** Int32 indices of the handle ring (single producer, single consumer). */
export const RING_HEAD = 0;
export const RING_PWAIT = 1; // the producer sleeps on RING_HEAD (ring full): the consumer notifies
export const RING_TAIL = 16; // on its own cache line
export const RING_CWAIT = 17; // the consumer sleeps on RING_TAIL (ring empty): the producer notifies
export const RING_SLOTS = 32;
/**
 * A power of two, deep: on a loaded machine the two workers often do not run
 * at the same time, and each time slice moves at most one ring's worth.
 */
export const RING_CAPACITY = 1 << 15;

export interface UmaBenchCommand {
  mode: 'pairs' | 'pairs-locked' | 'produce' | 'consume';
  warmMs: number;
  ms: number;
  /** Value of CTRL_GO that starts this run. */
  go: number;
}

export interface UmaBenchReport {
  ops: number;
  seconds: number;
  cpu: number;
  sink: number;
}
