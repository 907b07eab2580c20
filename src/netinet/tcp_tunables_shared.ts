/**
 * TCP's tunables on the MP core: every net.inet.tcp.* knob (and
 * kern.ipc.soacceptqueue / kern.ipc.maxsockbuf, which TCP reads too) is one
 * arena tunable word (src/kern/sysctl/tunables.ts), so the value is the same
 * on every CPU and a write from any thread's sysctl tree (the main thread's
 * `sys.sysctl`, a CPU's) is what the protocol code on every CPU reads at its
 * next use. net.inet.tcp.cc.algorithm is the word of the algorithm's index
 * in CC_ALGOS. Not shared: net.inet.tcp.hostcache.purgenow (an action on
 * one stack's host cache) and the per-stack counters.
 *
 * The single-thread stacks keep their plain per-stack TcpConfig (tests give
 * two stacks different configs); only the CPUs' stacks are bound.
 *
 * Reading a bound field is one Atomics.load; no lock; never sleeps.
 */
import type { Arena } from '../vm/arena.js';
import { tunableIndex } from '../kern/sysctl/tunables.js';
import { SYSCTL_EINVAL, SysctlError, type Sysctl } from '../kern/sysctl/sysctl.js';
import { TCP_DEFAULTS, TCP_NODES, type TcpConfig } from './tcp_tunables.js';
import { CC_ALGOS, ccAlgoByName, ccAlgoIndex } from './cc/cc_list.js';

/** The shared numeric nodes: [sysctl name, field, description, min, max]. */
const SHARED = TCP_NODES.filter(([, key]) => key !== 'hostcache_purgenow');

/** net.inet.tcp.cc.algorithm's word: the index of the default algorithm. */
const CC_NAME = 'net.inet.tcp.cc.algorithm';
const ccInitial = (): number => ccAlgoIndex(TCP_DEFAULTS.cc_algorithm);

/**
 * Make every shared field of `cfg` (a CPU's stack's TcpConfig) read and
 * write its arena word. Takes the tunable table lock once per field (cold,
 * at stack creation); does not sleep.
 */
export function bindTcpTunables(cfg: TcpConfig, arena: Arena): void {
  const i32 = arena.i32;
  for (const [name, key] of SHARED) {
    const idx = tunableIndex(arena, name, TCP_DEFAULTS[key]);
    Object.defineProperty(cfg, key, {
      configurable: true,
      enumerable: true,
      get: () => Atomics.load(i32, idx),
      set: (v: number) => void Atomics.store(i32, idx, v),
    });
  }
  const cc = tunableIndex(arena, CC_NAME, ccInitial());
  Object.defineProperty(cfg, 'cc_algorithm', {
    configurable: true,
    enumerable: true,
    get: () => CC_ALGOS[Atomics.load(i32, cc)]?.name ?? TCP_DEFAULTS.cc_algorithm,
    set: (v: string) => {
      const i = ccAlgoIndex(v);
      if (i >= 0) Atomics.store(i32, cc, i);
    },
  });
}

/**
 * Register the shared TCP nodes on a thread's tree (the main thread's of an
 * MP system, each CPU's), backed by the same words bindTcpTunables binds.
 * Names already on the tree are left alone. Takes the tunable table lock
 * (cold); does not sleep.
 */
export function registerTcpSysctls(sysctl: Sysctl, arena: Arena): void {
  const i32 = arena.i32;
  const reg = (spec: Parameters<Sysctl['registerNode']>[0]): void => {
    if (sysctl.has(spec.name)) return;
    try {
      sysctl.registerNode(spec);
    } catch (e) {
      if (!(e instanceof SysctlError)) throw e;
    }
  };
  for (const [name, key, description, min, max] of SHARED) {
    const idx = tunableIndex(arena, name, TCP_DEFAULTS[key]);
    reg({ name, type: 'int', description, min, max, get: () => Atomics.load(i32, idx), set: (v) => void Atomics.store(i32, idx, v as number) });
  }
  const cc = tunableIndex(arena, CC_NAME, ccInitial());
  reg({
    name: CC_NAME,
    type: 'string',
    description: 'Default congestion control algorithm',
    get: () => CC_ALGOS[Atomics.load(i32, cc)]?.name ?? TCP_DEFAULTS.cc_algorithm,
    set: (v) => {
      const algo = ccAlgoByName(String(v));
      // FreeBSD answers ESRCH for a name no algorithm has; the tree's code for a refused value.
      if (algo === null) throw new SysctlError(SYSCTL_EINVAL, CC_NAME, `no such algorithm '${String(v)}' (available: ${CC_ALGOS.map((a) => a.name).join(', ')})`);
      Atomics.store(i32, cc, ccAlgoIndex(algo.name));
    },
  });
}
