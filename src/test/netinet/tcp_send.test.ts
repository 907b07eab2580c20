/**
 * TCP's sending side on a manual clock: fast retransmit and NewReno
 * recovery, the RTO and its backoff (rexmit_min + rexmit_slop), delayed
 * ACKs (delacktime), Nagle and TCP_NODELAY, the reassembly queue limit,
 * SO_LINGER {1, 0} resets, and Stack.close() with live connections (no
 * leak).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { A, B, tcpPair, type TcpPair, connectPair, tcpLeakCheck, closePair } from './tcplink.js';
import { TCPS_CLOSED, TCPS_ESTABLISHED } from '../../netinet/tcp_fsm.js';
import { ECONNRESET } from '../../kern/errno.js';
import { IPPROTO_TCP, SOL_SOCKET, SO_ERROR, SO_LINGER, TCP_NODELAY } from '../../netinet/tcp_api.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { M_DATA, M_LEN, M_NEXT, PH_LEN } from '../../kern/mbuf/layout.js';
import { TH_ACK, TH_FIN, TH_RST, TH_SYN } from '../../wire/tcp.js';
import { read32 } from '../../wire/bytes.js';

const out = new Int32Array(2);

interface SegInfo {
  t: number;
  flags: number;
  seq: number;
  len: number;
}

/** The TCP header fields of a frame (Ethernet 14 + IP 20 in the first mbuf, as our stack builds them). */
function segOf(p: TcpPair, m: number): SegInfo | null {
  const mb = p.mb;
  const d = mb.i32[(m + M_DATA) >> 2];
  if (mb.i32[(m + M_LEN) >> 2] < 54 || mb.u8[d + 23] !== 6) return null;
  const th = d + 34;
  const hl = (mb.u8[th + 12] >> 4) * 4;
  return { t: p.td.clock.now(), flags: mb.u8[th + 13], seq: read32(mb.u8, th + 4), len: mb.i32[(m + PH_LEN) >> 2] - 34 - hl };
}

function fill(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i * 7;
  return b;
}

function drain(p: TcpPair, id: number, so = p.b.tcp.sockets!): number {
  const buf = new Uint8Array(65536);
  let got = 0;
  for (;;) {
    const n = so.read(id, buf);
    if (n <= 0) return got;
    got += n;
  }
}

test('tcp: one lost segment is repaired by fast retransmit (three duplicate ACKs), not by the RTO', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  let n = 0;
  p.ab.imp.filter = (m) => {
    const g = segOf(p, m);
    return g !== null && g.len > 0 && ++n === 3; // the third data segment is lost
  };
  assert.equal(sa.write(c, fill(30_000)), 30_000);
  let got = 0;
  for (let i = 0; i < 200 && got < 30_000; i++) {
    p.td.advance(5);
    got += drain(p, s);
  }
  assert.equal(got, 30_000);
  const st = p.a.tcp.stats;
  assert.ok(st[TCPS_STAT.sndrexmitpack] >= 1, 'the lost segment was resent');
  assert.equal(st[TCPS_STAT.rexmttimeo], 0, 'without a retransmission timeout');
  assert.ok(p.b.tcp.stats[TCPS_STAT.rcvoopack] >= 1);
  closePair(p, [c, s, l], 500, done);
});

test('tcp: the RTO starts at rexmit_min + rexmit_slop on a fast path and backs off', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  const times: number[] = [];
  p.ab.imp.filter = (m) => {
    const g = segOf(p, m);
    if (g !== null && g.len > 0) times.push(g.t);
    return true;
  };
  sa.write(c, fill(100));
  p.td.advance(3000);
  const gaps = times.slice(1, 5).map((t, i) => Math.round(t - times[i]));
  // srtt ~2 ms: RTO = max(rexmit_min 30, srtt + 4 rttvar) * backoff + slop 200 (FreeBSD's TCPT_RANGESET).
  assert.deepEqual(gaps, [230, 260, 320, 440]);
  assert.ok(p.a.tcp.stats[TCPS_STAT.rexmttimeo] >= 4);
  sa.close(c);
  p.b.tcp.sockets!.close(s);
  p.b.tcp.sockets!.close(l);
  p.close();
  done();
});

test('tcp: a lone segment is ACKed after delacktime, every second full segment at once', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  const acks: SegInfo[] = [];
  p.ba.imp.filter = (m) => {
    const g = segOf(p, m);
    if (g !== null && g.len === 0 && g.flags === TH_ACK) acks.push(g);
    return false;
  };
  const t0 = p.td.clock.now();
  sa.write(c, fill(10));
  p.td.advance(100);
  assert.equal(acks.length, 1);
  // sent at t0, arrives at t0 + 1, ACKed 40 ms later (net.inet.tcp.delacktime).
  assert.equal(Math.round(acks[0].t - t0), 41);
  acks.length = 0;
  const t1 = p.td.clock.now();
  sa.write(c, fill(2 * 1448));
  p.td.advance(100);
  assert.ok(acks.length >= 1);
  assert.ok(acks[0].t - t1 < 10, 'the second full segment is ACKed without delay');
  drain(p, s);
  closePair(p, [c, s, l], 500, done);
});

test('tcp: Nagle holds a small segment while data is unacknowledged; TCP_NODELAY sends it', () => {
  const done = tcpLeakCheck();
  const p = tcpPair({ delayMs: 20 });
  const sa = p.a.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  p.td.advance(200);
  const sent: SegInfo[] = [];
  p.ab.imp.filter = (m) => {
    const g = segOf(p, m);
    if (g !== null && g.len > 0) sent.push(g);
    return false;
  };
  sa.write(c, fill(100));
  sa.write(c, fill(100));
  assert.equal(sent.length, 1, 'the second small write waits for the ACK (Nagle)');
  p.td.advance(200);
  assert.equal(sent.length, 2);
  sent.length = 0;
  assert.equal(sa.setsockopt(c, IPPROTO_TCP, TCP_NODELAY, 1), 0);
  sa.write(c, fill(100));
  sa.write(c, fill(100));
  assert.equal(sent.length, 2, 'TCP_NODELAY sends both at once');
  p.td.advance(200);
  drain(p, s);
  closePair(p, [c, s, l], 500, done);
});

/** Send 8 segments a -> b with reass.maxqueuelen = 2, losing the first sends that `lose` picks (by count); b's rcvreassfull after 5 ms, then everything must arrive. */
function reassLimited(lose: (n: number) => boolean): number {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  p.b.tcp.cfg.reass_maxqueuelen = 2;
  let n = 0;
  p.ab.imp.filter = (m) => {
    const g = segOf(p, m);
    return g !== null && g.len > 0 && lose(++n);
  };
  sa.write(c, fill(8 * 1448));
  p.td.advance(5);
  const full = p.b.tcp.stats[TCPS_STAT.rcvreassfull];
  let got = 0;
  for (let i = 0; i < 400 && got < 8 * 1448; i++) {
    p.td.advance(10);
    got += drain(p, s);
  }
  assert.equal(got, 8 * 1448, 'retransmission still delivers everything');
  closePair(p, [c, s, l], 500, done);
  return full;
}

test('tcp: the reassembly queue holds at most net.inet.tcp.reass.maxqueuelen runs of contiguous data (counted drops)', () => {
  // Every other segment lost: four separate runs for a queue of two.
  assert.ok(reassLimited((n) => n <= 8 && n % 2 === 1) >= 1, 'runs beyond the limit were dropped');
  // Only the first lost: the seven behind it join one run (FreeBSD's tcp_reass_append), nothing dropped.
  assert.equal(reassLimited((n) => n === 1), 0, 'contiguous segments share an entry');
});

test('tcp: close with SO_LINGER {1, 0} resets the connection; the peer reads ECONNRESET', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  const seen: number[] = [];
  p.ab.imp.filter = (m) => {
    const g = segOf(p, m);
    if (g !== null) seen.push(g.flags);
    return false;
  };
  assert.equal(sa.setsockopt(c, SOL_SOCKET, SO_LINGER, 1, 0), 0);
  sa.getsockopt(c, SOL_SOCKET, SO_LINGER, out);
  assert.deepEqual([out[0], out[1]], [1, 0]);
  assert.equal(sa.close(c), 0);
  assert.ok(seen.some((f) => (f & TH_RST) !== 0) && !seen.some((f) => (f & TH_FIN) !== 0), 'a RST, no FIN');
  p.td.advance(10);
  assert.equal(sb.info(s)!.tcpi_state, TCPS_CLOSED);
  assert.equal(sb.read(s, new Uint8Array(10)), -ECONNRESET);
  sb.close(s);
  sb.close(l);
  p.close();
  done();
});

test('tcp: Stack.close() with connections in every state frees every mbuf', () => {
  const done = tcpLeakCheck();
  const p = tcpPair({ loss: 0.1, seed: 3 });
  const sa = p.a.tcp.sockets!;
  const [c, s] = connectPair(p);
  sa.write(c, fill(60_000));
  p.b.tcp.sockets!.write(s, fill(30_000));
  const c2 = sa.socket();
  sa.connect(c2, B, 81); // refused or retrying
  p.td.advance(7);
  assert.ok(p.a.tcp.all.size >= 1);
  p.close();
  assert.equal(p.a.tcp.all.size + p.b.tcp.all.size, 0);
  done();
  void A;
  void TH_SYN;
  void M_NEXT;
  void SO_ERROR;
  void TCPS_ESTABLISHED;
});

test('tcp: a reader that drains a full window at once reopens it without waiting for the delayed ACK', () => {
  const done = tcpLeakCheck();
  // A fixed so_rcv: a buffer that grows (recvbuf_auto) moves the "full" mark this reader waits for,
  // and FreeBSD announces the growth only with the next (delayed) ACK.
  const p = tcpPair({}, { tcp: { recvbuf_auto: 0 } });
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  const tb = [...p.b.tcp.all].find((x) => x.sockId === s)!;
  const size = 1 << 20;
  const chunk = fill(65536);
  const buf = new Uint8Array(1 << 17);
  let sent = 0;
  let got = 0;
  const t0 = p.td.clock.now();
  while (got < size && p.td.clock.now() - t0 < 10_000) {
    if (sent < size) {
      const n = sa.write(c, chunk.subarray(0, Math.min(chunk.length, size - sent)));
      if (n > 0) sent += n;
    }
    // Read only once the window is (nearly) full, as a batch reader does.
    if (tb.so_rcv.cc >= tb.so_rcv.hiwat - 1448 || (sent === size && tb.so_rcv.cc > 0)) {
      for (;;) {
        const n = sb.read(s, buf);
        if (n <= 0) break;
        got += n;
      }
    }
    p.td.advance(1);
  }
  assert.equal(got, size);
  const ms = p.td.clock.now() - t0;
  // Deterministic on the manual clock: 70 ms with the window update at read, 110 ms when every
  // reopened window waits for the 40 ms delayed ACK.
  assert.ok(ms < 90, `1 MB took ${ms} ms of virtual time`);
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(1000);
  p.close();
  done();
});
