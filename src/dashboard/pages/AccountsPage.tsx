import { type FormEvent, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { type Account, api, type Bank, type DayHealth, type List, type User } from '../api.js';
import { Sparkline } from '../charts.js';
import { humanize } from '../format.js';
import { useResource } from '../hooks.js';
import { useI18n } from '../i18n/index.js';
import { useLiveEvents } from '../live.js';
import { can, ErrorNote, ListState, ListTable, Panel, StatusBadge, TextField } from '../ui.js';

/** Every bank login of the organization, with its status, and a form to connect a new one. */
export function AccountsPage({ user }: { user: User }) {
  const { t, when } = useI18n();
  const accounts = useResource<List<Account>>('/accounts?limit=500');
  const banks = useResource<{ data: Bank[] }>('/banks');
  const health = useResource<{ data: { account_id: string; days: DayHealth[] }[] }>('/insights/login-health?days=30');
  const [adding, setAdding] = useState(false);
  useLiveEvents((event) => {
    if (event.type === 'bank_movement') return;
    accounts.reload();
    if (event.type === 'connected' || event.type.startsWith('scrape_') || event.type.startsWith('assistance_'))
      health.reload();
  });
  const daysOf = (id: string) => health.data?.data.find((h) => h.account_id === id)?.days;
  const bankName = (id: string) => banks.data?.data.find((b) => b.id === id)?.name ?? id;
  const rows = accounts.data?.data ?? [];

  return (
    <>
      <div className="page-head">
        <h1>{t('accounts.title')}</h1>
        {can(user, 'accounts:write') && !adding && (
          <button type="button" onClick={() => setAdding(true)}>
            {t('accounts.add')}
          </button>
        )}
      </div>
      {adding && <AddAccount banks={banks.data?.data ?? []} onCancel={() => setAdding(false)} />}
      <Panel title={t('accounts.panel')}>
        <ListState
          ready={accounts.data !== undefined}
          error={accounts.error}
          empty={rows.length === 0 ? <p>{t('accounts.empty')}</p> : null}
        >
          <ListTable
            columns={[
              t('accounts.name'),
              { label: t('accounts.bank'), className: 'wide' },
              t('accounts.status'),
              t('accounts.health'),
              { label: t('accounts.lastSuccess'), className: 'wide' },
              { label: t('accounts.nextRun'), className: 'wide' },
            ]}
          >
            {rows.map((account) => (
              <tr key={account.id}>
                <td>
                  <Link href={`/accounts/${account.id}`}>{account.name}</Link>
                </td>
                <td className="wide">{bankName(account.bank_id)}</td>
                <td>
                  <StatusBadge status={account.status} />
                  {account.blocked_at && account.status !== 'blocked' && <StatusBadge status="blocked" />}
                </td>
                <td className="spark-cell">
                  {daysOf(account.id) ? (
                    <Sparkline days={daysOf(account.id)!} label={sparkLabel(daysOf(account.id)!, t)} />
                  ) : (
                    <span className="muted">—</span>
                  )}
                </td>
                <td className="wide">{when(account.last_success_at)}</td>
                <td className="wide">
                  {account.blocked_at ? (
                    // No run is coming: say why, and the account page has the way out.
                    <Link href={`/accounts/${account.id}`} className="blocked-cell">
                      {t('accounts.blockedCell', { why: humanize(account.blocked_reason ?? '') })}
                    </Link>
                  ) : account.next_run_at ? (
                    when(account.next_run_at)
                  ) : (
                    t('accounts.manualOnly')
                  )}
                </td>
              </tr>
            ))}
          </ListTable>
        </ListState>
      </Panel>
    </>
  );
}

function sparkLabel(days: DayHealth[], t: ReturnType<typeof useI18n>['t']): string {
  const total = (key: 'succeeded' | 'failed' | 'waited') => days.reduce((n, d) => n + d[key], 0);
  return t('account.health.summary', {
    ok: total('succeeded'),
    failed: total('failed'),
    waited: total('waited'),
    days: days.length,
  });
}

function AddAccount({ banks, onCancel }: { banks: Bank[]; onCancel: () => void }) {
  const [, navigate] = useLocation();
  const [bankId, setBankId] = useState('');
  const [name, setName] = useState('');
  const [credentials, setCredentials] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  // The sandbox bank first when it is there: the first account of a tour is a sandbox one.
  const bank = banks.find(
    (b) => b.id === (bankId || (banks.some((x) => x.id === 'sandbox') ? 'sandbox' : banks[0]?.id)),
  );

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
