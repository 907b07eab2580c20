// Test utilities for mbuf tests: a fresh mbuf system and chain builders.
import { testUma, mbufLeakCheck } from '../helpers.js';
import * as MB from '../../kern/mbuf/index.js';
import type { Uma } from '../../uma/uma.js';
import { zoneStats } from '../../uma/stats.js';
import type { Zone } from '../../uma/zone.js';
import { M_NOWAIT } from '../../uma/flags.js';

export function setup(size = 64 << 20): { uma: Uma; mb: MB.Mbufs } {
  const uma = testUma({ size });
  const mb = MB.Mbufs.create(uma, { seed: 12345 });
  return { uma, mb };
}

/** A fresh system with its leak check; fin() drains the packet cache and checks. */
export function fresh(): { mb: MB.Mbufs; fin: () => void } {
  const { uma, mb } = setup(16 << 20);
  return { mb, fin: mbufLeakCheck(uma, mb) };
}

/** Build a packet whose segments have the given lengths (kinds: 'm' mbuf, 'c' cluster), filled from bytes. */
export function build(mb: MB.Mbufs, bytes: Uint8Array, segs: { len: number; kind: 'm' | 'c'; lead?: number }[]): number {
  let head = 0;
  let tail = 0;
  let at = 0;
  for (const s of segs) {
    const first = head === 0;
    const m = s.kind === 'c' ? mb.m_getcl(MB.M_NOWAIT, MB.MT_DATA, first ? MB.M_PKTHDR : 0) : first ? mb.m_gethdr(MB.M_NOWAIT, MB.MT_DATA) : mb.m_get(MB.M_NOWAIT, MB.MT_DATA);
    if (m === 0) throw new Error('alloc failed in build');
    if (s.lead) mb.setData(m, mb.m_data(m) + s.lead);
    mb.u8.set(bytes.subarray(at, at + s.len), mb.m_data(m));
    mb.setLen(m, s.len);
    at += s.len;
    if (first) head = m;
    else mb.setNext(tail, m);
    tail = m;
  }
  mb.setPkthdrLen(head, at);
  return head;
}

export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/**
 * Make every mbuf allocation fail: limit the mbuf, packet and cluster zones
 * to what is in use now and give their cached free items back to the kegs
 * (a limit counts cached items as allocated, as FreeBSD's uz_items does, so
 * a cache would otherwise keep serving). A limit of 0 means "unlimited", so a
 * zone with nothing in use gets one item taken and held, and a limit of 1.
 * Undo with unexhaust (which frees the held items).
 */
const held = new WeakMap<MB.Mbufs, [Zone, number][]>();
export function exhaust(mb: MB.Mbufs): void {
  const hold: [Zone, number][] = [];
  const zones = [mb.zPack, mb.zMbuf, mb.zClust, mb.zJumbop, mb.zJumbo9, mb.zJumbo16];
  for (const z of zones) z.drain();
  for (const z of zones) {
    if (zoneStats(z).used === 0) hold.push([z, z.alloc(M_NOWAIT)]);
    z.setMaxItems(zoneStats(z).used);
    z.drain();
  }
  held.set(mb, hold);
}

/** Lift the limits exhaust set (0: unlimited) and free what it held. */
export function unexhaust(mb: MB.Mbufs): void {
  for (const z of [mb.zMbuf, mb.zPack, mb.zClust, mb.zJumbop, mb.zJumbo9, mb.zJumbo16]) z.setMaxItems(0);
  for (const [z, item] of held.get(mb) ?? []) z.free(item);
  held.delete(mb);
}
