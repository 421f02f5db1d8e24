import { type FormEvent, useState } from 'react';
import { scopesOf } from '../../auth/roles.js';
import { type Account, type ApiKey, api, type List, type User } from '../api.js';
import { when } from '../format.js';
import { useResource } from '../hooks.js';
import { CheckList, ErrorNote, ListState, ListTable, Panel, ShownOnce, TextField } from '../ui.js';
import { AppTokens } from './AppTokens.js';

/** API keys for machines (SMS relays, integrations): create with scopes and accounts, shown once; revoke. */
export function KeysPage({ user }: { user: User }) {
  const keys = useResource<{ data: ApiKey[] }>('/me/api-keys');
  const accounts = useResource<List<Account>>('/accounts?limit=500');
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const grantable = scopesOf(user.role);

  async function revoke(key: ApiKey) {
    if (!window.confirm(`Revoke “${key.name}”? Whatever uses it stops working at once.`)) return;
    try {
      await api('DELETE', `/me/api-keys/${key.id}`);
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  const rows = keys.data?.data ?? [];
  return (
    <>
      <div className="page-head">
        <h1>API keys</h1>
      </div>
      {created && <ShownOnce label="Your new API key" value={created} onDone={() => setCreated(null)} />}
      <CreateKey
        scopes={grantable}
        accounts={accounts.data?.data ?? []}
        onCreated={(key) => {
          setCreated(key);
          keys.reload();
        }}
      />
      <Panel title={user.role === 'admin' ? "The organization's keys" : 'Your keys'}>
        <ErrorNote error={error} />
        <ListState
          ready={keys.data !== undefined}
          error={keys.error}
          empty={rows.length === 0 ? <p>No API keys yet.</p> : null}
        >
          <ListTable
            columns={[
              'Name',
              'Key',
              { label: 'Scopes', className: 'wide' },
              { label: 'Last used', className: 'wide' },
              '',
            ]}
          >
            {rows.map((key) => (
              <tr key={key.id} className={key.revoked_at ? 'revoked' : ''}>
                <td>
                  {key.name}
                  {key.account_ids && <div className="muted small">{key.account_ids.length} account(s) only</div>}
                </td>
                <td>
                  <code>otpk_{key.prefix}_…</code>
                </td>
                <td className="wide small">{key.scopes.join(', ')}</td>
                <td className="wide">{when(key.last_used_at)}</td>
                <td>
                  {key.revoked_at ? (
                    <span className="badge neutral">revoked</span>
                  ) : (
                    <button type="button" className="link danger" onClick={() => void revoke(key)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </ListTable>
        </ListState>
      </Panel>
      <AppTokens user={user} />
    </>
  );
}

function CreateKey({
  scopes,
  accounts,
  onCreated,
}: {
  scopes: string[];
  accounts: Account[];
  onCreated: (key: string) => void;
}) {
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState<Set<string>>(new Set(['status:read', 'otp:write']));
  const [restrict, setRestrict] = useState<Set<string>>(new Set());
  const [error, setError] = useState<unknown>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const key = await api<{ key: string }>('POST', '/me/api-keys', {
        name,
        scopes: [...chosen].filter((s) => scopes.includes(s)),
        account_ids: restrict.size > 0 ? [...restrict] : null,
      });
      setName('');
      onCreated(key.key);
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <Panel title="Create a key">
      <form className="form" onSubmit={submit}>
        <TextField
          id="key-name"
          label="Name"
          value={name}
          onChange={setName}
          required
          maxLength={100}
          placeholder="SMS relay"
        />
        <CheckList
          legend="Scopes"
          options={scopes.map((scope) => ({ value: scope, label: scope }))}
          chosen={chosen}
          onChange={setChosen}
        />
        {accounts.length > 0 && (
          <CheckList
            legend="Accounts (none ticked: every account)"
            options={accounts.map((account) => ({ value: account.id, label: account.name }))}
            chosen={restrict}
            onChange={setRestrict}
          />
        )}
        <ErrorNote error={error} />
        <button type="submit" disabled={chosen.size === 0}>
          Create key
        </button>
      </form>
    </Panel>
  );
}
