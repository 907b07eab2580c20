/**
 * The SACK scoreboard (tcp_sack.ts) against a byte-map model: whatever
 * blocks and cumulative ACKs arrive, the scoreboard is the merged, ordered
 * set of sacked bytes above the ACK; and the receiver's block list puts the
 * newest block first and never lists what rcv_nxt covers.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TcpOpt } from '../../wire/tcp.js';
import { tcpSackDoack, tcpUpdateSackList, tcpSackTrim } from '../../netinet/tcp_sack.js';
import { newTcpStats } from '../../netinet/tcp_stats.js';
import type { Tcpcb } from '../../netinet/tcp_var.js';

const BASE = 0xfffff000; // the sequence space wraps inside the test range

function fakeTp(): Tcpcb {
  return { sb_start: [], sb_end: [], snd_una: BASE, snd_max: (BASE + 4000) >>> 0, tcp: { stats: newTcpStats() }, sackblks: new Uint32Array(8), rcv_numsacks: 0, rcv_nxt: BASE } as unknown as Tcpcb;
}

test('SACK scoreboard equals the model of sacked bytes above snd_una (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ ack: fc.integer({ min: 0, max: 400 }), blocks: fc.array(fc.tuple(fc.integer({ min: 0, max: 3999 }), fc.integer({ min: 1, max: 600 })), { maxLength: 4 }) }), { maxLength: 30 }),
      (steps) => {
        const tp = fakeTp();
        const model = new Uint8Array(4000);
        let una = 0;
        const to = new TcpOpt();
        for (const st of steps) {
          const ack = Math.min(4000, una + st.ack);
          to.nsacks = st.blocks.length;
          st.blocks.forEach(([s, l], k) => {
            const e = Math.min(4000, s + l);
            to.sacks[2 * k] = (BASE + s) >>> 0;
            to.sacks[2 * k + 1] = (BASE + e) >>> 0;
            if (s > una && s > ack && e > s) model.fill(1, s, e);
          });
          tcpSackDoack(tp, to, (BASE + ack) >>> 0);
          una = ack;
          tp.snd_una = (BASE + una) >>> 0;
          model.fill(0, 0, una);
          // Rebuild ranges from the model and compare.
          const want: [number, number][] = [];
          for (let i = una; i < 4000; i++) {
            if (model[i] && (i === una || !model[i - 1])) want.push([i, i]);
            if (model[i]) want[want.length - 1][1] = i + 1;
          }
          const got = tp.sb_start.map((s, i) => [(s - BASE) >>> 0, (tp.sb_end[i] - BASE) >>> 0]);
          assert.deepEqual(got, want);
        }
      },
    ),
    { numRuns: 300 },
  );
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
