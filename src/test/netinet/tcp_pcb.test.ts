// TCP on the shared in_pcb module: a TCP and a UDP socket share a port number, FreeBSD's
// EADDRINUSE rules for TCP (TIME_WAIT with and without SO_REUSEADDR, SO_REUSEPORT,
// SO_REUSEPORT_LB listeners sharing SYNs), ephemeral ports randomized inside
// net.inet.ip.portrange.* and EADDRNOTAVAIL when the range is used up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { B, closePair, connectPair, tcpLeakCheck, tcpPair, type TcpPair } from './tcplink.js';
import { EADDRINUSE, EADDRNOTAVAIL, EINPROGRESS } from '../../kern/errno.js';
import { IPPROTO_IP, IP_PORTRANGE, SOL_SOCKET, SO_REUSEADDR, SO_REUSEPORT, SO_REUSEPORT_LB } from '../../netinet/tcp_api.js';
import { TCPS_ESTABLISHED, TCPS_TIME_WAIT } from '../../netinet/tcp_fsm.js';
import { IP_PORTRANGE_HIGH } from '../../netinet/in_pcb.js';
import type { Stack } from '../../netinet/stack.js';
import type { TcpSockets } from '../../netinet/tcp_usrreq.js';

/** Read or write one of the stack's sysctls by its FreeBSD name. */
function sysctl(st: Stack, name: string, v?: number): number {
  const n = st.sysctlNodes().find((x) => x.name === name);
  assert.ok(n !== undefined && n.set !== undefined, name);
  if (v !== undefined) n.set(v);
  return Number(n.get());
}

/** A fresh pair with its leak check and both socket APIs. */
function start(): { done: () => void; p: TcpPair; sa: TcpSockets; sb: TcpSockets } {
  const done = tcpLeakCheck();
  const p = tcpPair();
  return { done, p, sa: p.a.tcp.sockets!, sb: p.b.tcp.sockets! };
}

/** Set a SOL_SOCKET flag option (SO_REUSEADDR ...) on id. */
function setopt(so: TcpSockets, id: number, name: number): void {
  assert.equal(so.setsockopt(id, SOL_SOCKET, name, 1), 0);
}

/** Run the handshakes of the pending connects (manual clock). */
const settle = (p: TcpPair, ms = 100): void => p.td.advance(ms);

test('tcp pcb: a TCP and a UDP socket bind the same port; each protocol still refuses its own duplicate', () => {
  const { done, p, sb } = start();
  const u = p.b.udp.attach();
  assert.equal(p.b.udp.bind(u, 0, 53), 0, 'UDP 53');
  const l = sb.socket();
  assert.equal(sb.bind(l, 0, 53), 0, 'TCP 53 beside UDP 53');
  assert.equal(sb.listen(l, 4), 0);
  assert.equal(sb.bind(sb.socket(), 0, 53), -EADDRINUSE, 'a second TCP 53');
  assert.equal(p.b.udp.bind(p.b.udp.attach(), 0, 53), EADDRINUSE, 'a second UDP 53');
  // Both work: a TCP connection to 53 is accepted, a datagram to 53 is queued on the UDP PCB.
  const sa = p.a.tcp.sockets!;
  const c = sa.socket();
  assert.equal(sa.connect(c, B, 53), -EINPROGRESS);
  const cu = p.a.udp.attach();
  assert.equal(p.a.udp.connect(cu, B, 53), 0);
  assert.equal(p.a.udp.output(cu, new Uint8Array([1, 2, 3]), 0, 3, 0, 0), 0);
  settle(p);
  const s = sb.accept(l);
  assert.ok(s > 0, `accept ${s}`);
  assert.equal(sa.info(c)!.tcpi_state, TCPS_ESTABLISHED);
  const m = u.dequeue();
  assert.notEqual(m, 0, 'the datagram reached the UDP socket');
  p.mb.m_freem(m);
  // netstat -an's sources list both.
  assert.ok(sb.list().some((x) => x.lport === 53 && x.faddr === 0));
  assert.ok(p.b.udp.all().some((x) => x.lport === 53));
  p.a.udp.detach(cu);
  p.b.udp.detach(u);
  closePair(p, [c, s, l], 70_000, done);
});

test('tcp pcb: a port held by TIME_WAIT: bind without SO_REUSEADDR is EADDRINUSE, with it the port listens again; the old 4-tuple stays taken', () => {
  const { done, p, sa, sb } = start();
  const [c, s, l] = connectPair(p, 8080);
  // The server closes first: its end of the connection (local port 8080) goes to TIME_WAIT.
  sb.close(s);
  settle(p, 20);
  sa.close(c);
  settle(p, 20);
  sb.close(l);
  assert.ok(sb.list().some((x) => x.lport === 8080 && x.state === TCPS_TIME_WAIT), 'TIME_WAIT on 8080');
  const plain = sb.socket();
  assert.equal(sb.bind(plain, 0, 8080), -EADDRINUSE, 'TIME_WAIT holds the port');
  assert.equal(sb.bind(plain, B, 8080), -EADDRINUSE, 'also for the specific address');
  const reuse = sb.socket();
  setopt(sb, reuse, SO_REUSEADDR);
  assert.equal(sb.bind(reuse, 0, 8080), 0, 'SO_REUSEADDR binds beside TIME_WAIT');
  assert.equal(sb.listen(reuse, 4), 0);
  // A new connection to the reopened listener works (a fresh client port).
  const c2 = sa.socket();
  assert.equal(sa.connect(c2, B, 8080), -EINPROGRESS);
  settle(p);
  const s2 = sb.accept(reuse);
  assert.ok(s2 > 0, `accept ${s2}`);
  // After 2 MSL the port is free without options.
  sa.close(c2);
  sb.close(s2);
  sb.close(reuse);
  settle(p, 70_000);
  assert.ok(!sb.list().some((x) => x.lport === 8080), `nothing left on 8080: ${JSON.stringify(sb.list())}`);
  assert.equal(sb.bind(plain, 0, 8080), 0, 'free after TIME_WAIT');
  sb.close(plain);
  p.close();
  done();
});

test('tcp pcb: connect from a bound port whose 4-tuple is in TIME_WAIT is EADDRINUSE; another peer port is fine', () => {
  const { done, p, sa, sb } = start();
  const l = sb.socket();
  assert.equal(sb.bind(l, 0, 80), 0);
  assert.equal(sb.listen(l, 4), 0);
  const c = sa.socket();
  setopt(sa, c, SO_REUSEADDR);
  assert.equal(sa.bind(c, 0, 40000), 0);
  assert.equal(sa.connect(c, B, 80), -EINPROGRESS);
  settle(p);
  const s = sb.accept(l);
  assert.ok(s > 0);
  sa.close(c); // a closes first: a's 10.0.0.1:40000 -> 10.0.0.2:80 goes to TIME_WAIT
  settle(p, 20);
  sb.close(s);
  settle(p, 20);
  assert.ok(sa.list().some((x) => x.lport === 40000 && x.state === TCPS_TIME_WAIT));
  const again = sa.socket();
  assert.equal(sa.bind(again, 0, 40000), -EADDRINUSE, 'without SO_REUSEADDR');
  setopt(sa, again, SO_REUSEADDR);
  assert.equal(sa.bind(again, 0, 40000), 0, 'with SO_REUSEADDR');
  assert.equal(sa.connect(again, B, 80), -EADDRINUSE, 'the 4-tuple is in TIME_WAIT');
  sa.close(again); // unconnected on 0.0.0.0:40000 it would conflict with the next bind even with SO_REUSEADDR
  const other = sa.socket();
  setopt(sa, other, SO_REUSEADDR);
  assert.equal(sa.bind(other, 0, 40000), 0);
  const l2 = sb.socket();
  assert.equal(sb.bind(l2, 0, 81), 0);
  assert.equal(sb.listen(l2, 4), 0);
  assert.equal(sa.connect(other, B, 81), -EINPROGRESS, 'a different 4-tuple from the same port');
  settle(p);
  const s2 = sb.accept(l2);
  assert.ok(s2 > 0);
  closePair(p, [other, s2, l2], 70_000, () => {});
  p.b.tcp.sockets!.close(l);
  done();
});

test('tcp pcb: SO_REUSEPORT lets two sockets share a port only when both set it; SO_REUSEPORT_LB listeners share the SYNs by flow', () => {
  const { done, p, sa, sb } = start();
  const one = sb.socket();
  setopt(sb, one, SO_REUSEPORT);
  assert.equal(sb.bind(one, 0, 7000), 0);
  assert.equal(sb.bind(sb.socket(), 0, 7000), -EADDRINUSE, 'the second lacks SO_REUSEPORT');
  const two = sb.socket();
  setopt(sb, two, SO_REUSEPORT);
  assert.equal(sb.bind(two, 0, 7000), 0, 'both have SO_REUSEPORT');
  sb.close(one);
  sb.close(two);
  // Two load-balanced listeners: connections from many client ports spread over both.
  const ls = [sb.socket(), sb.socket()];
  for (const l of ls) {
    setopt(sb, l, SO_REUSEPORT_LB);
    const out = new Int32Array(1);
    assert.equal(sb.getsockopt(l, SOL_SOCKET, SO_REUSEPORT_LB, out), 0);
    assert.equal(out[0], 1);
    assert.equal(sb.bind(l, 0, 7001), 0);
    assert.equal(sb.listen(l, 64), 0);
  }
  assert.equal(sb.bind(sb.socket(), 0, 7001), -EADDRINUSE, 'a plain socket cannot join');
  const N = 32;
  const cs: number[] = [];
  for (let i = 0; i < N; i++) {
    const c = sa.socket();
    assert.equal(sa.connect(c, B, 7001), -EINPROGRESS);
    cs.push(c);
  }
  settle(p, 200);
  const got = ls.map((l) => {
    const ids: number[] = [];
    for (let s = sb.accept(l); s > 0; s = sb.accept(l)) ids.push(s);
    return ids;
  });
  assert.equal(got[0].length + got[1].length, N, 'every connection accepted once');
  assert.ok(got[0].length > 0 && got[1].length > 0, `both listeners served: ${got[0].length} / ${got[1].length}`);
  // The same flow always picks the same listener: the listener that took each client port is its hash's.
  for (const c of cs) sa.close(c);
  for (const ids of got) for (const s of ids) sb.close(s);
  // One listener closing leaves the group to the other.
  sb.close(ls[0]);
  const late = sa.socket();
  assert.equal(sa.connect(late, B, 7001), -EINPROGRESS);
  settle(p);
  const s = sb.accept(ls[1]);
  assert.ok(s > 0, 'the remaining member takes every SYN');
  closePair(p, [late, s, ls[1]], 70_000, done);
});

test('tcp pcb: ephemeral ports are random inside net.inet.ip.portrange.* (and IP_PORTRANGE_HIGH); a used-up range is EADDRNOTAVAIL', () => {
  const { done, p, sa, sb } = start();
  const l = sb.socket();
  assert.equal(sb.bind(l, 0, 80), 0);
  assert.equal(sb.listen(l, 128), 0);
  assert.equal(sysctl(p.a, 'net.inet.ip.portrange.randomized'), 1);
  sysctl(p.a, 'net.inet.ip.portrange.first', 20000);
  sysctl(p.a, 'net.inet.ip.portrange.last', 29999);
  // connect without bind (RFC 6056 algorithm 3) and bind to port 0 (algorithm 1).
  const ports: number[] = [];
  const ids: number[] = [];
  for (let i = 0; i < 40; i++) {
    const c = sa.socket();
    ids.push(c);
    if (i % 2 === 0) assert.equal(sa.connect(c, B, 80), -EINPROGRESS);
    else assert.equal(sa.bind(c, 0, 0), 0);
    ports.push(sa.sockname(c)!.port);
  }
  for (const x of ports) assert.ok(x >= 20000 && x <= 29999, `${x} in range`);
  // Bound ports are distinct among themselves, and so are the connect-chosen ones (one destination);
  // a connect-chosen port may equal a port that a wildcard, unconnected socket is bound to: the
  // connect only needs a free 4-tuple (FreeBSD's in_pcb_lport_dest looks up the exact tuple).
  // The whole set being distinct held only by chance (a 20 x 20 collision in 10,000 ports: ~4%).
  const connected = ports.filter((_, i) => i % 2 === 0);
  const bound = ports.filter((_, i) => i % 2 === 1);
  assert.equal(new Set(connected).size, connected.length, 'connect ports distinct');
  assert.equal(new Set(bound).size, bound.length, 'bound ports distinct');
  let runs = 0;
  for (let i = 1; i < ports.length; i++) if (Math.abs(ports[i] - ports[i - 1]) <= 2) runs++;
  assert.ok(runs < 10, `not sequential: ${ports.join(' ')}`);
  // IP_PORTRANGE_HIGH takes hifirst..hilast.
  sysctl(p.a, 'net.inet.ip.portrange.hifirst', 60000);
  sysctl(p.a, 'net.inet.ip.portrange.hilast', 60009);
  const hi = sa.socket();
  ids.push(hi);
  assert.equal(sa.setsockopt(hi, IPPROTO_IP, IP_PORTRANGE, IP_PORTRANGE_HIGH), 0);
  const out = new Int32Array(1);
  assert.equal(sa.getsockopt(hi, IPPROTO_IP, IP_PORTRANGE, out), 0);
  assert.equal(out[0], IP_PORTRANGE_HIGH);
  assert.equal(sa.bind(hi, 0, 0), 0);
  const hp = sa.sockname(hi)!.port;
  assert.ok(hp >= 60000 && hp <= 60009, `high range ${hp}`);
  assert.equal(sa.setsockopt(hi, IPPROTO_IP, IP_PORTRANGE, 7), -22, 'EINVAL for an unknown range');
  // Exhaustion: a range of two ports.
  sysctl(p.a, 'net.inet.ip.portrange.first', 30000);
  sysctl(p.a, 'net.inet.ip.portrange.last', 30001);
  for (let i = 0; i < 2; i++) {
    const c = sa.socket();
    ids.push(c);
    assert.equal(sa.bind(c, 0, 0), 0);
  }
  const c3 = sa.socket();
  ids.push(c3);
  assert.equal(sa.bind(c3, 0, 0), -EADDRNOTAVAIL, 'bind: range used up');
  // connect needs only a free 4-tuple (FreeBSD's in_pcb_lport_dest): the bound ports serve again, two per destination.
  const c4 = sa.socket();
  ids.push(c4);
  assert.equal(sa.connect(c3, B, 80), -EINPROGRESS);
  assert.equal(sa.connect(c4, B, 80), -EINPROGRESS);
  assert.deepEqual([sa.sockname(c3)!.port, sa.sockname(c4)!.port].sort(), [30000, 30001]);
  const c5 = sa.socket();
  ids.push(c5);
  assert.equal(sa.connect(c5, B, 80), -EADDRNOTAVAIL, 'connect: every 4-tuple toward b:80 is used');
  assert.equal(sa.connect(c5, B, 81), -EINPROGRESS, 'another destination port has its own 4-tuples');
  sysctl(p.a, 'net.inet.ip.portrange.first', 49152);
  sysctl(p.a, 'net.inet.ip.portrange.last', 65535);
  sysctl(p.a, 'net.inet.ip.portrange.hifirst', 49152);
  sysctl(p.a, 'net.inet.ip.portrange.hilast', 65535);
  settle(p, 200);
  for (const c of ids) sa.close(c);
  for (let s = sb.accept(l); s > 0; s = sb.accept(l)) sb.close(s);
  sb.close(l);
  settle(p, 70_000);
  assert.equal(p.a.tcp.all.size + p.b.tcp.all.size, 0);
  p.close();
  done();
});

test('tcp pcb: a SYN to a bound socket that does not listen is answered with a RST from that socket, a listener elsewhere is not consulted', () => {
  const { done, p, sa, sb } = start();
  const l = sb.socket();
  setopt(sb, l, SO_REUSEADDR);
  assert.equal(sb.bind(l, 0, 90), 0);
  assert.equal(sb.listen(l, 4), 0);
  // SO_REUSEADDR: a specific address beside the INADDR_ANY listener (FreeBSD's exact search).
  const bound = sb.socket();
  setopt(sb, bound, SO_REUSEADDR);
  assert.equal(sb.bind(bound, B, 90), 0);
  const c = sa.socket();
  assert.equal(sa.connect(c, B, 90), -EINPROGRESS);
  settle(p);
  assert.equal(sb.accept(l), -35, 'EAGAIN: the specific bound socket took the SYN');
  assert.equal(sa.read(c, new Uint8Array(1)), -61, 'ECONNREFUSED');
  sa.close(c);
  sb.close(bound);
  // With the bound socket gone, the listener gets the next SYN.
  const c2 = sa.socket();
  assert.equal(sa.connect(c2, B, 90), -EINPROGRESS);
  settle(p);
  const s = sb.accept(l);
  assert.ok(s > 0);
  closePair(p, [c2, s, l], 70_000, done);
});
