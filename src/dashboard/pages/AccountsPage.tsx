import { type FormEvent, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { type Account, api, type Bank, type List, type User } from '../api.js';
import { when } from '../format.js';
import { useResource } from '../hooks.js';
import { useLiveEvents } from '../live.js';
import { can, ErrorNote, ListState, ListTable, Panel, StatusBadge, TextField } from '../ui.js';

/** Every bank login of the organization, with its status, and a form to connect a new one. */
export function AccountsPage({ user }: { user: User }) {
  const accounts = useResource<List<Account>>('/accounts?limit=500');
  const banks = useResource<{ data: Bank[] }>('/banks');
  const [adding, setAdding] = useState(false);
  useLiveEvents((event) => {
    if (event.type !== 'bank_movement') accounts.reload();
  });
  const bankName = (id: string) => banks.data?.data.find((b) => b.id === id)?.name ?? id;
  const rows = accounts.data?.data ?? [];

  return (
    <>
      <div className="page-head">
        <h1>Accounts</h1>
        {can(user, 'accounts:write') && !adding && (
          <button type="button" onClick={() => setAdding(true)}>
            Add account
          </button>
        )}
      </div>
      {adding && <AddAccount banks={banks.data?.data ?? []} onCancel={() => setAdding(false)} />}
      <Panel title="Bank logins">
        <ListState
          ready={accounts.data !== undefined}
          error={accounts.error}
          empty={rows.length === 0 ? <p>No bank accounts yet. Add one to let otpilot log in on a schedule.</p> : null}
        >
          <ListTable
            columns={[
              'Name',
              'Bank',
              'Status',
              { label: 'Last success', className: 'wide' },
              { label: 'Next run', className: 'wide' },
            ]}
          >
            {rows.map((account) => (
              <tr key={account.id}>
                <td>
                  <Link href={`/accounts/${account.id}`}>{account.name}</Link>
                </td>
                <td>{bankName(account.bank_id)}</td>
                <td>
                  <StatusBadge status={account.status} />
                  {account.blocked_at && account.status !== 'blocked' && <span className="badge bad">blocked</span>}
                </td>
                <td className="wide">{when(account.last_success_at)}</td>
                <td className="wide">{when(account.next_run_at)}</td>
              </tr>
            ))}
          </ListTable>
        </ListState>
      </Panel>
    </>
  );
}

function AddAccount({ banks, onCancel }: { banks: Bank[]; onCancel: () => void }) {
  const [, navigate] = useLocation();
  const [bankId, setBankId] = useState('');
  const [name, setName] = useState('');
  const [credentials, setCredentials] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const bank = banks.find((b) => b.id === (bankId || banks[0]?.id));

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!bank) return;
    setBusy(true);
    setError(null);
    try {
      const created = await api<Account>('POST', '/accounts', { bank_id: bank.id, name, credentials });
      navigate(`/accounts/${created.id}`);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  }

  return (
    <Panel title="Add an account">
      <form className="form" onSubmit={submit}>
        <label htmlFor="new-bank">Bank</label>
        <select id="new-bank" value={bank?.id ?? ''} onChange={(e) => setBankId(e.target.value)}>
          {banks.map((b) => (
            <option key={b.id} value={b.id}>
              {b.name}
            </option>
          ))}
        </select>
        <TextField id="new-name" label="Name" value={name} onChange={setName} required maxLength={200} />
        {bank?.credential_fields.map((field) => (
          <div key={field.name} className="field">
            <label htmlFor={`new-cred-${field.name}`}>{field.label}</label>
            <input
              id={`new-cred-${field.name}`}
              type={field.type}
              autoComplete="off"
              required={field.required}
              value={credentials[field.name] ?? ''}
              onChange={(e) => setCredentials({ ...credentials, [field.name]: e.target.value })}
            />
          </div>
        ))}
        <ErrorNote error={error} />
        <div className="row">
          <button type="submit" disabled={busy || !bank}>
            Create account
          </button>
          <button type="button" className="secondary" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Panel>
  );
}
