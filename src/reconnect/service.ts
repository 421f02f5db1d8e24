import type { Static } from 'typebox';
import { findPendingForSession } from '../assistance/reads.js';
import { submitFailure } from '../assistance/refusals.js';
import { awaitVerdict, type CodeOutcome, type SubmitDeps, submitCode } from '../assistance/submit.js';
import { recordAudit } from '../audit/repo.js';
import { fail, ok, type Result } from '../core/result.js';
import { iso } from '../core/time.js';
import type { Bus } from '../events/bus.js';
import { queueLogin } from '../sessions/transitions.js';
import type { AppToken } from './app-tokens.js';
import { moveReconnect } from './repo.js';
import type { ReconnectViewSchema } from './schemas.js';

/**
 * Where a reconnect stands, as the widget shows it:
 * - `code_needed` / `approval_needed`: the login waits for the owner (request attached);
 * - `working`: the login is running (starting, or the bank is judging a code);
 * - `login_needed`: the last login ended (its code window passed, or it failed): start a new one;
 * - `completed`: done; the data was fetched.
 */
export type ReconnectState = ReconnectView['state'];

export type ReconnectView = Static<typeof ReconnectViewSchema>;

export interface ReconnectService {
  view(token: AppToken, id: string): Promise<Result<ReconnectView>>;
  /** Starts a fresh login when none is running (the old one's code window passed, or it failed). */
  start(token: AppToken, id: string): Promise<Result<ReconnectView>>;
  /** The owner's code, through the same compare-and-set path as every other source (`via: widget`). */
  submit(
    token: AppToken,
    id: string,
    code: string,
  ): Promise<Result<{ outcome: CodeOutcome; reconnect: ReconnectView }>>;
}

/** Longest wait for the bank's verdict on a widget code, ms. */
const VERDICT_WAIT_MS = 20_000;

export function makeReconnectService(deps: SubmitDeps & { bus: Bus; pollMs: number }): ReconnectService {
  const { db, transact, clock } = deps;

  async function load(token: AppToken, id: string) {
    const row = await db
      .selectFrom('reconnects as r')
      .innerJoin('accounts as a', 'a.id', 'r.account_id')
      .innerJoin('banks as b', 'b.id', 'a.bank_id')
      .select(['r.id', 'r.account_id', 'r.session_id', 'r.state', 'r.expires_at', 'a.name', 'b.name as bank'])
      .where('r.id', '=', id)
      .where('r.org_id', '=', token.orgId)
      .executeTakeFirst();
    if (!row) return fail('NOT_FOUND', 'reconnect not found');
    if (row.expires_at <= clock()) return fail('GONE', 'this reconnect has expired (they last 30 days)');
    return ok(row);
  }

  async function describe(row: {
    id: string;
    session_id: string;
    state: 'pending' | 'completed';
    expires_at: number;
    name: string;
    bank: string;
  }): Promise<ReconnectView> {
    const base = { id: row.id, account: { name: row.name, bank: row.bank }, expires_at: iso(row.expires_at) };
    if (row.state === 'completed') return { ...base, state: 'completed', request: null, message: null };
    const session = await db
      .selectFrom('sessions')
      .select(['state', 'failure_category'])
      .where('id', '=', row.session_id)
      .executeTakeFirst();
    const request = await findPendingForSession(db, row.session_id);
    switch (session?.state) {
      case 'succeeded':
        // The resolver marks it completed in a moment; the owner is done now.
        return { ...base, state: 'completed', request: null, message: null };
      case 'awaiting_assistance':
        // A code with the bank is being judged: nothing to type until the verdict.
        if (request && request.code_submitted_at === null) {
          return {
            ...base,
            state: request.type === 'approval' ? 'approval_needed' : 'code_needed',
            request: {
              id: request.id,
              type: request.type,
              descriptor: request.descriptor,
              attempts: request.attempts,
              max_attempts: request.max_attempts,
              expires_at: iso(request.expires_at),
            },
            message: request.last_error === 'rejected' ? 'The bank rejected the last code.' : null,
          };
        }
        return { ...base, state: 'working', request: null, message: null };
      case 'queued':
      case 'running':
        return { ...base, state: 'working', request: null, message: null };
      case 'failed':
      case 'cancelled':
      case undefined:
        return {
          ...base,
          state: 'login_needed',
          request: null,
          message:
            session?.failure_category === 'assistance_expired'
              ? 'The code window closed. Start again to get a new code.'
              : 'The last attempt did not finish. Start again.',
        };
      default: {
        const never: never = session!.state;
        throw new Error(`unknown session state ${String(never)}`);
      }
    }
  }

  return {
    async view(token, id) {
      const row = await load(token, id);
      return row.ok ? ok(await describe(row.value)) : row;
    },

    async start(token, id) {
      const found = await load(token, id);
      if (!found.ok) return found;
      const row = found.value;
      if (row.state === 'completed') return ok(await describe(row));
      const now = clock();
      const sessionId = await transact(async (trx, uow) => {
        const login = await queueLogin(trx, uow, {
          orgId: token.orgId,
          accountId: row.account_id,
          trigger: 'manual',
          now,
          join: true,
        });
        if (!login) throw new Error('joined logins are never refused');
        if (login.sessionId !== row.session_id) {
          await moveReconnect(trx, { reconnectId: row.id, sessionId: login.sessionId, now });
        }
        if (!login.queued) return login.sessionId;
        const queued = login.sessionId;
        await recordAudit(
          trx,
          {
            orgId: token.orgId,
            actor: { type: 'app_token', id: token.id },
            action: 'reconnect.start',
            accountId: row.account_id,
            targetId: queued,
            outcome: 'queued',
            details: { reconnect_id: row.id },
          },
          now,
        );
        return queued;
      });
      return ok(await describe({ ...row, session_id: sessionId }));
    },

    async submit(token, id, code) {
      const found = await load(token, id);
      if (!found.ok) return found;
      const row = found.value;
      const current = await describe(row);
      if (current.state !== 'code_needed' || !current.request) {
        return fail('NO_PENDING_REQUEST', 'no code is being asked for right now', [
          { path: '/code', message: `the reconnect is ${current.state.replace('_', ' ')}` },
        ]);
      }
      // The owner's own source: the app token that opened the widget, limited to this account.
      const submitted = await submitCode(
        deps,
        { via: 'widget', orgId: token.orgId, actor: { type: 'app_token', id: token.id } },
        { accountId: row.account_id, requestId: current.request.id },
        code,
      );
      if (!submitted.ok) return submitFailure(submitted, '/code');
      const { outcome } = await awaitVerdict({ db, bus: deps.bus, pollMs: deps.pollMs }, submitted, VERDICT_WAIT_MS);
      return ok({ outcome, reconnect: await describe(row) });
    },
  };
}
