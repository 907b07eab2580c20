/**
 * Allocation flags (malloc(9) M_* values) and zone creation flags (UMA_ZONE_*),
 * numbered as in FreeBSD so that code reads the same.
 */

/** Fail with null (0) instead of sleeping. */
export const M_NOWAIT = 0x0001;
/** Sleep until the allocation succeeds; never returns null. */
export const M_WAITOK = 0x0002;
/** Zero the item (before the ctor runs, so the ctor's work survives). */
export const M_ZERO = 0x0100;
/** Only from caches and free slab items: never take new pages. */
export const M_NOVM = 0x0200;
/** May dip into the keg's reserve (uma_zone_reserve). */
export const M_USE_RESERVE = 0x0400;

/** Zone flags. */
export const UMA_ZONE_ZINIT = 0x0002; // zero items when their slab is created
export const UMA_ZONE_OFFPAGE = 0x0008; // slab header kept off the page
export const UMA_ZONE_NOFREE = 0x0020; // slabs are never given back
export const UMA_ZONE_NOBUCKET = 0x0200; // no per-CPU caches: every call goes to the keg
export const UMA_ZONE_REFCNT = 0x0400; // a 32-bit counter per item, kept with the slab
export const UMA_ZONE_CONTIG = 0x0800; // slabs are runs of several pages (jumbo clusters)
export const UMA_ZONE_SECONDARY = 0x0200_0000; // set on zones made by zsecondCreate
export const UMA_ZFLAG_INTERNAL = 0x2000_0000; // UMA's own bucket and slab-header zones

/** uma_reclaim() requests. */
export const UMA_RECLAIM_TRIM = 1;
export const UMA_RECLAIM_DRAIN = 2;
export const UMA_RECLAIM_DRAIN_CPU = 3;

/** Value a debug-mode free fills items with, checked at the next allocation. */
export const TRASH_WORD = 0xdeadc0de | 0;
