/** Shared words and messages between the demo (cli/demo.ts) and its worker CPUs (cli/demo-worker.ts). */

/** Int32 indices of the control buffer. */
export const C_STOP = 0; // 1: stop making new items
export const C_STOPPED = 1; // workers that have stopped producing
export const C_PROGRESS = 16; // + cpu * 16: operations done by each worker (own cache line each)
export const C_STRIDE = 16;

export const DEMO_ZONE = 'demo packet';
export const DEMO_ITEM = 256;

export interface DemoWorkerData {
  sab: SharedArrayBuffer;
  ctrl: SharedArrayBuffer;
  /** Ring this worker consumes. */
  inbox: SharedArrayBuffer;
  /** Ring of the next worker, which this worker feeds. */
  outbox: SharedArrayBuffer;
  index: number;
  nworkers: number;
}

export interface DemoWorkerReport {
  index: number;
  cpu: number;
  allocated: number;
  sent: number;
  received: number;
  freedLocal: number;
  verifyErrors: number;
  firstError: string;
}
