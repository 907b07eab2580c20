/**
 * Packet tags (m_tag(9), FreeBSD uipc_mbuf2.c) and lazy MAC labels.
 *
 * A tag is an item of one of the `mbuf_tag_*` zones (a small malloc-like set
 * of size classes), linked from the packet header's PH_TAGS field:
 *
 *   off  0 TAG_NEXT   next tag (handle)       8  TAG_ID     type (m_tag_id)
 *        4 TAG_COOKIE 32-bit module cookie   12  TAG_LEN    data length
 *       16 TAG_CLASS  size-class index       20  TAG_FREE   0, or TAGFREE_MAC
 *       24 spare                              TAG_HDR (32): the data
 *
 * A tag whose id has MTAG_PERSISTENT set survives m_tag_delete_nonpersistent.
 * Tags go with the packet header: m_free frees them, m_move_pkthdr moves them,
 * m_dup_pkthdr deep-copies them (MAC labels through their policies' copy
 * routines rather than byte copies, as the seed's MAC change does).
 *
 * Lazy labels: a MAC label tag is attached to a new packet header only while
 * at least one loaded policy declares that it labels mbufs (labelMbufs, a
 * shared count read without a lock on the allocation path, like
 * mac_labelmbufs). Label storage is MAC_MAX_SLOTS words, one per policy slot.
 *
 * Locking: none; a packet and its tags belong to one thread at a time. Tag
 * allocation may sleep only with M_WAITOK.
 */
import { ArgumentError } from '../errors.js';
import { M_NOWAIT } from '../../uma/flags.js';
import type { Uma } from '../../uma/uma.js';
import type { Zone } from '../../uma/zone.js';
import { M_FLAGS, M_PKTHDR, PH_TAGS } from './layout.js';
import type { Mbufs } from './mbuf.js';
import { R_LABEL_MBUFS } from './shared.js';

export const TAG_NEXT = 0;
export const TAG_COOKIE = 4;
export const TAG_ID = 8;
export const TAG_LEN = 12;
export const TAG_CLASS = 16;
export const TAG_FREE = 20;
export const TAG_HDR = 32;

/** The cookie of OpenBSD-compatible tags (m_tag_get / m_tag_find). */
export const MTAG_ABI_COMPAT = 0;
/** Tags with this bit in their id survive m_tag_delete_nonpersistent. */
export const MTAG_PERSISTENT = 0x800;
/** The MAC label tag (PACKET_TAG_MACLABEL, persistent). */
export const PACKET_TAG_MACLABEL = 19 | MTAG_PERSISTENT;
const TAGFREE_MAC = 1;

/** Policy label slots in a MAC label. */
export const MAC_MAX_SLOTS = 4;

const TAG_CLASSES = [64, 128, 256, 1024, 4096];
const tagZoneName = (n: number): string => `mbuf_tag_${n}`;
/** Largest tag payload. */
export const MTAG_MAX_LEN = TAG_CLASSES[TAG_CLASSES.length - 1] - TAG_HDR;

/** Create the tag zones (first thread). */
export function createTagZones(uma: Uma): Zone[] {
  return TAG_CLASSES.map((n) => uma.zcreate(tagZoneName(n), { size: n, align: 16 }));
}

/** Bind the tag zones in another thread. */
export function attachTagZones(uma: Uma): Zone[] {
  return TAG_CLASSES.map((n) => uma.zone(tagZoneName(n)));
}

function w(t: number, off: number): number {
  return (t + off) >> 2;
}

/**
 * m_tag_alloc: a tag of `len` data bytes (not zeroed beyond the header),
 * cookie and id as given. Returns 0 on M_NOWAIT failure.
 */
export function m_tag_alloc(mb: Mbufs, cookie: number, type: number, len: number, how: number): number {
  if (!Number.isInteger(len) || len < 0 || len > MTAG_MAX_LEN) throw new ArgumentError(`m_tag_alloc: len must be 0..${MTAG_MAX_LEN}, got ${len}`);
  if (!Number.isInteger(type) || type < 0 || type > 0xffff) throw new ArgumentError(`m_tag_alloc: type must be a 16-bit integer, got ${type}`);
  let cls = 0;
  while (TAG_CLASSES[cls] < len + TAG_HDR) cls++;
  const t = mb.tagZones[cls].alloc(how);
  if (t === 0) return 0;
  const i32 = mb.i32;
  i32[w(t, TAG_NEXT)] = 0;
  i32[w(t, TAG_COOKIE)] = cookie | 0;
  i32[w(t, TAG_ID)] = type;
  i32[w(t, TAG_LEN)] = len;
  i32[w(t, TAG_CLASS)] = cls;
  i32[w(t, TAG_FREE)] = 0;
  return t;
}

/** m_tag_get: an OpenBSD-compatible tag (cookie MTAG_ABI_COMPAT). */
export function m_tag_get(mb: Mbufs, type: number, len: number, how: number): number {
  return m_tag_alloc(mb, MTAG_ABI_COMPAT, type, len, how);
}

/** m_tag_free: free a tag that is on no list (MAC labels are destroyed first). */
export function m_tag_free(mb: Mbufs, t: number): void {
  if (mb.i32[w(t, TAG_FREE)] === TAGFREE_MAC) macDestroyLabel(mb, t + TAG_HDR);
  mb.tagZones[mb.i32[w(t, TAG_CLASS)]].free(t);
}

function assertPkthdr(mb: Mbufs, m: number, fn: string): void {
  if ((mb.i32[(m + M_FLAGS) >> 2] & M_PKTHDR) === 0) throw new ArgumentError(`${fn}: mbuf 0x${m.toString(16)} has no packet header`);
}

/** m_tag_prepend: put t first on m's tag list. */
export function m_tag_prepend(mb: Mbufs, m: number, t: number): void {
  assertPkthdr(mb, m, 'm_tag_prepend');
  const i32 = mb.i32;
  i32[w(t, TAG_NEXT)] = i32[(m + PH_TAGS) >> 2];
  i32[(m + PH_TAGS) >> 2] = t;
}

/** m_tag_first / m_tag_next. */
export function m_tag_first(mb: Mbufs, m: number): number {
  return (mb.i32[(m + M_FLAGS) >> 2] & M_PKTHDR) !== 0 ? mb.i32[(m + PH_TAGS) >> 2] : 0;
}
export function m_tag_next(mb: Mbufs, t: number): number {
  return mb.i32[w(t, TAG_NEXT)];
}

/** Tag accessors. */
export function tagCookie(mb: Mbufs, t: number): number {
  return mb.i32[w(t, TAG_COOKIE)] >>> 0;
}
export function tagId(mb: Mbufs, t: number): number {
  return mb.i32[w(t, TAG_ID)];
}
export function tagLen(mb: Mbufs, t: number): number {
  return mb.i32[w(t, TAG_LEN)];
}
/** Arena byte offset of a tag's data. */
export function tagData(t: number): number {
  return t + TAG_HDR;
}

/** m_tag_unlink: take t off m's list (t must be on it). */
export function m_tag_unlink(mb: Mbufs, m: number, t: number): void {
  const i32 = mb.i32;
  let prev = 0;
  let cur = i32[(m + PH_TAGS) >> 2];
  while (cur !== 0 && cur !== t) {
    prev = cur;
    cur = i32[w(cur, TAG_NEXT)];
  }
  if (cur === 0) throw new ArgumentError(`m_tag_unlink: tag 0x${t.toString(16)} is not on mbuf 0x${m.toString(16)}`);
  const next = i32[w(t, TAG_NEXT)];
  if (prev === 0) i32[(m + PH_TAGS) >> 2] = next;
  else i32[w(prev, TAG_NEXT)] = next;
  i32[w(t, TAG_NEXT)] = 0;
}

/** m_tag_delete: unlink and free. */
export function m_tag_delete(mb: Mbufs, m: number, t: number): void {
  m_tag_unlink(mb, m, t);
  m_tag_free(mb, t);
}

/**
 * m_tag_delete_chain: free every tag after `t` (t itself kept), or every tag
 * when t is 0.
 */
export function m_tag_delete_chain(mb: Mbufs, m: number, t: number): void {
  assertPkthdr(mb, m, 'm_tag_delete_chain');
  const i32 = mb.i32;
  let cur: number;
  if (t === 0) {
    cur = i32[(m + PH_TAGS) >> 2];
    i32[(m + PH_TAGS) >> 2] = 0;
  } else {
    cur = i32[w(t, TAG_NEXT)];
    i32[w(t, TAG_NEXT)] = 0;
  }
  while (cur !== 0) {
    const next = i32[w(cur, TAG_NEXT)];
    m_tag_free(mb, cur);
    cur = next;
  }
}

/** The free path's form (m_free): every tag of a packet header. */
export function tagDeleteChainAll(mb: Mbufs, m: number): void {
  m_tag_delete_chain(mb, m, 0);
}

/** m_tag_delete_nonpersistent: free the tags whose id lacks MTAG_PERSISTENT. */
export function m_tag_delete_nonpersistent(mb: Mbufs, m: number): void {
  assertPkthdr(mb, m, 'm_tag_delete_nonpersistent');
  const i32 = mb.i32;
  let t = i32[(m + PH_TAGS) >> 2];
  while (t !== 0) {
    const next = i32[w(t, TAG_NEXT)];
    if ((i32[w(t, TAG_ID)] & MTAG_PERSISTENT) === 0) m_tag_delete(mb, m, t);
    t = next;
  }
}

/**
 * m_tag_locate: the first tag after `t` (from the start when t is 0) with
 * this cookie and id; 0 if none.
 */
export function m_tag_locate(mb: Mbufs, m: number, cookie: number, type: number, t: number): number {
  const i32 = mb.i32;
  let cur = t === 0 ? m_tag_first(mb, m) : i32[w(t, TAG_NEXT)];
  const c = cookie | 0;
  while (cur !== 0) {
    if (i32[w(cur, TAG_COOKIE)] === c && i32[w(cur, TAG_ID)] === type) return cur;
    cur = i32[w(cur, TAG_NEXT)];
  }
  return 0;
}

/** m_tag_find: m_tag_locate with MTAG_ABI_COMPAT. */
export function m_tag_find(mb: Mbufs, m: number, type: number, start: number): number {
  return m_tag_locate(mb, m, MTAG_ABI_COMPAT, type, start);
}

/**
 * m_tag_copy: a new tag with t's cookie, id and data; MAC labels are
 * copied through the policies. 0 on failure.
 */
export function m_tag_copy(mb: Mbufs, t: number, how: number): number {
  const i32 = mb.i32;
  const len = i32[w(t, TAG_LEN)];
  const p = m_tag_alloc(mb, i32[w(t, TAG_COOKIE)], i32[w(t, TAG_ID)], len, how);
  if (p === 0) return 0;
  if (i32[w(t, TAG_FREE)] === TAGFREE_MAC) {
    macInitLabel(mb, p);
    macCopyLabel(mb, t + TAG_HDR, p + TAG_HDR);
  } else {
    mb.u8.copyWithin(p + TAG_HDR, t + TAG_HDR, t + TAG_HDR + len);
  }
  return p;
}

/**
 * m_tag_copy_chain: replace `to`'s tags by copies of every tag of `from`
 * (both packet headers), keeping their order. As FreeBSD: `to`'s own tags are
 * freed first, and on failure every copy made so far is freed too, leaving
 * `to` with no tags; returns false then.
 */
export function m_tag_copy_chain(mb: Mbufs, to: number, from: number, how: number): boolean {
  assertPkthdr(mb, to, 'm_tag_copy_chain');
  assertPkthdr(mb, from, 'm_tag_copy_chain');
  const i32 = mb.i32;
  m_tag_delete_chain(mb, to, 0);
  let tail = 0;
  for (let t = i32[(from + PH_TAGS) >> 2]; t !== 0; t = i32[w(t, TAG_NEXT)]) {
    const p = m_tag_copy(mb, t, how);
    if (p === 0) {
      m_tag_delete_chain(mb, to, 0);
      return false;
    }
    if (tail === 0) i32[(to + PH_TAGS) >> 2] = p;
    else i32[w(tail, TAG_NEXT)] = p;
    tail = p;
  }
  return true;
}

/** m_tag_init: an empty tag list on a packet header. */
export function m_tag_init(mb: Mbufs, m: number): void {
  mb.i32[(m + PH_TAGS) >> 2] = 0;
}

// ----------------------------------------------------------------------
// MAC policies and lazy labels
// ----------------------------------------------------------------------

/** A MAC policy's mbuf label hooks (code: registered in every thread). */
export interface MacPolicy {
  name: string;
  /** MPC_LOADTIME_FLAG_LABELMBUFS: this policy labels packets. */
  labelMbufs: boolean;
  /** Initialise this policy's slot word of a new label (arena byte offset of the word). */
  initLabel?(slot: number): void;
  destroyLabel?(slot: number): void;
  copyLabel?(src: number, dst: number): void;
}

const policiesByThread = new WeakMap<Mbufs, MacPolicy[]>();

function policies(mb: Mbufs): MacPolicy[] {
  let p = policiesByThread.get(mb);
  if (p === undefined) {
    p = [];
    policiesByThread.set(mb, p);
  }
  return p;
}

/**
 * mac_policy_register: load a policy. `load` true in exactly one thread (it
 * updates the shared labelMbufs count, mac_policy_updateflags); other
 * threads register the same hooks with load false. Slots are assigned in
 * registration order, so every thread must register policies in one order.
 */
export function macPolicyRegister(mb: Mbufs, policy: MacPolicy, load = true): number {
  const list = policies(mb);
  if (list.length >= MAC_MAX_SLOTS) throw new ArgumentError(`at most ${MAC_MAX_SLOTS} MAC policies`);
  if (list.some((p) => p.name === policy.name)) throw new ArgumentError(`MAC policy "${policy.name}" already registered`);
  list.push(policy);
  if (load && policy.labelMbufs) mb.shared.add(R_LABEL_MBUFS, 1);
  return list.length - 1;
}

/** mac_policy_unregister: the policy's slot stays reserved; labels are no longer made for it. */
export function macPolicyUnregister(mb: Mbufs, name: string, unload = true): void {
  const list = policies(mb);
  const p = list.find((x) => x.name === name);
  if (p === undefined) throw new ArgumentError(`no MAC policy "${name}"`);
  if (unload && p.labelMbufs) mb.shared.add(R_LABEL_MBUFS, -1);
  p.labelMbufs = false;
  p.initLabel = undefined;
}

/** The label of a packet (mbuf_to_label): arena offset of its slot words, or 0 when it has none. */
export function macMbufLabel(mb: Mbufs, m: number): number {
  const t = m_tag_find(mb, m, PACKET_TAG_MACLABEL, 0);
  return t === 0 ? 0 : t + TAG_HDR;
}

function macInitLabel(mb: Mbufs, t: number): void {
  mb.i32[w(t, TAG_FREE)] = TAGFREE_MAC;
  const label = t + TAG_HDR;
  mb.i32.fill(0, label >> 2, (label >> 2) + MAC_MAX_SLOTS);
  const list = policies(mb);
  for (let s = 0; s < list.length; s++) list[s].initLabel?.(label + s * 4);
}

function macDestroyLabel(mb: Mbufs, label: number): void {
  const list = policies(mb);
  for (let s = 0; s < list.length; s++) list[s].destroyLabel?.(label + s * 4);
}

function macCopyLabel(mb: Mbufs, src: number, dst: number): void {
  const list = policies(mb);
  for (let s = 0; s < list.length; s++) {
    const p = list[s];
    if (p.copyLabel) p.copyLabel(src + s * 4, dst + s * 4);
    else mb.i32[(dst >> 2) + s] = mb.i32[(src >> 2) + s];
  }
}

/**
 * mac_init_mbuf: called for a new packet header while some policy labels
 * mbufs; attaches the label tag. False when the tag could not be had.
 */
export function pkthdrLabelInit(mb: Mbufs, m: number, how: number): boolean {
  const t = m_tag_alloc(mb, MTAG_ABI_COMPAT, PACKET_TAG_MACLABEL, MAC_MAX_SLOTS * 4, how === 0 ? M_NOWAIT : how);
  if (t === 0) return false;
  macInitLabel(mb, t);
  m_tag_prepend(mb, m, t);
  return true;
}
