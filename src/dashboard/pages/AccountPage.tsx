import { type FormEvent, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { type Account, api, type Bank, type List, type Movement, type Session, type User } from '../api.js';
import { humanize, when } from '../format.js';
import { useAction, useResource } from '../hooks.js';
import { useLiveEvents } from '../live.js';
import { can, ErrorNote, ListState, ListTable, Panel, StatusBadge } from '../ui.js';
import { AccountSettings } from './AccountSettings.js';

/** One bank login: status, actions, sessions with their stages, movements and settings. */
export function AccountPage({ id, user }: { id: string; user: User }) {
  const account = useResource<Account>(`/accounts/${id}`);
  const banks = useResource<{ data: Bank[] }>('/banks');
  const sessions = useResource<List<Session>>(`/accounts/${id}/sessions?limit=20`);
  const movements = useResource<List<Movement>>(can(user, 'data:read') ? `/accounts/${id}/movements?limit=50` : null);
  const action = useAction();
  const [deleting, setDeleting] = useState(false);

  useLiveEvents((event) => {
    if (event.type !== 'connected' && event.account_id !== id) return;
    // A scrape brings one bank_movement event per movement: those only touch the movements list.
    if (event.type === 'bank_movement') return movements.reload();
    account.reload();
    sessions.reload();
    if (event.type === 'connected' || event.type === 'scrape_succeeded') movements.reload();
  });

  if (account.error && !account.data) {
    return (
      <>
        <h1>Account</h1>
        <ErrorNote error={account.error} />
        <Link href="/">Back to the accounts</Link>
      </>
    );
  }
  const a = account.data;
  if (!a) return <p className="muted">Loading…</p>;
  const bank = banks.data?.data.find((b) => b.id === a.bank_id);

  const act = (path: 'scrape' | 'restart') =>
    action.run(
      async () => {
        await api('POST', `/accounts/${id}/${path}`);
        account.reload();
        sessions.reload();
      },
      path === 'scrape' ? 'Scrape queued: the login starts in a moment.' : 'Block cleared and a scrape queued.',
    );

  return (
    <>
      <p className="crumbs">
        <Link href="/">Accounts</Link> /
      </p>
      <div className="page-head">
        <h1>{a.name}</h1>
        <div className="row">
          {can(user, 'sessions:write') && (
            <button
              type="button"
              onClick={() => void act('scrape')}
              disabled={a.status === 'running' || a.status === 'awaiting_assistance'}
            >
              Scrape now
            </button>
          )}
          {can(user, 'sessions:write') && a.blocked_at && (
            <button type="button" className="secondary" onClick={() => void act('restart')}>
              Restart
            </button>
          )}
          {can(user, 'accounts:write') && (
            <button type="button" className="danger" onClick={() => setDeleting(true)}>
              Delete
            </button>
          )}
        </div>
      </div>
      <ErrorNote error={action.error} />
      <p className="status-line" role="status">
        {action.notice}
      </p>
      {deleting && <DeleteAccount account={a} onCancel={() => setDeleting(false)} />}
      <Panel title="Status">
        <dl className="facts">
          <dt>Status</dt>
          <dd>
            <StatusBadge status={a.status} />
          </dd>
          <dt>Bank</dt>
          <dd>{bank?.name ?? a.bank_id}</dd>
          {a.blocked_at && (
            <>
              <dt>Blocked</dt>
              <dd>
                <span className="badge bad">blocked</span> since {when(a.blocked_at)}: {a.blocked_reason}. Scheduled
                logins are skipped until it is restarted.
              </dd>
            </>
          )}
          <dt>Last success</dt>
          <dd>{when(a.last_success_at)}</dd>
          {a.trust_expires_at && (
            <>
              <dt>Trusted until</dt>
              <dd>
                {when(a.trust_expires_at)}: until then the bank skips the code for this login
                {Date.parse(a.trust_expires_at) - Date.now() < 3 * 86_400_000 && (
                  <span className="badge warn">expires soon</span>
                )}
              </dd>
            </>
          )}
          <dt>Next run</dt>
          <dd>{a.next_run_at ? when(a.next_run_at) : 'manual only'}</dd>
          <dt>Failures in a row</dt>
          <dd>{a.consecutive_failures}</dd>
        </dl>
      </Panel>
      <Panel title="Sessions">
        <ListState
          ready={sessions.data !== undefined}
          error={sessions.error}
          empty={sessions.data?.data.length === 0 ? <p>No logins yet. Scrape now to run the first one.</p> : null}
        >
          <ListTable columns={['Started', 'State', { label: 'Stages', className: 'wide' }, 'Outcome']}>
            {sessions.data?.data.map((s) => (
              <tr key={s.id}>
                <td>
                  {when(s.started_at ?? s.queued_at)}
                  <div className="muted small">{s.trigger}</div>
                </td>
                <td>
                  <span className={`badge ${s.state === 'succeeded' ? 'ok' : s.state === 'failed' ? 'bad' : 'info'}`}>
                    {humanize(s.state)}
                  </span>
                </td>
                <td className="wide small">{s.stages.map((stage) => humanize(stage.name)).join(' → ') || '—'}</td>
                <td className="small">
                  {s.failure_category ? (
                    <>
                      <strong>{humanize(s.failure_category)}</strong>
                      {s.failure_message && <div className="muted">{s.failure_message}</div>}
                    </>
                  ) : s.state === 'succeeded' ? (
                    `${s.movements_new} new movements`
                  ) : (
                    '—'
                  )}
                </td>
              </tr>
            ))}
          </ListTable>
        </ListState>
      </Panel>
      {can(user, 'data:read') && (
        <Panel title="Movements">
          <ListState
            ready={movements.data !== undefined}
            error={movements.error}
            empty={
              movements.data?.data.length === 0 ? <p>No movements yet; they appear after a successful login.</p> : null
            }
          >
            <ListTable columns={['Booked', 'Description', { label: 'Amount', className: 'num' }]}>
              {movements.data?.data.map((m) => (
                <tr key={m.id}>
                  <td>{m.booked_at.slice(0, 10)}</td>
                  <td>
                    {m.name}
                    {m.reference && <div className="muted small">{m.reference}</div>}
                  </td>
                  <td className={`num ${m.amount.startsWith('-') ? 'debit' : 'credit'}`}>
                    {m.amount} {m.currency}
                  </td>
                </tr>
              ))}
            </ListTable>
          </ListState>
        </Panel>
      )}
      <AccountSettings id={id} bank={bank} editable={can(user, 'accounts:write')} />
    </>
  );
}

/** Deleting needs the account's name typed out, as the API requires. */
function DeleteAccount({ account, onCancel }: { account: Account; onCancel: () => void }) {
  const [, navigate] = useLocation();
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<unknown>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    try {
      await api('DELETE', `/accounts/${account.id}`, { confirmation_name: typed });
      navigate('/');
    } catch (failure) {
      setError(failure);
    }
  }
  return (
    <Panel title="Delete this account">
      <form className="form" onSubmit={submit}>
        <p>
          This removes the login, its credentials, sessions and movements. Type <strong>{account.name}</strong> to
          confirm.
        </p>
        <label htmlFor="confirm-name">Account name</label>
        {/* biome-ignore lint/a11y/noAutofocus: the dialog's only input */}
        <input id="confirm-name" value={typed} onChange={(e) => setTyped(e.target.value)} autoFocus />
        <ErrorNote error={error} />
        <div className="row">
          <button type="submit" className="danger" disabled={typed !== account.name}>
            Delete for good
          </button>
          <button type="button" className="secondary" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Panel>
  );
}
