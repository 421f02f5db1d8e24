import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { en, es, type MessageKey } from './messages.js';

/** The languages the dashboard speaks; the first is the fallback. */
export const LOCALES = [
  { code: 'en', label: 'English', messages: en as Record<MessageKey, string> },
  { code: 'es', label: 'Español', messages: es },
] as const;
export type Locale = (typeof LOCALES)[number]['code'];

const STORAGE_KEY = 'otpilot.locale';

/** The operator's choice, else the first of the browser's languages we speak, else English. */
export function initialLocale(): Locale {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (LOCALES.some((l) => l.code === stored)) return stored as Locale;
  for (const language of navigator.languages ?? [navigator.language]) {
    const base = language.toLowerCase().split('-')[0];
    const found = LOCALES.find((l) => l.code === base);
    if (found) return found.code;
  }
  return 'en';
}

export interface I18n {
  locale: Locale;
  setLocale: (locale: Locale) => void;
  /** The message in the current language, `{name}` placeholders filled from `vars`. */
  t: (key: MessageKey, vars?: Record<string, string | number>) => string;
  /** Date and time, in the operator's time zone; `—` for none. */
  when: (iso: string | number | null | undefined) => string;
  /** A calendar date (`YYYY-MM-DD` or a timestamp) without the time. */
  day: (iso: string | null | undefined) => string;
  /** An amount in its currency (the API's decimal string). */
  money: (amount: string | number, currency: string) => string;
  /** A duration, ms: `45 s`, `2 min 5 s`, `1 h 3 min`. */
  duration: (ms: number) => string;
}

const I18nContext = createContext<I18n | null>(null);

export function I18nProvider({ children }: { children: ReactNode }) {
  const [locale, setLocaleState] = useState<Locale>(initialLocale);
  const setLocale = useCallback((next: Locale) => {
    localStorage.setItem(STORAGE_KEY, next);
    setLocaleState(next);
  }, []);
  const value = useMemo<I18n>(() => makeI18n(locale, setLocale), [locale, setLocale]);
  // Screen readers and the browser's own widgets (date pickers) follow the page's language.
  useEffect(() => {
    document.documentElement.lang = locale;
  }, [locale]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function makeI18n(locale: Locale, setLocale: (locale: Locale) => void): I18n {
  const messages = LOCALES.find((l) => l.code === locale)?.messages ?? en;
  const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
  const dateOnly = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' });
  const money = new Map<string, Intl.NumberFormat>();
  const units = (unit: 'hour' | 'minute' | 'second') =>
    new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'narrow' });
  const [hours, minutes, seconds] = [units('hour'), units('minute'), units('second')];
  return {
    locale,
    setLocale,
    t: (key, vars) =>
      (messages[key] ?? en[key]).replace(/\{(\w+)\}/g, (whole, name: string) =>
        vars && name in vars ? String(vars[name]) : whole,
      ),
    when: (iso) => (iso === null || iso === undefined ? '—' : dateTime.format(new Date(iso))),
    day: (iso) => (iso ? dateOnly.format(new Date(`${iso.slice(0, 10)}T00:00:00Z`)) : '—'),
    money: (amount, currency) => {
      let format = money.get(currency);
      if (!format) {
        try {
          format = new Intl.NumberFormat(locale, { style: 'currency', currency });
        } catch {
          // Not an ISO 4217 code (a bank's own unit): the number with the code after it.
          format = new Intl.NumberFormat(locale, { minimumFractionDigits: 2 });
        }
        money.set(currency, format);
      }
      const text = format.format(Number(amount));
      return format.resolvedOptions().style === 'currency' ? text : `${text} ${currency}`;
    },
    duration: (ms) => {
      const total = Math.max(0, Math.round(ms / 1000));
      const h = Math.floor(total / 3600);
      const m = Math.floor((total % 3600) / 60);
      const s = total % 60;
      if (h > 0) return `${hours.format(h)} ${minutes.format(m)}`;
      if (m > 0) return `${minutes.format(m)} ${seconds.format(s)}`;
      return seconds.format(s);
    },
  };
}

export function useI18n(): I18n {
  const value = useContext(I18nContext);
  if (!value) throw new Error('useI18n outside I18nProvider');
  return value;
}

/** The language switch in the top bar. */
export function LanguageSwitch() {
  const { locale, setLocale, t } = useI18n();
  return (
    <label className="lang">
      <span className="sr-only">{t('shell.language')}</span>
      <select value={locale} onChange={(event) => setLocale(event.target.value as Locale)}>
        {LOCALES.map((l) => (
          <option key={l.code} value={l.code} lang={l.code}>
            {l.label}
          </option>
        ))}
      </select>
    </label>
  );
}
