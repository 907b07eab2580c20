/**
 * Parse result codes shared by every wire-format parser. A parser returns
 * WIRE_OK or one of these codes, never throws: the protocol layer counts the
 * code as a drop reason (netstat -s) and frees the packet.
 */
export const WIRE_OK = 0;
/** Fewer bytes than the fixed header. */
export const WIRE_TRUNCATED = 1;
/** IP version field is not 4. */
export const WIRE_BAD_VERSION = 2;
/** Header length field below the minimum or beyond the data. */
export const WIRE_BAD_HLEN = 3;
/** A length field (total length, UDP length) disagrees with the data. */
export const WIRE_BAD_LEN = 4;
/** Checksum verification failed. */
export const WIRE_BAD_CKSUM = 5;
/** IP options whose lengths overrun the header. */
export const WIRE_BAD_OPTIONS = 6;
/** ARP hardware/protocol types or sizes we do not speak. */
export const WIRE_BAD_FORMAT = 7;
/** A fragment offset + length beyond 65535, or a bad flag combination. */
export const WIRE_BAD_FRAGMENT = 8;

export const WIRE_CODE_NAMES: readonly string[] = [
  'ok',
  'truncated',
  'bad version',
  'bad header length',
  'bad length',
  'bad checksum',
  'bad options',
  'bad format',
  'bad fragment',
];

/** The name of a parse result code, for messages and counters. */
export function wireCodeName(code: number): string {
  return WIRE_CODE_NAMES[code] ?? `code ${code}`;
}
