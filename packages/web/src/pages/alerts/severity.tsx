/** An alert's or a rule's severity, as a coloured label in the console's language. */
import { useI18n } from '../../i18n';

export function Severity({ s }: { s: string }) {
  const i = useI18n();
  return <span className={'sev ' + s}>{i.tk('alerts.sev.' + s, s)}</span>;
}
