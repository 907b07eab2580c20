/**
 * Step words shared by a test and its worker: the test raises word 0 to
 * step n (signalStep, test side), the worker waits for it (waitStep).
 */
import type { Worker } from 'node:worker_threads';

/** Worker side: block until control word 0 reaches `step`. */
export function waitStep(ctl: Int32Array, step: number): void {
  for (let v = Atomics.load(ctl, 0); v < step; v = Atomics.load(ctl, 0)) Atomics.wait(ctl, 0, v, 100);
}

/** Test side: raise control word 0 to `step` and wake the worker. */
export function signalStep(ctl: Int32Array, step: number): void {
  Atomics.store(ctl, 0, step);
  Atomics.notify(ctl, 0);
}

/** Test side: the worker's next message (its error rejects). */
export function nextMessage(w: Worker): Promise<Record<string, number>> {
  return new Promise((res, rej) => {
    w.once('message', res);
    w.once('error', rej);
  });
}
