import { type FormEvent, useState } from 'react';
import { api, describe, HttpError, type User } from '../api.js';
import { TextField } from '../ui.js';

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
        <TextField
          id="email"
          label="Email"
          value={email}
          onChange={setEmail}
          type="email"
          autoComplete="username"
          required
          autoFocus
        />
        <TextField
          id="password"
          label="Password"
          value={password}
          onChange={setPassword}
          type="password"
          autoComplete="current-password"
          required
        />
        {needsTotp && (
          <TextField
            id="totp"
            label="Authentication code (or a backup code)"
            value={totp}
            onChange={setTotp}
            inputMode="numeric"
            autoComplete="one-time-code"
            required
            autoFocus
          />
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
