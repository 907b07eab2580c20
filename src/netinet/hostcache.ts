/**
 * Path MTU per destination (RFC 1191), as FreeBSD keeps it in the TCP host
 * cache / the route's rmx_mtu: an ICMP "fragmentation needed" for a datagram
 * we sent records the next-hop MTU for its destination, and ip_output
 * fragments to (or, with DF, refuses above) the smaller of that and the
 * interface MTU. Entries expire (net.inet.ip.pmtu_expire seconds), after
 * which the interface MTU is tried again, as RFC 1191 section 6.3 asks.
 *
 * Per stack instance (one thread); no lock; never sleeps. ip_output's fast
 * path pays one `size` test while the cache is empty.
 */

/** RFC 1191 section 7 plateau table, for routers that send no next-hop MTU. */
const PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/** net.inet.ip.pmtu_expire default, seconds (RFC 1191 section 6.3 suggests 10 minutes). */
export const PMTU_EXPIRE_DEFAULT = 600;

/** The smallest MTU we accept from the network (RFC 791: every host must take 68). */
export const PMTU_MIN = 68;

/** RFC 1191's guess for an old router's message: the next plateau below the datagram's length. */
export function pmtuPlateau(totalLen: number): number {
  for (const p of PLATEAUS) if (p < totalLen) return p;
  return PMTU_MIN;
}

export class HostCache {
  /** dst -> learned MTU. */
  private readonly mtu = new Map<number, number>();
  /** dst -> expiry time (the stack clock's ms). */
  private readonly expires = new Map<number, number>();

  /** @param expireSec lifetime of an entry, read at each update (a bound tunable). */
  constructor(private readonly expireSec: () => number) {}

  get size(): number {
    return this.mtu.size;
  }

  /** The path MTU learned for dst, or 0 for none (or expired, which removes it). */
  lookup(dst: number, now: number): number {
    const v = this.mtu.get(dst);
    if (v === undefined) return 0;
    if ((this.expires.get(dst) ?? 0) <= now) {
      this.mtu.delete(dst);
      this.expires.delete(dst);
      return 0;
    }
    return v;
  }

  /**
   * Record `mtu` for dst if it lowers what we know (a larger value in an
   * ICMP message would be a spoof or stale; the expiry raises it again).
   * Returns true when the entry changed.
   */
  update(dst: number, mtu: number, now: number): boolean {
    if (mtu < PMTU_MIN) mtu = PMTU_MIN;
    const cur = this.lookup(dst, now);
    if (cur !== 0 && cur <= mtu) return false;
    this.mtu.set(dst, mtu);
    this.expires.set(dst, now + this.expireSec() * 1000);
    return true;
  }

  /** Drop expired entries (the slow timer). */
  timer(now: number): void {
    for (const [dst, t] of this.expires) {
      if (t <= now) {
        this.expires.delete(dst);
        this.mtu.delete(dst);
      }
    }
  }

  flush(): void {
    this.mtu.clear();
    this.expires.clear();
  }

  /** `dst mtu expires-in-seconds` rows, for tests and `netstat -rn`-like output. */
  entries(now: number): { dst: number; mtu: number; expiresIn: number }[] {
    return [...this.mtu].map(([dst, mtu]) => ({ dst, mtu, expiresIn: ((this.expires.get(dst) ?? now) - now) / 1000 }));
  }
}
