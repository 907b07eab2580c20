/**
 * The SACK scoreboard (tcp_sack.ts) against a byte-map model: whatever
 * blocks, cumulative ACKs and retransmissions come, the holes are the
 * unSACKed runs below the highest SACKed byte with their retransmitted
 * prefix, and sacked/rexmit/lost bytes, pipe and NextSeg follow; the hole
 * limits hold without a throw; and the receiver's block list puts the
 * newest block first and never lists what rcv_nxt covers.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TcpOpt } from '../../wire/tcp.js';
import { TOF_SACK } from '../../wire/tcp.js';
import {
  SACK_CHANGE,
  SACK_NEWLOSS,
  SACK_NOCHANGE,
  SackHint,
  tcpComputePipe,
  tcpSackClearScoreboard,
  tcpSackDoack,
  tcpSackOutput,
  tcpSackRxmitSent,
  tcpSackTrim,
  tcpUpdateSackList,
} from '../../netinet/tcp_sack.js';
import { TCPS_STAT, newTcpStats } from '../../netinet/tcp_stats.js';
import { tcpConfig } from '../../netinet/tcp_tunables.js';
import { TF_FASTRECOVERY, type Tcpcb } from '../../netinet/tcp_var.js';

const BASE = 0xfffff000; // the sequence space wraps inside the test range
const SPAN = 4000;
const MSS = 100;

function fakeTp(maxholes = 100000, globalmax = 100000): Tcpcb {
  const tcp = { stats: newTcpStats(), sack_globalholes: 0, cfg: { ...tcpConfig(), sack_maxholes: maxholes, sack_globalmaxholes: globalmax } };
  const tp = { sackhint: new SackHint(), snd_una: BASE, snd_max: (BASE + SPAN) >>> 0, snd_recover: (BASE + SPAN) >>> 0, t_flags: 0, tcp, sackblks: new Uint32Array(8), rcv_numsacks: 0, rcv_nxt: BASE } as unknown as Tcpcb;
  tcpSackClearScoreboard(tp);
  return tp;
}

const rel = (x: number) => (x - BASE) >>> 0;
const abs = (x: number) => (BASE + x) >>> 0;

/** The scoreboard's holes as [start, end, rxmit] relative to BASE. */
function holesOf(tp: Tcpcb): [number, number, number][] {
  const sh = tp.sackhint;
  const out: [number, number, number][] = [];
  for (let i = 0; i < sh.nholes; i++) out.push([rel(sh.hs[i]), rel(sh.he[i]), rel(sh.hr[i])]);
  return out;
}

/** Unsacked runs in [una, highest sacked byte]. */
function modelHoles(sacked: Uint8Array, una: number): [number, number][] {
  let top = -1;
  for (let i = SPAN - 1; i >= una; i--)
    if (sacked[i]) {
      top = i + 1;
      break;
    }
  const mh: [number, number][] = [];
  for (let i = una; i < top; i++) {
    if (!sacked[i] && (i === una || sacked[i - 1])) mh.push([i, i]);
    if (!sacked[i]) mh[mh.length - 1][1] = i + 1;
  }
  return mh;
}

const step = fc.record({
  ack: fc.integer({ min: 0, max: 400 }),
  blocks: fc.array(fc.tuple(fc.integer({ min: 0, max: SPAN - 1 }), fc.integer({ min: 1, max: 600 })), { maxLength: 4 }),
  rexmit: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 300 })), { maxLength: 3 }),
});

test('SACK scoreboard (holes, rxmit, sacked/rexmit/lost bytes, D-SACK) equals a byte-map model (property)', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 30 }), fc.boolean(), (steps, inRecovery) => {
      const tp = fakeTp();
      if (inRecovery) tp.t_flags |= TF_FASTRECOVERY;
      const sacked = new Uint8Array(SPAN);
      const rexmitted = new Uint8Array(SPAN);
      let una = 0;
      const to = new TcpOpt();
      const dsacks: [number, number][] = [];
      for (const st of steps) {
        const ack = Math.min(SPAN, una + st.ack);
        to.flags = TOF_SACK;
        to.nsacks = st.blocks.length;
        const want: [number, number][] = [];
        // The cumulative ACK first: a scoreboard it leaves without holes forgets what lies above it.
        sacked.fill(0, 0, ack);
        if (modelHoles(sacked, ack).length === 0) {
          sacked.fill(0);
          rexmitted.fill(0);
        }
        st.blocks.forEach(([s, l], k) => {
          const e = Math.min(SPAN, s + l);
          to.sacks[2 * k] = abs(s);
          to.sacks[2 * k + 1] = abs(e);
        });
        st.blocks.forEach(([s, l], k) => {
          const e = Math.min(SPAN, s + l);
          const [s1, l1] = st.blocks[1] ?? [0, 0];
          if (k === 0 && s < e && (e <= ack || (st.blocks.length > 1 && s >= s1 && e <= Math.min(SPAN, s1 + l1)))) {
            want.push([s, e]);
            return;
          }
          if (s > una && s > ack && e > s) sacked.fill(1, s, e);
        });
        const got: [number, number][] = [];
        const r = tcpSackDoack(tp, to, abs(ack), MSS, (_tp, s, e) => got.push([rel(s), rel(e)]));
        assert.ok(r === SACK_NOCHANGE || r === SACK_CHANGE || r === SACK_NEWLOSS);
        assert.deepEqual(got, want, 'D-SACK blocks reported');
        dsacks.push(...got);
        una = ack;
        tp.snd_una = abs(una);
        sacked.fill(0, 0, una);
        // Model holes: unSACKed runs between una and the highest SACKed byte; none left: forget what was SACKed.
        const mh = modelHoles(sacked, una);
        if (mh.length === 0) {
          sacked.fill(0);
          rexmitted.fill(0);
        }
        // Retransmit from some holes (tcp_output's side).
        for (const [pick, len] of st.rexmit) {
          const sh = tp.sackhint;
          if (sh.nholes === 0) break;
          const i = pick % sh.nholes;
          const n = Math.min(len, (sh.he[i] - sh.hr[i]) >>> 0);
          if (n === 0) continue;
          rexmitted.fill(1, rel(sh.hr[i]), rel(sh.hr[i]) + n);
          tcpSackRxmitSent(tp, i, n);
        }
        const holes = holesOf(tp);
        assert.deepEqual(holes.map(([s, e]) => [s, e]), mh, 'holes');
        let rex = 0;
        for (const [s, e, x] of holes) {
          // Retransmitted bytes of a hole are a prefix ending at rxmit.
          for (let i = s; i < e; i++) assert.equal(rexmitted[i] === 1, i < x, `rxmit of hole ${s}:${e}`);
          rex += x - s;
        }
        const sh = tp.sackhint;
        assert.equal(sh.sack_bytes_rexmit, rex);
        let nsacked = 0;
        for (let i = una; i < SPAN; i++) nsacked += sacked[i];
        assert.equal(sh.sacked_bytes, nsacked, 'sacked_bytes');
        // IsLost: a hole is lost when more than 2 * MSS SACKed bytes lie above it (and everything below such a hole).
        let lostIdx = -1;
        holes.forEach(([, e], i) => {
          let above = 0;
          for (let j = e; j < SPAN; j++) above += sacked[j];
          if (above > 2 * MSS) lostIdx = i;
        });
        if (inRecovery && holes.length > 0 && lostIdx < 0) lostIdx = 0;
        assert.equal(sh.lost_idx, lostIdx, 'lost holes');
        let lost = 0;
        for (let i = 0; i <= lostIdx; i++) lost += holes[i][1] - holes[i][0];
        assert.equal(sh.lost_bytes, lost);
        assert.equal(tcpComputePipe(tp), Math.max(0, SPAN - una - nsacked - lost + rex), 'pipe');
        assert.equal(tp.tcp.sack_globalholes, sh.nholes);
        // NextSeg: the first hole with bytes left to retransmit, if lost.
        const next = holes.findIndex(([, e, x]) => x < e);
        assert.equal(tcpSackOutput(tp, false), next >= 0 && next <= lostIdx ? next : -1);
        assert.equal(tcpSackOutput(tp, true), next);
      }
      tcpSackClearScoreboard(tp);
      assert.equal(tp.tcp.sack_globalholes, 0);
    }),
    { numRuns: 400 },
  );
});

test('SACK scoreboard under net.inet.tcp.sack.maxholes / globalmaxholes: bounded, ordered, overflow counted, never a throw (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 8 }), fc.array(step, { maxLength: 30 }), (maxholes, globalmax, steps) => {
      const tp = fakeTp(maxholes, globalmax);
      const to = new TcpOpt();
      let una = 0;
      for (const st of steps) {
        const ack = Math.min(SPAN, una + st.ack);
        to.flags = TOF_SACK;
        to.nsacks = st.blocks.length;
        st.blocks.forEach(([s, l], k) => {
          to.sacks[2 * k] = abs(s);
          to.sacks[2 * k + 1] = abs(Math.min(SPAN, s + l));
        });
        tcpSackDoack(tp, to, abs(ack), MSS, null);
        una = ack;
        tp.snd_una = abs(una);
        const h = holesOf(tp);
        assert.ok(h.length <= Math.min(maxholes, globalmax));
        assert.equal(tp.tcp.sack_globalholes, h.length);
        let prev = una;
        for (const [s, e, x] of h) {
          assert.ok(prev <= s && s < e && s <= x && x <= e && e <= rel(tp.sackhint.fack), `hole ${s}:${e} rxmit ${x} after ${prev}`);
          prev = e;
        }
        assert.ok(tcpComputePipe(tp) >= 0);
      }
      if (steps.some((st) => st.blocks.length > 0)) assert.ok(tp.tcp.stats[TCPS_STAT.sack_sboverflow] >= 0);
    }),
    { numRuns: 300 },
  );
  // A full table counts an overflow.
  const tp = fakeTp(1, 100);
  const to = new TcpOpt();
  to.flags = TOF_SACK;
  to.nsacks = 2;
  to.sacks.set([abs(1000), abs(1100), abs(2000), abs(2100)]);
  tcpSackDoack(tp, to, abs(0), MSS, null);
  assert.equal(tp.sackhint.nholes, 1);
  assert.equal(tp.tcp.stats[TCPS_STAT.sack_sboverflow], 1);
});

test('receiver SACK list: newest block first, merged, nothing at or below rcv_nxt (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 200 })), { minLength: 1, maxLength: 25 }), (segs) => {
      const tp = fakeTp();
      let nxt = 0;
      for (const [s, l, adv] of segs) {
        if (s > nxt) {
          tcpUpdateSackList(tp, (BASE + s) >>> 0, (BASE + s + l) >>> 0);
          const b0 = (tp.sackblks[0] - BASE) >>> 0;
          const b1 = (tp.sackblks[1] - BASE) >>> 0;
          assert.ok(b0 <= s && b1 >= s + l, 'the newest segment is in the first block');
        }
        nxt += adv;
        tp.rcv_nxt = (BASE + nxt) >>> 0;
        tcpSackTrim(tp);
        for (let i = 0; i < tp.rcv_numsacks; i++) {
          const a = (tp.sackblks[2 * i] - BASE) >>> 0;
          const e = (tp.sackblks[2 * i + 1] - BASE) >>> 0;
          assert.ok(a >= nxt && e > a, `block ${a}:${e} above rcv_nxt ${nxt}`);
        }
        assert.ok(tp.rcv_numsacks <= 4);
      }
    }),
    { numRuns: 300 },
  );
});
