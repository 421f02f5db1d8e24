import { performance } from 'node:perf_hooks';
import { fail, type Result } from '../core/result.js';
import { makePresence } from '../events/presence.js';
import { onEvent } from '../events/subscribe.js';
import { topics } from '../events/topics.js';
import type { Principal } from '../keys/principal.js';
import { commitCode, commitPassword } from './commit.js';
import {
  type CommitAnswer,
  type CommitInput,
  type ConnectAnswer,
  DEFAULT_STEP_WAIT_MS,
  makeConnectFlow,
  type ReauthDeps,
} from './flow.js';
import { anyWaiting, findWaitingFor } from './repo.js';
import { isSettled } from './step.js';
import { issueToken, openSession } from './tokens.js';

export type { CommitAnswer, CommitInput, ConnectAnswer, ReauthDeps } from './flow.js';

export interface ReauthService {
  /** A single-use token (10 minutes) for one account; only its hash is stored. */
  issueToken(principal: Principal, accountId: string): Promise<Result<{ token: string; expires_at: string }>>;
  /** Spends a token, starts (or joins) a login, and answers with its first step. */
  openSession(principal: Principal, token: string, signal: AbortSignal): Promise<Result<ConnectAnswer>>;
  /** The connect session's current step, waiting (bounded) for it to settle. */
  getSession(principal: Principal, connectId: string, signal: AbortSignal): Promise<Result<ConnectAnswer>>;
  /** A code (same path as every other) or a new password, then the next step. */
  commit(
    principal: Principal,
    connectId: string,
    input: CommitInput,
    signal: AbortSignal,
  ): Promise<Result<CommitAnswer>>;
  /** Completes connect sessions whose login succeeds while nobody is waiting on the API. */
  start(): void;
  stop(): void;
}

/** While connect sessions wait, how long the listener believes they still do before looking again, ms. */
const SOME_TRUST_MS = 60_000;

export function makeReauthService(deps: ReauthDeps): ReauthService {
  const { db, bus } = deps;
  const stepWaitMs = deps.stepWaitMs ?? DEFAULT_STEP_WAIT_MS;
  const flow = makeConnectFlow(deps);
  let unsubscribe: (() => void) | null = null;

  return {
    issueToken: (principal, accountId) => issueToken(deps, principal, accountId),
    openSession: (principal, token, signal) => openSession(deps, flow, principal, token, signal),

    async getSession(principal, connectId, signal) {
      const deadline = performance.now() + stepWaitMs;
      const loaded = await flow.load(principal, connectId);
      if (!loaded.ok) return loaded;
      const { cs, bank } = loaded.value;
      if (cs.reauthorized_at !== null) return flow.connectAnswer(cs, bank, { kind: 'done' });
      const next = await flow.awaitStep(loaded.value, signal, deadline, isSettled);
      return flow.connectAnswer(next.cs, bank, next.step);
    },

    async commit(principal, connectId, input, signal) {
      const deadline = performance.now() + stepWaitMs;
      const loaded = await flow.load(principal, connectId);
      if (!loaded.ok) return loaded;
      if (loaded.value.cs.reauthorized_at !== null)
        return fail('CONFLICT', 'this connect session is already complete (response_code 99)');
      switch (input.kind) {
        case 'otp':
          return commitCode(deps, flow, principal, loaded.value, input.otp, deadline, signal);
        case 'password':
          return commitPassword(deps, flow, principal, loaded.value, input.password, deadline, signal);
        default: {
          // Its kind only: the input holds a code or a password.
          const never: never = input;
          throw new Error(`unknown commit input ${String((never as { kind: unknown }).kind)}`);
        }
      }
    },

    start() {
      if (unsubscribe) return;
      // Most logins have no connect session waiting on them, most installations none at all: no look
      // per login once one found none, until a connect session is opened (announced on the bus).
      const waiting = makePresence({
        bus,
        topic: topics.created('connect_sessions'),
        look: () => anyWaiting(db),
        trustMs: SOME_TRUST_MS,
      });
      const off = onEvent(bus, ['scrape_succeeded'], (event) => {
        void waiting
          .mayExist()
          .then((may) => (may ? findWaitingFor(db, event.data.session_id) : undefined))
          .then((cs) => (cs ? flow.complete(cs) : undefined))
          .catch((error: unknown) => deps.log.error({ err: error }, 'completing a reauthorisation failed'));
      });
      unsubscribe = () => {
        off();
        waiting.stop();
      };
    },

    stop() {
      unsubscribe?.();
      unsubscribe = null;
    },
  };
}
