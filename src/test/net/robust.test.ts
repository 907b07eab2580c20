// Robustness: fragmentation/reassembly over an impaired link (loss,
// duplication, reordering, jitter), hand-made fragment sets with duplicates
// and overlaps, and fuzzed malformed frames. Every case must deliver only
// byte-exact datagrams, count and drop the rest, never throw, and leak nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { leakCheck } from '../helpers.js';
import { finish, pair, testNet, warm, sleep, type Net } from './harness.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';
import { createSocket } from '../../lib/dgram.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { M_DATA, M_LEN, M_PKTHDR, MT_DATA, PH_LEN } from '../../kern/mbuf/layout.js';
import type { Ifnet } from '../../net/if.js';
import { ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ethEmit } from '../../wire/ethernet.js';
import { IP_HLEN_MIN, IP_MF, IPPROTO_UDP, ipv4Emit } from '../../wire/ipv4.js';
import { UDP_HLEN, udpEmit } from '../../wire/udp.js';
import { ARPOP_REQUEST, arpEmit } from '../../wire/arp.js';
import { statObject, IP_DESC } from '../../netinet/stats.js';

const MAC_A = 0x0200_0000_000a;
const MAC_B = 0x0200_0000_000b;
const IP_A = 0x0a000001;
const IP_B = 0x0a000002;

/** Put a frame built in JS into a cluster and hand it to ifp as received. */
function inject(net: Net, ifp: Ifnet, frame: Uint8Array): void {
  const mb = net.mb;
  const m = frame.length <= 2048 ? mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR) : mb.m_getjcl(M_NOWAIT, MT_DATA, M_PKTHDR, 16384);
  assert.ok(m !== 0);
  mb.u8.set(frame, mb.i32[(m + M_DATA) >> 2]);
  mb.i32[(m + M_LEN) >> 2] = frame.length;
  mb.i32[(m + PH_LEN) >> 2] = frame.length;
  ifp.input(m);
}

/** A UDP datagram from A:4000 to B:port as IP payload bytes (UDP header + data), checksummed. */
function udpPayload(data: Uint8Array, port: number): Uint8Array {
  const u = new Uint8Array(UDP_HLEN + data.length);
  u.set(data, UDP_HLEN);
  udpEmit(u, 0, 4000, port, u.length, IP_A, IP_B, true);
  return u;
}

/** An Ethernet + IPv4 frame carrying payload[off, off+len) as a fragment. */
function fragFrame(payload: Uint8Array, off: number, len: number, id: number, more: boolean): Uint8Array {
  const f = new Uint8Array(ETH_HLEN + IP_HLEN_MIN + len);
  ethEmit(f, 0, MAC_B, MAC_A, ETHERTYPE_IPV4);
  ipv4Emit(f, ETH_HLEN, 0, IP_HLEN_MIN + len, id, (more ? IP_MF : 0) | (off >> 3), 64, IPPROTO_UDP, IP_A, IP_B, true);
  f.set(payload.subarray(off, off + len), ETH_HLEN + IP_HLEN_MIN);
  return f;
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Run a thread's passes and the socket layer's deferred wake-ups (microtasks) until quiet. */
async function settle(td: LocalThread, ms: number): Promise<void> {
  td.advance(ms);
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setImmediate(r));
    td.runUntilIdle();
  }
}

/** One run of 60 fragmented datagrams over an impaired link on the manual clock; the indices that arrived. */
async function lossyRun(net: Net, seed: number): Promise<{ got: Map<number, number>; lost: number; frames: number }> {
  const td = LocalThread.manual();
  const p = pair(net, { seed, loss: 0.03, duplicate: 0.1, reorder: 0.2, jitterMs: 2 }, { reass: { fragTtlMs: 300 }, thread: td });
  // ARP first on a clean start: resolution itself may need retries under loss.
  p.a.arp.set(p.ifa, IP_B, MAC_B);
  p.b.arp.set(p.ifb, IP_A, MAC_A);
  const srv = createSocket(p.b, { type: 'udp4', recvBufferSize: 8 << 20 });
  srv.bind(6000);
  const sent = new Map<number, Uint8Array>();
  const got = new Map<number, number>();
  srv.on('message', (m) => {
    const idx = m.readUInt32BE(0);
    const want = sent.get(idx);
    assert.ok(want !== undefined && Buffer.from(want).equals(m), `datagram ${idx} corrupted (${m.length} bytes)`);
    got.set(idx, (got.get(idx) ?? 0) + 1);
  });
  const cli = createSocket(p.a, 'udp4');
  const rnd = pattern(200, seed);
  for (let i = 0; i < 60; i++) {
    const n = 4 + ((rnd[i] * 97 + rnd[i + 60] * 13) % 12000);
    const d = pattern(n, seed * 1000 + i);
    new DataView(d.buffer).setUint32(0, i);
    sent.set(i, d);
    cli.send(d, 6000, '10.0.0.2');
    if (i % 10 === 9) await settle(td, 5);
  }
  p.link.ab.releaseHeld();
  await settle(td, 20);
  const { lost, sent: frames } = p.link.ab.stats;
  // Incomplete datagrams time out of the reassembly queue at fragttl, on the manual clock.
  await settle(td, 300 + 2 * p.b.cfg.timerMs);
  assert.equal(p.b.reass.pending, 0, 'every incomplete datagram timed out');
  assert.equal(p.b.reass.bytesHeld, 0);
  const ip = statObject(IP_DESC, p.b.stats.ip);
  assert.ok(ip.fragdropped > 0 || ip.fragtimeout > 0, 'impairment left no trace');
  srv.close();
  cli.close();
  await settle(td, 1);
  p.close();
  return { got, lost, frames };
}

test('fragmented datagrams over a lossy, duplicating, reordering link arrive intact or not at all (deterministic, tight bounds)', async () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const runs = new Map<number, string>();
  for (const seed of [1, 2, 3]) {
    const { got, lost, frames } = await lossyRun(net, seed);
    // A lost frame destroys at most one datagram; duplication and reordering destroy none.
    assert.ok(got.size >= 60 - lost, `seed ${seed}: ${got.size} of 60 arrived with ${lost} of ${frames} frames lost`);
    assert.ok(got.size <= 60);
    assert.ok(lost >= 1 && lost <= 20, `seed ${seed}: ${lost} of ${frames} frames lost at 3%`);
    runs.set(seed, [...got.keys()].sort((x, y) => x - y).join(','));
  }
  // The same seed replays exactly.
  const again = await lossyRun(net, 2);
  assert.equal([...again.got.keys()].sort((x, y) => x - y).join(','), runs.get(2));
  finish(net, done);
});

test('reassembly of shuffled fragments with duplicates and consistent overlaps delivers the exact datagram', async () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const p = pair(net);
  const srv = createSocket(p.b, { type: 'udp4', recvBufferSize: 8 << 20 });
  await new Promise<void>((r) => srv.bind(6001, r));
  const got: Buffer[] = [];
  srv.on('message', (m) => got.push(m));
  let id = 100;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 9000 }),
      fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 30 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 100 })), { maxLength: 4 }),
      fc.integer(),
      async (n, cuts, dupPicks, overlaps, shuffleSeed) => {
        const data = pattern(n, n + 7);
        const payload = udpPayload(data, 6001);
        const L = payload.length;
        // Fragment boundaries at multiples of 8.
        const pieces: [number, number][] = [];
        let off = 0;
        for (const c of cuts) {
          if (off >= L) break;
          const len = Math.min(c * 8, L - off);
          pieces.push([off, len]);
          off += len;
        }
        if (off < L) pieces.push([off, L - off]);
        // Duplicates, and overlapping pieces with the same bytes (re-sent with other boundaries).
        for (const d of dupPicks) pieces.push(pieces[d % pieces.length]);
        for (const [o, l8] of overlaps) {
          const start = (o % Math.max(1, Math.floor(L / 8))) * 8;
          const len = Math.min(l8 * 8, L - start);
          if (len > 0 && !(start === 0 && len === L)) pieces.push([start, len]);
        }
        // Shuffle deterministically.
        let s = shuffleSeed | 1;
        for (let i = pieces.length - 1; i > 0; i--) {
          s = (Math.imul(s, 1103515245) + 12345) | 0;
          const j = (s >>> 8) % (i + 1);
          [pieces[i], pieces[j]] = [pieces[j], pieces[i]];
        }
        const myId = id++ & 0xffff;
        const before = got.length;
        for (const [o, l] of pieces) inject(net, p.ifb, fragFrame(payload, o, l, myId, o + l < L));
        await sleep(0);
        await new Promise((r) => setImmediate(r));
        // Once, or again when the pieces left after completion form a whole set themselves.
        assert.ok(got.length >= before + 1, `datagram of ${n} bytes in ${pieces.length} pieces not delivered`);
        for (let k = before; k < got.length; k++) assert.ok(Buffer.from(data).equals(got[k]), 'reassembled bytes differ');
        // Stray duplicates that came after completion start a new queue: drop them.
        p.b.reass.flush();
      },
    ),
    { numRuns: 150 },
  );
  srv.close();
  p.close();
  finish(net, done);
});

test('fuzzed malformed frames are counted and dropped, never thrown, never leaked', async () => {
  const net = testNet();
  const done = leakCheck(net.uma);
  const p = pair(net, undefined, { reass: { fragTtlMs: 50 }, icmp: { icmplim: 0 } });
  await warm(p);
  const srv = createSocket(p.b, { type: 'udp4', recvBufferSize: 8 << 20 });
  await new Promise<void>((r) => srv.bind(6002, r));
  const good = pattern(300, 5);
  srv.on('message', (m) => assert.ok(Buffer.from(good).equals(m), 'a corrupted datagram was delivered'));
  const payload = udpPayload(good, 6002);
  const whole = fragFrame(payload, 0, payload.length, 1, false);
  const frag = fragFrame(payload, 0, 64, 2, true);
  const arp = new Uint8Array(ETH_HLEN + 28);
  ethEmit(arp, 0, 0xffff_ffff_ffff, MAC_A, ETHERTYPE_ARP);
  arpEmit(arp, ETH_HLEN, ARPOP_REQUEST, MAC_A, IP_A, 0, IP_B);
  const bases = [whole, frag, arp];
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 120 }),
        fc.tuple(fc.nat(2), fc.nat()).map(([b, cut]) => bases[b].subarray(0, cut % bases[b].length)),
        fc.tuple(fc.nat(2), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([b, at, x]) => {
          const f = Uint8Array.from(bases[b]);
          f[ETH_HLEN + (at % (f.length - ETH_HLEN))] ^= x;
          return f;
        }),
        fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 60 })).map(([junk]) => {
          const f = new Uint8Array(ETH_HLEN + junk.length);
          ethEmit(f, 0, MAC_B, MAC_A, ETHERTYPE_IPV4);
          f.set(junk, ETH_HLEN);
          f[ETH_HLEN] = 0x45;
          return f;
        }),
      ),
      (frame) => {
        inject(net, p.ifb, frame);
      },
    ),
    { numRuns: 3000 },
  );
  await p.link.idle();
  await sleep(120);
  p.b.slowtimo(performance.now() + 1000);
  const ip = statObject(IP_DESC, p.b.stats.ip);
  const drops = ip.badsum + ip.toosmall + ip.tooshort + ip.badhlen + ip.badlen + ip.badvers + ip.badoptions + ip.badfrag;
  assert.ok(drops > 100, `malformed IP packets were not counted: ${JSON.stringify(ip)}`);
  srv.close();
  await p.link.idle();
  p.close();
  finish(net, done);
});
