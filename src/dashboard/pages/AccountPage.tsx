import { type FormEvent, useState } from 'react';
import { Link, useLocation } from 'wouter';
import {
  type Account,
  api,
  type Bank,
  type BankAccountBalance,
  type DayHealth,
  type List,
  type Movement,
  type RunHealth,
  type Session,
  type User,
} from '../api.js';
import { BalanceChart, HealthStrip } from '../charts.js';
import { humanize } from '../format.js';
import { useAction, useReloadOn, useResource } from '../hooks.js';
import { useI18n } from '../i18n/index.js';
import { useLiveEvents } from '../live.js';
import { can, ErrorNote, ListState, ListTable, Loading, Pager, Panel, StatusBadge, useCursorPages } from '../ui.js';
import { AccountSettings } from './AccountSettings.js';
import { SessionEvidence } from './SessionEvidence.js';

export const ACCOUNT_TABS = ['overview', 'movements', 'sessions', 'settings'] as const;
export type AccountTab = (typeof ACCOUNT_TABS)[number];

/**
 * One bank login: a header with its status and actions (and, when blocked, why and the one action
 * that unblocks it), then tabs: balances and login health, movements, sessions, settings.
 */
export function AccountPage({ id, tab, user }: { id: string; tab: AccountTab; user: User }) {
  const { t, when } = useI18n();
  const account = useResource<Account>(`/accounts/${id}`);
  const banks = useResource<{ data: Bank[] }>('/banks');
  const action = useAction();
  const [deleting, setDeleting] = useState(false);
  // Bumped by live events so the open tab re-reads what changed.
  const [version, setVersion] = useState(0);

  useLiveEvents((event) => {
    if (event.type !== 'connected' && event.account_id !== id) return;
    if (event.type !== 'bank_movement') account.reload();
    setVersion((v) => v + 1);
  });

  if (account.error && !account.data) {
    return (
      <>
        <h1>{t('nav.accounts')}</h1>
        <ErrorNote error={account.error} />
        <Link href="/">{t('common.back')}</Link>
      </>
    );
  }
  const a = account.data;
  if (!a) return <Loading />;
  const bank = banks.data?.data.find((b) => b.id === a.bank_id);

  const act = (path: 'scrape' | 'restart') =>
    action.run(
      async () => {
        await api('POST', `/accounts/${id}/${path}`);
        account.reload();
        setVersion((v) => v + 1);
      },
      path === 'scrape' ? t('account.scrapeQueued') : t('account.restarted'),
    );
  const canRun = can(user, 'sessions:write');
  const forgetTrust = () =>
    action.run(async () => {
      await api('DELETE', `/accounts/${id}/trust`);
      account.reload();
    }, t('account.trustForgotten'));

  return (
    <>
      <p className="crumbs">
        <Link href="/">{t('nav.accounts')}</Link> /
      </p>
      <header className="page-head account-head">
        <div>
          <h1>{a.name}</h1>
          <p className="sub">
            <StatusBadge status={a.status} /> {bank?.name ?? a.bank_id}
          </p>
        </div>
        <div className="row">
          {canRun && !a.blocked_at && (
            <button
              type="button"
              onClick={() => void act('scrape')}
              disabled={a.status === 'running' || a.status === 'awaiting_assistance'}
            >
              {t('account.scrape')}
            </button>
          )}
          {can(user, 'accounts:write') && (
            <button type="button" className="danger" onClick={() => setDeleting(true)}>
              {t('account.delete')}
            </button>
          )}
        </div>
      </header>
      <ErrorNote error={action.error} />
      <p className="status-line" role="status">
        {action.notice}
      </p>
      {deleting && <DeleteAccount account={a} onCancel={() => setDeleting(false)} />}
      {a.blocked_at ? (
        <Blocked account={a} canRun={canRun} onRestart={() => void act('restart')} />
      ) : (
        <dl className="facts inline-facts">
          <dt>{t('account.lastSuccess')}</dt>
          <dd>{when(a.last_success_at)}</dd>
          <dt>{t('account.nextRun')}</dt>
          <dd>{a.next_run_at ? when(a.next_run_at) : t('accounts.manualOnly')}</dd>
          {a.consecutive_failures > 0 && (
            <>
              <dt>{t('account.failures')}</dt>
              <dd>{a.consecutive_failures}</dd>
            </>
          )}
          {a.trust_expires_at && (
            <>
              <dt className="sr-only">Trust</dt>
              <dd className="span">
                {t('account.trusted', { when: when(a.trust_expires_at) })}
                {Date.parse(a.trust_expires_at) - Date.now() < 3 * 86_400_000 && (
                  <span className="badge warn">{t('account.expiresSoon')}</span>
                )}{' '}
                {can(user, 'accounts:write') && (
                  <button type="button" className="link" onClick={() => void forgetTrust()}>
                    {t('account.forgetTrust')}
                  </button>
                )}
              </dd>
            </>
          )}
          {a.trust_challenged_at && (
            <dd className="span">
              <span className="badge warn">{t('account.trustChallenged', { when: when(a.trust_challenged_at) })}</span>
            </dd>
          )}
          {a.live_session_since && (
            <dd className="span">{t('account.liveSession', { when: when(a.live_session_since) })}</dd>
          )}
        </dl>
      )}
      <nav className="tabs" aria-label={t('account.tabs')}>
        {ACCOUNT_TABS.map((name) => (
          <Link
            key={name}
            href={name === 'overview' ? `/accounts/${id}` : `/accounts/${id}/${name}`}
            aria-current={tab === name ? 'page' : undefined}
          >
            {t(`account.tab.${name}`)}
          </Link>
        ))}
      </nav>
      {tab === 'overview' && <Overview id={id} user={user} version={version} />}
      {tab === 'movements' && can(user, 'data:read') && <Movements id={id} version={version} />}
      {tab === 'sessions' && <Sessions id={id} version={version} />}
      {tab === 'settings' && (
        <AccountSettings
          id={id}
          bank={bank}
          editable={can(user, 'accounts:write')}
          // New credentials are what a refused password needs: saving them lifts the block too.
          onCredentialsSaved={a.blocked_reason === 'invalid_credentials' && canRun ? () => act('restart') : undefined}
        />
      )}
    </>
  );
}

/** Why the account is blocked and the one thing that unblocks it (instead of a next run that will not happen). */
function Blocked({ account, canRun, onRestart }: { account: Account; canRun: boolean; onRestart: () => void }) {
  const { t, when } = useI18n();
  const reason = account.blocked_reason ?? '';
  const why =
    reason === 'invalid_credentials'
      ? t('account.blocked.invalid_credentials')
      : reason === 'account_locked'
        ? t('account.blocked.account_locked')
        : t('account.blocked.failures', { reason: humanize(reason) });
  return (
    <section className="blocked" aria-labelledby="blocked-title">
      <h2 id="blocked-title">{t('account.blocked.title', { when: when(account.blocked_at) })}</h2>
      <p>{why}</p>
      {canRun &&
        (reason === 'invalid_credentials' ? (
          <Link className="button" href={`/accounts/${account.id}/settings`}>
            {t('account.blocked.fixCredentials')}
          </Link>
        ) : (
          <button type="button" onClick={onRestart}>
            {reason === 'account_locked' ? t('account.blocked.restartUnlocked') : t('account.blocked.restart')}
          </button>
        ))}
    </section>
  );
}

function Overview({ id, user, version }: { id: string; user: User; version: number }) {
  const { t, money } = useI18n();
  const balances = useResource<{ data: BankAccountBalance[] }>(
    can(user, 'data:read') ? `/accounts/${id}/insights/balances?days=90` : null,
  );
  const health = useResource<{ runs: RunHealth[]; days: DayHealth[] }>(`/accounts/${id}/insights/login-health?days=30`);
  useReloadOn(version, balances.reload, health.reload);
  const rows = balances.data?.data ?? [];
  return (
    <>
      <Panel title={t('account.health')}>
        <ListState ready={health.data !== undefined} error={health.error} empty={null}>
          {health.data && <HealthStrip days={health.data.days} runs={health.data.runs} />}
        </ListState>
      </Panel>
      {can(user, 'data:read') && (
        <Panel title={t('account.balances')}>
          <ListState
            ready={balances.data !== undefined}
            error={balances.error}
            empty={rows.length === 0 ? <p>{t('account.balances.empty')}</p> : null}
          >
            <div className="balances">
              {rows.map((b) => (
                <article key={b.id} className="balance" aria-labelledby={`bal-${b.id}`}>
                  <h3 id={`bal-${b.id}`}>
                    {b.name} <span className="muted small">{b.iban ?? b.type}</span>
                  </h3>
                  {b.balance_current === null ? (
                    <p className="muted">{t('account.balances.none')}</p>
                  ) : (
                    <>
                      <p className="amount">
                        {money(b.balance_current, b.currency)}
                        {b.balance_available !== null && b.balance_available !== b.balance_current && (
                          <span className="muted small">
                            {' '}
                            {t('account.balances.available', { amount: money(b.balance_available, b.currency) })}
                          </span>
                        )}
                      </p>
                      <BalanceChart name={b.name} currency={b.currency} history={b.history} />
                    </>
                  )}
                </article>
              ))}
            </div>
          </ListState>
        </Panel>
      )}
    </>
  );
}

interface MovementFilter {
  from: string;
  to: string;
  q: string;
  min_amount: string;
  max_amount: string;
  bank_account_id: string;
}
const NO_FILTER: MovementFilter = { from: '', to: '', q: '', min_amount: '', max_amount: '', bank_account_id: '' };

function Movements({ id, version }: { id: string; version: number }) {
  const { t, day, money } = useI18n();
  const [draft, setDraft] = useState<MovementFilter>(NO_FILTER);
  const [filter, setFilter] = useState<MovementFilter>(NO_FILTER);
  const pages = useCursorPages();
  const banks = useResource<{ data: BankAccountBalance[] }>(`/accounts/${id}/insights/balances?days=1`);
  const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v.trim() !== ''));
  const listQuery = new URLSearchParams(query);
  listQuery.set('limit', '50');
  if (pages.cursor) listQuery.set('cursor', pages.cursor);
  const movements = useResource<List<Movement>>(`/accounts/${id}/movements?${listQuery}`);
  useReloadOn(version, movements.reload);
  const bankName = (bankAccountId: string) => banks.data?.data.find((b) => b.id === bankAccountId)?.name;
  const filtered = query.toString() !== '';

  function apply(event: FormEvent) {
    event.preventDefault();
    pages.reset();
    setFilter(draft);
  }
  const field = (key: keyof MovementFilter, label: string, props: Record<string, unknown>) => (
    <div className="field">
      <label htmlFor={`mf-${key}`}>{label}</label>
      <input
        id={`mf-${key}`}
        value={draft[key]}
        onChange={(event) => setDraft({ ...draft, [key]: event.target.value })}
        {...props}
      />
    </div>
  );

  return (
    <Panel
      title={t('account.tab.movements')}
      actions={
        <a className="button secondary" href={`/accounts/${id}/movements.csv?${query}`} download>
          {t('movements.csv')}
        </a>
      }
    >
      <form className="filters" onSubmit={apply} aria-label={t('movements.filters')}>
        {field('from', t('movements.from'), { type: 'date' })}
        {field('to', t('movements.to'), { type: 'date' })}
        {field('q', t('movements.text'), { type: 'search', maxLength: 200 })}
        {field('min_amount', t('movements.min'), { inputMode: 'decimal', pattern: '[0-9]+([.][0-9]{1,4})?', size: 8 })}
        {field('max_amount', t('movements.max'), { inputMode: 'decimal', pattern: '[0-9]+([.][0-9]{1,4})?', size: 8 })}
        {(banks.data?.data.length ?? 0) > 1 && (
          <div className="field">
            <label htmlFor="mf-bank">{t('movements.bankAccount')}</label>
            <select
              id="mf-bank"
              value={draft.bank_account_id}
              onChange={(event) => setDraft({ ...draft, bank_account_id: event.target.value })}
            >
              <option value="">{t('movements.allBankAccounts')}</option>
              {banks.data?.data.map((b) => (
                <option key={b.id} value={b.id}>
                  {b.name}
                </option>
              ))}
            </select>
          </div>
        )}
        <div className="row">
          <button type="submit">{t('movements.apply')}</button>
          {filtered && (
            <button
              type="button"
              className="secondary"
              onClick={() => {
                setDraft(NO_FILTER);
                setFilter(NO_FILTER);
                pages.reset();
              }}
            >
              {t('movements.clear')}
            </button>
          )}
        </div>
      </form>
      <ListState
        ready={movements.data !== undefined}
        error={movements.error}
        empty={
          movements.data?.data.length === 0 ? <p>{filtered ? t('movements.noMatch') : t('movements.empty')}</p> : null
        }
      >
        <ListTable
          columns={[
            t('movements.booked'),
            t('movements.description'),
            { label: t('movements.amount'), className: 'num' },
          ]}
        >
          {movements.data?.data.map((m) => (
            <tr key={m.id}>
              <td>{day(m.booked_at)}</td>
              <td>
                {m.name}
                <div className="muted small">
                  {[m.reference, bankName(m.bank_account_id)].filter(Boolean).join(' · ')}
                </div>
              </td>
              <td className={`num ${m.amount.startsWith('-') ? 'debit' : 'credit'}`}>{money(m.amount, m.currency)}</td>
            </tr>
          ))}
        </ListTable>
        <Pager pages={pages} nextCursor={movements.data?.next_cursor} />
      </ListState>
    </Panel>
  );
}

function Sessions({ id, version }: { id: string; version: number }) {
  const { t, when } = useI18n();
  const pages = useCursorPages();
  const sessions = useResource<List<Session>>(
    `/accounts/${id}/sessions?limit=20${pages.cursor ? `&cursor=${pages.cursor}` : ''}`,
  );
  useReloadOn(version, sessions.reload);
  return (
    <Panel title={t('account.tab.sessions')}>
      <ListState
        ready={sessions.data !== undefined}
        error={sessions.error}
        empty={sessions.data?.data.length === 0 ? <p>{t('sessions.empty')}</p> : null}
      >
        <ListTable
          columns={[
            t('sessions.started'),
            t('sessions.state'),
            { label: t('sessions.stages'), className: 'wide' },
            t('sessions.outcome'),
          ]}
        >
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
              <td className="wide small">
                {s.stages.length === 0 ? (
                  '—'
                ) : (
                  <ol className="trail">
                    {s.stages.map((stage, i) => (
                      // biome-ignore lint/suspicious/noArrayIndexKey: a stage may repeat (a second code); its place is its identity
                      <li key={i}>
                        {humanize(stage.name)}{' '}
                        <time className="muted" dateTime={stage.at}>
                          {new Date(stage.at).toLocaleTimeString(undefined, { timeStyle: 'medium' })}
                        </time>
                      </li>
                    ))}
                  </ol>
                )}
              </td>
              <td className="small">
                {s.failure_category ? (
                  <>
                    <strong>{humanize(s.failure_category)}</strong>
                    {s.failure_message && <div className="muted">{s.failure_message}</div>}
                    {s.stages.some((stage) => stage.name.startsWith('script ')) && <SessionEvidence sessionId={s.id} />}
                  </>
                ) : s.state === 'succeeded' ? (
                  t('sessions.new', { n: s.movements_new })
                ) : (
                  '—'
                )}
              </td>
            </tr>
          ))}
        </ListTable>
        <Pager pages={pages} nextCursor={sessions.data?.next_cursor} />
      </ListState>
    </Panel>
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
