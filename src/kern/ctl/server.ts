/**
 * The control socket of a running system: a UNIX stream socket, mode 0600
 * in a directory of mode 0700 (ctlDir), named slabnet-<name>-<pid>.sock, that
 * answers the JSON-lines protocol of protocol.ts with the ops of ops.ts.
 * The directory is the listing: listControlSockets() finds every system of
 * this user, dropping sockets whose process is gone.
 *
 * The server runs on the event loop of the thread that opened it (the main
 * thread): every op reads the arena or sends one small message, so serving
 * never disturbs the CPUs. Requests on one connection are answered in order.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, lstatSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { CTL_CODES, CTL_MAX_LINE, CtlError, errorResponse, okResponse, parseRequest, type CtlResponse } from './protocol.js';
import { CTL_OPS, type CtlIdentity } from './ops.js';
import type { CtlSystem } from './system.js';

/** Longest UNIX socket path Linux accepts (sun_path less the NUL). */
const SUN_PATH_MAX = 107;
const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/;
const SOCK_RE = /^slabnet-(.+)-(\d+)\.sock$/;

/**
 * The directory control sockets live in: $SLABNET_CTL_DIR, else
 * $XDG_RUNTIME_DIR/slabnet, else <tmpdir>/slabnet-<uid>.
 */
export function ctlDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLABNET_CTL_DIR) return env.SLABNET_CTL_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'slabnet');
  return join(tmpdir(), `slabnet-${process.getuid?.() ?? 'user'}`);
}

/**
 * Make the directory (mode 0700) if it is missing. Refuses one that is a
 * symbolic link or belongs to another user (someone could read the sockets).
 */
function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`control socket directory ${dir} is not a directory`);
  if (process.getuid !== undefined) {
    if (st.uid !== process.getuid()) throw new Error(`control socket directory ${dir} belongs to uid ${st.uid}, not to us`);
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface CtlSocketEntry {
  name: string;
  pid: number;
  path: string;
}

/** Every live control socket in `dir`, oldest pid first; sockets of dead processes are removed. */
export function listControlSockets(dir = ctlDir()): CtlSocketEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: CtlSocketEntry[] = [];
  for (const f of names) {
    const m = SOCK_RE.exec(f);
    if (m === null) continue;
    const pid = Number(m[2]);
    const path = join(dir, f);
    if (!alive(pid)) {
      try {
        unlinkSync(path);
      } catch {
        /* another lister removed it */
      }
      continue;
    }
    out.push({ name: m[1], pid, path });
  }
  return out.sort((a, b) => a.pid - b.pid || (a.name < b.name ? -1 : 1));
}

export interface ControlServerOptions {
  /** A name for this system (default "slabnet"); the socket is slabnet-<name>-<pid>.sock. */
  name?: string;
  /** Directory (default ctlDir()). */
  dir?: string;
}

/** One open control socket. */
export class ControlServer {
  readonly path: string;
  readonly name: string;
  private readonly server: Server;
  private readonly conns = new Set<Socket>();
  private readonly me: CtlIdentity;
  private closed = false;
  private readonly onExit = (): void => this.unlink();

  private constructor(private readonly sys: CtlSystem, name: string, path: string) {
    this.name = name;
    this.path = path;
    this.me = { name, pid: process.pid, started: Date.now(), argv: process.argv.slice(1) };
    this.server = createServer((c) => this.serve(c));
  }

  /** Open the socket and start answering. Throws on a bad name, a path too long or a bind failure. */
  static async open(sys: CtlSystem, o: ControlServerOptions = {}): Promise<ControlServer> {
    const name = o.name ?? 'slabnet';
    if (!NAME_RE.test(name)) throw new Error(`control socket name must be 1..32 of [A-Za-z0-9_.-], got ${JSON.stringify(name)}`);
    const dir = o.dir ?? ctlDir();
    ensureDir(dir);
    const path = join(dir, `slabnet-${name}-${process.pid}.sock`);
    if (Buffer.byteLength(path) > SUN_PATH_MAX) throw new Error(`control socket path too long for a UNIX socket (${Buffer.byteLength(path)} > ${SUN_PATH_MAX} bytes): ${path}; set SLABNET_CTL_DIR to a shorter directory`);
    try {
      unlinkSync(path); // a leftover of a process that had our pid
    } catch {
      /* none */
    }
    const s = new ControlServer(sys, name, path);
    await new Promise<void>((res, rej) => {
      s.server.once('error', rej);
      s.server.listen(path, () => {
        s.server.off('error', rej);
        res();
      });
    });
    chmodSync(path, 0o600);
    process.once('exit', s.onExit);
    // The socket must not keep a finished program alive.
    s.server.unref();
    return s;
  }

  /** Answer one request line. */
  async handleLine(line: string): Promise<CtlResponse> {
    const p = parseRequest(line);
    if ('err' in p) return errorResponse(p.id, p.err);
    const { req } = p;
    const op = Object.hasOwn(CTL_OPS, req.op) ? CTL_OPS[req.op] : undefined;
    if (op === undefined) return errorResponse(req.id, new CtlError(CTL_CODES.UNKNOWN_OP, `unknown op "${req.op}" (ops: ${Object.keys(CTL_OPS).sort().join(', ')})`));
    if (this.closed) return errorResponse(req.id, new CtlError(CTL_CODES.SHUTDOWN, 'the system is stopping'));
    try {
      return okResponse(req.id, await op(this.sys, req.args, this.me));
    } catch (e) {
      if (e instanceof CtlError) return errorResponse(req.id, e);
      return errorResponse(req.id, new CtlError(CTL_CODES.INTERNAL, (e as Error).message ?? String(e)));
    }
  }

  private serve(c: Socket): void {
    this.conns.add(c);
    c.setEncoding('utf8');
    let buf = '';
    let chain: Promise<void> = Promise.resolve();
    const answer = (line: string): void => {
      chain = chain.then(async () => {
        const r = await this.handleLine(line);
        if (!c.destroyed) c.write(JSON.stringify(r) + '\n');
      });
    };
    let refused = false;
    const refuse = (): void => {
      refused = true;
      buf = '';
      chain = chain.then(() => {
        c.end(JSON.stringify(errorResponse(null, new CtlError(CTL_CODES.LINE_TOO_LONG, `request line longer than ${CTL_MAX_LINE} bytes`))) + '\n');
      });
    };
    c.on('data', (d: string) => {
      if (refused) return;
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (Buffer.byteLength(line) > CTL_MAX_LINE) return refuse();
        if (line.trim() !== '') answer(line);
      }
      if (Buffer.byteLength(buf) > CTL_MAX_LINE) refuse();
    });
    c.on('error', () => c.destroy());
    c.on('close', () => this.conns.delete(c));
  }

  private unlink(): void {
    try {
      unlinkSync(this.path);
    } catch {
      /* gone already */
    }
  }

  /** Stop answering, close every connection and remove the socket file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    process.off('exit', this.onExit);
    for (const c of this.conns) c.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
    this.unlink();
  }
}
