/**
 * `slabnet netstat` and `slabnet demo --tap`.
 *
 * netstat runs a machine with the two-host stack, binds a server socket
 * (host 1, port 53, one PCB per CPU) and a connected client, exchanges a
 * few queries, and prints the requested reports (-s protocol counters
 * summed from the arena, -i interfaces, -an the socket table of every CPU,
 * -m mbufs).
 *
 * demo --tap serves the DNS-like protocol on a Linux TAP device (root): the
 * stack runs in this thread over the TAP driver (polled from this event
 * loop) and the commands a user types to reach it from Linux are printed.
 */
import { once } from 'node:events';
import { netstatM } from '../mbuf/stats.js';
import { Mbufs } from '../mbuf/mbuf.js';
import { Uma } from '../uma/uma.js';
import { zoneStats } from '../uma/stats.js';
import { UMA_ZFLAG_INTERNAL } from '../uma/flags.js';
import { vmstatZ } from '../uma/vmstat.js';
import { formatNetstatAn, pcbList, startNet } from '../net/netuser.js';
import { createSocket as createUserSocket } from '../net/udpuser.js';
import { createSocket } from '../net/dgram.js';
import { dnsAnswer, dnsParseAnswer, dnsQuery } from '../net/dns.js';
import { formatNetstatS, UDPS } from '../net/stats.js';
import { Stack } from '../net/stack.js';
import { TapDriver } from '../net/tapif.js';

export interface NetstatOptions {
  s: boolean;
  m: boolean;
  i: boolean;
  an: boolean;
  cpus: number;
  out?: (s: string) => void;
}

/** The netstat command; returns the exit code. */
export async function runNetstat(o: NetstatOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const sys = await startNet({ ncpus: o.cpus, arenaSize: 128 << 20 });
  const srv = createUserSocket(sys.layer, { type: 'udp4', host: 1 }, (q, r) => {
    const a = dnsAnswer(q);
    if (a !== null) srv.send(a, r.port, r.address);
  });
  const cli = createUserSocket(sys.layer, { type: 'udp4', host: 0 });
  try {
    srv.bind(53);
    await once(srv, 'listening');
    cli.connect(53, '10.0.0.2');
    await once(cli, 'connect');
    const n = 16;
    const got = new Promise<void>((res) => {
      let k = 0;
      cli.on('message', (m: Buffer) => {
        if (dnsParseAnswer(m) !== null && ++k === n) res();
      });
    });
    for (let i = 0; i < n; i++) cli.send(dnsQuery(i, `q${i}.slabnet.test`));
    await got;
    if (o.s) {
      out('host1 (10.0.0.2):');
      out(formatNetstatS(sys.stats(1)));
      out('host0 (10.0.0.1):');
      out(formatNetstatS(sys.stats(0)));
    }
    if (o.i) out(sys.netstatI());
    if (o.an) out(formatNetstatAn(await pcbList(sys.layer)));
    if (o.m) out(netstatM(sys.mb));
  } finally {
    for (const s of [cli, srv]) {
      s.close();
      await s.settled();
    }
    await sys.stop();
  }
  return 0;
}

/**
 * demo --tap: the DNS-like server on a TAP device with a Linux-side
 * address; prints how to reach it, serves for `seconds`, then reports.
 */
export async function runTapDemo(o: { seconds: number; out?: (s: string) => void }): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const uma = Uma.create({ size: 64 << 20, ncpus: 4 });
  const mb = Mbufs.create(uma);
  const before = new Map(uma.allZones().map((z) => [z.name, zoneStats(z).used]));
  const name = `slabnet${process.pid % 10000}`;
  let tap: TapDriver;
  try {
    tap = TapDriver.open(mb, { name, queues: 1 });
  } catch (e) {
    out(`demo --tap: ${(e as Error).message} (run as root on Linux with /dev/net/tun and the addon built)`);
    return 1;
  }
  const st = new Stack(mb, { name: 'slabnet' });
  st.addInterface(tap.ifp, '10.53.0.2', 24);
  const srv = createSocket(st, { type: 'udp4', recvBufferSize: 1 << 20 }, (q, r) => {
    const a = dnsAnswer(q);
    if (a !== null) srv.send(a, r.port, r.address);
  });
  await new Promise<void>((r) => srv.bind(53, r));
  out(`slabnet serves DNS-like queries on ${tap.name}, 10.53.0.2:53 (UDP), for ${o.seconds} s. From Linux (root):`);
  out(`  ip netns add slabnet-peer && ip link set ${tap.name} netns slabnet-peer`);
  out(`  ip -n slabnet-peer addr add 10.53.0.1/24 dev ${tap.name} && ip -n slabnet-peer link set ${tap.name} up`);
  out(`  ip netns exec slabnet-peer ping -c 3 10.53.0.2`);
  out(`  ip netns exec slabnet-peer dig @10.53.0.2 +tries=1 +time=1 example.slabnet.test    # or:`);
  out(`  printf '\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x01a\\x00\\x00\\x01\\x00\\x01' | ip netns exec slabnet-peer socat -t1 - UDP:10.53.0.2:53 | od -An -tx1`);
  out(`  ip netns del slabnet-peer`);
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  out('');
  out(`${st.stats.udp[UDPS.delivered]} datagrams delivered to the server`);
  out('netstat -s:');
  out(formatNetstatS(st.stats));
  srv.close();
  await new Promise((r) => setImmediate(r));
  tap.detach();
  st.close();
  mb.drainPacketCache();
  out('netstat -m:');
  out(netstatM(mb));
  out('vmstat -z:');
  out(vmstatZ(uma).trimEnd());
  const leaks = uma.allZones().filter((z) => (z.flags & UMA_ZFLAG_INTERNAL) === 0 && zoneStats(z).used !== (before.get(z.name) ?? 0));
  if (leaks.length > 0) {
    out(`LEAK: ${leaks.map((z) => z.name).join(', ')}`);
    return 1;
  }
  out('no leaks');
  return 0;
}
