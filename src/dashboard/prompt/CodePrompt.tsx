import { useEffect, useMemo, useRef, useState } from 'react';
import type { Account, AssistanceRequest, List, Role } from '../api.js';
import { useResource, useStoredFlag } from '../hooks.js';
import { useI18n } from '../i18n/index.js';
import { useLiveEvents } from '../live.js';
import { notify, playChime, setTitleCount } from './alerts.js';
import { type Ended, PromptCard } from './PromptCard.js';

/** Preferences, shared with the settings page. */
export const SOUND_KEY = 'otpilot.alerts.sound';
export const NOTIFY_KEY = 'otpilot.alerts.notifications';

/** How long a closed prompt keeps saying how it ended before it goes away, ms. */
const ENDED_VISIBLE_MS = 8000;

function endedFrom(type: string, reason: string | undefined): Ended['verdict'] | null {
  switch (type) {
    case 'assistance_fulfilled':
      return 'accepted';
    case 'assistance_expired':
      return 'expired';
    case 'assistance_cancelled':
      return reason === 'attempts_exhausted' ? 'exhausted' : 'cancelled';
    default:
      return null;
  }
}

/**
 * The code prompt on every page: every pending assistance request of the organization, fed by the
 * event stream (the pending list is re-read on each assistance event and whenever the stream
 * reconnects, so nothing missed while offline stays hidden).
 */
export function CodePrompt({ role }: { role: Role }) {
  const pending = useResource<List<AssistanceRequest>>('/assistance-requests?state=pending&limit=50');
  const accounts = useResource<List<Account>>('/accounts?limit=500');
  const [ended, setEnded] = useState<Ended[]>([]);
  const [sound] = useStoredFlag(SOUND_KEY, true);
  const [notifications] = useStoredFlag(NOTIFY_KEY, true);
  const { t } = useI18n();
  const seen = useRef(new Set<string>());
  /** What the screen reader is told: the newest prompt, once. */
  const [announcement, setAnnouncement] = useState('');
  const shown = useRef(new Map<string, AssistanceRequest>());

  const names = useMemo(() => new Map((accounts.data?.data ?? []).map((a) => [a.id, a.name])), [accounts.data]);

  useLiveEvents((event) => {
    if (event.type === 'connected' || event.type.startsWith('assistance_')) pending.reload();
    if (event.type === 'assistance_required' && event.account_id && !names.has(event.account_id)) accounts.reload();
    const data = (event.data ?? {}) as { id?: string; reason?: string };
    const verdict = endedFrom(event.type, data.reason);
    const request = data.id ? shown.current.get(data.id) : undefined;
    if (verdict && request) {
      setEnded((list) => [...list.filter((e) => e.request.id !== request.id), { request, verdict, at: Date.now() }]);
    }
  });

  // Oldest first, so the newest is last: nearest the operator's eyes at the bottom of the stack, and the one focused.
  const requests = useMemo(
    () => [...(pending.data?.data ?? [])].sort((a, b) => a.created_at.localeCompare(b.created_at)),
    [pending.data],
  );
  const newest = [...requests].reverse().find((r) => r.type === 'otp' && Date.parse(r.expires_at) > Date.now());
  for (const request of requests) shown.current.set(request.id, request);

  // A new request: chime, notify (once per request), and the title count.
  useEffect(() => {
    setTitleCount(requests.length);
    for (const request of requests) {
      if (seen.current.has(request.id)) continue;
      // A new account's name arrives with the accounts re-read the same event started: wait for it.
      if (!names.has(request.account_id) && accounts.loading) continue;
      seen.current.add(request.id);
      const title = t(request.type === 'approval' ? 'prompt.approvalNeeded' : 'prompt.codeNeeded', {
        name: names.get(request.account_id) ?? request.account_id,
      });
      setAnnouncement(t('prompt.announce', { title, prompt: request.descriptor.prompt ?? '' }));
      if (sound) playChime();
      if (notifications) {
        notify(
          `${request.type === 'approval' ? 'Approval' : 'Code'} needed: ${names.get(request.account_id) ?? 'a bank account'}`,
          request.descriptor.prompt ?? 'The bank is waiting for a one-time code.',
          request.id,
        );
      }
    }
  }, [requests, names, accounts.loading, sound, notifications, t]);
  useEffect(() => () => setTitleCount(0), []);

  // Endings fade after a while; an ended request that is pending again (never happens) would show twice.
  useEffect(() => {
    if (ended.length === 0) return;
    const timer = setTimeout(
      () => setEnded((list) => list.filter((e) => Date.now() - e.at < ENDED_VISIBLE_MS)),
      ENDED_VISIBLE_MS,
    );
    return () => clearTimeout(timer);
  }, [ended]);

  const pendingIds = new Set(requests.map((r) => r.id));
  const closed = ended.filter((e) => !pendingIds.has(e.request.id));
  const live = (
    // Always in the page, so screen readers are already listening when the first prompt arrives.
    <p className="sr-only" aria-live="assertive" aria-atomic="true">
      {announcement}
    </p>
  );
  if (requests.length === 0 && closed.length === 0) return live;

  return (
    <section className="prompts" aria-label={t('prompt.region')}>
      {live}
      {requests.map((request) => (
        <PromptCard
          key={request.id}
          request={request}
          takesFocus={request.id === newest?.id}
          accountName={names.get(request.account_id) ?? request.account_id}
          canSubmit={role !== 'viewer'}
          onChanged={pending.reload}
        />
      ))}
      {closed.map((e) => (
        <PromptCard
          key={e.request.id}
          request={e.request}
          accountName={names.get(e.request.account_id) ?? e.request.account_id}
          canSubmit={false}
          ended={e}
          onDismiss={() => setEnded((list) => list.filter((x) => x !== e))}
        />
      ))}
    </section>
  );
}
