// The control socket against a running system on real worker CPUs: the
// protocol (versioned JSON lines, stable error codes for bad requests,
// answers in order, long lines refused), every op, a sysctl set through the
// socket read by the CPUs (the TTL of the frames they send), netstat -m
// equal to the system's own figures, capture merged from every CPU, and the
// socket file (mode 0600, listed while open, gone when closed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNet, type NetSystem } from '../../lib/netuser.js';
import { openControl, CtlClient, CtlRemoteError, listControlSockets, pickSystem, CtlPickError, type ControlServer } from '../../lib/ctl/index.js';
import { parseRequest, CTL_CODES, CTL_MAX_LINE } from '../../kern/ctl/protocol.js';
import { netstatM } from '../../kern/mbuf/stats.js';
import { NET_ECHO_BIND, NET_LOADGEN } from '../../net/mpnet.js';
import { readPcap } from '../../net/phy/pcap.js';
import { macToString } from '../../wire/ethernet.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { HOST1 } from '../../lib/netuser.js';
import { leakCheck, testUma } from '../helpers.js';

let dir: string;
let sys: NetSystem;
let ctl: ControlServer;
let client: CtlClient;
let leak: () => void;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'slctl-'));
  const uma = testUma({ size: 128 << 20, ncpus: 6 });
  leak = leakCheck(uma);
  sys = await startNet({ ncpus: 2, uma });
  for (let c = 0; c < 2; c++) assert.deepEqual(await sys.machine.call(c, NET_ECHO_BIND, [1, 7]), [0]);
  ctl = await openControl(sys, { name: 'ctltest', dir });
  client = await CtlClient.connect(ctl.path);
});

after(async () => {
  client.close();
  await ctl.close();
  await sys.stop();
  rmSync(dir, { recursive: true, force: true });
  leak(); // every zone back where it was once the system stopped
});

/** Raw lines in, raw lines out, on a fresh connection. */
function raw(lines: string[], expect: number): Promise<Record<string, unknown>[]> {
  return new Promise((res, rej) => {
    const s = connect(ctl.path);
    let buf = '';
    const got: Record<string, unknown>[] = [];
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        got.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
      if (got.length >= expect) {
        s.destroy();
        res(got);
      }
    });
    s.on('error', rej);
    s.on('close', () => res(got));
    s.write(lines.map((l) => l + '\n').join(''));
  });
}

async function remoteError(p: Promise<unknown>): Promise<CtlRemoteError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CtlRemoteError, String(e));
    return e;
  }
  assert.fail('expected an error answer');
}

test('parseRequest: versioned requests and the error codes of bad ones', () => {
  assert.deepEqual(parseRequest('{"v":1,"id":3,"op":"hello"}'), { req: { v: 1, id: 3, op: 'hello', args: {} } });
  const code = (l: string) => {
    const p = parseRequest(l);
    return 'err' in p ? [p.err.code, p.id] : ['ok', null];
  };
  assert.deepEqual(code('{"v":1,'), [CTL_CODES.PARSE_ERROR, null]);
  assert.deepEqual(code('[1,2]'), [CTL_CODES.BAD_REQUEST, null]);
  assert.deepEqual(code('{"v":1,"op":"hello"}'), [CTL_CODES.BAD_REQUEST, null]);
  assert.deepEqual(code('{"v":2,"id":"a","op":"hello"}'), [CTL_CODES.BAD_VERSION, 'a']);
  assert.deepEqual(code('{"id":5,"op":"hello"}'), [CTL_CODES.BAD_VERSION, 5]);
  assert.deepEqual(code('{"v":1,"id":5,"op":""}'), [CTL_CODES.BAD_REQUEST, 5]);
  assert.deepEqual(code('{"v":1,"id":5,"op":"x","args":[1]}'), [CTL_CODES.BAD_REQUEST, 5]);
});

test('the socket: mode 0600, listed by name and pid, found by pickSystem', () => {
  assert.equal(statSync(ctl.path).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const all = listControlSockets(dir);
  assert.deepEqual(all, [{ name: 'ctltest', pid: process.pid, path: ctl.path }]);
  assert.equal(pickSystem(undefined, dir).path, ctl.path);
  assert.equal(pickSystem('ctltest', dir).path, ctl.path);
  assert.equal(pickSystem(String(process.pid), dir).path, ctl.path);
  assert.throws(() => pickSystem('other', dir), CtlPickError);
  // A socket whose process is gone is dropped from the listing (and removed).
  const stale = join(dir, 'slabnet-old-999999999.sock');
  writeFileSync(stale, '');
  assert.equal(listControlSockets(dir).length, 1);
  assert.equal(existsSync(stale), false);
});

test('bad requests get stable codes, answers come in order, the connection survives', async () => {
  const r = await raw(
    [
      'not json',
      '{"v":1,"id":1,"op":"nosuch"}',
      '{"v":9,"id":2,"op":"hello"}',
      '{"v":1,"id":3,"op":"sysctl.get","args":{"name":"kern.nosuch"}}',
      '{"v":1,"id":4,"op":"sysctl.get","args":{}}',
      '{"v":1,"id":5,"op":"netstat","args":{"report":"x"}}',
      '{"v":1,"id":6,"op":"netstat","args":{"report":"s","proto":"sctp"}}',
      '{"v":1,"id":7,"op":"vmstat","args":{"bogus":1}}',
      '{"v":1,"id":8,"op":"sysctl.set","args":{"name":"vm.stats.page.size","value":1}}',
      '{"v":1,"id":9,"op":"sysctl.set","args":{"name":"kern.ipc.nmbclusters","value":"many"}}',
      '{"v":1,"id":10,"op":"tcpdrop","args":{"local":"10.0.0.1 1","foreign":"10.0.0.2 2"}}',
      '{"v":1,"id":11,"op":"pcap.start","args":{"interface":"xl0/host1","path":"rel.pcap"}}',
      '{"v":1,"id":"last","op":"hello"}',
    ],
    13,
  );
  const codes = r.map((x) => (x.ok ? 'ok' : (x.error as { code: string }).code));
  assert.deepEqual(codes, ['PARSE_ERROR', 'UNKNOWN_OP', 'BAD_VERSION', 'ENOENT', 'BAD_ARGS', 'BAD_ARGS', 'BAD_ARGS', 'BAD_ARGS', 'EPERM', 'EINVAL', 'ESRCH', 'BAD_ARGS', 'ok']);
  assert.deepEqual(r.map((x) => x.id), [null, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 'last']);
  for (const x of r) assert.equal(x.v, 1);
  assert.equal((r[10].error as { message: string }).message, '10.0.0.1 1 10.0.0.2 2: No such process');
  assert.equal((r[12].result as { name: string }).name, 'ctltest');
});

test('a request line longer than the limit is refused and the connection closed', async () => {
  const r = await raw(['{"v":1,"id":1,"op":"hello","args":{"x":"' + 'a'.repeat(CTL_MAX_LINE + 10)], 1);
  assert.equal(r.length, 1);
  assert.equal((r[0].error as { code: string }).code, CTL_CODES.LINE_TOO_LONG);
});

test('sysctl set through the socket is read by the CPUs: the frames they send carry the new TTL', async () => {
  const set = await client.request<{ old: number; new: number }>('sysctl.set', { name: 'net.inet.ip.ttl', value: 7 });
  assert.equal(set.new, 7);
  assert.equal(sys.sysctl.get('net.inet.ip.ttl'), 7);
  const path = join(dir, 'ttl.pcap');
  await client.request('pcap.start', { interface: 'xl0/host1', path });
  await assert.rejects(client.request('pcap.start', { interface: 'xl0/host1', path }), CtlRemoteError);
  // Every CPU sends 20 requests to the echo server on host 1 and gets them back.
  const runs = await Promise.all([0, 1].map((c) => sys.machine.call(c, NET_LOADGEN, [0, HOST1, 7, 20, 4, 32, -1], 4)));
  for (const [e, replies] of runs) assert.deepEqual([e, replies], [0, 20]);
  const stop = await client.request<{ packets: number; path: string }>('pcap.stop', { interface: 'xl0/host1' });
  assert.equal(stop.packets, 80, 'requests and replies of both CPUs, merged into one file');
  const cap = readPcap(path);
  assert.equal(cap.records.length, 80);
  // Sockets made after the write (the load generators') send with TTL 7; the echo
  // servers' PCBs were made before it and keep 64, as inp_ip_ttl does in FreeBSD.
  for (const rec of cap.records) {
    const fromHost0 = Buffer.from(rec.data).readUInt32BE(14 + 12) === 0x0a000001;
    assert.equal(rec.data[14 + 8], fromHost0 ? 7 : 64, 'IP TTL');
  }
  for (let i = 1; i < cap.records.length; i++) {
    const a = cap.records[i - 1];
    const b = cap.records[i];
    assert.ok(a.tsSec * 1e6 + a.tsUsec <= b.tsSec * 1e6 + b.tsUsec, 'records in time order');
  }
  assert.ok(!existsSync(path + '.cpu0') && !existsSync(path + '.cpu1'), 'the per-CPU parts are removed');
  await client.request('sysctl.set', { name: 'net.inet.ip.ttl', value: 64 });
});

test('kern.ipc.nmbclusters=1000 through the socket: the system reads 1000 after', async () => {
  const before = sys.mb.zClust.getMaxItems();
  const r = await client.request<{ old: number; new: number }>('sysctl.set', { name: 'kern.ipc.nmbclusters', value: '1000' });
  assert.deepEqual([r.old, r.new], [before, 1000]);
  assert.equal(sys.mb.zClust.getMaxItems(), 1000);
  assert.equal((await client.request<{ value: number }>('sysctl.get', { name: 'kern.ipc.nmbclusters' })).value, 1000);
  await client.request('sysctl.set', { name: 'kern.ipc.nmbclusters', value: before });
  const list = await client.request<{ entries: { name: string }[] }>('sysctl.list', { prefix: 'kern.ipc' });
  assert.ok(list.entries.some((e) => e.name === 'kern.ipc.nmbclusters'));
  assert.equal((await remoteError(client.request('sysctl.list', { prefix: 'nosuch' }))).code, 'ENOENT');
});

test('netstat -m, -s, -i, vmstat -z through the socket equal the system\'s own figures', async () => {
  const m = await client.request<{ text: string }>('netstat', { report: 'm' });
  assert.equal(m.text + '\n', netstatM(sys.mb));
  assert.match(m.text, new RegExp(`/${sys.mb.zClust.getMaxItems()} mbuf clusters in use`));
  const s = await client.request<{ text: string; data: { udp: Record<string, number> }[] }>('netstat', { report: 's', host: 1 });
  assert.equal(s.data[0].udp.ipackets, sys.stats(1).udp[0]);
  assert.ok(s.data[0].udp.ipackets >= 40);
  const tcp = await client.request<{ text: string; data: { tcp: Record<string, number> }[] }>('netstat', { report: 's', proto: 'tcp', host: 1 });
  assert.match(tcp.text, /^tcp:/, 'tcpstat summed from both CPUs (all zero: no TCP in this system)');
  assert.ok(Object.keys(tcp.data[0].tcp).length > 50);
  const p = await client.request<{ text: string }>('netstat', { report: 's', proto: 'udp', host: 'host1' });
  assert.match(p.text, /^udp:\n\t\d+ datagrams received/);
  assert.doesNotMatch(p.text, /^ip:/m);
  const i = await client.request<{ text: string }>('netstat', { report: 'i' });
  assert.equal(i.text, sys.system.netstatI());
  const z = await client.request<{ text: string; data: { name: string }[] }>('vmstat', { z: true });
  assert.match(z.text, /^ITEM +SIZE +LIMIT +USED/);
  assert.ok(z.data.some((x) => x.name === 'mbuf_cluster'));
});

test('netstat -an, sockstat, arp -a and netstat -r come from the CPUs', async () => {
  const an = await client.request<{ text: string; data: unknown[] }>('netstat', { report: 'an' });
  assert.equal(an.text.split('\n').filter((l) => /^udp4 .*\*\.7 +\*\.\*/.test(l)).length, 2, an.text);
  const ss = await client.request<{ text: string }>('sockstat');
  assert.match(ss.text, /^USER +COMMAND +PID +FD PROTO/);
  assert.equal(ss.text.split('\n').filter((l) => / stack .* udp4 +\*:7 /.test(l)).length, 2, ss.text);
  const arp = await client.request<{ text: string; data: { ip: number }[] }>('arp');
  const mac1 = macToString(sys.system.stacks[1].interfaces[0].mac);
  assert.ok(arp.text.split('\n').includes(`? (10.0.0.2) at ${mac1} on xl0/host0 permanent [ethernet]`), arp.text);
  const rt = await client.request<{ text: string }>('route');
  assert.match(rt.text, /^Internet:$/m);
  assert.match(rt.text, /^10\.0\.0\.0\/24 +link#1 +US +xl0\/host0$/m);
  assert.equal((await remoteError(client.request('arp', { host: 5 }))).code, 'BAD_ARGS');
});

test('stats snapshot: CPU load counters move, interfaces, zones, drops, sockets by state', async () => {
  const a = await client.request<{ cpus: { handled: number; busyUs: number }[]; sockets: Record<string, number>; interfaces: { name: string }[]; drops: Record<string, number> }>('stats', { sockets: true });
  await sys.machine.call(0, NET_LOADGEN, [0, HOST1, 7, 50, 4, 32, 1], 4);
  const b = await client.request<typeof a>('stats', { sockets: true });
  assert.equal(a.cpus.length, 2);
  assert.ok(b.cpus[0].handled > a.cpus[0].handled, 'cpu0 handled messages');
  assert.ok(b.cpus[1].handled > a.cpus[1].handled, 'cpu1 handled the requests');
  assert.ok(b.cpus[0].busyUs + b.cpus[1].busyUs > a.cpus[0].busyUs + a.cpus[1].busyUs, 'busy time counted');
  assert.equal(b.sockets['udp4 bound'], 2);
  assert.deepEqual(b.interfaces.map((x) => x.name), ['xl0/host0', 'xl0/host1']);
  assert.equal(typeof b.drops['udp.fullsock'], 'number');
});

test('metrics: Prometheus text with HELP/TYPE once per metric and the same counters', async () => {
  const { text } = await client.request<{ text: string }>('metrics');
  const lines = text.trimEnd().split('\n');
  for (const l of lines) assert.match(l, /^(# (HELP|TYPE) slabnet_[a-z0-9_]+ .+|slabnet_[a-z0-9_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? -?[\d.e+]+)$/, l);
  const types = lines.filter((l) => l.startsWith('# TYPE'));
  assert.equal(new Set(types).size, types.length);
  const udp = lines.find((l) => l.startsWith('slabnet_udp_ipackets_total{host="host1"}'));
  assert.equal(Number(udp?.split(' ')[1]), sys.stats(1).udp[0]);
  assert.ok(lines.includes(`slabnet_mbuf_clusters_max ${sys.mb.zClust.getMaxItems()}`));
  assert.ok(lines.some((l) => /^slabnet_cpu_messages_total\{cpu="1"\} [1-9]/.test(l)));
});

test('closing the control socket removes it; clients get SHUTDOWN or a closed connection', async () => {
  const uma = testUma({ size: 64 << 20, ncpus: 5 });
  const s2 = await startNet({ ncpus: 1, uma });
  try {
    const c2 = await openControl(s2, { name: 'second', dir });
    assert.equal(listControlSockets(dir).length, 2);
    assert.throws(() => pickSystem(undefined, dir), /2 slabnet systems are running; say which with -N/);
    const cl = await CtlClient.connect(c2.path);
    assert.equal((await cl.request<{ ncpus: number }>('hello')).ncpus, 1);
    await c2.close();
    assert.equal(existsSync(c2.path), false);
    await assert.rejects(cl.request('hello'));
    cl.close();
    assert.deepEqual(listControlSockets(dir).map((x) => x.name), ['ctltest']);
  } finally {
    await s2.stop();
  }
  await assert.rejects(openControl(sys, { name: 'bad/name', dir }), /name must be/);
});

test('a single-thread System (System.local) serves the same ops from its stacks', async () => {
  const { System } = await import('../../lib/topology.js');
  const uma = testUma({ size: 64 << 20, ncpus: 4 });
  const done = leakCheck(uma);
  const ls = System.local({ uma });
  ls.link(ls.addStack('a'), ls.addStack('b'), { a: '10.9.0.1/24', b: '10.9.0.2/24' });
  await ls.up();
  const c = await openControl(ls, { name: 'local', dir });
  const cl = await CtlClient.connect(c.path);
  try {
    const path = join(dir, 'local.pcap');
    await cl.request('pcap.start', { interface: 'eth0/b', path });
    const srv = ls.socket('b', 'udp4', (m, r) => srv.send(m, r.port, r.address));
    srv.bind(7);
    const cli = ls.socket('a', 'udp4');
    const got = new Promise<void>((res) => cli.on('message', () => res()));
    cli.send(Buffer.from('ping'), 7, '10.9.0.2');
    await got;
    const stop = await cl.request<{ packets: number }>('pcap.stop', { interface: 'eth0/b' });
    assert.ok(stop.packets >= 2, `request and reply captured (${stop.packets})`);
    assert.ok(readPcap(path).records.length >= 2);
    const hello = await cl.request<{ ncpus: number; kind: string; hosts: { name: string }[] }>('hello');
    assert.deepEqual([hello.ncpus, hello.kind, hello.hosts.map((h) => h.name)], [0, 'local', ['a', 'b']]);
    assert.equal((await cl.request<{ text: string }>('netstat', { report: 'i' })).text, ls.netstatI());
    const an = await cl.request<{ text: string }>('netstat', { report: 'an' });
    assert.match(an.text, /^udp4 .*\*\.7 +\*\.\*/m);
    assert.match((await cl.request<{ text: string }>('route')).text, /^10\.9\.0\.0\/24 +link#1 +US +eth0\/a$/m);
    assert.match((await cl.request<{ text: string }>('arp')).text, /^\? \(10\.9\.0\.1\) at [0-9a-f:]{17} on eth0\/b expires in \d+ seconds \[ethernet\]$/m);
    assert.deepEqual((await cl.request<{ cpus: unknown[] }>('stats')).cpus, []);
    for (const s of [cli, srv]) s.close();
  } finally {
    cl.close();
    await c.close();
    await ls.stop();
  }
  done();
});

test('the demo\'s live line (demo --tap) reads rates and clusters from the same view', async () => {
  const { liveLine } = await import('../../cli/demojob.js');
  const { controlView } = await import('../../lib/ctl/adapter.js');
  const v = controlView(sys);
  const last = { t: performance.now(), ipk: 0, opk: 0 };
  liveLine(v, last.t, last);
  const before = last.ipk;
  await sys.machine.call(0, NET_LOADGEN, [0, HOST1, 7, 10, 2, 32, -1], 4);
  const line = liveLine(v, last.t, last);
  assert.equal(last.ipk - before, 20, 'ten requests in and ten replies in, over both interfaces');
  assert.match(line, /^live \d+ s: rx \d+ pkt\/s, tx \d+ pkt\/s \(\d+ in, \d+ out\), \d+ UDP datagrams received, clusters \d+\/\d+$/);
});

test('TCP on a single-thread System: netstat -an and sockstat list the PCBs with states, tcpdrop drops one', async () => {
  const { System } = await import('../../lib/topology.js');
  const uma = testUma({ size: 64 << 20, ncpus: 4 });
  const done = leakCheck(uma);
  const ls = System.local({ uma, clock: 'manual' });
  const a = ls.addStack('a');
  const b = ls.addStack('b');
  ls.link(a, b, { a: '10.9.1.1/24', b: '10.9.1.2/24' });
  await ls.up();
  const c = await openControl(ls, { name: 'tcp', dir });
  const cl = await CtlClient.connect(c.path);
  try {
    const sa = a.stack.tcp.sockets!;
    const sb = b.stack.tcp.sockets!;
    const l = sb.socket();
    assert.equal(sb.bind(l, 0, 80), 0);
    assert.equal(sb.listen(l, 5), 0);
    // A UDP socket on the same port number (one in_pcb module, one table per protocol).
    const u = b.stack.udp.attach();
    assert.equal(b.stack.udp.bind(u, 0, 80), 0);
    const s = sa.socket();
    sa.connect(s, 0x0a090102, 80);
    ls.advance(50);
    const port = sa.sockname(s)!.port;
    const an = await cl.request<{ text: string; tcp: { host: number; laddr: number; lport: number; faddr: number; fport: number; stateName: string }[] }>('netstat', { report: 'an' });
    assert.match(an.text, /^tcp4 +0 +0 +\*\.80 +\*\.\* +LISTEN +0 +1 -$/m, an.text);
    assert.match(an.text, /^udp4 .*\*\.80 +\*\.\*/m, an.text);
    // The server's connection from the client (ESTABLISHED once the handshake completes; the first cut
    // of TCP resets it after its syncache completes, so it may still read SYN_RCVD).
    const conn = an.tcp.find((t) => t.host === 1 && t.lport === 80 && t.fport === port);
    assert.ok(conn, an.text);
    assert.match(an.text, new RegExp(`^tcp4 +0 +0 +10\\.9\\.1\\.2\\.80 +10\\.9\\.1\\.1\\.${port} +${conn.stateName} +0 +1 -$`, 'm'));
    assert.match((await cl.request<{ text: string }>('sockstat')).text, /^\S+ +tcp +\d+ +\? tcp4 +\*:80 +\*:\* +0$/m);
    const st = await cl.request<{ sockets: Record<string, number> }>('stats', { sockets: true });
    assert.equal(st.sockets['tcp4 LISTEN'], 1);
    assert.equal(st.sockets[`tcp4 ${conn.stateName}`] >= 1, true);
    const ts = await cl.request<{ text: string; data: { tcp: Record<string, number> }[] }>('netstat', { report: 's', proto: 'tcp', host: 'a' });
    assert.match(ts.text, /^tcp:\n(\t.*\n)*\t1 connection requests$/m, ts.text);
    assert.equal(ts.data[0].tcp.connattempt, a.stack.tcp.stats[TCPS_STAT.connattempt]);
    const r = await cl.request<{ text: string }>('tcpdrop', { local: `10.9.1.2 80`, foreign: `10.9.1.1:${port}` });
    assert.equal(r.text, `10.9.1.2 80 10.9.1.1 ${port}: dropped`);
    ls.advance(50);
    const after = await cl.request<{ tcp: { lport: number; fport: number; stateName: string }[] }>('netstat', { report: 'an' });
    assert.deepEqual(after.tcp.filter((t) => t.lport === 80).map((t) => t.stateName), ['LISTEN'], 'the connection is gone, the listener stays');
    assert.equal((await remoteError(cl.request('tcpdrop', { local: '10.9.1.2 80', foreign: `10.9.1.1 ${port}` }))).code, 'ESRCH');
    assert.equal((await remoteError(cl.request('tcpdrop', { local: 'nonsense', foreign: '10.9.1.2 80' }))).code, 'BAD_ARGS');
    sa.close(s);
    sb.close(l);
    b.stack.udp.detach(u);
    ls.advance(100);
  } finally {
    cl.close();
    await c.close();
    await ls.stop();
  }
  done();
});

test('a bare Machine (CPUs without hosts): sysctl, vmstat, netstat -m and the CPUs\' load; no sockets', async () => {
  const { Machine } = await import('../../kern/lwkt/machine.js');
  const uma = testUma({ size: 64 << 20, ncpus: 4 });
  const m = await Machine.start({ uma, ncpus: 1 });
  try {
    const c = await openControl(m, { name: 'bare', dir });
    const cl = await CtlClient.connect(c.path);
    try {
      const hello = await cl.request<{ kind: string; ncpus: number; hosts: unknown[] }>('hello');
      assert.deepEqual([hello.kind, hello.ncpus, hello.hosts], ['machine', 1, []]);
      assert.match((await cl.request<{ text: string }>('vmstat', { z: true })).text, /^lwkt port: /m);
      assert.match((await cl.request<{ text: string }>('netstat', { report: 'm' })).text, /mbuf clusters in use/);
      assert.equal((await cl.request<{ value: number }>('sysctl.get', { name: 'hw.ncpu' })).value, uma.arena.ncpusMax);
      const st = await cl.request<{ cpus: { cpu: number }[]; sockets: Record<string, number> }>('stats', { sockets: true });
      assert.deepEqual(st.cpus.map((x) => x.cpu), [0]);
      assert.deepEqual(st.sockets, { 'udp4 bound': 0, 'udp4 connected': 0 });
      assert.match((await cl.request<{ text: string }>('sockstat')).text, /^USER +COMMAND/);
      const pe = await remoteError(cl.request('pcap.start', { path: '/tmp/x.pcap' }));
      assert.deepEqual([pe.code, pe.message], ['BAD_ARGS', 'this system has no interfaces']);
    } finally {
      cl.close();
      await c.close();
    }
  } finally {
    await m.stop();
  }
});
