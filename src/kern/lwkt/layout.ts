/**
 * Arena layouts of the MP core: messages (lwkt_msg), ports (lwkt_port) and
 * the machine record. Every field is an Int32 index relative to the record's
 * handle >> 2; docs/mp.md describes each one.
 */

// ---------------------------------------------------------------- messages

/** Bytes of one message (zone "lwkt msg"). */
export const MSG_BYTES = 256;
/** MSGF_* bits; the word is also the futex a synchronous waiter sleeps on. */
export const MSG_FLAGS = 0;
/** Command number (handlers are registered per command). */
export const MSG_CMD = 1;
/** errno of the reply (0 = success), written by replymsg. */
export const MSG_ERROR = 2;
/** Port handle replies are queued to (0: none; a sync waiter needs none). */
export const MSG_REPLYPORT = 3;
/** Link word of the reply list (Treiber stack) of a port. */
export const MSG_NEXT = 4;
/** Machine CPU of the sender (-1 for a user thread). */
export const MSG_SRC = 5;
/** Free for the sender: matches replies to requests. */
export const MSG_COOKIE = 6;
/** Valid bytes in the payload. */
export const MSG_PAYLOAD_LEN = 7;
/** Sequence number (debug and ordering tests). */
export const MSG_SEQ = 8;
/** Command whose reply handler runs when the reply reaches a CPU reply port. */
export const MSG_RCMD = 9;
/** First of MSG_NARGS Int32 arguments (requests) and results (replies). */
export const MSG_ARG0 = 16;
export const MSG_NARGS = 16;
/** Byte offset of the inline payload (socket option values, addresses). */
export const MSG_PAYLOAD = 128;
export const MSG_PAYLOAD_MAX = MSG_BYTES - MSG_PAYLOAD;

/** The reply has been written (set by replymsg, last). */
export const MSGF_DONE = 0x1;
/** A synchronous waiter (domsg) sleeps on the flags word: notify it. */
export const MSGF_SYNC = 0x2;
/** Free the message at reply time: nobody wants the answer. */
export const MSGF_DROP = 0x4;
/** The message sits in a port queue (debug: catches double sends). */
export const MSGF_QUEUED = 0x8;
/** The message was answered and queued to a reply port. */
export const MSGF_REPLY = 0x10;
/**
 * The synchronous waiter is (about to be) asleep in Atomics.wait on the
 * flags word: replymsg notifies only then, so a waiter that caught the
 * reply while spinning costs the replier no futex call.
 */
export const MSGF_WAITING = 0x20;
/**
 * Answered without its handler running (ESHUTDOWN at stop or from a dead
 * CPU's port): what the message carries (its cargo, see MC_CARGO) was never
 * taken over by a handler. A drain frees the cargo of a message nobody will
 * see (MSGF_DROP, or a reply nobody consumes); a synchronous waiter or a
 * reply handler seeing the flag owns the cargo again.
 */
export const MSGF_UNDELIVERED = 0x40;

/**
 * Commands from 0xff00 up are the MP core's own. CMD_SETTLE: answered when
 * the CPU is idle at the current time, with its activity count (arg 0) and
 * the Float64 due time of its next callout in the payload (Machine.advance).
 */
export const CMD_SETTLE = 0xff01;

// ---------------------------------------------------------------- ports

/** Magic of a live port record. */
export const PORT_MAGIC = 0x504f5254; // "PORT"
export const P_MAGIC = 0;
/** Owning machine CPU. */
export const P_CPU = 1;
/** Ring capacity (a power of two) and mask. */
export const P_CAP = 2;
export const P_MASK = 3;
/** Counters (racy, for statistics): requests refused because the ring was full. */
export const P_FULL = 4;
/** Producer position: CAS by every sender (its own 64-byte line). */
export const P_TAIL = 16;
/** Consumer position: written by the owner only. */
export const P_HEAD = 32;
/**
 * Load counters the owner publishes (in its own P_HEAD line) once per loop
 * run, for readers in any thread (slabnet top, the control socket): three
 * Float64 slots from word P_STAT (8-byte aligned since ports are 16-byte
 * aligned): messages handled, microseconds spent in passes that did work,
 * idle sleeps. Racy reads, for statistics.
 */
export const P_STAT = 34;
export const P_STAT_HANDLED = 0;
export const P_STAT_BUSY_US = 1;
export const P_STAT_SLEEPS = 2;
/** Futex word the owner sleeps on; bumped by a sender that saw P_SLEEPING. */
export const P_WAKE = 48;
/** 1 while the owner is (about to be) asleep. */
export const P_SLEEPING = 49;
/** Senders waiting for room (WAITOK backpressure) sleep on P_SPACE_SEQ. */
export const P_SPACE_SEQ = 50;
export const P_SPACE_WAITERS = 51;
/** Head of the reply list (a Treiber stack of messages linked by MSG_NEXT). */
export const P_RHEAD = 52;
/** First ring cell: two words per cell, (sequence, message handle). */
export const P_CELLS = 64;
export const PORT_HEADER_BYTES = P_CELLS * 4;

/** Bytes of a port record of `cap` cells. */
export function portBytes(cap: number): number {
  return PORT_HEADER_BYTES + cap * 8;
}

// ---------------------------------------------------------------- machine

/** The machine record (zone "mp machine"): state shared by every thread. */
export const MACHINE_BYTES = 4096;
export const MC_STATE = 0;
/** Generation tag: MACHINE_MAGIC ^ a per-machine number, zeroed when freed. */
export const MC_MAGIC = 4;
export const MACHINE_MAGIC = 0x4d414348; // "MACH"
export const MC_NCPUS = 1;
/** CPUs that finished their shutdown hooks (the stop barrier). */
export const MC_QUIESCED = 2;
/** CPUs that registered and ran their handler modules (the start barrier). */
export const MC_STARTED = 3;
/** Clock of every CPU: MCLOCK_REAL (performance.now) or MCLOCK_MANUAL (MC_CLOCK_*, moved by Machine.advance). */
export const MC_CLOCK_MODE = 5;
export const MCLOCK_REAL = 0;
export const MCLOCK_MANUAL = 1;
/** Debug flag of the machine (the arena's): a handler that throws stops its CPU instead of being counted. */
export const MC_DEBUG = 6;
/** The RSS key every thread of the machine hashes flows with: its index in net/rss.ts's RSS_KEY_NAMES. */
export const MC_RSS_KEY = 7;
/** Port handles, one per CPU, from MC_PORTS on. */
export const MC_PORTS = 16;
export const MC_MAX_CPUS = 200;
/**
 * Manual clock: a seqlock word (odd while the main thread writes) and the
 * Float64 milliseconds at byte offset MC_CLOCK_F64 * 4 (8-byte aligned:
 * records are 16-byte aligned).
 */
export const MC_CLOCK_SEQ = 224;
export const MC_CLOCK_F64 = 226;
/**
 * The cargo table: what a command's message carries that must be freed when
 * it is dropped undelivered. Open addressing on the command, one word per
 * slot: (cmd << 16) | mask, mask bit i = argument i holds an mbuf chain.
 * Written (CAS) by every CPU when it registers the command, read by any
 * thread that drains a port (the main thread for a dead CPU's).
 */
export const MC_CARGO = 256;
export const MC_CARGO_SLOTS = 512;
/** Per-CPU count of handlers (and callouts, poll hooks) that threw and were survived. */
export const MC_HERRORS = MC_CARGO + MC_CARGO_SLOTS;

export const MSTATE_RUNNING = 1;
export const MSTATE_STOPPING = 2;
export const MSTATE_DRAINED = 3;

export const MSG_ZONE = 'lwkt msg';
export const PORT_ZONE = 'lwkt port';
export const MACHINE_ZONE = 'mp machine';
