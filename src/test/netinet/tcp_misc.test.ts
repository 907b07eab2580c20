/**
 * TCP corners: simultaneous close through CLOSING, the listen queue limit,
 * SO_RCVBUF / SO_SNDBUF limits and rounding, fragmentation-needed lowering
 * the MSS, netstat -s wording.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { A, B, tcpPair, connectPair, tcpLeakCheck, closePair } from './tcplink.js';
import { TCPS_CLOSED, TCPS_CLOSING, TCPS_TIME_WAIT, TCPS_LISTEN, TCPS_SYN_RECEIVED } from '../../netinet/tcp_fsm.js';
import { EAGAIN, ENOBUFS } from '../../kern/errno.js';
import { IPPROTO_TCP as IPPROTO_TCP_OPT, SOL_SOCKET, SO_RCVBUF, SO_SNDBUF, SHUT_WR, TCP_REMOTE_UDP_ENCAPS_PORT } from '../../netinet/tcp_api.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { M_DATA, M_LEN, M_PKTHDR, MT_DATA, PH_LEN, PH_RCVIF } from '../../kern/mbuf/layout.js';
import { ipv4Emit, IPPROTO_ICMP, IPPROTO_TCP } from '../../wire/ipv4.js';
import { write16, write32 } from '../../wire/bytes.js';
import { cksum } from '../../wire/checksum.js';

const out = new Int32Array(2);

test('tcp: simultaneous close goes through CLOSING to TIME_WAIT on both sides', () => {
  const done = tcpLeakCheck();
  const p = tcpPair({ delayMs: 10 });
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  p.td.advance(100);
  sa.shutdown(c, SHUT_WR);
  sb.shutdown(s, SHUT_WR);
  p.td.advance(12);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_CLOSING);
  assert.equal(sb.info(s)!.tcpi_state, TCPS_CLOSING);
  p.td.advance(20);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_TIME_WAIT);
  assert.equal(sb.info(s)!.tcpi_state, TCPS_TIME_WAIT);
  assert.ok(sa.list().some((x) => x.state === TCPS_TIME_WAIT && x.id === c));
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(61_000);
  assert.equal(p.a.tcp.all.size + p.b.tcp.all.size, 0, 'TIME_WAIT over after 2 x 30 s');
  p.close();
  done();
});

test('tcp: a full accept queue drops the handshake (listen queue overflow) and the syncache shows SYN_RECEIVED', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const l = sb.socket();
  sb.bind(l, 0, 80);
  sb.listen(l, 1);
  const c1 = sa.socket();
  sa.connect(c1, B, 80);
  p.td.advance(50);
  const c2 = sa.socket();
  // Lose the client's handshake ACKs (bare ACK flags) to see the half-open entry.
  const mb = p.mb;
  p.ab.imp.filter = (x) => {
    const d = mb.i32[(x + M_DATA) >> 2];
    return mb.u8[d + 23] === 6 && mb.u8[d + 47] === 0x10;
  };
  sa.connect(c2, B, 80);
  p.td.advance(5);
  assert.ok(sb.list().some((x) => x.state === TCPS_SYN_RECEIVED && x.id === 0), 'syncache entry listed');
  p.ab.imp.filter = undefined;
  p.td.advance(3000);
  assert.ok(p.b.tcp.stats[TCPS_STAT.listendrop] >= 1, 'the second connection did not fit');
  const s1 = sb.accept(l);
  assert.ok(s1 > 0);
  assert.equal(sb.accept(l), -EAGAIN);
  assert.equal(sb.info(l)!.tcpi_state, TCPS_LISTEN);
  for (const id of [c1, c2]) sa.close(id);
  sb.close(s1);
  sb.close(l);
  p.td.advance(100_000);
  p.close();
  done();
});

test('tcp: SO_RCVBUF/SO_SNDBUF above kern.ipc.maxsockbuf are ENOBUFS; set sizes are rounded to the MSS after the handshake', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const c = sa.socket();
  assert.equal(sa.setsockopt(c, SOL_SOCKET, SO_RCVBUF, 4 << 20), -ENOBUFS);
  assert.equal(sa.setsockopt(c, SOL_SOCKET, SO_SNDBUF, 100_000), 0);
  assert.equal(sa.setsockopt(c, SOL_SOCKET, SO_RCVBUF, 30_000), 0);
  const sb = p.b.tcp.sockets!;
  const l = sb.socket();
  sb.bind(l, 0, 80);
  sb.listen(l, 4);
  sa.connect(c, B, 80);
  p.td.advance(50);
  sa.getsockopt(c, SOL_SOCKET, SO_RCVBUF, out);
  assert.equal(out[0], 30_660, '30000 rounded up to 21 x 1460');
  sa.getsockopt(c, SOL_SOCKET, SO_SNDBUF, out);
  assert.equal(out[0], 100_740, '100000 rounded up to 69 x 1460');
  p.a.tcp.cfg.maxsockbuf = 65536;
  assert.equal(sa.setsockopt(c, SOL_SOCKET, SO_RCVBUF, 65536), -ENOBUFS, 'sb_max_adj is below maxsockbuf');
  p.a.tcp.cfg.maxsockbuf = 2 << 20;
  const s = sb.accept(l);
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(100_000);
  p.close();
  done();
});

test('tcp: ICMP fragmentation needed quoting our segment lowers the MSS and resends smaller', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  const tp = [...p.a.tcp.all].find((x) => x.sockId === c)!;
  assert.equal(tp.t_maxseg, 1460);
  p.ab.imp.filter = () => true; // data stays outstanding
  sa.write(c, new Uint8Array(3000));
  // A router says: fragmentation needed, next-hop MTU 1000 (quoting our first segment).
  const mb = p.mb;
  const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
  const i32 = mb.i32;
  const h = i32[(m + M_DATA) >> 2] + 64;
  i32[(m + M_DATA) >> 2] = h;
  const u8 = mb.u8;
  const icmp = h + 20;
  u8.fill(0, icmp, icmp + 36);
  u8[icmp] = 3;
  u8[icmp + 1] = 4;
  write16(u8, icmp + 6, 1000);
  ipv4Emit(u8, icmp + 8, 0, 1500, 9, 0x4000, 64, IPPROTO_TCP, A, B, true);
  write16(u8, icmp + 28, tp.lport);
  write16(u8, icmp + 30, 80);
  write32(u8, icmp + 32, tp.snd_una);
  write16(u8, icmp + 2, cksum(u8, icmp, 36));
  ipv4Emit(u8, h, 0, 56, 1, 0, 64, IPPROTO_ICMP, B, A, true);
  i32[(m + M_LEN) >> 2] = 56;
  i32[(m + PH_LEN) >> 2] = 56;
  i32[(m + PH_RCVIF) >> 2] = p.a.ifs[0].index;
  p.a.ipDeliver(m);
  assert.equal(tp.t_maxseg, 960, 'MSS follows the path MTU');
  const sizes: number[] = [];
  p.ab.imp.filter = (x) => {
    const d = mb.i32[(x + M_DATA) >> 2];
    if (mb.u8[d + 23] === 6) sizes.push(mb.i32[(x + PH_LEN) >> 2] - 14 - 20 - ((mb.u8[d + 46] >> 4) * 4));
    return false;
  };
  p.td.advance(2000);
  assert.ok(sizes.length > 0 && Math.max(...sizes) <= 960 - 12, `segments now fit: ${sizes}`);
  closePair(p, [c, s, l], 100_000, done);
});

test('tcp: netstat -s has a tcp section in tcpstat wording', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const [c, s, l] = connectPair(p);
  const text = p.a.netstatS();
  assert.match(text, /^tcp:$/m);
  assert.match(text, /\t1 connection requests/);
  assert.match(text, /\t1 connections established \(including accepts\)/);
  p.a.tcp.sockets!.close(c);
  p.b.tcp.sockets!.close(s);
  p.b.tcp.sockets!.close(l);
  p.td.advance(100_000);
  assert.equal(p.a.tcp.all.size + p.b.tcp.all.size, 0);
  assert.equal(p.a.tcp.sockets!.info(c), null);
  void TCPS_CLOSED;
  p.close();
  done();
});

test('tcp: TCP over UDP (udp_tunneling_port): handshake and data inside UDP, MSS less the overhead (mismatches: the suite socket-api scripts)', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  for (const st of [p.a, p.b]) st.tcp.cfg.udp_tunneling_port = 9811;
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const l = sb.socket();
  sb.bind(l, 0, 80);
  sb.listen(l, 4);
  const c = sa.socket();
  assert.equal(sa.setsockopt(c, IPPROTO_TCP_OPT, TCP_REMOTE_UDP_ENCAPS_PORT, 9811), 0);
  const mb = p.mb;
  let udp = 0;
  let plain = 0;
  p.ab.imp.filter = (x) => {
    const proto = mb.u8[mb.i32[(x + M_DATA) >> 2] + 23];
    if (proto === 17) udp++;
    if (proto === 6) plain++;
    return false;
  };
  sa.connect(c, B, 80);
  p.td.advance(50);
  const s = sb.accept(l);
  assert.ok(s > 0, 'tunneled handshake completed');
  assert.equal(sa.info(c)!.tcpi_snd_mss, 1452, '1460 less udp_tunneling_overhead');
  const data = new Uint8Array(50_000).map((_, i) => i & 0xff);
  let sent = 0;
  let got = 0;
  const buf = new Uint8Array(65536);
  for (let i = 0; i < 100 && got < 50_000; i++) {
    const n = sa.write(c, data.subarray(sent));
    if (n > 0) sent += n;
    p.td.advance(10);
    for (;;) {
      const n = sb.read(s, buf);
      if (n <= 0) break;
      got += n;
    }
  }
  assert.equal(got, 50_000);
  assert.ok(udp > 10 && plain === 0, `all in UDP (${udp} UDP, ${plain} plain)`);
  assert.equal(sb.getsockopt(s, IPPROTO_TCP_OPT, TCP_REMOTE_UDP_ENCAPS_PORT, out), 0);
  assert.equal(out[0], 9811, 'the accepted side learned the peer port');
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(100_000);
  p.close();
  done();
});

test('tcp: the host cache keeps a closed connection RTT for the next one to the peer; purgenow empties it', () => {
  const done = tcpLeakCheck();
  const p = tcpPair({ delayMs: 25 });
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const l = sb.socket();
  sb.bind(l, 0, 80);
  sb.listen(l, 4);
  const once = (): void => {
    const c = sa.socket();
    sa.connect(c, B, 80);
    p.td.advance(200);
    const s = sb.accept(l);
    assert.ok(s > 0);
    for (let i = 0; i < 6; i++) {
      sa.write(c, new Uint8Array(100));
      p.td.advance(200);
      sb.read(s, new Uint8Array(1000));
    }
    sa.close(c);
    sb.close(s);
    p.td.advance(200);
  };
  once();
  p.td.advance(61_000);
  assert.equal(p.a.tcp.hostcache.size, 1, 'the closed connection left its RTT');
  assert.equal(p.a.tcp.stats[TCPS_STAT.cachedrtt] >= 1, true);
  once();
  assert.equal(p.a.tcp.stats[TCPS_STAT.usedrtt], 1, 'the second connection started from it');
  const node = p.a.tcp.sysctlNodes().find((n) => n.name === 'net.inet.tcp.hostcache.purgenow')!;
  node.set!(1);
  assert.equal(p.a.tcp.hostcache.size, 0);
  sb.close(l);
  p.td.advance(100_000);
  p.close();
  done();
});
