/**
 * TCP timers and edge cases on a manual clock: SYN retransmission backoff
 * (rexmit_initial, rexmit_slop), keepalive probes and drop, persist probes
 * into a closed window, SYN cookies when the syncache is full, RFC 5961
 * challenge ACKs with their rate limit, and a fuzz property (random
 * segments never throw and never leak).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { A, B, tcpPair, type TcpPair, connectPair, tcpLeakCheck, closePair } from './tcplink.js';
import { TCPS_CLOSED, TCPS_ESTABLISHED, TCPS_SYN_SENT } from '../../netinet/tcp_fsm.js';
import { EINPROGRESS, ETIMEDOUT, EAGAIN } from '../../kern/errno.js';
import { SOL_SOCKET, SO_ERROR, SO_RCVBUF, IPPROTO_TCP, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, SO_KEEPALIVE } from '../../netinet/tcp_api.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { M_DATA, M_LEN, M_PKTHDR, MT_DATA, PH_LEN, PH_RCVIF } from '../../kern/mbuf/layout.js';
import { ipv4Emit, IPPROTO_TCP as P_TCP } from '../../wire/ipv4.js';
import { tcpEmit, tcpSetCksum, TH_ACK, TH_RST, TH_SYN } from '../../wire/tcp.js';
import { chainSum } from '../../net/mchain.js';
import { pseudoHeaderSum } from '../../wire/checksum.js';
import type { Stack } from '../../netinet/stack.js';

const out = new Int32Array(2);

/** Record the times (ms) of the TCP segments a's link sends. */
function recordTimes(p: TcpPair, flagsWanted: number): number[] {
  const times: number[] = [];
  p.ab.imp.filter = (m) => {
    const mb = p.mb;
    const d = mb.i32[(m + M_DATA) >> 2];
    // Ethernet 14 + IP 20: the TCP flags byte at 14 + 20 + 13.
    if (mb.u8[d + 14 + 9] === P_TCP && (mb.u8[d + 14 + 20 + 13] & flagsWanted) === flagsWanted) times.push(p.td.clock.now());
    return true; // drop everything: the peer never answers
  };
  return times;
}

test('tcp: SYN retransmission follows rexmit_initial with backoff and slop; keepinit ends the attempt', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const times = recordTimes(p, TH_SYN);
  const t0 = p.td.clock.now();
  const c = sa.socket();
  assert.equal(sa.connect(c, B, 80), -EINPROGRESS);
  p.td.advance(20_000);
  const rel = times.map((t) => Math.round(t - t0));
  // 1 s, then 2 s + 200 ms slop, then 4 s + 200 ms, 8 s + 200 ms (FreeBSD's snd-syn tests).
  assert.deepEqual(rel.slice(0, 4), [0, 1000, 3200, 7400]);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_SYN_SENT);
  p.td.advance(60_000);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_CLOSED, 'net.inet.tcp.keepinit (75 s) gives up');
  sa.getsockopt(c, SOL_SOCKET, SO_ERROR, out);
  assert.equal(out[0], ETIMEDOUT);
  sa.close(c);
  p.close();
  done();
});

test('tcp: keepalive probes an idle connection and drops it after keepcnt unanswered probes', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  assert.equal(sa.setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, 1), 0);
  assert.equal(sa.setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, 10), 0);
  assert.equal(sa.setsockopt(c, IPPROTO_TCP, TCP_KEEPINTVL, 2), 0);
  assert.equal(sa.setsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, 3), 0);
  sa.getsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, out);
  assert.equal(out[0], 3);
  // While the peer answers, probes keep the connection.
  p.td.advance(30_000);
  assert.ok(p.a.tcp.stats[TCPS_STAT.keepprobe] >= 1, 'probes were sent');
  assert.equal(sa.info(c)!.tcpi_state, TCPS_ESTABLISHED);
  // Cut the link: 3 more probes 2 s apart, then the drop with ETIMEDOUT.
  p.ab.imp.filter = () => true;
  p.ba.imp.filter = () => true;
  p.td.advance(20_000);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_CLOSED);
  assert.equal(p.a.tcp.stats[TCPS_STAT.keepdrops], 1);
  sa.getsockopt(c, SOL_SOCKET, SO_ERROR, out);
  assert.equal(out[0], ETIMEDOUT);
  sa.close(c);
  p.b.tcp.sockets!.close(s);
  p.b.tcp.sockets!.close(l);
  p.close();
  done();
});

test('tcp: a closed receive window is probed by the persist timer and reopens', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const l = sb.socket();
  sb.bind(l, 0, 80);
  sb.listen(l, 8);
  assert.equal(sb.setsockopt(l, SOL_SOCKET, SO_RCVBUF, 4096), 0);
  const c = sa.socket();
  sa.connect(c, B, 80);
  p.td.advance(50);
  const s = sb.accept(l);
  assert.ok(s > 0);
  sb.getsockopt(s, SOL_SOCKET, SO_RCVBUF, out);
  const rcvbuf = out[0];
  const data = new Uint8Array(20_000).fill(7);
  let sent = 0;
  for (let i = 0; i < 10; i++) {
    const n = sa.write(c, data.subarray(sent));
    if (n > 0) sent += n;
    p.td.advance(50);
  }
  // The reader sleeps: the window closes at the buffer size.
  const probes0 = p.a.tcp.stats[TCPS_STAT.persisttimeo];
  p.td.advance(30_000);
  assert.ok(p.a.tcp.stats[TCPS_STAT.persisttimeo] > probes0, 'persist timer fired');
  assert.equal(sa.info(c)!.tcpi_state, TCPS_ESTABLISHED);
  const buf = new Uint8Array(65536);
  let got = 0;
  for (let i = 0; i < 200 && got < sent; i++) {
    const n = sb.read(s, buf);
    if (n > 0) got += n;
    p.td.advance(100);
    const k = sa.write(c, data.subarray(0, Math.max(0, Math.min(data.length, 20_000 - sent))));
    if (k > 0) sent += k;
  }
  assert.ok(got >= rcvbuf, `the reader got ${got} bytes after the window reopened`);
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(1000);
  p.close();
  done();
});

test('tcp: with the syncache full, SYN cookies still complete handshakes', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  p.b.tcp.cfg.syncache_cachelimit = 0;
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const l = sb.socket();
  sb.bind(l, 0, 80);
  sb.listen(l, 8);
  const c = sa.socket();
  sa.connect(c, B, 80);
  p.td.advance(50);
  assert.equal(p.b.tcp.stats[TCPS_STAT.sc_sendcookie], 1);
  assert.equal(p.b.tcp.stats[TCPS_STAT.sc_recvcookie], 1);
  const s = sb.accept(l);
  assert.ok(s > 0, 'the cookie made the connection');
  assert.equal(sb.info(s)!.tcpi_snd_mss, 1460, 'MSS from the cookie');
  assert.equal(sa.write(c, Buffer.from('via cookie')), 10);
  p.td.advance(50);
  const buf = new Uint8Array(64);
  assert.equal(sb.read(s, buf), 10);
  // Without cookies the same SYN is not answered.
  p.b.tcp.cfg.syncookies = 0;
  const c2 = sa.socket();
  sa.connect(c2, B, 80);
  p.td.advance(50);
  assert.equal(sb.accept(l), -EAGAIN);
  sa.close(c2);
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(1000);
  p.close();
  done();
});

/** Inject a raw TCP segment into stack st as if from peer:pport (a packetdrill-style probe). */
function inject(st: Stack, src: number, dst: number, sport: number, dport: number, seq: number, ack: number, flags: number, payload: Uint8Array, win = 65535, opts: Uint8Array = new Uint8Array(0)): void {
  const mb = st.mb;
  const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  const i32 = mb.i32;
  const h = i32[(m + M_DATA) >> 2] + 64;
  i32[(m + M_DATA) >> 2] = h;
  const olen = (opts.length + 3) & ~3;
  const thl = 20 + olen;
  const tlen = thl + payload.length;
  ipv4Emit(mb.u8, h, 0, 20 + tlen, 1, 0, 64, P_TCP, src, dst, true);
  tcpEmit(mb.u8, h + 20, sport, dport, seq >>> 0, ack >>> 0, thl, flags, win, 0);
  mb.u8.fill(0, h + 40, h + 40 + olen);
  mb.u8.set(opts, h + 40);
  mb.u8.set(payload, h + 20 + thl);
  i32[(m + M_LEN) >> 2] = 20 + tlen;
  i32[(m + PH_LEN) >> 2] = 20 + tlen;
  i32[(m + PH_RCVIF) >> 2] = st.ifs[0].index;
  tcpSetCksum(mb.u8, h + 20, chainSum(mb, m, 20, tlen, pseudoHeaderSum(src, dst, P_TCP, tlen)));
  st.ipDeliver(m);
}

test('tcp: RFC 5961: an in-window RST that is not exact draws a challenge ACK, rate limited by ack_war_cnt', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  const tp = [...p.a.tcp.all].find((x) => x.sockId === c)!;
  p.a.tcp.cfg.ack_war_cnt = 2;
  for (let i = 0; i < 5; i++) inject(p.a, B, A, 80, tp.lport, tp.rcv_nxt + 100 + i, 0, TH_RST, new Uint8Array(0));
  assert.equal(p.a.tcp.stats[TCPS_STAT.ack_war], 2, 'two challenge ACKs');
  assert.equal(p.a.tcp.stats[TCPS_STAT.ack_war_limited], 3, 'the rest suppressed');
  assert.equal(sa.info(c)!.tcpi_state, TCPS_ESTABLISHED, 'the connection survives');
  // The exact RST resets.
  inject(p.a, B, A, 80, tp.lport, tp.rcv_nxt, 0, TH_RST, new Uint8Array(0));
  assert.equal(sa.info(c)!.tcpi_state, TCPS_CLOSED);
  sa.getsockopt(c, SOL_SOCKET, SO_ERROR, out);
  assert.equal(out[0], 54);
  closePair(p, [c, s, l], 1000, done);
});

test('tcp: random segments to listeners and connections never throw and never leak (property)', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const [c, s, l] = connectPair(p);
  const tp = [...p.a.tcp.all].find((x) => x.sockId === c)!;
  const lport = tp.lport;
  const base = tp.rcv_nxt;
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          dport: fc.constantFrom(lport, 80, 81),
          seqOff: fc.integer({ min: -70000, max: 70000 }),
          ack: fc.integer({ min: 0, max: 0xffffffff }),
          flags: fc.integer({ min: 0, max: 255 }),
          len: fc.integer({ min: 0, max: 1400 }),
          win: fc.integer({ min: 0, max: 65535 }),
        }),
        { maxLength: 20 },
      ),
      (segs) => {
        for (const x of segs) inject(p.a, B, A, 80, x.dport, base + x.seqOff, x.ack, x.flags, new Uint8Array(x.len), x.win);
        p.td.advance(5);
      },
    ),
    { numRuns: 60, seed: 42 },
  );
  p.a.tcp.sockets!.close(c);
  p.b.tcp.sockets!.close(s);
  p.b.tcp.sockets!.close(l);
  p.td.advance(200_000);
  p.close();
  done();
});
void TH_ACK;

test('tcp: random in-window segments with SACK and timestamp options during a transfer: no throw, no leak, data still arrives (property)', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const [c, s, l] = connectPair(p);
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const tp = [...p.a.tcp.all].find((x) => x.sockId === c)!;
  const lport = tp.lport;
  const buf = new Uint8Array(65536);
  let got = 0;
  let sent = 0;
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          seqOff: fc.integer({ min: -3000, max: 70000 }),
          ackOff: fc.integer({ min: -70000, max: 70000 }),
          flags: fc.constantFrom(TH_ACK, TH_ACK | 0x08, TH_ACK | 0x01, TH_RST, TH_SYN, TH_ACK | TH_RST, 0),
          len: fc.integer({ min: 0, max: 1400 }),
          win: fc.integer({ min: 0, max: 65535 }),
          sack: fc.array(fc.tuple(fc.integer({ min: -5000, max: 70000 }), fc.integer({ min: 1, max: 5000 })), { maxLength: 3 }),
          ts: fc.option(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }))),
        }),
        { maxLength: 15 },
      ),
      (segs) => {
        const n = sa.write(c, new Uint8Array(8000));
        if (n > 0) sent += n;
        for (const x of segs) {
          const o: number[] = [];
          if (x.ts !== null) o.push(1, 1, 8, 10, ...be32(x.ts[0]), ...be32(x.ts[1]));
          if (x.sack.length > 0) {
            o.push(1, 1, 5, 2 + 8 * x.sack.length);
            for (const [a, len] of x.sack) o.push(...be32(tp.snd_una + a), ...be32(tp.snd_una + a + len));
          }
          inject(p.a, B, A, 80, lport, tp.rcv_nxt + x.seqOff, tp.snd_una + x.ackOff, x.flags, new Uint8Array(x.len), x.win, new Uint8Array(o));
        }
        p.td.advance(20);
        for (;;) {
          const k = sb.read(s, buf);
          if (k <= 0) break;
          got += k;
        }
      },
    ),
    { numRuns: 100, seed: 7 },
  );
  assert.ok(sent > 0);
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(300_000);
  p.close();
  done();
});

function be32(v: number): number[] {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}
