/**
 * node:net towards TCP on 2 worker CPUs (lib/netmp.ts + lib/tcpcpu.ts):
 * connections live on the CPU netisr brings their segments to, listeners on
 * every CPU; bulk transfers byte-exact both ways with half-close,
 * ECONNREFUSED, backpressure through a paused reader. No zone leaks after
 * stop(). The CPUs run on the real clock (a manual clock on worker CPUs is
 * not in this build), so waits are bounded polls of the event loop.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mpSys, until } from './mpsys.js';
import { rssFlowCpu } from '../../net/rss.js';
import { toAddr } from '../../netinet/stack.js';
import { connect, createServer, type MpSocket } from '../../lib/netmp.js';
import { Agent, serveHttp } from '../../lib/http.js';

function collect(s: MpSocket) {
  const parts: Buffer[] = [];
  let ended = false;
  s.on('data', (d: Buffer) => parts.push(d));
  s.on('end', () => (ended = true));
  return { data: () => Buffer.concat(parts), ended: () => ended };
}

test('net on 2 CPUs: flows on both CPUs, 2 MB each way byte-exact with half-close', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  const accepted: MpSocket[] = [];
  const srv = createServer({ stack: m.b, allowHalfOpen: true }, (s) => {
    accepted.push(s);
    // Echo only after the client's FIN: half-close both ways.
    const got = collect(s);
    s.on('end', () => s.end(Buffer.concat([Buffer.from('echo:'), got.data()])));
  });
  srv.listen(7);
  await once(srv, 'listening');
  assert.deepEqual(srv.address(), { address: '0.0.0.0', family: 'IPv4', port: 7 });
  const runs = [
    { stack: m.a, host: '10.0.1.2', cpu: 0 },
    { stack: m.c, host: '10.0.0.2', cpu: 1 },
  ].map(({ stack, host, cpu }) => {
    const data = randomBytes(2 << 20);
    let connected = false;
    const s = connect({ stack, host, port: 7, allowHalfOpen: true, cpu }, () => (connected = true));
    const got = collect(s);
    let closed: boolean | null = null;
    s.on('close', (h: boolean) => (closed = h));
    s.end(data);
    return { s, data, got, cpu, connected: () => connected, closed: () => closed };
  });
  assert.ok(await until(() => runs.every((r) => r.closed() !== null), 30_000), 'both connections closed');
  for (const r of runs) {
    assert.equal(r.connected(), true);
    assert.equal(r.closed(), false);
    // Port partitioning: the CPU it was opened on picked a port whose 4-tuple hashes to itself.
    assert.equal(r.s.ownerCpu, r.cpu, 'opened where asked');
    const flow = rssFlowCpu(toAddr(r.s.remoteAddress!), toAddr(r.s.localAddress!), r.s.remotePort!, r.s.localPort!, 2);
    assert.equal(flow, r.cpu, 'the connection lives on the CPU its 4-tuple hashes to');
    assert.ok(r.got.data().equals(Buffer.concat([Buffer.from('echo:'), r.data])), 'byte-exact echo');
    assert.equal(r.s.bytesRead, r.data.length + 5);
  }
  assert.equal(accepted.length, 2);
  for (const s of accepted) {
    // The SYN went to the CPU of its 4-tuple; that CPU's listener replica and syncache made the connection.
    assert.equal(s.ownerCpu, rssFlowCpu(toAddr(s.remoteAddress!), toAddr(s.localAddress!), s.remotePort!, s.localPort!, 2), 'accepted on the CPU of its 4-tuple');
  }
  assert.deepEqual(accepted.map((s) => s.remoteAddress).sort(), ['10.0.0.1', '10.0.1.1']);
  const closed = new Promise<void>((r) => srv.close(() => r()));
  await closed;
  await srv.settled();
  for (const r of runs) await r.s.settled();
  for (const s of accepted) await s.settled();
  await m.stop();
});

test('net on 2 CPUs: ECONNREFUSED, and a paused reader blocks the writer until it resumes', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  const errs: (Error & { code?: string; message: string })[] = [];
  const r = connect({ stack: m.a, host: '10.0.1.2', port: 81 });
  r.on('error', (e) => errs.push(e));
  let refusedClosed = false;
  r.on('close', () => (refusedClosed = true));
  assert.ok(await until(() => refusedClosed));
  assert.equal(errs[0]?.code, 'ECONNREFUSED');
  assert.equal(errs[0]?.message, 'connect ECONNREFUSED 10.0.1.2:81');

  let server: MpSocket | null = null;
  const srv = createServer({ stack: m.b }, (s) => {
    server = s;
    s.pause();
  });
  srv.listen(9000);
  await once(srv, 'listening');
  const c = connect({ stack: m.c, host: '10.0.0.2', port: 9000 });
  await once(c, 'connect');
  assert.ok(await until(() => server !== null));
  const chunk = Buffer.alloc(4096, 7);
  let writes = 0;
  let blocked = false;
  while (!blocked && writes < 5000) {
    writes++;
    if (c.write(chunk)) continue;
    let drained = false;
    c.once('drain', () => (drained = true));
    blocked = !(await until(() => drained, 500));
  }
  assert.ok(blocked, 'the writer stayed blocked behind the paused reader');
  assert.ok(writes * chunk.length < 4 << 20, `blocked after ${writes * chunk.length} bytes: buffers are bounded`);
  c.removeAllListeners('drain');
  const got = collect(server!);
  server!.resume();
  c.resume(); // read the server's FIN too, so both ends close
  c.end();
  assert.ok(await until(() => got.ended(), 30_000));
  assert.equal(got.data().length, writes * chunk.length);
  assert.ok(await until(() => c.destroyed && server!.destroyed));
  const closed = new Promise<void>((res) => srv.close(() => res()));
  await closed;
  await srv.settled();
  await c.settled();
  await server!.settled();
  await r.settled();
  await m.stop();
});

test('net on 2 CPUs: Node\'s http.Server and an http.Agent over TCP on the CPUs (keep-alive, 1 MB POST)', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  const hs = http.createServer((req, res) => {
    const h = createHash('sha256');
    req.on('data', (d: Buffer) => h.update(d));
    req.on('end', () => res.end(`${req.url} ${h.digest('hex')}`));
  });
  const conns: MpSocket[] = [];
  const srv = createServer({ stack: m.b }, (s) => conns.push(s));
  serveHttp(hs, srv);
  srv.listen(80);
  await once(srv, 'listening');
  const agent = new Agent(m.c, { keepAlive: true, maxSockets: 1 });
  const body = randomBytes(1 << 20);
  for (let i = 0; i < 3; i++) {
    const text = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '10.0.0.2', port: 80, method: 'POST', path: `/p${i}`, agent }, (res) => {
        let t = '';
        res.on('data', (d: Buffer) => (t += d.toString()));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(text, `/p${i} ${createHash('sha256').update(body).digest('hex')}`);
  }
  assert.equal(conns.length, 1, 'keep-alive: one connection');
  agent.destroy();
  const closed = new Promise<void>((r) => srv.close(() => r()));
  await closed;
  await srv.settled();
  for (const s of conns) await s.settled();
  await m.stop();
});

test('net on 2 CPUs: TCP_CONGESTION per socket (connect option, server option, setCongestion) crosses to the owning CPU', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  const accepted: MpSocket[] = [];
  const srv = createServer({ stack: m.b, congestion: 'newreno' }, (s) => {
    accepted.push(s);
    s.on('data', (d: Buffer) => s.write(d));
  });
  assert.throws(() => createServer({ stack: m.b, congestion: 'vegas' }), /ESRCH/);
  srv.listen(7100);
  await once(srv, 'listening');
  const a = connect({ stack: m.a, host: '10.0.1.2', port: 7100, congestion: 'newreno' });
  const c = connect({ stack: m.c, host: '10.0.0.2', port: 7100 });
  await Promise.all([once(a, 'connect'), once(c, 'connect')]);
  assert.equal(await a.getCongestion(), 'newreno');
  assert.equal(await c.getCongestion(), 'cubic', "the CPUs' default");
  assert.ok(await until(() => accepted.length === 2));
  for (const s of accepted) assert.equal(await s.getCongestion(), 'newreno', "the listener's algorithm");
  await c.setCongestion('newreno');
  assert.equal(await c.getCongestion(), 'newreno');
  await assert.rejects(c.setCongestion('bbr'), /ESRCH/);
  // Data still flows after the switch.
  const got = collect(c);
  const data = randomBytes(256 << 10);
  c.write(data);
  assert.ok(await until(() => got.data().length === data.length, 30_000));
  assert.ok(got.data().equals(data));
  a.destroy();
  c.destroy();
  await new Promise<void>((r) => srv.close(() => r()));
  await srv.settled();
  for (const s of [a, c, ...accepted]) await s.settled();
  await m.stop();
});

test('net on 2 CPUs: onread reads into the supplied buffer, false pauses until resume(), end at FIN', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  const payload = randomBytes(400_000);
  let accepted: MpSocket | null = null;
  const srv = createServer({ stack: m.b }, (s) => {
    accepted = s;
    s.end(payload);
  });
  srv.listen(8);
  await once(srv, 'listening');
  const box = Buffer.alloc(3000);
  const parts: Buffer[] = [];
  let stop = true;
  let dataEvents = 0;
  let ended = false;
  const c = connect({
    stack: m.a,
    host: '10.0.1.2',
    port: 8,
    onread: {
      buffer: box,
      callback: (n, b) => {
        assert.equal(b, box);
        parts.push(Buffer.from(box.subarray(0, n)));
        if (stop) return false;
      },
    },
  });
  c.on('data', () => dataEvents++);
  c.on('end', () => (ended = true));
  assert.ok(await until(() => parts.length === 1));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(parts.length, 1, 'paused by the callback');
  stop = false;
  c.resume();
  assert.ok(await until(() => ended, 30_000));
  assert.equal(dataEvents, 0);
  assert.equal(createHash('sha256').update(Buffer.concat(parts)).digest('hex'), createHash('sha256').update(payload).digest('hex'));
  assert.equal(c.bytesRead, payload.length);
  c.end();
  (accepted as MpSocket | null)?.destroy();
  assert.ok(await until(() => c.destroyed, 10_000));
  await new Promise<void>((r) => srv.close(() => r()));
  await srv.settled();
  await c.settled();
  await (accepted as MpSocket | null)?.settled();
  await m.stop();
});

/** Write `data` in pieces of `piece` bytes as fast as the stream takes them (callbacks, not 'drain'), then end. */
function writePieces(s: MpSocket, data: Buffer, piece: number): void {
  for (let off = 0; off < data.length; off += piece) s.write(data.subarray(off, off + piece));
  s.end();
}

/** SHA-256 of what s receives, pausing the reader now and then so the window closes. */
function hashPausing(s: MpSocket): { done: Promise<{ hex: string; n: number }> } {
  const h = createHash('sha256');
  let n = 0;
  let k = 0;
  s.on('data', (d: Buffer) => {
    h.update(d);
    n += d.length;
    if (++k % 7 === 0) {
      s.pause();
      setTimeout(() => s.resume(), 5);
    }
  });
  return { done: once(s, 'end').then(() => ({ hex: h.digest('hex'), n })) };
}

test('net on 2 CPUs: pipelined writes, 3 MB each way in 100-byte and 200 KiB writes, reader pausing, SHA-256 exact', { timeout: 120_000 }, async () => {
  const m = await mpSys();
  for (const piece of [100, 200 << 10]) {
    const up = randomBytes(3 << 20);
    const down = randomBytes(3 << 20);
    let srvGot: Promise<{ hex: string; n: number }> | null = null;
    const srv = createServer({ stack: m.b, allowHalfOpen: true }, (s) => {
      srvGot = hashPausing(s).done;
      writePieces(s, down, piece);
    });
    srv.listen(9);
    await once(srv, 'listening');
    const c = connect({ stack: m.a, host: '10.0.1.2', port: 9, allowHalfOpen: true });
    const cliGot = hashPausing(c).done;
    writePieces(c, up, piece);
    const got = await cliGot;
    assert.ok(await until(() => srvGot !== null));
    const sgot = await srvGot!;
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.deepEqual(got, { hex: sha(down), n: down.length }, `down, ${piece}-byte writes`);
    assert.deepEqual(sgot, { hex: sha(up), n: up.length }, `up, ${piece}-byte writes`);
    c.destroy();
    srv.close();
    await once(srv, 'close');
  }
  await m.stop();
});
