// The TAP addon on its own: multi-queue open, reading a frame the kernel sends
// straight into a SharedArrayBuffer at an offset, poll readiness on the event
// loop, writev of a frame in pieces that the kernel accepts, and clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { loadTapAddon, tapAddonPath, EAGAIN, type TapAddon, type TapPollHandle } from '../../net/phy/tap-addon.js';
import { ETH_HLEN, ETHERTYPE_ARP, ethEmit, ethSrc, ethType } from '../../wire/ethernet.js';
import { ARP_LEN, ARPOP_REPLY, ARPOP_REQUEST, arpEmit, arpOp, arpParse, arpSha, arpSpa, arpTpa } from '../../wire/arp.js';
import { WIRE_OK } from '../../wire/codes.js';
import { ipFromString } from '../../wire/ipv4.js';
import { skipUnless } from './sys.js';
import { NetNs } from './netns.js';

function addon(): TapAddon {
  return loadTapAddon();
}

test('argument errors are thrown with ERR_SLABNET_INVALID_ARG', (t) => {
  const skip = skipUnless({ addon: true });
  if (skip) return t.skip(skip);
  const a = addon();
  const u8 = new Uint8Array(new SharedArrayBuffer(64));
  assert.throws(() => a.open('x', 0), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => a.open('this-name-is-too-long-for-linux', 1), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => a.read(0, u8, 60, 10), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => a.write(0, new Uint16Array(4) as unknown as Uint8Array, 0, 1), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => a.writev(0, u8, new Int32Array([0, 100]), 1), { code: 'ERR_SLABNET_INVALID_ARG' });
  assert.throws(() => a.pollStart(-1, () => {}), { code: 'ERR_SLABNET_INVALID_ARG' });
  // I/O errors come back as -errno, never thrown: fd 999 is not open.
  assert.ok(a.read(999, u8, 0, 10) < 0);
});

test('not root: open fails with ERR_SLABNET_TAP_PERM', (t) => {
  const skip = skipUnless({ root: true, tun: true });
  if (skip) return t.skip(skip);
  // Drop to nobody in a child and try to create a TAP there.
  const script = `
    const { createRequire } = require('node:module');
    process.setgid(65534); process.setuid(65534);
    const a = require(${JSON.stringify(tapAddonPath())});
    try { a.open('snperm0', 1); console.log('opened'); } catch (e) { console.log(e.code); }`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), 'ERR_SLABNET_TAP_PERM', r.stderr);
});

test('a kernel ARP request is read into the arena and our writev reply fills the kernel neighbour table', async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'ping'] });
  if (skip) return t.skip(skip);
  const a = addon();
  const tap = a.open(`snt${process.pid % 100000}`, 2);
  assert.equal(tap.fds.length, 2);
  const ns = NetNs.create('tapaddon');
  const polls: TapPollHandle[] = [];
  try {
    ns.adopt(tap.name, '10.77.0.1/24');
    const sab = new SharedArrayBuffer(1 << 16);
    const u8 = new Uint8Array(sab);
    const at = 4096 + 2; // an unaligned arena offset
    for (const fd of tap.fds) assert.equal(a.read(fd, u8, at, 2048), -EAGAIN, 'nothing queued yet');
    const ourMac = 0x0200_5e00_0042;
    const ourIp = ipFromString('10.77.0.2');
    const kernelIp = ipFromString('10.77.0.1');
    // The kernel resolves 10.77.0.2 when ping sends to it: it writes an ARP request into the TAP.
    const ping = spawn(ns.argv(['ping', '-c', '3', '-i', '0.3', '-W', '1', '10.77.0.2'])[0], ns.argv(['ping', '-c', '3', '-i', '0.3', '-W', '1', '10.77.0.2']).slice(1), { stdio: 'ignore' });
    let kernelMac = -1;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ARP request from the kernel within 5 s')), 5000);
      for (const fd of tap.fds) {
        polls.push(
          a.pollStart(fd, () => {
            for (;;) {
              const n = a.read(fd, u8, at, 2048);
              if (n === -EAGAIN) return;
              assert.ok(n > 0, `read failed: ${n}`);
              if (ethType(u8, at) !== ETHERTYPE_ARP) continue;
              assert.equal(arpParse(u8, at + ETH_HLEN, n - ETH_HLEN), WIRE_OK);
              if (arpOp(u8, at + ETH_HLEN) !== ARPOP_REQUEST || arpTpa(u8, at + ETH_HLEN) !== ourIp) continue;
              assert.equal(arpSpa(u8, at + ETH_HLEN), kernelIp);
              kernelMac = arpSha(u8, at + ETH_HLEN);
              assert.equal(ethSrc(u8, at), kernelMac);
              clearTimeout(timer);
              resolve();
              return;
            }
          }),
        );
      }
    });
    // Answer from two pieces of the arena: Ethernet header at one place, ARP body at another.
    const h = 8192;
    const b = 12288 + 6;
    ethEmit(u8, h, kernelMac, ourMac, ETHERTYPE_ARP);
    arpEmit(u8, b, ARPOP_REPLY, ourMac, ourIp, kernelMac, kernelIp);
    const iov = new Int32Array([h, ETH_HLEN, b, ARP_LEN]);
    assert.equal(a.writev(tap.fds[0], u8, iov, 2), ETH_HLEN + ARP_LEN);
    let neigh = '';
    for (let i = 0; i < 50 && !/lladdr 02:00:5e:00:00:42/.test(neigh); i++) {
      await new Promise((r) => setTimeout(r, 50));
      neigh = ns.exec(['ip', 'neigh', 'show', '10.77.0.2']);
    }
    assert.match(neigh, /10\.77\.0\.2 dev \S+ lladdr 02:00:5e:00:00:42/);
    ping.kill();
  } finally {
    for (const p of polls) a.pollStop(p);
    for (const p of polls) a.pollStop(p); // twice is harmless
    for (const fd of tap.fds) a.close(fd);
    ns.destroy();
  }
});
