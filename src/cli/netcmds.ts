/**
 * `slabnet netstat` (`demo --tap` lives in netdemo.ts: runTapMpDemo).
 *
 * netstat runs a machine with the two-host stack, binds a server socket
 * (host 1, port 53, one PCB per CPU) and a connected client, exchanges a
 * few queries, and prints the requested reports (-s protocol counters
 * summed from the arena, -i interfaces, -an the socket table of every CPU,
 * -m mbufs).
 */
import { once } from 'node:events';
import { netstatM } from '../kern/mbuf/stats.js';
import { formatNetstatAn, pcbList, startNet } from '../lib/netuser.js';
import { createSocket as createUserSocket } from '../lib/udpuser.js';
import { dnsAnswer, dnsParseAnswer, dnsQuery } from '../apps/dns.js';
import { formatNetstatS } from '../netinet/stats.js';

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
