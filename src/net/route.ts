/**
 * The IPv4 routing table: prefixes with a gateway (0 = directly connected)
 * and an interface, longest prefix first, with a default route (0.0.0.0/0).
 * Small tables are a sorted array scanned linearly, which for the handful of
 * routes a stack instance has beats any tree. Per stack instance; no lock.
 */
import { ArgumentError } from '../kern/errors.js';
import { ipToString, prefixToMask } from '../wire/ipv4.js';
import type { Ifnet } from './if.js';

export interface Route {
  dst: number;
  prefix: number;
  mask: number;
  /** Next hop; 0 for a directly connected network. */
  gateway: number;
  ifp: Ifnet;
}

export class RouteTable {
  /** Longest prefix first. */
  readonly routes: Route[] = [];

  /** Add (or replace) a route. */
  add(dst: number, prefix: number, gateway: number, ifp: Ifnet): void {
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new ArgumentError(`route prefix must be 0..32, got ${prefix}`);
    const mask = prefixToMask(prefix);
    dst = (dst & mask) >>> 0;
    this.delete(dst, prefix);
    const r: Route = { dst, prefix, mask, gateway: gateway >>> 0, ifp };
    let i = 0;
    while (i < this.routes.length && this.routes[i].prefix >= prefix) i++;
    this.routes.splice(i, 0, r);
  }

  delete(dst: number, prefix: number): boolean {
    const mask = prefixToMask(prefix);
    const i = this.routes.findIndex((r) => r.prefix === prefix && r.dst === ((dst & mask) >>> 0));
    if (i < 0) return false;
    this.routes.splice(i, 1);
    return true;
  }

  /** Remove every route through an interface (it went away). */
  deleteIf(ifp: Ifnet): void {
    for (let i = this.routes.length - 1; i >= 0; i--) if (this.routes[i].ifp === ifp) this.routes.splice(i, 1);
  }

  /** Longest-prefix match, or null (no route to host). */
  lookup(dst: number): Route | null {
    const rs = this.routes;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i];
      if (((dst & r.mask) >>> 0) === r.dst) return r;
    }
    return null;
  }

  /** `netstat -rn`-style lines. */
  describe(): string[] {
    return this.routes.map((r) => `${r.prefix === 0 ? 'default' : `${ipToString(r.dst)}/${r.prefix}`}\t${r.gateway ? ipToString(r.gateway) : 'link#' + r.ifp.index}\t${r.ifp.name}`);
  }
}
