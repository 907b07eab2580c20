// Sequence space more than 2^31 bytes from the ISS: a long transfer's ACKs stay acceptable.
//
// Guards the RFC 5961 5.2 ACK check (tcp_input.ts): its lower bound was ISS + 1 while a sequence
// comparison said snd_una was still "before" ISS + max window, which after 2^31 bytes it says again,
// so every ACK drew a challenge and the bench's 10 Gbit/s loop stalled after ~2 s (found by
// `node dist/bench/run.js tcp`, 2026-12-03). The test moves the client's ISS back by 3 GiB
// instead of sending them.
import test from 'node:test';
import assert from 'node:assert/strict';
import { tcpPair, connectPair, tcpLeakCheck, closePair } from './tcplink.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';

test('tcp: 3 GiB past the ISS, ACKs are still acceptable (no challenge ACKs, the transfer completes)', () => {
  const done = tcpLeakCheck();
  const p = tcpPair({}, {}, 9000);
  const [c, s, l] = connectPair(p);
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const tp = [...p.a.tcp.all].find((x) => x.sockId === c)!;
  tp.iss = (tp.snd_una - 0xc000_0000) >>> 0; // as if 3 GiB had been sent and acknowledged
  const total = 4 << 20;
  const chunk = new Uint8Array(64 * 1024).fill(7);
  const rbuf = new Uint8Array(256 * 1024);
  let sent = 0;
  let got = 0;
  const wars0 = p.a.tcp.stats[TCPS_STAT.ack_war];
  for (let i = 0; i < 20_000 && got < total; i++) {
    while (sent < total) {
      const n = sa.write(c, chunk.subarray(0, Math.min(chunk.length, total - sent)));
      if (n <= 0) break;
      sent += n;
    }
    p.td.advance(1);
    for (let n = sb.read(s, rbuf); n > 0; n = sb.read(s, rbuf)) got += n;
  }
  assert.equal(got, total, 'every byte arrived');
  assert.equal(p.a.tcp.stats[TCPS_STAT.ack_war] - wars0, 0, 'no challenge ACK: every ACK was acceptable');
  assert.equal(p.a.tcp.stats[TCPS_STAT.rexmttimeo], 0, 'no retransmission timeout');
  closePair(p, [c, s, l], 5000, done);
});
