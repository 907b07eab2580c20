/**
 * The executor end to end on the real stack's IP path, with the toy TCP
 * standing in for the stack's TCP: passing scripts, timers on the manual
 * clock, blocking calls, and every kind of failure report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEnv, runScriptText, type RunResult } from '../../packetdrill/run.js';
import type { TcpFactory } from '../../packetdrill/tcpadapter.js';
import { ToyTcp } from './toytcp.js';

const env = createEnv();
const toy: TcpFactory = (net) => ({ tcp: new ToyTcp(net), sysctlNodes: [], close() {} });
/** Options go on the first line with the first event, so the body's line numbers are the script's. */
const run = (body: string, opts = '--tolerance_usecs=50000'): RunResult => runScriptText(`--ip_version=ipv4 ${opts} ${body}`, 't.pkt', env, { tcp: toy });

const PASSIVE = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 32767 <mss 1460,sackOK,eol,eol>
+0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
`;

test('a passive open, data both ways and a close pass; SYN-ACK retransmission runs on virtual time', () => {
  const r = run(
    PASSIVE +
      `+1.0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+2.0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+0.1 < . 1:1(0) ack 1 win 32767
+0 accept(3, ..., ...) = 4
+0 %{ assert tcpi_state == TCPI_ESTABLISHED }%
+0 \`sockstat -4 -P tcp -p 8080 -s | grep -c ESTABLISHED | grep 1\`
+0.1 < P. 1:101(100) ack 1 win 32767
+0 > . 1:1(0) ack 101 win 65535
+0 recv(4, ..., 1000, MSG_PEEK) = 100
+0 read(4, ..., 1000) = 100
+0 write(4, ..., 10) = 10
+0 > P. 1:11(10) ack 101 win 65535
+0 close(4) = 0
+0 > F. 11:11(0) ack 101 win 65535
+0.1 < F. 101:101(0) ack 12 win 32767
+0 > . 12:12(0) ack 102 win 65535
+0 close(3) = 0
`,
  );
  assert.equal(r.error, null);
  assert.ok(r.pass);
  assert.ok(Math.abs(r.virtualSecs - 3.3) < 1e-6, `virtual time ${r.virtualSecs}`);
});

test('a mismatching field is reported with file:line, then the script and the actual packet', () => {
  const r = run(PASSIVE.replace('> S. 0:0(0) ack 1 win 65535', '> S. 0:0(0) ack 1 win 5000'));
  assert.equal(r.pass, false);
  assert.equal(r.line, 6);
  assert.equal(
    r.error,
    't.pkt:6: error handling packet: live packet field tcp_window: expected: 5000 (0x1388) vs actual: 65535 (0xffff)\n' +
      'script packet:  0.000000 S. 0:0(0) ack 1 win 5000 <mss 1460,sackOK,eol,eol>\n' +
      'actual packet:  0.000000 S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>',
  );
});

test('packets late or early beyond the tolerance are timing errors; `*` and ranges accept them', () => {
  const late = run(PASSIVE + '+0.9 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>\n');
  assert.match(late.error!, /^t\.pkt:7: error handling packet: timing error: expected outbound packet at 0\.900000 sec but happened at 1\.000000 sec\nscript packet: +0\.900000 S\. .*\nactual packet: +1\.000000 S\. /);
  const early = run(PASSIVE + '+1.5 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>\n');
  assert.match(early.error!, /expected outbound packet at 1\.500000 sec but happened at 1\.000000 sec/);
  assert.equal(run(PASSIVE + '* > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>\n').error, null);
  assert.equal(run(PASSIVE + '+0.5~+1.5 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>\n').error, null);
  assert.equal(run(PASSIVE + '+0.9 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>\n', '--tolerance_usecs=100000').error, null);
  const never = run(PASSIVE + '+0.1 < . 1:1(0) ack 1 win 32767\n+0.1 > . 1:1(0) ack 1 win 65535\n');
  assert.match(never.error!, /^t\.pkt:8: error handling packet: timing error: expected outbound packet at 0\.200000 sec but none was sent \(waited until 60\.250000 sec\)\nscript packet: +0\.200000 \. 1:1\(0\) ack 1 win 65535$/);
});

test('--non_fatal=packet turns packet mismatches into warnings', () => {
  const r = run(PASSIVE.replace('win 65535', 'win 1'), '--non_fatal=packet');
  assert.equal(r.error, null);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0], /^t\.pkt:6: warning handling packet: live packet field tcp_window/);
});

test('a blocking call with ...END returns while later events run; its return time is checked', () => {
  const ok = run(PASSIVE + '+0 ...0.1 accept(3, ..., ...) = 4\n+0.1 < . 1:1(0) ack 1 win 32767\n+0 close(4) = 0\n+0 > F. 1:1(0) ack 1 win 65535\n');
  assert.equal(ok.error, null);
  const late = run(PASSIVE + '+0 ...0.05 accept(3, ..., ...) = 4\n+0.2 < . 1:1(0) ack 1 win 32767\n+0 close(4) = 0\n');
  assert.match(late.error!, /^t\.pkt:7: timing error: expected system call return at 0\.050000 sec but happened at 0\.200000 sec/);
  const never = run(PASSIVE + '+0 ...0.1 accept(3, ..., ...) = 4\n');
  assert.match(never.error!, /^t\.pkt:7: runtime error: exiting while a blocking system call is in progress/);
});

test('a call on a blocking fd without ... is retried on the clock, and fails when nothing can unblock it', () => {
  const active = `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 connect(3, ..., ...) = 0
`;
  const r = run(active);
  assert.match(r.error!, /^t\.pkt:2: runtime error in connect call: the call blocked and nothing in the stack can unblock it/);
  const nb = run(`0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)
+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0 fcntl(3, F_GETFL) = 0x06
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>
+0.1 < S. 0:0(0) ack 1 win 32767 <mss 1460,nop,wscale 0,sackOK,TS val 700 ecr 100>
+0 > . 1:1(0) ack 1 win 65535
+1 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 1100 ecr 0>
`);
  // The toy acknowledged the SYN-ACK, so no SYN is retransmitted: the last line is never met.
  assert.match(nb.error!, /^t\.pkt:9: error handling packet: timing error: expected outbound packet at 1\.100000 sec but none was sent \(waited until 61\.150000 sec\)/);
});

test('system call results and errnos are checked with packetdrill wording', () => {
  assert.equal(run('0 close(9) = 0\n').error, 't.pkt:1: runtime error in close call: Expected result 0 but got -1 with errno 9 (Bad file descriptor)');
  assert.equal(run('0 close(9) = -1 EBADF (Bad file descriptor)\n').error, null);
  assert.equal(run('0 close(9) = -1 ENOTCONN (Socket is not connected)\n').error, 't.pkt:1: runtime error in close call: Expected errno 57 (Socket is not connected) but got 9 (Bad file descriptor)');
  assert.equal(run('0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [1], [4]) = 0\n').error, 't.pkt:2: runtime error in getsockopt call: optval: expected: 1 actual: 65536');
  assert.equal(run('0 frobnicate(3) = 0\n').error, "t.pkt:1: runtime error in frobnicate call: unsupported system call 'frobnicate'");
  assert.equal(run('0 close(9) = 0\n', '--non_fatal=syscall').error, null);
  const none = runScriptText('0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n', 'n.pkt', env, { tcp: () => null });
  assert.equal(none.error, 'n.pkt:1: runtime error in socket call: Expected non-negative result but got -1 with errno 43 (Protocol not supported)');
});

test('commands and code blocks: failures end the run at their line', () => {
  assert.match(run('0 `sysctl -w net.inet.tcp.nosuch=1`\n').error!, /^t\.pkt:1: error executing `sysctl -w net\.inet\.tcp\.nosuch=1` command: 'sysctl -w net\.inet\.tcp\.nosuch=1' returned non-zero status 1\nsysctl: unknown oid 'net\.inet\.tcp\.nosuch'$/);
  assert.equal(run('0 `sysctl -w net.inet.ip.ttl=64`\n').error, null);
  assert.equal(run(PASSIVE + '+0 %{ assert tcpi_state == TCPI_LISTEN }%\n').error, "t.pkt:7: runtime error in code: can't get info for socket");
  assert.equal(run('0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 %{ assert tcpi_state == TCPI_LISTEN }%\n').error, 't.pkt:2: runtime error in code: AssertionError: tcpi_state == TCPI_LISTEN (tcpi_state = 0)');
  assert.equal(run('0 %{ assert 1 }%\n').error, 't.pkt:1: runtime error in code: no socket to use for code');
});

test('script-level errors: first event time, time going backward, unsupported options', () => {
  assert.equal(run('1 close(9) = -1 EBADF (Bad file descriptor)\n').error, 't.pkt:1: first event should be at time 0');
  assert.equal(run('0 close(9) = -1 EBADF (Bad file descriptor)\n2 close(9) = -1 EBADF (Bad file descriptor)\n1 close(9) = -1 EBADF (Bad file descriptor)\n').error, 't.pkt:3: time goes backward in script from 2000000 usec to 1000000 usec');
  assert.match(runScriptText('--ip_version=ipv6\n0 close(9) = -1 EBADF (Bad file descriptor)\n', 'v6.pkt', env).error!, /ipv6 is not supported/);
  const n = run('0 close(9) = -1 EBADF (Bad file descriptor)\n', '--speed=100');
  assert.deepEqual([n.pass, n.notes], [true, ['option --speed=100 ignored']]);
  assert.match(runScriptText('0 > X 0:0(0)\n', 'p.pkt', env).error!, /^p\.pkt:1: semantic error: Invalid TCP flag: 'X'/);
});

test('inbound packets to a socket without a tuple get a child, and CLOSED-state RSTs match', () => {
  const r = run(`0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0.1 < . 17:20(3) ack 34 win 32767
+0 > R 34:34(0) win 0
+0 close(3) = 0
`);
  assert.equal(r.error, null);
});

test('many runs leave no mbuf behind (the runner checks every zone after each script)', () => {
  for (let i = 0; i < 20; i++) assert.equal(run(PASSIVE + '+0.1 < . 1:1(0) ack 1 win 32767\n+0 accept(3, ..., ...) = 4\n').error, null);
});

test('poll() on virtual time: a timeout runs out on the clock, ready descriptors and revents are checked', () => {
  const est = PASSIVE + '+0.1 < . 1:1(0) ack 1 win 32767\n+0 accept(3, ..., ...) = 4\n';
  const r = run(
    est +
      `+0 poll([{fd=4, events=POLLIN, revents=0}], 1, 250) = 0
+0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1
+0 ...0.2 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, -1) = 1
+0.2 < P. 1:11(10) ack 1 win 32767
+0 > . 1:1(0) ack 11 win 65535
+0 recvfrom(4, ..., 100, 0, ..., ...) = 10
+0 sendto(4, ..., 5, 0, ..., ...) = 5
+0 > P. 1:6(5) ack 11 win 65535
+0 writev(4, [{..., 3}, {iov_base=..., iov_len=4}], 2) = 7
+0 > P. 6:13(7) ack 11 win 65535
+0 close(4) = 0
`,
  );
  assert.equal(r.error, null);
  // The first poll returned after its 250 ms timeout, on the virtual clock.
  assert.ok(Math.abs(r.virtualSecs - 0.55) < 1e-6, `virtual time ${r.virtualSecs}`);
  const bad = run(est + '+0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLIN}], 1, 0) = 1\n');
  assert.equal(bad.error, 't.pkt:9: runtime error in poll call: Expected revents of POLLIN but got POLLOUT for pollfd 0');
});

test('range timing errors are reported as ranges (relative ones relative to their base)', () => {
  const abs = run(PASSIVE + '0.2~0.5 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>\n');
  assert.match(abs.error!, /timing error: expected outbound packet in time range 0\.200000~0\.500000 sec but happened at 1\.000000 sec/);
  const rel = run(PASSIVE + '+0.2~+0.5 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>\n');
  assert.match(rel.error!, /timing error: expected outbound packet in relative time range \+0\.200000~\+0\.500000 sec but happened at \+1\.000000 sec/);
});

test('trace: every injected and sniffed packet with live values and its time', () => {
  const lines: string[] = [];
  const r = runScriptText(`--ip_version=ipv4 --tolerance_usecs=50000 ${PASSIVE}`, 't.pkt', env, { tcp: toy, trace: (l) => lines.push(l) });
  assert.equal(r.error, null);
  assert.deepEqual(lines, [
    'inbound injected packet:  0.000000 192.0.2.1:49153 > 192.168.0.1:8080 S 0:0(0) win 32767 <mss 1460,sackOK,eol,eol>',
    'outbound sniffed packet:  0.000000 192.168.0.1:8080 > 192.0.2.1:49153 S. 1000000:1000000(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>',
  ]);
});
