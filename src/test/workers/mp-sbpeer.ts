/**
 * One side of the cross-CPU sockbuf test: the producer appends chains of
 * random shapes cut from a shared byte pattern; the consumer reads with
 * random read sizes and compares every byte with the pattern. Both check the
 * cc bounds they are promised.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { SockBufs } from '../../kern/socket/sockbuf.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { MT_DATA, M_DATA, M_LEN, M_NEXT, MLEN, MCLBYTES } from '../../kern/mbuf/layout.js';

interface Data {
  sab: SharedArrayBuffer;
  sb: number;
  role: 'producer' | 'consumer';
  total: number;
  seed: number;
  pattern: Uint8Array;
  maxChain: number;
  /** Batch mode: the producer stages random runs and publishes each once (sbstage/sbpublish); the consumer mixes sbtakev and sbread. */
  batch?: boolean;
}
const wd = workerData as Data;
const arena = Arena.attach(wd.sab);
arena.registerCpu();
const uma = Uma.attach(arena);
const mb = Mbufs.attach(uma);
const sbs = new SockBufs(mb);
const i32 = arena.i32;
const u8 = arena.u8;
const P = wd.pattern;
const PL = P.length;
let seed = wd.seed >>> 0;
const rnd = (n: number): number => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed % n;
};
const sb = wd.sb;
const hiwat = sbs.hiwat(sb);
let violations = 0;
let chains = 0;

/** A chain of `len` bytes of the pattern from stream position `pos`, in random mbuf shapes. */
function makeChain(pos: number, len: number): number {
  let head = 0;
  let tail = 0;
  let left = len;
  while (left > 0) {
    const cl = rnd(3) !== 0;
    const m = cl ? mb.m_getcl(M_NOWAIT, MT_DATA, 0) : mb.m_get(M_NOWAIT, MT_DATA);
    if (m === 0) throw new Error('out of mbufs');
    const room = cl ? MCLBYTES : MLEN;
    const k = Math.min(left, 1 + rnd(room));
    const d = i32[(m + M_DATA) >> 2];
    let p = pos % PL;
    let done = 0;
    while (done < k) {
      const n = Math.min(k - done, PL - p);
      u8.set(P.subarray(p, p + n), d + done);
      done += n;
      p = 0;
    }
    i32[(m + M_LEN) >> 2] = k;
    if (head === 0) head = m;
    else i32[(tail + M_NEXT) >> 2] = m;
    tail = m;
    pos += k;
    left -= k;
  }
  return head;
}

/** Compare `len` bytes of the arena at `d` with the pattern at stream position `pos`. */
function checkBytes(d: number, len: number, pos: number): void {
  let p = pos % PL;
  let done = 0;
  while (done < len) {
    const n = Math.min(len - done, PL - p);
    if (Buffer.compare(u8.subarray(d + done, d + done + n), P.subarray(p, p + n)) !== 0) throw new Error(`data mismatch at stream byte ${pos + done}`);
    done += n;
    p = 0;
  }
}

if (wd.role === 'producer' && wd.batch === true) {
  let pos = 0;
  while (pos < wd.total) {
    // A run of up to 40 chains, each staged only while sbspace (which counts staged bytes) has room.
    const run = 1 + rnd(40);
    let staged = 0;
    for (let k = 0; k < run && pos < wd.total; k++) {
      const len = Math.min(wd.total - pos, 1 + rnd(rnd(4) === 0 ? wd.maxChain : 3000));
      const space = sbs.sbspace(sb);
      if (space < 0 || space > hiwat) violations++;
      if (space < len) break;
      const m = makeChain(pos, len);
      if (!sbs.sbstage(sb, m, len)) {
        mb.m_freem(m);
        break;
      }
      staged++;
      chains++;
      pos += len;
    }
    // Staged slots are invisible until published: the reader's cc must not include them.
    sbs.sbpublish(sb);
    if (staged === 0) sbs.sbwaitWrite(sb, 1, 50);
  }
  sbs.sbmarkeof(sb);
} else if (wd.role === 'consumer' && wd.batch === true) {
  const buf = new Uint8Array(wd.maxChain * 2);
  const got = new Int32Array(16);
  const lens = new Int32Array(16);
  let pos = 0;
  for (;;) {
    const avail = sbs.sbavail(sb);
    if (avail < 0 || avail > hiwat + wd.maxChain) violations++;
    if (avail === 0) {
      if ((sbs.state(sb) & 1) !== 0 && sbs.sbavail(sb) === 0) break;
      sbs.sbwaitRead(sb, 50);
      continue;
    }
    if (rnd(2) === 0) {
      const k = sbs.sbtakev(sb, got, 1 + rnd(16), lens);
      if (k === 0) violations++; // cc promised bytes: a slot must be there
      for (let j = 0; j < k; j++) {
        let n = 0;
        for (let x = got[j]; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
          const len = i32[(x + M_LEN) >> 2];
          checkBytes(i32[(x + M_DATA) >> 2], len, pos + n);
          n += len;
        }
        if (n !== lens[j]) throw new Error(`sbtakev: slot said ${lens[j]} bytes, chain holds ${n}`);
        mb.m_freem(got[j]);
        pos += n;
        chains++;
      }
    } else {
      const want = Math.min(avail, 1 + rnd(buf.length));
      const n = sbs.sbread(sb, buf, 0, want);
      if (n !== want) violations++;
      let p = pos % PL;
      let done = 0;
      while (done < n) {
        const k = Math.min(n - done, PL - p);
        if (Buffer.compare(buf.subarray(done, done + k), P.subarray(p, p + k)) !== 0) throw new Error(`data mismatch at stream byte ${pos + done}`);
        done += k;
        p = 0;
      }
      pos += n;
    }
  }
  if (pos !== wd.total) throw new Error(`consumer read ${pos} bytes, producer wrote ${wd.total}`);
} else if (wd.role === 'producer') {
  let pos = 0;
  while (pos < wd.total) {
    const len = Math.min(wd.total - pos, 1 + rnd(rnd(4) === 0 ? wd.maxChain : 3000));
    for (;;) {
      const space = sbs.sbspace(sb);
      // Writer's view: cc is an upper bound, so space never overstates the room.
      if (space < 0 || space > hiwat) violations++;
      if (space >= len) break;
      sbs.sbwaitWrite(sb, len, 50);
    }
    const m = makeChain(pos, len);
    if (!sbs.sbappendstream(sb, m)) throw new Error('append refused with space available');
    chains++;
    pos += len;
  }
  sbs.sbmarkeof(sb);
} else {
  const buf = new Uint8Array(wd.maxChain * 2);
  let pos = 0;
  for (;;) {
    const avail = sbs.sbavail(sb);
    if (avail < 0 || avail > hiwat + wd.maxChain) violations++;
    if (avail === 0) {
      if ((sbs.state(sb) & 1) !== 0 && sbs.sbavail(sb) === 0) break;
      sbs.sbwaitRead(sb, 50);
      continue;
    }
    const want = Math.min(avail, 1 + rnd(buf.length));
    // The reader's cc is a lower bound: every promised byte must be there.
    const got = sbs.sbread(sb, buf, 0, want);
    if (got !== want) violations++;
    let p = pos % PL;
    let done = 0;
    while (done < got) {
      const n = Math.min(got - done, PL - p);
      if (Buffer.compare(buf.subarray(done, done + n), P.subarray(p, p + n)) !== 0) throw new Error(`data mismatch at stream byte ${pos + done}`);
      done += n;
      p = 0;
    }
    pos += got;
    chains++;
  }
  if (pos !== wd.total) throw new Error(`consumer read ${pos} bytes, producer wrote ${wd.total}`);
}
uma.flushCpuCaches();
parentPort!.postMessage({ violations, chains });
