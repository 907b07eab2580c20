/**
 * The congestion-control algorithms there are (FreeBSD's cc_list in cc.c,
 * with the modules built in: newreno and cubic), the per-stack default
 * (net.inet.tcp.cc.algorithm, "cubic" as FreeBSD 14's), the table of
 * net.inet.tcp.cc.available, and moving one connection to another
 * algorithm (tcp_congestion, the TCP_CONGESTION socket option).
 *
 * Stack thread; no lock (the list is fixed); never sleeps.
 */
import { ArgumentError } from '../../kern/errors.js';
import { ESRCH_ } from '../tcp_errno.js';
import { TCPS_HAVEESTABLISHED } from '../tcp_fsm.js';
import type { TcpConfig, TcpSysctlNode } from '../tcp_tunables.js';
import type { Tcpcb } from '../tcp_var.js';
import { CcVar, TCP_CA_NAME_MAX, type CcAlgo } from './cc.js';
import { cubic_cc_algo } from './cc_cubic.js';
import { newreno_cc_algo } from './cc_newreno.js';

/** Every algorithm, in the order `net.inet.tcp.cc.available` lists them. */
export const CC_ALGOS: readonly CcAlgo[] = [newreno_cc_algo, cubic_cc_algo];

/** CC_DEFAULT: the algorithm a stack starts with. */
export const CC_DEFAULT = 'cubic';

/** The algorithm of that name, or null. */
export function ccAlgoByName(name: string): CcAlgo | null {
  for (const a of CC_ALGOS) if (a.name === name) return a;
  return null;
}

/** The algorithm's index in CC_ALGOS (how TCP_CONGESTION crosses to another CPU), or -1. */
export function ccAlgoIndex(name: string): number {
  return CC_ALGOS.findIndex((a) => a.name === name);
}

/** The stack's default algorithm (net.inet.tcp.cc.algorithm); NewReno if the name is unknown. */
export function ccDefaultAlgo(cfg: TcpConfig): CcAlgo {
  return ccAlgoByName(cfg.cc_algorithm) ?? newreno_cc_algo;
}

/** Give a new tcpcb its algorithm and state (tcp_newtcpcb's cc part). */
export function ccAttach(tp: Tcpcb, algo: CcAlgo): void {
  tp.cc_algo = algo;
  if (algo.cb_init !== undefined) algo.cb_init(tp.t_ccv);
}

/** cc_cb_destroy for a closing connection. */
export function ccDetach(tp: Tcpcb): void {
  const a = tp.cc_algo;
  if (a.cb_destroy !== undefined) a.cb_destroy(tp.t_ccv);
  tp.t_ccv.cc_data = null;
}

/**
 * tcp_congestion: move a connection to the named algorithm. The new
 * algorithm's state starts fresh (cb_init into a new cc_var, the old one
 * cb_destroyed); an established connection also gets its conn_init, so it
 * continues from its current cwnd and ssthresh. Returns 0 or -ESRCH for a
 * name no algorithm has (as FreeBSD's).
 */
export function ccSwitch(tp: Tcpcb, name: string): number {
  const algo = name.length < TCP_CA_NAME_MAX ? ccAlgoByName(name) : null;
  if (algo === null) return -ESRCH_;
  const ccv = new CcVar(tp);
  if (algo.cb_init !== undefined) algo.cb_init(ccv);
  ccDetach(tp);
  tp.t_ccv = ccv;
  tp.cc_algo = algo;
  if (TCPS_HAVEESTABLISHED(tp.state) && algo.conn_init !== undefined) algo.conn_init(ccv);
  return 0;
}

/**
 * net.inet.tcp.cc.available as FreeBSD 14 prints it: a header, then one
 * line per algorithm with `*` at the default and how many connections use it.
 */
export function ccAvailable(cfg: TcpConfig, conns: Iterable<Tcpcb>): string {
  const lines = ['', 'CCmod           D PCB count'];
  for (const a of CC_ALGOS) {
    let n = 0;
    for (const tp of conns) if (tp.cc_algo === a) n++;
    lines.push(`${a.name.padEnd(TCP_CA_NAME_MAX)}${a.name === cfg.cc_algorithm ? '*' : ' '} ${n}`);
  }
  return lines.join('\n');
}

/**
 * The string nodes: net.inet.tcp.cc.algorithm (writable; a name no
 * algorithm has is refused, FreeBSD's ESRCH) and net.inet.tcp.cc.available.
 */
export function ccSysctlNodes(cfg: TcpConfig, conns: () => Iterable<Tcpcb>): TcpSysctlNode[] {
  return [
    {
      name: 'net.inet.tcp.cc.algorithm',
      type: 'string',
      description: 'Default congestion control algorithm',
      get: () => cfg.cc_algorithm,
      set: (v: number | string) => {
        const name = String(v);
        if (ccAlgoByName(name) === null) throw new ArgumentError(`net.inet.tcp.cc.algorithm: no such algorithm '${name}' (ESRCH; available: ${CC_ALGOS.map((a) => a.name).join(', ')})`);
        cfg.cc_algorithm = name;
      },
    },
    {
      name: 'net.inet.tcp.cc.available',
      type: 'string',
      description: 'List available congestion control algorithms',
      get: () => ccAvailable(cfg, conns()),
    },
  ];
}
