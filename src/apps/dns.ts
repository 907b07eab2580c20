/**
 * A tiny DNS-like request/response protocol for the demo and the benchmark:
 * a query is a DNS header (id, RD flag, one question) with one name and
 * type A; the answer repeats the question and adds one A record whose
 * address is derived from the name. Parsing is bounds-checked: anything
 * malformed gives null (the server counts and ignores it), never a throw.
 */

const HDR = 12;
const T_A = 1;
const C_IN = 1;
const MAX_NAME = 255;

/** Encode a query for `name` (dot-separated labels of 1..63 bytes). */
export function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').filter((l) => l.length > 0);
  const qlen = labels.reduce((a, l) => a + 1 + Buffer.byteLength(l), 1);
  if (qlen > MAX_NAME || labels.some((l) => Buffer.byteLength(l) > 63)) throw new RangeError(`dns name too long: ${name}`);
  const b = Buffer.alloc(HDR + qlen + 4);
  b.writeUInt16BE(id & 0xffff, 0);
  b.writeUInt16BE(0x0100, 2); // RD
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

/** Length of the question section starting at HDR, or -1 if malformed. */
function questionEnd(q: Uint8Array): number {
  let o = HDR;
  for (let n = 0; ; ) {
    if (o >= q.length) return -1;
    const l = q[o];
    if (l === 0) break;
    if (l > 63) return -1; // no compression in queries
    n += l + 1;
    if (n > MAX_NAME) return -1;
    o += l + 1;
  }
  o += 1 + 4;
  return o <= q.length ? o : -1;
}

/** The answer to query q, or null when q is not a well-formed one-question query. */
export function dnsAnswer(q: Uint8Array): Buffer | null {
  if (q.length < HDR + 5) return null;
  if ((q[2] & 0x80) !== 0) return null; // a response, not a query
  if (((q[4] << 8) | q[5]) !== 1) return null;
  const end = questionEnd(q);
  if (end < 0) return null;
  const r = Buffer.alloc(end + 16);
  r.set(q.subarray(0, end), 0);
  r.writeUInt16BE(0x8180, 2); // QR, RD, RA, NOERROR
  r.writeUInt16BE(1, 4);
  r.writeUInt16BE(1, 6); // ANCOUNT
  r.writeUInt16BE(0, 8);
  r.writeUInt16BE(0, 10);
  let h = 0x811c9dc5;
  for (let i = HDR; i < end - 4; i++) h = Math.imul(h ^ q[i], 0x01000193);
  let o = end;
  r.writeUInt16BE(0xc00c, o); // pointer to the question's name
  r.writeUInt16BE(T_A, o + 2);
  r.writeUInt16BE(C_IN, o + 4);
  r.writeUInt32BE(60, o + 6);
  r.writeUInt16BE(4, o + 10);
  o += 12;
  r[o] = 10;
  r[o + 1] = 53;
  r[o + 2] = (h >>> 8) & 0xff;
  r[o + 3] = h & 0xff;
  return r;
}

/** The id and address of an answer, or null if it is not one. */
export function dnsParseAnswer(r: Uint8Array): { id: number; addr: string } | null {
  if (r.length < HDR + 5 + 16 || (r[2] & 0x80) === 0 || ((r[6] << 8) | r[7]) !== 1) return null;
  const end = questionEnd(r);
  if (end < 0 || r.length < end + 16) return null;
  const a = end + 12;
  return { id: (r[0] << 8) | r[1], addr: `${r[a]}.${r[a + 1]}.${r[a + 2]}.${r[a + 3]}` };
}
