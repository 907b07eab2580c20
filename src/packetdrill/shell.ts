/**
 * Backquoted shell commands, done natively: nothing is handed to a shell.
 * A command line is split into a pipeline at '|'; each stage is one of the
 * tools the suite uses, run on the stack under test:
 *   sysctl [-n] name | sysctl -w name=value ...   (the run's sysctl tree)
 *   sockstat [-4] [-P tcp] [-p port[,port]] [-s] [-c] [-l]  (the TCP's connections)
 *   grep [-c] [-v] pattern                          (a fixed-string/simple-regex filter)
 *   tcpdrop -s STATE | tcpdrop -a | tcpdrop laddr lport faddr fport
 *   netstat -s [-p tcp]                             (the TCP's counters, FreeBSD's wording)
 *   true, false, echo
 * The pipeline's status is its last stage's (0 = success), as sh reports it.
 */
import { SysctlError } from '../kern/sysctl/sysctl.js';
import { ipFromString, ipToString } from '../wire/ipv4.js';
import type { RunState } from './state.js';
import type { Endpoint, SockstatRow } from './tcpapi.js';

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Split a command line into words (single and double quotes group, backslash escapes). */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q !== null) {
      if (c === q) q = null;
      else cur += c;
      continue;
    }
    if (c === "'" || c === '"') {
      q = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** Split at '|' outside quotes. */
function splitPipeline(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q: string | null = null;
  for (const c of s) {
    if (q !== null) {
      if (c === q) q = null;
    } else if (c === "'" || c === '"') q = c;
    else if (c === '|') {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

type Tool = (st: RunState, args: string[], stdin: string) => CommandResult;

const res = (status: number, stdout = '', stderr = ''): CommandResult => ({ status, stdout, stderr });

function sysctl(st: RunState, args: string[]): CommandResult {
  let valuesOnly = false;
  const names: string[] = [];
  for (const a of args) {
    if (a === '-w') continue; // name=value writes with or without it
    else if (a === '-n') valuesOnly = true;
    else if (a.startsWith('-')) return res(1, '', `sysctl: option ${a} is not supported here`);
    else names.push(a);
  }
  let out = '';
  let errs = '';
  let status = 0;
  for (const arg of names) {
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    try {
      const old = st.sysctl.get(name);
      if (eq >= 0) {
        const raw = arg.slice(eq + 1);
        const v = typeof old === 'number' ? Number(raw) : raw;
        if (typeof old === 'number' && (!/^-?(0x[0-9a-fA-F]+|\d+)$/.test(raw) || !Number.isFinite(v))) {
          errs += `sysctl: invalid integer '${raw}'\n`;
          status = 1;
          continue;
        }
        st.sysctl.set(name, v);
        const now = st.sysctl.get(name);
        out += valuesOnly ? `${now}\n` : `${name}: ${old} -> ${now}\n`;
      } else out += valuesOnly ? `${old}\n` : `${name}: ${old}\n`;
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      errs += e instanceof SysctlError && e.errno === 'ENOENT' ? `sysctl: unknown oid '${name}'\n` : `sysctl: ${name}: ${e.message}\n`;
      status = 1;
    }
  }
  return res(status, out, errs);
}

const ep = (e: Endpoint | null) => (e === null || (e.addr === 0 && e.port === 0) ? '*:*' : `${e.addr === 0 ? '*' : ipToString(e.addr)}:${e.port === 0 ? '*' : e.port}`);

/** FreeBSD sockstat(1) lines for the TCP connections (-4 -P tcp are the only family/protocol there are). */
function sockstat(st: RunState, args: string[]): CommandResult {
  let ports: number[] | null = null;
  let states = false;
  let connected = false;
  let listening = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-4' || a === '-u') continue;
    if (a === '-P') {
      const p = args[++i];
      if (p !== 'tcp') return res(0, header(false));
    } else if (a === '-p') ports = (args[++i] ?? '').split(',').map(Number);
    else if (a === '-s') states = true;
    else if (a === '-c') connected = true;
    else if (a === '-l') listening = true;
    else return res(1, '', `sockstat: option ${a} is not supported here`);
  }
  const rows = st.tcp === null ? [] : st.tcp.sockstat();
  const keep = (r: SockstatRow) => {
    if (ports !== null && !ports.includes(r.local.port) && !(r.foreign !== null && ports.includes(r.foreign.port))) return false;
    if (connected && r.state === 'LISTEN') return false;
    if (listening && r.state !== 'LISTEN') return false;
    return true;
  };
  let out = header(states);
  for (const r of rows.filter(keep)) {
    const who = r.hasSocket ? 'root     packetdril 1     3 ' : '?        ?          ?     ? ';
    let line = `${who} tcp4   ${ep(r.local).padEnd(21)} ${ep(r.foreign).padEnd(21)}`;
    if (states) line += ` ${r.state}`;
    out += line + '\n';
  }
  return res(0, out);
}

function header(states: boolean): string {
  return 'USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS      ' + (states ? ' PATH STATE   CONN STATE' : '') + '\n';
}

/** grep: fixed strings, with ^ and $ anchors and . as any character (what the suite's patterns need). */
function grep(_st: RunState, args: string[], stdin: string): CommandResult {
  let count = false;
  let invert = false;
  let pattern: string | null = null;
  for (const a of args) {
    if (a === '-c') count = true;
    else if (a === '-v') invert = true;
    else if (a.startsWith('-') && pattern === null && a.length > 1) return res(2, '', `grep: option ${a} is not supported here`);
    else if (pattern === null) pattern = a;
    else return res(2, '', 'grep: reading files is not supported here');
  }
  if (pattern === null) return res(2, '', 'usage: grep [-cv] pattern');
  const re = new RegExp(pattern.replace(/[\\+*?()[\]{}|]/g, (c) => `\\${c}`));
  const lines = stdin.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const hits = lines.filter((l) => re.test(l) !== invert);
  if (count) return res(hits.length > 0 ? 0 : 1, `${hits.length}\n`);
  return res(hits.length > 0 ? 0 : 1, hits.map((l) => l + '\n').join(''));
}

function tcpdrop(st: RunState, args: string[]): CommandResult {
  if (st.tcp === null) return res(1, '', 'tcpdrop: no TCP in this stack');
  const tcp = st.tcp;
  const dropRows = (pred: (r: SockstatRow) => boolean) => {
    let out = '';
    let status = 0;
    for (const r of tcp.sockstat().filter((x) => x.foreign !== null && x.state !== 'LISTEN' && pred(x))) {
      const e = tcp.drop(r.local, r.foreign!);
      if (e === 0) out += `${ipToString(r.local.addr)} ${r.local.port} ${ipToString(r.foreign!.addr)} ${r.foreign!.port}: dropped\n`;
      else status = 1;
    }
    return res(status, out);
  };
  if (args[0] === '-a') return dropRows(() => true);
  if (args[0] === '-s' && args.length === 2) return dropRows((r) => r.state === args[1]);
  if (args.length === 4 || args.length === 2) {
    const parse = (a: string, p: string): Endpoint | null => {
      const addr = ipFromString(a);
      const port = Number(p);
      return addr < 0 || !Number.isInteger(port) ? null : { addr: addr >>> 0, port };
    };
    const [l, f] =
      args.length === 4
        ? [parse(args[0], args[1]), parse(args[2], args[3])]
        : [parse(...(args[0].split(/[:.](?=\d+$)/) as [string, string])), parse(...(args[1].split(/[:.](?=\d+$)/) as [string, string]))];
    if (l === null || f === null) return res(1, '', 'tcpdrop: bad address');
    const e = tcp.drop(l, f);
    return e === 0 ? res(0, `${args.join(' ')}: dropped\n`) : res(1, '', `tcpdrop: ${args.join(' ')}: No such process`);
  }
  return res(1, '', 'usage: tcpdrop [-a | -s state | laddr lport faddr fport]');
}

/** netstat -s [-p tcp]: the tcp: counters (the only protocol the runner's stack reports). */
function netstat(st: RunState, args: string[]): CommandResult {
  if (!args.includes('-s')) return res(1, '', 'usage: netstat -s [-p tcp]');
  const p = args.indexOf('-p');
  if (p >= 0 && args[p + 1] !== 'tcp') return res(1, '', `netstat: protocol ${args[p + 1] ?? ''} is not reported here`);
  if (st.tcp === null || st.tcp.netstat === undefined) return res(1, '', 'netstat: no TCP counters in this stack');
  return res(0, st.tcp.netstat() + '\n');
}

const TOOLS: Record<string, Tool> = {
  netstat,
  sysctl,
  sockstat,
  grep,
  tcpdrop,
  true: () => res(0),
  false: () => res(1),
  echo: (_st, args) => res(0, args.join(' ') + '\n'),
};

/** Run one backquoted command line. */
export function runCommand(st: RunState, line: string): CommandResult {
  let stdin = '';
  let last: CommandResult = res(0);
  let stderr = '';
  for (const stage of splitPipeline(line)) {
    const words = splitWords(stage.trim());
    if (words.length === 0) return res(2, '', 'syntax error: empty pipeline stage');
    const tool = TOOLS[words[0]];
    if (tool === undefined) return res(127, '', `${words[0]}: not a command this runner provides (it never runs a shell)`);
    last = tool(st, words.slice(1), stdin);
    stderr += last.stderr;
    stdin = last.stdout;
  }
  return { status: last.status, stdout: last.stdout, stderr };
}
