/**
 * TCP connection states (tcp_fsm.h), FreeBSD's numbering, which TCP_INFO's
 * tcpi_state and netstat report, and the flags tcp_output sends in each.
 */
import { TH_ACK, TH_FIN, TH_RST, TH_SYN } from '../wire/tcp.js';

export const TCPS_CLOSED = 0;
export const TCPS_LISTEN = 1;
export const TCPS_SYN_SENT = 2;
export const TCPS_SYN_RECEIVED = 3;
export const TCPS_ESTABLISHED = 4;
export const TCPS_CLOSE_WAIT = 5;
export const TCPS_FIN_WAIT_1 = 6;
export const TCPS_CLOSING = 7;
export const TCPS_LAST_ACK = 8;
export const TCPS_FIN_WAIT_2 = 9;
export const TCPS_TIME_WAIT = 10;
export const TCP_NSTATES = 11;

export const TCP_STATE_NAMES: readonly string[] = [
  'CLOSED',
  'LISTEN',
  'SYN_SENT',
  'SYN_RCVD',
  'ESTABLISHED',
  'CLOSE_WAIT',
  'FIN_WAIT_1',
  'CLOSING',
  'LAST_ACK',
  'FIN_WAIT_2',
  'TIME_WAIT',
];

/** We have received the peer's SYN (states from SYN_RECEIVED on). */
export function TCPS_HAVERCVDSYN(s: number): boolean {
  return s >= TCPS_SYN_RECEIVED;
}
/** The connection is synchronized (ESTABLISHED and later). */
export function TCPS_HAVEESTABLISHED(s: number): boolean {
  return s >= TCPS_ESTABLISHED;
}
/** The peer's FIN has been received. */
export function TCPS_HAVERCVDFIN(s: number): boolean {
  return s === TCPS_CLOSE_WAIT || s === TCPS_CLOSING || s === TCPS_LAST_ACK || s === TCPS_TIME_WAIT;
}

/** tcp_outflags: the flags of a segment sent in each state. */
export const tcp_outflags: readonly number[] = [
  TH_RST | TH_ACK, // CLOSED
  0, // LISTEN
  TH_SYN, // SYN_SENT
  TH_SYN | TH_ACK, // SYN_RECEIVED
  TH_ACK, // ESTABLISHED
  TH_ACK, // CLOSE_WAIT
  TH_FIN | TH_ACK, // FIN_WAIT_1
  TH_FIN | TH_ACK, // CLOSING
  TH_FIN | TH_ACK, // LAST_ACK
  TH_ACK, // FIN_WAIT_2
  TH_ACK, // TIME_WAIT
];
