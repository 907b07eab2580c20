/**
 * The shared part of a socket (zone "socket"): what both the user and the
 * owning CPU need to find. The socket object itself (socket.ts) lives with
 * its user; the PCB is a JS object in the owning CPU's thread.
 */
export const SO_ZONE = 'socket';
export const SO_BYTES = 64;
export const SO_MAGIC = 0;
/** CPU that owns the PCB. */
export const SO_CPU = 1;
/** PCB id in that CPU's table. */
export const SO_PCB = 2;
/** Receive sockbuf: producer the owning CPU, consumer the user. */
export const SO_RCV = 3;
export const SO_PROTO = 4;
export const SOCKET_MAGIC = 0x534f434b; // "SOCK"
