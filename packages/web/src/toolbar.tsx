/** The language and theme switches, on the login page and in the header. */
import { useI18n, type Lang } from './i18n';

export type Theme = 'light' | 'dark';

export function Toolbar({ theme, setTheme }: { theme: Theme; setTheme: (t: Theme) => void }) {
  const { t, lang, setLang } = useI18n();
  return (
    <div className="toolbar">
      <label className="inline">
        <span className="sr-only">{t('nav.language')}</span>
        <select aria-label={t('nav.language')} value={lang} onChange={(e) => setLang(e.target.value as Lang)} data-testid="lang-select">
          <option value="en">English</option>
          <option value="zh">中文</option>
        </select>
      </label>
      <button type="button" className="small" onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')} aria-label={t('nav.theme')} title={t('nav.theme')}>
        {theme === 'dark' ? t('theme.light') : t('theme.dark')}
      </button>
    </div>
  );
}
