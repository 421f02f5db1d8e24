import { type FormEvent, useState } from 'react';
import { api, describe, HttpError, type User } from '../api.js';

/** Sign-in: email and password, then the authenticator code when the user turned 2FA on. */
export function LoginPage({ onSignedIn }: { onSignedIn: (user: User) => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needsTotp, setNeedsTotp] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = needsTotp ? { email, password, totp } : { email, password };
      const { user } = await api<{ user: User }>('POST', '/auth/login', body);
      onSignedIn(user);
    } catch (failure) {
      if (failure instanceof HttpError && failure.details.some((d) => d.path === '/totp') && !needsTotp) {
        setNeedsTotp(true);
      } else {
        setError(
          failure instanceof HttpError && failure.code === 'RATE_LIMITED'
            ? `Too many attempts. ${failure.message}`
            : describe(failure),
        );
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="centered">
      <form className="card login" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Sign in to otpilot</h1>
        <label htmlFor="email">Email</label>
        <input
          id="email"
          type="email"
          autoComplete="username"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          required
          // biome-ignore lint/a11y/noAutofocus: the only thing to do on this page
          autoFocus
        />
        <label htmlFor="password">Password</label>
        <input
          id="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
        />
        {needsTotp && (
          <>
            <label htmlFor="totp">Authentication code (or a backup code)</label>
            <input
              id="totp"
              inputMode="numeric"
              autoComplete="one-time-code"
              value={totp}
              onChange={(e) => setTotp(e.target.value)}
              required
              // biome-ignore lint/a11y/noAutofocus: the field appears because it is the next thing to type
              autoFocus
            />
          </>
        )}
        <p className="error" role="alert">
          {error}
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
