/**
 * TCP sequence number arithmetic (tcp_seq.h): 32-bit values kept as
 * unsigned JS numbers, compared modulo 2^32. Pure; no lock; never sleeps.
 */

/** a < b modulo 2^32. */
export function SEQ_LT(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function SEQ_LEQ(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
export function SEQ_GT(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}
export function SEQ_GEQ(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}
export function SEQ_MIN(a: number, b: number): number {
  return SEQ_LT(a, b) ? a : b;
}
export function SEQ_MAX(a: number, b: number): number {
  return SEQ_GT(a, b) ? a : b;
}
/** a + n as an unsigned sequence number. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
/** The signed distance a - b. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}
/** Timestamp comparison (PAWS): same arithmetic. */
export const TSTMP_LT = SEQ_LT;
export const TSTMP_GEQ = SEQ_GEQ;
