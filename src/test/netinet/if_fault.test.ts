// Containment of a fault while handling one received frame (Ifnet.input):
// the CPU keeps running, the frame is freed exactly when the input path
// still owns it (never a double free of a frame already freed, queued or
// sent), the fault is counted (ifaults) and logged at most once a second
// naming the stack and the function that threw. In debug mode it throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testUma } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { IFC_IERRORS, IFC_IFAULTS } from '../../net/if.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { MT_DATA } from '../../kern/mbuf/layout.js';
import { faultSite } from '../../netinet/if_fault.js';
import { zoneStats } from '../../uma/stats.js';
import { echoFrame, host, IP_PEER, listen, MAC_PEER, udpFrame } from './fixture.js';

/** A host in production mode (no arena debug flag), logging into `lines`. */
function prodHost(lines: string[]) {
  const uma = testUma({ debug: false });
  return host({ log: (s) => lines.push(s) }, uma, Mbufs.create(uma));
}

class ParserBug extends Error {}

test('if: a handler that throws before freeing: the frame is freed, counted, logged; the CPU keeps answering', () => {
  const lines: string[] = [];
  const h = prodHost(lines);
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  const real = h.st.icmp.input.bind(h.st.icmp);
  let armed = true;
  h.st.icmp.input = function icmpInputWithBug(m: number, hlen: number) {
    if (armed) throw new ParserBug('bad option walk');
    real(m, hlen);
  };
  h.inject(echoFrame({}));
  assert.equal(h.ifp.counters[IFC_IFAULTS], 1);
  assert.equal(h.ifp.counters[IFC_IERRORS], 1, 'netstat -i Ierrs');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^h: mem0: input handler Icmp\.icmpInputWithBug threw Error: bad option walk; frame dropped$/);
  armed = false;
  h.inject(echoFrame({}));
  assert.equal(h.take().length, 1, 'still answering');
  h.finish(); // nothing leaked: the faulting frame was freed
});

test('if: a handler that frees the frame and then throws: no double free', () => {
  const lines: string[] = [];
  const h = prodHost(lines);
  h.st.icmp.input = (m: number) => {
    h.mb.m_freem(m);
    throw new ParserBug('after free');
  };
  const before = zoneStats(h.uma.zone('mbuf')).used;
  h.inject(echoFrame({}));
  assert.match(lines[0], /frame left to its holder/);
  // A double free would put one mbuf in the cache twice: two allocations would get the same handle.
  const a = h.mb.m_get(M_NOWAIT, MT_DATA);
  const b = h.mb.m_get(M_NOWAIT, MT_DATA);
  assert.notEqual(a, b);
  h.mb.m_free(a);
  h.mb.m_free(b);
  assert.equal(zoneStats(h.uma.zone('mbuf')).used, before);
  h.finish();
});

test('if: a handler that queued the frame on a socket and then throws: the socket keeps it, nothing freed twice', () => {
  const lines: string[] = [];
  const h = prodHost(lines);
  const sock = listen(h, 7);
  const pcb = h.st.udp.lookup(0x0a000001, 7, IP_PEER, 4000)!;
  // so_upcall runs right after the datagram is in the socket's receive ring.
  const upcall = pcb.upcall;
  pcb.upcall = () => {
    upcall?.();
    throw new ParserBug('after enqueue');
  };
  h.inject(udpFrame({ dport: 7 }));
  assert.equal(h.ifp.counters[IFC_IFAULTS], 1);
  assert.match(lines[0], /left to its holder/);
  assert.equal(sock.drain(), 1, 'the datagram is still on the socket, intact');
  h.finish();
});

test('if: a frame reflected (sent) before the throw is not freed by the containment', () => {
  const lines: string[] = [];
  const h = prodHost(lines);
  h.st.arp.set(h.ifp, IP_PEER, MAC_PEER);
  const real = h.st.icmp.input.bind(h.st.icmp);
  h.st.icmp.input = (m: number, hlen: number) => {
    real(m, hlen); // the echo request becomes the reply, transmitted (the capture driver frees it)
    throw new ParserBug('after reply');
  };
  h.inject(echoFrame({}));
  assert.equal(h.take().length, 1);
  assert.match(lines[0], /left to its holder/);
  h.finish();
});

test('if: fault logs are rate-limited to one a second on the stack clock, every fault counted', () => {
  const lines: string[] = [];
  const h = prodHost(lines);
  h.st.icmp.input = () => {
    throw new ParserBug('again');
  };
  for (let i = 0; i < 50; i++) h.inject(echoFrame({ seq: i }));
  assert.equal(h.ifp.counters[IFC_IFAULTS], 50);
  assert.equal(lines.length, 1);
  h.td.advance(1000);
  h.inject(echoFrame({}));
  assert.equal(lines.length, 2);
  assert.match(lines[1], /\(49 more since the last report\)$/);
  h.finish();
});

test('if: in debug mode a handler fault throws out of input (tests fail loudly)', () => {
  const h = host(); // the fixture's arena is in debug mode
  h.st.icmp.input = () => {
    throw new ParserBug('loud');
  };
  assert.throws(() => h.inject(echoFrame({})), ParserBug);
  assert.equal(h.ifp.counters[IFC_IFAULTS], 1);
  h.st.close();
});

test('if: faultSite names the function that threw', () => {
  function someHandler(): never {
    throw new Error('x');
  }
  try {
    someHandler();
  } catch (e) {
    assert.equal(faultSite(e), 'someHandler');
  }
  assert.equal(faultSite('not an error'), 'unknown');
});
