/**
 * The packetdrill lexer and parser: tokens as flex would cut them, the
 * dialect's time specs, packet, system call, command and code lines, #ifdef,
 * and the semantic errors with packetdrill's wording. Every script of the
 * FreeBSD suite parses (when the corpus is present).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tokenize, ScriptError } from '../../packetdrill/lexer.js';
import { parseScript } from '../../packetdrill/parser.js';
import { collectScripts } from '../../packetdrill/run.js';
import { findCorpus } from './corpus.js';

const kinds = (s: string) => tokenize(s).map((t) => `${t.kind}:${t.text}`).slice(0, -1);

test('lexer: longest match as flex (hex, float, ipv4, option, ellipsis, words)', () => {
  assert.deepEqual(kinds('+0.10 0x02 192.168.0.1 --tolerance_usecs=5 ...(0) sackOK -1 1:2(1)!'), [
    'punct:+', 'float:0.10', 'hex:0x02', 'ipv4:192.168.0.1', 'option:tolerance_usecs', 'punct:=', 'int:5',
    'ellipsis:...', 'punct:(', 'int:0', 'punct:)', 'word:sackOK', 'int:-1', 'int:1', 'punct::', 'int:2', 'punct:(', 'int:1', 'punct:)', 'punct:!',
  ]);
  assert.deepEqual(kinds('S. F. 0.1...0.2 close(3) = 0//c\n/* x\ny */ `a b` %{ assert x }%'), [
    'word:S', 'punct:.', 'word:F', 'punct:.', 'float:0.1', 'ellipsis:...', 'float:0.2', 'word:close', 'punct:(', 'int:3', 'punct:)', 'punct:=', 'int:0',
    'backquote:a b', 'code:assert x',
  ]);
  const t = tokenize('a\n// c\n/* 1\n2 */ b');
  assert.equal(t[1].line, 4);
});

test('lexer: #ifdef blocks are skipped unless defined; stray or unterminated ones are errors', () => {
  const src = 'a\n#ifdef FreeBSD\nb\n#endif\nc';
  assert.deepEqual(kinds(src), ['word:a', 'word:c']);
  assert.deepEqual(tokenize(src, new Set(['FreeBSD'])).map((x) => x.text).slice(0, -1), ['a', 'b', 'c']);
  assert.equal(tokenize(src)[1].line, 5);
  assert.throws(() => tokenize('#endif'), /missing #ifdef for #endif/);
  assert.throws(() => tokenize('#ifdef XY\na'), /unterminated #ifdef in line 1/);
  assert.throws(() => tokenize('#ifdef X\na'), /#ifdef must be followed by name/);
  assert.throws(() => tokenize('"abc'), /unterminated string/);
});

const HEAD = '--ip_version=ipv4\n--tolerance_usecs=50000\n';

test('parser: options and event times (absolute, relative, any, ranges)', () => {
  const s = parseScript(`${HEAD}0 close(3) = 0\n+0.5 close(3) = 0\n* > . 1:1(0) ack 1\n1.0~2.0 > . 1:1(0) ack 1\n+0~+0.25 > . 1:1(0) ack 1\n`);
  assert.deepEqual(s.options.map((o) => [o.name, o.value]), [['ip_version', 'ipv4'], ['tolerance_usecs', '50000']]);
  assert.deepEqual(s.events.map((e) => [e.time.type, e.time.usecs, e.time.endUsecs, e.line]), [
    ['absolute', 0, -1, 3], ['relative', 500000, -1, 4], ['any', 0, -1, 5], ['absolute_range', 1000000, 2000000, 6], ['relative_range', 0, 250000, 7],
  ]);
});

test('parser: TCP packet lines with flags, sequence forms, ack, win, options, IP info, encapsulation', () => {
  const s = parseScript(
    `0 > (tos 0x20) S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>\n` +
      `+0 <[noecn] . 1:1(0) ack 1 win 65535 <sack 4381:5841 1:2, nop, nop>\n` +
      `+0 > R. 0:0(0)! ack 2 win 0/udp(9811 > 1)\n` +
      `+0 > S. ...(0) ack 1 <...>\n` +
      `+0 > (ttl 64) SEW 0:0(0) <nop,nop,TS val ... ecr 5!>\n` +
      `+0 < - 5:5(0) win 1\n`,
  );
  const p = s.events.map((e) => (e.action.kind === 'packet' ? e.action.packet : null));
  const t0 = p[0]!.tcp!;
  assert.equal(p[0]!.direction, 'outbound');
  assert.deepEqual([p[0]!.ip.tosCheck, p[0]!.ip.tos], ['tos', 0x20]);
  assert.deepEqual([t0.flags, t0.seq, t0.len, t0.win], ['S', 0, 0, 65535]);
  assert.deepEqual(t0.options, [{ kind: 'mss', mss: 1460 }, { kind: 'nop' }, { kind: 'wscale', shift: 6 }, { kind: 'sackOK' }, { kind: 'ts', val: 100, ecr: 0 }]);
  assert.deepEqual([p[1]!.direction, p[1]!.ip.tosCheck, p[1]!.ip.tos, p[1]!.tcp!.ack], ['inbound', 'ecn', 0, 1]);
  assert.deepEqual(p[1]!.tcp!.options![0], { kind: 'sack', blocks: [[4381, 5841], [1, 2]] });
  assert.deepEqual([p[2]!.tcp!.absSeq, p[2]!.tcp!.udpSrc, p[2]!.tcp!.udpDst], [true, 9811, 1]);
  assert.deepEqual([p[3]!.tcp!.ignoreSeq, p[3]!.tcp!.options, p[3]!.tcp!.win], [true, null, -1]);
  assert.deepEqual([p[4]!.ip.ttl, p[4]!.tcp!.flags, p[4]!.tcp!.ignoreTsVal, p[4]!.tcp!.absTsEcr], [64, 'SEW', true, true]);
  assert.equal(p[5]!.tcp!.flags, '');
});

test('parser: ICMP lines', () => {
  const s = parseScript('0 < icmp unreachable frag_needed mtu 1200 [4294967295:4294967295(0)]\n+0 < icmp time_exceeded ttl_exceeded_in_transit [1:1(0)]\n');
  const a = s.events[0].action;
  assert.ok(a.kind === 'packet' && a.packet.icmp !== null);
  assert.deepEqual(a.packet.icmp, { type: 'unreachable', code: 'frag_needed', mtu: 1200, echoId: 0, echoedProto: 'tcp', echoedSeq: 4294967295, echoedLen: 0 });
});

test('parser: system calls, results with errno and notes, expressions', () => {
  const s = parseScript(
    '0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n' +
      '+0 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)\n' +
      '+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0\n' +
      '+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0\n' +
      '+0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.168.0.1")}, 16) = 0\n' +
      '+0 ...0.5 accept(3, ..., ...) = 4\n',
  );
  const sc = s.events.map((e) => (e.action.kind === 'syscall' ? e.action.syscall : null)!);
  assert.deepEqual([sc[0].name, sc[0].result, sc[0].errno], ['connect', { t: 'int', v: -1, hex: false }, { name: 'EINPROGRESS', note: 'Operation now in progress' }]);
  assert.deepEqual([sc[1].result, sc[1].errno, sc[1].note], [{ t: 'int', v: 2, hex: true }, null, 'flags O_RDWR']);
  assert.deepEqual(sc[2].args[2], { t: 'or', lhs: { t: 'word', v: 'O_RDWR' }, rhs: { t: 'word', v: 'O_NONBLOCK' } });
  assert.deepEqual(sc[3].args[3], { t: 'list', items: [{ t: 'word', v: 'ECONNRESET' }] });
  assert.equal(sc[4].args[1].t, 'struct');
  assert.equal(sc[5].endUsecs, 500000);
});

test('parser: commands, code, init and cleanup commands', () => {
  const s = parseScript('`echo init`\n0 `sysctl -w a.b=1`\n+0 %{ assert tcpi_state == TCPI_LISTEN }%\n`echo cleanup`\n');
  assert.equal(s.initCommand, 'echo init');
  assert.equal(s.cleanupCommand, 'echo cleanup');
  assert.deepEqual(s.events.map((e) => e.action), [{ kind: 'command', command: 'sysctl -w a.b=1' }, { kind: 'code', code: 'assert tcpi_state == TCPI_LISTEN' }]);
});

test('parser: semantic errors use the dialect wording and the line', () => {
  const err = (src: string, re: RegExp, line: number) =>
    assert.throws(
      () => parseScript(src),
      (e: unknown) => e instanceof ScriptError && re.test(e.message) && e.line === line,
    );
  err('0 close(3) = 0\n+0 < S 0:0(0) <mss 1460>\n', /window must be specified for inbound packets/, 2);
  err('0 > S 0:0(0) <mss 1460,nop>\n', /TCP options are not padded correctly to ensure TCP header is a multiple of 4 bytes: 1 excess bytes/, 1);
  err('0 > . 1:5(3) ack 1\n', /inconsistent TCP sequence numbers and payload size/, 1);
  err('0 < S 0:0(0) win 1 <...>\n', /<\.\.\.> for TCP options can only be used with outbound packets/, 1);
  err('* close(3) = 0\n', /event time <star> can only be used with outbound packets/, 1);
  err('0~1 close(3) = 0\n', /event time range can only be used with outbound packets/, 1);
  err('0 > X 0:0(0)\n', /Invalid TCP flag: 'X'/, 1);
  err('0 close(3 = 0\n', /parse error at '='/, 1);
});

test('corpus: every FreeBSD suite script parses', { skip: findCorpus() === null ? 'corpus not present' : false }, () => {
  const files = collectScripts([findCorpus()!]);
  assert.equal(files.length, 514);
  const bad: string[] = [];
  for (const f of files) {
    try {
      parseScript(readFileSync(f, 'utf8'), f);
    } catch (e) {
      bad.push(`${f}: ${(e as Error).message}`);
    }
  }
  assert.deepEqual(bad, []);
  assert.ok(existsSync(files[0]));
});
