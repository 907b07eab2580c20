/**
 * TCP headers (RFC 9293) and options (RFC 9293 MSS, RFC 7323 window scale
 * and timestamps, RFC 2018 SACK), as zero-copy views and emitters on arena
 * bytes.
 *
 *   0 source port  2 destination port  4 sequence  8 acknowledgment
 *  12 data offset (high 4 bits, 32-bit words)  13 flags  14 window
 *  16 checksum over pseudo-header + header + data  18 urgent pointer
 *  20 options, then data
 *
 * Parsing fills a caller-owned TcpOpt (reused for every segment: no object
 * per segment) and returns a WIRE_* code; malformed input never throws.
 * Emission follows FreeBSD's tcp_addoptions: options in the order MSS,
 * window scale, SACK-permitted, timestamps, SACK blocks, each aligned with
 * NOPs the way FreeBSD aligns them, the end padded with EOLs.
 *
 * Allocation-free, lock-free, never sleep.
 */
import { read16, read32, write16, write32 } from './bytes.js';
import { cksumFinish } from './checksum.js';
import { WIRE_BAD_HLEN, WIRE_BAD_OPTIONS, WIRE_OK, WIRE_TRUNCATED } from './codes.js';

export const TCP_SPORT = 0;
export const TCP_DPORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK = 8;
export const TCP_OFF = 12;
export const TCP_FLAGS = 13;
export const TCP_WIN = 14;
export const TCP_SUM = 16;
export const TCP_URP = 18;
export const TCP_HLEN = 20;
/** Largest header: 15 words. */
export const TCP_MAXHLEN = 60;
export const TCP_MAXOLEN = TCP_MAXHLEN - TCP_HLEN;

// th_flags
export const TH_FIN = 0x01;
export const TH_SYN = 0x02;
export const TH_RST = 0x04;
export const TH_PUSH = 0x08;
export const TH_ACK = 0x10;
export const TH_URG = 0x20;
export const TH_ECE = 0x40;
export const TH_CWR = 0x80;
/** The AE (accurate ECN) bit: the low bit of byte 12 (the "NS" bit). */
export const TH_AE = 0x100;

// Option kinds and lengths
export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MAXSEG = 2;
export const TCPOLEN_MAXSEG = 4;
export const TCPOPT_WINDOW = 3;
export const TCPOLEN_WINDOW = 3;
export const TCPOPT_SACK_PERMITTED = 4;
export const TCPOLEN_SACK_PERMITTED = 2;
export const TCPOPT_SACK = 5;
export const TCPOLEN_SACKHDR = 2;
export const TCPOLEN_SACK = 8;
export const TCPOPT_TIMESTAMP = 8;
export const TCPOLEN_TIMESTAMP = 10;
/** Timestamps with the two leading NOPs FreeBSD puts before them (appendix A). */
export const TCPOLEN_TSTAMP_APPA = 12;
export const TCP_MAX_WINSHIFT = 14;
/** Most SACK blocks in one segment (4 fit without timestamps, 3 with). */
export const TCP_MAX_SACK = 4;

// to_flags (struct tcpopt)
export const TOF_MSS = 0x0001;
export const TOF_SCALE = 0x0002;
export const TOF_SACKPERM = 0x0004;
export const TOF_TS = 0x0010;
export const TOF_SACK = 0x0080;

/**
 * struct tcpopt: the options of one segment. Reused: parse() clears and
 * fills it; the SACK blocks stay in the packet and are read by index.
 */
export class TcpOpt {
  flags = 0;
  mss = 0;
  wscale = 0;
  tsval = 0;
  tsecr = 0;
  /** SACK blocks (start, end) pairs, up to TCP_MAX_SACK. */
  readonly sacks = new Uint32Array(2 * TCP_MAX_SACK);
  nsacks = 0;

  clear(): void {
    this.flags = 0;
    this.mss = 0;
    this.wscale = 0;
    this.tsval = 0;
    this.tsecr = 0;
    this.nsacks = 0;
  }
}

export function tcpSport(u8: Uint8Array, off: number): number {
  return read16(u8, off + TCP_SPORT);
}
export function tcpDport(u8: Uint8Array, off: number): number {
  return read16(u8, off + TCP_DPORT);
}
export function tcpSeq(u8: Uint8Array, off: number): number {
  return read32(u8, off + TCP_SEQ);
}
export function tcpAck(u8: Uint8Array, off: number): number {
  return read32(u8, off + TCP_ACK);
}
/** Header length in bytes (data offset x 4). */
export function tcpHlen(u8: Uint8Array, off: number): number {
  return (u8[off + TCP_OFF] >>> 4) << 2;
}
/** The nine flag bits (CWR ... FIN, and AE as 0x100). */
export function tcpFlags(u8: Uint8Array, off: number): number {
  return u8[off + TCP_FLAGS] | ((u8[off + TCP_OFF] & 1) << 8);
}
export function tcpWin(u8: Uint8Array, off: number): number {
  return read16(u8, off + TCP_WIN);
}
export function tcpUrp(u8: Uint8Array, off: number): number {
  return read16(u8, off + TCP_URP);
}

/**
 * Check the fixed header of a segment of `len` bytes at u8[off]: at least
 * 20 bytes, a data offset of at least 5 words that fits in the segment.
 * Returns a WIRE_* code. Checksum is checked by the caller over the chain.
 */
export function tcpParseHeader(u8: Uint8Array, off: number, len: number): number {
  if (len < TCP_HLEN) return WIRE_TRUNCATED;
  const hl = tcpHlen(u8, off);
  if (hl < TCP_HLEN || hl > len) return WIRE_BAD_HLEN;
  return WIRE_OK;
}

/**
 * tcp_dooptions: parse the `olen` option bytes at u8[off] into `to`.
 * `isSyn` admits the SYN-only options (MSS, window scale, SACK-permitted),
 * as FreeBSD ignores them on other segments. An option whose length byte is
 * below 2 or overruns the header ends parsing (FreeBSD stops there too) and
 * returns WIRE_BAD_OPTIONS; what was parsed before it stays in `to`.
 * Options with a wrong fixed length are skipped.
 */
export function tcpParseOptions(u8: Uint8Array, off: number, olen: number, isSyn: boolean, to: TcpOpt): number {
  to.clear();
  let i = off;
  const end = off + olen;
  while (i < end) {
    const kind = u8[i];
    if (kind === TCPOPT_EOL) break;
    if (kind === TCPOPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return WIRE_BAD_OPTIONS;
    const l = u8[i + 1];
    if (l < 2 || i + l > end) return WIRE_BAD_OPTIONS;
    switch (kind) {
      case TCPOPT_MAXSEG:
        if (l === TCPOLEN_MAXSEG && isSyn) {
          to.flags |= TOF_MSS;
          to.mss = read16(u8, i + 2);
        }
        break;
      case TCPOPT_WINDOW:
        if (l === TCPOLEN_WINDOW && isSyn) {
          to.flags |= TOF_SCALE;
          to.wscale = Math.min(u8[i + 2], TCP_MAX_WINSHIFT);
        }
        break;
      case TCPOPT_SACK_PERMITTED:
        if (l === TCPOLEN_SACK_PERMITTED && isSyn) to.flags |= TOF_SACKPERM;
        break;
      case TCPOPT_TIMESTAMP:
        if (l === TCPOLEN_TIMESTAMP) {
          to.flags |= TOF_TS;
          to.tsval = read32(u8, i + 2);
          to.tsecr = read32(u8, i + 6);
        }
        break;
      case TCPOPT_SACK:
        if (l > 2 && (l - 2) % TCPOLEN_SACK === 0 && !isSyn) {
          to.flags |= TOF_SACK;
          const n = Math.min((l - 2) / TCPOLEN_SACK, TCP_MAX_SACK);
          for (let k = 0; k < n; k++) {
            to.sacks[2 * k] = read32(u8, i + 2 + 8 * k);
            to.sacks[2 * k + 1] = read32(u8, i + 6 + 8 * k);
          }
          to.nsacks = n;
        }
        break;
      default:
        break;
    }
    i += l;
  }
  return WIRE_OK;
}

/**
 * tcp_addoptions: write the options of `to` selected by to.flags at u8[off]
 * in FreeBSD's order and alignment, SACK blocks taken from to.sacks
 * (to.nsacks of them, fewer if they do not fit). Returns the option length,
 * a multiple of 4, at most TCP_MAXOLEN.
 */
export function tcpEmitOptions(u8: Uint8Array, off: number, to: TcpOpt): number {
  let n = 0;
  const f = to.flags;
  if (f & TOF_MSS) {
    while (n % 4 !== 0) u8[off + n++] = TCPOPT_NOP;
    u8[off + n] = TCPOPT_MAXSEG;
    u8[off + n + 1] = TCPOLEN_MAXSEG;
    write16(u8, off + n + 2, to.mss);
    n += TCPOLEN_MAXSEG;
  }
  if (f & TOF_SCALE) {
    while (n === 0 || n % 2 !== 1) u8[off + n++] = TCPOPT_NOP;
    u8[off + n] = TCPOPT_WINDOW;
    u8[off + n + 1] = TCPOLEN_WINDOW;
    u8[off + n + 2] = to.wscale;
    n += TCPOLEN_WINDOW;
  }
  if (f & TOF_SACKPERM) {
    while (n % 2 !== 0) u8[off + n++] = TCPOPT_NOP;
    u8[off + n] = TCPOPT_SACK_PERMITTED;
    u8[off + n + 1] = TCPOLEN_SACK_PERMITTED;
    n += TCPOLEN_SACK_PERMITTED;
  }
  if (f & TOF_TS) {
    while (n === 0 || n % 4 !== 2) u8[off + n++] = TCPOPT_NOP;
    u8[off + n] = TCPOPT_TIMESTAMP;
    u8[off + n + 1] = TCPOLEN_TIMESTAMP;
    write32(u8, off + n + 2, to.tsval);
    write32(u8, off + n + 6, to.tsecr);
    n += TCPOLEN_TIMESTAMP;
  }
  if (f & TOF_SACK && to.nsacks > 0) {
    let pad = n;
    while (pad === 0 || pad % 4 !== 2) pad++;
    const room = Math.floor((TCP_MAXOLEN - pad - TCPOLEN_SACKHDR) / TCPOLEN_SACK);
    const k = Math.min(to.nsacks, room);
    if (k > 0) {
      while (n < pad) u8[off + n++] = TCPOPT_NOP;
      u8[off + n] = TCPOPT_SACK;
      u8[off + n + 1] = TCPOLEN_SACKHDR + k * TCPOLEN_SACK;
      n += TCPOLEN_SACKHDR;
      for (let j = 0; j < k; j++) {
        write32(u8, off + n, to.sacks[2 * j]);
        write32(u8, off + n + 4, to.sacks[2 * j + 1]);
        n += TCPOLEN_SACK;
      }
    }
  }
  while (n % 4 !== 0) u8[off + n++] = TCPOPT_EOL;
  return n;
}

/**
 * Write the fixed header at u8[off] with `hlen` bytes of header (options
 * already in place after byte 20). The checksum field is zeroed; the caller
 * sums the segment and stores it with tcpSetCksum.
 */
export function tcpEmit(u8: Uint8Array, off: number, sport: number, dport: number, seq: number, ack: number, hlen: number, flags: number, win: number, urp: number): void {
  write16(u8, off + TCP_SPORT, sport);
  write16(u8, off + TCP_DPORT, dport);
  write32(u8, off + TCP_SEQ, seq);
  write32(u8, off + TCP_ACK, ack);
  u8[off + TCP_OFF] = ((hlen >>> 2) << 4) | ((flags >>> 8) & 1);
  u8[off + TCP_FLAGS] = flags & 0xff;
  write16(u8, off + TCP_WIN, win);
  u8[off + TCP_SUM] = 0;
  u8[off + TCP_SUM + 1] = 0;
  write16(u8, off + TCP_URP, urp);
}

/** Store the checksum for a full one's complement sum (pseudo-header included). */
export function tcpSetCksum(u8: Uint8Array, off: number, sum: number): void {
  write16(u8, off + TCP_SUM, cksumFinish(sum));
}
