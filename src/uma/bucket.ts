/**
 * Buckets: arrays of free item handles that move whole between a CPU's cache
 * and its zone's shared list (uma_bucket). Every bucket has room for
 * BUCKET_MAX entries; a zone's current bucket size is a logical cap below it.
 *
 *   word 0  B_COUNT   entries in use (valid while the bucket is off a CPU)
 *   word 1  B_NEXT    next bucket on the zone's full list (byte offset)
 *   word 2  B_TAG     owner tag all its items carry, 0 if mixed (on the full list)
 *   word 4.. entries  item handles
 */
export const B_COUNT = 0;
export const B_NEXT = 1;
export const B_TAG = 2;
export const B_ENTRIES = 4;
export const BUCKET_MAX = 256;
export const BUCKET_BYTES = (B_ENTRIES + BUCKET_MAX) * 4;

/**
 * Initial bucket size by item size (bucket_select): small items get big
 * buckets, large items small ones, so a bucket caches a bounded amount of memory.
 */
export function bucketSelect(itemSize: number): number {
  if (itemSize <= 64) return 256;
  if (itemSize <= 128) return 128;
  if (itemSize <= 256) return 64;
  if (itemSize <= 512) return 32;
  if (itemSize <= 1024) return 16;
  if (itemSize <= 2048) return 16;
  if (itemSize <= 4096) return 8;
  return 4;
}
