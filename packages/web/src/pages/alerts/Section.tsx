/** The alerts area (#/alerts…): a sub-navigation and its pages; plus the firing count for the main nav. */
import type { Me } from '../../api';
import { useI18n } from '../../i18n';
import { href } from '../../router';
import { ErrorBox } from '../../ui';
import { AlertsPage } from './AlertsPage';
import { RulesPage } from './RulesPage';
import { ChannelsPage } from './ChannelsPage';
import { SilencesPage } from './SilencesPage';
import { useActiveAlerts } from './stream';
import './alerts.css';

/** Firing (not pending) alerts, live, as a small count next to the nav entry. */
export function AlertsNavBadge() {
  const { t } = useI18n();
  const { alerts } = useActiveAlerts();
  const n = alerts.filter((a) => a.state === 'firing').length;
  if (!n) return null;
  return (
    <span className="nav-count" data-testid="alerts-badge" title={t('alerts.firingCount', { n })} aria-label={t('alerts.firingCount', { n })}>
      {n}
    </span>
  );
}

export function AlertsSection({ sub, me }: { sub: string | undefined; me: Me }) {
  const { t } = useI18n();
  const tabs: [string | undefined, string][] = [
    [undefined, t('alerts.tab.alerts')],
    ['rules', t('alerts.tab.rules')],
    ['channels', t('alerts.tab.channels')],
    ['silences', t('alerts.tab.silences')],
  ];
  let page;
  if (!sub) page = <AlertsPage />;
  else if (sub === 'rules') page = <RulesPage me={me} />;
  else if (sub === 'channels') page = <ChannelsPage me={me} />;
  else if (sub === 'silences') page = <SilencesPage me={me} />;
  else page = <ErrorBox error={new Error(t('state.notFound'))} />;
  return (
    <>
      <nav className="subnav" aria-label={t('alerts.sections')}>
        {tabs.map(([s, label]) => (
          <a key={s ?? ''} href={href('/alerts' + (s ? '/' + s : ''))} aria-current={sub === s ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {page}
    </>
  );
}

