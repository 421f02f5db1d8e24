import { type FormEvent, useState } from 'react';
import { api, type User } from '../api.js';
import { when } from '../format.js';
import { useResource } from '../hooks.js';
import { can, ErrorNote, ListState, ListTable, Panel, TextField } from '../ui.js';

interface AppToken {
  id: string;
  name: string;
  token: string;
  allowed_origins: string[];
  created_at: string;
  revoked_at: string | null;
}

/** Publishable tokens for the reconnect widget: they open reconnects only, from the listed origins. */
export function AppTokens({ user }: { user: User }) {
  const tokens = useResource<{ data: AppToken[] }>('/app-tokens');
  const [name, setName] = useState('');
  const [origins, setOrigins] = useState('');
  const [error, setError] = useState<unknown>(null);
  const writable = can(user, 'accounts:write');

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const allowed = origins
        .split(/[\s,]+/)
        .map((o) => o.trim().replace(/\/$/, ''))
        .filter(Boolean);
      await api('POST', '/app-tokens', { name, allowed_origins: allowed });
      setName('');
      setOrigins('');
      tokens.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  async function revoke(token: AppToken) {
    if (!window.confirm(`Revoke “${token.name}”? Widgets using it stop working.`)) return;
    try {
      await api('DELETE', `/app-tokens/${token.id}`);
      tokens.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  const rows = tokens.data?.data ?? [];
  return (
    <Panel title="App tokens (reconnect widget)">
      <p className="muted small">
        Publishable: put them in your app's pages for <code>otpilot.reconnect()</code>. They can only open reconnects of
        this organization, and only from the origins listed.
      </p>
      {writable && (
        <form className="form" onSubmit={submit}>
          <TextField id="apt-name" label="Name" value={name} onChange={setName} required maxLength={100} />
          <TextField
            id="apt-origins"
            label="Allowed origins (space or comma separated)"
            value={origins}
            onChange={setOrigins}
            required
            placeholder="https://app.example.com"
          />
          <button type="submit">Create app token</button>
        </form>
      )}
      <ErrorNote error={error} />
      <ListState
        ready={tokens.data !== undefined}
        error={tokens.error}
        empty={rows.length === 0 ? <p>No app tokens.</p> : null}
      >
        <ListTable columns={['Name', 'Token', { label: 'Origins', className: 'wide' }, '']}>
          {rows.map((token) => (
            <tr key={token.id} className={token.revoked_at ? 'revoked' : ''}>
              <td>
                {token.name}
                <div className="muted small">{when(token.created_at)}</div>
              </td>
              <td className="break small">
                <code>{token.token}</code>
              </td>
              <td className="wide small">{token.allowed_origins.join(', ')}</td>
              <td>
                {token.revoked_at ? (
                  <span className="badge neutral">revoked</span>
                ) : (
                  writable && (
                    <button type="button" className="link danger" onClick={() => void revoke(token)}>
                      Revoke
                    </button>
                  )
                )}
              </td>
            </tr>
          ))}
        </ListTable>
      </ListState>
    </Panel>
  );
}
