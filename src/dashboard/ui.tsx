import { type InputHTMLAttributes, type ReactNode, useCallback, useState } from 'react';
import { scopesOf } from '../auth/roles.js';
import type { Scope } from '../core/scopes.js';
import { type AccountStatus, describe, type User } from './api.js';
import { useI18n } from './i18n/index.js';

/** What the signed-in user's role allows: the same scope list the server checks. */
export const can = (user: User, scope: Scope) => scopesOf(user.role).includes(scope);

const STATUS_TONE: Record<AccountStatus, string> = {
  idle: 'neutral',
  queued: 'info',
  running: 'info',
  awaiting_assistance: 'warn',
  blocked: 'bad',
};

export function StatusBadge({ status }: { status: AccountStatus }) {
  const { t } = useI18n();
  return <span className={`badge ${STATUS_TONE[status]}`}>{t(`status.${status}`)}</span>;
}

/** Cursor paging: the cursors of the pages before this one, so Previous works without a server-side offset. */
export function useCursorPages(): {
  cursor: string | null;
  page: number;
  next: (cursor: string) => void;
  previous: () => void;
  reset: () => void;
} {
  const [stack, setStack] = useState<string[]>([]);
  return {
    cursor: stack[stack.length - 1] ?? null,
    page: stack.length + 1,
    next: useCallback((cursor: string) => setStack((s) => [...s, cursor]), []),
    previous: useCallback(() => setStack((s) => s.slice(0, -1)), []),
    reset: useCallback(() => setStack([]), []),
  };
}

/** Previous / next under a paged list. */
export function Pager({
  pages,
  nextCursor,
}: {
  pages: ReturnType<typeof useCursorPages>;
  nextCursor: string | null | undefined;
}) {
  const { t } = useI18n();
  if (pages.page === 1 && !nextCursor) return null;
  return (
    <nav className="pager row" aria-label={t('common.page', { n: pages.page })}>
      <button type="button" className="secondary" onClick={pages.previous} disabled={pages.page === 1}>
        {t('common.previous')}
      </button>
      <span className="muted small">{t('common.page', { n: pages.page })}</span>
      <button
        type="button"
        className="secondary"
        onClick={() => nextCursor && pages.next(nextCursor)}
        disabled={!nextCursor}
      >
        {t('common.next')}
      </button>
    </nav>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {describe(error)}
    </p>
  );
}

/** A list that is still loading, failed, or has nothing yet says so in the same place (no layout jumps on reloads). */
export function ListState({
  ready,
  error,
  empty,
  children,
}: {
  /** The first answer arrived. */
  ready: boolean;
  error: unknown;
  /** What to show instead of the list when it has no rows; null when it has some. */
  empty: ReactNode | null;
  children: ReactNode;
}) {
  if (error && !ready) return <ErrorNote error={error} />;
  if (!ready) return <Loading />;
  return (
    <>
      {error ? <ErrorNote error={error} /> : null}
      {empty !== null ? <div className="empty">{empty}</div> : children}
    </>
  );
}

export function Loading() {
  const { t } = useI18n();
  return <p className="muted">{t('common.loading')}</p>;
}

/** A section with a heading, used on every page. */
export function Panel({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  const id = `panel-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <section className="panel" aria-labelledby={id}>
      <div className="panel-head">
        <h2 id={id}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A secret shown once (a new API key, a temporary password, backup codes). */
export function ShownOnce({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  return (
    <div className="shown-once" role="status">
      <p>
        <strong>{label}</strong> — copy it now; it will not be shown again.
      </p>
      <pre>
        <code>{value}</code>
      </pre>
      <div className="row">
        <button type="button" onClick={() => void navigator.clipboard?.writeText(value)}>
          Copy
        </button>
        <button type="button" className="secondary" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

/** A fieldset of checkboxes over a set of values (scopes, accounts, event types). */
export function CheckList({
  legend,
  options,
  chosen,
  onChange,
}: {
  legend: string;
  options: { value: string; label: string }[];
  chosen: ReadonlySet<string>;
  onChange: (next: Set<string>) => void;
}) {
  const toggle = (value: string) => {
    const next = new Set(chosen);
    if (next.has(value)) next.delete(value);
    else next.add(value);
    onChange(next);
  };
  return (
    <fieldset>
      <legend>{legend}</legend>
      <div className="checks">
        {options.map((option) => (
          <label key={option.value} className="check">
            <input type="checkbox" checked={chosen.has(option.value)} onChange={() => toggle(option.value)} />
            {option.label}
          </label>
        ))}
      </div>
    </fieldset>
  );
}

/** A column of a list table: `wide` ones hide on phones; an empty label is read out as "Actions". */
export type Column = string | { label: string; className?: 'wide' | 'num' };

/** The app's one table shape: a header row from `columns`, the rows as children. */
export function ListTable({ columns, children }: { columns: Column[]; children: ReactNode }) {
  return (
    <table className="list">
      <thead>
        <tr>
          {columns.map((column, i) => {
            const { label, className } = typeof column === 'string' ? { label: column, className: undefined } : column;
            return (
              // biome-ignore lint/suspicious/noArrayIndexKey: the columns are fixed per table
              <th key={i} scope="col" className={className}>
                {label || <span className="sr-only">Actions</span>}
              </th>
            );
          })}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

/** A labelled input (every input has a visible label); `onChange` gets the text. */
export function TextField({
  id,
  label,
  value,
  onChange,
  ...input
}: { id: string; label: string; value: string; onChange: (value: string) => void } & Omit<
  InputHTMLAttributes<HTMLInputElement>,
  'id' | 'value' | 'onChange'
>) {
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <input id={id} value={value} onChange={(event) => onChange(event.target.value)} {...input} />
    </>
  );
}
