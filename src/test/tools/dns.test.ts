// The DNS responder on crafted queries: header bits (QR, AA, RD/CD copied,
// no RA), the question echoed as sent, the A record with its TTL and a
// compression pointer to the question, EDNS(0) (an OPT back, BADVERS for
// version 1), and the right RCODE for everything else: NODATA for other
// types, REFUSED for other classes and zone transfers, NOTIMP for other
// opcodes, FORMERR for malformed messages; never an answer to a response.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { dnsAnswer, dnsParseAnswer, dnsQuery, EDNS_UDP_SIZE } from '../../apps/dns.js';

/** A query as dig sends it: RD, AD, one question, an OPT RR with a cookie. */
function digQuery(id: number, name: string, qtype = 1, qclass = 1, opts: { flags?: number; edns?: boolean; version?: number } = {}): Buffer {
  const labels = name.split('.').filter((l) => l.length > 0);
  const qn = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(opts.flags ?? 0x0120, 2); // RD + AD, as dig sets them
  h.writeUInt16BE(1, 4);
  const edns = opts.edns ?? true;
  h.writeUInt16BE(edns ? 1 : 0, 10);
  const qt = Buffer.alloc(4);
  qt.writeUInt16BE(qtype, 0);
  qt.writeUInt16BE(qclass, 2);
  const parts = [h, qn, qt];
  if (edns) {
    const opt = Buffer.alloc(11 + 12);
    opt[0] = 0;
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(1232, 3);
    opt[6] = opts.version ?? 0;
    opt.writeUInt16BE(0x8000, 7); // DO
    opt.writeUInt16BE(12, 9);
    opt.writeUInt16BE(10, 11); // COOKIE
    opt.writeUInt16BE(8, 13);
    opt.fill(0xab, 15);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

const flags = (r: Buffer) => r.readUInt16BE(2);
const rcode = (r: Buffer) => flags(r) & 0xf;
const counts = (r: Buffer) => [r.readUInt16BE(4), r.readUInt16BE(6), r.readUInt16BE(8), r.readUInt16BE(10)];

test('an A query in class IN: NOERROR, QR AA RD, no RA, question echoed, A record with TTL and a pointer', () => {
  const q = digQuery(0xbeef, 'Host7.Example.TEST');
  const r = dnsAnswer(q)!;
  assert.equal(r.readUInt16BE(0), 0xbeef);
  assert.equal(flags(r), 0x8000 | 0x0400 | 0x0100, 'QR, AA, RD; RA, AD, TC clear; NOERROR');
  assert.deepEqual(counts(r), [1, 1, 0, 1]);
  const qEnd = 12 + 'Host7.Example.TEST'.length + 2 + 4;
  assert.deepEqual(r.subarray(12, qEnd), q.subarray(12, qEnd), 'question echoed byte for byte (case kept)');
  const a = r.subarray(qEnd, qEnd + 16);
  assert.equal(a.readUInt16BE(0), 0xc00c, 'owner name: pointer to offset 12');
  assert.equal(a.readUInt16BE(2), 1, 'type A');
  assert.equal(a.readUInt16BE(4), 1, 'class IN');
  assert.equal(a.readUInt32BE(6), 60, 'TTL');
  assert.equal(a.readUInt16BE(10), 4);
  assert.equal(a[12], 10);
  assert.equal(a[13], 53);
  const opt = r.subarray(qEnd + 16);
  assert.equal(opt.length, 11);
  assert.deepEqual([opt[0], opt.readUInt16BE(1), opt.readUInt16BE(3), opt.readUInt32BE(5), opt.readUInt16BE(9)], [0, 41, EDNS_UDP_SIZE, 0, 0], 'OPT: root, size, version 0, DO clear, no options');
  // Names are case-insensitive: the same address either way.
  const lower = dnsAnswer(digQuery(1, 'host7.example.test'))!;
  assert.deepEqual(lower.subarray(qEnd + 12, qEnd + 16), a.subarray(12, 16));
  assert.deepEqual(dnsParseAnswer(r), { id: 0xbeef, addr: `10.53.${a[14]}.${a[15]}` });
});

test('without EDNS no OPT comes back; CD is copied, RD too (and only when set)', () => {
  const r = dnsAnswer(digQuery(2, 'a.b', 1, 1, { edns: false, flags: 0x0010 }))!;
  assert.equal(flags(r), 0x8000 | 0x0400 | 0x0010);
  assert.deepEqual(counts(r), [1, 1, 0, 0]);
  assert.equal(r.length, 12 + 5 + 4 + 16);
  // The query the demo's load generator sends.
  const d = dnsAnswer(dnsQuery(7, 'q7.slabnet.test'))!;
  assert.equal(rcode(d), 0);
  assert.notEqual(dnsParseAnswer(d), null);
});

test('ANY gets the A record; other types get NODATA (NOERROR, no answer)', () => {
  const any = dnsAnswer(digQuery(3, 'x.test', 255))!;
  assert.deepEqual([rcode(any), ...counts(any)], [0, 1, 1, 0, 1]);
  for (const t of [28 /* AAAA */, 15 /* MX */, 16 /* TXT */, 6 /* SOA */]) {
    const r = dnsAnswer(digQuery(3, 'x.test', t))!;
    assert.deepEqual([rcode(r), ...counts(r)], [0, 1, 0, 0, 1], `type ${t}`);
    assert.equal(flags(r) & 0x0080, 0, 'no RA');
  }
});

test('other classes and zone transfers: REFUSED with the question echoed', () => {
  for (const [t, c] of [
    [1, 3], // CH
    [16, 3],
    [1, 4], // HS
    [1, 255], // ANY class
    [252, 1], // AXFR
    [251, 1], // IXFR
  ]) {
    const r = dnsAnswer(digQuery(4, 'version.bind', t, c))!;
    assert.deepEqual([rcode(r), ...counts(r)], [5, 1, 0, 0, 1], `type ${t} class ${c}`);
    assert.equal(flags(r) & 0x0400, 0, 'not authoritative for what it refuses');
  }
});

test('other opcodes: NOTIMP, opcode copied', () => {
  for (const op of [1, 2, 4, 5]) {
    const r = dnsAnswer(digQuery(5, 'a.test', 1, 1, { flags: (op << 11) | 0x0100, edns: false }))!;
    assert.equal(rcode(r), 4, `opcode ${op}`);
    assert.equal((flags(r) >> 11) & 0xf, op);
    assert.equal(r.readUInt16BE(6), 0, 'no answer');
  }
});

test('EDNS version 1: BADVERS (extended RCODE 16: header 0, OPT high bits 1)', () => {
  const r = dnsAnswer(digQuery(6, 'a.test', 1, 1, { version: 1 }))!;
  assert.equal(rcode(r), 0);
  assert.equal(r.readUInt16BE(6), 0, 'no answer');
  const opt = r.subarray(r.length - 11);
  assert.equal(opt.readUInt16BE(1), 41);
  assert.equal(opt[5], 1, 'extended RCODE 16 >> 4');
});

test('malformed queries: FORMERR, header only, id kept', () => {
  const good = digQuery(0x4242, 'abc.test');
  const cases: [string, Buffer][] = [];
  const two = Buffer.from(good);
  two.writeUInt16BE(2, 4);
  cases.push(['QDCOUNT 2', two]);
  const zero = Buffer.from(good);
  zero.writeUInt16BE(0, 4);
  cases.push(['QDCOUNT 0', zero]);
  const label = Buffer.from(good);
  label[12] = 64;
  cases.push(['label type 01', label]);
  const ptr = Buffer.from(good);
  ptr[12] = 0xc0;
  cases.push(['pointer in the question', ptr]);
  cases.push(['truncated name', good.subarray(0, 15)]);
  cases.push(['truncated type', good.subarray(0, 12 + 10 + 2)]);
  cases.push(['truncated OPT', good.subarray(0, good.length - 3)]);
  cases.push(['trailing bytes', Buffer.concat([good, Buffer.from([0])])]);
  const twoOpt = Buffer.concat([good, good.subarray(good.length - 23)]);
  twoOpt.writeUInt16BE(2, 10);
  cases.push(['two OPT RRs', twoOpt]);
  cases.push(['type OPT asked', digQuery(0x4242, 'abc.test', 41)]);
  const long = Buffer.alloc(12 + 300);
  long.writeUInt16BE(1, 4);
  for (let o = 12; o + 64 < long.length; o += 64) long[o] = 63;
  cases.push(['name over 255 bytes', long]);
  for (const [what, q] of cases) {
    const r = dnsAnswer(q);
    assert.ok(r !== null, what);
    assert.equal(r.length, 12, what);
    assert.equal(r.readUInt16BE(0), q.readUInt16BE(0), what);
    assert.equal(rcode(r), 1, what);
    assert.equal(flags(r) & 0x8000, 0x8000, what);
    assert.deepEqual(counts(r), [0, 0, 0, 0], what);
  }
  assert.equal(dnsAnswer(good.subarray(0, 11)), null, 'no header: no answer');
  assert.equal(dnsAnswer(dnsAnswer(good)!), null, 'a response is never answered');
});

test('any bytes: never throws, answers only messages with a header that are not responses', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
      const r = dnsAnswer(b);
      if (b.length < 12 || (b[2] & 0x80) !== 0) return r === null;
      return r !== null && r.readUInt16BE(0) === ((b[0] << 8) | b[1]) && (r[2] & 0x80) !== 0 && (r[3] & 0x80) === 0;
    }),
  );
});

const hasDig = spawnSync('dig', ['-v']).status === 0;

function dig(port: number, ...args: string[]): Promise<string> {
  return new Promise((res) => {
    const p = spawn('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=2', ...args]);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', () => res(out));
  });
}

test('real dig against the responder (node:dgram on loopback): what it shows is true', { skip: hasDig ? false : 'dig is not installed (Debian bind9-dnsutils)' }, async () => {
  const s = createSocket('udp4');
  s.on('message', (m, r) => {
    const a = dnsAnswer(m);
    if (a !== null) s.send(a, r.port, r.address);
  });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const port = s.address().port;
  try {
    const a = await dig(port, 'Www.Slabnet.Test');
    assert.match(a, /status: NOERROR/);
    assert.match(a, /flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1/);
    assert.match(a, /recursion requested but not available/);
    assert.match(a, /EDNS: version: 0, flags:; udp: 1232/);
    assert.match(a, /^Www\.Slabnet\.Test\.\s+60\s+IN\s+A\s+10\.53\.\d+\.\d+$/m);
    assert.doesNotMatch(a, /WARNING: Message has|malformed|trailing garbage/i);
    const aaaa = await dig(port, 'www.slabnet.test', 'AAAA');
    assert.match(aaaa, /status: NOERROR/);
    assert.match(aaaa, /ANSWER: 0,/);
    const ch = await dig(port, 'version.bind', 'CH', 'TXT');
    assert.match(ch, /status: REFUSED/);
    assert.match(ch, /flags: qr rd;/);
    const v1 = await dig(port, '+edns=1', 'x.test');
    assert.match(v1, /BADVERS, retrying with EDNS version 0/);
    assert.match(v1, /status: NOERROR/);
    const plain = await dig(port, '+noedns', '+norecurse', 'x.test');
    assert.match(plain, /flags: qr aa; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0/);
    const notify = await dig(port, '+opcode=notify', 'x.test', 'SOA');
    assert.match(notify, /opcode: NOTIFY, status: NOTIMP/);
  } finally {
    s.close();
  }
});
