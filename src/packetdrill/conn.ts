/**
 * The socket under test as packetdrill models it (run_packet.c's struct
 * socket): its state in the handshake, script and live endpoints, the
 * script and live initial sequence numbers both ways, and the TS val map.
 * Sequence numbers move between script and live space exactly as the
 * dialect defines (socket.h offsets): for SYNs the local offset is
 * live ISN - script ISN and the remote offset 0; for other segments the
 * offsets are the live ISNs themselves.
 */
import type { Endpoint } from './tcpapi.js';

export type PdConnState =
  | 'new'
  | 'listening'
  | 'passive_packet_received'
  | 'passive_synack_sent'
  | 'passive_synack_acked'
  | 'active_connecting'
  | 'active_syn_sent'
  | 'active_syn_acked';

export class PdConn {
  state: PdConnState = 'new';
  /** Live endpoints (the stack's side is local). */
  local: Endpoint = { addr: 0, port: 0 };
  remote: Endpoint = { addr: 0, port: 0 };
  scriptLocalIsn = 0;
  liveLocalIsn = 0;
  /** The remote ISN: the script's own value, used live as is. */
  remoteIsn = 0;
  /** Script fd once accept()/socket() named it, -1 before. */
  scriptFd = -1;
  /** Script TS val -> live TS val, for the ecr of inbound packets. */
  readonly tsValMap = new Map<number, number>();
  firstTs: { script: number; actual: number } | null = null;

  /** Offset from script to live local sequence space. */
  localScriptToLive(isSyn: boolean): number {
    return isSyn ? (this.liveLocalIsn - this.scriptLocalIsn) >>> 0 : this.liveLocalIsn;
  }
  /** Offset from script to live remote sequence space. */
  remoteScriptToLive(isSyn: boolean): number {
    return isSyn ? 0 : this.remoteIsn;
  }
}

export const u32 = (x: number): number => x >>> 0;
