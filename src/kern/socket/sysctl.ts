/**
 * The socket layer's tunables as sysctl nodes (kern.ipc.*), arena-backed so
 * that every thread's SockBufs sees a change at its next sbreserve.
 *
 *   kern.ipc.maxsockbuf     ceiling of sbreserve (FreeBSD's sb_max)
 *   kern.ipc.soacceptqueue  cap of a listen backlog (somaxconn)
 */
import type { Arena } from '../../vm/arena.js';
import { registerTunable } from '../sysctl/tunables.js';
import type { Sysctl } from '../sysctl/sysctl.js';
import { MAXSOCKBUF_DEFAULT, MAXSOCKBUF_MAX, MAXSOCKBUF_MIN } from './sockbuf.js';
import { SOACCEPTQUEUE_MAX, SOMAXCONN } from './soqueue.js';

/**
 * Register kern.ipc.maxsockbuf and kern.ipc.soacceptqueue on `sysctl`
 * (names already there are left alone). Takes the tunable table lock
 * (cold); does not sleep.
 */
export function registerSocketSysctls(sysctl: Sysctl, arena: Arena): void {
  if (!sysctl.has('kern.ipc.maxsockbuf')) {
    registerTunable(sysctl, arena, { name: 'kern.ipc.maxsockbuf', description: 'Maximum socket buffer size', initial: MAXSOCKBUF_DEFAULT, min: MAXSOCKBUF_MIN, max: MAXSOCKBUF_MAX });
  }
  if (!sysctl.has('kern.ipc.soacceptqueue')) {
    registerTunable(sysctl, arena, { name: 'kern.ipc.soacceptqueue', description: 'Maximum listen socket pending connection accept queue size', initial: SOMAXCONN, min: 1, max: SOACCEPTQUEUE_MAX });
  }
}
