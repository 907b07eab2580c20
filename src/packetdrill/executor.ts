/**
 * The executor: runs a parsed script against the stack on virtual time, with
 * packetdrill's event semantics (run.c, run_packet.c, run_system_call.c):
 *
 * - Times: absolute from the start, `+` relative to when the previous event
 *   finished, `*` any time, ranges a~b. The manual clock is advanced to an
 *   event's time (timers fire in order on the way); nothing sleeps.
 * - Inbound packets are mapped into live space and injected at their time.
 * - Outbound packets: the next datagram the stack sent for the socket under
 *   test is taken (waiting on the clock up to the expected time plus the
 *   tolerance), mapped into script space and matched field by field, then its
 *   time is checked.
 * - System calls without `...` run at their time; a call on a blocking fd
 *   that would block is retried as the clock advances. With `...END` the call
 *   runs in the background while later events proceed, and its return time is
 *   checked against END.
 * - Commands and code blocks run at their time.
 *
 * The first error ends the run (as packetdrill dies); --non_fatal=packet or
 * syscall turns those mismatches into warnings. Runs on the caller's thread.
 */
import type { PacketSpec, PdEvent, Script, SyscallSpec } from './ast.js';
import type { PdConn } from './conn.js';
import { buildInbound, mapOutbound, scriptWire, verifyOutbound } from './matcher.js';
import { decodePacket, endpointsToString, packetToString, type WirePacket } from './packet.js';
import { runCommand } from './shell.js';
import { evalInt, newPending, SyscallLayer, type Pending } from './syscalls.js';
import { strerror, symbolValue } from './symbols.js';
import { runCode } from './tcpinfo.js';
import type { RunState } from './state.js';

/** How far past the last timer a `*` outbound packet is waited for, virtual seconds. */
const ANY_TIME_LIMIT_USECS = 3600e6;
/**
 * How long past its deadline an outbound packet is still waited for, virtual
 * seconds: packetdrill blocks until one comes and then reports how late it
 * was; a bound keeps a packet that never comes from stalling the run.
 */
const LATE_GRACE_USECS = 60e6;
/** How long a call on a blocking fd without `...` may block before the run gives up, virtual seconds. */
const BLOCKING_LIMIT_USECS = 3600e6;

/** A run stopped: the message is complete (file:line: ...). */
export class RunError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'RunError';
  }
}

const secs = (usecs: number) => (usecs / 1e6).toFixed(6);

interface BlockingCall {
  ev: PdEvent;
  sc: SyscallSpec;
  pending: Pending;
  endUsecs: number;
  relative: boolean;
}

export class Executor {
  readonly warnings: string[] = [];
  private readonly sys: SyscallLayer;
  private blocking: BlockingCall | null = null;
  /** Script time (usecs) of the previous event, for --tolerance_percent. */
  private lastScriptUsecs = 0;
  private lastAbsUsecs = -1;

  constructor(
    private readonly script: Script,
    private readonly st: RunState,
    /** packetdrill --verbose: every injected and sniffed packet, live values, as they happen. */
    private readonly trace: ((line: string) => void) | null = null,
  ) {
    this.sys = new SyscallLayer(st);
  }

  private where(line: number): string {
    return `${this.script.path}:${line}`;
  }

  private tolerance(expectedUsecs: number): number {
    const c = this.st.cfg;
    return Math.max(c.toleranceUsecs, (c.tolerancePercent / 100) * (expectedUsecs - this.lastScriptUsecs));
  }

  /** Run every event; throws RunError on the first fatal error. */
  run(): void {
    const evs = this.script.events;
    if (evs[0].time.type !== 'absolute' || evs[0].time.usecs !== 0) throw new RunError(`${this.where(evs[0].line)}: first event should be at time 0`, evs[0].line);
    for (const ev of evs) {
      if (ev.time.type === 'absolute' || ev.time.type === 'absolute_range') {
        if (ev.time.usecs < this.lastAbsUsecs)
          throw new RunError(`${this.where(ev.line)}: time goes backward in script from ${this.lastAbsUsecs} usec to ${ev.time.usecs} usec`, ev.line);
        this.lastAbsUsecs = ev.time.usecs;
      }
      this.event(ev);
      this.lastScriptUsecs = this.st.nowUsecs();
    }
    if (this.blocking !== null) {
      const b = this.blocking;
      throw new RunError(`${this.where(b.ev.line)}: runtime error: exiting while a blocking system call is in progress`, b.ev.line);
    }
  }

  /** Event start and end times in usecs since the start (adjust_relative_event_times). */
  private eventTimes(ev: PdEvent): { start: number; end: number } {
    const now = this.st.nowUsecs();
    const t = ev.time;
    switch (t.type) {
      case 'absolute':
        return { start: t.usecs, end: -1 };
      case 'absolute_range':
        return { start: t.usecs, end: t.endUsecs };
      case 'relative':
        return { start: now + t.usecs, end: -1 };
      case 'relative_range':
        return { start: now + t.usecs, end: now + t.endUsecs };
      case 'any':
        return { start: now, end: -1 };
    }
  }

  private event(ev: PdEvent): void {
    const { start, end } = this.eventTimes(ev);
    const a = ev.action;
    switch (a.kind) {
      case 'packet':
        if (a.packet.direction === 'inbound') {
          this.waitUntil(start);
          this.checkTime(ev, start, 'inbound packet');
          this.inbound(ev);
        } else this.outbound(ev, start, end);
        return;
      case 'syscall':
        this.syscall(ev, a.syscall, start);
        return;
      case 'command':
        this.waitUntil(start);
        this.checkTime(ev, start, 'command');
        this.command(ev, a.command);
        return;
      case 'code':
        this.waitUntil(start);
        this.checkTime(ev, start, 'data collection for code');
        this.code(ev, a.code);
        return;
    }
  }

  // ------------------------------------------------------------ time

  /** Advance the clock to t (usecs), stopping at each timer so a blocking call sees its progress. */
  private waitUntil(t: number): void {
    for (;;) {
      this.pollBlocking();
      const now = this.st.nowUsecs();
      if (now >= t) return;
      this.step(t - now);
    }
  }

  /** Advance by at most maxUsecs: to the next timer, or all of it when none is armed sooner. */
  private step(maxUsecs: number): void {
    const net = this.st.net;
    const next = net.msUntilNextTimer();
    const tick = net.td.callouts.tickMs;
    const max = maxUsecs / 1000;
    net.advance(next < 0 ? max : Math.min(max, Math.max(next, tick)));
  }

  /** check_event_time: an event that could only start late (after a blocking call) is a timing error. */
  private checkTime(ev: PdEvent, expected: number, what: string): void {
    if (ev.time.type === 'any') return;
    const now = this.st.nowUsecs();
    const tol = this.tolerance(expected);
    if (now < expected - tol || now > expected + tol)
      throw new RunError(`${this.where(ev.line)}: timing error: expected ${what} at ${secs(expected)} sec but happened at ${secs(now)} sec`, ev.line);
  }

  // ------------------------------------------------------------ packets

  private packetError(ev: PdEvent, msg: string): never {
    throw new RunError(`${this.where(ev.line)}: error handling packet: ${msg}`, ev.line);
  }

  private inbound(ev: PdEvent): void {
    const st = this.st;
    const spec = (ev.action as { packet: PacketSpec }).packet;
    let conn = st.socketUnderTest;
    if (conn !== null && conn.state === 'listening' && spec.tcp !== null) conn = st.newChild(spec.tcp.seq);
    if (conn === null) this.packetError(ev, 'no matching socket for script packet');
    if (spec.tcp !== null) {
      const syn = spec.tcp.flags.includes('S');
      const ack = spec.tcp.flags.includes('.');
      if (conn.state === 'passive_synack_sent' && ack) conn.state = 'passive_synack_acked';
      else if (conn.state === 'active_syn_sent' && syn && ack) {
        conn.state = 'active_syn_acked';
        conn.remoteIsn = spec.tcp.seq;
      }
    }
    // A socket with no tuple yet (bound, not listening): packetdrill maps the
    // packet with its (zero) offsets and makes a child for the wildcard source.
    const tuple = conn.remote.addr === 0 ? st.newChild(spec.tcp !== null ? spec.tcp.seq : 0) : conn;
    const bytes = buildInbound(conn, spec, tuple);
    if (typeof bytes === 'string') this.packetError(ev, bytes);
    this.inject(ev, bytes);
  }

  private inject(ev: PdEvent, bytes: Uint8Array): void {
    if (this.trace !== null) {
      const p = decodePacket(bytes);
      this.trace(`inbound injected packet: ${secs(this.st.nowUsecs()).padStart(9)} ${typeof p === 'string' ? p : `${endpointsToString(p)} ${packetToString(p)}`}`);
    }
    if (!this.st.net.inject(bytes)) this.packetError(ev, 'could not inject the packet (no mbufs)');
    this.pollBlocking();
  }

  private outbound(ev: PdEvent, start: number, end: number): void {
    const st = this.st;
    const spec = (ev.action as { packet: PacketSpec }).packet;
    if (spec.icmp !== null) this.packetError(ev, 'outbound ICMP packets are not supported');
    const t = spec.tcp!;
    const syn = t.flags.includes('S');
    const ack = t.flags.includes('.');
    let conn = st.socketUnderTest;
    if (conn !== null && conn.state === 'active_connecting' && syn && !ack) {
      conn.scriptLocalIsn = t.seq;
      conn.state = 'active_syn_sent';
    }
    if (conn === null) this.packetError(ev, 'no matching socket for script packet');
    if (conn.state === 'passive_packet_received' && syn && ack && !t.ignoreSeq) conn.scriptLocalIsn = t.seq;

    const tol = this.tolerance(start);
    const deadline = ev.time.type === 'any' ? -1 : (end >= 0 ? end : start) + tol;
    const got = this.sniff(conn, deadline);
    if (got === null) {
      const now = this.st.nowUsecs();
      const expect = ev.time.type === 'any' ? 'at any time' : end >= 0 ? `in time range ${secs(start)}~${secs(end)} sec` : `at ${secs(start)} sec`;
      const script = scriptWire(spec);
      this.packetError(ev, `timing error: expected outbound packet ${expect} but none was sent (waited until ${secs(now)} sec)\nscript packet: ${secs(start).padStart(9)} ${packetToString(script, { showWin: t.win >= 0 })}`);
    }
    const { live, bytes, usecs } = got;
    if (conn.state === 'passive_packet_received' && syn && ack) {
      conn.state = 'passive_synack_sent';
      conn.liveLocalIsn = live.tcp!.seq;
    }
    const script = scriptWire(spec);
    const actual = mapOutbound(conn, live, t);
    const dumps = `\nscript packet: ${secs(start).padStart(9)} ${packetToString(script, { showWin: t.win >= 0 })}\nactual packet: ${secs(usecs).padStart(9)} ${packetToString(actual)}`;
    let msg = verifyOutbound(spec, script, actual, bytes, { tsTickUsecs: st.cfg.tsTickUsecs, toleranceUsecs: tol });
    if (msg === null) msg = this.outboundTiming(ev, start, end, usecs, tol);
    if (msg !== null) {
      const full = `${this.where(ev.line)}: ${st.cfg.nonFatalPacket ? 'warning' : 'error'} handling packet: ${msg}${dumps}`;
      if (st.cfg.nonFatalPacket) this.warnings.push(full);
      else throw new RunError(full, ev.line);
    }
  }

  /** verify_time for an outbound packet sent at usecs: null when in time, else packetdrill's message. */
  private outboundTiming(ev: PdEvent, start: number, end: number, usecs: number, tol: number): string | null {
    if (ev.time.type === 'any') return null;
    if (usecs >= start - tol && usecs <= (end >= 0 ? end : start) + tol) return null;
    if (ev.time.type === 'relative_range') {
      // Relative ranges are reported relative to the event's base time.
      const base = start - ev.time.usecs;
      const at = usecs - base;
      return `timing error: expected outbound packet in relative time range +${secs(ev.time.usecs)}~+${secs(ev.time.endUsecs)} sec but happened at ${at >= 0 ? '+' : ''}${secs(at)} sec`;
    }
    if (end >= 0) return `timing error: expected outbound packet in time range ${secs(start)}~${secs(end)} sec but happened at ${secs(usecs)} sec`;
    return `timing error: expected outbound packet at ${secs(start)} sec but happened at ${secs(usecs)} sec`;
  }

  /**
   * sniff_outbound_live_packet: the next datagram the stack sent for conn,
   * waiting on the clock until deadline (usecs; -1: any time, as long as a
   * timer could still send something). Datagrams for other flows are
   * dropped, as packetdrill drops them.
   */
  private sniff(conn: PdConn, deadline: number): { live: WirePacket; bytes: Uint8Array; usecs: number } | null {
    const net = this.st.net;
    const limit = deadline >= 0 ? deadline + LATE_GRACE_USECS : this.st.nowUsecs() + ANY_TIME_LIMIT_USECS;
    for (;;) {
      for (let c = net.take(); c !== null; c = net.take()) {
        const live = decodePacket(c.bytes);
        if (typeof live === 'string' || live.tcp === null) continue;
        const usecs = Math.round(c.timeMs * 1000);
        this.trace?.(`outbound sniffed packet: ${secs(usecs).padStart(9)} ${endpointsToString(live)} ${packetToString(live)}`);
        if (this.belongsTo(conn, live)) return { live, bytes: c.bytes, usecs };
      }
      this.pollBlocking();
      if (net.pending > 0) continue;
      const now = this.st.nowUsecs();
      if (now >= limit) return null;
      if (net.msUntilNextTimer() < 0 && this.blocking === null) {
        // Nothing armed can send anything: wait out the deadline, no further.
        if (now >= deadline) return null;
        this.step(deadline - now);
        continue;
      }
      this.step(limit - now);
    }
  }

  /** find_socket_for_live_packet / find_connect_for_live_packet. */
  private belongsTo(conn: PdConn, p: WirePacket): boolean {
    const t = p.tcp!;
    if (p.ip.src === conn.local.addr && t.srcPort === conn.local.port && p.ip.dst === conn.remote.addr && t.dstPort === conn.remote.port) return true;
    if (conn.state === 'active_syn_sent' && t.syn && !t.ackf && p.ip.dst === conn.remote.addr && t.dstPort === conn.remote.port) {
      conn.local = { addr: p.ip.src, port: t.srcPort };
      conn.liveLocalIsn = t.seq;
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------ system calls

  private syscallError(ev: PdEvent, sc: SyscallSpec, msg: string): void {
    const full = `${this.where(ev.line)}: runtime error in ${sc.name} call: ${msg}`;
    if (this.st.cfg.nonFatalSyscall) this.warnings.push(full);
    else throw new RunError(full, ev.line);
  }

  private syscall(ev: PdEvent, sc: SyscallSpec, start: number): void {
    if (sc.endUsecs >= 0 && this.blocking !== null)
      throw new RunError(`${this.where(ev.line)}: runtime error in ${sc.name} call: blocking system call while another blocking system call is already in progress`, ev.line);
    this.waitUntil(start);
    this.checkTime(ev, start, 'system call start');
    const pending = newPending();
    const first = this.settled(this.sys.attempt(sc, pending));
    if (sc.endUsecs >= 0) {
      const relative = ev.time.type === 'relative';
      const endUsecs = relative ? start - ev.time.usecs + sc.endUsecs : sc.endUsecs;
      this.blocking = { ev, sc, pending, endUsecs, relative };
      if (first.kind !== 'wouldblock') this.finishBlocking(first);
      return;
    }
    let r = first;
    const limit = this.st.nowUsecs() + BLOCKING_LIMIT_USECS;
    while (r.kind === 'wouldblock') {
      const now = this.st.nowUsecs();
      if (now >= limit || (this.st.net.msUntilNextTimer() < 0 && this.st.net.pending === 0)) {
        this.syscallError(ev, sc, `the call blocked and nothing in the stack can unblock it (give it a ...END time if it is meant to block)`);
        return;
      }
      // Stop at a poll() timeout too, so the call returns when it runs out.
      this.step((pending.pollDeadline > now ? Math.min(limit, pending.pollDeadline) : limit) - now);
      r = this.settled(this.sys.attempt(sc, pending));
    }
    this.endSyscall(ev, sc, r);
  }

  /** Run what the call queued at the current time (as a kernel finishes a system call's work before it returns). */
  private settled<T>(r: T): T {
    this.st.net.settle();
    return r;
  }

  /** Retry the background blocking call, if any (after every clock step and injected packet). */
  private pollBlocking(): void {
    const b = this.blocking;
    if (b === null) return;
    const r = this.sys.attempt(b.sc, b.pending);
    if (r.kind !== 'wouldblock') this.finishBlocking(r);
  }

  private finishBlocking(r: Exclude<ReturnType<SyscallLayer['attempt']>, { kind: 'wouldblock' }>): void {
    const b = this.blocking!;
    this.blocking = null;
    this.endSyscall(b.ev, b.sc, r);
    const now = this.st.nowUsecs();
    const tol = this.tolerance(b.endUsecs);
    if (now < b.endUsecs - tol || now > b.endUsecs + tol)
      throw new RunError(`${this.where(b.ev.line)}: timing error: expected system call return at ${secs(b.endUsecs)} sec but happened at ${secs(now)} sec`, b.ev.line);
  }

  /** end_syscall: compare the result and errno with the script's, then the call's own checks (optval). */
  private endSyscall(ev: PdEvent, sc: SyscallSpec, r: Exclude<ReturnType<SyscallLayer['attempt']>, { kind: 'wouldblock' }>): void {
    if (r.kind === 'error') {
      this.syscallError(ev, sc, r.message);
      return;
    }
    const expected = evalInt(sc.result);
    if (typeof expected === 'string') {
      this.syscallError(ev, sc, expected);
      return;
    }
    const fdMode = sc.name === 'socket' || sc.name === 'accept';
    const withErrno = r.ret < 0 ? ` with errno ${r.errno} (${strerror(r.errno)})` : '';
    if (fdMode && expected >= 0) {
      if (r.ret < 0) return this.syscallError(ev, sc, `Expected non-negative result but got ${r.ret}${withErrno}`);
    } else if (r.ret !== expected) return this.syscallError(ev, sc, `Expected result ${expected} but got ${r.ret}${withErrno}`);
    if (sc.errno !== null) {
      const want = symbolValue(sc.errno.name);
      if (want === undefined) return this.syscallError(ev, sc, `unknown errno symbol '${sc.errno.name}'`);
      if (r.errno !== want) return this.syscallError(ev, sc, `Expected errno ${want} (${strerror(want)}) but got ${r.errno} (${r.errno === 0 ? 'No error: 0' : strerror(r.errno)})`);
    }
    const extra = r.check?.() ?? null;
    if (extra !== null) this.syscallError(ev, sc, extra);
  }

  // ------------------------------------------------------------ commands and code

  private command(ev: PdEvent, cmd: string): void {
    const r = this.settled(runCommand(this.st, cmd));
    if (r.status !== 0) {
      const stderr = r.stderr.trim();
      throw new RunError(`${this.where(ev.line)}: error executing \`${cmd}\` command: '${cmd}' returned non-zero status ${r.status}${stderr ? `\n${stderr}` : ''}`, ev.line);
    }
  }

  private code(ev: PdEvent, code: string): void {
    const sut = this.st.socketUnderTest;
    const fail = (msg: string) => {
      throw new RunError(`${this.where(ev.line)}: runtime error in code: ${msg}`, ev.line);
    };
    if (sut === null) fail('no socket to use for code');
    const fd = [...this.st.fds.values()].find((f) => f.conn === sut);
    if (fd === undefined) fail("can't get info for socket");
    const info = fd!.so.tcpInfo();
    if (typeof info === 'number') fail(`can't get info for socket (${strerror(info)})`);
    const e = runCode(code, info as Record<string, number>);
    if (e !== null) fail(e);
  }
}
