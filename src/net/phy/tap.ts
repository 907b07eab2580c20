/**
 * TAP interfaces: Ifnet drivers whose frames come from and go to a Linux TAP
 * device through the native addon (tap-addon.ts). Receive reads each frame
 * straight into a fresh cluster in the arena (no copy through JS); transmit
 * hands the mbuf chain to writev as (offset, length) pairs of the arena (no
 * copy either).
 *
 * The unit is a TapQueue: one fd of a multi-queue TAP (IFF_MULTI_QUEUE),
 * owned by one thread. Readiness comes from the addon's uv_poll handle on the
 * owning thread's event loop: an idle thread sleeps in its loop and a frame
 * wakes it. Each wake-up reads at most `batch` frames, then yields to the
 * loop (the poll is level triggered, so the rest come on the next turn, or
 * from the protocol thread's poll hook, see rxPoll()). Frames are read
 * several per call into the addon (readBatch: one N-API crossing for up to
 * a slot array's worth), and what the stack sends while a receive pass
 * delivers (ACKs, replies) leaves in one writeBatch at the end of the pass.
 *
 * Offloads (the default, `offload: false` turns them off): the device is
 * opened with IFF_VNET_HDR and TUNSETOFFLOAD(CSUM | TSO4), so every frame
 * carries a struct virtio_net_hdr. Linux then hands over TCP segments of up
 * to 64 KiB (GSO) with checksums it never computed (NEEDS_CSUM: the data
 * came from its own memory): such a frame is read into one mbuf chain (a
 * cluster and 16 KiB jumbo clusters), marked CSUM_L4_CALC | CSUM_L4_VALID so
 * TCP/UDP skip their check, and TCP takes it as one large segment (LRO).
 * Outbound, a CSUM_TSO packet from TCP leaves as one GSO frame (gso_size =
 * tso_segsz) and Linux cuts it; CSUM_TCP / CSUM_UDP / CSUM_IP requests are
 * finished here or by Linux (NEEDS_CSUM with csum_start/offset). The
 * interface advertises RXCSUM, TXCSUM, TSO4 and LRO in if_capabilities and
 * enables RXCSUM (per frame: the marks of the frames Linux verified), TSO4 and LRO.
 *
 * Two drivers are built from it:
 *  - TapDriver: one thread owns every queue of the device (the single-thread
 *    stack: tests, tools); it receives on all of them and sends on queue 0.
 *  - TapQueueDriver: one queue per CPU of the MP machine (mpnet.ts): CPU i
 *    attaches queue i of the same device, receives what the kernel steers to
 *    that queue, hands each frame to `deliver` (which dispatches it to the
 *    CPU owning its flow) and transmits on its own queue.
 *
 * No lock anywhere: a queue is touched by its owning thread only; reads and
 * writes never block (the fds are non-blocking).
 */
import { M_NOWAIT } from '../../uma/flags.js';
import {
  CSUM_COALESCED,
  CSUM_IP,
  CSUM_L4_CALC,
  CSUM_L4_VALID,
  CSUM_TCP,
  CSUM_TSO,
  CSUM_UDP,
  M_DATA,
  M_LEN,
  M_NEXT,
  M_PKTHDR,
  MCLBYTES,
  MJUM16BYTES,
  MJUM9BYTES,
  MJUMPAGESIZE,
  MT_DATA,
  PH_CSUM_DATA,
  PH_CSUM_FLAGS,
  PH_LEN,
  PH_TSO_VTAG,
} from '../../kern/mbuf/layout.js';
import type { Mbufs } from '../../kern/mbuf/mbuf.js';
import { ETH_HLEN } from '../../wire/ethernet.js';
import { read16, write16 } from '../../wire/bytes.js';
import { cksumFinish, cksumFold, pseudoHeaderSum } from '../../wire/checksum.js';
import { ipv4SetCksum } from '../../wire/ipv4.js';
import { chainSum, pullup } from '../mchain.js';
import {
  EAGAIN,
  loadTapAddon,
  OPEN_VNET_HDR,
  TUN_F_CSUM,
  TUN_F_TSO4,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_LEN,
  VNET_WORDS,
  type TapAddon,
  type TapOpenResult,
  type TapPollHandle,
} from './tap-addon.js';
import {
  IFC_IERRORS,
  IFC_IQDROPS,
  IFC_OERRORS,
  IFCAP_LRO,
  IFCAP_RXCSUM,
  IFCAP_TSO4,
  IFCAP_TXCSUM,
  IFF_BROADCAST,
  IFF_UP,
  IP_MAXPACKET,
  Ifnet,
  type IfDriver,
} from '../if.js';

export interface TapOptions {
  /** Interface name (at most 15 bytes); "" lets the kernel pick tapN. */
  name?: string;
  /** Queues (fds) to open: IFF_MULTI_QUEUE. */
  queues?: number;
  /** Our MAC address (a locally administered one by default). */
  mac?: number;
  mtu?: number;
  /** Frames read per wake-up before yielding to the event loop. */
  batch?: number;
  /** IFF_VNET_HDR with checksum and TCPv4 segmentation offload (default true). */
  offload?: boolean;
}

/** Pieces of one frame (UIO_MAXIOV is per frame in the addon: 63 with the virtio header). */
const MAX_IOV = 63;
/** Receive slots (frames per readBatch call): fewer when each slot holds a 64 KiB GSO frame's clusters. */
const RX_SLOTS = 32;
const RX_SLOTS_GSO = 8;
/** Frames a receive pass may queue for one writeBatch. */
const TX_BATCH = 32;
const ETHERTYPE_IP = 0x0800;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const TH_CWR = 0x80;

// Per-queue counters (TapQueue.counters).
export const TQ_RXFRAMES = 0;
export const TQ_RXBYTES = 1;
export const TQ_RXERRORS = 2;
export const TQ_RXNOMEM = 3;
export const TQ_TXFRAMES = 4;
export const TQ_TXBYTES = 5;
export const TQ_TXERRORS = 6;
export const TQ_WAKEUPS = 7;
/** GSO frames read (Linux's up-to-64 KiB TCP segments) and written (our TSO packets). */
export const TQ_RXGSO = 8;
export const TQ_TXGSO = 9;
/** readBatch / writeBatch calls (frames / calls: the batching achieved). */
export const TQ_RXCALLS = 10;
export const TQ_TXCALLS = 11;
export const TQ_NAMES = ['rxframes', 'rxbytes', 'rxerrors', 'rxnomem', 'txframes', 'txbytes', 'txerrors', 'wakeups', 'rxgso', 'txgso', 'rxcalls', 'txcalls'] as const;

/** A random locally administered unicast MAC (02:00:5e:xx:xx:01). */
export function randomTapMac(): number {
  return 0x0200_5e00_0000 + (Math.floor(Math.random() * 0xffff) << 8) + 1;
}

/** The receive buffer size for an MTU: the smallest cluster that holds a whole frame. */
function rxBufferSize(mtu: number): number {
  const frame = mtu + ETH_HLEN;
  return frame <= MCLBYTES ? MCLBYTES : frame <= MJUMPAGESIZE ? MJUMPAGESIZE : frame <= MJUM9BYTES ? MJUM9BYTES : MJUM16BYTES;
}

/** What a queue needs to know of its device. */
export interface TapQueueConfig {
  mtu: number;
  batch: number;
  /** Frames carry a virtio_net_hdr. */
  vnet: boolean;
  /** TUN_F_* offloads the kernel accepted. */
  offloads: number;
}

/**
 * Open flags for TapOptions.offload, and the interface's capabilities once
 * the kernel answered: RXCSUM (marked per frame), TSO4 and LRO switched on
 * when Linux takes TSO4; TXCSUM advertised (the driver finishes CSUM_*
 * requests) but left off, so the stack computes its checksums and a
 * capture of what it sends stays checkable.
 */
function openFlags(o: { offload?: boolean }): number {
  return o.offload === false ? 0 : OPEN_VNET_HDR;
}

function setCaps(ifp: Ifnet, tap: TapOpenResult): void {
  if (!tap.vnetHdr || (tap.offloads & TUN_F_CSUM) === 0) return;
  ifp.capabilities = IFCAP_RXCSUM | IFCAP_TXCSUM;
  ifp.capenable = IFCAP_RXCSUM;
  if ((tap.offloads & TUN_F_TSO4) !== 0) {
    ifp.capabilities |= IFCAP_TSO4 | IFCAP_LRO;
    ifp.capenable |= IFCAP_TSO4 | IFCAP_LRO;
    ifp.hwTsomax = IP_MAXPACKET;
  }
}

/**
 * One queue (fd) of a TAP device, owned by the thread that created it.
 * `deliver` takes each received frame (an mbuf chain with a packet header;
 * the callee owns it). Counters are thread-local (read by the owner, or sent
 * out by a message); errors and drops also count on the interface (ifp).
 *
 * Receive buffers: `slots` frames of `per` pieces each (a cluster for the
 * first, 16 KiB jumbo clusters for the rest of a GSO frame), allocated
 * ahead and kept across calls: a frame takes the pieces it filled, the
 * rest wait for the next frame, and only taken pieces are allocated again.
 */
export class TapQueue {
  readonly counters = new Float64Array(TQ_NAMES.length);
  deliver: (m: number) => void;
  /** Set when the last receive pass stopped at the batch limit (more frames are likely queued). */
  private more = false;
  private poll: TapPollHandle | null = null;
  private closed = false;
  private readonly batch: number;
  private readonly vnet: boolean;
  private readonly rxSize: number;
  private readonly per: number;
  private readonly slots: number;
  /** Receive pieces (mbuf handles, 0: to allocate), their iov pairs and sizes, readBatch results. */
  private readonly bufs: Int32Array;
  private readonly rxIov: Int32Array;
  private readonly caps: Int32Array;
  private readonly rxOut: Int32Array;
  /** Frames waiting for the end of the receive pass (while `inRx`), with their iov pieces and headers. */
  private inRx = false;
  private readonly txq = new Int32Array(TX_BATCH);
  private txn = 0;
  private txPieces = 0;
  private readonly txIov = new Int32Array(2 * MAX_IOV * TX_BATCH);
  private readonly txCounts = new Int32Array(TX_BATCH);
  private readonly txHdrs = new Int32Array(VNET_WORDS * TX_BATCH);
  private readonly txLens = new Int32Array(TX_BATCH);

  constructor(
    private readonly mb: Mbufs,
    private readonly ifp: Ifnet,
    private readonly addon: TapAddon,
    readonly fd: number,
    readonly index: number,
    cfg: TapQueueConfig,
    deliver: (m: number) => void,
  ) {
    this.deliver = deliver;
    this.batch = cfg.batch;
    this.vnet = cfg.vnet;
    this.rxSize = rxBufferSize(cfg.mtu);
    const gso = cfg.vnet && (cfg.offloads & TUN_F_TSO4) !== 0;
    const maxFrame = Math.max(cfg.mtu + ETH_HLEN, gso ? ETH_HLEN + IP_MAXPACKET : 0);
    this.per = 1 + Math.ceil(Math.max(0, maxFrame - this.rxSize) / MJUM16BYTES);
    this.slots = Math.max(1, Math.min(cfg.batch, gso ? RX_SLOTS_GSO : RX_SLOTS));
    this.bufs = new Int32Array(this.slots * this.per);
    this.rxIov = new Int32Array(2 * this.slots * this.per);
    this.caps = new Int32Array(this.per).fill(MJUM16BYTES);
    this.caps[0] = this.rxSize;
    this.rxOut = new Int32Array(VNET_WORDS * this.slots);
  }

  /** Start watching the fd on this thread's event loop; `onWake` runs after each readiness pass. */
  start(onWake?: () => void): void {
    if (this.poll !== null || this.closed) return;
    this.poll = this.addon.pollStart(this.fd, () => {
      this.counters[TQ_WAKEUPS]++;
      this.rx();
      onWake?.();
    });
  }

  /**
   * Poll-hook form for a busy protocol thread (which does not return to
   * the event loop while it has work): read another batch only when the
   * last pass was cut by the batch limit. Returns frames read.
   */
  rxPoll(): number {
    return this.more ? this.rx() : 0;
  }

  /**
   * Allocate the missing receive pieces, slot by slot. Returns the slots
   * ready (every piece present): fewer than all when memory ran out.
   */
  private refill(): number {
    const mb = this.mb;
    const i32 = mb.i32;
    const per = this.per;
    for (let s = 0; s < this.slots; s++) {
      for (let j = 0; j < per; j++) {
        const k = s * per + j;
        if (this.bufs[k] !== 0) continue;
        const m = j === 0 ? (this.rxSize === MCLBYTES ? mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR) : mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, this.rxSize)) : mb.m_getjcl(M_NOWAIT, MT_DATA, 0, MJUM16BYTES);
        if (m === 0) return s;
        this.bufs[k] = m;
        this.rxIov[2 * k] = i32[(m + M_DATA) >> 2];
        this.rxIov[2 * k + 1] = this.caps[j];
      }
    }
    return this.slots;
  }

  /**
   * Read up to `batch` frames and deliver them; what the stack sends
   * meanwhile goes out in one batch at the end. Returns the frames read.
   * Never blocks, never throws for I/O errors (counted).
   */
  rx(): number {
    let total = 0;
    this.more = false;
    this.inRx = true;
    try {
      while (total < this.batch && !this.closed) {
        const ready = this.refill();
        if (ready === 0) {
          total += this.rxNoMem();
          break;
        }
        const want = Math.min(ready, this.batch - total);
        const k = this.addon.readBatch(this.fd, this.mb.u8, this.rxIov, this.per, want, this.rxOut, this.vnet);
        this.counters[TQ_RXCALLS]++;
        if (k <= 0) {
          if (k !== -EAGAIN && k !== 0) this.rxError();
          break;
        }
        for (let i = 0; i < k; i++) this.take(i);
        total += k;
        if (k < want) break;
      }
      if (total >= this.batch) this.more = true;
    } finally {
      this.inRx = false;
      this.flush();
    }
    return total;
  }

  private rxError(): void {
    this.counters[TQ_RXERRORS]++;
    this.ifp.counters[IFC_IERRORS]++;
  }

  /** Slot i was filled by readBatch: chain the pieces it used, mark what Linux vouched for, deliver. */
  private take(i: number): void {
    const i32 = this.mb.i32;
    const o = VNET_WORDS * i;
    const len = this.rxOut[o];
    if (len < ETH_HLEN || this.closed) {
      if (len < ETH_HLEN) this.rxError();
      return; // the pieces stay for the next frame
    }
    const base = i * this.per;
    const head = this.bufs[base];
    let prev = 0;
    let left = len;
    for (let j = 0; left > 0; j++) {
      const x = this.bufs[base + j];
      const n = Math.min(left, this.caps[j]);
      i32[(x + M_LEN) >> 2] = n;
      if (prev !== 0) i32[(prev + M_NEXT) >> 2] = x;
      this.bufs[base + j] = 0;
      prev = x;
      left -= n;
    }
    i32[(head + PH_LEN) >> 2] = len;
    if (this.vnet) this.rxMark(head, len, this.rxOut[o + 1], this.rxOut[o + 3]);
    this.counters[TQ_RXFRAMES]++;
    this.counters[TQ_RXBYTES] += len;
    this.deliver(head);
  }

  /**
   * The virtio header's word 1 (flags | gso_type << 8) as csum_flags: a
   * frame Linux left unchecksummed (NEEDS_CSUM, its own data) or checked
   * (DATA_VALID) needs no L4 check here; NEEDS_CSUM also asks whoever sends
   * it on to finish the checksum (CSUM_TCP / CSUM_UDP: forwarded out another
   * offloading TAP). A GSO frame is several segments in one (CSUM_COALESCED).
   * While the interface is captured, a NEEDS_CSUM frame gets its checksum
   * finished here (csum_start/offset, word 3), so the capture shows what a
   * wire would carry; otherwise nobody needs it.
   */
  private rxMark(m: number, len: number, w: number, where: number): void {
    const i32 = this.mb.i32;
    const finished = (w & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 && this.ifp.pcap !== null && this.rxFinishCsum(m, len, where & 0xffff, where >>> 16);
    let f = 0;
    if ((w & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) !== 0) {
      f = CSUM_L4_CALC | CSUM_L4_VALID;
      i32[(m + PH_CSUM_DATA) >> 2] = 0xffff;
    }
    // A checksum finished for the capture is complete: no request is left for the capture (or a
    // forwarding TAP) to finish again, which would sum over the finished field and spoil it.
    if ((w & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 && !finished) {
      const proto = this.mb.u8[i32[(m + M_DATA) >> 2] + ETH_HLEN + 9];
      f |= proto === IPPROTO_TCP ? CSUM_TCP : proto === IPPROTO_UDP ? CSUM_UDP : 0;
    }
    if (((w >> 8) & 0x7f) !== VIRTIO_NET_HDR_GSO_NONE) {
      f |= CSUM_COALESCED;
      this.counters[TQ_RXGSO]++;
    }
    i32[(m + PH_CSUM_FLAGS) >> 2] = f;
  }

  /** Fill in the checksum Linux left undone: the field (csum_start + csum_offset) holds the pseudo-header sum. True when done. */
  private rxFinishCsum(m: number, len: number, start: number, off: number): boolean {
    const i32 = this.mb.i32;
    if (start + off + 2 > i32[(m + M_LEN) >> 2] || start >= len) return false;
    const field = i32[(m + M_DATA) >> 2] + start + off;
    const v = cksumFinish(chainSum(this.mb, m, start, len - start, 0));
    write16(this.mb.u8, field, v === 0 && off === 6 ? 0xffff : v);
    return true;
  }

  /** Slow path: no buffers. Drop one frame from the kernel queue so the device makes progress. */
  private rxNoMem(): number {
    this.counters[TQ_RXNOMEM]++;
    this.ifp.counters[IFC_IQDROPS]++;
    const scratch = new Uint8Array(VIRTIO_NET_HDR_LEN + this.rxSize + (this.per - 1) * MJUM16BYTES);
    return this.addon.read(this.fd, scratch, 0, scratch.length) > 0 ? 1 : 0;
  }

  /**
   * Send one frame on this queue: its pieces straight from the arena (and,
   * with vnet, the virtio header its csum_flags call for). During a receive
   * pass the frame waits for the pass's one writeBatch; otherwise it goes at
   * once. Frees m. Returns false when the frame could not be queued (too
   * many pieces, closed); what the kernel refuses is counted by flush().
   */
  send(m: number): boolean {
    if (this.closed) {
      this.mb.m_freem(m);
      return false;
    }
    if (this.vnet) {
      m = this.txPrepare(m, this.txn);
      if (m === 0) {
        this.counters[TQ_TXERRORS]++;
        return false;
      }
    }
    const i32 = this.mb.i32;
    let n = 0;
    const at = this.txPieces;
    for (let x = m; x !== 0; x = i32[(x + M_NEXT) >> 2]) {
      const l = i32[(x + M_LEN) >> 2];
      if (l === 0) continue;
      if (n === MAX_IOV) {
        this.counters[TQ_TXERRORS]++;
        this.mb.m_freem(m);
        return false;
      }
      this.txIov[2 * (at + n)] = i32[(x + M_DATA) >> 2];
      this.txIov[2 * (at + n) + 1] = l;
      n++;
    }
    if (n === 0) {
      this.mb.m_freem(m);
      return true;
    }
    const t = this.txn++;
    this.txq[t] = m;
    this.txCounts[t] = n;
    this.txLens[t] = i32[(m + PH_LEN) >> 2];
    this.txPieces += n;
    if (!this.inRx || this.txn === TX_BATCH || this.txPieces + MAX_IOV > MAX_IOV * TX_BATCH) this.flush();
    return true;
  }

  /**
   * Write what is queued in one writeBatch and free it. Returns the frames
   * the kernel took; the refused ones count as errors (here and oerrors).
   */
  private flush(): number {
    const n = this.txn;
    if (n === 0) return 0;
    const ok = this.closed ? 0 : this.addon.writeBatch(this.fd, this.mb.u8, this.txIov, this.txCounts, n, this.txHdrs, this.vnet);
    this.counters[TQ_TXCALLS]++;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      bytes += this.txLens[i];
      this.mb.m_freem(this.txq[i]);
    }
    this.txn = 0;
    this.txPieces = 0;
    this.counters[TQ_TXFRAMES] += ok;
    this.counters[TQ_TXERRORS] += n - ok;
    this.ifp.counters[IFC_OERRORS] += n - ok;
    if (ok === n) this.counters[TQ_TXBYTES] += bytes;
    return ok;
  }

  /**
   * The virtio header of frame slot t from m's csum_flags: a CSUM_TSO
   * packet becomes a GSO frame (gso_size = tso_segsz) and every CSUM_TCP /
   * CSUM_UDP / CSUM_TSO request a NEEDS_CSUM (csum_start/offset; the field
   * gets the pseudo-header sum over the whole length, which is how Linux
   * wants it for segmentation as well); CSUM_IP is finished here (20
   * bytes). A frame with nothing asked goes with an empty header. May pull
   * the headers up into the first mbuf (a new head: returned; 0 when that
   * failed and m was freed).
   */
  private txPrepare(m: number, t: number): number {
    const mb = this.mb;
    const i32 = mb.i32;
    const h = VNET_WORDS * t;
    this.txHdrs[h] = 0;
    this.txHdrs[h + 1] = 0;
    this.txHdrs[h + 2] = 0;
    this.txHdrs[h + 3] = 0;
    const flags = i32[(m + PH_CSUM_FLAGS) >> 2] & (CSUM_IP | CSUM_TCP | CSUM_UDP | CSUM_TSO);
    if (flags === 0) return m;
    const need = ETH_HLEN + 20 + 20;
    if (i32[(m + M_LEN) >> 2] < need) {
      m = pullup(mb, m, Math.min(need, i32[(m + PH_LEN) >> 2]));
      if (m === 0) return 0;
    }
    const u8 = mb.u8;
    const d = i32[(m + M_DATA) >> 2];
    if (read16(u8, d + 12) !== ETHERTYPE_IP || i32[(m + M_LEN) >> 2] < ETH_HLEN + 20) return m;
    const ip = d + ETH_HLEN;
    const ihl = (u8[ip] & 0x0f) * 4;
    const proto = u8[ip + 9];
    const total = read16(u8, ip + 2);
    if ((flags & CSUM_IP) !== 0) ipv4SetCksum(u8, ip);
    if ((flags & (CSUM_TCP | CSUM_UDP | CSUM_TSO)) === 0 || (read16(u8, ip + 6) & 0x3fff) !== 0) return m;
    const l4 = ip + ihl;
    const l4len = total - ihl;
    const off = proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : -1;
    if (off < 0 || i32[(m + M_LEN) >> 2] < ETH_HLEN + ihl + off + 2) return m;
    write16(u8, l4 + off, cksumFold(pseudoHeaderSum(read32(u8, ip + 12), read32(u8, ip + 16), proto, l4len)));
    this.txHdrs[h + 1] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    this.txHdrs[h + 3] = (ETH_HLEN + ihl) | (off << 16);
    if ((flags & CSUM_TSO) !== 0 && proto === IPPROTO_TCP) {
      const thl = (u8[l4 + 12] >> 4) * 4;
      const segsz = i32[(m + PH_TSO_VTAG) >> 2] & 0xffff;
      if (segsz > 0 && l4len - thl > segsz) {
        const ecn = (u8[l4 + 13] & TH_CWR) !== 0 ? VIRTIO_NET_HDR_GSO_ECN : 0;
        this.txHdrs[h + 1] |= (VIRTIO_NET_HDR_GSO_TCPV4 | ecn) << 8;
        this.txHdrs[h + 2] = segsz | ((ETH_HLEN + ihl + thl) << 16);
        this.counters[TQ_TXGSO]++;
      }
    }
    return m;
  }

  /** Stop polling, free the receive buffers and close the fd (the device goes away with its last queue). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.more = false;
    this.flush();
    if (this.poll !== null) this.addon.pollStop(this.poll);
    this.poll = null;
    for (let k = 0; k < this.bufs.length; k++) {
      if (this.bufs[k] !== 0) this.mb.m_freem(this.bufs[k]);
      this.bufs[k] = 0;
    }
    this.addon.close(this.fd);
  }

  /** Counters as {name: value}. */
  stats(): Record<string, number> {
    const o: Record<string, number> = {};
    TQ_NAMES.forEach((n, i) => (o[n] = this.counters[i]));
    return o;
  }
}

function read32(u8: Uint8Array, off: number): number {
  return ((u8[off] << 24) | (u8[off + 1] << 16) | (u8[off + 2] << 8) | u8[off + 3]) >>> 0;
}

/**
 * Single-thread TAP driver: this thread owns every queue it opened, receives
 * on all of them (straight into ifp.input) and sends on the first.
 */
export class TapDriver implements IfDriver {
  readonly name: string;
  readonly fds: number[];
  readonly queues: TapQueue[];
  private closed = false;

  private constructor(
    private readonly mb: Mbufs,
    readonly ifp: Ifnet,
    name: string,
    queues: TapQueue[],
  ) {
    this.name = name;
    this.queues = queues;
    this.fds = queues.map((q) => q.fd);
  }

  /**
   * Create (or attach to) the TAP device and an Ifnet driven by it, and start
   * polling. Throws the addon's coded errors (ERR_SLABNET_TAP_PERM when not
   * root, ERR_SLABNET_TAP_NODEV without /dev/net/tun, ERR_SLABNET_TAP_ADDON
   * when the addon is not built).
   */
  static open(mb: Mbufs, opts: TapOptions = {}): TapDriver {
    const addon = loadTapAddon();
    const mtu = opts.mtu ?? 1500;
    const tap = addon.open(opts.name ?? '', opts.queues ?? 1, openFlags(opts));
    const ifp = new Ifnet(mb, tap.name, opts.mac ?? randomTapMac(), mtu, IFF_UP | IFF_BROADCAST);
    setCaps(ifp, tap);
    const cfg: TapQueueConfig = { mtu, batch: opts.batch ?? 64, vnet: tap.vnetHdr, offloads: tap.offloads };
    const input = (m: number): void => ifp.input(m);
    const queues = tap.fds.map((fd, i) => new TapQueue(mb, ifp, addon, fd, i, cfg, input));
    const d = new TapDriver(mb, ifp, tap.name, queues);
    ifp.driver = d;
    for (const q of queues) q.start();
    return d;
  }

  /** Send a frame on queue 0 (this thread's queue). Frees m. */
  output(ifp: Ifnet, m: number): void {
    if (this.closed) {
      this.mb.m_freem(m);
      return;
    }
    if (!this.queues[0].send(m)) ifp.counters[IFC_OERRORS]++;
  }

  /** Stop polling and close the device (the kernel interface goes away with the last fd). */
  detach(): void {
    if (this.closed) return;
    this.closed = true;
    for (const q of this.queues) q.close();
  }
}

/**
 * One CPU's queue of a multi-queue TAP shared by the machine's CPUs. CPU i
 * calls attach() with the device's name and gets queue i (the kernel numbers
 * queues in attach order). Received frames go to `deliver` (mpnet.ts
 * dispatches them to the CPU that owns the flow, by handle); transmit always
 * uses this CPU's own queue, which also teaches the kernel (tun's automq
 * flow table) to steer the flow's next frames to this queue.
 */
export class TapQueueDriver implements IfDriver {
  readonly name: string;
  readonly ifp: Ifnet;
  readonly queue: TapQueue;

  private constructor(ifp: Ifnet, name: string, queue: TapQueue) {
    this.ifp = ifp;
    this.name = name;
    this.queue = queue;
  }

  /**
   * Create the device (first caller, name "" lets the kernel choose) or
   * attach one more queue to it, and make this thread's Ifnet for it.
   * Polling starts with start(). Throws the addon's coded errors.
   */
  static attach(mb: Mbufs, opts: { name: string; index: number; mac: number; mtu?: number; batch?: number; offload?: boolean }, deliver: (m: number) => void): TapQueueDriver {
    const addon = loadTapAddon();
    const mtu = opts.mtu ?? 1500;
    const tap = addon.open(opts.name, 1, openFlags(opts));
    const ifp = new Ifnet(mb, tap.name, opts.mac, mtu, IFF_UP | IFF_BROADCAST);
    setCaps(ifp, tap);
    const q = new TapQueue(mb, ifp, addon, tap.fds[0], opts.index, { mtu, batch: opts.batch ?? 64, vnet: tap.vnetHdr, offloads: tap.offloads }, deliver);
    const d = new TapQueueDriver(ifp, tap.name, q);
    ifp.driver = d;
    return d;
  }

  /** Send on this CPU's queue. Frees m. */
  output(ifp: Ifnet, m: number): void {
    if (!this.queue.send(m)) ifp.counters[IFC_OERRORS]++;
  }

  /** Close this CPU's queue. */
  detach(): void {
    this.queue.close();
  }
}
