// The tools on a TAP system against a real Linux peer: the DNS server on
// 2 CPUs of a multi-queue TAP answers real `dig` from a namespace this test
// creates (10.81.0.1/24; slabnet is 10.81.0.2; names carry the pid), and
// the control socket of that system shows what happened: the ARP entry the
// CPUs learned from the peer, interface counters, the servers in sockstat,
// and a capture of the dig exchange merged from both CPUs. Needs root,
// /dev/net/tun and dig; under CI=true it must run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leakCheck, testUma } from '../helpers.js';
import { NetNs } from '../net/netns.js';
import { runAsync, skipUnless } from '../net/sys.js';
import { startTapNet, type TapNet } from '../../lib/tapnet.js';
import { NET_DNS_BIND } from '../../net/mpnet.js';
import { openControl, CtlClient } from '../../lib/ctl/index.js';
import { readPcap } from '../../net/phy/pcap.js';

test('dig over TAP gets true answers; arp -a, netstat -i, sockstat and pcap of that system show it', async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'dig'] });
  if (skip) return t.skip(skip);
  const dir = mkdtempSync(join(tmpdir(), 'sltt-'));
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const ns = NetNs.create('tools');
  let net: TapNet | null = null;
  try {
    net = await startTapNet({ ncpus: 2, uma, name: `snt${process.pid % 100000}`, addr: '10.81.0.2', prefix: 24 });
    ns.adopt(net.name, '10.81.0.1/24');
    for (let c = 0; c < 2; c++) assert.deepEqual(await net.machine.call(c, NET_DNS_BIND, [net.host, 53]), [0]);
    const ctl = await openControl(net, { name: 'taptools', dir });
    const cl = await CtlClient.connect(ctl.path);
    try {
      const path = join(dir, 'dig.pcap');
      await cl.request('pcap.start', { path });
      const dig = (...args: string[]) => runAsync(ns.argv(['dig', '@10.81.0.2', '+tries=2', '+time=2', ...args]));
      const a = await dig('Www.Slabnet.Test');
      assert.match(a.out, /status: NOERROR/, a.out + a.err);
      assert.match(a.out, /flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1/);
      assert.match(a.out, /^Www\.Slabnet\.Test\.\s+60\s+IN\s+A\s+10\.53\.\d+\.\d+$/m);
      const aaaa = await dig('www.slabnet.test', 'AAAA');
      assert.match(aaaa.out, /status: NOERROR/);
      assert.match(aaaa.out, /ANSWER: 0,/);
      const ch = await dig('version.bind', 'CH', 'TXT');
      assert.match(ch.out, /status: REFUSED/);
      const stop = await cl.request<{ packets: number }>('pcap.stop', {});
      const udp53 = readPcap(path).records.filter((r) => r.data.length > 14 + 20 + 4 && r.data[14 + 9] === 17 && (r.data[14 + 20 + 2] << 8 | r.data[14 + 20 + 3]) === 53);
      assert.ok(udp53.length >= 3, `the three queries in the capture (${stop.packets} packets)`);
      const peerMac = /link\/ether ([0-9a-f:]{17})/.exec(ns.exec(['ip', 'link', 'show', net.name]))![1];
      const arp = await cl.request<{ text: string }>('arp');
      assert.match(arp.text, new RegExp(`^\\? \\(10\\.81\\.0\\.1\\) at ${peerMac} on ${net.name} expires in \\d+ seconds \\[ethernet\\]$`, 'm'));
      const i = await cl.request<{ data: { name: string; counters: { ipackets: number; opackets: number } }[] }>('netstat', { report: 'i' });
      assert.equal(i.data[0].name, net.name);
      assert.ok(i.data[0].counters.ipackets >= 3 && i.data[0].counters.opackets >= 3);
      const ss = await cl.request<{ text: string }>('sockstat');
      assert.equal(ss.text.split('\n').filter((l) => / stack .* udp4 +\*:53 /.test(l)).length, 2, ss.text);
    } finally {
      cl.close();
      await ctl.close();
    }
  } finally {
    await net?.stop();
    ns.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  done();
});
