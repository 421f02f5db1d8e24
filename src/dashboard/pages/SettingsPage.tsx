import { type FormEvent, useState } from 'react';
import { api, type TwoFactorStatus } from '../api.js';
import { useResource, useStoredFlag } from '../hooks.js';
import { notificationsSupported, playChime } from '../prompt/alerts.js';
import { NOTIFY_KEY, SOUND_KEY } from '../prompt/CodePrompt.js';
import { ErrorNote, Panel, ShownOnce, TextField } from '../ui.js';

/** The signed-in user's own settings: how prompts get attention, and two-factor sign-in. */
export function SettingsPage() {
  return (
    <>
      <h1>Settings</h1>
      <Alerts />
      <TwoFactor />
    </>
  );
}

function Alerts() {
  const [sound, setSound] = useStoredFlag(SOUND_KEY, true);
  const [notifications, setNotifications] = useStoredFlag(NOTIFY_KEY, true);
  const [permission, setPermission] = useState(() => (notificationsSupported() ? Notification.permission : 'denied'));
  return (
    <Panel title="Code prompt alerts">
      <div className="form">
        <label className="check">
          <input type="checkbox" checked={sound} onChange={(e) => setSound(e.target.checked)} />
          Play a sound when a code is needed
        </label>
        <button type="button" className="secondary" onClick={playChime}>
          Test the sound
        </button>
        <label className="check">
          <input type="checkbox" checked={notifications} onChange={(e) => setNotifications(e.target.checked)} />
          Show a desktop notification when a code is needed
        </label>
        {notifications && permission !== 'granted' && (
          <p className="muted small">
            {permission === 'denied'
              ? 'This browser blocks notifications for this site; allow them in its site settings.'
              : 'The browser must be allowed to show them.'}{' '}
            {permission === 'default' && (
              <button
                type="button"
                className="link"
                onClick={() => void Notification.requestPermission().then(setPermission)}
              >
                Allow notifications
              </button>
            )}
          </p>
        )}
        <p className="muted small">These preferences belong to this browser.</p>
      </div>
    </Panel>
  );
}

function TwoFactor() {
  const state = useResource<TwoFactorStatus>('/me/2fa');
  const [enrollment, setEnrollment] = useState<{ secret: string; qr_svg: string } | null>(null);
  const [code, setCode] = useState('');
  const [password, setPassword] = useState('');
  const [backupCodes, setBackupCodes] = useState<string[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function start(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      setEnrollment(await api('POST', '/me/2fa/setup', { password }));
      setPassword('');
    } catch (failure) {
      setError(failure);
    }
  }
  async function confirm(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const answer = await api<{ backup_codes: string[] }>('POST', '/me/2fa/confirm', { code });
      setBackupCodes(answer.backup_codes);
      setEnrollment(null);
      setCode('');
      state.reload();
    } catch (failure) {
      setError(failure);
    }
  }
  async function disable(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      await api('POST', '/me/2fa/disable', { password, code });
      setPassword('');
      setCode('');
      state.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  const s = state.data;
  return (
    <Panel title="Two-factor sign-in">
      {backupCodes && (
        <ShownOnce
          label="Backup codes (each works once)"
          value={backupCodes.join('\n')}
          onDone={() => setBackupCodes(null)}
        />
      )}
      {!s ? (
        <p className="muted">Loading…</p>
      ) : s.enabled ? (
        <form className="form" onSubmit={disable}>
          <p>
            <span className="badge ok">on</span> Signing in asks for a code from your authenticator app.{' '}
            {s.backup_codes_left} backup codes left.
          </p>
          <TextField
            id="tf-password"
            label="Password"
            value={password}
            onChange={setPassword}
            type="password"
            autoComplete="current-password"
            required
          />
          <TextField
            id="tf-off-code"
            label="Authenticator code (or a backup code)"
            value={code}
            onChange={setCode}
            inputMode="numeric"
            autoComplete="one-time-code"
            required
          />
          <ErrorNote error={error} />
          <button type="submit" className="danger">
            Turn off two-factor sign-in
          </button>
        </form>
      ) : enrollment ? (
        <form className="form" onSubmit={confirm}>
          <p>Scan this with an authenticator app (or type the key), then enter the code it shows.</p>
          <img
            className="qr"
            alt="QR code for your authenticator app"
            src={`data:image/svg+xml;charset=utf-8,${encodeURIComponent(enrollment.qr_svg)}`}
          />
          <p className="small">
            Key: <code>{enrollment.secret}</code>
          </p>
          <TextField
            id="tf-code"
            label="Authenticator code"
            value={code}
            onChange={setCode}
            inputMode="numeric"
            autoComplete="one-time-code"
            required
            maxLength={6}
          />
          <ErrorNote error={error} />
          <button type="submit">Turn on</button>
        </form>
      ) : (
        <form className="form" onSubmit={start}>
          <p>
            <span className="badge neutral">off</span> Add a code from an authenticator app to your sign-in.
          </p>
          <TextField
            id="tf-setup-password"
            label="Password"
            value={password}
            onChange={setPassword}
            type="password"
            autoComplete="current-password"
            required
          />
          <ErrorNote error={error} />
          <button type="submit">Set up two-factor sign-in</button>
        </form>
      )}
    </Panel>
  );
}
