import { useState } from 'react';
import { api, type List, type Movement, type User } from '../api.js';
import { when } from '../format.js';
import { useResource } from '../hooks.js';
import { useLiveEvents } from '../live.js';
import { can, ErrorNote, ListState, ListTable, Panel } from '../ui.js';

type PaymentState = 'pending' | 'matched' | 'ambiguous' | 'expired' | 'cancelled';

interface Candidate {
  movement: Movement;
  score: number;
  reasons: string[];
}

interface ExpectedPayment {
  id: string;
  external_id: string;
  account_id: string | null;
  amount: string;
  currency: string;
  payer_name: string;
  reference: string | null;
  expected_date: string | null;
  expires_at: string;
  state: PaymentState;
  match: {
    movement: Movement | null;
    score: number | null;
    reasons: string[];
    matched_at: string;
    matched_by: string;
  } | null;
  candidates: Candidate[];
  created_at: string;
}

const TONE: Record<PaymentState, string> = {
  pending: 'info',
  matched: 'ok',
  ambiguous: 'warn',
  expired: 'bad',
  cancelled: 'neutral',
};

const money = (p: { amount: string; currency: string }) => `${p.amount} ${p.currency}`;
const isToday = (iso: string) => iso.slice(0, 10) === new Date().toISOString().slice(0, 10);

/** Expected payments: the ones to resolve by hand first, then pending, matched today and expired. */
export function ReconciliationPage({ user }: { user: User }) {
  const ambiguous = useResource<List<ExpectedPayment>>('/expected-payments?state=ambiguous&limit=50');
  const pending = useResource<List<ExpectedPayment>>('/expected-payments?state=pending&limit=100');
  const matched = useResource<List<ExpectedPayment>>('/expected-payments?state=matched&limit=200');
  const expired = useResource<List<ExpectedPayment>>('/expected-payments?state=expired&limit=50');
  const writable = can(user, 'reconcile:write');
  const reloadAll = () => {
    ambiguous.reload();
    pending.reload();
    matched.reload();
    expired.reload();
  };
  useLiveEvents((event) => {
    if (event.type === 'connected' || event.type.startsWith('payment_')) reloadAll();
  });
  const today = (matched.data?.data ?? []).filter((p) => p.match && isToday(p.match.matched_at));

  return (
    <>
      <h1>Reconciliation</h1>
      <Panel title={`To resolve (${ambiguous.data?.data.length ?? 0})`}>
        <ListState
          ready={ambiguous.data !== undefined}
          error={ambiguous.error}
          empty={ambiguous.data?.data.length === 0 ? <p>Nothing to resolve: every match was clear.</p> : null}
        >
          {(ambiguous.data?.data ?? []).map((payment) => (
            <Ambiguous key={payment.id} payment={payment} writable={writable} onDone={reloadAll} />
          ))}
        </ListState>
      </Panel>
      <Panel title="Pending">
        <ListState
          ready={pending.data !== undefined}
          error={pending.error}
          empty={pending.data?.data.length === 0 ? <p>No payment is awaited.</p> : null}
        >
          <PaymentTable payments={pending.data?.data ?? []} writable={writable} onDone={reloadAll} />
        </ListState>
      </Panel>
      <Panel title="Matched today">
        <ListState
          ready={matched.data !== undefined}
          error={matched.error}
          empty={today.length === 0 ? <p>No payment arrived today yet.</p> : null}
        >
          <PaymentTable payments={today} writable={false} onDone={reloadAll} />
        </ListState>
      </Panel>
      <Panel title="Expired">
        <ListState
          ready={expired.data !== undefined}
          error={expired.error}
          empty={expired.data?.data.length === 0 ? <p>Nothing expired.</p> : null}
        >
          <PaymentTable payments={expired.data?.data ?? []} writable={false} onDone={reloadAll} />
        </ListState>
      </Panel>
    </>
  );
}

function PaymentTable({
  payments,
  writable,
  onDone,
}: {
  payments: ExpectedPayment[];
  writable: boolean;
  onDone: () => void;
}) {
  const [error, setError] = useState<unknown>(null);
  const cancel = async (id: string) => {
    setError(null);
    try {
      await api('POST', `/expected-payments/${id}/cancel`);
      onDone();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <ErrorNote error={error} />
      <ListTable
        columns={[
          'Payer',
          { label: 'Amount', className: 'num' },
          { label: 'Reference', className: 'wide' },
          'State',
          ...(writable ? [''] : []),
        ]}
      >
        {payments.map((p) => (
          <tr key={p.id}>
            <td>
              {p.payer_name}
              <div className="muted small">{p.external_id}</div>
            </td>
            <td className="num">{money(p)}</td>
            <td className="wide small">{p.reference ?? '—'}</td>
            <td>
              <span className={`badge ${TONE[p.state]}`}>{p.state}</span>
              <div className="muted small">
                {p.state === 'matched' && p.match
                  ? `${when(p.match.matched_at)} · ${p.match.matched_by}`
                  : `until ${when(p.expires_at)}`}
              </div>
            </td>
            {writable && (
              <td>
                <button
                  type="button"
                  className="secondary"
                  onClick={() => cancel(p.id)}
                  aria-label={`Cancel ${p.external_id}`}
                >
                  Cancel
                </button>
              </td>
            )}
          </tr>
        ))}
      </ListTable>
    </>
  );
}

/** One ambiguous payment: what was expected, and its equally good movements side by side. */
function Ambiguous({ payment, writable, onDone }: { payment: ExpectedPayment; writable: boolean; onDone: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const settle = async (movementId: string) => {
    setBusy(true);
    setError(null);
    try {
      await api('POST', `/expected-payments/${payment.id}/resolve`, { movement_id: movementId });
      onDone();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="resolve" aria-label={`Resolve ${payment.external_id}`}>
      <div className="candidates">
        <article className="card expected">
          <h3>Expected</h3>
          <p className="amount">{money(payment)}</p>
          <p>{payment.payer_name}</p>
          <p className="muted small">
            {payment.reference ?? 'no reference'} · {payment.external_id}
          </p>
        </article>
        {payment.candidates.map((c) => (
          <article className="card" key={c.movement.id}>
            <h3>Movement</h3>
            <p className="amount">{money(c.movement)}</p>
            <p>{c.movement.name}</p>
            <p className="muted small">
              {c.movement.reference ?? 'no reference'} · booked {c.movement.booked_at.slice(0, 10)}
            </p>
            <p className="muted small">
              score {c.score.toFixed(2)} · {c.reasons.join(', ')}
            </p>
            {writable && (
              <button type="button" disabled={busy} onClick={() => settle(c.movement.id)}>
                Settle with this
              </button>
            )}
          </article>
        ))}
      </div>
      <ErrorNote error={error} />
    </section>
  );
}
