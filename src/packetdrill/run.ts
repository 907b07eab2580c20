/**
 * Running scripts: read and parse a file, set up a fresh stack and TCP on a
 * manual clock, apply the script's options, execute it, tear it all down and
 * check that every mbuf came back. One arena serves a whole run of scripts.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Uma } from '../uma/uma.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { usedByZone } from '../uma/stats.js';
import { UMA_ZFLAG_INTERNAL } from '../uma/flags.js';
import { Sysctl } from '../kern/sysctl/sysctl.js';
import { registerStackSysctls } from '../netinet/tunables.js';
import { ScriptError } from './lexer.js';
import { parseScript } from './parser.js';
import type { Script } from './ast.js';
import { Executor, RunError } from './executor.js';
import { PdNet, DEFAULT_MTU } from './netif.js';
import { DEFAULT_CONFIG, RunState, type RunConfig } from './state.js';
import { stackTcp, sysctlSpec, type TcpFactory } from './tcpadapter.js';

export interface RunResult {
  path: string;
  pass: boolean;
  /** The first error, packetdrill-style (file:line: ...), or null. */
  error: string | null;
  /** The line the error names (0: none or the whole script). */
  line: number;
  warnings: string[];
  /** Options ignored and the like. */
  notes: string[];
  /** Virtual time the script took, seconds. */
  virtualSecs: number;
  /** Wall time, ms. */
  wallMs: number;
}

export interface PdEnv {
  uma: Uma;
  mb: Mbufs;
}

export interface RunOptions {
  /** Names #ifdef tests (none by default). */
  defines?: ReadonlySet<string>;
  /** The TCP under test (default: the stack's own). */
  tcp?: TcpFactory;
  /** Called with each packet injected and sniffed (packetdrill --verbose). */
  trace?: (line: string) => void;
}

/** An arena and mbufs for a run of scripts. */
export function createEnv(): PdEnv {
  const uma = Uma.create({ size: 96 << 20, ncpus: 2 });
  uma.logger = () => {};
  return { uma, mb: Mbufs.create(uma) };
}

const userZones = (uma: Uma) => uma.allZones().filter((z) => (z.flags & UMA_ZFLAG_INTERNAL) === 0);

/** The run configuration from the script's option lines; unknown options are noted and ignored. */
function configure(script: Script, notes: string[]): { cfg: RunConfig; mtu: number; localIp?: string; remoteIp?: string } {
  const cfg = { ...DEFAULT_CONFIG };
  let mtu = DEFAULT_MTU;
  let localIp: string | undefined;
  let remoteIp: string | undefined;
  const int = (o: { name: string; value: string | null; line: number }) => {
    const v = Number(o.value);
    if (o.value === null || !Number.isInteger(v) || v < 0) throw new RunError(`${script.path}:${o.line}: bad value for --${o.name}: ${o.value}`, o.line);
    return v;
  };
  for (const o of script.options) {
    switch (o.name) {
      case 'ip_version':
        if (o.value !== 'ipv4') throw new RunError(`${script.path}:${o.line}: --ip_version=${o.value} is not supported (ipv4 only)`, o.line);
        break;
      case 'tolerance_usecs':
        cfg.toleranceUsecs = int(o);
        break;
      case 'tolerance_percent':
        cfg.tolerancePercent = int(o);
        break;
      case 'tcp_ts_tick_usecs':
        cfg.tsTickUsecs = int(o);
        break;
      case 'mtu':
        mtu = int(o);
        break;
      case 'bind_port':
        cfg.bindPort = int(o);
        break;
      case 'connect_port':
        cfg.connectPort = int(o);
        break;
      case 'local_ip':
        localIp = o.value ?? undefined;
        break;
      case 'remote_ip':
        remoteIp = o.value ?? undefined;
        break;
      case 'non_fatal':
        for (const k of (o.value ?? '').split(',')) {
          if (k === 'packet') cfg.nonFatalPacket = true;
          else if (k === 'syscall') cfg.nonFatalSyscall = true;
          else notes.push(`--non_fatal=${k} ignored`);
        }
        break;
      default:
        notes.push(`option --${o.name}${o.value !== null ? `=${o.value}` : ''} ignored`);
    }
  }
  return { cfg, mtu, localIp, remoteIp };
}

/** Run one script's text. Never throws for a bad script or a failing stack: the result says what happened. */
export function runScriptText(text: string, path: string, env: PdEnv, opts: RunOptions = {}): RunResult {
  const t0 = Date.now();
  const notes: string[] = [];
  const result = (error: string | null, line: number, warnings: string[], virtualSecs: number): RunResult => ({
    path,
    pass: error === null,
    error,
    line,
    warnings,
    notes,
    virtualSecs,
    wallMs: Date.now() - t0,
  });
  let script: Script;
  try {
    script = parseScript(text, path, opts.defines);
  } catch (e) {
    if (e instanceof ScriptError) return result(`${path}:${e.line}: ${e.message}`, e.line, [], 0);
    throw e;
  }
  const before = usedByZone(userZones(env.uma));
  let net: PdNet | null = null;
  let tut: ReturnType<TcpFactory> = null;
  let exec: Executor | null = null;
  let error: string | null = null;
  let line = 0;
  try {
    const c = configure(script, notes);
    net = new PdNet(env.mb, { mtu: c.mtu, localIp: c.localIp, remoteIp: c.remoteIp });
    tut = (opts.tcp ?? stackTcp)(net);
    const sysctl = new Sysctl();
    registerStackSysctls(sysctl, env.uma.arena, env.mb);
    for (const n of net.stack.sysctlNodes()) if (!sysctl.has(n.name)) sysctl.registerNode(sysctlSpec(n));
    for (const n of tut?.sysctlNodes ?? []) if (!sysctl.has(n.name)) sysctl.registerNode(n);
    const st = new RunState(net, tut?.tcp ?? null, sysctl, c.cfg);
    exec = new Executor(script, st, opts.trace ?? null);
    exec.run();
  } catch (e) {
    if (e instanceof RunError) {
      error = e.message;
      line = e.line;
    } else {
      const err = e as Error;
      error = `${path}: internal error: ${err.stack?.split('\n').slice(0, 4).join('\n') ?? String(e)}`;
    }
  }
  const virtualSecs = net === null ? 0 : net.now() / 1000;
  try {
    tut?.close();
    net?.close();
  } catch (e) {
    if (error === null) error = `${path}: internal error while tearing down: ${(e as Error).message}`;
  }
  env.mb.drainPacketCache();
  const after = usedByZone(userZones(env.uma));
  const leaks = [...after].filter(([z, n]) => n !== (before.get(z) ?? 0)).map(([z, n]) => `${z} ${n - (before.get(z) ?? 0)}`);
  if (leaks.length > 0 && error === null) error = `${path}: leak: zones not back to where they started after teardown: ${leaks.join(', ')}`;
  return result(error, line, exec?.warnings ?? [], virtualSecs);
}

/** Run one script file. */
export function runFile(path: string, env: PdEnv, opts: RunOptions = {}): RunResult {
  return runScriptText(readFileSync(path, 'utf8'), path, env, opts);
}

/** The .pkt files named: files as given, directories searched recursively, in sorted order. */
export function collectScripts(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) {
      for (const n of readdirSync(p).sort()) walk(join(p, n));
    } else if (p.endsWith('.pkt')) out.push(p);
  };
  for (const p of paths) {
    if (statSync(p).isDirectory()) walk(p);
    else out.push(p);
  }
  return out;
}
