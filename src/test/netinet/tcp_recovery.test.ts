/**
 * Loss recovery end to end (RFC 6675 SACK recovery, PRR, D-SACK undo):
 * byte-exact transfers (SHA-256) between two stacks on a manual clock,
 * the data direction impaired by the fault injector (src/net/phy/fault.ts:
 * seeded loss, a rate limit with a bounded queue, reordering). Each run is
 * exactly reproducible from its seed; the assertions are on counters
 * (retransmissions, timeouts, episodes), never on speed. Every run ends with
 * every mbuf back.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connectPair, tcpLeakCheck, tcpPair, transfer, type Run, type TcpPair } from './tcplink.js';
import { FaultInjector, type FaultOptions } from '../../net/phy/fault.js';
import { SHUT_WR } from '../../netinet/tcp_api.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import type { TcpConfig } from '../../netinet/tcp_tunables.js';

const st = (r: Run, k: keyof typeof TCPS_STAT) => r.stats[TCPS_STAT[k]];

test('tcp recovery: with SACK (RFC 6675 + PRR) a lossy, rate-limited path needs fewer timeouts and retransmissions than NewReno, byte-exact both ways', () => {
  let sackTimeouts = 0;
  let renoTimeouts = 0;
  let sackRexmit = 0;
  let renoRexmit = 0;
  for (const seed of [3, 11, 29, 41]) {
    const fault: FaultOptions = { seed, loss: 0.05, rateBps: 40_000_000, queueLimit: 12 };
    const sack = transfer(1_000_000, fault, {});
    const reno = transfer(1_000_000, fault, { sack_enable: 0 });
    assert.ok(st(sack, 'sack_recovery_episode') > 0, `seed ${seed}: SACK recovery episodes`);
    assert.ok(st(sack, 'sack_rexmits') > 0 && st(sack, 'sack_rexmit_bytes') > 0, `seed ${seed}: hole retransmissions counted`);
    assert.ok(st(sack, 'prr_episodes') > 0, `seed ${seed}: PRR ran`);
    assert.equal(st(reno, 'sack_recovery_episode'), 0, `seed ${seed}: no SACK without SACK`);
    sackTimeouts += st(sack, 'rexmttimeo');
    renoTimeouts += st(reno, 'rexmttimeo');
    sackRexmit += st(sack, 'sndrexmitpack');
    renoRexmit += st(reno, 'sndrexmitpack');
  }
  assert.ok(sackTimeouts < renoTimeouts, `retransmit timeouts: SACK ${sackTimeouts} < NewReno ${renoTimeouts}`);
  assert.ok(sackRexmit < renoRexmit, `retransmitted packets: SACK ${sackRexmit} < NewReno ${renoRexmit}`);
});

test('tcp recovery: PRR off (RFC 6675 alone, cwnd = ssthresh in recovery) and sack.revised off (every hole lost) stay byte-exact', () => {
  const fault: FaultOptions = { seed: 5, loss: 0.03, rateBps: 40_000_000, queueLimit: 48 };
  const noPrr = transfer(400_000, fault, { do_prr: 0 });
  assert.ok(st(noPrr, 'sack_recovery_episode') > 0);
  assert.equal(st(noPrr, 'prr_episodes'), 0);
  const old = transfer(400_000, fault, { sack_revised: 0 });
  assert.ok(st(old, 'sack_recovery_episode') > 0);
  const tiny = transfer(400_000, fault, { sack_maxholes: 1 });
  assert.ok(st(tiny, 'sack_recovery_episode') > 0);
});

test('tcp recovery: reordering without loss starts spurious episodes that D-SACK undoes', () => {
  const r = transfer(600_000, { seed: 9, jitterMs: 4 }, {});
  assert.ok(st(r, 'dsack_count') > 0, 'D-SACK blocks came back');
  assert.ok(st(r, 'sndrexmitbad') > 0, 'retransmissions shown unnecessary');
  assert.ok(st(r, 'sack_undo') > 0, 'episodes undone');
  const clean = transfer(200_000, { seed: 9 }, {});
  assert.equal(st(clean, 'sack_undo') + st(clean, 'dsack_count') + st(clean, 'sndrexmitpack'), 0, 'a clean path: nothing to undo');
});

/** `count` messages of `size` bytes a -> b, each sent once the previous one arrived (application limited); a's counters. */
function messages(count: number, size: number, fault: FaultOptions, tcp: Partial<TcpConfig>): Run {
  const done = tcpLeakCheck();
  const p: TcpPair = tcpPair({ delayMs: 5 }, { tcp });
  FaultInjector.wrap(p.a.ifs[0], fault);
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const ids = connectPair(p);
  const [c, s, l] = ids;
  const msg = new Uint8Array(size);
  const buf = new Uint8Array(65536);
  const h = createHash('sha256');
  const want = createHash('sha256');
  let t = 0;
  for (let k = 0; k < count; k++) {
    msg.fill(k & 255);
    want.update(msg);
    assert.equal(sa.write(c, msg), size);
    let got = 0;
    while (got < size && t < 600_000) {
      p.td.advance(1);
      t++;
      for (let n = sb.read(s, buf); n > 0; n = sb.read(s, buf)) {
        h.update(buf.subarray(0, n));
        got += n;
      }
    }
    assert.equal(got, size, `message ${k} arrived`);
  }
  assert.equal(h.digest('hex'), want.digest('hex'), 'same bytes');
  const stats = p.a.tcp.stats.slice();
  sa.close(c);
  sb.close(s);
  sb.close(l);
  p.td.advance(2000);
  p.close();
  done();
  return { stats, ms: t };
}

test('tcp recovery: RACK-TLP (net.inet.tcp.rack.enable) probes the tails of short application-limited messages: fewer timeouts than without, byte-exact', () => {
  let rackTimeouts = 0;
  let plainTimeouts = 0;
  let probes = 0;
  let repaired = 0;
  for (const seed of [2, 7]) {
    const fault: FaultOptions = { seed, loss: 0.05 };
    const rack = messages(150, 4000, fault, { rack_enable: 1 });
    const plain = messages(150, 4000, fault, {});
    rackTimeouts += st(rack, 'rexmttimeo');
    plainTimeouts += st(plain, 'rexmttimeo');
    probes += st(rack, 'rack_tlp_new') + st(rack, 'rack_tlp_retran');
    repaired += st(rack, 'rack_tlp_recovered');
    assert.equal(st(plain, 'rack_lost') + st(plain, 'rack_tlp_new') + st(plain, 'rack_tlp_retran'), 0, 'RACK off: no RACK');
  }
  assert.ok(probes > 0 && repaired > 0, `tail loss probes ${probes}, tail losses repaired ${repaired}`);
  assert.ok(rackTimeouts < plainTimeouts, `retransmit timeouts: RACK-TLP ${rackTimeouts} < without ${plainTimeouts}`);
});

test('tcp recovery: RACK marks losses by time in bulk transfers over loss and jitter, byte-exact', () => {
  let rackLost = 0;
  for (const seed of [3, 11]) {
    const rack = transfer(1_000_000, { seed, loss: 0.05, rateBps: 40_000_000, queueLimit: 12, jitterMs: 1 }, { rack_enable: 1 });
    rackLost += st(rack, 'rack_lost');
    assert.ok(st(rack, 'sack_recovery_episode') > 0);
  }
  assert.ok(rackLost > 0, 'RACK marked losses');
});
