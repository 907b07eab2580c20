/**
 * node:net over slabnet TCP on a manual clock: echo, bulk transfer with
 * half-close, backpressure, errors with Node's codes, destroy mid-transfer,
 * timeouts and options. Every test stops its system and checks that every
 * zone's `used` is back where it started.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, netFor, type Server, type Socket } from '../../lib/net.js';
import { closeServer, collect, netSys, pair, sha, type NetSys } from './netsys.js';

test('net: echo server and client over a link', async () => {
  const n = await netSys();
  const srv = createServer({ stack: n.b }, (s) => s.pipe(s));
  let listening = false;
  srv.listen(7, () => (listening = true));
  await n.pump(() => listening);
  assert.deepEqual(srv.address(), { address: '0.0.0.0', family: 'IPv4', port: 7 });
  const got: Buffer[] = [];
  let connected = false;
  let closed: boolean | null = null;
  const c = connect({ stack: n.a, host: '10.0.0.2', port: 7 }, () => (connected = true));
  assert.equal(c.connecting, true);
  assert.equal(c.readyState, 'opening');
  c.on('data', (d: Buffer) => got.push(d));
  c.on('close', (e: boolean) => (closed = e));
  c.write('hello, ');
  c.end('slabnet');
  assert.ok(await n.pump(() => closed !== null));
  assert.equal(connected, true);
  assert.equal(closed, false);
  assert.equal(Buffer.concat(got).toString(), 'hello, slabnet');
  assert.equal(c.remoteAddress, '10.0.0.2');
  assert.equal(c.remotePort, 7);
  assert.equal(c.remoteFamily, 'IPv4');
  assert.equal(c.bytesRead, 14);
  assert.equal(c.bytesWritten, 14);
  assert.equal(c.readyState, 'closed');
  let srvClosed = false;
  srv.close(() => (srvClosed = true));
  assert.ok(await n.pump(() => srvClosed));
  await n.stop();
});

type ErrLike = Error & { code?: string; errno?: number; syscall?: string; address?: string; port?: number };





for (const impaired of [false, true]) {
  test(`net: 2 MB each way byte-exact with half-close (allowHalfOpen)${impaired ? ', 2% loss, duplication and reordering' : ''}`, async () => {
    const n = await netSys(impaired ? { fault: { seed: 7, loss: 0.02, duplicate: 0.01, reorder: 0.02 } } : {});
    const { srv, client, server } = await pair(n, 9000, { allowHalfOpen: true });
    const up = randomBytes(2 << 20);
    const down = randomBytes((2 << 20) + 12345);
    const atServer = collect(server);
    const atClient = collect(client);
    // The client sends everything and half-closes; the server answers only after the client's FIN.
    client.end(up);
    let clientClosed: boolean | null = null;
    client.on('close', (e: boolean) => (clientClosed = e));
    assert.ok(await n.pump(() => atServer.ended(), 120_000, 5));
    assert.equal(sha(atServer.data()), sha(up));
    assert.equal(client.readyState, 'readOnly');
    assert.equal(server.readyState, 'writeOnly');
    server.end(down);
    assert.ok(await n.pump(() => atClient.ended() && clientClosed !== null, 120_000, 5));
    assert.equal(atClient.data().length, down.length);
    assert.equal(sha(atClient.data()), sha(down));
    assert.equal(clientClosed, false);
    assert.equal(client.bytesRead, down.length);
    assert.equal(server.bytesRead, up.length);
    await closeServer(n, srv);
    await n.stop();
  });
}

test('net: a slow reader closes the window: write() returns false, then drain', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9001);
  server.pause();
  // Write until write() says stop and no 'drain' comes however long we wait:
  // the paused reader's so_rcv is full, its window closed, our so_snd full.
  const chunk = Buffer.alloc(4096, 0x5a);
  let writes = 0;
  let blocked = false;
  while (!blocked && writes < 10_000) {
    writes++;
    if (client.write(chunk)) continue;
    let drain = false;
    client.once('drain', () => (drain = true));
    blocked = !(await n.pump(() => drain, 2000, 10));
  }
  assert.ok(blocked, 'a write stayed blocked');
  client.removeAllListeners('drain');
  const info = client.info()!;
  // Closed to less than a segment (the sender's silly-window avoidance sends no runt into it).
  assert.ok(info.tcpi_snd_wnd < info.tcpi_snd_mss, `the peer's window is closed (${info.tcpi_snd_wnd})`);
  assert.ok(client.writableLength > 0, 'bytes wait in the stream');
  const row = n.a.tcp.sockets!.list().find((x) => x.id === client.fd)!;
  assert.ok(row.sendQ > 0, 'so_snd holds data');
  const srow = n.b.tcp.sockets!.list().find((x) => x.id === server.fd)!;
  assert.ok(srow.recvQ > 60_000, `the reader's so_rcv is full (${srow.recvQ})`);
  let drained = false;
  client.once('drain', () => (drained = true));
  const got = collect(server);
  server.resume();
  assert.ok(await n.pump(() => drained, 10_000, 2));
  const total = writes * chunk.length;
  client.end();
  assert.ok(await n.pump(() => got.ended(), 30_000, 2));
  assert.equal(got.data().length, total);
  await closeServer(n, srv);
  await n.stop();
});

test('net: ECONNREFUSED from a closed port, with Node\'s error shape', async () => {
  const n = await netSys();
  const errs: ErrLike[] = [];
  let hadError: boolean | null = null;
  const c = connect({ stack: n.a, host: '10.0.0.2', port: 81 });
  c.on('error', (e: ErrLike) => errs.push(e));
  c.on('close', (h: boolean) => (hadError = h));
  assert.ok(await n.pump(() => hadError !== null));
  assert.equal(errs.length, 1);
  const e = errs[0];
  assert.equal(e.code, 'ECONNREFUSED');
  assert.equal(e.syscall, 'connect');
  assert.equal(e.address, '10.0.0.2');
  assert.equal(e.port, 81);
  assert.equal(e.errno, 61);
  assert.equal(e.message, 'connect ECONNREFUSED 10.0.0.2:81');
  assert.equal(hadError, true);
  await n.stop();
});

test('net: EADDRINUSE on a second listen of the same port', async () => {
  const n = await netSys();
  const s1 = createServer({ stack: n.b }).listen(8080);
  const s2 = createServer({ stack: n.b });
  const errs: ErrLike[] = [];
  s2.on('error', (e: ErrLike) => errs.push(e));
  s2.listen(8080, '0.0.0.0');
  await n.settle();
  assert.equal(errs.length, 1);
  const e = errs[0];
  assert.equal(e.code, 'EADDRINUSE');
  assert.equal(e.syscall, 'listen');
  assert.equal(e.port, 8080);
  assert.equal(s2.listening, false);
  assert.equal(s1.listening, true);
  await closeServer(n, s1);
  await n.stop();
});

test('net: reset by the peer gives ECONNRESET to a reading socket', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9002);
  const errs: ErrLike[] = [];
  let hadError: boolean | null = null;
  client.on('error', (e: ErrLike) => errs.push(e));
  client.on('close', (h: boolean) => (hadError = h));
  client.resume();
  server.resetAndDestroy();
  assert.ok(await n.pump(() => hadError !== null));
  assert.equal(errs[0]?.code, 'ECONNRESET');
  assert.equal(errs[0]?.syscall, 'read');
  assert.equal(hadError, true);
  await closeServer(n, srv);
  await n.stop();
});

test('net: destroy() mid-transfer on both sides leaks nothing', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9003);
  const big = randomBytes(1 << 20);
  client.write(big);
  client.write(big);
  let got = 0;
  server.on('data', (d: Buffer) => (got += d.length));
  assert.ok(await n.pump(() => got > 100_000, 10_000));
  let closes = 0;
  client.on('close', () => closes++);
  server.on('close', () => closes++);
  server.on('error', () => {});
  client.destroy();
  assert.ok(await n.pump(() => closes >= 1));
  server.destroy();
  assert.ok(await n.pump(() => closes === 2));
  assert.equal(client.destroyed, true);
  await closeServer(n, srv);
  // Stop while connections are still in FIN/TIME_WAIT states: stop() frees them too.
  await n.stop();
});

test('net: setTimeout fires after idle time on the stack clock, and activity defers it', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9004);
  const t0 = n.sys.thread!.clock.now();
  let fired = -1;
  client.setTimeout(1000, () => (fired = n.sys.thread!.clock.now() - t0));
  server.resume();
  await n.pump(() => false, 600, 10);
  client.write('x');
  assert.ok(await n.pump(() => fired >= 0, 5000, 10));
  assert.ok(fired >= 1600 && fired <= 1700, `timeout after ${fired} ms`);
  assert.equal(client.timeout, 1000);
  client.setTimeout(0);
  client.destroy();
  server.destroy();
  await closeServer(n, srv);
  await n.stop();
});

test('net: options reach TCP (TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE), names and counters', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9005);
  const so = n.a.tcp.sockets!;
  const out = new Int32Array(2);
  client.setNoDelay(true);
  so.getsockopt(client.fd, 6, 1, out);
  assert.equal(out[0], 1);
  client.setKeepAlive(true, 30_000);
  so.getsockopt(client.fd, 0xffff, 0x0008, out);
  assert.equal(out[0], 1);
  so.getsockopt(client.fd, 6, 256, out);
  assert.equal(out[0], 30);
  assert.equal(client.localAddress, '10.0.0.1');
  assert.ok(client.localPort! >= 1024);
  assert.equal(server.remoteAddress, '10.0.0.1');
  assert.equal(server.remotePort, client.localPort);
  assert.equal(server.localPort, 9005);
  assert.equal(client.pending, false);
  assert.equal(client.readyState, 'open');
  let count = -1;
  srv.getConnections((_e, c) => (count = c));
  await n.settle();
  assert.equal(count, 1);
  client.destroy();
  server.destroy();
  await closeServer(n, srv);
  await n.stop();
});

test('net: maxConnections refuses the extra connection; netFor gives Node\'s signatures', async () => {
  const n = await netSys();
  const nb = netFor(n.b);
  const na = netFor(n.a);
  const accepted: Socket[] = [];
  const srv = nb.createServer((s) => accepted.push(s));
  srv.maxConnections = 1;
  const drops: { remoteAddress?: string; localPort?: number }[] = [];
  srv.on('drop', (d) => drops.push(d));
  srv.listen(7000, '10.0.0.2', 16);
  await n.settle();
  const c1 = na.connect(7000, '10.0.0.2');
  const c2 = na.connect({ port: 7000, host: '10.0.0.2' });
  let c2closed = false;
  c2.on('error', () => {});
  c2.on('end', () => {});
  c2.resume();
  c2.on('close', () => (c2closed = true));
  assert.ok(await n.pump(() => c2closed && accepted.length === 1));
  assert.equal(accepted.length, 1);
  assert.equal(drops.length, 1);
  assert.equal(drops[0].remoteAddress, '10.0.0.1');
  assert.equal(drops[0].localPort, 7000);
  c1.destroy();
  accepted[0].destroy();
  await closeServer(n, srv);
  await n.stop();
});

test('net: a write after the peer reset fails with EPIPE (or ECONNRESET) and closes with hadError', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9006);
  server.resetAndDestroy();
  await n.pump(() => false, 50);
  const errs: ErrLike[] = [];
  let hadError: boolean | null = null;
  client.on('error', (e: ErrLike) => errs.push(e));
  client.on('close', (h: boolean) => (hadError = h));
  let cbErr: ErrLike | null | undefined;
  client.write('after the reset', (e) => (cbErr = e as ErrLike | null));
  assert.ok(await n.pump(() => hadError !== null));
  assert.equal(errs.length, 1);
  assert.ok(['EPIPE', 'ECONNRESET'].includes(errs[0].code!), `code ${errs[0].code}`);
  assert.equal(errs[0].syscall, 'write');
  assert.equal(cbErr, errs[0], 'the write callback gets the same error');
  assert.equal(hadError, true);
  await closeServer(n, srv);
  await n.stop();
});

test('net: connect through a dead link times out with ETIMEDOUT after keepinit (75 s)', async () => {
  const n = await netSys({ fault: { seed: 1, loss: 1 } });
  const errs: ErrLike[] = [];
  let closed = false;
  const t0 = n.sys.thread!.clock.now();
  const c = connect({ stack: n.a, host: '10.0.0.2', port: 80 });
  c.on('error', (e: ErrLike) => errs.push(e));
  c.on('close', () => (closed = true));
  assert.ok(await n.pump(() => closed, 100_000, 250));
  const took = n.sys.thread!.clock.now() - t0;
  assert.equal(errs[0]?.code, 'ETIMEDOUT');
  assert.equal(errs[0]?.message, 'connect ETIMEDOUT 10.0.0.2:80');
  assert.ok(took >= 74_000 && took <= 77_000, `timed out after ${took} ms`);
  await n.stop();
});

test('net: allowHalfOpen false (the default) ends our side when the peer ends', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9007);
  const atServer = collect(server);
  let serverFinished = false;
  server.on('finish', () => (serverFinished = true));
  const atClient = collect(client);
  let closes = 0;
  client.on('close', () => closes++);
  server.on('close', () => closes++);
  client.end('bye');
  assert.ok(await n.pump(() => closes === 2));
  assert.equal(atServer.data().toString(), 'bye');
  assert.ok(atServer.ended() && serverFinished, 'the server ended its side by itself');
  assert.ok(atClient.ended(), 'the client saw the FIN back');
  await closeServer(n, srv);
  await n.stop();
});

test('net: property: any write sizes and reader pauses deliver the bytes exactly, over a lossy link', async () => {
  const fc = (await import('fast-check')).default;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 30 }),
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 1000 }),
      async (sizes, pauses, seed) => {
        const n = await netSys({ fault: { seed, loss: 0.01, reorder: 0.01 } });
        const { srv, client, server } = await pair(n, 9100);
        const data = randomBytes(sizes.reduce((a, b) => a + b, 0));
        const got = collect(server);
        let off = 0;
        for (const sz of sizes) {
          client.write(data.subarray(off, off + sz));
          off += sz;
        }
        client.end();
        // The reader stops and starts: each pause holds it for that many ms of stack time.
        for (const ms of pauses) {
          server.pause();
          await n.pump(() => false, ms, 5);
          server.resume();
          await n.pump(() => false, 20, 5);
        }
        assert.ok(await n.pump(() => got.ended(), 120_000, 5));
        assert.equal(got.data().length, data.length);
        assert.ok(got.data().equals(data));
        server.destroy();
        client.destroy();
        await closeServer(n, srv);
        await n.stop();
      },
    ),
    { numRuns: 6, seed: 4242 },
  );
});

test('net: localhost over lo0, listen on 127.0.0.1, Socket made first then connect()', async () => {
  const n = await netSys();
  const srv = createServer({ stack: n.a }, (s) => s.resume().end('from loopback'));
  srv.listen({ port: 5000, host: '127.0.0.1' });
  await n.settle();
  assert.deepEqual(srv.address(), { address: '127.0.0.1', family: 'IPv4', port: 5000 });
  const c = new (netFor(n.a).Socket)();
  assert.equal(c.pending, true);
  c.setEncoding('utf8');
  let text = '';
  c.on('data', (d: string) => (text += d));
  let closed = false;
  c.on('close', () => (closed = true));
  c.connect(5000);
  assert.ok(await n.pump(() => closed));
  assert.equal(text, 'from loopback');
  assert.equal(c.remoteAddress, '127.0.0.1');
  await closeServer(n, srv);
  await n.stop();
});

test('net: 30 clients at once against one echo server (the accept queue), each byte-exact', async () => {
  const n = await netSys();
  const srv = createServer({ stack: n.b }, (s) => s.pipe(s));
  srv.listen(7007, '10.0.0.2', 64);
  await n.settle();
  const results: { want: Buffer; got: () => Buffer; ended: () => boolean }[] = [];
  for (let i = 0; i < 30; i++) {
    const c = connect({ stack: n.a, host: '10.0.0.2', port: 7007 });
    const want = randomBytes(1000 + i * 3000);
    const g = collect(c);
    c.end(want);
    results.push({ want, ...{ got: g.data, ended: g.ended } });
  }
  assert.ok(await n.pump(() => results.every((r) => r.ended()), 30_000, 2));
  for (const r of results) assert.ok(r.got().equals(r.want));
  await closeServer(n, srv);
  await n.stop();
});
