/**
 * Backquoted commands done natively (sysctl, sockstat | grep pipelines,
 * tcpdrop) and the TCP_INFO assert evaluator of code blocks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sysctl } from '../../kern/sysctl/sysctl.js';
import { runCommand, splitWords } from '../../packetdrill/shell.js';
import { runCode } from '../../packetdrill/tcpinfo.js';
import { RunState, DEFAULT_CONFIG } from '../../packetdrill/state.js';
import type { PdNet } from '../../packetdrill/netif.js';
import type { Endpoint, PdTcp, SockstatRow } from '../../packetdrill/tcpapi.js';

function state(rows: SockstatRow[] = []): { st: RunState; dropped: string[] } {
  const sysctl = new Sysctl();
  let v = 0;
  sysctl.registerNode({ name: 'net.inet.tcp.rfc1323', type: 'int', description: 'x', get: () => v, set: (n) => (v = Number(n)), min: 0, max: 1 });
  const dropped: string[] = [];
  const tcp: PdTcp = {
    socket: () => 43,
    sockstat: () => rows,
    drop: (l: Endpoint, f: Endpoint) => {
      dropped.push(`${l.port}-${f.port}`);
      return 0;
    },
  };
  return { st: new RunState({} as PdNet, tcp, sysctl, DEFAULT_CONFIG), dropped };
}

const L = { addr: 0xc0a80001, port: 8080 };
const F = { addr: 0xc0000201, port: 49153 };

test('sysctl -w / -n on the run tree, unknown oids fail with status 1', () => {
  const { st } = state();
  assert.deepEqual(runCommand(st, 'sysctl -w net.inet.tcp.rfc1323=1'), { status: 0, stdout: 'net.inet.tcp.rfc1323: 0 -> 1\n', stderr: '' });
  assert.equal(runCommand(st, 'sysctl -n net.inet.tcp.rfc1323').stdout, '1\n');
  const bad = runCommand(st, 'sysctl -w net.inet.tcp.nosuch=1');
  assert.deepEqual([bad.status, bad.stderr], [1, "sysctl: unknown oid 'net.inet.tcp.nosuch'\n"]);
  assert.equal(runCommand(st, 'sysctl -w net.inet.tcp.rfc1323=7').status, 1, 'out of range');
  assert.equal(runCommand(st, 'sysctl -w net.inet.tcp.rfc1323=x').status, 1, 'not a number');
});

test('sockstat | grep pipelines count as the suite expects; the last stage gives the status', () => {
  const { st } = state([
    { local: L, foreign: null, state: 'LISTEN', hasSocket: true },
    { local: L, foreign: F, state: 'SYN_RCVD', hasSocket: false },
    { local: L, foreign: { ...F, port: 49154 }, state: 'TIME_WAIT', hasSocket: true },
  ]);
  assert.equal(runCommand(st, 'sockstat -4 -P tcp -p 8080 -s | grep -c SYN_RCVD | grep 1').status, 0);
  assert.equal(runCommand(st, 'sockstat -4 -P tcp -p 8080 -s | grep -c SYN_RCVD | grep 0').status, 1);
  assert.equal(runCommand(st, 'sockstat -4 -P tcp -s | grep packetdril | grep -c TIME_WAIT | grep 1').status, 0);
  assert.equal(runCommand(st, 'sockstat -4 -P tcp -s | grep packetdril | grep -c SYN_RCVD').stdout, '0\n', 'syncache rows have no process');
  assert.equal(runCommand(st, 'sockstat -4 -P tcp -p 9999 -s | grep -c LISTEN').status, 1);
  const r = runCommand(st, 'sockstat -4 -P tcp -s');
  assert.match(r.stdout, /root +packetdril .* tcp4 +192\.168\.0\.1:8080 +\*:\* +LISTEN/);
  assert.equal(runCommand(st, 'rm -rf /').status, 127, 'nothing is handed to a shell');
});

test('tcpdrop -s STATE drops the connections in that state; explicit endpoints too', () => {
  const { st, dropped } = state([
    { local: L, foreign: null, state: 'LISTEN', hasSocket: true },
    { local: L, foreign: F, state: 'TIME_WAIT', hasSocket: false },
    { local: L, foreign: { ...F, port: 2 }, state: 'ESTABLISHED', hasSocket: true },
  ]);
  assert.equal(runCommand(st, 'tcpdrop -s TIME_WAIT').status, 0);
  assert.deepEqual(dropped, ['8080-49153']);
  assert.equal(runCommand(st, 'tcpdrop 192.168.0.1 8080 192.0.2.1 2').status, 0);
  assert.deepEqual(dropped, ['8080-49153', '8080-2']);
  assert.equal(runCommand(st, 'tcpdrop -x').status, 1);
});

test('splitWords honours quotes and escapes', () => {
  assert.deepEqual(splitWords(`a\\ b "c d" ''`), ['a b', 'c d', '']);
  assert.deepEqual(splitWords(`x 'a b'  y`), ['x', 'a b', 'y']);
});

test('code blocks: asserts on tcpi_* with Python precedence; failures name the values', () => {
  const info = { tcpi_state: 4, tcpi_options: 0x0f, tcpi_snd_mss: 1460 };
  assert.equal(runCode('assert tcpi_state == TCPI_ESTABLISHED', info), null);
  assert.equal(runCode('assert tcpi_options == (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE | TCPI_OPT_ECN)', info), null);
  assert.equal(runCode('assert tcpi_options & TCPI_OPT_SACK != 0', info), null, '& binds tighter than != in Python');
  assert.equal(runCode('assert 0 < tcpi_snd_mss <= 1460 and not tcpi_state == 1', info), null);
  assert.equal(runCode('assert tcpi_state == TCPI_LISTEN', info), 'AssertionError: tcpi_state == TCPI_LISTEN (tcpi_state = 4)');
  assert.equal(runCode('assert tcpi_state == 4; assert tcpi_options == 15', info), null);
  assert.match(runCode('assert tcpi_nosuch == 1', info)!, /NameError: name 'tcpi_nosuch' is not defined/);
  assert.match(runCode('print(tcpi_state)', info)!, /SyntaxError/);
  assert.match(runCode('assert (1', info)!, /SyntaxError/);
});
