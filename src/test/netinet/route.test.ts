// The routing table (route.ts): longest prefix match, the default route,
// replacement and deletion, and what the stack does with a route via a
// gateway (ARP for the gateway, not the destination).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RouteTable } from '../../net/route.js';
import { Ifnet } from '../../net/if.js';
import { ArgumentError } from '../../kern/errors.js';
import { ETHERTYPE_ARP } from '../../wire/ethernet.js';
import { host, IP_PEER, MAC_PEER, parse } from './fixture.js';

const a = (s: string) => s.split('.').reduce((x, o) => x * 256 + Number(o), 0) >>> 0;

function table() {
  const h = host();
  const if0 = h.ifp;
  const if1 = new Ifnet(h.mb, 'mem1', 0x0200_0000_0011);
  return { h, if0, if1, rt: new RouteTable() };
}

test('route: the longest prefix wins, whatever the order routes were added in', () => {
  const { h, if0, if1, rt } = table();
  rt.add(a('10.0.0.0'), 8, 0, if0);
  rt.add(a('10.1.2.0'), 24, a('10.0.0.9'), if1);
  rt.add(a('10.1.0.0'), 16, 0, if1);
  assert.equal(rt.lookup(a('10.1.2.3'))!.prefix, 24);
  assert.equal(rt.lookup(a('10.1.2.3'))!.gateway, a('10.0.0.9'));
  assert.equal(rt.lookup(a('10.1.3.3'))!.prefix, 16);
  assert.equal(rt.lookup(a('10.9.9.9'))!.prefix, 8);
  assert.equal(rt.lookup(a('11.0.0.1')), null, 'no default: no route');
  rt.add(0, 0, a('10.0.0.254'), if0);
  assert.equal(rt.lookup(a('11.0.0.1'))!.gateway, a('10.0.0.254'));
  assert.equal(rt.lookup(a('10.1.2.3'))!.prefix, 24, 'the default never beats a specific route');
  h.finish();
});

test('route: add replaces the same prefix, delete removes it, host routes (/32) work, bad prefixes throw', () => {
  const { h, if0, if1, rt } = table();
  rt.add(a('192.168.1.77'), 24, 0, if0); // host bits are masked off
  assert.equal(rt.routes[0].dst, a('192.168.1.0'));
  rt.add(a('192.168.1.0'), 24, 0, if1);
  assert.equal(rt.routes.length, 1);
  assert.equal(rt.lookup(a('192.168.1.5'))!.ifp, if1);
  rt.add(a('192.168.1.5'), 32, a('10.0.0.2'), if0);
  assert.equal(rt.lookup(a('192.168.1.5'))!.prefix, 32);
  assert.equal(rt.lookup(a('192.168.1.6'))!.prefix, 24);
  assert.ok(rt.delete(a('192.168.1.5'), 32));
  assert.ok(!rt.delete(a('192.168.1.5'), 32));
  assert.equal(rt.lookup(a('192.168.1.5'))!.prefix, 24);
  rt.deleteIf(if1);
  assert.equal(rt.lookup(a('192.168.1.5')), null);
  assert.throws(() => rt.add(0, 33, 0, if0), ArgumentError);
  assert.throws(() => rt.add(0, -1, 0, if0), ArgumentError);
  h.finish();
});

test('route: lookup agrees with a brute-force longest match (property)', () => {
  const { h, if0, rt } = table();
  fc.assert(
    fc.property(fc.array(fc.record({ dst: fc.integer({ min: 0, max: 0xffffffff }), prefix: fc.integer({ min: 0, max: 32 }) }), { maxLength: 20 }), fc.integer({ min: 0, max: 0xffffffff }), (routes, q) => {
      const t = new RouteTable();
      for (const r of routes) t.add(r.dst >>> 0, r.prefix, 0, if0);
      const mask = (p: number) => (p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0);
      let best = -1;
      for (const r of routes) if (((q & mask(r.prefix)) >>> 0) === ((r.dst & mask(r.prefix)) >>> 0)) best = Math.max(best, r.prefix);
      const got = t.lookup(q >>> 0);
      assert.equal(got === null ? -1 : got.prefix, best);
    }),
    { numRuns: 300 },
  );
  void rt;
  h.finish();
});

test('route: the stack sends to an off-link destination through the default gateway (ARP for the gateway)', () => {
  const h = host();
  assert.throws(() => h.st.addRoute('203.0.113.0', 24, '192.0.2.1'), ArgumentError, 'a gateway must be on a connected network');
  h.st.setDefaultRoute(IP_PEER);
  const pcb = h.st.udp.attach();
  assert.equal(h.st.udp.output(pcb, new Uint8Array(4), 0, 4, a('198.51.100.7'), 9), 0);
  h.td.runUntilIdle();
  const [req] = h.take();
  assert.equal(parse(req).type, ETHERTYPE_ARP);
  assert.equal(new DataView(req.buffer).getUint32(14 + 24), IP_PEER, 'who has the gateway');
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  const [f] = h.take();
  const p = parse(f);
  assert.equal(p.dmac, MAC_PEER);
  assert.equal(p.dst, a('198.51.100.7'));
  h.finish();
});
