/**
 * The system call layer: each script system call mapped onto the TCP under
 * test with BSD errnos, as run_system_call.c does for a live kernel. Script
 * fds are labels (socket() = 3 names the new socket 3); the fd table maps
 * them to sockets and their O_NONBLOCK flag.
 *
 * attempt() makes one try. A call on a blocking fd that would block answers
 * 'wouldblock' and the executor retries it as the manual clock advances
 * (packetdrill's blocking semantics), keeping the call's partial progress
 * (bytes already sent) in the Pending object. Never throws for a bad script:
 * errors come back as strings in packetdrill's wording.
 */
import type { Expr, SyscallSpec } from './ast.js';
import { EBADF, EINPROGRESS, EINVAL, EPROTONOSUPPORT, EWOULDBLOCK } from '../kern/errno.js';
import { ipFromString } from '../wire/ipv4.js';
import type { RunState } from './state.js';
import type { Endpoint } from './tcpapi.js';
import * as S from './symbols.js';

/** One try's outcome: the call returned (ret, errno), it would block, or the script is wrong. */
export type Attempt =
  | { kind: 'done'; ret: number; errno: number; check?: () => string | null }
  | { kind: 'wouldblock' }
  | { kind: 'error'; message: string };

/** Progress a blocking call keeps between tries. */
export interface Pending {
  sent: number;
  connectStarted: boolean;
  /** poll(): when its timeout runs out, usecs since the start (-1: none yet). */
  pollDeadline: number;
}

export function newPending(): Pending {
  return { sent: 0, connectStarted: false, pollDeadline: -1 };
}

/** The total length of an iovec list ([{..., N}, {iov_base=..., iov_len=N}]). */
function iovLength(e: Expr): number | string {
  if (e.t !== 'list') return 'Bad type for iovec list';
  let n = 0;
  for (const it of e.items) {
    if (it.t !== 'struct') return 'Bad type for iovec';
    const len = it.fields.get('iov_len') ?? it.fields.get('1');
    if (len === undefined) return 'iovec without iov_len';
    const v = evalInt(len);
    if (typeof v === 'string') return v;
    n += v;
  }
  return n;
}

/** {onoff=N, linger=M} (either may be `...`: not checked). */
function lingerArg(e: Expr & { t: 'struct' }): { onoff: number | null; linger: number | null } | string {
  const get = (k: string): number | null | string => {
    const v = e.fields.get(k);
    if (v === undefined) return `linger without ${k}`;
    return v.t === 'ellipsis' ? null : evalInt(v);
  };
  const onoff = get('onoff');
  const linger = get('linger');
  if (typeof onoff === 'string') return onoff;
  if (typeof linger === 'string') return linger;
  return { onoff, linger };
}

/** poll flags as "POLLIN|POLLOUT" (flags_to_string). */
function pollFlags(v: number): string {
  const names = S.POLL_FLAGS.filter(([, b]) => (v & b) !== 0).map(([n]) => n);
  const rest = v & ~S.POLL_FLAGS.reduce((a, [, b]) => a | b, 0);
  if (rest !== 0) names.push(`0x${rest.toString(16)}`);
  return names.length === 0 ? '0' : names.join('|');
}

/** Evaluate an integer expression (numbers, symbols, `|`, htons/htonl, one-element lists). */
export function evalInt(e: Expr): number | string {
  switch (e.t) {
    case 'int':
      return e.v;
    case 'word': {
      const v = S.symbolValue(e.v);
      return v === undefined ? `unknown symbol '${e.v}'` : v;
    }
    case 'or': {
      const a = evalInt(e.lhs);
      const b = evalInt(e.rhs);
      if (typeof a === 'string') return a;
      if (typeof b === 'string') return b;
      return (a | b) >>> 0;
    }
    case 'list':
      if (e.items.length !== 1) return 'Expected [<integer>] but got multiple elements';
      return evalInt(e.items[0]);
    case 'call':
      if (e.fn === 'htons' || e.fn === 'htonl') return evalInt(e.arg);
      if (e.fn === 'inet_addr' && e.arg.t === 'string') return ipFromString(e.arg.v) >>> 0;
      return `bad ${e.fn}() argument`;
    case 'null':
      return 0;
    default:
      return `Bad type; actual: ${e.t} expected: integer`;
  }
}

const ok = (ret: number): Attempt => ({ kind: 'done', ret, errno: 0 });
const fail = (errno: number): Attempt => ({ kind: 'done', ret: -1, errno });
const err = (message: string): Attempt => ({ kind: 'error', message });

/** A sockaddr argument: `...` means the default endpoint; {sa_family=AF_INET, sin_port=htons(P), sin_addr=inet_addr("A")} an explicit one. */
function sockaddrArg(e: Expr, dflt: Endpoint): Endpoint | string {
  if (e.t === 'ellipsis') return dflt;
  if (e.t === 'struct') {
    const port = e.fields.get('sin_port');
    const addr = e.fields.get('sin_addr');
    const p = port === undefined ? 0 : evalInt(port);
    const a = addr === undefined ? 0 : evalInt(addr);
    if (typeof p === 'string') return p;
    if (typeof a === 'string') return a;
    return { addr: a, port: p };
  }
  return 'Bad type for sockaddr';
}

export class SyscallLayer {
  constructor(private readonly st: RunState) {}

  /** One try of a system call. */
  attempt(sc: SyscallSpec, p: Pending): Attempt {
    const a = sc.args;
    const nargs = (n: number | number[]): string | null => {
      const want = Array.isArray(n) ? n : [n];
      return want.includes(a.length) ? null : `Expected ${want.join(' or ')} args but got ${a.length}`;
    };
    const n = (i: number): number | string => evalInt(a[i]);
    const argErr = (...vals: (number | string)[]) => vals.find((v): v is string => typeof v === 'string');
    switch (sc.name) {
      case 'socket': {
        const e = nargs(3);
        if (e) return err(e);
        const type = n(1);
        const proto = n(2);
        const bad = argErr(type, proto);
        if (bad) return err(bad);
        return this.socket(sc, type as number, proto as number);
      }
      case 'bind':
      case 'connect': {
        const e = nargs(3);
        if (e) return err(e);
        const fd = n(0);
        if (typeof fd === 'string') return err(fd);
        return sc.name === 'bind' ? this.bind(fd, a[1]) : this.connect(fd, a[1], p);
      }
      case 'listen': {
        const e = nargs(2);
        if (e) return err(e);
        const fd = n(0);
        const bl = n(1);
        const bad = argErr(fd, bl);
        if (bad) return err(bad);
        return this.listen(fd as number, bl as number);
      }
      case 'accept': {
        const e = nargs(3);
        if (e) return err(e);
        const fd = n(0);
        if (typeof fd === 'string') return err(fd);
        return this.accept(sc, fd);
      }
      case 'read':
      case 'recv':
      case 'write':
      case 'send': {
        const four = sc.name === 'recv' || sc.name === 'send';
        const e = nargs(four ? 4 : 3);
        if (e) return err(e);
        const fd = n(0);
        const len = n(2);
        const flags = four ? n(3) : 0;
        const bad = argErr(fd, len, flags);
        if (bad) return err(bad);
        const isRead = sc.name === 'read' || sc.name === 'recv';
        return isRead ? this.recv(fd as number, len as number, flags as number) : this.send(fd as number, len as number, flags as number, p);
      }
      case 'sendto':
      case 'recvfrom': {
        const e = nargs(6);
        if (e) return err(e);
        const fd = n(0);
        const len = n(2);
        const flags = n(3);
        const bad = argErr(fd, len, flags);
        if (bad) return err(bad);
        return sc.name === 'recvfrom' ? this.recv(fd as number, len as number, flags as number) : this.send(fd as number, len as number, flags as number, p);
      }
      case 'writev':
      case 'readv': {
        const e = nargs(3);
        if (e) return err(e);
        const fd = n(0);
        const len = iovLength(a[1]);
        const bad = argErr(fd, len);
        if (bad) return err(bad);
        return sc.name === 'readv' ? this.recv(fd as number, len as number, 0) : this.send(fd as number, len as number, 0, p);
      }
      case 'poll': {
        const e = nargs(3);
        if (e) return err(e);
        return this.poll(a[0], a[1], a[2], p);
      }
      case 'close': {
        const e = nargs(1);
        if (e) return err(e);
        const fd = n(0);
        if (typeof fd === 'string') return err(fd);
        return this.close(fd);
      }
      case 'shutdown': {
        const e = nargs(2);
        if (e) return err(e);
        const fd = n(0);
        const how = n(1);
        const bad = argErr(fd, how);
        if (bad) return err(bad);
        return this.withFd(fd as number, (f) => {
          const r = f.so.shutdown(how as number);
          return r === 0 ? ok(0) : fail(r);
        });
      }
      case 'fcntl':
        return this.fcntl(a);
      case 'getsockopt':
      case 'setsockopt':
        return this.sockopt(sc.name, a);
      default:
        return err(`unsupported system call '${sc.name}'`);
    }
  }

  private withFd(fd: number, fn: (f: NonNullable<ReturnType<RunState['fds']['get']>>) => Attempt): Attempt {
    const f = this.st.fds.get(fd);
    if (f === undefined) return fail(EBADF);
    return fn(f);
  }

  private socket(sc: SyscallSpec, type: number, proto: number): Attempt {
    const tcp = this.st.tcp;
    if (type !== S.SOCK_STREAM || (proto !== S.IPPROTO_TCP && proto !== 0)) return fail(EPROTONOSUPPORT);
    if (tcp === null) return fail(EPROTONOSUPPORT);
    const so = tcp.socket();
    if (typeof so === 'number') return fail(so);
    const want = evalInt(sc.result);
    if (typeof want === 'string') return err(want);
    if (want < 0) {
      // The script expects failure; the socket is not kept.
      so.close();
      return ok(this.lowestFreeFd());
    }
    if (this.st.fds.has(want)) return err(`duplicate socket fd ${want} in script`);
    const conn = this.st.newConn();
    conn.scriptFd = want;
    this.st.fds.set(want, { so, nonblock: false, conn });
    this.st.socketUnderTest = conn;
    return ok(want);
  }

  private lowestFreeFd(): number {
    let fd = 3;
    while (this.st.fds.has(fd)) fd++;
    return fd;
  }

  private bind(fd: number, addr: Expr): Attempt {
    return this.withFd(fd, (f) => {
      const ep = sockaddrArg(addr, { addr: this.st.net.localIp, port: this.st.cfg.bindPort });
      if (typeof ep === 'string') return err(ep);
      const r = f.so.bind(ep);
      return r === 0 ? ok(0) : fail(r);
    });
  }

  private listen(fd: number, backlog: number): Attempt {
    return this.withFd(fd, (f) => {
      const r = f.so.listen(backlog);
      if (r !== 0) return fail(r);
      if (f.conn.state !== 'new') return err(`bad listen(); script fd ${fd} in state ${f.conn.state}`);
      f.conn.state = 'listening';
      return ok(0);
    });
  }

  private accept(sc: SyscallSpec, fd: number): Attempt {
    return this.withFd(fd, (f) => {
      const r = f.so.accept();
      if (typeof r === 'number') return r === EWOULDBLOCK && !f.nonblock ? { kind: 'wouldblock' } : fail(r);
      const want = evalInt(sc.result);
      if (typeof want === 'string') return err(want);
      const child = this.st.conns.find(
        (c) => c.scriptFd < 0 && (c.state === 'passive_synack_sent' || c.state === 'passive_packet_received' || c.state === 'passive_synack_acked'),
      );
      if (child === undefined) {
        r.so.close();
        return err('unable to find socket matching accept() call');
      }
      if (want < 0) return ok(this.lowestFreeFd());
      if (this.st.fds.has(want)) return err(`duplicate socket fd ${want} in script`);
      child.scriptFd = want;
      this.st.fds.set(want, { so: r.so, nonblock: false, conn: child });
      return ok(want);
    });
  }

  private connect(fd: number, addr: Expr, p: Pending): Attempt {
    return this.withFd(fd, (f) => {
      const sut = this.st.socketUnderTest;
      const dflt =
        sut !== null && sut.state === 'passive_packet_received' ? sut.remote : { addr: this.st.net.remoteIp, port: this.st.cfg.connectPort };
      const ep = sockaddrArg(addr, dflt);
      if (typeof ep === 'string') return err(ep);
      if (!p.connectStarted) {
        if (f.conn.state === 'new') {
          f.conn.state = 'active_connecting';
          f.conn.remote = { addr: this.st.net.remoteIp, port: this.st.cfg.connectPort };
        }
        p.connectStarted = true;
        const r = f.so.connect(ep);
        if (r === EINPROGRESS && !f.nonblock) return { kind: 'wouldblock' };
        return r === 0 ? ok(0) : fail(r);
      }
      const s = f.so.connectStatus();
      if (s === EINPROGRESS) return { kind: 'wouldblock' };
      return s === 0 ? ok(0) : fail(s);
    });
  }

  private recv(fd: number, len: number, flags: number): Attempt {
    return this.withFd(fd, (f) => {
      const r = f.so.recv(len, flags);
      if (typeof r === 'number') {
        if (r === -EWOULDBLOCK && !f.nonblock && (flags & S.MSG_DONTWAIT) === 0) return { kind: 'wouldblock' };
        return fail(-r);
      }
      return ok(r.length);
    });
  }

  private send(fd: number, len: number, flags: number, p: Pending): Attempt {
    return this.withFd(fd, (f) => {
      const blocking = !f.nonblock && (flags & S.MSG_DONTWAIT) === 0;
      const r = f.so.send(new Uint8Array(len - p.sent), flags);
      if (r < 0) {
        if (r === -EWOULDBLOCK && blocking) return { kind: 'wouldblock' };
        // A blocking send interrupted after progress reports the bytes it sent.
        return p.sent > 0 ? ok(p.sent) : fail(-r);
      }
      p.sent += r;
      if (p.sent < len && blocking) return { kind: 'wouldblock' };
      return ok(p.sent);
    });
  }

  /**
   * poll(fds, nfds, timeout): ready descriptors now, else wait (as a blocking
   * call) until one is or the timeout (ms; -1: none) runs out on the clock.
   * Each pollfd's revents is checked against the script's.
   */
  private poll(fdsE: Expr, nfdsE: Expr, timeoutE: Expr, p: Pending): Attempt {
    if (fdsE.t !== 'list') return err('Bad type for pollfd list');
    const nfds = evalInt(nfdsE);
    const timeout = evalInt(timeoutE);
    if (typeof nfds === 'string') return err(nfds);
    if (typeof timeout === 'string') return err(timeout);
    if (nfds !== fdsE.items.length) return err(`poll nfds ${nfds} does not match the ${fdsE.items.length} pollfds given`);
    const entries: { fd: number; events: number; want: number }[] = [];
    for (const it of fdsE.items) {
      if (it.t !== 'struct') return err('Bad type for pollfd');
      const fd = evalInt(it.fields.get('fd') ?? { t: 'null' });
      const events = evalInt(it.fields.get('events') ?? { t: 'null' });
      const want = evalInt(it.fields.get('revents') ?? { t: 'int', v: 0, hex: false });
      const bad = [fd, events, want].find((v): v is string => typeof v === 'string');
      if (bad !== undefined) return err(bad);
      entries.push({ fd: fd as number, events: events as number, want: want as number });
    }
    const always = S.POLLERR | S.POLLHUP | S.POLLNVAL;
    const revents = entries.map((x) => {
      const f = this.st.fds.get(x.fd);
      if (f === undefined) return S.POLLNVAL;
      return f.so.poll() & (x.events | always);
    });
    const ready = revents.filter((r) => r !== 0).length;
    if (ready === 0 && timeout !== 0) {
      if (timeout < 0) return { kind: 'wouldblock' };
      if (p.pollDeadline < 0) p.pollDeadline = this.st.nowUsecs() + timeout * 1000;
      if (this.st.nowUsecs() < p.pollDeadline) return { kind: 'wouldblock' };
    }
    return {
      kind: 'done',
      ret: ready,
      errno: 0,
      check: () => {
        for (let i = 0; i < entries.length; i++)
          if (entries[i].want !== revents[i]) return `Expected revents of ${pollFlags(entries[i].want)} but got ${pollFlags(revents[i])} for pollfd ${i}`;
        return null;
      },
    };
  }

  private close(fd: number): Attempt {
    return this.withFd(fd, (f) => {
      this.st.fds.delete(fd);
      const r = f.so.close();
      return r === 0 ? ok(0) : fail(r);
    });
  }

  private fcntl(a: Expr[]): Attempt {
    if (a.length < 2 || a.length > 3) return err(`fcntl expected 2-3 args but got ${a.length}`);
    const fd = evalInt(a[0]);
    const cmd = evalInt(a[1]);
    if (typeof fd === 'string') return err(fd);
    if (typeof cmd === 'string') return err(cmd);
    return this.withFd(fd, (f) => {
      if (cmd === S.F_GETFL) return ok(S.O_RDWR | (f.nonblock ? S.O_NONBLOCK : 0));
      if (cmd === S.F_SETFL) {
        if (a.length !== 3) return fail(EINVAL);
        const v = evalInt(a[2]);
        if (typeof v === 'string') return err(v);
        f.nonblock = (v & S.O_NONBLOCK) !== 0;
        return ok(0);
      }
      return fail(EINVAL);
    });
  }

  private sockopt(name: string, a: Expr[]): Attempt {
    if (a.length !== 5) return err(`Expected 5 args but got ${a.length}`);
    const fd = evalInt(a[0]);
    const level = evalInt(a[1]);
    const opt = evalInt(a[2]);
    const bad = [fd, level, opt].find((v): v is string => typeof v === 'string');
    if (bad !== undefined) return err(bad);
    return this.withFd(fd as number, (f) => {
      const linger = a[3].t === 'struct' ? lingerArg(a[3]) : null;
      if (typeof linger === 'string') return err(linger);
      if (name === 'setsockopt') {
        if (linger !== null) {
          if (linger.onoff === null || linger.linger === null) return err('linger values must be given for setsockopt');
          const r = f.so.setsockopt(level as number, opt as number, linger.onoff, linger.linger);
          return r === 0 ? ok(0) : fail(r);
        }
        const v = evalInt(a[3]);
        if (typeof v === 'string') return err(v);
        const r = f.so.setsockopt(level as number, opt as number, v);
        return r === 0 ? ok(0) : fail(r);
      }
      if (linger !== null) {
        const r = f.so.getsockoptPair(level as number, opt as number);
        if (typeof r === 'number') return fail(-r);
        const wantLen = a[4].t === 'ellipsis' ? null : evalInt(a[4]);
        return {
          kind: 'done',
          ret: 0,
          errno: 0,
          check: () =>
            typeof wantLen === 'string'
              ? wantLen
              : wantLen !== null && wantLen !== 8
                ? `optlen: expected: ${wantLen} actual: 8`
                : linger.onoff !== null && linger.onoff !== r[0]
              ? `linger.l_onoff: expected: ${linger.onoff} actual: ${r[0]}`
              : linger.linger !== null && linger.linger !== r[1]
                ? `linger.l_linger: expected: ${linger.linger} actual: ${r[1]}`
                : null,
        };
      }
      const r = f.so.getsockopt(level as number, opt as number);
      if (r < 0) return fail(-r);
      const wantLen = a[4].t === 'ellipsis' ? null : evalInt(a[4]);
      const wantVal = a[3].t === 'ellipsis' ? null : evalInt(a[3]);
      return {
        kind: 'done',
        ret: 0,
        errno: 0,
        check: () => {
          if (typeof wantLen === 'string') return wantLen;
          if (wantLen !== null && wantLen !== 4) return `optlen: expected: ${wantLen} actual: 4`;
          if (typeof wantVal === 'string') return wantVal;
          if (wantVal !== null && (wantVal | 0) !== (r | 0)) return `optval: expected: ${wantVal | 0} actual: ${r | 0}`;
          return null;
        },
      };
    });
  }
}
