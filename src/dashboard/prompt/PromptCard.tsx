import { type ClipboardEvent, useEffect, useId, useRef, useState } from 'react';
import { extractCode } from '../../core/code-extract.js';
import { MAX_CODE_LENGTH, normalizeCode } from '../../core/descriptor.js';
import { type AssistanceRequest, api, describe, HttpError } from '../api.js';
import { clock } from '../format.js';
import { useNow } from '../hooks.js';
import { type I18n, useI18n } from '../i18n/index.js';

/** How a request the operator was looking at ended. */
export interface Ended {
  request: AssistanceRequest;
  verdict: 'accepted' | 'expired' | 'cancelled' | 'exhausted';
  at: number;
}

type Feedback =
  | { kind: 'idle' }
  | { kind: 'sending' }
  | { kind: 'accepted' }
  | { kind: 'waiting' }
  | { kind: 'rejected'; attemptsLeft: number }
  | { kind: 'error'; message: string };

interface Props {
  request: AssistanceRequest;
  accountName: string;
  canSubmit: boolean;
  ended?: Ended;
  onChanged?: () => void;
  onDismiss?: () => void;
  /** The newest open prompt: it takes the focus unless the operator is typing in another field. */
  takesFocus?: boolean;
}

/** Only the characters a code of this type can hold. */
const allowed = (type: AssistanceRequest['descriptor']['type'], text: string) =>
  type === 'numeric' ? text.replace(/[^0-9]/g, '') : text.replace(/[^A-Za-z0-9]/g, '');

/** One waiting request: the bank's words, a live countdown, and an input that fits the descriptor. */
export function PromptCard({
  request,
  accountName,
  canSubmit,
  ended,
  onChanged,
  onDismiss,
  takesFocus = false,
}: Props) {
  const { t } = useI18n();
  const { descriptor } = request;
  const inputId = useId();
  const titleId = useId();
  const input = useRef<HTMLInputElement>(null);
  const [code, setCode] = useState('');
  const [feedback, setFeedback] = useState<Feedback>({ kind: 'idle' });
  const now = useNow(1000);
  const remaining = Date.parse(request.expires_at) - now;
  const timedOut = !ended && remaining <= 0;
  const maxLength = descriptor.length ?? MAX_CODE_LENGTH;
  const attemptsLeft = request.max_attempts - request.attempts;
  const approval = request.type === 'approval';
  const open = !ended && !timedOut && canSubmit && !approval;

  // The newest prompt takes the operator's hands (it opened, or the bank asked again), and the
  // focus comes back to a prompt whose code the bank refused. Never pulled away from a field the
  // operator is typing in (another prompt's half-typed code must reach the bank it is for).
  useEffect(() => {
    if (!open || feedback.kind === 'sending') return;
    if (!takesFocus && feedback.kind !== 'rejected') return;
    const active = document.activeElement;
    const typing =
      (active instanceof HTMLInputElement || active instanceof HTMLTextAreaElement) &&
      active !== input.current &&
      active.value !== '';
    if (typing) return;
    input.current?.focus();
  }, [open, feedback.kind, takesFocus]);

  async function submit(value: string) {
    if (feedback.kind === 'sending' || value.length === 0) return;
    setFeedback({ kind: 'sending' });
    try {
      const answer = await api<{
        outcome: 'accepted' | 'rejected' | 'pending';
        assistance_request?: AssistanceRequest;
      }>('POST', `/accounts/${request.account_id}/otp?wait=true`, { code: value, request_id: request.id });
      switch (answer.outcome) {
        case 'accepted':
          setFeedback({ kind: 'accepted' });
          break;
        case 'rejected': {
          const after = answer.assistance_request ?? request;
          setFeedback({ kind: 'rejected', attemptsLeft: Math.max(0, after.max_attempts - after.attempts) });
          setCode('');
          break;
        }
        case 'pending':
          setFeedback({ kind: 'waiting' });
          break;
        default: {
          const never: never = answer.outcome;
          throw new Error(`unexpected outcome ${String(never)}`);
        }
      }
    } catch (error) {
      const message =
        error instanceof HttpError && (error.code === 'STALE_REQUEST' || error.code === 'NO_PENDING_REQUEST')
          ? t('prompt.closed')
          : describe(error);
      setFeedback({ kind: 'error', message });
    }
    onChanged?.();
  }

  function take(value: string) {
    const next = allowed(descriptor.type, normalizeCode(value)).slice(0, maxLength);
    setCode(next);
    if (feedback.kind === 'rejected' || feedback.kind === 'error') setFeedback({ kind: 'idle' });
    // Submit as soon as the code is complete: one less tap at 3 a.m.
    if (descriptor.length !== null && next.length === descriptor.length) void submit(next);
  }

  // A whole SMS pasted into the box: take the one code in it, or say why not.
  function onPaste(event: ClipboardEvent<HTMLInputElement>) {
    const text = event.clipboardData.getData('text');
    const plain = normalizeCode(text);
    if (allowed(descriptor.type, plain) === plain && plain.length <= maxLength) return;
    event.preventDefault();
    const found = extractCode(text, descriptor);
    if (found.ok) {
      setCode(found.code);
      void submit(found.code);
    } else {
      setFeedback({
        kind: 'error',
        message:
          found.reason === 'ambiguous'
            ? t('prompt.ambiguous', { n: found.candidates.length })
            : t('prompt.notFound', { code: describeCode(descriptor, t) }),
      });
    }
  }

  const status = ended
    ? t(`prompt.ended.${ended.verdict}`)
    : timedOut
      ? t('prompt.ended.expired')
      : feedbackText(feedback, t);
  const tone = ended?.verdict === 'accepted' || feedback.kind === 'accepted' ? 'ok' : ended || timedOut ? 'bad' : '';

  return (
    <article className={`prompt ${tone}`} aria-labelledby={titleId}>
      <header>
        <h2 id={titleId}>{t(approval ? 'prompt.approvalNeeded' : 'prompt.codeNeeded', { name: accountName })}</h2>
        {onDismiss && (
          <button type="button" className="link" onClick={onDismiss} aria-label={t('prompt.dismiss')}>
            ×
          </button>
        )}
      </header>
      {descriptor.prompt && <p className="bank-words">“{descriptor.prompt}”</p>}
      {!ended && !timedOut && (
        <p className="meta">
          <span>
            {approval ? t('prompt.approve') : describeCode(descriptor, t)}
            {approval
              ? ''
              : descriptor.channel === 'sms'
                ? t('prompt.fromSms')
                : descriptor.channel === 'authenticator'
                  ? t('prompt.fromAuthenticator')
                  : ''}
          </span>
          {!approval && <span>{attemptsText(attemptsLeft, t)}</span>}
          <span role="timer" aria-label={t('prompt.timeLeft')} className={remaining < 30_000 ? 'urgent' : ''}>
            {t('prompt.expiresIn', { clock: clock(remaining) })}
          </span>
        </p>
      )}
      {open && (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            void submit(code);
          }}
        >
          <label htmlFor={inputId}>{t('prompt.enter', { code: describeCode(descriptor, t) })}</label>
          <div className="row">
            <input
              ref={input}
              id={inputId}
              className="code-input"
              value={code}
              onChange={(event) => take(event.target.value)}
              onPaste={onPaste}
              inputMode={descriptor.type === 'numeric' ? 'numeric' : 'text'}
              pattern={descriptor.type === 'numeric' ? '[0-9]*' : '[A-Za-z0-9]*'}
              autoComplete="one-time-code"
              autoCapitalize="characters"
              spellCheck={false}
              maxLength={maxLength}
              size={Math.min(maxLength, 12)}
              readOnly={feedback.kind === 'sending'}
              aria-describedby={`${inputId}-status`}
            />
            <button type="submit" disabled={feedback.kind === 'sending' || code.length === 0}>
              {feedback.kind === 'sending' ? t('prompt.checking') : t('prompt.submit')}
            </button>
          </div>
        </form>
      )}
      {!ended && !timedOut && !canSubmit && !approval && <p className="muted">{t('prompt.viewer')}</p>}
      <p
        id={`${inputId}-status`}
        className="status"
        role={tone === 'bad' || feedback.kind === 'error' ? 'alert' : 'status'}
      >
        {status}
      </p>
    </article>
  );
}

function feedbackText(feedback: Feedback, t: I18n['t']): string {
  switch (feedback.kind) {
    case 'idle':
      return '';
    case 'sending':
      return t('prompt.sending');
    case 'accepted':
      return t('prompt.ended.accepted');
    case 'waiting':
      return t('prompt.waiting');
    case 'rejected':
      return feedback.attemptsLeft > 0
        ? t('prompt.rejectedRetry', { left: attemptsText(feedback.attemptsLeft, t) })
        : t('prompt.rejected');
    case 'error':
      return feedback.message;
    default: {
      const never: never = feedback;
      throw new Error(`unknown feedback ${String(never)}`);
    }
  }
}

const attemptsText = (n: number, t: I18n['t']) => (n === 1 ? t('prompt.attemptLeft') : t('prompt.attemptsLeft', { n }));

/** `6-digit code`, in the operator's language. */
function describeCode(descriptor: { length: number | null; type: 'numeric' | 'alphanumeric' }, t: I18n['t']): string {
  if (descriptor.length)
    return t(descriptor.type === 'numeric' ? 'code.digits' : 'code.characters', { n: descriptor.length });
  return t(descriptor.type === 'numeric' ? 'code.numeric' : 'code.any');
}
