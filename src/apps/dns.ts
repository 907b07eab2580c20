/**
 * A small authoritative DNS responder (RFC 1035, RFC 6891 EDNS(0)) for the
 * demo and the benchmark: every name has one A record in class IN, whose
 * address 10.53.x.y is derived from the name (case-insensitively). It
 * answers what real resolvers and `dig` send, and tells the truth:
 *
 *   QUERY, class IN, type A or ANY   NOERROR, AA, the A record (TTL 60, its
 *                                    owner a compression pointer to the question)
 *   QUERY, class IN, another type    NOERROR with no answer (NODATA: the name
 *                                    exists, it has no record of that type)
 *   QUERY, type AXFR/IXFR            REFUSED (no zone transfers)
 *   QUERY, another class             REFUSED (we serve class IN only)
 *   another opcode                   NOTIMP
 *   malformed (QDCOUNT != 1, a bad or truncated name or section, trailing
 *   bytes, type OPT asked, two OPT RRs)   FORMERR, no question echoed
 *   EDNS version > 0                 BADVERS (extended RCODE 16)
 *
 * Responses copy the id, the opcode, RD and CD, set QR (and AA on NOERROR), never RA
 * (we do not recurse), and echo the question as sent. A query with an OPT
 * RR gets one back (our UDP payload size, version 0, no options). Messages
 * shorter than a header, and responses (QR set), get no answer (null).
 * Parsing is bounds-checked and never throws.
 */

const HDR = 12;
const T_A = 1;
const T_OPT = 41;
const T_IXFR = 251;
const T_AXFR = 252;
const T_ANY = 255;
const C_IN = 1;
const MAX_NAME = 255;
const TTL = 60;
/** The UDP payload size we advertise (the DNS flag day 2020 value). */
export const EDNS_UDP_SIZE = 1232;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;
/** Extended RCODE (RFC 6891): high 8 bits in the OPT TTL, low 4 in the header. */
export const RCODE_BADVERS = 16;

const F_QR = 0x8000;
const F_AA = 0x0400;
const F_RD = 0x0100;
const F_CD = 0x0010;
const OPCODE_MASK = 0x7800;

/** Encode a query for `name` (dot-separated labels of 1..63 bytes). */
export function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').filter((l) => l.length > 0);
  const qlen = labels.reduce((a, l) => a + 1 + Buffer.byteLength(l), 1);
  if (qlen > MAX_NAME || labels.some((l) => Buffer.byteLength(l) > 63)) throw new RangeError(`dns name too long: ${name}`);
  const b = Buffer.alloc(HDR + qlen + 4);
  b.writeUInt16BE(id & 0xffff, 0);
  b.writeUInt16BE(F_RD, 2);
  b.writeUInt16BE(1, 4); // QDCOUNT
  let o = HDR;
  for (const l of labels) {
    b[o++] = Buffer.byteLength(l);
    o += b.write(l, o);
  }
  b[o++] = 0;
  b.writeUInt16BE(T_A, o);
  b.writeUInt16BE(C_IN, o + 2);
  return b;
}

const u16 = (q: Uint8Array, o: number): number => (q[o] << 8) | q[o + 1];

/** End of the uncompressed question name at `o` (after its root label), or -1. */
function questionNameEnd(q: Uint8Array, o: number): number {
  for (let n = 0; ; ) {
    if (o >= q.length) return -1;
    const l = q[o];
    if (l === 0) return o + 1;
    if (l > 63) return -1; // a pointer (or a reserved label type): nothing earlier to point at
    n += l + 1;
    if (n > MAX_NAME) return -1;
    o += l + 1;
  }
}

/** End of a possibly compressed name at `o` (a pointer ends it), or -1. */
function rrNameEnd(q: Uint8Array, o: number): number {
  for (let n = 0; ; ) {
    if (o >= q.length) return -1;
    const l = q[o];
    if (l === 0) return o + 1;
    if ((l & 0xc0) === 0xc0) return o + 2 <= q.length ? o + 2 : -1;
    if (l > 63) return -1;
    n += l + 1;
    if (n > MAX_NAME) return -1;
    o += l + 1;
  }
}

/** Offset after the resource record at `o`, or -1 if it runs past the message. */
function rrEnd(q: Uint8Array, o: number): number {
  const n = rrNameEnd(q, o);
  if (n < 0 || n + 10 > q.length) return -1;
  const end = n + 10 + u16(q, n + 8);
  return end <= q.length ? end : -1;
}

/** The address of a name: FNV-1a of its labels, ASCII letters folded to lower case. */
function nameAddress(q: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    const c = q[i];
    h = Math.imul(h ^ (c >= 0x41 && c <= 0x5a ? c | 0x20 : c), 0x01000193);
  }
  return h & 0xffff;
}

/** What the query asked, once its sections parsed. */
interface Parsed {
  rcode: number;
  /** End of the question (0: do not echo one). */
  qEnd: number;
  /** An OPT RR was present (and well-formed). */
  edns: boolean;
  answer: boolean;
}

/** Check a query's sections and decide the response. */
function classify(q: Uint8Array): Parsed {
  const flags = u16(q, 2);
  const qd = u16(q, 4);
  const qEnd = qd === 1 ? ((e) => (e > 0 && e + 4 <= q.length ? e + 4 : -1))(questionNameEnd(q, HDR)) : -1;
  if ((flags & OPCODE_MASK) !== 0) return { rcode: RCODE_NOTIMP, qEnd: qEnd > 0 ? qEnd : 0, edns: false, answer: false };
  const formerr: Parsed = { rcode: RCODE_FORMERR, qEnd: 0, edns: false, answer: false };
  if (qEnd < 0) return formerr;
  let o = qEnd;
  for (let k = u16(q, 6) + u16(q, 8); k > 0; k--) {
    o = rrEnd(q, o);
    if (o < 0) return formerr;
  }
  let edns = false;
  let badvers = false;
  for (let k = u16(q, 10); k > 0; k--) {
    const n = rrNameEnd(q, o);
    const end = rrEnd(q, o);
    if (n < 0 || end < 0) return formerr;
    if (u16(q, n) === T_OPT) {
      if (edns || n !== o + 1) return formerr; // one OPT, owned by the root
      edns = true;
      badvers = q[n + 5] !== 0; // version: second byte of the TTL
    }
    o = end;
  }
  if (o !== q.length) return formerr;
  const qtype = u16(q, qEnd - 4);
  const qclass = u16(q, qEnd - 2);
  if (qtype === T_OPT) return formerr;
  if (badvers) return { rcode: RCODE_BADVERS, qEnd, edns, answer: false };
  if (qclass !== C_IN || qtype === T_AXFR || qtype === T_IXFR) return { rcode: RCODE_REFUSED, qEnd, edns, answer: false };
  return { rcode: RCODE_NOERROR, qEnd, edns, answer: qtype === T_A || qtype === T_ANY };
}

/**
 * The response to message q (see the table above), or null when q is shorter
 * than a header or is itself a response.
 */
export function dnsAnswer(q: Uint8Array): Buffer | null {
  if (q.length < HDR || (q[2] & 0x80) !== 0) return null;
  const p = classify(q);
  const r = Buffer.alloc(p.qEnd === 0 ? HDR : p.qEnd + (p.answer ? 16 : 0) + (p.edns ? 11 : 0));
  r[0] = q[0];
  r[1] = q[1];
  const flags = u16(q, 2);
  // AA only on answers from our data (NOERROR, NODATA included), as BIND does.
  r.writeUInt16BE(F_QR | (flags & (OPCODE_MASK | F_RD | F_CD)) | (p.rcode === RCODE_NOERROR ? F_AA : 0) | (p.rcode & 0xf), 2);
  if (p.qEnd === 0) return r;
  r.set(q.subarray(HDR, p.qEnd), HDR);
  r.writeUInt16BE(1, 4); // QDCOUNT
  let o = p.qEnd;
  if (p.answer) {
    r.writeUInt16BE(1, 6); // ANCOUNT
    r.writeUInt16BE(0xc000 | HDR, o); // owner: pointer to the question's name
    r.writeUInt16BE(T_A, o + 2);
    r.writeUInt16BE(C_IN, o + 4);
    r.writeUInt32BE(TTL, o + 6);
    r.writeUInt16BE(4, o + 10);
    const a = nameAddress(q, HDR, p.qEnd - 4);
    r[o + 12] = 10;
    r[o + 13] = 53;
    r[o + 14] = a >> 8;
    r[o + 15] = a & 0xff;
    o += 16;
  }
  if (p.edns) {
    r.writeUInt16BE(1, 10); // ARCOUNT
    r[o] = 0; // root
    r.writeUInt16BE(T_OPT, o + 1);
    r.writeUInt16BE(EDNS_UDP_SIZE, o + 3);
    r[o + 5] = p.rcode >> 4; // extended RCODE, version 0, DO clear
    r.writeUInt16BE(0, o + 9);
  }
  return r;
}

/** The id and address of an answer, or null if it is not one. */
export function dnsParseAnswer(r: Uint8Array): { id: number; addr: string } | null {
  if (r.length < HDR + 5 + 16 || (r[2] & 0x80) === 0 || (r[3] & 0xf) !== RCODE_NOERROR || u16(r, 4) !== 1 || u16(r, 6) !== 1) return null;
  const n = questionNameEnd(r, HDR);
  if (n < 0 || r.length < n + 4 + 16) return null;
  const a = n + 4 + 12;
  return { id: u16(r, 0), addr: `${r[a]}.${r[a + 1]}.${r[a + 2]}.${r[a + 3]}` };
}
