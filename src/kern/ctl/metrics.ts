/**
 * The Prometheus text exposition (format 0.0.4) of a running system's
 * counters: zones (vmstat -z), mbufs (netstat -m), protocol counters per
 * host (netstat -s), interface counters (netstat -i) and the protocol
 * threads' load. Read from the arena in the serving thread; no lock.
 */
import { zoneStats } from '../../uma/stats.js';
import { mbufStats } from '../mbuf/stats.js';
import { ARP_DESC, ETHER_DESC, ICMP_DESC, IP_DESC, UDP_DESC } from '../../netinet/stats.js';
import { IFC_NAMES } from '../../net/if.js';
import { TCP_DESC } from '../../netinet/tcp_stats.js';
import type { CtlSystem } from './system.js';

/** A label value escaped as the exposition format requires. */
function lv(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

class Exposition {
  private readonly lines: string[] = [];
  private readonly seen = new Set<string>();

  /** One sample; the HELP/TYPE lines come before a metric's first sample. */
  sample(name: string, type: 'counter' | 'gauge', help: string, labels: Record<string, string | number>, value: number): void {
    if (!this.seen.has(name)) {
      this.seen.add(name);
      this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    }
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${lv(String(v))}"`)
      .join(',');
    this.lines.push(`${name}${l === '' ? '' : `{${l}}`} ${Number.isFinite(value) ? value : 0}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

const PROTOS = [
  ['ip', IP_DESC],
  ['icmp', ICMP_DESC],
  ['udp', UDP_DESC],
  ['arp', ARP_DESC],
  ['ether', ETHER_DESC],
] as const;

/** Every counter of `sys` as Prometheus text (TCP's counters come from the CPUs, one message each). */
export async function formatMetrics(sys: CtlSystem): Promise<string> {
  const x = new Exposition();
  for (const z of sys.uma.allZones()) {
    const s = zoneStats(z);
    const l = { zone: s.name };
    x.sample('slabnet_zone_size_bytes', 'gauge', 'Item size of the zone', l, s.size);
    x.sample('slabnet_zone_limit_items', 'gauge', 'Item limit of the zone (0: none)', l, s.limit);
    x.sample('slabnet_zone_used_items', 'gauge', 'Items allocated', l, s.used);
    x.sample('slabnet_zone_free_items', 'gauge', 'Items cached or free in the keg', l, s.free);
    x.sample('slabnet_zone_requests_total', 'counter', 'Successful allocations', l, s.requests);
    x.sample('slabnet_zone_fails_total', 'counter', 'Failed allocations', l, s.fails);
    x.sample('slabnet_zone_sleeps_total', 'counter', 'Allocations that slept at the limit', l, s.sleeps);
    x.sample('slabnet_zone_xdomain_total', 'counter', 'Frees on another CPU than the allocation', l, s.xdomain);
  }
  const m = mbufStats(sys.mb);
  x.sample('slabnet_mbufs_in_use', 'gauge', 'mbufs in use (netstat -m current)', {}, m.mbufCount + m.packetCount);
  x.sample('slabnet_mbuf_clusters_in_use', 'gauge', 'mbuf clusters in use (netstat -m current)', {}, m.clusterCount - m.packetFree);
  x.sample('slabnet_mbuf_clusters_max', 'gauge', 'kern.ipc.nmbclusters', {}, m.clusterLimit);
  x.sample('slabnet_mbuf_bytes_in_use', 'gauge', 'Bytes allocated to network (current)', {}, m.bytesInUse);
  x.sample('slabnet_mbuf_bytes_in_cache', 'gauge', 'Bytes allocated to network (cache)', {}, m.bytesInCache);
  x.sample('slabnet_mbuf_denied_total', 'counter', 'Requests for mbufs denied', { kind: 'mbufs' }, m.mbufFailures);
  x.sample('slabnet_mbuf_denied_total', 'counter', 'Requests for mbufs denied', { kind: 'clusters' }, m.clusterFailures);
  x.sample('slabnet_mbuf_denied_total', 'counter', 'Requests for mbufs denied', { kind: 'mbuf+clusters' }, m.packetFailures);
  for (const h of sys.hosts()) {
    const st = sys.stats(h.index);
    for (const [p, desc] of PROTOS) {
      const v = st[p];
      desc.forEach(([field, text], i) => {
        x.sample(`slabnet_${p}_${field}_total`, 'counter', text.replace('%d ', ''), { host: h.name }, v[i]);
      });
    }
  }
  for (const h of sys.hosts()) {
    const v = await sys.tcpStats(h.index);
    TCP_DESC.forEach(([field, text], i) => x.sample(`slabnet_tcp_${field}_total`, 'counter', text.replace('%d ', ''), { host: h.name }, v[i] ?? 0));
  }
  for (const i of sys.interfaces()) {
    IFC_NAMES.forEach((n, k) => x.sample(`slabnet_if_${n}_total`, 'counter', `Interface counter ${n} (netstat -i)`, { interface: i.name }, i.counters[k]));
  }
  for (const c of sys.cpuLoad()) {
    x.sample('slabnet_cpu_messages_total', 'counter', 'Messages handled by the protocol thread', { cpu: c.cpu }, c.handled);
    x.sample('slabnet_cpu_busy_seconds_total', 'counter', 'Time the protocol thread spent in passes that did work', { cpu: c.cpu }, c.busyUs / 1e6);
    x.sample('slabnet_cpu_sleeps_total', 'counter', 'Times the protocol thread went idle', { cpu: c.cpu }, c.sleeps);
  }
  return x.text();
}
