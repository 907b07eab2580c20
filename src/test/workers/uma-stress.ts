/**
 * Worker of the multi-worker UMA stress test: a CPU running a seeded random
 * mix of allocations, local frees, hand-offs to the next worker through a
 * single-producer/single-consumer ring in a SharedArrayBuffer, frees of what
 * the previous worker handed over, drain requests, polls and trims.
 *
 * Every live item carries a token (worker id and sequence) in its second word;
 * whoever frees it checks the token, so an item handed to two owners at once
 * is caught. Double frees are caught by the core (debug mode).
 *
 * Ring r (consumer: worker r, producer: worker r-1): Int32 words at r*RING_STRIDE:
 *   +0 head (consumer), +16 tail (producer), +32.. RING_CAP entries of (item|zone, token).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { witness } from '../../kern/lock/witness.js';
import { M_NOWAIT, M_ZERO } from '../../uma/flags.js';
import type { Zone, ZoneCallbacks } from '../../uma/zone.js';

export const RING_CAP = 512;
export const RING_STRIDE = 32 + RING_CAP * 2;
/** ctl words: DONE + id is set when worker id has stopped producing. */
export const CTL_DONE = 0;
export const CTL_WORDS = 16;

/** The stress zones and their callbacks; main and workers build the same ones. */
export const STRESS_ZONES = ['st.small', 'st.ctor', 'st.big', 'st.sec'] as const;
const CTOR_MAGIC = 0x600d;
const SEC_MAGIC = 0x5ec;

export function stressCallbacks(i32: Int32Array): Record<string, ZoneCallbacks> {
  return {
    'st.ctor': {
      ctor: (item, arg) => {
        i32[(item >> 2) + 2] = CTOR_MAGIC + arg;
        return true;
      },
      dtor: (item, arg) => {
        if (i32[(item >> 2) + 2] !== CTOR_MAGIC + arg) throw new Error(`st.ctor: dtor found 0x${i32[(item >> 2) + 2].toString(16)} in 0x${item.toString(16)}`);
      },
    },
    'st.sec': {
      init: (item) => {
        i32[(item >> 2) + 3] = SEC_MAGIC;
        return true;
      },
      fini: (item) => {
        if (i32[(item >> 2) + 3] !== SEC_MAGIC) throw new Error(`st.sec: fini found a clobbered init word in 0x${item.toString(16)}`);
      },
    },
  };
}

interface StressData {
  sab: SharedArrayBuffer;
  rings: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  id: number;
  nworkers: number;
  ops: number;
  seed: number;
}

const LOCAL_MAX = 256;

function run(d: StressData): Record<string, number> {
  const arena = Arena.attach(d.sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  uma.logger = () => {};
  const i32 = arena.i32;
  const cbs = stressCallbacks(i32);
  const zones: Zone[] = STRESS_ZONES.map((n) => uma.zone(n, cbs[n]));
  const rings = new Int32Array(d.rings);
  const ctl = new Int32Array(d.ctl);
  const me = d.id * RING_STRIDE;
  const next = ((d.id + 1) % d.nworkers) * RING_STRIDE;
  const prev = (d.id + d.nworkers - 1) % d.nworkers;
  let s = d.seed >>> 0 || 1;
  const rand = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
  const localItem = new Int32Array(LOCAL_MAX); // item | zone index
  const localTok = new Int32Array(LOCAL_MAX);
  let nlocal = 0;
  let seq = 0;
  const st = { allocs: 0, fails: 0, frees: 0, sent: 0, received: 0, drains: 0, trims: 0 };

  const freeEncoded = (enc: number, tok: number): void => {
    const item = enc & ~15;
    if (i32[(item >> 2) + 1] !== tok) {
      throw new Error(`worker ${d.id}: item 0x${item.toString(16)} token 0x${i32[(item >> 2) + 1].toString(16)}, expected 0x${tok.toString(16)}: two owners`);
    }
    const zi = enc & 15;
    zones[zi].free(item, zi === 1 ? tok & 0xff : 0);
    st.frees++;
  };
  const receive = (max: number): number => {
    let head = Atomics.load(rings, me);
    const tail = Atomics.load(rings, me + 16);
    let n = 0;
    while (head !== tail && n < max) {
      const e = me + 32 + (head & (RING_CAP - 1)) * 2;
      freeEncoded(rings[e], rings[e + 1]);
      head++;
      n++;
    }
    Atomics.store(rings, me, head);
    st.received += n;
    return n;
  };
  const dropLocal = (k: number): void => {
    freeEncoded(localItem[k], localTok[k]);
    nlocal--;
    localItem[k] = localItem[nlocal];
    localTok[k] = localTok[nlocal];
  };

  for (let op = 0; op < d.ops; op++) {
    const r = rand() % 100;
    if (r < 40) {
      if (nlocal === LOCAL_MAX) {
        dropLocal(rand() % nlocal);
        continue;
      }
      const zi = rand() & 3;
      const tok = (d.id << 24) | (++seq & 0xffffff);
      // (No M_ZERO on the secondary zone: it would wipe the state its init set up.)
      const item = zones[zi].alloc(M_NOWAIT | (r < 4 && zi !== 3 ? M_ZERO : 0), zi === 1 ? tok & 0xff : 0);
      if (item === 0) {
        st.fails++;
        continue;
      }
      i32[(item >> 2) + 1] = tok;
      localItem[nlocal] = item | zi;
      localTok[nlocal++] = tok;
      st.allocs++;
    } else if (r < 65) {
      if (nlocal > 0) dropLocal(rand() % nlocal);
    } else if (r < 88) {
      if (nlocal === 0) continue;
      const tail = Atomics.load(rings, next + 16);
      if (tail - Atomics.load(rings, next) >= RING_CAP) {
        dropLocal(rand() % nlocal);
        continue;
      }
      const k = rand() % nlocal;
      const e = next + 32 + (tail & (RING_CAP - 1)) * 2;
      rings[e] = localItem[k];
      rings[e + 1] = localTok[k];
      Atomics.store(rings, next + 16, tail + 1);
      nlocal--;
      localItem[k] = localItem[nlocal];
      localTok[k] = localTok[nlocal];
      st.sent++;
    } else if (r < 99) {
      receive(8);
    } else {
      const x = rand() % 16;
      const z = zones[rand() & 3];
      if (x < 10) uma.poll();
      else if (x < 14) {
        z.requestCpuDrain(rand() % d.nworkers);
        st.drains++;
      } else {
        z.trim();
        st.trims++;
      }
    }
  }
  while (nlocal > 0) dropLocal(nlocal - 1);
  Atomics.store(ctl, CTL_DONE + d.id, 1);
  // The previous worker's pushes precede its DONE store: one more pass after seeing DONE gets them all.
  for (;;) {
    const doneBefore = Atomics.load(ctl, CTL_DONE + prev) === 1;
    if (receive(RING_CAP) === 0 && doneBefore) break;
    if (!doneBefore) Atomics.wait(ctl, CTL_DONE + prev, 0, 1);
  }
  uma.flushCpuCaches();
  return { ...st, witnessReports: witness.reports.length };
}

if (parentPort !== null && workerData !== null && (workerData as StressData).rings !== undefined) {
  parentPort.postMessage(run(workerData as StressData));
}
