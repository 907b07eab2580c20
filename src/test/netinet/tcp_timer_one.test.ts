/**
 * One callout per tcpcb (tcp_timer.ts, FreeBSD 14's t_callout): the five
 * timers are deadlines in the tcpcb, the callout is always on the earliest
 * (so the wheel's msUntilNext is exact), stopping the earliest moves it to
 * the next, cancelling all stops it, and a firing runs the due timers.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { arena, connectPair, closePair, tcpLeakCheck, tcpPair } from './tcplink.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';
import { Stack } from '../../netinet/stack.js';
import { TCPS_ESTABLISHED } from '../../netinet/tcp_fsm.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { IPPROTO_TCP, SOL_SOCKET, SO_KEEPALIVE, TCP_KEEPIDLE } from '../../netinet/tcp_api.js';
import { TT_2MSL, TT_KEEP, TT_REXMT, tcpCancelTimers, tcpTimer2mslArm, tcpTimerDelackArm, tcpTimerDue, tcpTimerKeepArm, tcpTimerRexmtArm, tcpTimerStop } from '../../netinet/tcp_timer.js';

test('tcp_timer: five timers share one callout armed for the earliest deadline', () => {
  const { mb } = arena();
  const td = LocalThread.manual();
  const st = new Stack(mb, { name: 'tt', thread: td });
  const w = st.td.callouts;
  const tp = st.tcp.newtcpcb();
  tp.state = TCPS_ESTABLISHED;
  const before = w.count;
  const now = w.now();
  tp.t_rxtcur = 1000;
  tcpTimerRexmtArm(tp);
  tcpTimerKeepArm(tp, 500);
  tcpTimer2mslArm(tp, 300);
  assert.equal(w.count, before + 1, 'one callout on the wheel for three timers');
  assert.equal(tcpTimerDue(tp, TT_REXMT), now + 1000);
  assert.equal(tp.tt_keep, now + 500);
  assert.equal(tp.t_callout.time, now + 300, 'the callout is on the earliest');
  tcpTimerStop(tp, TT_2MSL);
  assert.equal(tp.tt_2msl, 0);
  assert.equal(tp.t_callout.time, now + 500, 'stopping the earliest moves the callout to the next');
  tcpTimerKeepArm(tp, 2000);
  assert.equal(tp.t_callout.time, now + 1000, 're-arming later moves it too');
  tcpTimerStop(tp, TT_KEEP);
  tcpTimerStop(tp, TT_KEEP);
  assert.equal(tp.t_callout.time, now + 1000);
  tcpCancelTimers(tp);
  assert.equal(tp.tt_rexmt, 0);
  assert.equal(tp.t_callout.pending, false, 'no timer armed: the callout is stopped');
  assert.equal(w.count, before);
  st.close();
});

test('tcp_timer: a delayed ACK and a keepalive on one connection fire from the one callout, each at its time', () => {
  const done = tcpLeakCheck();
  const p = tcpPair();
  const conn = connectPair(p);
  const sa = p.a.tcp.sockets!;
  const me = sa.sockname(conn[0])!;
  const peer = sa.peername(conn[0])!;
  const a = p.a.tcp.lookupConn(me.addr, me.port, peer.addr, peer.port)!;
  assert.equal(sa.setsockopt(conn[0], SOL_SOCKET, SO_KEEPALIVE, 1), 0);
  assert.equal(sa.setsockopt(conn[0], IPPROTO_TCP, TCP_KEEPIDLE, 10), 0);
  const s = p.a.tcp.stats;
  const delack0 = s[TCPS_STAT.delack];
  const probes0 = s[TCPS_STAT.keepprobe];
  a.t_rcvtime = p.a.tcp.ticks();
  tcpTimerKeepArm(a, a.keepidle());
  tcpTimerDelackArm(a);
  assert.ok(a.tt_delack !== 0 && a.tt_delack < a.tt_keep);
  assert.equal(a.t_callout.time, a.tt_delack);
  p.td.advance(p.a.tcp.cfg.delacktime + 1);
  assert.equal(s[TCPS_STAT.delack], delack0 + 1, 'the delayed ACK fired');
  assert.equal(a.tt_delack, 0);
  assert.equal(s[TCPS_STAT.keepprobe], probes0, 'the keepalive is not due yet');
  assert.ok(a.t_callout.pending, 'still armed, for the keepalive');
  assert.equal(a.t_callout.time, a.tt_keep);
  p.td.advance(a.keepidle());
  assert.equal(s[TCPS_STAT.keepprobe], probes0 + 1, 'the keepalive probe went out at keepidle');
  assert.equal(a.state, TCPS_ESTABLISHED, 'the peer answered it');
  closePair(p, conn, 1000, done);
});
