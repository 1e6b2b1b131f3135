/**
 * The host-manager tabs, mounted by the host page: each shown only when the host's agent has the
 * manager's capability (cron and the hosts file, which read more, only for operators).
 */
import type { Host, Me } from '../../api';
import type { Key } from '../../i18n';
import { CronTab } from './Cron';
import { DockerTab } from './Docker';
import { HostsFileTab } from './HostsFile';
import { PortsTab, ProcessTab } from './Processes';
import { PowerTab } from './Power';
import { SystemdTab } from './Systemd';

export type ManagerTab = 'm-docker' | 'm-systemd' | 'm-cron' | 'm-ps' | 'm-ports' | 'm-power' | 'm-hosts';

const TABS: [ManagerTab, Key, string, boolean][] = [
  ['m-docker', 'mgr.tab.docker', 'docker', false],
  ['m-systemd', 'mgr.tab.systemd', 'systemd', false],
  ['m-cron', 'mgr.tab.cron', 'cron', true],
  ['m-ps', 'mgr.tab.ps', 'process', false],
  ['m-ports', 'mgr.tab.ports', 'process', false],
  ['m-power', 'mgr.tab.power', 'power', false],
  ['m-hosts', 'mgr.tab.hosts', 'files', true],
];

export function managerTabs(h: Host, me: Me): [ManagerTab, Key][] {
  return TABS.filter(([, , cap, operator]) => h.capabilities.includes(cap) && (!operator || me.role !== 'viewer')).map(([k, label]) => [k, label]);
}

export function ManagerPanel({ tab, h, me }: { tab: string; h: Host; me: Me }) {
  const canAct = me.role !== 'viewer';
  if (!managerTabs(h, me).some(([k]) => k === tab)) return null;
  switch (tab) {
    case 'm-docker':
      return <DockerTab id={h.id} canAct={canAct} />;
    case 'm-systemd':
      return <SystemdTab id={h.id} canAct={canAct} />;
    case 'm-cron':
      return <CronTab id={h.id} canAct={canAct} />;
    case 'm-ps':
      return <ProcessTab id={h.id} canAct={canAct} />;
    case 'm-ports':
      return <PortsTab id={h.id} />;
    case 'm-power':
      return <PowerTab id={h.id} hostname={h.hostname} canAct={canAct} />;
    case 'm-hosts':
      return <HostsFileTab id={h.id} canAct={canAct} />;
    default:
      return null;
  }
}
