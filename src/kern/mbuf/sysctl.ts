/**
 * The mbuf sysctls: the limits (kern.ipc.nmbclusters, nmbufs, nmbjumbop,
 * nmbjumbo9, nmbjumbo16; 0 = unlimited, changeable at run time through the
 * zone limits every worker shares), the MBUF_STRESS_TEST knobs and
 * counters, and net.inet.ip.mbuf_frag_size. Register with
 * `sysctl.registerNode` for each entry of mbufSysctlNodes(mb).
 */
import type { SysctlNodeSpec, SysctlValue } from '../sysctl/sysctl.js';
import type { Zone } from '../../uma/zone.js';
import type { Mbufs } from './mbuf.js';
import {
  R_DEFRAG_BYTES, R_DEFRAG_FAILURE, R_DEFRAG_PACKETS, R_DEFRAG_RANDOM_FAILURES, R_DEFRAG_USELESS, R_MBUF_FRAG_SIZE, R_RECLAIMS,
} from './shared.js';

const INT_MAX = 0x7fff_ffff;

function limitNode(name: string, zone: Zone, description: string): SysctlNodeSpec {
  return {
    name,
    type: 'int',
    description,
    min: 0,
    max: INT_MAX,
    get: () => zone.getMaxItems(),
    set: (v: SysctlValue) => zone.setMaxItems(v as number),
  };
}

function wordNode(mb: Mbufs, name: string, word: number, description: string, writable: boolean, min = 0, max = INT_MAX): SysctlNodeSpec {
  const node: SysctlNodeSpec = { name, type: 'int', description, min, max, get: () => mb.shared.get(word) };
  if (writable) node.set = (v: SysctlValue) => mb.shared.set(word, v as number);
  return node;
}

/** Every mbuf sysctl node of this thread's Mbufs. */
export function mbufSysctlNodes(mb: Mbufs): SysctlNodeSpec[] {
  return [
    limitNode('kern.ipc.nmbclusters', mb.zClust, 'Maximum number of mbuf clusters allowed (0 = unlimited)'),
    limitNode('kern.ipc.nmbufs', mb.zMbuf, 'Maximum number of mbufs allowed (0 = unlimited)'),
    limitNode('kern.ipc.nmbjumbop', mb.zJumbop, 'Maximum number of mbuf page size jumbo clusters allowed'),
    limitNode('kern.ipc.nmbjumbo9', mb.zJumbo9, 'Maximum number of mbuf 9k jumbo clusters allowed'),
    limitNode('kern.ipc.nmbjumbo16', mb.zJumbo16, 'Maximum number of mbuf 16k jumbo clusters allowed'),
    wordNode(mb, 'kern.ipc.m_defragrandomfailures', R_DEFRAG_RANDOM_FAILURES, 'Make m_defrag fail at random (MBUF_STRESS_TEST)', true, 0, 1),
    wordNode(mb, 'kern.ipc.m_defragpackets', R_DEFRAG_PACKETS, 'Number of defrag packets', false),
    wordNode(mb, 'kern.ipc.m_defragbytes', R_DEFRAG_BYTES, 'Number of defrag bytes', false),
    wordNode(mb, 'kern.ipc.m_defraguseless', R_DEFRAG_USELESS, 'Number of useless defrags', false),
    wordNode(mb, 'kern.ipc.m_defragfailure', R_DEFRAG_FAILURE, 'Number of failed defrags', false),
    wordNode(mb, 'kern.ipc.mb_reclaims', R_RECLAIMS, 'Times mbuf memory was reclaimed at a zone limit', false),
    wordNode(mb, 'net.inet.ip.mbuf_frag_size', R_MBUF_FRAG_SIZE, 'Fragment outgoing mbufs to this size (MBUF_STRESS_TEST; 0 off, -1/-2 random)', true, -2, 2048),
  ];
}

/** The current net.inet.ip.mbuf_frag_size, for IP output (m_fragment's length). */
export function mbufFragSize(mb: Mbufs): number {
  return mb.shared.get(R_MBUF_FRAG_SIZE);
}
