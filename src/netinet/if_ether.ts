/**
 * ARP (if_ether.c): the cache of IPv4 -> MAC entries per interface with
 * timeouts, resolution for output with a bounded queue of packets held per
 * incomplete entry, requests retried at most once a second, replies to
 * requests for our addresses, gratuitous ARP, and duplicate address
 * detection by noticing our own address as a sender.
 *
 * What is refused (in_arpinput / in_lltable_rtcheck), each counted: a sender
 * hardware address that is broadcast or multicast (badsha: FreeBSD's "is
 * broadcast" / "is multicast", allow_multicast off), a sender that is not on
 * the receiving interface's network (offlink: "is not on the network"), any
 * change to a static entry made by arp -s (permanent: "attempts to modify
 * permanent entry"), and a new entry when the table already holds
 * net.link.ether.inet.max_entries (tablefull). So the table is bounded and
 * only ever holds neighbours.
 *
 * Per stack instance (one CPU); no lock; never sleeps.
 */
import { M_DATA, M_LEN, PH_LEN } from '../kern/mbuf/layout.js';
import { M_NOWAIT } from '../uma/flags.js';
import { MT_DATA } from '../kern/mbuf/layout.js';
import { ARP_LEN, ARPOP_REPLY, ARPOP_REQUEST, arpEmit, arpOp, arpParse, arpSha, arpSpa, arpTpa } from '../wire/arp.js';
import { WIRE_OK } from '../wire/codes.js';
import { ETH_HLEN, ETH_MIN_FRAME, ETHERTYPE_ARP, ethEmit, MAC_BROADCAST, macIsGroup } from '../wire/ethernet.js';
import { ifInputHandoff, type Ifnet } from '../net/if.js';
import { pullup } from '../net/mchain.js';
import { ARPS } from './stats.js';
import type { Stack } from './stack.js';

const INCOMPLETE = 0;
const REACHABLE = 1;

export interface ArpEntry {
  ifp: Ifnet;
  ip: number;
  mac: number;
  state: number;
  /** ms (performance.now) when the entry expires. */
  expire: number;
  asked: number;
  lastAsk: number;
  /** Packets waiting for the resolution (mbuf handles, complete IP packets). */
  hold: number[];
  /** Made by hand (arp -s, LLE_STATIC): never expires, never changed by received ARP. */
  static: boolean;
}

export interface ArpConfig {
  /** net.link.ether.inet.max_age: lifetime of a resolved entry (ms). */
  maxAgeMs: number;
  /** net.link.ether.inet.maxtries: requests before an entry is given up. */
  maxTries: number;
  /** net.link.ether.inet.maxhold: packets held per incomplete entry. */
  maxHold: number;
  /** Minimum gap between requests for one entry (ms). */
  retryMs: number;
  /** net.link.ether.inet.max_entries: entries the table may hold (learned and incomplete). */
  maxEntries: number;
}

export const ARP_DEFAULTS: ArpConfig = { maxAgeMs: 1200_000, maxTries: 5, maxHold: 16, retryMs: 1000, maxEntries: 2048 };

const key = (ifp: Ifnet, ip: number): number => ifp.index * 0x1_0000_0000 + ip;

export class ArpTable {
  readonly entries = new Map<number, ArpEntry>();
  readonly cfg: ArpConfig;
  constructor(private readonly st: Stack, cfg: Partial<ArpConfig> = {}) {
    this.cfg = { ...ARP_DEFAULTS, ...cfg };
  }

  /**
   * arpresolve: the MAC for `ip` on ifp, or -1 when not yet known, in which
   * case m (a complete IP packet) is held on the entry (or dropped when the
   * hold queue is full: the oldest goes, as FreeBSD) and a request goes out.
   */
  resolve(ifp: Ifnet, ip: number, m: number): number {
    const e = this.entries.get(key(ifp, ip));
    const now = this.st.now();
    if (e !== undefined && e.state === REACHABLE && e.expire > now) return e.mac;
    return this.resolveSlow(ifp, ip, m, e, now);
  }

  private resolveSlow(ifp: Ifnet, ip: number, m: number, e: ArpEntry | undefined, now: number): number {
    if (e === undefined) {
      if (this.entries.size >= this.cfg.maxEntries) {
        // No room for the entry: the packet cannot wait anywhere.
        this.st.stats.arp[ARPS.tablefull]++;
        this.st.stats.arp[ARPS.dropped]++;
        this.st.mb.m_freem(m);
        return -1;
      }
      e = { ifp, ip, mac: 0, state: INCOMPLETE, expire: now + this.cfg.retryMs * this.cfg.maxTries, asked: 0, lastAsk: -Infinity, hold: [], static: false };
      this.entries.set(key(ifp, ip), e);
    } else if (e.state === REACHABLE) {
      // Expired: ask again but keep using the old MAC meanwhile would risk a stale peer; hold instead.
      e.state = INCOMPLETE;
      e.asked = 0;
      e.expire = now + this.cfg.retryMs * this.cfg.maxTries;
    }
    if (e.hold.length >= this.cfg.maxHold) {
      this.st.mb.m_freem(e.hold.shift()!);
      this.st.stats.arp[ARPS.dropped]++;
    }
    ifInputHandoff(this.st.mb, m);
    e.hold.push(m);
    if (now - e.lastAsk >= this.cfg.retryMs) {
      e.lastAsk = now;
      e.asked++;
      this.request(ifp, ifp.addr, ip);
    }
    return -1;
  }

  /** Send a request "who has tpa, tell spa" (gratuitous when spa == tpa). */
  request(ifp: Ifnet, spa: number, tpa: number): void {
    if (this.send(ifp, ARPOP_REQUEST, ifp.mac, spa, 0, tpa, MAC_BROADCAST)) this.st.stats.arp[ARPS.txrequests]++;
  }

  /** Announce our address (gratuitous ARP), e.g. when it is configured. */
  gratuitous(ifp: Ifnet, ip: number): void {
    if (this.send(ifp, ARPOP_REQUEST, ifp.mac, ip, 0, ip, MAC_BROADCAST)) this.st.stats.arp[ARPS.gratuitous]++;
  }

  private send(ifp: Ifnet, op: number, sha: number, spa: number, tha: number, tpa: number, dst: number): boolean {
    const mb = this.st.mb;
    const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
    if (m === 0) return false;
    const i32 = mb.i32;
    const d = i32[(m + M_DATA) >> 2];
    ethEmit(mb.u8, d, dst, ifp.mac, ETHERTYPE_ARP);
    arpEmit(mb.u8, d + ETH_HLEN, op, sha, spa, tha, tpa);
    // Pad to the minimum frame, zeroed (no stale arena bytes on the wire).
    mb.u8.fill(0, d + ETH_HLEN + ARP_LEN, d + ETH_MIN_FRAME);
    i32[(m + M_LEN) >> 2] = ETH_MIN_FRAME;
    i32[(m + PH_LEN) >> 2] = ETH_MIN_FRAME;
    ifp.transmit(m);
    return true;
  }

  /**
   * arpintr / in_arpinput: a received ARP packet (Ethernet header already
   * stripped). Drops packets whose sender MAC is a group address; learns
   * the sender when the packet is for us or the sender is known (and the
   * sender may be learned: see learn); answers requests for our addresses.
   * Frees m.
   */
  input(ifp: Ifnet, m: number): void {
    const st = this.st;
    const mb = st.mb;
    const s = st.stats.arp;
    s[ARPS.received]++;
    m = pullup(mb, m, ARP_LEN);
    if (m === 0) {
      s[ARPS.malformed]++;
      return;
    }
    const u8 = mb.u8;
    const a = mb.i32[(m + M_DATA) >> 2];
    if (arpParse(u8, a, mb.i32[(m + M_LEN) >> 2]) !== WIRE_OK) {
      s[ARPS.malformed]++;
      mb.m_freem(m);
      return;
    }
    const op = arpOp(u8, a);
    const sha = arpSha(u8, a);
    const spa = arpSpa(u8, a);
    const tpa = arpTpa(u8, a);
    mb.m_freem(m);
    if (op === ARPOP_REQUEST) s[ARPS.rxrequests]++;
    else s[ARPS.rxreplies]++;
    if (sha === ifp.mac) return; // our own broadcast looped back
    if (macIsGroup(sha)) {
      // A broadcast or multicast "sender": nothing can be learned or answered.
      s[ARPS.badsha]++;
      return;
    }
    const mine = st.isLocalOn(ifp, spa);
    if (mine) {
      s[ARPS.dupips]++;
      st.log(`arp: ${ifp.name}: duplicate IP address announced by another host`);
      return;
    }
    const forUs = st.isLocalOn(ifp, tpa);
    if (spa !== 0 && (forUs || this.entries.has(key(ifp, spa)))) this.update(ifp, spa, sha);
    if (op === ARPOP_REQUEST && forUs) {
      if (this.send(ifp, ARPOP_REPLY, ifp.mac, tpa, sha, spa, sha)) s[ARPS.txreplies]++;
    }
  }

  /**
   * in_lltable_rtcheck: is ip a neighbour on ifp (not something behind a
   * router)? On one of ifp's networks, or routed directly (no gateway) out
   * of ifp, as an interface route is.
   */
  onLink(ifp: Ifnet, ip: number): boolean {
    for (const x of ifp.addrs) if (((ip ^ x.addr) & x.mask) === 0) return true;
    const r = this.st.routes.lookup(ip);
    return r !== null && r.ifp === ifp && r.gateway === 0;
  }

  /**
   * Record a learned mapping and send the packets that waited for it.
   * Refused (and counted, nothing changed): a static entry, a MAC that is a
   * group address, a new entry for an address that is not on-link, a new
   * entry in a full table. Returns whether the mapping was recorded.
   */
  update(ifp: Ifnet, ip: number, mac: number): boolean {
    const s = this.st.stats.arp;
    let e = this.entries.get(key(ifp, ip));
    if (e !== undefined && e.static) {
      if (e.mac !== mac) s[ARPS.permanent]++;
      return false;
    }
    if (macIsGroup(mac)) {
      s[ARPS.badsha]++;
      return false;
    }
    const now = this.st.now();
    if (e === undefined) {
      // An existing entry was made by resolve() for a next hop, which is on-link by the routes; a new one must be.
      if (!this.onLink(ifp, ip)) {
        s[ARPS.offlink]++;
        return false;
      }
      if (this.entries.size >= this.cfg.maxEntries) {
        s[ARPS.tablefull]++;
        return false;
      }
      e = { ifp, ip, mac, state: REACHABLE, expire: now + this.cfg.maxAgeMs, asked: 0, lastAsk: -Infinity, hold: [], static: false };
      this.entries.set(key(ifp, ip), e);
      return true;
    }
    e.mac = mac;
    e.state = REACHABLE;
    e.expire = now + this.cfg.maxAgeMs;
    e.asked = 0;
    const held = e.hold;
    e.hold = [];
    for (const m of held) this.st.etherSend(ifp, m, mac);
    return true;
  }

  /** Timer: expire entries; give up incomplete ones after maxTries requests. */
  timer(now: number): void {
    for (const [k, e] of this.entries) {
      if (e.state === INCOMPLETE) {
        if (e.asked >= this.cfg.maxTries && now - e.lastAsk >= this.cfg.retryMs) {
          this.drop(k, e);
        } else if (e.hold.length > 0 && now - e.lastAsk >= this.cfg.retryMs) {
          e.lastAsk = now;
          e.asked++;
          this.request(e.ifp, e.ifp.addr, e.ip);
        } else if (e.hold.length === 0 && now > e.expire) {
          this.drop(k, e);
        }
      } else if (now > e.expire && !e.static) {
        this.drop(k, e);
      }
    }
  }

  private drop(k: number, e: ArpEntry): void {
    this.st.stats.arp[ARPS.timeouts]++;
    for (const m of e.hold) {
      this.st.stats.arp[ARPS.dropped]++;
      this.st.mb.m_freem(m);
    }
    e.hold = [];
    this.entries.delete(k);
  }

  /** Free every held packet and forget every entry (stack shutdown). */
  flush(): void {
    for (const e of this.entries.values()) for (const m of e.hold) this.st.mb.m_freem(m);
    this.entries.clear();
  }

  /**
   * arp -s: a static entry (LLE_STATIC) for ip on ifp, replacing whatever
   * was there; it never expires and received ARP never changes it. Packets
   * held for the address are sent to mac.
   */
  set(ifp: Ifnet, ip: number, mac: number): void {
    const k = key(ifp, ip);
    const old = this.entries.get(k);
    const held = old?.hold ?? [];
    this.entries.set(k, { ifp, ip, mac, state: REACHABLE, expire: Infinity, asked: 0, lastAsk: -Infinity, hold: [], static: true });
    for (const m of held) this.st.etherSend(ifp, m, mac);
  }

  /** Look up without side effects: the MAC or -1. */
  lookup(ifp: Ifnet, ip: number): number {
    const e = this.entries.get(key(ifp, ip));
    return e !== undefined && e.state === REACHABLE ? e.mac : -1;
  }
}

