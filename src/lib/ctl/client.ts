/**
 * A client of the control socket (src/kern/ctl/server.ts): find the running
 * systems of this user, pick one (by name or pid), and send requests.
 */
import { connect, type Socket } from 'node:net';
import { CTL_VERSION, type CtlCode } from '../../kern/ctl/protocol.js';
import { ctlDir, listControlSockets, type CtlSocketEntry } from '../../kern/ctl/server.js';

export { ctlDir, listControlSockets, type CtlSocketEntry };

/** The server answered ok: false. */
export class CtlRemoteError extends Error {
  readonly code: CtlCode;
  constructor(code: CtlCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** No answer in time: the system is busy or stuck. */
export class CtlTimeoutError extends Error {
  constructor(op: string, ms: number) {
    super(`no answer to ${op} within ${ms / 1000} s (is the system's main thread busy or stuck?)`);
  }
}

/** Choosing a system failed: none running, or several and no -N. */
export class CtlPickError extends Error {
  constructor(message: string) {
    super(message);
  }
}

/**
 * The system to attach to: the one whose name or pid is `which`, or the only
 * one running when `which` is undefined. Throws CtlPickError saying which
 * systems exist otherwise.
 */
export function pickSystem(which: string | undefined, dir = ctlDir()): CtlSocketEntry {
  const all = listControlSockets(dir);
  const list = (xs: CtlSocketEntry[]): string => xs.map((s) => `  ${s.name} (pid ${s.pid})`).join('\n');
  if (all.length === 0) throw new CtlPickError(`no running slabnet system (no control socket in ${dir}); start one with \`slabnet demo\`, or use --local for a demonstration on a fresh arena`);
  if (which === undefined) {
    if (all.length === 1) return all[0];
    throw new CtlPickError(`${all.length} slabnet systems are running; say which with -N name|pid:\n${list(all)}`);
  }
  const byPid = /^\d+$/.test(which) ? all.filter((s) => s.pid === Number(which)) : [];
  const matches = byPid.length > 0 ? byPid : all.filter((s) => s.name === which);
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) throw new CtlPickError(`no slabnet system named or with pid ${which}; running:\n${list(all)}`);
  if (byPid.length > 0) throw new CtlPickError(`process ${which} runs ${matches.length} systems; give the name:\n${list(matches)}`);
  throw new CtlPickError(`${matches.length} systems are named ${which}; give the pid:\n${list(matches)}`);
}

/** A connection to one control socket; requests may overlap (answers come in order). */
export class CtlClient {
  private readonly sock: Socket;
  private buf = '';
  private nextId = 1;
  private readonly waiting = new Map<number, { res: (v: unknown) => void; rej: (e: Error) => void }>();
  private failure: Error | null = null;
  /** Milliseconds a request may wait for its answer (0: forever). */
  timeoutMs = 0;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    const fail = (e: Error): void => {
      this.failure ??= e;
      for (const w of this.waiting.values()) w.rej(this.failure);
      this.waiting.clear();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('control socket closed by the system (it stopped?)')));
  }

  static connect(path: string): Promise<CtlClient> {
    return new Promise((res, rej) => {
      const s = connect(path);
      s.once('connect', () => {
        s.off('error', rej);
        res(new CtlClient(s));
      });
      s.once('error', rej);
    });
  }

  private onData(d: string): void {
    this.buf += d;
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let r: { id: unknown; ok: boolean; result?: unknown; error?: { code: CtlCode; message: string } };
      try {
        r = JSON.parse(line);
      } catch {
        continue;
      }
      const w = typeof r.id === 'number' ? this.waiting.get(r.id) : undefined;
      if (w === undefined) continue;
      this.waiting.delete(r.id as number);
      if (r.ok) w.res(r.result);
      else w.rej(new CtlRemoteError(r.error?.code ?? 'INTERNAL', r.error?.message ?? 'error'));
    }
  }

  /** Send one request and await its result (CtlRemoteError when the server says ok: false). */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((res, rej) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => clearTimeout(timer);
      this.waiting.set(id, {
        res: (v) => (done(), res(v as T)),
        rej: (e) => (done(), rej(e)),
      });
      if (this.timeoutMs > 0) {
        timer = setTimeout(() => {
          this.waiting.delete(id);
          rej(new CtlTimeoutError(op, this.timeoutMs));
        }, this.timeoutMs);
      }
      this.sock.write(JSON.stringify({ v: CTL_VERSION, id, op, args }) + '\n');
    });
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }
}

/** Connect to the system `which` names (see pickSystem). */
export async function attach(which: string | undefined, dir = ctlDir()): Promise<{ entry: CtlSocketEntry; client: CtlClient }> {
  const entry = pickSystem(which, dir);
  return { entry, client: await CtlClient.connect(entry.path) };
}
