/**
 * packetdrill script parser: a recursive-descent reading of nplab
 * packetdrill's grammar (parser.y) for the IPv4 TCP/ICMP subset that
 * FreeBSD's TCP test suite uses, producing the AST of ast.ts. Semantic
 * checks the dialect makes at parse time (padded TCP options, consistent
 * sequence numbers, window given on inbound packets, `*` only on outbound
 * packets) are made here with its wording.
 *
 * Pure: no I/O. Throws ScriptError (with the line) on the first error.
 */
import { tokenize, ScriptError, type Token } from './lexer.js';
import type { Action, EventTime, Expr, IcmpSpec, IpInfo, PacketSpec, PdEvent, Script, ScriptOption, SyscallSpec, TcpOption, TcpSpec } from './ast.js';

const VALID_TCP_FLAGS = '.FSRPEWAU01234567';

/** Bytes a TCP option takes on the wire. */
export function tcpOptionLength(o: TcpOption): number {
  switch (o.kind) {
    case 'nop':
    case 'eol':
      return 1;
    case 'mss':
      return 4;
    case 'wscale':
      return 3;
    case 'sackOK':
      return 2;
    case 'sack':
      return 2 + 8 * o.blocks.length;
    case 'ts':
      return 10;
    case 'fo':
      return 2 + o.cookie.length;
    case 'generic':
      return 2 + o.data.length;
  }
}

class Parser {
  private i = 0;
  constructor(
    private readonly t: Token[],
    private readonly path: string,
  ) {}

  private peek(k = 0): Token {
    return this.t[Math.min(this.i + k, this.t.length - 1)];
  }
  private next(): Token {
    const tok = this.t[this.i];
    if (this.i < this.t.length - 1) this.i++;
    return tok;
  }
  private isPunct(c: string, k = 0): boolean {
    const tok = this.peek(k);
    return tok.kind === 'punct' && tok.text === c;
  }
  private isWord(w: string, k = 0): boolean {
    const tok = this.peek(k);
    return tok.kind === 'word' && tok.text === w;
  }
  private fail(msg: string, tok = this.peek()): never {
    const at = tok.kind === 'eof' ? 'end of file' : `'${tok.text}'`;
    throw new ScriptError(tok.line, `parse error at ${at}: ${msg}`);
  }
  private semantic(msg: string, line = this.peek().line): never {
    throw new ScriptError(line, `semantic error: ${msg}`);
  }
  private expectPunct(c: string): Token {
    if (!this.isPunct(c)) this.fail(`expected '${c}'`);
    return this.next();
  }
  private expectWord(w?: string): Token {
    const tok = this.peek();
    if (tok.kind !== 'word' || (w !== undefined && tok.text !== w)) this.fail(w === undefined ? 'expected a word' : `expected '${w}'`);
    return this.next();
  }
  private expectInt(what: string, max = 0xffffffff): number {
    const tok = this.peek();
    if (tok.kind !== 'int' && tok.kind !== 'hex') this.fail(`expected ${what}`);
    this.next();
    if (tok.value < 0 || tok.value > max) this.semantic(`${what} out of range`, tok.line);
    return tok.value;
  }

  script(): Script {
    const options = this.options();
    let initCommand: string | null = null;
    if (this.peek().kind === 'backquote') initCommand = this.next().text;
    const events: PdEvent[] = [];
    let cleanupCommand: string | null = null;
    while (this.peek().kind !== 'eof') {
      if (this.peek().kind === 'backquote' && this.peek(1).kind === 'eof') {
        cleanupCommand = this.next().text;
        break;
      }
      events.push(this.event());
    }
    if (events.length === 0) this.fail('a script needs at least one event');
    return { path: this.path, options, events, initCommand, cleanupCommand };
  }

  private options(): ScriptOption[] {
    const out: ScriptOption[] = [];
    while (this.peek().kind === 'option') {
      const tok = this.next();
      let value: string | null = null;
      if (this.isPunct('=')) {
        this.next();
        const v = this.next();
        if (!['int', 'hex', 'word', 'string', 'ipv4', 'float'].includes(v.kind)) this.fail('expected an option value', v);
        value = v.text;
        if (v.kind === 'word' && this.isPunct('=')) {
          this.next();
          value = `${value}=${this.next().text}`;
        }
      }
      out.push({ name: tok.text, value, line: tok.line });
    }
    return out;
  }

  private time(): number {
    const tok = this.peek();
    if (tok.kind !== 'float' && tok.kind !== 'int') this.fail('expected a time');
    this.next();
    if (tok.value < 0) this.semantic('negative time', tok.line);
    return Math.round(tok.value * 1e6);
  }

  private eventTime(): EventTime {
    if (this.isPunct('*')) {
      this.next();
      return { type: 'any', usecs: 0, endUsecs: -1 };
    }
    if (this.isPunct('+')) {
      this.next();
      const usecs = this.time();
      if (this.isPunct('~')) {
        this.next();
        this.expectPunct('+');
        return { type: 'relative_range', usecs, endUsecs: this.time() };
      }
      return { type: 'relative', usecs, endUsecs: -1 };
    }
    const usecs = this.time();
    if (this.isPunct('~')) {
      this.next();
      return { type: 'absolute_range', usecs, endUsecs: this.time() };
    }
    return { type: 'absolute', usecs, endUsecs: -1 };
  }

  private event(): PdEvent {
    const line = this.peek().line;
    const time = this.eventTime();
    const action = this.action();
    if (time.endUsecs !== -1 && time.endUsecs < time.usecs) this.semantic('time range is backwards', line);
    const outbound = action.kind === 'packet' && action.packet.direction === 'outbound';
    if (time.type === 'any' && !outbound) this.semantic('event time <star> can only be used with outbound packets', line);
    if ((time.type === 'absolute_range' || time.type === 'relative_range') && !outbound) this.semantic('event time range can only be used with outbound packets', line);
    return { line, time, action };
  }

  private action(): Action {
    const tok = this.peek();
    if (tok.kind === 'punct' && (tok.text === '<' || tok.text === '>')) return { kind: 'packet', packet: this.packet() };
    if (tok.kind === 'backquote') return { kind: 'command', command: this.next().text };
    if (tok.kind === 'code') return { kind: 'code', code: this.next().text };
    if (tok.kind === 'word' || tok.kind === 'ellipsis') return { kind: 'syscall', syscall: this.syscall() };
    this.fail('expected a packet, system call, command or code');
  }

  // ------------------------------------------------------------ packets

  private packet(): PacketSpec {
    const direction = this.next().text === '<' ? 'inbound' : 'outbound';
    const ip = this.optIpInfo();
    if (this.isWord('icmp')) {
      this.next();
      const icmp = this.icmp();
      if ((ip.tosCheck === 'ect01' || ip.tosCheck === 'dscp_ect01') && direction !== 'outbound') this.semantic('[ect01] can only be used with outbound packets');
      return { direction, ip, tcp: null, icmp };
    }
    if (this.isWord('udp') || this.isWord('udplite') || this.isWord('sctp')) this.fail(`${this.peek().text} packets are not supported by this runner`);
    return { direction, ip, tcp: this.tcp(direction), icmp: null };
  }

  private optIpInfo(): IpInfo {
    const ip: IpInfo = { tosCheck: 'none', tos: 0, ttl: -1 };
    const close = this.isPunct('(') ? ')' : this.isPunct('[') ? ']' : null;
    if (close === null) return ip;
    this.next();
    for (;;) {
      this.ipInfoItem(ip);
      if (this.isPunct(',')) {
        this.next();
        continue;
      }
      this.expectPunct(close);
      return ip;
    }
  }

  private static readonly ECN: Record<string, number> = { noecn: 0, ect1: 1, ect0: 2, ce: 3 };
  private static readonly DSCP: Record<string, number> = {
    cs0: 0, cs1: 8, cs2: 16, cs3: 24, cs4: 32, cs5: 40, cs6: 48, cs7: 56,
    af11: 10, af12: 12, af13: 14, af21: 18, af22: 20, af23: 22, af31: 26, af32: 28, af33: 30, af41: 34, af42: 36, af43: 38,
    ef: 46, 'voice-admit': 44, le: 1,
  };

  private ipInfoItem(ip: IpInfo): void {
    const w = this.expectWord().text;
    const setEcn = (v: number) => {
      if (ip.tosCheck === 'none') {
        ip.tosCheck = 'ecn';
        ip.tos = v;
      } else if (ip.tosCheck === 'dscp') {
        ip.tosCheck = 'tos';
        ip.tos = (ip.tos & ~3) | v;
      } else this.semantic("can't set ecn, tos already set");
    };
    const setEct01 = () => {
      if (ip.tosCheck === 'none') ip.tosCheck = 'ect01';
      else if (ip.tosCheck === 'dscp') ip.tosCheck = 'dscp_ect01';
      else this.semantic("can't set ECT01, tos already set");
    };
    if (w === 'ttl' || w === 'hlim') ip.ttl = this.expectInt('ttl', 255);
    else if (w === 'tos' || w === 'class') {
      if (ip.tosCheck !== 'none') this.semantic(`${w} already set`);
      ip.tosCheck = 'tos';
      ip.tos = this.expectInt(w, 255);
    } else if (w === 'dscp') {
      const tok = this.next();
      const d = tok.kind === 'hex' ? tok.value : Parser.DSCP[tok.text];
      if (d === undefined || d > 63) this.semantic('dscp out of range for 6 bits', tok.line);
      if (ip.tosCheck === 'none') {
        ip.tosCheck = 'dscp';
        ip.tos = d << 2;
      } else if (ip.tosCheck === 'ecn') {
        ip.tosCheck = 'tos';
        ip.tos = (d << 2) | (ip.tos & 3);
      } else if (ip.tosCheck === 'ect01') {
        ip.tosCheck = 'dscp_ect01';
        ip.tos = d << 2;
      } else this.semantic("can't set dscp, tos already set");
    } else if (w === 'ecn') {
      const v = this.expectWord().text;
      if (v === 'ect01') setEct01();
      else if (v in Parser.ECN) setEcn(Parser.ECN[v]);
      else this.fail('expected an ECN codepoint');
    } else if (w === 'ect01') setEct01();
    else if (w in Parser.ECN) setEcn(Parser.ECN[w]);
    else if (w === 'flowlabel') this.expectInt('flowlabel', 0xfffff);
    else this.fail(`unknown IP field '${w}'`);
  }

  private flags(): string {
    if (this.isPunct('.')) {
      this.next();
      return '.';
    }
    if (this.isPunct('-')) {
      this.next();
      return '';
    }
    let f = this.expectWord().text;
    if (this.isPunct('.')) {
      this.next();
      f += '.';
      if (this.peek().kind === 'word') f += this.next().text;
    } else if (this.peek().kind === 'float' && this.peek().text.startsWith('.')) f += this.next().text;
    return f;
  }

  /** seq: start:end(len)[!] or ...(len). */
  private seq(): { seq: number; len: number; abs: boolean; ignore: boolean } {
    if (this.peek().kind === 'ellipsis') {
      this.next();
      this.expectPunct('(');
      const len = this.expectInt('TCP payload size', 0xffff);
      this.expectPunct(')');
      return { seq: 0, len, abs: false, ignore: true };
    }
    const line = this.peek().line;
    const start = this.expectInt('TCP start sequence number');
    this.expectPunct(':');
    const end = this.expectInt('TCP end sequence number');
    this.expectPunct('(');
    const len = this.expectInt('TCP payload size', 0xffff);
    this.expectPunct(')');
    if (end !== start + len) this.semantic('inconsistent TCP sequence numbers and payload size', line);
    let abs = false;
    if (this.isPunct('!')) {
      this.next();
      abs = true;
    }
    return { seq: start, len, abs, ignore: false };
  }

  private tcp(direction: 'inbound' | 'outbound'): TcpSpec {
    let srcPort = 0;
    let dstPort = 0;
    if (this.peek().kind === 'int' && this.isPunct('>', 1)) {
      srcPort = this.expectInt('src port', 0xffff);
      this.next();
      dstPort = this.expectInt('dst port', 0xffff);
    }
    const flagsTok = this.peek();
    const flags = this.flags();
    for (const c of flags) if (!VALID_TCP_FLAGS.includes(c)) this.semantic(`Invalid TCP flag: '${c}'`, flagsTok.line);
    const s = this.seq();
    const spec: TcpSpec = {
      srcPort, dstPort, flags, seq: s.seq, len: s.len, absSeq: s.abs, ignoreSeq: s.ignore,
      ack: 0, win: -1, urg: 0, options: [], ignoreTsVal: false, absTsEcr: false, udpSrc: 0, udpDst: 0,
    };
    if (this.isWord('ack')) {
      this.next();
      spec.ack = this.expectInt('TCP ack sequence number');
    }
    if (this.isWord('win')) {
      this.next();
      spec.win = this.expectInt('TCP window value', 0xffff);
    }
    if (this.isWord('urg')) {
      this.next();
      spec.urg = this.expectInt('urg_ptr value', 0xffff);
    }
    if (this.isPunct('<')) {
      const line = this.next().line;
      if (this.peek().kind === 'ellipsis') {
        this.next();
        spec.options = null;
        if (direction !== 'outbound') this.semantic('<...> for TCP options can only be used with outbound packets', line);
      } else spec.options = this.tcpOptions(spec);
      this.expectPunct('>');
      if (spec.options !== null) {
        const bytes = spec.options.reduce((n, o) => n + tcpOptionLength(o), 0);
        if (bytes & 3) this.semantic(`TCP options are not padded correctly to ensure TCP header is a multiple of 4 bytes: ${bytes & 3} excess bytes`, line);
        if (bytes > 40) this.semantic('TCP header too large', line);
      }
    }
    if (this.isPunct('[') && this.isWord('code', 1)) {
      this.fail('RST diagnostic payloads are not supported by this runner');
    }
    if (this.isPunct('/')) {
      this.next();
      this.expectWord('udp');
      this.expectPunct('(');
      spec.udpSrc = this.expectInt('UDP source port', 0xffff);
      this.expectPunct('>');
      spec.udpDst = this.expectInt('UDP destination port', 0xffff);
      this.expectPunct(')');
    }
    if (spec.win === -1 && direction === 'inbound') this.semantic('window must be specified for inbound packets', flagsTok.line);
    return spec;
  }

  private tcpOptions(spec: TcpSpec): TcpOption[] {
    const out: TcpOption[] = [];
    for (;;) {
      out.push(this.tcpOption(spec));
      if (!this.isPunct(',')) return out;
      this.next();
    }
  }

  private tcpOption(spec: TcpSpec): TcpOption {
    const w = this.expectWord().text;
    switch (w) {
      case 'nop':
        return { kind: 'nop' };
      case 'eol':
        return { kind: 'eol' };
      case 'mss':
        return { kind: 'mss', mss: this.expectInt('mss value', 0xffff) };
      case 'wscale':
        return { kind: 'wscale', shift: this.expectInt('window scale shift count', 255) };
      case 'sackOK':
        return { kind: 'sackOK' };
      case 'sack': {
        const blocks: [number, number][] = [];
        while (this.peek().kind === 'int' && this.isPunct(':', 1)) {
          const l = this.expectInt('sack block left edge');
          this.next();
          blocks.push([l, this.expectInt('sack block right edge')]);
        }
        if (blocks.length === 0) this.fail('expected a SACK block');
        return { kind: 'sack', blocks };
      }
      case 'TS': {
        this.expectWord('val');
        let val = 0;
        if (this.peek().kind === 'ellipsis') {
          this.next();
          spec.ignoreTsVal = true;
        } else val = this.expectInt('ts val');
        this.expectWord('ecr');
        const ecr = this.expectInt('ecr val');
        if (this.isPunct('!')) {
          this.next();
          spec.absTsEcr = true;
        }
        return { kind: 'ts', val, ecr };
      }
      case 'FO': {
        const tok = this.peek();
        const hex = tok.kind === 'word' || tok.kind === 'int' ? this.next().text : '';
        return { kind: 'fo', cookie: hexBytes(hex, tok.line) };
      }
      default: {
        const g = /^gen-(\d+)$/.exec(w);
        if (g !== null) {
          const tok = this.peek();
          const hex = tok.kind === 'word' || tok.kind === 'int' ? this.next().text : '';
          return { kind: 'generic', code: Number(g[1]), data: hexBytes(hex, tok.line) };
        }
        this.fail(`unsupported TCP option '${w}'`);
      }
    }
  }

  private icmp(): IcmpSpec {
    const type = this.expectWord().text;
    let code: string | null = null;
    if (this.peek().kind === 'word' && !this.isWord('mtu') && !this.isWord('id')) code = this.next().text;
    const spec: IcmpSpec = { type, code, mtu: -1, echoId: 0, echoedProto: 'tcp', echoedSeq: 0, echoedLen: 0 };
    if (this.isWord('mtu')) {
      this.next();
      spec.mtu = this.expectInt('mtu', 0xffff);
    }
    if (this.isWord('id')) {
      this.next();
      spec.echoId = this.expectInt('echo id', 0xffff);
    }
    if (this.isPunct('[')) {
      this.next();
      if (this.isWord('udp')) {
        this.next();
        this.expectPunct('(');
        spec.echoedProto = 'udp';
        spec.echoedLen = this.expectInt('UDP payload size', 0xffff);
        this.expectPunct(')');
      } else {
        const s = this.seq();
        spec.echoedSeq = s.seq;
        spec.echoedLen = s.len;
      }
      this.expectPunct(']');
    }
    return spec;
  }

  // -------------------------------------------------------- system calls

  private syscall(): SyscallSpec {
    let endUsecs = -1;
    if (this.peek().kind === 'ellipsis') {
      this.next();
      endUsecs = this.time();
    }
    const name = this.expectWord().text;
    this.expectPunct('(');
    const args: Expr[] = [];
    if (!this.isPunct(')')) {
      for (;;) {
        args.push(this.expr());
        if (!this.isPunct(',')) break;
        this.next();
      }
    }
    this.expectPunct(')');
    this.expectPunct('=');
    const result = this.expr();
    let errno: SyscallSpec['errno'] = null;
    if (this.peek().kind === 'word' && this.isPunct('(', 1)) {
      const e = this.next().text;
      errno = { name: e, note: this.note() };
    }
    const note = this.isPunct('(') ? this.note() : null;
    return { name, args, result, errno, note, endUsecs };
  }

  private note(): string {
    this.expectPunct('(');
    const words: string[] = [];
    while (!this.isPunct(')')) {
      const tok = this.next();
      if (tok.kind === 'eof') this.fail("expected ')'", tok);
      words.push(tok.text);
    }
    this.next();
    return words.join(' ');
  }

  private expr(): Expr {
    let e = this.primary();
    while (this.isPunct('|')) {
      this.next();
      e = { t: 'or', lhs: e, rhs: this.primary() };
    }
    return e;
  }

  private primary(): Expr {
    const tok = this.peek();
    switch (tok.kind) {
      case 'ellipsis':
        this.next();
        return { t: 'ellipsis' };
      case 'int':
      case 'hex':
        this.next();
        return { t: 'int', v: tok.value, hex: tok.kind === 'hex' };
      case 'string': {
        this.next();
        let ellipsis = false;
        if (this.peek().kind === 'ellipsis') {
          this.next();
          ellipsis = true;
        }
        return { t: 'string', v: tok.text, ellipsis };
      }
      case 'word': {
        this.next();
        if (tok.text === 'NULL') return { t: 'null' };
        if ((tok.text === 'htons' || tok.text === 'htonl' || tok.text === 'inet_addr') && this.isPunct('(')) {
          this.next();
          const arg = this.expr();
          this.expectPunct(')');
          return { t: 'call', fn: tok.text, arg };
        }
        return { t: 'word', v: tok.text };
      }
      case 'punct':
        if (tok.text === '[') {
          this.next();
          const items: Expr[] = [];
          if (!this.isPunct(']')) {
            for (;;) {
              items.push(this.expr());
              if (!this.isPunct(',')) break;
              this.next();
            }
          }
          this.expectPunct(']');
          return { t: 'list', items };
        }
        if (tok.text === '{') {
          this.next();
          const fields = new Map<string, Expr>();
          if (!this.isPunct('}')) {
            for (let pos = 0; ; pos++) {
              // name=value, or a positional member ({..., 100} is an iovec).
              if (this.peek().kind === 'word' && this.isPunct('=', 1)) {
                const k = this.next().text;
                this.next();
                fields.set(k, this.expr());
              } else fields.set(String(pos), this.expr());
              if (!this.isPunct(',')) break;
              this.next();
            }
          }
          this.expectPunct('}');
          return { t: 'struct', fields };
        }
        break;
    }
    this.fail('expected an expression');
  }
}

function hexBytes(hex: string, line: number): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new ScriptError(line, `semantic error: bad hex string '${hex}'`);
  const out = new Uint8Array(hex.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
  return out;
}

/** Parse script text. `path` names the script in error messages. */
export function parseScript(text: string, path = '<script>', defines: ReadonlySet<string> = new Set()): Script {
  return new Parser(tokenize(text, defines), path).script();
}
