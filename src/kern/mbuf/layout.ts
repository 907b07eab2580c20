/**
 * The mbuf layout: where the header, the packet header and the external
 * storage descriptor live inside a 256-byte item of the `mbuf` zone.
 *
 * An mbuf is an integer handle: the byte offset of its item in the arena
 * (always 16-aligned, never 0, so 0 means NULL). Every field below is a byte
 * offset from the handle of a 32-bit little-endian integer, so a field is read
 * as `i32[(m + OFF) >> 2]`. Handles stored in fields (m_next, m_nextpkt, tag
 * lists) are arena offsets too; m_data is the absolute arena byte offset of
 * the first data byte (FreeBSD's m_data pointer).
 *
 * As in FreeBSD (sys/sys/mbuf.h), the item is
 *
 *   struct m_hdr   (MHSIZE bytes)         always
 *   union {
 *     struct {
 *       struct pkthdr          (PKTHDR_SIZE)  valid when M_PKTHDR
 *       union { struct m_ext;  m_pktdat[] }   m_ext valid when M_EXT
 *     };
 *     m_dat[]                               internal data without a pkthdr
 *   }
 *
 * so the external-storage descriptor sits at the same place whether or not the
 * mbuf carries a packet header (MPKTHSIZE), which lets m_move_pkthdr move a
 * header between clustered mbufs without moving the descriptor.
 *
 *   off  m_hdr                       off  pkthdr (M_PKTHDR)
 *   0    m_next     (handle)         24   rcvif      (interface index, 0 = none)
 *   4    m_nextpkt  (handle)         28   len        (packet length)
 *   8    m_data     (arena offset)   32   tags       (first m_tag, handle)
 *   12   m_len                       36   flowid
 *   16   m_flags    (M_*)            40   csum_flags
 *   20   m_type     (MT_*)           44   csum_data
 *                                    48   tso_segsz / ether_vtag (16 bits each)
 *                                    52   rsstype | l2hlen | l3hlen | l4hlen (8 bits each)
 *                                    56   rcv_tstmp (low 32 bits)  60 spare
 *   off  m_ext (M_EXT), inside m_pktdat
 *   64   ext_buf    (arena offset of the storage)
 *   68   ext_size
 *   72   ext_type   (EXT_*)
 *   76   ext_flags  (EXT_FLAG_*)
 *   80   ext_cnt    (arena byte offset of the reference counter in use)
 *   84   ext_free   (registered free routine id, EXT_EXTREF / user storage)
 *   88   ext_arg1   92 ext_arg2
 *   96   ext_count  (the embedded counter, EXT_FLAG_EMBREF)
 *
 * Reference counter placement (the seed's race): FreeBSD 5 kept cluster
 * counters at the end of the cluster slab (UMA_ZONE_REFCNT); later FreeBSD
 * embeds the counter in the first mbuf that attached the storage
 * (EXT_FLAG_EMBREF, the "mref"). We embed it: it works for every external type
 * (clusters, jumbo clusters, packet-zone items and user storage alike) with no
 * extra lookup on the free path, and the counter's mbuf stays allocated until
 * the last reference goes, so no thread can ever read a freed counter. See
 * refcount.ts.
 */

/** Size of an mbuf (MSIZE). */
export const MSIZE = 256;
/** Size of a standard cluster (MCLBYTES). */
export const MCLBYTES = 2048;
export const MCLSHIFT = 11;
/** Jumbo cluster sizes (MJUMPAGESIZE, MJUM9BYTES, MJUM16BYTES). */
export const MJUMPAGESIZE = 4096;
export const MJUM9BYTES = 9 * 1024;
export const MJUM16BYTES = 16 * 1024;

// ---- struct m_hdr ----
export const M_NEXT = 0;
export const M_NEXTPKT = 4;
export const M_DATA = 8;
export const M_LEN = 12;
export const M_FLAGS = 16;
export const M_TYPE = 20;
/** sizeof(struct m_hdr): where m_dat starts. */
export const MHSIZE = 24;

// ---- struct pkthdr ----
export const PH_RCVIF = 24;
export const PH_LEN = 28;
export const PH_TAGS = 32;
export const PH_FLOWID = 36;
export const PH_CSUM_FLAGS = 40;
export const PH_CSUM_DATA = 44;
/** tso_segsz in the low 16 bits, ether_vtag in the high 16 bits. */
export const PH_TSO_VTAG = 48;
/** rsstype, l2hlen, l3hlen, l4hlen: one byte each (byte offsets 52..55). */
export const PH_RSSTYPE = 52;
export const PH_L2HLEN = 53;
export const PH_L3HLEN = 54;
export const PH_L4HLEN = 55;
export const PH_RCV_TSTMP = 56;
export const PH_SPARE = 60;
export const PKTHDR_SIZE = 40;
/** Where m_pktdat (and m_ext) start: offsetof(struct mbuf, m_pktdat). */
export const MPKTHSIZE = MHSIZE + PKTHDR_SIZE;

// ---- struct m_ext ----
export const EXT_BUF = 64;
export const EXT_SIZE = 68;
export const EXT_TYPE_OFF = 72;
export const EXT_FLAGS_OFF = 76;
export const EXT_CNT = 80;
export const EXT_FREE = 84;
export const EXT_ARG1 = 88;
export const EXT_ARG2 = 92;
export const EXT_COUNT = 96;
export const M_EXT_END = 100;

/** Data bytes of an mbuf without packet header (MLEN = MSIZE - MHSIZE). */
export const MLEN = MSIZE - MHSIZE;
/** Data bytes of an mbuf with a packet header (MHLEN = MSIZE - MPKTHSIZE). */
export const MHLEN = MSIZE - MPKTHSIZE;
/** Smallest length worth a cluster (MINCLSIZE = MHLEN + 1). */
export const MINCLSIZE = MHLEN + 1;

// ---- m_flags (sys/sys/mbuf.h values) ----
export const M_EXT = 0x0000_0001;
export const M_PKTHDR = 0x0000_0002;
export const M_EOR = 0x0000_0004;
export const M_RDONLY = 0x0000_0008;
export const M_BCAST = 0x0000_0010;
export const M_MCAST = 0x0000_0020;
export const M_PROMISC = 0x0000_0040;
export const M_VLANTAG = 0x0000_0080;
export const M_NOFREE = 0x0000_0200;
export const M_TSTMP = 0x0000_0400;
export const M_TSTMP_HPREC = 0x0000_0800;
export const M_PROTO1 = 0x0000_1000;
export const M_PROTO2 = 0x0000_2000;
export const M_PROTO3 = 0x0000_4000;
export const M_PROTO4 = 0x0000_8000;
export const M_PROTO5 = 0x0001_0000;
export const M_PROTO6 = 0x0002_0000;
export const M_PROTO7 = 0x0004_0000;
export const M_PROTO8 = 0x0008_0000;
export const M_PROTO9 = 0x0010_0000;
export const M_PROTO10 = 0x0020_0000;
export const M_PROTO11 = 0x0040_0000;
export const M_PROTO12 = 0x0080_0000;
export const M_PROTOFLAGS = 0x00ff_f000;
/** Flags kept by m_move_pkthdr / m_dup_pkthdr (M_COPYFLAGS). */
export const M_COPYFLAGS = M_PKTHDR | M_EOR | M_RDONLY | M_BCAST | M_MCAST | M_PROMISC | M_VLANTAG | M_TSTMP | M_TSTMP_HPREC | M_PROTOFLAGS;
/** Flags that m_demote keeps by default. */
export const M_DEMOTEFLAGS = M_EXT | M_RDONLY | M_NOFREE;

// ---- m_type ----
export const MT_NOTMBUF = 0;
export const MT_DATA = 1;
export const MT_HEADER = 2;
export const MT_SONAME = 8;
export const MT_CONTROL = 14;
export const MT_EXTCONTROL = 15;
export const MT_OOBDATA = 16;
export const MT_NTYPES = 17;

// ---- ext_type ----
export const EXT_CLUSTER = 1;
export const EXT_SFBUF = 2;
export const EXT_JUMBOP = 3;
export const EXT_JUMBO9 = 4;
export const EXT_JUMBO16 = 5;
export const EXT_PACKET = 6;
export const EXT_MBUF = 7;
export const EXT_NET_DRV = 252;
export const EXT_MOD_TYPE = 253;
export const EXT_DISPOSABLE = 254;
export const EXT_EXTREF = 255;

// ---- ext_flags ----
/** The reference counter is this mbuf's own ext_count (it is the "mref"). */
export const EXT_FLAG_EMBREF = 0x0001;
/** The storage is never freed (ext_free not called). */
export const EXT_FLAG_NOFREE = 0x0010;

/** Int32 word index of field `off` of mbuf `m`. */
export function w(m: number, off: number): number {
  return (m + off) >> 2;
}

// ---- m_pkthdr.csum_flags (sys/sys/mbuf.h values) ----
//
// The one definition of the offload flags every layer shares: TCP/UDP/IP
// set the outbound requests (what the interface must still do, checked
// against its capabilities, if.ts IFCAP_*), drivers set the inbound results
// (what was verified before the stack saw the frame). csum_data
// (PH_CSUM_DATA) is the offset of the checksum field for the outbound
// requests (FreeBSD: offsetof(struct tcphdr, th_sum)) and 0xffff for a
// verified L4 checksum; tso_segsz (low 16 bits of PH_TSO_VTAG) is the MSS a
// CSUM_TSO packet is cut into; l2hlen/l3hlen/l4hlen (PH_L*HLEN) give the
// header lengths of a CSUM_TSO packet (a segmenter needs no parse).
/** Outbound: IPv4 header checksum still to compute. */
export const CSUM_IP = 0x0000_0001;
/** Outbound: UDP checksum over IPv4 still to compute (the pseudo-header sum is in th_sum). */
export const CSUM_IP_UDP = 0x0000_0002;
/** Outbound: TCP checksum over IPv4 still to compute (the pseudo-header sum is in th_sum). */
export const CSUM_IP_TCP = 0x0000_0004;
/** Outbound: TCP segmentation over IPv4 (a payload up to if_hw_tsomax, cut into tso_segsz pieces). */
export const CSUM_IP_TSO = 0x0000_0010;
export const CSUM_TCP = CSUM_IP_TCP;
export const CSUM_UDP = CSUM_IP_UDP;
export const CSUM_TSO = CSUM_IP_TSO;
export const CSUM_DELAY_DATA = CSUM_TCP | CSUM_UDP;
export const CSUM_DELAY_IP = CSUM_IP;
/** Inbound: the IP header checksum was computed (CSUM_IP_CHECKED) ... */
export const CSUM_L3_CALC = 0x0100_0000;
/** ... and was correct (CSUM_IP_VALID). */
export const CSUM_L3_VALID = 0x0200_0000;
/** Inbound: the L4 checksum was computed including the pseudo-header (CSUM_PSEUDO_HDR) ... */
export const CSUM_L4_CALC = 0x0400_0000;
/** ... and csum_data holds its result (0xffff when correct: CSUM_DATA_VALID). */
export const CSUM_L4_VALID = 0x0800_0000;
/** Inbound: several received segments were merged into this one (LRO). */
export const CSUM_COALESCED = 0x4000_0000;
export const CSUM_IP_CHECKED = CSUM_L3_CALC;
export const CSUM_IP_VALID = CSUM_L3_VALID;
export const CSUM_DATA_VALID = CSUM_L4_VALID;
export const CSUM_PSEUDO_HDR = CSUM_L4_CALC;
