import { type FormEvent, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { EVENT_TYPES } from '../../core/events.js';
import { api, type List, type User, type WebhookDelivery, type WebhookEndpoint } from '../api.js';
import { humanize, when } from '../format.js';
import { useAction, useResource } from '../hooks.js';
import { CheckList, can, ErrorNote, ListState, ListTable, Panel, ShownOnce, TextField } from '../ui.js';

/** The organization's webhook endpoints; admins add them (the signing secret is shown once). */
export function WebhooksPage({ user }: { user: User }) {
  const endpoints = useResource<{ data: WebhookEndpoint[] }>('/webhooks');
  const [secret, setSecret] = useState<string | null>(null);
  const rows = endpoints.data?.data ?? [];
  return (
    <>
      <h1>Webhooks</h1>
      {secret && <ShownOnce label="Signing secret of the new endpoint" value={secret} onDone={() => setSecret(null)} />}
      {can(user, 'webhooks:write') && (
        <AddEndpoint
          onCreated={(s) => {
            setSecret(s);
            endpoints.reload();
          }}
        />
      )}
      <Panel title="Endpoints">
        <ListState
          ready={endpoints.data !== undefined}
          error={endpoints.error}
          empty={
            rows.length === 0 ? (
              <p>No endpoints. Events are still kept and readable as a stream at /v1/events.</p>
            ) : null
          }
        >
          <ListTable columns={['URL', { label: 'Events', className: 'wide' }, 'State']}>
            {rows.map((e) => (
              <tr key={e.id}>
                <td className="break">
                  <Link href={`/webhooks/${e.id}`}>{e.url}</Link>
                  {e.description && <div className="muted small">{e.description}</div>}
                </td>
                <td className="wide small">{e.events?.join(', ') ?? 'all'}</td>
                <td>
                  <EndpointState endpoint={e} />
                </td>
              </tr>
            ))}
          </ListTable>
        </ListState>
      </Panel>
    </>
  );
}

function EndpointState({ endpoint }: { endpoint: WebhookEndpoint }) {
  if (!endpoint.enabled) return <span className="badge bad">disabled</span>;
  if (endpoint.failing_since)
    return (
      <>
        <span className="badge warn">failing</span>
        <div className="muted small">since {when(endpoint.failing_since)}</div>
      </>
    );
  return <span className="badge ok">enabled</span>;
}

function AddEndpoint({ onCreated }: { onCreated: (secret: string) => void }) {
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<Set<string>>(new Set());
  const [error, setError] = useState<unknown>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const created = await api<{ secret: string }>('POST', '/webhooks', {
        url,
        description,
        events: events.size > 0 ? [...events] : null,
      });
      setUrl('');
      setDescription('');
      onCreated(created.secret);
    } catch (failure) {
      setError(failure);
    }
  }
  return (
    <Panel title="Add an endpoint">
      <form className="form" onSubmit={submit}>
        <TextField
          id="wh-url"
          label="URL"
          value={url}
          onChange={setUrl}
          type="url"
          required
          placeholder="https://example.com/otpilot"
        />
        <TextField
          id="wh-description"
          label="Description"
          value={description}
          onChange={setDescription}
          maxLength={500}
        />
        <CheckList
          legend="Events (none ticked: all)"
          options={EVENT_TYPES.map((type) => ({ value: type, label: type }))}
          chosen={events}
          onChange={setEvents}
        />
        <ErrorNote error={error} />
        <button type="submit">Add endpoint</button>
      </form>
    </Panel>
  );
}

/** One endpoint: its delivery log (attempts, answers, errors), retry, test event, enable/disable, delete. */
export function WebhookPage({ id, user }: { id: string; user: User }) {
  const [, navigate] = useLocation();
  const endpoint = useResource<WebhookEndpoint>(`/webhooks/${id}`);
  const deliveries = useResource<List<WebhookDelivery>>(`/webhooks/${id}/deliveries?limit=100`);
  const { error, notice, run: perform } = useAction();
  const writable = can(user, 'webhooks:write');
  const run = (action: () => Promise<unknown>, done: string) =>
    perform(async () => {
      await action();
      endpoint.reload();
      deliveries.reload();
    }, done);

  const e = endpoint.data;
  if (!e) return endpoint.error ? <ErrorNote error={endpoint.error} /> : <p className="muted">Loading…</p>;
  const rows = deliveries.data?.data ?? [];
  return (
    <>
      <p className="crumbs">
        <Link href="/webhooks">Webhooks</Link> /
      </p>
      <div className="page-head">
        <h1 className="break">{e.url}</h1>
        {writable && (
          <div className="row">
            <button
              type="button"
              onClick={() => void run(() => api('POST', `/webhooks/${id}/test`), 'Test event queued.')}
            >
              Send test event
            </button>
            <button
              type="button"
              className="secondary"
              onClick={() =>
                void run(
                  () => api('PATCH', `/webhooks/${id}`, { enabled: !e.enabled }),
                  e.enabled ? 'Disabled.' : 'Enabled.',
                )
              }
            >
              {e.enabled ? 'Disable' : 'Enable'}
            </button>
            <button
              type="button"
              className="danger"
              onClick={() => {
                if (window.confirm('Delete this endpoint? Its pending deliveries are dropped.'))
                  void run(() => api('DELETE', `/webhooks/${id}`).then(() => navigate('/webhooks')), 'Deleted.');
              }}
            >
              Delete
            </button>
          </div>
        )}
      </div>
      <ErrorNote error={error} />
      <p className="status-line" role="status">
        {notice}
      </p>
      <dl className="facts">
        <dt>State</dt>
        <dd>
          <EndpointState endpoint={e} /> {e.disabled_reason}
        </dd>
        <dt>Events</dt>
        <dd>{e.events?.join(', ') ?? 'all'}</dd>
      </dl>
      <Panel
        title="Deliveries"
        actions={
          <button type="button" className="secondary" onClick={deliveries.reload}>
            Refresh
          </button>
        }
      >
        <ListState
          ready={deliveries.data !== undefined}
          error={deliveries.error}
          empty={rows.length === 0 ? <p>Nothing delivered yet.</p> : null}
        >
          <ListTable columns={['When', 'Event', 'Result', '']}>
            {rows.map((d) => (
              <tr key={d.id}>
                <td>{when(d.updated_at)}</td>
                <td className="small">
                  <code>{d.event_id}</code>
                </td>
                <td className="small">
                  <span
                    className={`badge ${d.status === 'succeeded' ? 'ok' : d.status === 'pending' ? 'info' : 'bad'}`}
                  >
                    {humanize(d.status)}
                  </span>{' '}
                  attempt {d.attempt}
                  {d.response_status !== null && ` · HTTP ${d.response_status}`}
                  {d.duration_ms !== null && ` · ${d.duration_ms} ms`}
                  {d.error && <div className="muted">{d.error}</div>}
                  {d.next_attempt_at && d.status !== 'succeeded' && (
                    <div className="muted">next try {when(d.next_attempt_at)}</div>
                  )}
                </td>
                <td>
                  {writable && d.status !== 'succeeded' && (
                    <button
                      type="button"
                      className="link"
                      onClick={() =>
                        void run(() => api('POST', `/webhooks/${id}/deliveries/${d.id}/retry`), 'Retry queued.')
                      }
                    >
                      Retry
                    </button>
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
