// The shared PCB module (in_pcb.ts) on its own: bind conflicts with and
// without the reuse options, wildcard against specific addresses, lookup
// order, RFC 6056 ephemeral ports and the portrange settings, exhaustion,
// 4-tuple uniqueness and TIME_WAIT reuse, the move halves, and a model-based
// property test of lookup against a brute-force reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EADDRINUSE, EADDRNOTAVAIL, EINVAL, EISCONN } from '../../kern/errno.js';
import { Prng } from '../../kern/prng.js';
import { SO_REUSEADDR, SO_REUSEPORT, SO_REUSEPORT_LB } from '../../kern/socket/sockopt.js';
import {
  INADDR_ANY,
  INP_HIGHPORT,
  INP_LOWPORT,
  INP_MOVING,
  INP_TIMEWAIT,
  INPLOOKUP_WILDCARD,
  InPcb,
  InPcbInfo,
  PORTRANGE_DEFAULTS,
  keyedHash32,
  type PortRangeConfig,
} from '../../netinet/in_pcb.js';

const A1 = 0x0a000001; // 10.0.0.1
const A2 = 0x0a000002; // 10.0.0.2, also ours
const PEER = 0x0a000063;
const PEER2 = 0x0a000064;
const MCAST = 0xe0000001;

class Pcb extends InPcb {
  constructor(readonly name = '', opts = 0) {
    super();
    this.soOptions = opts;
  }
}

function table(ports: Partial<PortRangeConfig> = {}, extra: Partial<ConstructorParameters<typeof InPcbInfo<Pcb>>[0]> = {}): InPcbInfo<Pcb> {
  const rng = new Prng(42);
  return new InPcbInfo<Pcb>({ ports: { ...PORTRANGE_DEFAULTS, ...ports }, isLocal: (a) => a === A1 || a === A2, random: () => rng.u32(), lbAtBind: true, ...extra });
}

function bound(t: InPcbInfo<Pcb>, laddr: number, lport: number, opts = 0, name = ''): Pcb {
  const p = new Pcb(name, opts);
  assert.equal(t.bind(p, laddr, lport), 0, `bind ${name} ${laddr.toString(16)}:${lport}`);
  return p;
}

test('bind: wildcard and specific addresses conflict without reuse options; distinct specific ones do not', () => {
  const t = table();
  bound(t, INADDR_ANY, 53);
  assert.equal(t.bind(new Pcb(), A1, 53), EADDRINUSE, 'specific beside INADDR_ANY');
  const u = table();
  bound(u, A1, 53);
  assert.equal(u.bind(new Pcb(), INADDR_ANY, 53), EADDRINUSE, 'INADDR_ANY beside specific');
  assert.equal(u.bind(new Pcb(), A1, 53), EADDRINUSE, 'the same specific address');
  bound(u, A2, 53);
  assert.equal(u.bind(new Pcb(), A1, 54), 0, 'another port');
});

test('bind: EINVAL twice, EADDRNOTAVAIL for an address that is not ours, port range checked', () => {
  const t = table();
  const p = bound(t, INADDR_ANY, 7);
  assert.equal(t.bind(p, INADDR_ANY, 8), EINVAL);
  assert.equal(t.bind(new Pcb(), PEER, 7), EADDRNOTAVAIL);
  assert.equal(t.bind(new Pcb(), INADDR_ANY, 70000), EINVAL);
  const dropped = new Pcb();
  t.remove(dropped);
  assert.equal(t.bind(dropped, INADDR_ANY, 9), EINVAL, 'a removed PCB cannot be bound again');
});

test('SO_REUSEADDR: a specific address beside INADDR_ANY, and beside connected PCBs; not an exact duplicate', () => {
  const t = table();
  bound(t, INADDR_ANY, 80);
  assert.equal(t.bind(new Pcb('', SO_REUSEADDR), A1, 80), 0, 'exact search: INADDR_ANY does not match A1');
  assert.equal(t.bind(new Pcb('', SO_REUSEADDR), INADDR_ANY, 80), EADDRINUSE, 'an exact duplicate needs SO_REUSEPORT');
  // A connected PCB on the port (an accepted connection, a TIME_WAIT one).
  const u = table();
  const c = new Pcb();
  assert.equal(u.connect(c, PEER, 1234, A1), 0);
  assert.equal(u.bind(new Pcb(), INADDR_ANY, c.lport), EADDRINUSE, 'without reuse the connected PCB counts');
  assert.equal(u.bind(new Pcb('', SO_REUSEADDR), INADDR_ANY, c.lport), 0, 'SO_REUSEADDR ignores connected PCBs');
});

test('SO_REUSEPORT: full duplicates when every socket has it; one without breaks the sharing', () => {
  const t = table();
  bound(t, INADDR_ANY, 5000, SO_REUSEPORT);
  bound(t, INADDR_ANY, 5000, SO_REUSEPORT);
  assert.equal(t.bind(new Pcb(), INADDR_ANY, 5000), EADDRINUSE, 'new socket without the option');
  assert.equal(t.bind(new Pcb('', SO_REUSEADDR), INADDR_ANY, 5000), EADDRINUSE, 'SO_REUSEADDR alone is not enough');
  const u = table();
  bound(u, INADDR_ANY, 5001);
  assert.equal(u.bind(new Pcb('', SO_REUSEPORT), INADDR_ANY, 5001), EADDRINUSE, 'the earlier socket lacks the option');
  // Multicast: SO_REUSEADDR counts as SO_REUSEPORT.
  const m = table();
  bound(m, MCAST, 5353, SO_REUSEADDR);
  assert.equal(m.bind(new Pcb('', SO_REUSEADDR), MCAST, 5353), 0);
});

test('SO_REUSEPORT_LB: a group shares the port; lookup picks a member by hash, consistently, and falls back when members leave', () => {
  const t = table();
  const ms = [0, 1, 2].map((i) => bound(t, INADDR_ANY, 6000, SO_REUSEPORT_LB, `m${i}`));
  assert.equal(t.bind(new Pcb('', SO_REUSEPORT), INADDR_ANY, 6000), EADDRINUSE, 'SO_REUSEPORT does not join an LB group');
  const seen = new Set<string>();
  for (let h = 0; h < 30; h++) {
    const p = t.lookup(A1, 6000, PEER, 1000 + h, INPLOOKUP_WILDCARD, h * 2654435761);
    assert.ok(p !== null);
    seen.add(p.name);
    assert.equal(t.lookup(A1, 6000, PEER, 1000 + h, INPLOOKUP_WILDCARD, h * 2654435761), p, 'same hash, same member');
  }
  assert.equal(seen.size, 3, 'every member gets flows');
  t.remove(ms[0]);
  t.remove(ms[1]);
  for (let h = 0; h < 10; h++) assert.equal(t.lookup(A1, 6000, PEER, 1, INPLOOKUP_WILDCARD, h)?.name, 'm2');
  t.remove(ms[2]);
  assert.equal(t.lookup(A1, 6000, PEER, 1), null);
  assert.equal(t.count, 0);
});

test('lookup order: exact 4-tuple, then the LB group, then the specific address, then INADDR_ANY; no wildcard flag means exact only', () => {
  const t = table();
  const any = bound(t, INADDR_ANY, 7, SO_REUSEADDR, 'any');
  const spec = bound(t, A1, 7, SO_REUSEADDR, 'spec');
  const conn = new Pcb('conn', SO_REUSEADDR);
  assert.equal(t.bind(conn, A1, 7), EADDRINUSE, 'same specific address');
  assert.equal(t.bind(conn, A2, 7), 0);
  assert.equal(t.connect(conn, PEER, 99, A2), 0);
  assert.equal(t.lookup(A2, 7, PEER, 99)?.name, 'conn');
  assert.equal(t.lookup(A2, 7, PEER, 98)?.name, 'any', 'other peer: the wildcard');
  assert.equal(t.lookup(A1, 7, PEER, 99)?.name, 'spec', 'specific beats INADDR_ANY');
  assert.equal(t.lookup(A2, 7, PEER, 98, 0), null, 'exact only');
  assert.equal(t.lookup(A2, 7, PEER, 99, 0)?.name, 'conn');
  const lb = table();
  bound(lb, INADDR_ANY, 7, SO_REUSEPORT | SO_REUSEADDR, 'plain');
  bound(lb, A1, 7, SO_REUSEPORT_LB, 'lb');
  assert.equal(lb.lookup(A1, 7, PEER, 1)?.name, 'lb', 'an LB group on the address before the plain wildcard');
  assert.equal(lb.lookup(A2, 7, PEER, 1)?.name, 'plain');
  t.remove(spec);
  assert.equal(t.lookup(A1, 7, PEER, 99)?.name, 'any');
  t.remove(any);
  t.remove(conn);
  assert.equal(t.count, 0);
});

test('ephemeral ports: inside the range, randomized by default, sequential with randomized = 0, ranges follow the sysctl fields', () => {
  const ports: PortRangeConfig = { ...PORTRANGE_DEFAULTS };
  const t = table();
  const got: number[] = [];
  for (let i = 0; i < 50; i++) {
    const p = new Pcb();
    assert.equal(t.bind(p, INADDR_ANY, 0), 0);
    assert.ok(p.lport >= 49152 && p.lport <= 65535, `${p.lport}`);
    got.push(p.lport);
  }
  assert.equal(new Set(got).size, 50);
  const steps = got.slice(1).filter((p, i) => p === got[i] + 1).length;
  assert.ok(steps < 5, `randomized ports should not run in sequence: ${got.join(',')}`);
  const s = table({ portRandomized: false, portFirst: 20000, portLast: 20010 });
  const seq = Array.from({ length: 5 }, () => bound(s, INADDR_ANY, 0).lport);
  assert.deepEqual(seq, [20000, 20001, 20002, 20003, 20004]);
  // The fields are read live (sysctl writes land in the same object).
  const live = new InPcbInfo<Pcb>({ ports, isLocal: () => true, random: () => 7 });
  ports.portFirst = 30000;
  ports.portLast = 30000;
  assert.equal(bound(live, INADDR_ANY, 0).lport, 30000);
  // IP_PORTRANGE_HIGH / LOW take their own ranges; FreeBSD's low range is given high to low.
  const r = table({ portHiFirst: 61000, portHiLast: 61001, portLowFirst: 1023, portLowLast: 1020 });
  const hi = new Pcb();
  hi.flags |= INP_HIGHPORT;
  assert.equal(r.bind(hi, INADDR_ANY, 0), 0);
  assert.ok(hi.lport === 61000 || hi.lport === 61001);
  const lo = new Pcb();
  lo.flags |= INP_LOWPORT;
  assert.equal(r.bind(lo, INADDR_ANY, 0), 0);
  assert.ok(lo.lport >= 1020 && lo.lport <= 1023, `${lo.lport}`);
});

test('exhaustion: a full ephemeral range is EADDRNOTAVAIL, and a freed port is found again', () => {
  const t = table({ portFirst: 40000, portLast: 40003 });
  const ps = Array.from({ length: 4 }, () => bound(t, INADDR_ANY, 0));
  assert.deepEqual(ps.map((p) => p.lport).sort(), [40000, 40001, 40002, 40003]);
  assert.equal(t.bind(new Pcb(), INADDR_ANY, 0), EADDRNOTAVAIL);
  assert.equal(t.connect(new Pcb(), PEER, 53, A1), 0, 'a connect only needs a free 4-tuple');
  t.remove(ps[2]);
  const again = new Pcb();
  assert.equal(t.bind(again, INADDR_ANY, 0), 0);
  assert.equal(again.lport, ps[2].lport);
  const c = table({ portFirst: 40000, portLast: 40001 });
  for (let i = 0; i < 2; i++) assert.equal(c.connect(new Pcb(), PEER, 53, A1), 0);
  assert.equal(c.connect(new Pcb(), PEER, 53, A1), EADDRNOTAVAIL, 'every 4-tuple to PEER:53 taken');
  assert.equal(c.connect(new Pcb(), PEER, 54, A1), 0, 'another destination still has ports');
});

test('portOk (the port-partitioning hook): bind and connect take only ports the predicate accepts; none accepted is EADDRNOTAVAIL', () => {
  const t = table({ portFirst: 40000, portLast: 40063 });
  const seen: [number, number, number, number][] = [];
  const even = (l: number, p: number, f: number, fp: number): boolean => {
    seen.push([l, p, f, fp]);
    return p % 4 === 0;
  };
  for (let i = 0; i < 8; i++) {
    const c = new Pcb();
    assert.equal(t.connect(c, PEER, 53, A1, even), 0);
    assert.equal(c.lport % 4, 0, `${c.lport}`);
  }
  assert.ok(seen.every(([l, , f, fp]) => l === A1 && f === PEER && fp === 53), 'the predicate sees the candidate 4-tuple');
  const b = new Pcb();
  assert.equal(t.bind(b, INADDR_ANY, 0, (_l, _p, f, fp) => f === INADDR_ANY && fp === 0 && _p % 4 === 1), 0);
  assert.equal(b.lport % 4, 1);
  assert.equal(t.connect(new Pcb(), PEER, 53, A1, () => false), EADDRNOTAVAIL);
  assert.equal(t.bind(new Pcb(), INADDR_ANY, 0, () => false), EADDRNOTAVAIL);
  // 16 ports are = 0 mod 4: eight more connects to PEER:53 fill them, the next finds none.
  for (let i = 0; i < 8; i++) assert.equal(t.connect(new Pcb(), PEER, 53, A1, even), 0);
  assert.equal(t.connect(new Pcb(), PEER, 53, A1, even), EADDRNOTAVAIL);
});

test('connect: RFC 6056 algorithm 3 gives one destination fresh ports, a taken 4-tuple is EADDRINUSE, TIME_WAIT may be recycled', () => {
  const t = table();
  const a = new Pcb();
  const b = new Pcb();
  assert.equal(t.connect(a, PEER, 53, A1), 0);
  assert.equal(t.connect(b, PEER, 53, A1), 0);
  assert.notEqual(a.lport, b.lport);
  assert.equal(a.laddr, A1);
  // Two sockets sharing a port cannot both connect to one peer.
  const u = table();
  const x = bound(u, A1, 7000, SO_REUSEPORT);
  const y = bound(u, A1, 7000, SO_REUSEPORT);
  assert.equal(u.connect(x, PEER, 80, 0), 0);
  assert.equal(u.connect(y, PEER, 80, 0), EADDRINUSE);
  assert.equal(u.connect(y, PEER2, 80, 0), 0);
  assert.equal(u.connect(new Pcb(), INADDR_ANY, 80, A1), EADDRNOTAVAIL);
  assert.equal(u.connect(new Pcb(), PEER, 0, A1), EADDRNOTAVAIL);
  assert.equal(u.connect(new Pcb(), PEER, 80, INADDR_ANY), EADDRNOTAVAIL, 'no source address');
  // TIME_WAIT: the hook decides.
  let recycle = false;
  const calls: string[] = [];
  const w = table({}, { onTimeWait: (tw, inp) => (calls.push(`${tw.name}->${inp.name}`), recycle) });
  const tw = bound(w, A1, 8000, SO_REUSEADDR, 'tw');
  assert.equal(w.connect(tw, PEER, 80, 0), 0);
  tw.flags |= INP_TIMEWAIT;
  const n = bound(w, A1, 8000, SO_REUSEADDR, 'new');
  assert.equal(w.connect(n, PEER, 80, 0), EADDRINUSE);
  recycle = true;
  assert.equal(w.connect(n, PEER, 80, 0), 0);
  assert.deepEqual(calls, ['tw->new', 'tw->new']);
  assert.equal(w.lookup(A1, 8000, PEER, 80), n);
  assert.ok((tw.flags & 0x0400_0000) !== 0, 'the recycled PCB is dropped');
});

test('disconnect returns to the wildcard list; the move halves: markMoving, insertConnected refusing a held 4-tuple', () => {
  const t = table();
  const p = new Pcb('p');
  assert.equal(t.connect(p, PEER, 53, A1), 0);
  const port = p.lport;
  t.disconnect(p);
  assert.equal(p.faddr, 0);
  assert.equal(p.laddr, INADDR_ANY);
  assert.equal(t.lookup(A2, port, PEER2, 1)?.name, 'p', 'found by wildcard again');
  t.markMoving(p);
  assert.ok((p.flags & INP_MOVING) !== 0);
  const target = table();
  const q = new Pcb('q');
  assert.equal(target.insertConnected(q, A1, port, PEER, 53), 0);
  assert.equal(target.lookup(A1, port, PEER, 53)?.name, 'q');
  assert.equal(target.insertConnected(new Pcb(), A1, port, PEER, 53), EADDRINUSE);
  assert.equal(target.insertConnected(q, A1, port, PEER, 53), EINVAL, 'already entered');
  target.remove(q);
  target.remove(q);
  assert.equal(target.lookup(A1, port, PEER, 53), null);
  assert.equal(target.count, 0);
});

test('the exact hash grows and still finds every connection', () => {
  const t = table({}, { hashSize: 4 });
  const ps: Pcb[] = [];
  for (let i = 0; i < 3000; i++) {
    const p = new Pcb();
    assert.equal(t.connect(p, PEER + (i % 7), 1000 + i, A1), 0);
    ps.push(p);
  }
  for (const p of ps) assert.equal(t.lookup(A1, p.lport, p.faddr, p.fport, 0), p);
  for (const p of ps.slice(0, 1500)) t.remove(p);
  for (const p of ps.slice(1500)) assert.equal(t.lookup(A1, p.lport, p.faddr, p.fport, 0), p);
  for (const p of ps.slice(0, 1500)) assert.equal(t.lookup(A1, p.lport, p.faddr, p.fport, 0), null);
});

test('keyedHash32: the secret changes the offsets', () => {
  const k1 = Uint32Array.of(1, 2, 3, 4);
  const k2 = Uint32Array.of(1, 2, 3, 5);
  let differ = 0;
  for (let i = 0; i < 100; i++) if (keyedHash32(k1, A1, PEER + i, 53) !== keyedHash32(k2, A1, PEER + i, 53)) differ++;
  assert.ok(differ > 95);
  assert.equal(keyedHash32(k1, A1, PEER, 53), keyedHash32(k1, A1, PEER, 53));
});

/** Brute-force reference of in_pcblookup (no LB groups): every acceptable answer (duplicates under SO_REUSEPORT tie). */
function refLookup(all: Pcb[], laddr: number, lport: number, faddr: number, fport: number): (Pcb | null)[] {
  const live = all.filter((p) => (p.flags & 0x0400_0000) === 0 && p.lport === lport);
  const exact = live.filter((p) => p.faddr === faddr && p.fport === fport && p.laddr === laddr);
  if (exact.length > 0) return exact;
  const wild = live.filter((p) => p.faddr === 0);
  const spec = wild.filter((p) => p.laddr === laddr);
  if (spec.length > 0) return spec;
  const any = wild.filter((p) => p.laddr === INADDR_ANY);
  return any.length > 0 ? any : [null];
}

test('property: lookup agrees with a brute-force reference over random binds, connects, disconnects and removes', () => {
  const addr = fc.constantFrom(INADDR_ANY, A1, A2);
  const op = fc.oneof(
    fc.record({ k: fc.constant('bind' as const), laddr: addr, port: fc.integer({ min: 1, max: 4 }), opts: fc.constantFrom(0, SO_REUSEADDR, SO_REUSEPORT) }),
    fc.record({ k: fc.constant('connect' as const), i: fc.nat(), f: fc.constantFrom(PEER, PEER2), fport: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ k: fc.constant('disconnect' as const), i: fc.nat() }),
    fc.record({ k: fc.constant('remove' as const), i: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), fc.array(fc.tuple(addr, fc.integer({ min: 1, max: 4 }), fc.constantFrom(PEER, PEER2), fc.integer({ min: 1, max: 3 })), { minLength: 1, maxLength: 20 }), (ops, probes) => {
      const t = table({ portFirst: 1, portLast: 4 } as Partial<PortRangeConfig>);
      const all: Pcb[] = [];
      for (const o of ops) {
        if (o.k === 'bind') {
          const p = new Pcb('', o.opts);
          if (t.bind(p, o.laddr, o.port) === 0) all.push(p);
        } else if (all.length > 0) {
          const p = all[o.i % all.length];
          if (o.k === 'connect') {
            const wasConnected = p.faddr !== INADDR_ANY;
            const e = t.connect(p, o.f, o.fport, A1);
            if ((p.flags & 0x0400_0000) !== 0) assert.equal(e, EINVAL, 'removed');
            else if (wasConnected) assert.equal(e, EISCONN);
            else if (p.faddr !== o.f || p.fport !== o.fport) assert.ok(e === EADDRINUSE || e === EADDRNOTAVAIL, `4-tuple taken or no port: ${e}`);
          }
          else if (o.k === 'disconnect') t.disconnect(p);
          else t.remove(p);
        }
      }
      for (const [l, lp, f, fp] of probes) {
        const la = l === INADDR_ANY ? A1 : l;
        assert.ok(refLookup(all, la, lp, f, fp).includes(t.lookup(la, lp, f, fp)));
      }
      assert.equal(t.count, all.filter((p) => (p.flags & 0x0400_0000) === 0).length);
    }),
    { numRuns: 300 },
  );
});

test('algorithm 3 uses the given F (prng.ts ephemeralPortOffset in the stack): start at first + (F + next) mod n', () => {
  const calls: number[][] = [];
  const t = table({ portFirst: 40000, portLast: 40009 }, { portOffset: (l, f, p) => (calls.push([l, f, p]), 13) });
  const a = new Pcb();
  const b = new Pcb();
  assert.equal(t.connect(a, PEER, 53, A1), 0);
  assert.equal(t.connect(b, PEER, 53, A1), 0);
  assert.equal(a.lport, 40003, '13 mod 10');
  assert.equal(b.lport, 40004, 'next advanced by one try');
  assert.deepEqual(calls[0], [A1, PEER, 53]);
});
