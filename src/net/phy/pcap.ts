/**
 * Classic libpcap capture files (the format tcpdump -w writes and Wireshark
 * reads): a 24-byte global header, then per packet a 16-byte record header
 * (seconds, microseconds, captured length, original length) and the bytes.
 * We write little-endian with the microsecond magic and LINKTYPE_ETHERNET.
 *
 * Capturing copies the frame out of the arena into the writer's own buffer,
 * which is flushed to the file with synchronous writes when it fills or on
 * flush()/close(): a debugging tap, not the packet path. A writer belongs to
 * one thread (a CPU that captures opens its own file); it takes no lock and
 * its only sleep is the blocking file write.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { ArgumentError } from '../../kern/errors.js';

export const PCAP_MAGIC_USEC = 0xa1b2c3d4;
export const PCAP_MAGIC_NSEC = 0xa1b23c4d;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const PCAP_GLOBAL_HDR = 24;
export const PCAP_RECORD_HDR = 16;
const BUF_BYTES = 256 * 1024;
const wallClock = (): number => performance.timeOrigin + performance.now();

export interface PcapOptions {
  /** Bytes of each packet to keep (default 65535). */
  snaplen?: number;
  /** Link type of the records (default LINKTYPE_ETHERNET). */
  linktype?: number;
  /** Time of each record, ms since the epoch (default the wall clock; a manual-clock system passes its clock). */
  now?: () => number;
}

export class PcapWriter {
  readonly path: string;
  readonly snaplen: number;
  /** Records written so far. */
  packets = 0;
  private fd: number;
  private readonly buf = Buffer.alloc(BUF_BYTES);
  private used = 0;
  /** Open record: where its header sits in buf, bytes captured and still allowed. */
  private recHdr = -1;
  private recCaught = 0;
  private recOrig = 0;

  private readonly now: () => number;

  private constructor(path: string, fd: number, snaplen: number, linktype: number, now: () => number) {
    this.path = path;
    this.now = now;
    this.fd = fd;
    this.snaplen = snaplen;
    const b = this.buf;
    b.writeUInt32LE(PCAP_MAGIC_USEC, 0);
    b.writeUInt16LE(PCAP_VERSION_MAJOR, 4);
    b.writeUInt16LE(PCAP_VERSION_MINOR, 6);
    b.writeInt32LE(0, 8); // thiszone: timestamps are UTC
    b.writeUInt32LE(0, 12); // sigfigs
    b.writeUInt32LE(snaplen, 16);
    b.writeUInt32LE(linktype, 20);
    this.used = PCAP_GLOBAL_HDR;
  }

  /** Create (truncate) a capture file and write its global header. May block on the file system. */
  static open(path: string, opts: PcapOptions = {}): PcapWriter {
    const snaplen = opts.snaplen ?? 65535;
    if (!Number.isInteger(snaplen) || snaplen < 14 || snaplen > 262144) throw new ArgumentError(`pcap snaplen must be 14..262144, got ${snaplen}`);
    const w = new PcapWriter(path, openSync(path, 'w'), snaplen, opts.linktype ?? LINKTYPE_ETHERNET, opts.now ?? wallClock);
    w.flush();
    return w;
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  /** Capture one contiguous frame of `len` bytes at u8[off]. */
  write(u8: Uint8Array, off: number, len: number): void {
    this.begin(len);
    this.append(u8, off, len);
    this.end();
  }

  /**
   * Start a record for a frame of `origLen` bytes that arrives in pieces
   * (an mbuf chain): append() each piece in order, then end().
   */
  begin(origLen: number): void {
    if (this.fd < 0) return;
    if (this.recHdr >= 0) this.end();
    const caught = Math.min(origLen, this.snaplen);
    if (this.used + PCAP_RECORD_HDR + caught > BUF_BYTES) this.flush();
    const t = this.now();
    const sec = Math.floor(t / 1000);
    const b = this.buf;
    this.recHdr = this.used;
    b.writeUInt32LE(sec >>> 0, this.used);
    b.writeUInt32LE(Math.min(999999, Math.floor((t - sec * 1000) * 1000)), this.used + 4);
    b.writeUInt32LE(caught, this.used + 8);
    b.writeUInt32LE(origLen, this.used + 12);
    this.used += PCAP_RECORD_HDR;
    this.recCaught = 0;
    this.recOrig = caught;
  }

  /** Copy the next piece of the open record (bytes past the snap length are dropped). */
  append(u8: Uint8Array, off: number, len: number): void {
    if (this.recHdr < 0) return;
    const n = Math.min(len, this.recOrig - this.recCaught);
    if (n <= 0) return;
    this.buf.set(u8.subarray(off, off + n), this.used);
    this.used += n;
    this.recCaught += n;
  }

  /** Close the open record; if fewer bytes came than announced, the record says so. */
  end(): void {
    if (this.recHdr < 0) return;
    if (this.recCaught !== this.recOrig) {
      this.buf.writeUInt32LE(this.recCaught, this.recHdr + 8);
      if (this.buf.readUInt32LE(this.recHdr + 12) < this.recCaught) this.buf.writeUInt32LE(this.recCaught, this.recHdr + 12);
    }
    this.recHdr = -1;
    this.packets++;
  }

  /** Write buffered records to the file (blocking write). */
  flush(): void {
    if (this.fd < 0 || this.used === 0) return;
    const keepFrom = this.recHdr >= 0 ? this.recHdr : this.used;
    let done = 0;
    while (done < keepFrom) done += writeSync(this.fd, this.buf, done, keepFrom - done);
    // An open record stays in the buffer, moved to the front.
    this.buf.copy(this.buf, 0, keepFrom, this.used);
    this.used -= keepFrom;
    if (this.recHdr >= 0) this.recHdr = 0;
  }

  /** Flush and close the file; later writes are ignored. */
  close(): void {
    if (this.fd < 0) return;
    this.end();
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }
}

export interface PcapRecord {
  tsSec: number;
  tsUsec: number;
  origLen: number;
  data: Uint8Array;
}

/** Read a classic pcap file (either byte order, usec or nsec magic): for tests and tools. */
export function readPcap(path: string): { linktype: number; snaplen: number; records: PcapRecord[] } {
  const b = readFileSync(path);
  if (b.length < PCAP_GLOBAL_HDR) throw new ArgumentError(`${path}: too short for a pcap file`);
  let le: boolean;
  const m = b.readUInt32LE(0);
  if (m === PCAP_MAGIC_USEC || m === PCAP_MAGIC_NSEC) le = true;
  else if (b.readUInt32BE(0) === PCAP_MAGIC_USEC || b.readUInt32BE(0) === PCAP_MAGIC_NSEC) le = false;
  else throw new ArgumentError(`${path}: not a classic pcap file`);
  const r32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const records: PcapRecord[] = [];
  let o = PCAP_GLOBAL_HDR;
  while (o + PCAP_RECORD_HDR <= b.length) {
    const incl = r32(o + 8);
    if (o + PCAP_RECORD_HDR + incl > b.length) throw new ArgumentError(`${path}: record at ${o} runs past the end`);
    records.push({ tsSec: r32(o), tsUsec: r32(o + 4), origLen: r32(o + 12), data: new Uint8Array(b.subarray(o + 16, o + 16 + incl)) });
    o += PCAP_RECORD_HDR + incl;
  }
  return { linktype: r32(20), snaplen: r32(16), records };
}
