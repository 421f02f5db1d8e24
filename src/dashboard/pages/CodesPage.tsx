import { Link } from 'wouter';
import type { Account, CodeRow, List, MedianGroup } from '../api.js';
import { MedianBars } from '../charts.js';
import { humanize } from '../format.js';
import { useResource } from '../hooks.js';
import { useI18n } from '../i18n/index.js';
import { useLiveEvents } from '../live.js';
import { ListState, ListTable, Pager, Panel, useCursorPages } from '../ui.js';

const VERDICT_TONE: Record<CodeRow['verdict'], string> = {
  pending: 'info',
  accepted: 'ok',
  rejected: 'bad',
  expired: 'bad',
  withdrawn: 'neutral',
};

/** Every assistance request: source, time from prompt to code, verdict and who answered; medians per operator and account. */
export function CodesPage() {
  const { t, when, duration } = useI18n();
  const pages = useCursorPages();
  const codes = useResource<{
    data: CodeRow[];
    next_cursor: string | null;
    medians: { by_operator: MedianGroup[]; by_account: MedianGroup[] };
  }>(`/insights/codes?limit=50${pages.cursor ? `&cursor=${pages.cursor}` : ''}`);
  const accounts = useResource<List<Account>>('/accounts?limit=500');
  useLiveEvents((event) => {
    if (event.type === 'connected' || event.type.startsWith('assistance_')) codes.reload();
  });
  const accountName = (id: string) => accounts.data?.data.find((a) => a.id === id)?.name ?? id;
  const who = (row: CodeRow) =>
    !row.answered_by
      ? '—'
      : row.answered_by.type === 'system'
        ? t('codes.automatic')
        : (row.answered_by.label ?? humanize(row.answered_by.type));
  const medians = codes.data?.medians;

  return (
    <>
      <h1>{t('codes.title')}</h1>
      <p className="muted">{t('codes.intro')}</p>
      <Panel title={t('codes.medians')}>
        <ListState
          ready={medians !== undefined}
          error={codes.error}
          empty={medians && medians.by_account.length === 0 ? <p>{t('codes.noMedians')}</p> : null}
        >
          {medians && (
            <div className="medians">
              <figure>
                <figcaption>{t('codes.byOperator')}</figcaption>
                <MedianBars
                  label={t('codes.chart', { what: t('codes.byOperator').toLowerCase() })}
                  rows={medians.by_operator.map((m) => ({
                    name: m.key.startsWith('system:') ? t('codes.automatic') : (m.label ?? m.key),
                    median_ms: m.median_ms,
                  }))}
                />
              </figure>
              <figure>
                <figcaption>{t('codes.byAccount')}</figcaption>
                <MedianBars
                  label={t('codes.chart', { what: t('codes.byAccount').toLowerCase() })}
                  rows={medians.by_account.map((m) => ({ name: accountName(m.key), median_ms: m.median_ms }))}
                />
              </figure>
            </div>
          )}
        </ListState>
      </Panel>
      <Panel title={t('codes.list')}>
        <ListState
          ready={codes.data !== undefined}
          error={codes.error}
          empty={codes.data?.data.length === 0 ? <p>{t('codes.empty')}</p> : null}
        >
          <ListTable
            columns={[
              t('codes.when'),
              t('codes.account'),
              { label: t('codes.source'), className: 'wide' },
              { label: t('codes.time'), className: 'num' },
              t('codes.verdict'),
              { label: t('codes.who'), className: 'wide' },
            ]}
          >
            {codes.data?.data.map((row) => (
              <tr key={row.id}>
                <td>{when(row.created_at)}</td>
                <td>
                  <Link href={`/accounts/${row.account_id}`}>{accountName(row.account_id)}</Link>
                </td>
                <td className="wide">{row.source ? humanize(row.source) : '—'}</td>
                <td className="num">{row.time_to_code_ms === null ? '—' : duration(row.time_to_code_ms)}</td>
                <td>
                  <span className={`badge ${VERDICT_TONE[row.verdict]}`}>{t(`verdict.${row.verdict}`)}</span>
                </td>
                <td className="wide">{who(row)}</td>
              </tr>
            ))}
          </ListTable>
          <Pager pages={pages} nextCursor={codes.data?.next_cursor} />
        </ListState>
      </Panel>
    </>
  );
}
