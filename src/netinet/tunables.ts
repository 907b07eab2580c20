/**
 * The stack's limits and tunables as arena-backed sysctls: one shared Int32
 * word per name (src/kern/sysctl/tunables.ts), so a value set in any thread
 * (`slabnet sysctl`, a test, a CPU) is what every CPU's stack instance reads
 * on its next access. Each CPU binds its stacks' config fields to the words
 * (bindStackTunables) and registers the nodes in its own sysctl tree; the
 * main thread registers the same nodes in its tree (registerNetSysctls).
 *
 * Reading a bound field is one Atomics.load; no lock anywhere.
 */
import type { Arena } from '../vm/arena.js';
import { tunableIndex } from '../kern/sysctl/tunables.js';
import { Sysctl, SysctlError } from '../kern/sysctl/sysctl.js';
import { IPDEFTTL } from '../wire/ipv4.js';
import { ARP_DEFAULTS } from './if_ether.js';
import { ICMP_DEFAULTS } from './ip_icmp.js';
import { REASS_DEFAULTS } from './ip_reass.js';
import { UDP_DEFAULTS } from './udp_usrreq.js';
import { PMTU_EXPIRE_DEFAULT } from './hostcache.js';
import type { Stack } from './stack.js';
import type { Ifnet } from '../net/if.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { mbufSysctlNodes } from '../kern/mbuf/sysctl.js';
import { registerSocketSysctls } from '../kern/socket/sysctl.js';
import { registerMpSysctls } from '../kern/lwkt/sysctl.js';

type Section = 'ip' | 'arp' | 'reass' | 'icmp' | 'udp';

interface NetTunable {
  name: string;
  section: Section;
  key: string;
  description: string;
  initial: number;
  bool: boolean;
  min: number;
  max: number;
}

const t = (name: string, section: Section, key: string, description: string, initial: number | boolean, min = 0, max = 0x7fffffff): NetTunable => ({
  name,
  section,
  key,
  description,
  initial: Number(initial),
  bool: typeof initial === 'boolean',
  min,
  max: typeof initial === 'boolean' ? 1 : max,
});

/** Every tunable of the stack (FreeBSD's names). */
export const NET_TUNABLES: readonly NetTunable[] = [
  t('net.inet.ip.ttl', 'ip', 'ttl', 'Maximum TTL on IP packets', IPDEFTTL, 1, 255),
  t('net.inet.ip.forwarding', 'ip', 'forwarding', 'Enable IP forwarding between interfaces', false),
  t('net.inet.ip.pmtu_expire', 'ip', 'pmtuExpire', 'Lifetime of a learned path MTU (seconds)', PMTU_EXPIRE_DEFAULT, 1),
  t('net.inet.ip.maxfragpackets', 'reass', 'maxFragPackets', 'Maximum number of IPv4 fragment reassembly queue entries', REASS_DEFAULTS.maxFragPackets),
  t('net.inet.ip.maxfragsperpacket', 'reass', 'maxFragsPerPacket', 'Maximum number of IPv4 fragments allowed per packet', REASS_DEFAULTS.maxFragsPerPacket),
  t('net.inet.ip.maxfragbytes', 'reass', 'maxFragBytes', 'Maximum bytes held in IPv4 fragment queues', REASS_DEFAULTS.maxFragBytes),
  t('net.inet.ip.fragttl', 'reass', 'fragTtlMs', 'IP fragment life time on reassembly queue (ms)', REASS_DEFAULTS.fragTtlMs, 1),
  t('net.link.ether.inet.max_age', 'arp', 'maxAgeMs', 'ARP entry lifetime (ms)', ARP_DEFAULTS.maxAgeMs, 1),
  t('net.link.ether.inet.maxtries', 'arp', 'maxTries', 'ARP resolution attempts before returning error', ARP_DEFAULTS.maxTries, 1),
  t('net.link.ether.inet.maxhold', 'arp', 'maxHold', 'Number of packets to hold per ARP entry', ARP_DEFAULTS.maxHold),
  t('net.link.ether.inet.max_entries', 'arp', 'maxEntries', 'Maximum number of ARP entries per CPU', ARP_DEFAULTS.maxEntries),
  t('net.inet.icmp.icmplim', 'icmp', 'icmplim', 'Maximum number of ICMP responses per second', ICMP_DEFAULTS.icmplim),
  t('net.inet.icmp.bmcastecho', 'icmp', 'bmcastecho', 'Reply to broadcast echo requests', ICMP_DEFAULTS.bmcastecho),
  t('net.inet.icmp.quotelen', 'icmp', 'quotelen', 'Number of bytes from original packet to quote in ICMP reply', ICMP_DEFAULTS.quotelen, 8, 1472),
  t('net.inet.udp.recvspace', 'udp', 'recvspace', 'Maximum space for incoming UDP datagrams', UDP_DEFAULTS.recvspace, 1),
  t('net.inet.udp.maxdgram', 'udp', 'maxdgram', 'Maximum outgoing UDP datagram size', UDP_DEFAULTS.maxdgram, 0, 65507),
  t('net.inet.udp.checksum', 'udp', 'checksum', 'compute udp checksum', UDP_DEFAULTS.checksum),
  t('net.inet.ip.portrange.first', 'udp', 'portFirst', 'First ephemeral port', UDP_DEFAULTS.portFirst, 1024, 65535),
  t('net.inet.ip.portrange.last', 'udp', 'portLast', 'Last ephemeral port', UDP_DEFAULTS.portLast, 1024, 65535),
  t('net.inet.ip.portrange.hifirst', 'udp', 'portHiFirst', 'First port of IP_PORTRANGE_HIGH', UDP_DEFAULTS.portHiFirst, 1024, 65535),
  t('net.inet.ip.portrange.hilast', 'udp', 'portHiLast', 'Last port of IP_PORTRANGE_HIGH', UDP_DEFAULTS.portHiLast, 1024, 65535),
  t('net.inet.ip.portrange.lowfirst', 'udp', 'portLowFirst', 'First port of IP_PORTRANGE_LOW', UDP_DEFAULTS.portLowFirst, 1, 1023),
  t('net.inet.ip.portrange.lowlast', 'udp', 'portLowLast', 'Last port of IP_PORTRANGE_LOW', UDP_DEFAULTS.portLowLast, 1, 1023),
  t('net.inet.ip.portrange.randomized', 'udp', 'portRandomized', 'Enable random port allocation', UDP_DEFAULTS.portRandomized),
];

/** MTU of the machine's in-memory link interfaces (every host, every CPU). */
export const LINK_MTU: NetTunable = t('net.link.xl.mtu', 'ip', 'mtu', 'MTU of the in-memory link interfaces', 1500, 68, 65535);

/** Register every net tunable as a node of `sysctl` (skipping names already there). */
export function registerNetSysctls(sysctl: Sysctl, arena: Arena): void {
  const i32 = arena.i32;
  for (const x of [...NET_TUNABLES, LINK_MTU]) {
    const idx = tunableIndex(arena, x.name, x.initial);
    try {
      sysctl.registerNode({
        name: x.name,
        type: 'int',
        description: x.description,
        min: x.min,
        max: x.max,
        get: () => Atomics.load(i32, idx),
        set: (v) => void Atomics.store(i32, idx, v as number),
      });
    } catch (e) {
      if (!(e instanceof SysctlError)) throw e;
    }
  }
}

function bindField(o: object, key: string, i32: Int32Array, idx: number, bool: boolean): void {
  Object.defineProperty(o, key, {
    configurable: true,
    enumerable: true,
    get: bool ? () => Atomics.load(i32, idx) !== 0 : () => Atomics.load(i32, idx),
    set: (v: number | boolean) => void Atomics.store(i32, idx, Number(v)),
  });
}

/** Make a stack's config fields (and its interfaces' MTU, if given) read the shared words. */
export function bindStackTunables(stack: Stack, arena: Arena, ifs: Ifnet[] = []): void {
  const objs: Record<Section, object> = { ip: stack.cfg, arp: stack.arp.cfg, reass: stack.reass.cfg, icmp: stack.icmp.cfg, udp: stack.udp.cfg };
  for (const x of NET_TUNABLES) bindField(objs[x.section], x.key, arena.i32, tunableIndex(arena, x.name, x.initial), x.bool);
  const mtu = tunableIndex(arena, LINK_MTU.name, LINK_MTU.initial);
  for (const ifp of ifs) bindField(ifp, 'mtu', arena.i32, mtu, false);
}

/**
 * Every layer's limits and tunables on one tree, so that `sysctl -a` shows the
 * whole stack: mbuf limits and stress knobs (kern.ipc.nmbclusters ...),
 * kern.ipc.maxsockbuf, kern.mp.spin_us / idle_block_us, and the net.* tunables.
 * Names already on the tree are left alone. Does not sleep.
 */
export function registerStackSysctls(sysctl: Sysctl, arena: Arena, mb: Mbufs): void {
  for (const node of mbufSysctlNodes(mb)) if (!sysctl.has(node.name)) sysctl.registerNode(node);
  registerSocketSysctls(sysctl, arena);
  registerMpSysctls(sysctl, arena);
  registerNetSysctls(sysctl, arena);
}
