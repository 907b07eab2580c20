/**
 * The protocol switch (struct protosw + pr_usrreqs) and the socket request
 * commands. Every user request is a message to the CPU that owns the PCB
 * (DragonFly's so_pru_* -> netmsg); the CPU looks the protocol up here and
 * calls its handler with the message. Handlers see only the message (early
 * copy-in, late copy-out): never the caller's memory.
 *
 * UDP and TCP plug in by calling registerProtocol() with their own table.
 */
import { ArgumentError } from '../errors.js';
import type { ProtocolThread } from '../lwkt/protothread.js';

/** Request commands (message numbers 200..219 belong to the socket layer). */
export const PRU_ATTACH = 200;
export const PRU_DETACH = 201;
export const PRU_BIND = 202;
export const PRU_CONNECT = 203;
export const PRU_CONNECT2 = 204;
export const PRU_LISTEN = 205;
export const PRU_ACCEPT = 206;
export const PRU_SEND = 207;
export const PRU_SHUTDOWN = 208;
export const PRU_CTLOUTPUT = 209;
export const PRU_SENDOOB = 210;

/** Message argument slots of socket requests. */
export const A_PROTO = 0; // protocol number (protosw key)
export const A_PCB = 1; // PCB id on the owning CPU
export const A_SO = 2; // socket record handle
export const A_X = 3; // request-specific: chain, peer PCB, option name...
export const A_Y = 4;
export const A_Z = 5;

export const SOPT_GET = 0;
export const SOPT_SET = 1;

/** A request handler of a protocol: the errno, or EJUSTRETURN when it replies later. */
export type PruHandler = (td: ProtocolThread, msg: number) => number;

export interface ProtoSw {
  /** pr_type (SOCK_DGRAM, SOCK_STREAM...) and pr_protocol. */
  type: number;
  protocol: number;
  name: string;
  attach: PruHandler;
  detach: PruHandler;
  bind?: PruHandler;
  connect?: PruHandler;
  connect2?: PruHandler;
  listen?: PruHandler;
  accept?: PruHandler;
  send?: PruHandler;
  sendoob?: PruHandler;
  shutdown?: PruHandler;
  /** pr_ctloutput: the option value is in the message payload. */
  ctloutput?: PruHandler;
  /** Called by the CPU's shutdown hook: drop every PCB of this protocol on that CPU. */
  drain?: (td: ProtocolThread) => void;
}

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;

const protocols = new Map<number, ProtoSw>();

/** Register a protocol in this thread's switch (each CPU does it from a handler module). */
export function registerProtocol(p: ProtoSw): void {
  const have = protocols.get(p.protocol);
  if (have !== undefined && have !== p) throw new ArgumentError(`protocol ${p.protocol} is already "${have.name}"`);
  protocols.set(p.protocol, p);
}

/** pffindproto: the protocol for a number, or undefined. */
export function findProtocol(protocol: number): ProtoSw | undefined {
  return protocols.get(protocol);
}

/** Every protocol registered in this thread. */
export function allProtocols(): ProtoSw[] {
  return [...protocols.values()];
}
