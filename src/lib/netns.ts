/**
 * Network namespaces for tests and benchmarks with real Linux peers. The
 * caller creates its own namespace, moves the kernel side of its TAP into
 * it (or joins two namespaces by a veth pair) and gives it an address
 * there; it only ever sends to addresses inside those namespaces and
 * deletes them at the end. Nothing is routed in the host namespace. Root
 * only; every command is synchronous (setup and teardown, not traffic).
 */
import { spawnSync } from 'node:child_process';

function run(args: string[]): string {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr || r.error}`);
  return r.stdout;
}

export class NetNs {
  readonly name: string;
  private constructor(name: string) {
    this.name = name;
  }

  /** Create a namespace named after the test and this process, with lo up and IPv6 off (quiet links). */
  static create(tag: string): NetNs {
    const name = `slabnet-${tag}-${process.pid}`;
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    run(['ip', 'netns', 'add', name]);
    const ns = new NetNs(name);
    ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    ns.exec(['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    ns.exec(['sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
    return ns;
  }

  /** Move an interface of the host namespace (the kernel side of our TAP) into this one, give it an address, bring it up. */
  adopt(ifname: string, cidr: string, mtu = 1500): void {
    run(['ip', 'link', 'set', ifname, 'netns', this.name]);
    this.exec(['ip', 'link', 'set', ifname, 'mtu', String(mtu)]);
    this.exec(['ip', 'addr', 'add', cidr, 'dev', ifname]);
    this.exec(['ip', 'link', 'set', ifname, 'up']);
  }

  /** Run a command inside the namespace and return its stdout (throws on failure). */
  exec(args: string[]): string {
    return run(['ip', 'netns', 'exec', this.name, ...args]);
  }

  /** argv that runs `args` inside the namespace, for spawn(). */
  argv(args: string[]): string[] {
    return ['ip', 'netns', 'exec', this.name, ...args];
  }

  /**
   * A veth pair between this namespace and `other`: `name`a here with
   * address `cidr`, `name`b there with `otherCidr`, both up with `mtu`.
   * The pair goes away with either namespace.
   */
  veth(other: NetNs, name: string, cidr: string, otherCidr: string, mtu = 1500): void {
    const a = `${name}a`;
    const b = `${name}b`;
    run(['ip', 'link', 'add', a, 'netns', this.name, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', b, 'netns', other.name, 'mtu', String(mtu)]);
    this.exec(['ip', 'addr', 'add', cidr, 'dev', a]);
    this.exec(['ip', 'link', 'set', a, 'up']);
    other.exec(['ip', 'addr', 'add', otherCidr, 'dev', b]);
    other.exec(['ip', 'link', 'set', b, 'up']);
  }

  destroy(): void {
    spawnSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
  }
}
