/**
 * Node's own http machinery over slabnet TCP on the real clock (Node's
 * http uses its own timers): an http.createServer handler served through
 * serveHttp on stack b, clients on stack a through the slabnet Agent and
 * http.request's createConnection option. Each test stops its system and
 * checks that every zone's `used` is back where it started.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { System } from '../../lib/topology.js';
import { connect, createServer, TcpHost, type Socket } from '../../lib/net.js';
import { IPPROTO_TCP, TCP_NODELAY } from '../../netinet/tcp_api.js';
import { Agent, createConnectionFor, serveHttp } from '../../lib/http.js';
import { testUma, mbufLeakCheck } from '../helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Two stacks on the real clock, an http.Server on b:80 and a way to stop everything. */
async function httpSys(handler: http.RequestListener) {
  const uma = testUma({ size: 128 << 20 });
  const sys = System.local({ uma });
  const done = mbufLeakCheck(uma, sys.mb);
  const a = sys.addStack('a');
  const b = sys.addStack('b', { seed: 5 });
  sys.link(a, b, { a: '10.0.0.1/24', b: '10.0.0.2/24' });
  const hs = http.createServer(handler);
  const conns: Socket[] = [];
  const srv = createServer({ stack: b }, (s) => conns.push(s)).listen(80);
  serveHttp(hs, srv);
  await once(srv, 'listening');
  return {
    a,
    conns,
    async stop() {
      const closed = new Promise<void>((r) => srv.close(() => r()));
      for (const c of conns) c.destroy();
      await closed;
      await sys.stop();
      done();
    },
  };
}

/** One request; resolves with the response and its whole body. */
function request(o: http.RequestOptions, body?: Buffer): Promise<{ res: http.IncomingMessage; body: Buffer; socket: Socket }> {
  return new Promise((resolve, reject) => {
    let socket: Socket | null = null;
    const req = http.request(o, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ res, body: Buffer.concat(parts), socket: socket! }));
      res.on('error', reject);
    });
    req.on('socket', (s) => (socket = s as unknown as Socket));
    req.on('error', reject);
    req.end(body);
  });
}

test('http: keep-alive serves several requests on one slabnet connection', { timeout: 30_000 }, async () => {
  const h = await httpSys((req, res) => res.end(`you asked for ${req.url} from ${req.socket.remoteAddress}`));
  const agent = new Agent(h.a, { keepAlive: true, maxSockets: 1 });
  const ports = new Set<number>();
  for (let i = 0; i < 5; i++) {
    const r = await request({ host: '10.0.0.2', port: 80, path: `/r${i}`, agent });
    assert.equal(r.res.statusCode, 200);
    assert.equal(r.body.toString(), `you asked for /r${i} from 10.0.0.1`);
    assert.equal(r.res.headers.connection, 'keep-alive');
    ports.add(r.socket.localPort!);
  }
  assert.equal(ports.size, 1, 'one client port');
  assert.equal(h.conns.length, 1, 'one accepted connection');
  agent.destroy();
  await h.stop();
});

test('http: a 4 MB POST body and a 3 MB response arrive byte-exact (SHA-256)', { timeout: 30_000 }, async () => {
  const down = randomBytes(3 << 20);
  const h = await httpSys((req, res) => {
    const hash = createHash('sha256');
    let n = 0;
    req.on('data', (d: Buffer) => {
      hash.update(d);
      n += d.length;
    });
    req.on('end', () => {
      res.setHeader('x-body-sha256', hash.digest('hex'));
      res.setHeader('x-body-length', String(n));
      res.setHeader('content-length', String(down.length));
      res.end(down);
    });
  });
  const up = randomBytes(4 << 20);
  const r = await request({ host: '10.0.0.2', port: 80, method: 'POST', path: '/upload', createConnection: createConnectionFor(h.a) as never, headers: { 'content-length': String(up.length) } }, up);
  assert.equal(r.res.statusCode, 200);
  assert.equal(r.res.headers['x-body-length'], String(up.length));
  assert.equal(r.res.headers['x-body-sha256'], sha(up));
  assert.equal(r.body.length, down.length);
  assert.equal(sha(r.body), sha(down));
  await h.stop();
});

test('http: chunked responses (no content-length) reach the client in order', { timeout: 30_000 }, async () => {
  const parts = Array.from({ length: 50 }, (_, i) => `chunk ${i} `.repeat(i * 20 + 1));
  const h = await httpSys((_req, res) => {
    let i = 0;
    const next = () => {
      if (i === parts.length) {
        res.end();
        return;
      }
      res.write(parts[i++]);
      setImmediate(next);
    };
    next();
  });
  const agent = new Agent(h.a, { keepAlive: true });
  for (let k = 0; k < 2; k++) {
    const r = await request({ host: '10.0.0.2', port: 80, path: '/stream', agent });
    assert.equal(r.res.headers['transfer-encoding'], 'chunked');
    assert.equal(r.body.toString(), parts.join(''));
  }
  assert.equal(h.conns.length, 1);
  agent.destroy();
  await h.stop();
});

test('http: 40 concurrent requests over an Agent of 8 sockets', { timeout: 30_000 }, async () => {
  const h = await httpSys((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => res.end(`${req.url} ${n}`));
  });
  const agent = new Agent(h.a, { keepAlive: true, maxSockets: 8 });
  const rs = await Promise.all(
    Array.from({ length: 40 }, (_, i) => request({ host: '10.0.0.2', port: 80, method: 'POST', path: `/c${i}`, agent, headers: { 'content-length': String(i * 1000) } }, Buffer.alloc(i * 1000, i))),
  );
  rs.forEach((r, i) => assert.equal(r.body.toString(), `/c${i} ${i * 1000}`));
  assert.ok(h.conns.length <= 8 && h.conns.length >= 1, `${h.conns.length} connections`);
  agent.destroy();
  await h.stop();
});

test('serveHttp sets TCP_NODELAY on accepted sockets as Node\'s http.Server does (noDelay: false leaves Nagle on)', async () => {
  for (const noDelay of [true, false]) {
    const uma = testUma({ size: 64 << 20 });
    const sys = System.local({ uma });
    const done = mbufLeakCheck(uma, sys.mb);
    const a = sys.addStack('a');
    const b = sys.addStack('b', { seed: 5 });
    sys.link(a, b, { a: '10.0.0.1/24', b: '10.0.0.2/24' });
    const hs = http.createServer({ noDelay }, (_q, r) => r.end('x'));
    const srv = createServer({ stack: b }).listen(80);
    serveHttp(hs, srv);
    const accepted = once(srv, 'connection');
    const c = connect({ stack: a, host: '10.0.0.2', port: 80 });
    const [s] = (await accepted) as [Socket];
    const out = new Int32Array(2);
    const r = TcpHost.of(b.stack).so.getsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, out);
    const closed = new Promise<void>((r) => srv.close(() => r()));
    c.destroy();
    s.destroy();
    await closed;
    await sys.stop();
    done();
    assert.equal(r, 0);
    assert.equal(out[0] !== 0, noDelay, `TCP_NODELAY with http.Server noDelay: ${noDelay}`);
  }
});
