/**
 * TCP between two stacks on a manual clock: handshake, data both ways,
 * half-close, TIME_WAIT, RSTs, timers. Every test checks that every mbuf
 * came back.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {  B, tcpPair, type TcpPair, connectPair, tcpLeakCheck } from './tcplink.js';
import { TCPS_ESTABLISHED, TCPS_CLOSED, TCPS_FIN_WAIT_2,  TCPS_TIME_WAIT, TCPS_CLOSE_WAIT } from '../../netinet/tcp_fsm.js';
import { EAGAIN, ECONNREFUSED,  EINPROGRESS } from '../../kern/errno.js';
import { POLLIN,  SHUT_WR, SOL_SOCKET, SO_ERROR, SO_RCVBUF,       } from '../../netinet/tcp_api.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';

const out = new Int32Array(2);


test('tcp: handshake, options negotiated, data both ways, graceful close through TIME_WAIT', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  assert.equal(sb.info(s)!.tcpi_state, TCPS_ESTABLISHED);
  const ia = sa.info(c)!;
  assert.equal(ia.tcpi_state, TCPS_ESTABLISHED);
  assert.equal(ia.tcpi_options & 7, 7, 'timestamps, SACK and window scaling negotiated');
  assert.equal(ia.tcpi_snd_mss, 1460);
  // FreeBSD rounds the buffers up to a multiple of the MSS.
  assert.equal(sa.getsockopt(c, SOL_SOCKET, SO_RCVBUF, out), 0);
  assert.equal(out[0], 65700);
  assert.equal(sa.write(c, Buffer.from('hello')), 5);
  p.td.advance(10);
  const buf = new Uint8Array(100);
  assert.equal(sb.read(s, buf), 5);
  assert.equal(Buffer.from(buf.subarray(0, 5)).toString(), 'hello');
  assert.equal(sb.read(s, buf), -EAGAIN);
  assert.equal(sb.write(s, Buffer.from('world!')), 6);
  p.td.advance(10);
  assert.equal(sa.read(c, buf), 6);
  // Client closes first: FIN_WAIT_2 until the server closes, then TIME_WAIT for 2 MSL.
  assert.equal(sa.shutdown(c, SHUT_WR), 0);
  p.td.advance(10);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_FIN_WAIT_2);
  assert.equal(sb.info(s)!.tcpi_state, TCPS_CLOSE_WAIT);
  assert.equal(sb.read(s, buf), 0, 'EOF after the FIN');
  assert.ok(sb.poll(s) & POLLIN);
  p.a.tcp.cfg.msl = 1000;
  assert.equal(sb.close(s), 0);
  p.td.advance(10);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_TIME_WAIT);
  assert.equal(sa.read(c, buf), 0);
  p.td.advance(1500);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_TIME_WAIT, 'still in TIME_WAIT before 2 MSL');
  p.td.advance(600);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_CLOSED, 'TIME_WAIT ends after 2 MSL');
  assert.equal(sa.close(c), 0);
  assert.equal(sb.close(l), 0);
  assert.equal(p.a.tcp.all.size + p.b.tcp.all.size, 0);
  p.close();
  done();
});

test('tcp: connect to a closed port is refused by a RST', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const sa = p.a.tcp.sockets!;
  const c = sa.socket();
  assert.equal(sa.connect(c, B, 9), -EINPROGRESS);
  p.td.advance(20);
  assert.equal(sa.getsockopt(c, SOL_SOCKET, SO_ERROR, out), 0);
  assert.equal(out[0], ECONNREFUSED);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_CLOSED);
  sa.close(c);
  p.close();
  done();
});

function transfer(p: TcpPair, size: number, limitMs: number): void {
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  const data = new Uint8Array(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  let sent = 0;
  const got: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  let t = 0;
  let eof = false;
  while (!eof && t < limitMs) {
    if (sent < size) {
      const n = sa.write(c, data.subarray(sent, Math.min(size, sent + 65536)));
      if (n > 0) sent += n;
      if (sent === size) sa.shutdown(c, SHUT_WR);
    }
    for (;;) {
      const n = sb.read(s, buf);
      if (n > 0) got.push(buf.slice(0, n));
      else {
        if (n === 0) eof = true;
        break;
      }
    }
    p.td.advance(5);
    t += 5;
  }
  const all = Buffer.concat(got);
  assert.equal(all.length, size, `received ${all.length} of ${size} bytes in ${t} ms`);
  assert.equal(createHash('sha256').update(all).digest('hex'), createHash('sha256').update(data).digest('hex'));
  sb.close(s);
  p.td.advance(100);
  sa.close(c);
  sb.close(l);
}

test('tcp: 2 MB byte-exact over a clean link', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  transfer(p, 2 << 20, 60_000);
  p.close();
  done();
});

test('tcp: 2 MB byte-exact with loss, duplication and reordering', () => {
  const done = tcpLeakCheck();
  const p = tcpPair({ seed: 7, loss: 0.02, duplicate: 0.02, reorder: 0.03, delayMs: 2 });
  transfer(p, 2 << 20, 600_000);
  assert.ok(p.a.tcp.stats[TCPS_STAT.sndrexmitpack] > 0, 'retransmissions happened');
  p.close();
  done();
});

test('tcp: byte-exact under 10% loss, duplication and reordering for many seeds and ISN secrets, with and without SACK/timestamps', () => {
  const done = tcpLeakCheck();
  const variants = [{}, { sack_enable: 0 }, { rfc1323: 0 }, { rfc1323: 0, sack_enable: 0, recvspace: 4096, sendspace: 2048 }];
  for (let seed = 1; seed <= 12; seed++) {
    const p = tcpPair({ seed, loss: 0.1, duplicate: 0.05, reorder: 0.1, delayMs: 1 + (seed % 5) }, { tcp: variants[seed % variants.length] });
    // A different RFC 6528 secret per run: ISNs (and their wrap) land anywhere in the sequence space.
    for (const st of [p.a, p.b]) st.tcp.secret.set([Math.imul(seed, 0x9e3779b1), seed * 7, ~seed, 0x80000000 - seed * 1000]);
    const sa = p.a.tcp.sockets!;
    const sb = p.b.tcp.sockets!;
    const l = sb.socket();
    sb.bind(l, 0, 80);
    sb.listen(l, 8);
    const c = sa.socket();
    sa.connect(c, B, 80);
    let s = -1;
    for (let i = 0; i < 200 && s < 0; i++) {
      p.td.advance(50);
      s = sb.accept(l);
    }
    assert.ok(s > 0, `seed ${seed}: accepted`);
    const size = 200_000 + seed * 997;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31 + seed) & 255;
    let sent = 0;
    let eof = false;
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (let t = 0; !eof && t < 300_000; t += 10) {
      if (sent < size) {
        const n = sa.write(c, data.subarray(sent));
        if (n > 0) sent += n;
        if (sent === size) sa.shutdown(c, SHUT_WR);
      }
      for (;;) {
        const n = sb.read(s, buf);
        if (n > 0) parts.push(buf.slice(0, n));
        else {
          if (n === 0) eof = true;
          break;
        }
      }
      p.td.advance(10);
    }
    assert.ok(eof, `seed ${seed}: EOF reached`);
    assert.equal(createHash('sha256').update(Buffer.concat(parts)).digest('hex'), createHash('sha256').update(data).digest('hex'), `seed ${seed}: same bytes`);
    sb.close(s);
    sa.close(c);
    sb.close(l);
    p.td.advance(1000);
    p.close();
  }
  done();
});
