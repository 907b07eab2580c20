/**
 * The control protocol (docs/control.md): JSON lines over a UNIX stream
 * socket. A request is one line
 *   {"v":1,"id":<number|string>,"op":"<name>","args":{...}}
 * and its response one line
 *   {"v":1,"id":<same>,"ok":true,"result":...}
 *   {"v":1,"id":<same>,"ok":false,"error":{"code":"<CODE>","message":"..."}}
 * Codes are stable (CTL_CODES); messages are for people. Responses come in
 * request order on a connection. Pure functions; nothing here does I/O.
 */

export const CTL_VERSION = 1;
/** Longest request line accepted (bytes, without the newline). */
export const CTL_MAX_LINE = 64 * 1024;

export const CTL_CODES = {
  /** The line is not JSON. */
  PARSE_ERROR: 'PARSE_ERROR',
  /** JSON, but not a request object (missing or mistyped v/id/op/args). */
  BAD_REQUEST: 'BAD_REQUEST',
  /** A protocol version this server does not speak. */
  BAD_VERSION: 'BAD_VERSION',
  UNKNOWN_OP: 'UNKNOWN_OP',
  /** The op exists but its args are wrong (message says which). */
  BAD_ARGS: 'BAD_ARGS',
  /** The op is known but not available in this system (tcpdrop before TCP). */
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  /** Request line longer than CTL_MAX_LINE: the connection is closed after this answer. */
  LINE_TOO_LONG: 'LINE_TOO_LONG',
  /** sysctl(3) errors, by errno name. */
  ENOENT: 'ENOENT',
  EINVAL: 'EINVAL',
  EPERM: 'EPERM',
  /** tcpdrop: no such connection. */
  ESRCH: 'ESRCH',
  /** A CPU refused (errno name in the message). */
  CPU_ERROR: 'CPU_ERROR',
  /** The system is stopping. */
  SHUTDOWN: 'SHUTDOWN',
  INTERNAL: 'INTERNAL',
} as const;
export type CtlCode = (typeof CTL_CODES)[keyof typeof CTL_CODES];

/** An error with a stable code, as the response's error object. */
export class CtlError extends Error {
  readonly code: CtlCode;
  constructor(code: CtlCode, message: string) {
    super(message);
    this.code = code;
  }
}

export type CtlId = number | string | null;

export interface CtlRequest {
  v: number;
  id: CtlId;
  op: string;
  args: Record<string, unknown>;
}

export type CtlResponse =
  | { v: number; id: CtlId; ok: true; result: unknown }
  | { v: number; id: CtlId; ok: false; error: { code: CtlCode; message: string } };

/**
 * Parse one request line. Returns the request, or a CtlError together with
 * whatever id could be recovered (null otherwise) so the error can still be
 * matched to its request.
 */
export function parseRequest(line: string): { req: CtlRequest } | { err: CtlError; id: CtlId } {
  let j: unknown;
  try {
    j = JSON.parse(line);
  } catch (e) {
    return { err: new CtlError(CTL_CODES.PARSE_ERROR, `not JSON: ${(e as Error).message}`), id: null };
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) {
    return { err: new CtlError(CTL_CODES.BAD_REQUEST, 'a request is a JSON object {"v":1,"id":..,"op":..,"args":{..}}'), id: null };
  }
  const o = j as Record<string, unknown>;
  const id = typeof o.id === 'number' || typeof o.id === 'string' ? o.id : null;
  if (o.id === undefined || id === null || (typeof id === 'number' && !Number.isFinite(id))) {
    return { err: new CtlError(CTL_CODES.BAD_REQUEST, '"id" must be a number or a string'), id: null };
  }
  if (o.v !== CTL_VERSION) {
    return { err: new CtlError(CTL_CODES.BAD_VERSION, `protocol version ${JSON.stringify(o.v)} is not supported; this server speaks v ${CTL_VERSION}`), id };
  }
  if (typeof o.op !== 'string' || o.op === '') return { err: new CtlError(CTL_CODES.BAD_REQUEST, '"op" must be a non-empty string'), id };
  if (o.args !== undefined && (typeof o.args !== 'object' || o.args === null || Array.isArray(o.args))) {
    return { err: new CtlError(CTL_CODES.BAD_REQUEST, '"args", when given, must be an object'), id };
  }
  return { req: { v: CTL_VERSION, id, op: o.op, args: (o.args as Record<string, unknown> | undefined) ?? {} } };
}

export function okResponse(id: CtlId, result: unknown): CtlResponse {
  return { v: CTL_VERSION, id, ok: true, result };
}

export function errorResponse(id: CtlId, e: CtlError): CtlResponse {
  return { v: CTL_VERSION, id, ok: false, error: { code: e.code, message: e.message } };
}

// ------------------------------------------------------------ argument checks

/** An optional string argument. */
export function argString(args: Record<string, unknown>, name: string, dflt?: string): string | undefined {
  const v = args[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'string') throw new CtlError(CTL_CODES.BAD_ARGS, `"${name}" must be a string`);
  return v;
}

/** An optional boolean argument. */
export function argBool(args: Record<string, unknown>, name: string): boolean {
  const v = args[name];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new CtlError(CTL_CODES.BAD_ARGS, `"${name}" must be true or false`);
  return v;
}

/** An optional integer argument in [min, max]. */
export function argInt(args: Record<string, unknown>, name: string, min: number, max: number, dflt?: number): number | undefined {
  const v = args[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new CtlError(CTL_CODES.BAD_ARGS, `"${name}" must be an integer in ${min}..${max}`);
  return v;
}

/** Refuse arguments the op does not know (typos should not pass silently). */
export function argsOnly(args: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(args)) {
    if (!known.includes(k)) throw new CtlError(CTL_CODES.BAD_ARGS, `unknown argument "${k}"${known.length > 0 ? ` (known: ${known.join(', ')})` : ' (this op takes none)'}`);
  }
}
