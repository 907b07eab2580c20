/**
 * `%{ ... }%` code blocks: packetdrill hands them to Python with the socket
 * under test's TCP_INFO as variables (tcpi_state, tcpi_options, ...). The
 * suite only asserts on those, so this evaluates the Python expression subset
 * itself: `assert EXPR` statements (one per line or `;`-separated) over
 * integers, tcpi_* fields and TCPI_* / TCPS_* constants, with Python's
 * operator precedence (or, and, not, comparisons (chained), |, ^, &, <<, >>,
 * + -, * // %, unary - ~, parentheses).
 *
 * Pure: evaluates against the TcpInfo snapshot it is given.
 */
import { symbolValue } from './symbols.js';
import type { TcpInfo } from './tcpapi.js';

interface Tok {
  k: 'num' | 'name' | 'op' | 'end';
  v: string;
  n: number;
}

function lex(s: string): Tok[] {
  const out: Tok[] = [];
  const re = /\s*(?:(0x[0-9a-fA-F]+|\d+)|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|<<|>>|\/\/|[()<>|&^+\-*%~,]))/y;
  let i = 0;
  while (i < s.length) {
    if (/^\s*$/.test(s.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(s);
    if (m === null) throw new Error(`cannot read '${s.slice(i).trim()}'`);
    i = re.lastIndex;
    if (m[1] !== undefined) out.push({ k: 'num', v: m[1], n: Number(m[1]) });
    else if (m[2] !== undefined) out.push({ k: m[2] === 'and' || m[2] === 'or' || m[2] === 'not' ? 'op' : 'name', v: m[2], n: 0 });
    else out.push({ k: 'op', v: m[3], n: 0 });
  }
  out.push({ k: 'end', v: '', n: 0 });
  return out;
}

class Eval {
  private i = 0;
  constructor(
    private readonly t: Tok[],
    private readonly info: TcpInfo,
  ) {}
  private peek(): Tok {
    return this.t[this.i];
  }
  private eat(v: string): boolean {
    if (this.peek().k === 'op' && this.peek().v === v) {
      this.i++;
      return true;
    }
    return false;
  }
  done(): boolean {
    return this.peek().k === 'end' || (this.peek().k === 'op' && this.peek().v === ',');
  }
  expr(): number {
    let v = this.and();
    while (this.eat('or')) {
      const r = this.and();
      v = v !== 0 ? v : r;
    }
    return v;
  }
  private and(): number {
    let v = this.not();
    while (this.eat('and')) {
      const r = this.not();
      v = v === 0 ? v : r;
    }
    return v;
  }
  private not(): number {
    if (this.eat('not')) return this.not() === 0 ? 1 : 0;
    return this.cmp();
  }
  private cmp(): number {
    let left = this.bitor();
    let result = 1;
    let any = false;
    for (;;) {
      const op = this.peek();
      if (op.k !== 'op' || !['==', '!=', '<', '<=', '>', '>='].includes(op.v)) break;
      this.i++;
      const right = this.bitor();
      const r =
        op.v === '==' ? left === right : op.v === '!=' ? left !== right : op.v === '<' ? left < right : op.v === '<=' ? left <= right : op.v === '>' ? left > right : left >= right;
      if (!r) result = 0;
      any = true;
      left = right;
    }
    return any ? result : left;
  }
  private bitor(): number {
    let v = this.bitxor();
    while (this.eat('|')) v = Number(BigInt(v) | BigInt(this.bitxor()));
    return v;
  }
  private bitxor(): number {
    let v = this.bitand();
    while (this.eat('^')) v = Number(BigInt(v) ^ BigInt(this.bitand()));
    return v;
  }
  private bitand(): number {
    let v = this.shift();
    while (this.eat('&')) v = Number(BigInt(v) & BigInt(this.shift()));
    return v;
  }
  private shift(): number {
    let v = this.add();
    for (;;) {
      if (this.eat('<<')) v = v * 2 ** this.add();
      else if (this.eat('>>')) v = Math.floor(v / 2 ** this.add());
      else return v;
    }
  }
  private add(): number {
    let v = this.mul();
    for (;;) {
      if (this.eat('+')) v += this.mul();
      else if (this.eat('-')) v -= this.mul();
      else return v;
    }
  }
  private mul(): number {
    let v = this.unary();
    for (;;) {
      if (this.eat('*')) v *= this.unary();
      else if (this.eat('//')) v = Math.floor(v / this.unary());
      else if (this.eat('%')) {
        const d = this.unary();
        v = v - d * Math.floor(v / d);
      } else return v;
    }
  }
  private unary(): number {
    if (this.eat('-')) return -this.unary();
    if (this.eat('+')) return this.unary();
    if (this.eat('~')) return -this.unary() - 1;
    return this.atom();
  }
  private atom(): number {
    const t = this.peek();
    if (this.eat('(')) {
      const v = this.expr();
      if (!this.eat(')')) throw new Error("expected ')'");
      return v;
    }
    this.i++;
    if (t.k === 'num') return t.n;
    if (t.k === 'name') {
      if (t.v === 'True') return 1;
      if (t.v === 'False') return 0;
      if (t.v.startsWith('tcpi_')) {
        const v = this.info[t.v];
        if (v === undefined) throw new Error(`name '${t.v}' is not defined (TCP_INFO has no such field)`);
        return v;
      }
      const s = symbolValue(t.v);
      if (s === undefined) throw new Error(`name '${t.v}' is not defined`);
      return s;
    }
    throw new Error(`unexpected '${t.v || 'end of code'}'`);
  }
}

/** Names of tcpi_* fields an expression reads (for the failure message). */
function fieldsOf(expr: string): string[] {
  return [...new Set(expr.match(/\btcpi_[A-Za-z0-9_]+/g) ?? [])];
}

/**
 * Run a code block against a TCP_INFO snapshot. Returns null when every
 * assertion holds, else the error (AssertionError with the values read, or a
 * SyntaxError / NameError for code this evaluator does not understand).
 */
export function runCode(code: string, info: TcpInfo): string | null {
  for (const raw of code.split(/[\n;]/)) {
    const stmt = raw.trim();
    if (stmt === '' || stmt.startsWith('#')) continue;
    const m = /^assert\s+(.*)$/s.exec(stmt);
    if (m === null) return `SyntaxError: only 'assert' statements are supported: ${stmt}`;
    let ok: boolean;
    try {
      const ev = new Eval(lex(m[1]), info);
      ok = ev.expr() !== 0;
      if (!ev.done()) return `SyntaxError: invalid syntax: ${stmt}`;
    } catch (e) {
      return `${(e as Error).message.startsWith('name') ? 'NameError' : 'SyntaxError'}: ${(e as Error).message}`;
    }
    if (!ok) {
      const vals = fieldsOf(m[1]).map((f) => `${f} = ${info[f]}`).join(', ');
      return `AssertionError: ${m[1].trim()}${vals ? ` (${vals})` : ''}`;
    }
  }
  return null;
}
