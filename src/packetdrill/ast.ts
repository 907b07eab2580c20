/**
 * The parsed form of a packetdrill script: options, then events in script
 * order, each with its time spec and one action (packet, system call, shell
 * command or code block). Plain data; the parser builds it, the executor
 * reads it.
 */

export type TimeType = 'absolute' | 'relative' | 'any' | 'absolute_range' | 'relative_range';

export interface EventTime {
  type: TimeType;
  /** Start time in microseconds (relative to the previous event for the relative kinds). */
  usecs: number;
  /** End of a range, in microseconds; -1 when not a range. */
  endUsecs: number;
}

/** How the IP TOS byte of an outbound packet is checked (the dialect's tos_chk). */
export type TosCheck = 'none' | 'tos' | 'ecn' | 'ect01' | 'dscp' | 'dscp_ect01';

export interface IpInfo {
  tosCheck: TosCheck;
  tos: number;
  /** TTL to send / expect; -1: not given (inbound default, not checked outbound). */
  ttl: number;
}

export type TcpOption =
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: 'mss'; mss: number }
  | { kind: 'wscale'; shift: number }
  | { kind: 'sackOK' }
  | { kind: 'sack'; blocks: [number, number][] }
  | { kind: 'ts'; val: number; ecr: number }
  | { kind: 'fo'; cookie: Uint8Array }
  | { kind: 'generic'; code: number; data: Uint8Array };

export interface TcpSpec {
  srcPort: number;
  dstPort: number;
  /** Flag letters as written (".FSRPEWAU"). */
  flags: string;
  seq: number;
  len: number;
  /** `!` after the sequence numbers: absolute, not mapped through the ISN. */
  absSeq: boolean;
  /** `...(len)`: the sequence number is not checked. */
  ignoreSeq: boolean;
  ack: number;
  /** -1: `win` not given (outbound: not checked). */
  win: number;
  urg: number;
  /** null: `<...>`, options not checked. */
  options: TcpOption[] | null;
  /** TS val `...`. */
  ignoreTsVal: boolean;
  /** TS ecr N! */
  absTsEcr: boolean;
  /** UDP encapsulation ports (`/udp(a > b)`), both 0 when none. */
  udpSrc: number;
  udpDst: number;
}

export interface IcmpSpec {
  type: string;
  code: string | null;
  /** mtu N (fragmentation needed), -1 when absent. */
  mtu: number;
  echoId: number;
  /** The quoted datagram's protocol and, for TCP, its (script) sequence number. */
  echoedProto: 'tcp' | 'udp';
  echoedSeq: number;
  echoedLen: number;
}

export interface PacketSpec {
  direction: 'inbound' | 'outbound';
  ip: IpInfo;
  tcp: TcpSpec | null;
  icmp: IcmpSpec | null;
}

export type Expr =
  | { t: 'ellipsis' }
  | { t: 'int'; v: number; hex: boolean }
  | { t: 'word'; v: string }
  | { t: 'string'; v: string; ellipsis: boolean }
  | { t: 'list'; items: Expr[] }
  | { t: 'or'; lhs: Expr; rhs: Expr }
  /** `{name=value, ...}`: sockaddr, linger and the other structs of the dialect. */
  | { t: 'struct'; fields: Map<string, Expr> }
  /** htons(N) / htonl(N) / inet_addr("a.b.c.d"): kept as written, evaluated by the syscall layer. */
  | { t: 'call'; fn: string; arg: Expr }
  | { t: 'null' };

export interface SyscallSpec {
  name: string;
  args: Expr[];
  result: Expr;
  /** Expected errno name and its strerror note, when given. */
  errno: { name: string; note: string | null } | null;
  note: string | null;
  /** `...TIME name(...)`: a blocking call that returns at TIME (usecs); -1 otherwise. */
  endUsecs: number;
}

export type Action =
  | { kind: 'packet'; packet: PacketSpec }
  | { kind: 'syscall'; syscall: SyscallSpec }
  | { kind: 'command'; command: string }
  | { kind: 'code'; code: string };

export interface PdEvent {
  line: number;
  time: EventTime;
  action: Action;
}

export interface ScriptOption {
  name: string;
  value: string | null;
  line: number;
}

export interface Script {
  path: string;
  options: ScriptOption[];
  events: PdEvent[];
  /** Untimed backquoted commands before the first and after the last event. */
  initCommand: string | null;
  cleanupCommand: string | null;
}
