/**
 * The socket layer's tunables as sysctl nodes (kern.ipc.*), arena-backed so
 * that every thread's SockBufs sees a change at its next sbreserve.
 *
 *   kern.ipc.maxsockbuf   ceiling of sbreserve (FreeBSD's sb_max)
 */
import type { Arena } from '../../vm/arena.js';
import { registerTunable } from '../sysctl/tunables.js';
import type { Sysctl } from '../sysctl/sysctl.js';
import { MAXSOCKBUF_DEFAULT, MAXSOCKBUF_MAX, MAXSOCKBUF_MIN } from './sockbuf.js';

/**
 * Register kern.ipc.maxsockbuf on `sysctl` (a second call is a no-op).
 * Takes the tunable table lock (cold); does not sleep.
 */
export function registerSocketSysctls(sysctl: Sysctl, arena: Arena): void {
  if (sysctl.has('kern.ipc.maxsockbuf')) return;
  registerTunable(sysctl, arena, { name: 'kern.ipc.maxsockbuf', description: 'Maximum socket buffer size', initial: MAXSOCKBUF_DEFAULT, min: MAXSOCKBUF_MIN, max: MAXSOCKBUF_MAX });
}
