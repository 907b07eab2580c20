/**
 * Message ports in the arena (lwkt_port): a bounded multi-producer,
 * single-consumer ring of message handles per CPU, plus an unbounded reply
 * list. No lock anywhere; every shared word is touched with Atomics.
 *
 * The ring is Vyukov's bounded queue with a sequence number per cell: a
 * sender claims position `t` with a CAS on P_TAIL when cell t's sequence
 * equals t, writes the handle, then publishes by storing t + 1 in the cell's
 * sequence. The owner (only it) takes position `h` when the cell's sequence
 * is h + 1 and frees the cell for the next lap by storing h + cap. A sender
 * that finds the cell of the previous lap still occupied sees a full ring:
 * that is the backpressure (NOWAIT fails, WAITOK sleeps on P_SPACE_SEQ).
 * Per sender, order is preserved because one sender's claims are increasing.
 *
 * Replies must never fail or block (a CPU answering another CPU would
 * deadlock on a full ring), so they go to a Treiber stack (P_RHEAD) that the
 * owner takes whole; replies are bounded by the messages in existence.
 *
 * Wake-up protocol (Dekker with seq-cst Atomics): the owner stores
 * P_SLEEPING = 1, re-checks both queues, then waits on P_WAKE; a sender
 * publishes first and then takes P_SLEEPING from 1 to 0 (a CAS), bumping
 * and notifying P_WAKE only when it did. So a wake costs a system call only
 * when the owner really sleeps, and once per sleep however many senders
 * find it asleep.
 */
import {
  MSG_NEXT,
  P_CAP,
  P_CELLS,
  P_CPU,
  P_FULL,
  P_HEAD,
  P_MAGIC,
  P_MASK,
  P_RHEAD,
  P_SLEEPING,
  P_SPACE_SEQ,
  P_SPACE_WAITERS,
  P_TAIL,
  P_WAKE,
  PORT_MAGIC,
} from './layout.js';

/**
 * Lay out a fresh port of `cap` cells (a power of two) owned by `cpu`.
 * Called once by the machine before any thread uses the port; no locking.
 */
export function portFormat(i32: Int32Array, port: number, cpu: number, cap: number): void {
  const p = port >> 2;
  i32.fill(0, p, p + P_CELLS + cap * 2);
  i32[p + P_CPU] = cpu;
  i32[p + P_CAP] = cap;
  i32[p + P_MASK] = cap - 1;
  for (let i = 0; i < cap; i++) i32[p + P_CELLS + i * 2] = i;
  Atomics.store(i32, p + P_MAGIC, PORT_MAGIC);
}

/**
 * Enqueue `msg` on `port` (any thread). Returns false when the ring is full.
 * Lock-free; never sleeps. Wakes the owner only if it sleeps.
 */
export function portPut(i32: Int32Array, port: number, msg: number): boolean {
  const p = port >> 2;
  const mask = i32[p + P_MASK];
  let pos = Atomics.load(i32, p + P_TAIL);
  for (;;) {
    const cell = p + P_CELLS + (pos & mask) * 2;
    const seq = Atomics.load(i32, cell);
    const dif = (seq - pos) | 0;
    if (dif === 0) {
      const seen = Atomics.compareExchange(i32, p + P_TAIL, pos, (pos + 1) | 0);
      if (seen === pos) {
        // A plain store: the seq-cst store of the sequence below publishes it
        // (the owner reads the handle only after loading that sequence).
        i32[cell + 1] = msg;
        Atomics.store(i32, cell, (pos + 1) | 0);
        break;
      }
      pos = seen;
    } else if (dif < 0) {
      i32[p + P_FULL]++;
      return false;
    } else {
      pos = Atomics.load(i32, p + P_TAIL);
    }
  }
  wakeIfSleeping(i32, port);
  return true;
}

/**
 * Dequeue the next message (owner only), or 0 when the ring is empty.
 * Lock-free; never sleeps. Senders waiting for room are woken in batches by
 * portSpaceWake(), which the owner calls after a run of takes.
 */
export function portGet(i32: Int32Array, port: number): number {
  const p = port >> 2;
  const pos = i32[p + P_HEAD];
  const cell = p + P_CELLS + (pos & i32[p + P_MASK]) * 2;
  if (Atomics.load(i32, cell) !== ((pos + 1) | 0)) return 0;
  // Plain accesses: the handle was published by the sequence just loaded,
  // and P_HEAD is the owner's own word (portDepth reads it racily, for statistics).
  const msg = i32[cell + 1];
  Atomics.store(i32, cell, (pos + i32[p + P_CAP]) | 0);
  i32[p + P_HEAD] = (pos + 1) | 0;
  return msg;
}

/** True when the ring has a published message (owner only). */
export function portHasRequest(i32: Int32Array, port: number): boolean {
  const p = port >> 2;
  const pos = i32[p + P_HEAD];
  return Atomics.load(i32, p + P_CELLS + (pos & i32[p + P_MASK]) * 2) === ((pos + 1) | 0);
}

/** Messages in the ring (racy: for statistics and tests). */
export function portDepth(i32: Int32Array, port: number): number {
  const p = port >> 2;
  return (Atomics.load(i32, p + P_TAIL) - Atomics.load(i32, p + P_HEAD)) | 0;
}

/** Push a replied message on the port's reply list (any thread). Never fails. */
export function portPutReply(i32: Int32Array, port: number, msg: number): void {
  const p = port >> 2;
  const m = msg >> 2;
  let head = Atomics.load(i32, p + P_RHEAD);
  for (;;) {
    Atomics.store(i32, m + MSG_NEXT, head);
    const seen = Atomics.compareExchange(i32, p + P_RHEAD, head, msg);
    if (seen === head) break;
    head = seen;
  }
  wakeIfSleeping(i32, port);
}

/**
 * After publishing: wake the owner if it announced a sleep. The sender that
 * takes P_SLEEPING from 1 to 0 is the only one to pay the system call; the
 * others of the same sleep see 0 (the owner is being woken, and will see
 * their messages in the pass it runs next).
 */
function wakeIfSleeping(i32: Int32Array, port: number): void {
  const p = port >> 2;
  if (Atomics.load(i32, p + P_SLEEPING) !== 0 && Atomics.compareExchange(i32, p + P_SLEEPING, 1, 0) === 1) portWake(i32, port);
}

/**
 * Take every queued reply at once (owner only); returns the first message of
 * a list linked by MSG_NEXT in arrival order, or 0.
 */
export function portTakeReplies(i32: Int32Array, port: number): number {
  const p = port >> 2;
  if (Atomics.load(i32, p + P_RHEAD) === 0) return 0;
  let lifo = Atomics.exchange(i32, p + P_RHEAD, 0);
  let fifo = 0;
  while (lifo !== 0) {
    const next = i32[(lifo >> 2) + MSG_NEXT];
    i32[(lifo >> 2) + MSG_NEXT] = fifo;
    fifo = lifo;
    lifo = next;
  }
  return fifo;
}

/** True when either queue holds something (owner, before sleeping). */
export function portHasWork(i32: Int32Array, port: number): boolean {
  return portHasRequest(i32, port) || Atomics.load(i32, (port >> 2) + P_RHEAD) !== 0;
}

/** Wake the owner of a port unconditionally (stop requests, shutdown). */
export function portWake(i32: Int32Array, port: number): void {
  const p = port >> 2;
  Atomics.add(i32, p + P_WAKE, 1);
  Atomics.notify(i32, p + P_WAKE);
}

/** Wake senders sleeping for room, if any (owner, after taking messages). */
export function portSpaceWake(i32: Int32Array, port: number): void {
  const p = port >> 2;
  if (Atomics.load(i32, p + P_SPACE_WAITERS) === 0) return;
  Atomics.add(i32, p + P_SPACE_SEQ, 1);
  Atomics.notify(i32, p + P_SPACE_SEQ);
}

/**
 * WAITOK enqueue for workers: retry, sleeping on P_SPACE_SEQ while full.
 * `alive()` is asked between sleeps so that a stopping machine fails the
 * send instead of hanging. May sleep (blocking Atomics.wait): workers only.
 */
export function portPutWait(i32: Int32Array, port: number, msg: number, alive: () => boolean): boolean {
  const p = port >> 2;
  for (;;) {
    if (portPut(i32, port, msg)) return true;
    if (!alive()) return false;
    Atomics.add(i32, p + P_SPACE_WAITERS, 1);
    const seq = Atomics.load(i32, p + P_SPACE_SEQ);
    if (portPut(i32, port, msg)) {
      Atomics.sub(i32, p + P_SPACE_WAITERS, 1);
      return true;
    }
    Atomics.wait(i32, p + P_SPACE_SEQ, seq, 10);
    Atomics.sub(i32, p + P_SPACE_WAITERS, 1);
    // Before the next put: the machine may have stopped (and freed the port) while we slept.
    if (!alive()) return false;
  }
}

/** The same for the main thread: sleeps with Atomics.waitAsync, never blocking. */
export async function portPutWaitAsync(i32: Int32Array, port: number, msg: number, alive: () => boolean): Promise<boolean> {
  const p = port >> 2;
  for (;;) {
    if (portPut(i32, port, msg)) return true;
    if (!alive()) return false;
    Atomics.add(i32, p + P_SPACE_WAITERS, 1);
    const seq = Atomics.load(i32, p + P_SPACE_SEQ);
    if (portPut(i32, port, msg)) {
      Atomics.sub(i32, p + P_SPACE_WAITERS, 1);
      return true;
    }
    const r = Atomics.waitAsync(i32, p + P_SPACE_SEQ, seq, 10);
    if (r.async) await r.value;
    Atomics.sub(i32, p + P_SPACE_WAITERS, 1);
    // Before the next put: the machine may have stopped (and freed the port) while we slept.
    if (!alive()) return false;
  }
}
