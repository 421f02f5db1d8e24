import { useCallback, useEffect, useState } from 'react';
import { Link, Route, Router, Switch, useLocation } from 'wouter';
import { api, SIGNED_OUT, type User } from './api.js';
import { I18nProvider, LanguageSwitch, useI18n } from './i18n/index.js';
import { LiveProvider, useLive } from './live.js';
import { ACCOUNT_TABS, AccountPage, type AccountTab } from './pages/AccountPage.js';
import { AccountsPage } from './pages/AccountsPage.js';
import { AuditPage } from './pages/AuditPage.js';
import { CodesPage } from './pages/CodesPage.js';
import { KeysPage } from './pages/KeysPage.js';
import { LoginPage } from './pages/LoginPage.js';
import { ReconciliationPage } from './pages/ReconciliationPage.js';
import { SettingsPage } from './pages/SettingsPage.js';
import { UsersPage } from './pages/UsersPage.js';
import { WebhookPage, WebhooksPage } from './pages/WebhooksPage.js';
import { CodePrompt } from './prompt/CodePrompt.js';

type Session = { state: 'loading' } | { state: 'signed-out' } | { state: 'signed-in'; user: User };

/** The dashboard at /app/: sign-in, then the pages with the code prompt on top of every one. */
export function App() {
  const [session, setSession] = useState<Session>({ state: 'loading' });

  useEffect(() => {
    api<{ user: User }>('GET', '/me').then(
      ({ user }) => setSession({ state: 'signed-in', user }),
      () => setSession({ state: 'signed-out' }),
    );
    const signedOut = () => setSession({ state: 'signed-out' });
    window.addEventListener(SIGNED_OUT, signedOut);
    return () => window.removeEventListener(SIGNED_OUT, signedOut);
  }, []);

  const signOut = useCallback(async () => {
    await api('POST', '/auth/logout').catch(() => undefined);
    setSession({ state: 'signed-out' });
  }, []);

  return (
    <I18nProvider>
      <Router base="/app">
        {session.state === 'loading' ? (
          <main className="centered" aria-busy="true" />
        ) : session.state === 'signed-out' ? (
          <LoginPage onSignedIn={(user) => setSession({ state: 'signed-in', user })} />
        ) : (
          <LiveProvider>
            <Shell user={session.user} onSignOut={signOut} />
          </LiveProvider>
        )}
      </Router>
    </I18nProvider>
  );
}

function NavLink({ href, children }: { href: string; children: string }) {
  const [location] = useLocation();
  const current = href === '/' ? location === '/' || location.startsWith('/accounts') : location.startsWith(href);
  return (
    <Link href={href} aria-current={current ? 'page' : undefined}>
      {children}
    </Link>
  );
}

function Shell({ user, onSignOut }: { user: User; onSignOut: () => void }) {
  const { connected } = useLive();
  const { t } = useI18n();
  const admin = user.role === 'admin';
  return (
    <>
      <a className="skip" href="#main">
        {t('shell.skip')}
      </a>
      <header className="topbar">
        <span className="brand">otpilot</span>
        <nav aria-label={t('nav.main')}>
          <NavLink href="/">{t('nav.accounts')}</NavLink>
          <NavLink href="/codes">{t('nav.codes')}</NavLink>
          <NavLink href="/reconciliation">{t('nav.reconciliation')}</NavLink>
          <NavLink href="/webhooks">{t('nav.webhooks')}</NavLink>
          <NavLink href="/keys">{t('nav.keys')}</NavLink>
          {admin && <NavLink href="/users">{t('nav.users')}</NavLink>}
          {admin && <NavLink href="/audit">{t('nav.audit')}</NavLink>}
          <NavLink href="/settings">{t('nav.settings')}</NavLink>
        </nav>
        <span className="who">
          <span
            className={`dot ${connected ? 'on' : 'off'}`}
            title={connected ? t('shell.live') : t('shell.reconnecting')}
          />
          <span className="sr-only">{connected ? t('shell.live') : t('shell.reconnecting')}</span>
          <span className="email">{user.email}</span> <span className="badge">{user.role}</span>
          <LanguageSwitch />
          <button type="button" className="link" onClick={onSignOut}>
            {t('shell.signOut')}
          </button>
        </span>
      </header>
      {/* The prompts are docked beside the page on wide screens and above it on narrow ones: never over it. */}
      <div className="layout">
        <CodePrompt role={user.role} />
        <main id="main" tabIndex={-1}>
          <Switch>
            <Route path="/">{() => <AccountsPage user={user} />}</Route>
            <Route path="/codes">{() => <CodesPage />}</Route>
            <Route path="/reconciliation">{() => <ReconciliationPage user={user} />}</Route>
            <Route path="/accounts/:id/:tab?">
              {(params) =>
                (ACCOUNT_TABS as readonly string[]).includes(params.tab ?? 'overview') ? (
                  <AccountPage
                    key={params.id}
                    id={params.id}
                    tab={(params.tab ?? 'overview') as AccountTab}
                    user={user}
                  />
                ) : (
                  <NotFound />
                )
              }
            </Route>
            <Route path="/webhooks">{() => <WebhooksPage user={user} />}</Route>
            <Route path="/webhooks/:id">{(params) => <WebhookPage id={params.id} user={user} />}</Route>
            <Route path="/keys">{() => <KeysPage user={user} />}</Route>
            {admin && <Route path="/users">{() => <UsersPage />}</Route>}
            {admin && <Route path="/audit">{() => <AuditPage />}</Route>}
            <Route path="/settings">{() => <SettingsPage />}</Route>
            <Route>
              <NotFound />
            </Route>
          </Switch>
        </main>
      </div>
    </>
  );
}

function NotFound() {
  const { t } = useI18n();
  return (
    <>
      <h1>Not found</h1>
      <p>
        There is nothing here. <Link href="/">{t('common.back')}</Link>
      </p>
    </>
  );
}
