// slabnet TCP against Linux nc (netcat-openbsd), socat and ss over TAP. The
// kernel side of the TAP is in a namespace this test creates (10.77.2.1/24
// and, for the jumbo-MTU case, 10.77.3.1/24); slabnet is .2. Checks:
// - bulk both ways: 100 MB from nc into a slabnet sink, 100 MB from a slabnet
//   source into socat, SHA-256 and size compared on the receiving side;
// - half-close: nc -N sends and shuts its write side; slabnet (allowHalfOpen)
//   reads to EOF, then answers with what it got and closes; nc sees the answer;
// - ss -ti in the namespace during a connection on a 4000-byte MTU TAP shows
//   what was negotiated (ts, sack, wscale matching slabnet's TCP_INFO, mss
//   from the MTU), and slabnet's TCP_INFO agrees.
// Needs root, /dev/net/tun, nc, socat, ss; under CI=true it must run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnless } from './sys.js';
import { linuxTcp, PatternSource, patternDigest, spawnIn, waitFor, writePatternFile } from './tcplinux.js';
import type { Socket } from '../../lib/net.js';
import { TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE } from '../../netinet/tcp_api.js';
import { TCPS_ESTABLISHED } from '../../netinet/tcp_fsm.js';

const MB100 = 100 * 1024 * 1024;
const TOOLS = ['ip', 'nc', 'socat', 'ss', 'sha256sum'];

/** Write `total` bytes of PatternSource(seed) to a slabnet socket, respecting backpressure, then end(). */
function sendPattern(s: Socket, seed: number, total: number): void {
  const src = new PatternSource(seed);
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const c = src.next(Math.min(1 << 16, left));
      left -= c.length;
      if (!s.write(c)) {
        s.once('drain', pump);
        return;
      }
    }
    s.end();
  };
  pump();
}

test('bulk 100 MB each way (nc into slabnet, slabnet into socat) with SHA-256; nc -N half-close answered after EOF', { timeout: 300_000 }, async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: TOOLS });
  if (skip) return t.skip(skip);
  const dir = mkdtempSync(join(tmpdir(), 'slabnet-tcpbulk-'));
  const f = await linuxTcp('bulk', 2);
  try {
    // Linux -> slabnet: nc sends a 100 MB file and shuts down its write side (-N).
    const file = join(dir, 'in.bin');
    await writePatternFile(file, 21, MB100);
    const want = patternDigest(21, MB100);
    const sink = new Promise<{ sha256: string; bytes: number }>((resolve, reject) => {
      const srv = f.net.createServer((s) => {
        const h = createHash('sha256');
        let bytes = 0;
        s.on('data', (d: Buffer) => {
          bytes += d.length;
          h.update(d);
        });
        s.on('end', () => {
          resolve({ sha256: h.digest('hex'), bytes });
          srv.close();
        });
        s.on('error', reject);
      });
      f.defer(() => srv.close());
      srv.listen(5001);
    });
    let t0 = Date.now();
    const nc = spawnIn(f.ns.argv(['timeout', '120', 'sh', '-c', `nc -N ${f.us} 5001 < ${file}`]), 130_000, { fixture: f });
    const got = await sink;
    const ms = Date.now() - t0;
    const r = await nc.done;
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(got, want);
    t.diagnostic(`nc -> slabnet 100 MB: ${(MB100 / 1e3 / ms).toFixed(1)} MB/s`);

    // slabnet -> Linux: a slabnet source writes 100 MB and closes; socat hashes it.
    const srv2 = f.net.createServer((s) => sendPattern(s, 22, MB100));
    f.defer(() => srv2.close());
    await new Promise<void>((res) => srv2.listen(5002, res));
    t0 = Date.now();
    const so = spawnIn(f.ns.argv(['timeout', '120', 'bash', '-c', `socat -u TCP4:${f.us}:5002 STDOUT | tee >(wc -c >&2) | sha256sum`]), 130_000, { fixture: f });
    const r2 = await so.done;
    const ms2 = Date.now() - t0;
    assert.equal(r2.code, 0, r2.err);
    assert.equal(r2.out.split(' ')[0], patternDigest(22, MB100).sha256);
    assert.equal(Number(r2.err.trim()), MB100);
    t.diagnostic(`slabnet -> socat 100 MB: ${(MB100 / 1e3 / ms2).toFixed(1)} MB/s`);
    srv2.close();

    // Half-close: 1 MB from nc, which then shuts its write side; slabnet answers only after EOF.
    const half = join(dir, 'half.bin');
    await writePatternFile(half, 23, 1 << 20);
    const events: string[] = [];
    const srv3 = f.net.createServer({ allowHalfOpen: true }, (s) => {
      const h = createHash('sha256');
      let bytes = 0;
      s.on('data', (d: Buffer) => {
        bytes += d.length;
        h.update(d);
      });
      s.on('end', () => {
        events.push('end');
        // Our side is still open for writing: the answer goes out after the peer's FIN.
        assert.equal(s.writable, true);
        s.end(`got ${bytes} ${h.digest('hex')}\n`, () => events.push('answered'));
      });
      s.on('close', () => events.push('close'));
    });
    f.defer(() => srv3.close());
    await new Promise<void>((res) => srv3.listen(5003, res));
    const hc = spawnIn(f.ns.argv(['timeout', '30', 'sh', '-c', `nc -N ${f.us} 5003 < ${half}`]), 35_000, { fixture: f });
    const r3 = await hc.done;
    assert.equal(r3.code, 0, r3.err);
    assert.equal(r3.out, `got ${1 << 20} ${patternDigest(23, 1 << 20).sha256}\n`);
    await waitFor(() => events.includes('close'), 5000, 'the half-closed connection to close');
    assert.deepEqual(events, ['end', 'answered', 'close']);
    srv3.close();
  } finally {
    await f.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ss -ti in the namespace shows the negotiated options (ts, sack, wscale, mss from a 4000-byte MTU), matching slabnet TCP_INFO', { timeout: 60_000 }, async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: TOOLS });
  if (skip) return t.skip(skip);
  const MTU = 4000;
  const f = await linuxTcp('ss', 3, { mtu: MTU });
  try {
    let conn: Socket | null = null;
    const srv = f.net.createServer((s) => {
      conn = s;
      let n = 0;
      // Echo the first 5000 bytes back, so that Linux measures our segments too (rcvmss).
      s.on('data', (d: Buffer) => {
        if (n < 5000) s.write(d.subarray(0, Math.min(d.length, 5000 - n)));
        n += d.length;
      });
    });
    f.defer(() => srv.close());
    await new Promise<void>((res) => srv.listen(5004, res));
    // The Linux client: sends 5000 bytes, reads the echo, prints its kernel's TCP_INFO, waits for a line.
    const py = `
import json, socket, struct, sys
s = socket.create_connection((sys.argv[1], 5004), timeout=10)
s.sendall(b'x' * 5000)
got = 0
while got < 5000:
    d = s.recv(65536)
    if not d: break
    got += len(d)
b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
snd_mss, rcv_mss = struct.unpack_from('II', b, 16)
print(json.dumps({'got': got, 'options': b[5], 'snd_wscale': b[6] & 15, 'rcv_wscale': b[6] >> 4, 'snd_mss': snd_mss, 'rcv_mss': rcv_mss}), flush=True)
sys.stdin.readline()
s.close()
`;
    let line = '';
    const cli = spawnIn(f.ns.argv(['timeout', '30', 'python3', '-c', py, f.us]), 35_000, { stdin: 'pipe', fixture: f, onStdout: (d) => (line += d) });
    await waitFor(() => line.includes('\n'), 15_000, 'the Linux client');
    const lx = JSON.parse(line) as { got: number; options: number; snd_wscale: number; rcv_wscale: number; snd_mss: number; rcv_mss: number };
    const r = f.ns.exec(['ss', '-tin', 'state', 'established', 'dst', f.us]);
    t.diagnostic(r.replace(/\s+/g, ' ').trim());
    t.diagnostic(`Linux TCP_INFO: ${line.trim()}`);
    const info = conn!.info()!;
    assert.equal(info.tcpi_state, TCPS_ESTABLISHED);
    assert.equal(lx.got, 5000);
    // ss: Linux sends with the scale we advertised and receives with its own.
    const ws = /wscale:(\d+),(\d+)/.exec(r);
    assert.ok(ws, `no wscale in ss output:\n${r}`);
    assert.equal(Number(ws[1]), info.tcpi_rcv_wscale, 'Linux send scale = slabnet receive scale');
    assert.equal(Number(ws[2]), info.tcpi_snd_wscale, 'Linux receive scale = slabnet send scale');
    // MSS: 4000 - 20 (IP) - 20 (TCP) = 3960 advertised both ways, 3948 of data with timestamps.
    assert.match(r, new RegExp(`\\bpmtu:${MTU}\\b`));
    assert.match(r, /\bmss:3948\b/);
    assert.match(r, /\badvmss:3948\b/);
    assert.match(r, /\brcvmss:3948\b/, 'Linux saw full-sized segments from us');
    // This iproute2 (6.1) prints neither "ts" nor "sack" even for Linux-to-Linux connections on
    // newer kernels, so the flags are read from the kernel's TCP_INFO (python3) as well.
    if (/\bts\b/.test(r) || /\bsack\b/.test(r)) {
      assert.match(r, /\bts\b/);
      assert.match(r, /\bsack\b/);
    }
    const OPTS = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE; // the same bits in Linux's tcp_info
    assert.equal(lx.options & OPTS, OPTS, `Linux tcpi_options ${lx.options}`);
    assert.equal(lx.snd_wscale, info.tcpi_rcv_wscale);
    assert.equal(lx.rcv_wscale, info.tcpi_snd_wscale);
    assert.equal(lx.snd_mss, 3948);
    assert.equal(lx.rcv_mss, 3948);
    // slabnet's view.
    assert.equal(info.tcpi_options & OPTS, OPTS);
    // FreeBSD reports t_maxseg (3960), options not taken off (tcp_maxseg() does that per segment).
    assert.equal(info.tcpi_snd_mss, 3960);
    cli.child.stdin!.end('\n');
    const rc = await cli.done;
    assert.equal(rc.code, 0, rc.err);
    srv.close();
  } finally {
    await f.close();
  }
});
