/**
 * Test fixtures for the stack: an arena with mbufs, and hosts (a Stack with
 * one Ethernet-like interface) joined by in-memory links.
 */
import { testUma } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import type { Uma } from '../../uma/uma.js';
import { Ifnet } from '../../net/if.js';
import { MemLink, type Impairment } from '../../net/phy/memlink.js';
import { Stack, type StackOptions } from '../../netinet/stack.js';

export interface Net {
  uma: Uma;
  mb: Mbufs;
}

export function testNet(): Net {
  const uma = testUma({ size: 128 << 20 });
  return { uma, mb: Mbufs.create(uma) };
}

/** Give cached packet-zone items back (their clusters count as used in the cluster zone), then check for leaks. */
export function finish(net: Net, done: () => void): void {
  net.mb.drainPacketCache();
  done();
}

/** Resolve ARP both ways with one small datagram each way to a closed port, so later bursts are not held. */
export async function warm(p: { a: import('../../netinet/stack.js').Stack; b: import('../../netinet/stack.js').Stack; link: MemLink }): Promise<void> {
  p.a.icmp.echoRequest(0x0a000002, 1, 0, 8);
  await p.link.idle();
  await sleep(5);
  await p.link.idle();
}

export interface Pair {
  a: Stack;
  b: Stack;
  ifa: Ifnet;
  ifb: Ifnet;
  link: MemLink;
  close(): void;
}

/** Two hosts 10.0.0.1 (a) and 10.0.0.2 (b) on one in-memory link. */
export function pair(net: Net, imp?: Impairment, opts: StackOptions = {}, mtu = 1500): Pair {
  const a = new Stack(net.mb, { name: 'a', ...opts });
  const b = new Stack(net.mb, { name: 'b', ...opts, seed: 77 });
  const ifa = new Ifnet(net.mb, 'mem0', 0x0200_0000_000a, mtu);
  const ifb = new Ifnet(net.mb, 'mem0', 0x0200_0000_000b, mtu);
  const link = MemLink.connect(ifa, ifb, imp);
  a.addInterface(ifa, '10.0.0.1', 24);
  b.addInterface(ifb, '10.0.0.2', 24);
  return {
    a,
    b,
    ifa,
    ifb,
    link,
    close() {
      a.close();
      b.close();
      link.close();
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Wait until cond() holds, polling; throws after timeoutMs. */
export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}
