/**
 * The Toeplitz hash of RSS (Microsoft's Receive-Side Scaling spec, used by
 * NICs and by FreeBSD's rss_hash): for each set bit of the input, XOR in the
 * 32-bit window of the key that starts at that bit. A received packet goes to
 * the CPU indicated by the hash, so every packet of a flow lands on the same
 * CPU. Pure functions of the input and the thread's key (useRssKey); no
 * allocation after module load; no lock.
 */

import { ArgumentError } from '../kern/errors.js';
import type { Sysctl } from '../kern/sysctl/sysctl.js';

/** Microsoft's key from the RSS spec (FreeBSD's rss_key default): what NICs compute. */
export const RSS_KEY_MICROSOFT = Uint8Array.from([
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
  0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
]);

/**
 * The symmetric key of Woo and Park ("Scalable TCP session monitoring with
 * symmetric receive-side scaling", 2012): 0x6d5a repeated. A key of period 16
 * bits gives every input bit and the bit 16 or 32 places away the same
 * window, so swapping source and destination (addresses and ports) leaves
 * the hash unchanged: both directions of a flow land on one CPU. Between two
 * stacks of one system that puts both ends of a connection on the same CPU,
 * so its segments never cross CPUs (one handoff and one wake each, else).
 */
export const RSS_KEY_SYMMETRIC = Uint8Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 0x6d : 0x5a));

/** Which key a machine hashes with: the symmetric one (the default) or Microsoft's. */
export type RssKeyName = 'symmetric' | 'microsoft';

/** The keys by the code a machine record stores (MC_RSS_KEY): index 0 is the default. */
export const RSS_KEY_NAMES: readonly RssKeyName[] = ['symmetric', 'microsoft'];

/** Window table: w[i] = the key's 32 bits starting at bit i, for the first 12 bytes of input (96 bits). */
function windows(key: Uint8Array): Uint32Array {
  const w = new Uint32Array(96);
  for (let i = 0; i < 96; i++) {
    let v = 0;
    for (let b = 0; b < 32; b++) {
      const bit = i + b;
      v = (v << 1) | ((key[bit >> 3] >> (7 - (bit & 7))) & 1);
    }
    w[i] = v >>> 0;
  }
  return w;
}

const KEYS: Record<RssKeyName, Uint8Array> = { symmetric: RSS_KEY_SYMMETRIC, microsoft: RSS_KEY_MICROSOFT };
const WINDOWS: Record<RssKeyName, Uint32Array> = { symmetric: windows(KEYS.symmetric), microsoft: windows(KEYS.microsoft) };

/** This thread's key and its window table (every thread of a machine must hash alike; see useRssKey). */
let current: RssKeyName = 'symmetric';
let currentWin = WINDOWS.symmetric;
let held = 0;

/** The key this thread hashes with. */
export function rssKey(): RssKeyName {
  return current;
}

/** True for a valid key name. */
export function isRssKeyName(v: unknown): v is RssKeyName {
  return RSS_KEY_NAMES.includes(v as RssKeyName);
}

/**
 * Hash with `key` in this thread until the returned release is called: a CPU
 * worker at start (its machine's key), the main thread while a machine runs.
 * Two machines of one thread must agree, since the thread computes flow CPUs
 * for both: a second key while one is held throws. Thread-local; no lock.
 */
export function useRssKey(key: RssKeyName): () => void {
  if (held > 0 && key !== current) throw new ArgumentError(`this thread hashes with the ${current} RSS key while a machine using it runs; ${key} was asked`);
  current = key;
  currentWin = WINDOWS[key];
  held++;
  let released = false;
  return () => {
    if (!released) {
      released = true;
      held--;
    }
  };
}

function mix(h: number, word: number, w: Uint32Array, base: number): number {
  for (let b = 0; b < 32; b++) if ((word >>> (31 - b)) & 1) h ^= w[base + b];
  return h;
}

/** Hash of (src, dst) addresses: the 2-tuple hash for non-TCP/UDP and fragments. */
export function toeplitz2(src: number, dst: number, key?: RssKeyName): number {
  const w = key === undefined ? currentWin : WINDOWS[key];
  return mix(mix(0, src, w, 0), dst, w, 32) >>> 0;
}

/** Hash of (src, dst, sport, dport): the 4-tuple hash for UDP and TCP. */
export function toeplitz4(src: number, dst: number, sport: number, dport: number, key?: RssKeyName): number {
  const w = key === undefined ? currentWin : WINDOWS[key];
  return mix(mix(mix(0, src, w, 0), dst, w, 32), ((sport << 16) | dport) >>> 0, w, 64) >>> 0;
}

/** The CPU for a hash among n CPUs (an indirection table of n entries, as rss_getbucket). */
export function rssCpu(hash: number, ncpus: number): number {
  return (hash & 0x7f) % ncpus;
}

/**
 * The one flow-to-CPU function of the stack (rss_hash2cpuid of a packet's
 * tuple): the CPU among n that owns the flow src:sport -> dst:dport, by the
 * 4-tuple Toeplitz hash. Frame dispatch (netisr.ts), datagram redispatch
 * after reassembly, the placement of a connected socket (its replies' tuple)
 * and port selection for a CPU all call this, so they can never disagree.
 */
export function rssFlowCpu(src: number, dst: number, sport: number, dport: number, ncpus: number): number {
  return ncpus === 1 ? 0 : rssCpu(toeplitz4(src, dst, sport, dport), ncpus);
}

/** The CPU of a packet without ports (fragments, ICMP, other protocols): the 2-tuple hash. */
export function rssAddrCpu(src: number, dst: number, ncpus: number): number {
  return ncpus === 1 ? 0 : rssCpu(toeplitz2(src, dst), ncpus);
}

/**
 * net.inet.rss.key (read-only, as FreeBSD's boot-time key): the key's 40
 * bytes in hex. A machine's key cannot change while it runs, since every
 * connection and bound socket lives on the CPU its hash chose. Cold.
 */
export function registerRssSysctl(sysctl: Sysctl, key: RssKeyName): void {
  const hex = Array.from(KEYS[key], (b) => b.toString(16).padStart(2, '0')).join('');
  sysctl.registerNode({ name: 'net.inet.rss.key', type: 'string', description: `RSS key flows are hashed to CPUs with (${key})`, get: () => hex });
}
