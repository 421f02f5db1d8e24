import { useCallback, useEffect, useState } from 'react';
import { Link, Route, Router, Switch, useLocation } from 'wouter';
import { api, SIGNED_OUT, type User } from './api.js';
import { LiveProvider, useLive } from './live.js';
import { AccountPage } from './pages/AccountPage.js';
import { AccountsPage } from './pages/AccountsPage.js';
import { AuditPage } from './pages/AuditPage.js';
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
  const admin = user.role === 'admin';
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">otpilot</span>
        <nav aria-label="Main">
          <NavLink href="/">Accounts</NavLink>
          <NavLink href="/reconciliation">Reconciliation</NavLink>
          <NavLink href="/webhooks">Webhooks</NavLink>
          <NavLink href="/keys">API keys</NavLink>
          {admin && <NavLink href="/users">Users</NavLink>}
          {admin && <NavLink href="/audit">Audit log</NavLink>}
          <NavLink href="/settings">Settings</NavLink>
        </nav>
        <span className="who">
          <span className={`dot ${connected ? 'on' : 'off'}`} title={connected ? 'Live' : 'Reconnecting…'} />
          <span className="sr-only">{connected ? 'Live updates on' : 'Live updates reconnecting'}</span>
          <span className="email">{user.email}</span> <span className="badge">{user.role}</span>
          <button type="button" className="link" onClick={onSignOut}>
            Sign out
          </button>
        </span>
      </header>
      <CodePrompt role={user.role} />
      <main id="main" tabIndex={-1}>
        <Switch>
          <Route path="/">{() => <AccountsPage user={user} />}</Route>
          <Route path="/accounts/:id">{(params) => <AccountPage id={params.id} user={user} />}</Route>
          <Route path="/reconciliation">{() => <ReconciliationPage user={user} />}</Route>
          <Route path="/webhooks">{() => <WebhooksPage user={user} />}</Route>
          <Route path="/webhooks/:id">{(params) => <WebhookPage id={params.id} user={user} />}</Route>
          <Route path="/keys">{() => <KeysPage user={user} />}</Route>
          {admin && <Route path="/users">{() => <UsersPage />}</Route>}
          {admin && <Route path="/audit">{() => <AuditPage />}</Route>}
          <Route path="/settings">{() => <SettingsPage />}</Route>
          <Route>
            <h1>Not found</h1>
            <p>
              There is nothing here. <Link href="/">Back to the accounts</Link>
            </p>
          </Route>
        </Switch>
      </main>
    </>
  );
}
