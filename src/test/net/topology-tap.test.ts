// The topology API's TAP interface against a real Linux peer, on one thread
// and on 2 worker CPUs (one queue per CPU). The kernel side lives in a
// namespace this test creates; the test only sends to addresses inside it
// and deletes it at the end. Needs root and /dev/net/tun (skipUnless; under
// CI=true it must run). Device names carry the pid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leakCheck, testUma } from '../helpers.js';
import { NetNs } from './netns.js';
import { assertPings, runAsync as run, skipUnless } from './sys.js';
import { System } from '../../lib/topology.js';
import { NET_ECHO_BIND } from '../../net/mpnet.js';
import { statObject, UDP_DESC } from '../../netinet/stats.js';

const FLOWS = 8;

/** FLOWS sockets in the namespace, one echo each to addr:7; prints {ok, bad}. */
function echoScript(addr: string): string {
  return `
    const d = require('node:dgram');
    let left = ${FLOWS}, ok = 0, bad = 0;
    const t = setTimeout(() => { console.log(JSON.stringify({ ok, bad, timeout: true })); process.exit(1); }, 8000);
    for (let f = 0; f < ${FLOWS}; f++) {
      const s = d.createSocket('udp4');
      s.on('message', (m) => {
        if (m.toString() === 'flow ' + f) ok++; else bad++;
        s.close();
        if (--left === 0) { clearTimeout(t); console.log(JSON.stringify({ ok, bad })); }
      });
      s.bind(0, () => s.send(Buffer.from('flow ' + f), 7, '${addr}'));
    }`;
}

for (const cpus of [0, 2]) {
  test(`System with a TAP interface (${cpus === 0 ? 'one thread' : `${cpus} CPUs, one queue each`}): ping and UDP echo from a Linux namespace`, async (t) => {
    const skip = skipUnless({ root: true, tun: true, addon: true, tools: ['ip', 'ping'] });
    if (skip) return t.skip(skip);
    const uma = testUma({ size: 128 << 20 });
    const done = leakCheck(uma);
    const ns = NetNs.create(`topotap${cpus}`);
    const name = `snx${cpus}${process.pid % 10000}`;
    const sys = await System.start({ cpus, uma });
    let srv: { close(): void } | null = null;
    try {
      const st = sys.addStack('srv');
      st.addTap(name, { addrs: '10.81.0.2/24', mac: '02:00:5e:00:81:02' });
      await sys.up();
      if (cpus === 0) {
        const s = sys.socket(st, 'udp4', (m, r) => s.send(m, r.port, r.address));
        s.bind(7);
        srv = s;
      } else for (let c = 0; c < cpus; c++) assert.deepEqual(await sys.machine!.call(c, NET_ECHO_BIND, [st.index, 7]), [0]);
      ns.adopt(name, '10.81.0.1/24');
      await assertPings(ns, '10.81.0.2', 3000);
      const r = await run(ns.argv([process.execPath, '-e', echoScript('10.81.0.2')]));
      assert.equal(r.code, 0, `echo clients: ${r.out}${r.err}`);
      assert.deepEqual(JSON.parse(r.out), { ok: FLOWS, bad: 0 });
      assert.equal(statObject(UDP_DESC, st.stats().udp).delivered, FLOWS);
    } finally {
      srv?.close();
      await new Promise((res) => setImmediate(res));
      await sys.stop();
      ns.destroy();
    }
    done();
  });
}
