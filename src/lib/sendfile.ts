/**
 * sendfile(2) for the node:net layer (Socket.sendFile): a file's bytes are
 * read straight into mbuf clusters (fs.readv into views of the arena: no
 * JS copy between the file and the mbufs, as FreeBSD's sendfile maps pages
 * into mbufs), and the caller's headers go in front of the file's first
 * bytes in the same chain, so they share the first segment (FreeBSD's
 * vn_sendfile: the headers' m_uiotombuf chain is m_cat'ed before the first
 * file pages and both go in one pru_send). Trailers follow the file in a
 * chain of their own (FreeBSD writes them with a separate writev).
 *
 * Runs in the stack's thread (the caller's); the reads are libuv's, into
 * clusters nobody else holds until the chain is given to so_snd. Nothing
 * here sleeps; the file reads are awaited.
 */
import { read, readv } from 'node:fs';
import { promisify } from 'node:util';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN, M_NEXT, MT_DATA } from '../kern/mbuf/layout.js';
import { m_getm2, m_uiotombuf, M_TRAILINGSPACE } from '../kern/mbuf/ops.js';
import { M_NOWAIT } from '../uma/flags.js';

const readvP = promisify(readv);
const readP = promisify(read);

/** Most bytes one chain holds (one so_snd append): bounds the clusters held during a read. */
export const SENDFILE_CHUNK = 256 * 1024;

/** A chain ready for so_snd, or 0 when mbufs ran out. */
export interface SfChain {
  m: number;
  /** Bytes in the chain (headers + file bytes). */
  len: number;
  /** File bytes in it (fewer than asked at end of file). */
  fileBytes: number;
}

/**
 * Build one chain: `hdr` copied into the first clusters, then up to
 * `want` bytes of fd at `pos` read into the rest of them (one preadv into
 * views of the clusters' room). The chain is trimmed to what was read;
 * an empty one is freed (m 0). On a read error the chain is freed and the
 * error thrown. M_NOWAIT: m 0 with len -1 when mbufs are short.
 */
export async function fileChain(mb: Mbufs, hdr: Uint8Array, fd: number, pos: number, want: number): Promise<SfChain> {
  const total = hdr.length + want;
  const m = m_getm2(mb, 0, total, M_NOWAIT, MT_DATA, 0);
  if (m === 0) return { m: 0, len: -1, fileBytes: 0 };
  const i32 = mb.i32;
  // Headers first, filling the clusters from the front.
  let mm = m;
  let ho = 0;
  while (ho < hdr.length) {
    const room = M_TRAILINGSPACE(mb, mm);
    const k = Math.min(room, hdr.length - ho);
    mb.copier.copyIn(hdr, ho, k, i32[(mm + M_DATA) >> 2] + i32[(mm + M_LEN) >> 2], room);
    i32[(mm + M_LEN) >> 2] += k;
    ho += k;
    if (M_TRAILINGSPACE(mb, mm) === 0) mm = i32[(mm + M_NEXT) >> 2];
  }
  // The file's bytes go straight into the rest of the room.
  const views: Uint8Array[] = [];
  let left = want;
  for (let v = mm; v !== 0 && left > 0; v = i32[(v + M_NEXT) >> 2]) {
    const d = i32[(v + M_DATA) >> 2] + i32[(v + M_LEN) >> 2];
    const k = Math.min(M_TRAILINGSPACE(mb, v), left);
    if (k > 0) views.push(mb.u8.subarray(d, d + k));
    left -= k;
  }
  let got = 0;
  try {
    if (views.length === 1) got = (await readP(fd, views[0], 0, views[0].length, pos)).bytesRead;
    else if (views.length > 1) got = (await readvP(fd, views, pos)).bytesRead;
  } catch (e) {
    mb.m_freem(m);
    throw e;
  }
  // Lengths: each mbuf holds what was read into it; what is past the end of file goes.
  let rest = got;
  for (let v = mm; v !== 0; v = i32[(v + M_NEXT) >> 2]) {
    if (rest === 0) break;
    const k = Math.min(M_TRAILINGSPACE(mb, v), rest);
    i32[(v + M_LEN) >> 2] += k;
    rest -= k;
  }
  trimEmpty(mb, m);
  const len = hdr.length + got;
  if (len === 0) {
    mb.m_freem(m);
    return { m: 0, len: 0, fileBytes: 0 };
  }
  return { m, len, fileBytes: got };
}

/** Free the empty mbufs at the end of chain m (m itself stays). */
function trimEmpty(mb: Mbufs, m: number): void {
  const i32 = mb.i32;
  let last = m;
  for (let v = i32[(m + M_NEXT) >> 2]; v !== 0; v = i32[(v + M_NEXT) >> 2]) if (i32[(v + M_LEN) >> 2] > 0) last = v;
  const tail = i32[(last + M_NEXT) >> 2];
  i32[(last + M_NEXT) >> 2] = 0;
  if (tail !== 0) mb.m_freem(tail);
}

/** The trailers' chain (m_uiotombuf of the iovec), 0 when mbufs are short. */
export function bytesChain(mb: Mbufs, iov: readonly Uint8Array[]): number {
  return m_uiotombuf(mb, iov, M_NOWAIT, 0, 0, 0);
}
