import type { AssistanceRequest } from '../assistance/request.js';
import type { FieldSpec } from '../connectors/sdk.js';
import { type CodeDescriptor, MAX_CODE_LENGTH } from '../core/descriptor.js';
import type { SessionsTable } from '../store/schema.js';

/**
 * Where the login of a connect session stands, from the point of view of whoever drives it:
 * - `done`: the login (and its scrape) succeeded;
 * - `otp`: the bank waits for a code (a pending request, no code with the bank);
 * - `password`: the bank refused the stored password and the bank has a password field to ask for;
 * - `approval`: the bank waits for the user to approve in its app (nothing to type);
 * - `working`: queued, logging in, judging a code or fetching;
 * - `failed`: ended any other way; a new reauthorisation is needed.
 */
export type LoginStep =
  | { kind: 'done' }
  | { kind: 'otp'; request: OtpRequest }
  | { kind: 'password'; field: FieldSpec }
  | { kind: 'approval'; prompt: string | null }
  | { kind: 'working' }
  | { kind: 'failed'; reason: string; message: string };

export interface OtpRequest {
  id: string;
  descriptor: CodeDescriptor;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
}

/** Longest password the commit takes. */
export const MAX_PASSWORD_LENGTH = 256;

/** The bank's field that holds the password, if it has one (a `password`-typed credential field). */
export function passwordField(fields: readonly FieldSpec[]): FieldSpec | null {
  return fields.find((f) => f.name === 'password') ?? fields.find((f) => f.type === 'password') ?? null;
}

/**
 * The step of a login from its session row and the account's pending request (only one that belongs
 * to this login counts: another login's request is not this connect session's business).
 */
export function loginStep(
  session: Pick<SessionsTable, 'id' | 'state' | 'failure_category' | 'failure_message'>,
  pending: AssistanceRequest | undefined,
  password: FieldSpec | null,
): LoginStep {
  switch (session.state) {
    case 'succeeded':
      return { kind: 'done' };
    case 'failed':
      if (session.failure_category === 'invalid_credentials' && password) return { kind: 'password', field: password };
      return {
        kind: 'failed',
        reason: session.failure_category ?? 'failed',
        message: session.failure_message ?? 'the login failed',
      };
    case 'cancelled':
      return { kind: 'failed', reason: 'cancelled', message: session.failure_message ?? 'the login was cancelled' };
    case 'queued':
    case 'running':
    case 'awaiting_assistance': {
      if (!pending || pending.session_id !== session.id) return { kind: 'working' };
      switch (pending.type) {
        case 'approval':
          return { kind: 'approval', prompt: pending.descriptor.prompt };
        case 'otp':
          // A code with the bank: its verdict is the next step, not this request again.
          if (pending.code_submitted_at !== null) return { kind: 'working' };
          return {
            kind: 'otp',
            request: {
              id: pending.id,
              descriptor: pending.descriptor,
              attempts: pending.attempts,
              max_attempts: pending.max_attempts,
              last_error: pending.last_error,
            },
          };
        default: {
          const never: never = pending;
          throw new Error(`unknown request type ${String((never as { type: unknown }).type)}`);
        }
      }
    }
    default: {
      const never: never = session.state;
      throw new Error(`unknown session state ${String(never)}`);
    }
  }
}

/** Whether the step is one to answer with (the rest are waited through, up to the bound). */
export function isSettled(step: LoginStep): boolean {
  switch (step.kind) {
    case 'done':
    case 'otp':
    case 'password':
    case 'failed':
      return true;
    case 'approval':
    case 'working':
      return false;
    default: {
      const never: never = step;
      throw new Error(`unknown step ${JSON.stringify(never)}`);
    }
  }
}

export interface FormField {
  type: 'elements.input';
  name: 'otp' | 'password';
  hint: string;
  content_type: 'number' | 'text' | 'password';
  max_length: number;
}

export interface Ui {
  title: string;
  form: FormField[];
}

/** The form that asks for what the bank wants (null when it wants nothing typed). */
export function uiFor(step: LoginStep, bankName: string): Ui | null {
  switch (step.kind) {
    case 'otp': {
      const { descriptor } = step.request;
      const length = descriptor.length;
      const kind = descriptor.type === 'numeric' ? 'digit' : 'character';
      return {
        title: `${bankName}: enter the code`,
        form: [
          {
            type: 'elements.input',
            name: 'otp',
            hint:
              descriptor.prompt ??
              (length !== null ? `Enter the ${length}-${kind} code from the bank` : 'Enter the code from the bank'),
            content_type: descriptor.type === 'numeric' ? 'number' : 'text',
            max_length: length ?? MAX_CODE_LENGTH,
          },
        ],
      };
    }
    case 'password':
      return {
        title: `${bankName}: enter your password`,
        form: [
          {
            type: 'elements.input',
            name: 'password',
            hint: `The bank refused the stored ${step.field.label.toLowerCase()}; enter the current one`,
            content_type: 'password',
            max_length: MAX_PASSWORD_LENGTH,
          },
        ],
      };
    case 'done':
    case 'approval':
    case 'working':
    case 'failed':
      return null;
    default: {
      const never: never = step;
      throw new Error(`unknown step ${JSON.stringify(never)}`);
    }
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What to tell the person driving the flow; never holds a code or a password. */
export function messageFor(step: LoginStep): string {
  switch (step.kind) {
    case 'done':
      return 'the bank accepted the login: the account is reauthorised';
    case 'otp': {
      const { attempts, max_attempts, last_error } = step.request;
      const left = Math.max(0, max_attempts - attempts);
      if (attempts > 0 && last_error === 'rejected')
        return `the bank rejected the code; ${plural(left, 'attempt')} left`;
      return `the bank asks for a code (${plural(left, 'attempt')})`;
    }
    case 'password':
      return 'the bank refused the stored password; commit the current one';
    case 'approval':
      return `${step.prompt ?? "approve the login in the bank's app"}; GET /v1/connect/session with x-session-id waits for the next step`;
    case 'working':
      return 'the login is still in progress; GET /v1/connect/session with x-session-id waits for the next step';
    case 'failed':
      return `the login failed (${step.reason}): ${step.message}; ask for a new reauthorisation token`;
    default: {
      const never: never = step;
      throw new Error(`unknown step ${JSON.stringify(never)}`);
    }
  }
}
