// slabnet TCP against Linux curl over TAP: Node's own http.Server on slabnet
// sockets (10.77.1.2) serves a 100 MB download and takes a 100 MB upload
// from curl in a namespace this test creates (10.77.1.1); SHA-256 and size
// compared both ways. Then ab (apache2-utils) against the same server with
// keep-alive: a bounded run, every request answered, none failed; and wrk
// (8 keep-alive connections for 2 s): no socket errors, no non-2xx, and
// the server answered every response wrk counted. Needs root, /dev/net/tun,
// curl, ab and wrk; under CI=true it must run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnless } from './sys.js';
import { closeHttp, httpOnSlabnet, linuxTcp, PatternSource, patternDigest, spawnIn, writePatternFile } from './tcplinux.js';

const MB100 = 100 * 1024 * 1024;

test('curl: 100 MB download and upload against node http on slabnet, hashes match; ab keep-alive run has no failures', { timeout: 300_000 }, async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'curl', 'ab', 'sha256sum'] });
  if (skip) return t.skip(skip);
  const dir = mkdtempSync(join(tmpdir(), 'slabnet-tcphttp-'));
  const f = await linuxTcp('http', 1);
  try {
    const srv = await httpOnSlabnet(f, 80, (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.pathname === '/data') {
        const n = Number(url.searchParams.get('n'));
        const src = new PatternSource(Number(url.searchParams.get('seed')));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
        let left = n;
        const pump = (): void => {
          while (left > 0) {
            const c = src.next(Math.min(1 << 16, left));
            left -= c.length;
            if (!res.write(c)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      } else if (req.method === 'PUT' || req.method === 'POST') {
        const h = createHash('sha256');
        let bytes = 0;
        req.on('data', (d: Buffer) => {
          bytes += d.length;
          h.update(d);
        });
        req.on('end', () => res.end(`${h.digest('hex')} ${bytes}\n`));
      } else {
        // An explicit length: Node keeps an HTTP/1.0 (ab) connection alive only with one.
        res.writeHead(200, { 'content-length': '19' });
        res.end('hello from slabnet\n');
      }
    });

    // Download: curl's bytes go through sha256sum in the namespace.
    const want = patternDigest(7, MB100);
    const down = spawnIn(
      f.ns.argv(['sh', '-c', `curl -sS --fail --max-time 120 -w '%{stderr}%{size_download} %{speed_download}\\n' 'http://${f.us}/data?n=${MB100}&seed=7' | sha256sum`]),
      130_000,
      { fixture: f },
    );
    const d = await down.done;
    assert.equal(d.code, 0, d.err);
    assert.equal(d.out.split(' ')[0], want.sha256, `download hash (curl said: ${d.err})`);
    const [dsize, dspeed] = d.err.trim().split('\n').pop()!.split(' ').map(Number);
    assert.equal(dsize, MB100);
    t.diagnostic(`curl download 100 MB: ${(dspeed / 1e6).toFixed(1)} MB/s`);

    // Upload: a 100 MB file PUT by curl; the server hashes what it received.
    const file = join(dir, 'up.bin');
    await writePatternFile(file, 11, MB100);
    const wantUp = patternDigest(11, MB100);
    const up = spawnIn(f.ns.argv(['curl', '-sS', '--fail', '--max-time', '120', '-T', file, '-w', '%{stderr}%{size_upload} %{speed_upload}\n', `http://${f.us}/upload`]), 130_000, { fixture: f });
    const u = await up.done;
    assert.equal(u.code, 0, u.err);
    assert.equal(u.out.trim(), `${wantUp.sha256} ${MB100}`);
    const [usize, uspeed] = u.err.trim().split('\n').pop()!.split(' ').map(Number);
    assert.equal(usize, MB100);
    t.diagnostic(`curl upload 100 MB: ${(uspeed / 1e6).toFixed(1)} MB/s`);

    // ab with keep-alive: 4 concurrent clients, 2000 requests, bounded by -t and timeout.
    const before = f.tcpStats();
    const ab = spawnIn(f.ns.argv(['timeout', '60', 'ab', '-k', '-q', '-c', '4', '-n', '2000', '-s', '10', `http://${f.us}/hello`]), 70_000, { fixture: f });
    const a = await ab.done;
    assert.equal(a.code, 0, `ab failed:\n${a.out}\n${a.err}`);
    assert.match(a.out, /Complete requests:\s+2000\b/);
    assert.match(a.out, /Failed requests:\s+0\b/);
    assert.match(a.out, /Keep-Alive requests:\s+2000\b/);
    assert.doesNotMatch(a.out, /Non-2xx responses/);
    assert.match(a.out, /Document Length:\s+19 bytes/);
    const rps = /Requests per second:\s+([\d.]+)/.exec(a.out)?.[1];
    t.diagnostic(`ab -k -c 4 -n 2000: ${rps} requests/s`);
    // Keep-alive: 4 connections carried 2000 requests.
    const after = f.tcpStats();
    assert.ok(after.accepts - before.accepts <= 8, `ab opened ${after.accepts - before.accepts} connections for 2000 keep-alive requests`);
    await closeHttp(srv);
  } finally {
    await f.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('wrk (keep-alive, 8 connections) against node http on slabnet over TAP: no errors, every counted response was served', { timeout: 120_000 }, async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'wrk'] });
  if (skip) return t.skip(skip);
  const f = await linuxTcp('wrk', 9);
  try {
    let served = 0;
    const srv = await httpOnSlabnet(f, 80, (_req, res) => {
      served++;
      res.writeHead(200, { 'content-length': '19' });
      res.end('hello from slabnet\n');
    });
    const before = f.tcpStats();
    const w = await spawnIn(f.ns.argv(['timeout', '60', 'wrk', '-t1', '-c8', '-d2s', `http://${f.us}/`]), 70_000, { fixture: f }).done;
    assert.equal(w.code, 0, `wrk failed:\n${w.out}\n${w.err}`);
    t.diagnostic(w.out.replace(/\n+/g, ' | '));
    assert.doesNotMatch(w.out, /Socket errors|Non-2xx/);
    const m = /(\d+) requests in [\d.]+\w*, ([\d.]+)(\w+) read/.exec(w.out);
    assert.ok(m, `no request count in wrk's output:\n${w.out}`);
    const requests = Number(m[1]);
    assert.ok(requests > 100, `only ${requests} requests in 2 s`);
    // wrk counts the responses that arrived before it stopped; at most one more per connection was in flight.
    assert.ok(served >= requests && served <= requests + 8, `served ${served}, wrk counted ${requests}`);
    // Keep-alive: the 8 connections carried every request (wrk first opens and closes one to test the address).
    const after = f.tcpStats();
    assert.ok(after.accepts - before.accepts <= 9, `wrk opened ${after.accepts - before.accepts} connections`);
    t.diagnostic(`wrk -t1 -c8 -d2s: ${/Requests\/sec:\s+([\d.]+)/.exec(w.out)?.[1]} requests/s`);
    await closeHttp(srv);
  } finally {
    await f.close();
  }
});
