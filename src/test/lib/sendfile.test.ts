/**
 * Socket.sendFile (lib/sendfile.ts) over the in-memory link on the manual
 * clock: a real temp file, SHA-256 compared at the receiver, headers sharing
 * the first segment with the file's first bytes (checked in a capture),
 * offset/length, trailers, order against stream writes, backpressure and
 * destroy mid-file. Every test checks that every zone is back at its start.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server, type Socket } from '../../lib/net.js';
import { readPcap } from '../../net/phy/pcap.js';
import { closeServer, collect, netSys, pair, sha, type NetSys } from './netsys.js';
import type { LinkOptions } from '../../lib/topology.js';

const dir = mkdtempSync(join(tmpdir(), 'slabnet-sendfile-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function tempFile(name: string, bytes: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}



/** Resolve-tracking of a promise for pump conditions. */
function track<T>(p: Promise<T>) {
  const st: { done: boolean; value?: T; err?: Error } = { done: false };
  p.then(
    (v) => Object.assign(st, { done: true, value: v }),
    (e: Error) => Object.assign(st, { done: true, err: e }),
  );
  return st;
}

/** TCP payloads 10.0.0.1 sent, in capture order (Ethernet / IPv4 / TCP). */
function sentPayloads(path: string): Buffer[] {
  const out: Buffer[] = [];
  for (const r of readPcap(path).records) {
    const f = Buffer.from(r.data);
    if (f.readUInt16BE(12) !== 0x0800) continue;
    const ip = f.subarray(14);
    if (ip[9] !== 6 || ip.readUInt32BE(12) !== 0x0a000001) continue;
    const ihl = (ip[0] & 15) * 4;
    const tcp = ip.subarray(ihl, ip.readUInt16BE(2));
    const p = tcp.subarray((tcp[12] >> 4) * 4);
    if (p.length > 0) out.push(Buffer.from(p));
  }
  return out;
}

test('sendFile: headers + a 1 MiB file + trailers arrive byte-exact; the first data segment is headers and file bytes, MSS-full', async () => {
  const pcap = join(dir, 'a.pcap');
  const n = await netSys({ a: { addrs: '10.0.0.1/24', pcap } } as LinkOptions);
  const { srv, client, server } = await pair(n, 9200);
  const body = randomBytes((1 << 20) + 12345);
  const path = tempFile('body.bin', body);
  const headers = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
  const trailers = Buffer.from('\r\n-- end --\r\n');
  const got = collect(server);
  const st = track(client.sendFile(path, { headers, trailers }));
  assert.ok(await n.pump(() => st.done, 30_000, 2));
  assert.equal(st.err, undefined);
  assert.equal(st.value, headers.length + body.length + trailers.length);
  // Payload per segment: the MSS less the timestamp option (12 bytes) when it is on.
  const info = client.info()!;
  const mss = info.tcpi_snd_mss - ((info.tcpi_options & 1) !== 0 ? 12 : 0);
  client.end();
  assert.ok(await n.pump(() => got.ended(), 10_000, 2));
  const expect = Buffer.concat([headers, body, trailers]);
  assert.equal(got.data().length, expect.length);
  assert.equal(sha(got.data()), sha(expect));
  server.destroy();
  await closeServer(n, srv);
  await n.stop();
  const segs = sentPayloads(pcap);
  assert.ok(segs.length > 0);
  const first = segs[0];
  // Headers alone would be a short segment; here the file's first bytes fill it up to the MSS
  // (a TSO packet on this link is several MSS: the capture shows it whole).
  assert.ok(first.length >= mss && first.length % mss === 0, `first segment ${first.length} bytes, mss ${mss}`);
  assert.deepEqual(first.subarray(0, headers.length), headers);
  assert.deepEqual(first.subarray(headers.length, first.length), body.subarray(0, first.length - headers.length));
});

test('sendFile: offset and length of an fd, stream writes before and after keep their order, cb form', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9201);
  const body = randomBytes(700_000);
  const fd = openSync(tempFile('part.bin', body), 'r');
  const got = collect(server);
  client.write('before|');
  let res: [Error | null, number] | null = null;
  void client.sendFile(fd, { offset: 1000, length: 500_000 }, (e, k) => (res = [e, k]));
  client.write('|after');
  assert.ok(await n.pump(() => res !== null, 30_000, 2));
  assert.deepEqual(res, [null, 500_000]);
  // A length past the end of the file stops at the end (as sendfile's nbytes).
  const st = track(client.sendFile(fd, { offset: 650_000, length: 100_000 }));
  assert.ok(await n.pump(() => st.done, 10_000, 2));
  assert.equal(st.value, 50_000);
  client.end();
  assert.ok(await n.pump(() => got.ended(), 10_000, 2));
  closeSync(fd);
  const expect = Buffer.concat([Buffer.from('before|'), body.subarray(1000, 501_000), Buffer.from('|after'), body.subarray(650_000)]);
  assert.equal(sha(got.data()), sha(expect));
  await assert.rejects(client.sendFile(join(dir, 'part.bin')), /ENOTCONN|EPIPE/);
  await assert.rejects(client.sendFile(join(dir, 'part.bin'), { offset: -1 }), /offset/);
  server.destroy();
  await closeServer(n, srv);
  await n.stop();
});

test('sendFile: a paused reader holds it back (so_snd full); resume and it completes; destroy mid-file rejects and leaks nothing', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9202);
  const body = randomBytes(8 << 20);
  const path = tempFile('big.bin', body);
  server.pause();
  const st = track(client.sendFile(path, { headers: [Buffer.from('H1 '), Buffer.from('H2\n')] }));
  const sendQ = () => n.a.tcp.sockets!.list().find((x) => x.id === client.fd)!.sendQ;
  // The file reads are libuv's (real time): wait until the paused reader's window is closed with data in so_snd.
  const blocked = () => {
    const i = client.info()!;
    return sendQ() > 0 && i.tcpi_snd_wnd < i.tcpi_snd_mss;
  };
  assert.ok(await n.pump(blocked, 60_000, 10));
  await n.pump(() => false, 1000, 10);
  assert.equal(st.done, false, 'blocked by the closed window');
  assert.ok(sendQ() > 0 && sendQ() <= 4 << 20, `so_snd holds ${sendQ()}`);
  const got = collect(server);
  server.resume();
  assert.ok(await n.pump(() => st.done, 60_000, 2));
  assert.equal(st.value, body.length + 6);
  client.end();
  assert.ok(await n.pump(() => got.ended(), 10_000, 2));
  assert.equal(sha(got.data()), sha(Buffer.concat([Buffer.from('H1 H2\n'), body])));
  server.destroy();
  // Destroy while a sendFile waits for room.
  const p2 = await pair(n, 9203);
  p2.server.pause();
  const st2 = track(p2.client.sendFile(path));
  await n.pump(() => false, 500, 10);
  assert.equal(st2.done, false);
  p2.client.destroy();
  // What it waits for now is libuv's (the file read in flight, then the close): real time, which a
  // loaded machine stretches past any count of pump steps (1 run in 8 failed under two busy loops).
  const t0 = Date.now();
  while (!st2.done && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 5));
  assert.ok(st2.done, 'the sendFile settled after destroy');
  assert.match(String(st2.err), /ENOTCONN/);
  p2.server.destroy();
  await closeServer(n, p2.srv);
  await closeServer(n, srv);
  await n.stop();
});
