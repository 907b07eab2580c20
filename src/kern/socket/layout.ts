/**
 * The one socket record (zone "socket", SO_BYTES bytes, Int32 words from
 * so >> 2): struct socket's shared part, what both the user thread and the
 * CPU(s) owning the PCB(s) need. Every protocol uses it (the loop protocol,
 * UDP, TCP); the PCB itself is a JS object on its CPU, the Socket / dgram
 * object lives with its user. docs/mp.md has the table.
 *
 * Line 0 (words 0..15), identity and control: written by the user when it
 * makes the record, then by control requests; SO_OPTIONS and SO_STATE are
 * bit sets changed with Atomics.or / Atomics.and by whichever side owns the
 * change (sosetopt on the CPU, soisconnected on the CPU, shutdown by the user).
 * Line 1 (16..31), the user's wake word: SO_RWAIT announced by the user,
 * SO_RSEQ the futex the producers bump, SO_ERROR (so_error) published by a
 * CPU and taken by the user with an exchange, and the writer's pair.
 * Words 32..: the receive sockbufs, one per CPU (SO_RCV + cpu) for a socket
 * with a PCB on every CPU (unconnected UDP), else only SO_RCV + 0.
 */
export const SO_ZONE = 'socket';
export const SO_BYTES = 512;
export const SOCKET_MAGIC = 0x534f434b; // "SOCK"

export const SO_MAGIC = 0;
/** so_type: SOCK_STREAM, SOCK_DGRAM. */
export const SO_TYPE = 1;
/** Protocol number (the protosw key). */
export const SO_PROTO = 2;
/** Receive sockbufs in use: 1, or the machine's CPU count for replicated sockets. */
export const SO_NCPUS = 3;
/** Host (stack instance) the socket belongs to. */
export const SO_HOST = 4;
/** CPU that owns the PCB; -1 while every CPU has a replica. */
export const SO_CPU = 5;
/** PCB id on the owning CPU(s). */
export const SO_PCB = 6;
/** so_options (SO_REUSEADDR, SO_REUSEPORT, SO_BROADCAST, SO_ACCEPTCONN ...). */
export const SO_OPTIONS = 7;
/** so_state (SS_*). */
export const SO_STATE = 8;
/** Send sockbuf (producer the user, consumer the owning CPU), 0 when the protocol sends by message. */
export const SO_SND = 9;
/** Accept queue of a listener (soqueue.ts), 0 otherwise. */
export const SO_ACCQ = 10;
/** Listen backlog as given (so_qlimit before the kern.ipc.soacceptqueue cap). */
export const SO_BACKLOG = 11;
/** so_linger seconds (SO_LINGER with SO_OPTIONS' linger bit). */
export const SO_LINGERSECS = 12;

export const SO_RWAIT = 16;
export const SO_RSEQ = 17;
/** so_error: pending asynchronous errno (0 none), set by a CPU, read-and-cleared by the user. */
export const SO_ERROR = 18;
export const SO_WWAIT = 19;
export const SO_WSEQ = 20;

/** Receive sockbuf of ring r at SO_RCV + r. */
export const SO_RCV = 32;
export const SO_MAX_RINGS = SO_BYTES / 4 - SO_RCV;

/** so_state bits (sys/socketvar.h; the SS_CANT* pair as 4.4BSD kept them in so_state). */
export const SS_NOFDREF = 0x0001;
export const SS_ISCONNECTED = 0x0002;
export const SS_ISCONNECTING = 0x0004;
export const SS_ISDISCONNECTING = 0x0008;
export const SS_CANTSENDMORE = 0x0010;
export const SS_CANTRCVMORE = 0x0020;
export const SS_NBIO = 0x0100;
export const SS_ISCONFIRMING = 0x0400;
export const SS_ISDISCONNECTED = 0x2000;
