/**
 * The host-manager tabs, mounted by the host page: each shown only when the host's agent has the
 * manager's capability (cron and the hosts file, which read more, only for operators). Process
 * control and listening ports are not tabs of their own: the host page's Processes and
 * Connections tabs use them when the agent allows `process`.
 */
import type { Host, Me } from '../../api';
import type { Key } from '../../i18n';
import type { HostTab } from '../../router';
import { CronTab } from './Cron';
import { DockerTab } from './Docker';
import { HostsFileTab } from './HostsFile';
import { PowerTab } from './Power';
import { SystemdTab } from './Systemd';

export type ManagerTab = Extract<HostTab, 'docker' | 'services' | 'cron' | 'power' | 'hosts-file'>;

const TABS: [ManagerTab, Key, string, boolean][] = [
  ['docker', 'mgr.tab.docker', 'docker', false],
  ['services', 'mgr.tab.systemd', 'systemd', false],
  ['cron', 'mgr.tab.cron', 'cron', true],
  ['power', 'mgr.tab.power', 'power', false],
  ['hosts-file', 'mgr.tab.hosts', 'files', true],
];

export function managerTabs(h: Host, me: Me): [ManagerTab, Key][] {
  return TABS.filter(([, , cap, operator]) => h.capabilities.includes(cap) && (!operator || me.role !== 'viewer')).map(([k, label]) => [k, label]);
}

export function ManagerPanel({ tab, h, me }: { tab: string; h: Host; me: Me }) {
  const canAct = me.role !== 'viewer';
  if (!managerTabs(h, me).some(([k]) => k === tab)) return null;
  switch (tab) {
    case 'docker':
      return <DockerTab id={h.id} canAct={canAct} />;
    case 'services':
      return <SystemdTab id={h.id} canAct={canAct} />;
    case 'cron':
      return <CronTab id={h.id} canAct={canAct} />;
    case 'power':
      return <PowerTab id={h.id} hostname={h.hostname} canAct={canAct} />;
    case 'hosts-file':
      return <HostsFileTab id={h.id} canAct={canAct} />;
    default:
      return null;
  }
}
