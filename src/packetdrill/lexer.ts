/**
 * packetdrill script lexer: turns script text into tokens the way nplab
 * packetdrill's flex scanner does (longest match among the number, address,
 * word and punctuation patterns), with C and C++ comments skipped and
 * `#ifdef NAME ... #endif` blocks dropped unless NAME is defined.
 *
 * Written from the dialect's lexer.l as a specification; no code is shared.
 * Pure function of its input: no I/O, never throws except ScriptError for
 * malformed input (unterminated string, stray #endif, ...).
 */

export type TokKind =
  | 'int' // decimal integer (may be negative)
  | 'hex' // 0x... integer
  | 'float' // [-]digits.digits
  | 'word' // [a-zA-Z0-9_]+ and the dialect's few hyphenated keywords
  | 'string' // "..."
  | 'backquote' // `...`
  | 'code' // %{ ... }%
  | 'option' // --name
  | 'ipv4' // a.b.c.d
  | 'ellipsis' // ...
  | 'punct' // any other single non-blank character
  | 'eof';

export interface Token {
  kind: TokKind;
  /** The source text (for strings/backquotes/code/options: the contents without delimiters). */
  text: string;
  /** Numeric value for int/hex/float. */
  value: number;
  line: number;
}

/** A script that cannot be read: file:line and packetdrill's wording where it has one. */
export class ScriptError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.name = 'ScriptError';
    this.line = line;
  }
}

/** Hyphenated keywords of the dialect (TCP option names); everything else with '-' is punctuation. */
const HYPHEN_WORDS = ['exp-AccECN0', 'exp-AccECN1', 'exp-tarr', 'exp-FO', 'EXP-FO', 'voice-admit'];

const RE_IPV4 = /\d+\.\d+\.\d+\.\d+/y;
const RE_HEX = /0x[0-9a-fA-F]+/y;
const RE_FLOAT = /-?\d*\.\d+/y;
const RE_INT = /-?\d+/y;
const RE_WORD = /[a-zA-Z0-9_]+/y;
const RE_OPTION = /--[a-zA-Z0-9_]+/y;
const RE_GENERIC = /(gen-\d+|exp-[0-9a-fA-F]+)/y;

function matchAt(re: RegExp, s: string, i: number): string | null {
  re.lastIndex = i;
  const m = re.exec(s);
  return m === null ? null : m[0];
}

/**
 * Tokenize a whole script. `defines` names the symbols `#ifdef` tests
 * (packetdrill's --define); none are defined by default.
 */
export function tokenize(src: string, defines: ReadonlySet<string> = new Set()): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let ifdefLine = 0;
  const n = src.length;
  const push = (kind: TokKind, text: string, value = 0, at = line) => out.push({ kind, text, value, line: at });
  const countLines = (a: number, b: number) => {
    for (let k = a; k < b; k++) if (src.charCodeAt(k) === 10) line++;
  };
  while (i < n) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new ScriptError(line, 'unterminated comment');
      countLines(i, end + 2);
      i = end + 2;
      continue;
    }
    if (src.startsWith('#ifdef', i)) {
      if (ifdefLine !== 0) throw new ScriptError(line, `#ifdef already seen in line ${ifdefLine}`);
      ifdefLine = line;
      i += 6;
      while (i < n && /[ \t\n\r]/.test(src[i])) {
        if (src[i] === '\n') line++;
        i++;
      }
      const name = matchAt(/[a-zA-Z][a-zA-Z0-9_]+/y, src, i);
      if (name === null) throw new ScriptError(line, '#ifdef must be followed by name');
      i += name.length;
      if (!defines.has(name)) {
        const end = src.indexOf('#endif', i);
        if (end < 0) throw new ScriptError(line, `unterminated #ifdef in line ${ifdefLine}`);
        countLines(i, end);
        i = end + 6;
        ifdefLine = 0;
      }
      continue;
    }
    if (src.startsWith('#endif', i)) {
      if (ifdefLine === 0) throw new ScriptError(line, 'missing #ifdef for #endif');
      ifdefLine = 0;
      i += 6;
      continue;
    }
    if (c === '%' && src[i + 1] === '{') {
      const end = src.indexOf('}%', i + 2);
      if (end < 0) throw new ScriptError(line, 'unterminated %{ code }%');
      const at = line;
      countLines(i, end + 2);
      push('code', src.slice(i + 2, end).trim(), 0, at);
      i = end + 2;
      continue;
    }
    if (c === '"' || c === '`') {
      let k = i + 1;
      while (k < n && src[k] !== c) k += src[k] === '\\' ? 2 : 1;
      if (k >= n) throw new ScriptError(line, c === '"' ? 'unterminated string' : 'unterminated backquoted command');
      const at = line;
      countLines(i, k + 1);
      push(c === '"' ? 'string' : 'backquote', src.slice(i + 1, k), 0, at);
      i = k + 1;
      continue;
    }
    if (src.startsWith('...', i)) {
      push('ellipsis', '...');
      i += 3;
      continue;
    }
    // Longest match among the token patterns, as flex picks.
    let best: { kind: TokKind; text: string } | null = null;
    const consider = (kind: TokKind, text: string | null) => {
      if (text !== null && (best === null || text.length > best.text.length)) best = { kind, text };
    };
    consider('option', matchAt(RE_OPTION, src, i));
    consider('ipv4', matchAt(RE_IPV4, src, i));
    consider('hex', matchAt(RE_HEX, src, i));
    consider('float', matchAt(RE_FLOAT, src, i));
    consider('int', matchAt(RE_INT, src, i));
    consider('word', matchAt(RE_WORD, src, i));
    consider('word', matchAt(RE_GENERIC, src, i));
    for (const w of HYPHEN_WORDS) if (src.startsWith(w, i)) consider('word', w);
    const b = best as { kind: TokKind; text: string } | null;
    if (b !== null) {
      let value = 0;
      if (b.kind === 'int' || b.kind === 'float') value = Number(b.text);
      else if (b.kind === 'hex') value = parseInt(b.text.slice(2), 16);
      push(b.kind, b.kind === 'option' ? b.text.slice(2) : b.text, value);
      i += b.text.length;
      continue;
    }
    push('punct', c);
    i++;
  }
  if (ifdefLine !== 0) throw new ScriptError(line, `unterminated #ifdef in line ${ifdefLine}`);
  push('eof', '');
  return out;
}
