import { useState } from 'react';
import type { AuditEntry, List } from '../api.js';
import { humanize, when } from '../format.js';
import { useResource } from '../hooks.js';
import { ListState, ListTable, Panel } from '../ui.js';

/** Who did what (code submissions never carry the code). Newest first, 100 per page. */
export function AuditPage() {
  const [cursor, setCursor] = useState<string | null>(null);
  const [action, setAction] = useState('');
  const query = new URLSearchParams({ limit: '100' });
  if (cursor) query.set('cursor', cursor);
  if (action) query.set('action', action);
  const entries = useResource<List<AuditEntry>>(`/audit?${query}`);
  const rows = entries.data?.data ?? [];
  return (
    <>
      <h1>Audit log</h1>
      <Panel
        title="Entries"
        actions={
          <span className="inline-field">
            <label htmlFor="audit-action">Action</label>
            <input
              id="audit-action"
              value={action}
              placeholder="e.g. otp.submit"
              onChange={(e) => {
                setCursor(null);
                setAction(e.target.value.trim());
              }}
            />
          </span>
        }
      >
        <ListState
          ready={entries.data !== undefined}
          error={entries.error}
          empty={rows.length === 0 ? <p>Nothing recorded.</p> : null}
        >
          <ListTable columns={['When', 'Who', 'Action', { label: 'Details', className: 'wide' }]}>
            {rows.map((e) => (
              <tr key={e.id}>
                <td>{when(e.at)}</td>
                <td className="small">
                  {e.actor.type}
                  {e.actor.id && <div className="muted">{e.actor.id}</div>}
                </td>
                <td>
                  {e.action}
                  {e.outcome && <div className="muted small">{humanize(e.outcome)}</div>}
                </td>
                <td className="wide small">
                  {e.account_id && <div>{e.account_id}</div>}
                  {e.details ? <code>{JSON.stringify(e.details)}</code> : null}
                </td>
              </tr>
            ))}
          </ListTable>
          {entries.data?.next_cursor && (
            <button type="button" className="secondary" onClick={() => setCursor(entries.data?.next_cursor ?? null)}>
              Older entries
            </button>
          )}
        </ListState>
      </Panel>
    </>
  );
}
