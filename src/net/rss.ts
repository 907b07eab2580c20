/**
 * The Toeplitz hash of RSS (Microsoft's Receive-Side Scaling spec, used by
 * NICs and by FreeBSD's rss_hash): for each set bit of the input, XOR in the
 * 32-bit window of the key that starts at that bit. A received packet goes to
 * the CPU indicated by the hash, so every packet of a flow lands on the same
 * CPU. Pure functions; no allocation after module load; no lock.
 */

/** The default key from the RSS spec (also FreeBSD's rss_key default). */
export const RSS_KEY = Uint8Array.from([
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
  0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
]);

/** Window table: WIN[i] = the key's 32 bits starting at bit i, for the first 12 bytes of input (96 bits). */
const WIN = new Uint32Array(96);
for (let i = 0; i < 96; i++) {
  let v = 0;
  for (let b = 0; b < 32; b++) {
    const bit = i + b;
    v = (v << 1) | ((RSS_KEY[bit >> 3] >> (7 - (bit & 7))) & 1);
  }
  WIN[i] = v >>> 0;
}

function mix(h: number, word: number, base: number): number {
  for (let b = 0; b < 32; b++) if ((word >>> (31 - b)) & 1) h ^= WIN[base + b];
  return h;
}

/** Hash of (src, dst) addresses: the 2-tuple hash for non-TCP/UDP and fragments. */
export function toeplitz2(src: number, dst: number): number {
  return mix(mix(0, src, 0), dst, 32) >>> 0;
}

/** Hash of (src, dst, sport, dport): the 4-tuple hash for UDP and TCP. */
export function toeplitz4(src: number, dst: number, sport: number, dport: number): number {
  return mix(mix(mix(0, src, 0), dst, 32), ((sport << 16) | dport) >>> 0, 64) >>> 0;
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
