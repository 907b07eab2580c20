/**
 * Helpers for tests that use the real system: external tools (tcpdump,
 * tshark, ping, socat), root and /dev/net/tun. The rule: such a test runs
 * whenever it can; it may skip only when the tool or privilege is missing AND
 * CI is unset, and then says why. Under CI=true a missing prerequisite fails.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tapAddonPath } from '../../net/tap-addon.js';

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
