/**
 * Helpers for tests that use the real system: external tools (tcpdump,
 * tshark, ping, socat), root and /dev/net/tun. The rule: such a test runs
 * whenever it can; it may skip only when the tool or privilege is missing AND
 * CI is unset, and then says why. Under CI=true a missing prerequisite fails.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tapAddonPath } from '../../net/phy/tap-addon.js';

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

/** True if `name` is on PATH. */
export function haveTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * The reason to skip a test that needs `tools` (and root / a TUN device if
 * asked), or false when it can run. Throws under CI when something is missing.
 */
export function skipUnless(opts: { tools?: string[]; root?: boolean; tun?: boolean; addon?: boolean }): string | false {
  const missing: string[] = [];
  for (const t of opts.tools ?? []) if (!haveTool(t)) missing.push(t);
  if (opts.root && !isRoot) missing.push('root');
  if (opts.tun && !existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
  if ((opts.addon || opts.tun) && !existsSync(tapAddonPath())) missing.push('the native TAP addon (npm run build:native)');
  if (missing.length === 0) return false;
  const why = `needs ${missing.join(', ')} (run as root after scripts/install-system-deps.sh)`;
  if (inCI) throw new Error(`CI=true and this test ${why}`);
  return why;
}

/** Run a command, returning {status, stdout, stderr} as strings. */
export function sh(cmd: string, args: string[], timeoutMs = 10000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * Run a command without blocking the event loop (a stack in this thread
 * must keep answering while it runs); `input`, when given, is written to its
 * stdin (stdin is /dev/null otherwise). Killed after `timeoutMs`.
 */
export function runAsync(argv: string[], input?: string, timeoutMs = 15000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
    if (input !== undefined) p.stdin!.end(input);
  });
}

/**
 * From the namespace whose argv() wraps commands (netns.ts): ping `addr`
 * 3 times, then twice with `bigSize` bytes of data (fragmented both ways);
 * asserts both succeed and every reply came back.
 */
export async function assertPings(ns: { argv(cmd: string[]): string[] }, addr: string, bigSize: number): Promise<void> {
  let r = await runAsync(ns.argv(['ping', '-c', '3', '-i', '0.2', '-W', '2', addr]));
  assert.equal(r.code, 0, `ping failed:\n${r.out}${r.err}`);
  assert.match(r.out, /3 received/);
  r = await runAsync(ns.argv(['ping', '-c', '2', '-i', '0.2', '-W', '2', '-s', String(bigSize), addr]));
  assert.equal(r.code, 0, `large ping failed:\n${r.out}${r.err}`);
  assert.match(r.out, new RegExp(`${bigSize + 8} bytes from ${addr.replace(/\./g, '\\.')}`));
}
