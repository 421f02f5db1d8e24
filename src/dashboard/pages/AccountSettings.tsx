import { type FormEvent, useEffect, useState } from 'react';
import { type AccountConfig, api, type Bank } from '../api.js';
import { useResource } from '../hooks.js';
import { ErrorNote, Panel, TextField } from '../ui.js';

/** Form values: text inputs hold strings; empty means "none" for optional settings. */
type Form = {
  login_mode: string;
  schedule: string;
  assist_timeout_seconds: string;
  fatal_threshold: string;
  otp_phone: string;
  sms_sender: string;
  sms_code_pattern: string;
  on_no_code_source: string;
  notification_endpoint_url: string;
  webhook_url: string;
  resend_after_seconds: string;
  max_resends: string;
  quiet_start: string;
  quiet_end: string;
  quiet_zone: string;
  totp_secret: string;
};

const toForm = (c: AccountConfig): Form => ({
  login_mode: c.login_mode,
  schedule: c.schedule ?? '',
  assist_timeout_seconds: String(c.assist_timeout_seconds),
  fatal_threshold: String(c.fatal_threshold),
  otp_phone: c.otp_phone ?? '',
  sms_sender: c.sms_sender ?? '',
  sms_code_pattern: c.sms_code_pattern ?? '',
  on_no_code_source: c.on_no_code_source ?? 'wait',
  notification_endpoint_url: c.notification_endpoint_url ?? '',
  webhook_url: c.webhook_url ?? '',
  resend_after_seconds: c.resend_after_seconds === null ? '' : String(c.resend_after_seconds),
  max_resends: String(c.max_resends),
  quiet_start: c.quiet_hours?.start ?? '',
  quiet_end: c.quiet_hours?.end ?? '',
  quiet_zone: c.quiet_hours?.time_zone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
  totp_secret: '',
});

const orNull = (text: string) => (text.trim() === '' ? null : text.trim());
const intOrNull = (text: string) => (text.trim() === '' ? null : Number(text));

/** Only what changed is sent: the API treats absent fields as "keep". */
function changes(before: Form, after: Form): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const changed = (k: keyof Form) => before[k] !== after[k];
  if (changed('login_mode')) out.login_mode = after.login_mode;
  if (changed('schedule')) out.schedule = orNull(after.schedule);
  if (changed('assist_timeout_seconds')) out.assist_timeout_seconds = Number(after.assist_timeout_seconds);
  if (changed('fatal_threshold')) out.fatal_threshold = Number(after.fatal_threshold);
  if (changed('otp_phone')) out.otp_phone = orNull(after.otp_phone);
  if (changed('sms_sender')) out.sms_sender = orNull(after.sms_sender);
  if (changed('sms_code_pattern')) out.sms_code_pattern = orNull(after.sms_code_pattern);
  if (changed('on_no_code_source')) out.on_no_code_source = after.on_no_code_source;
  if (changed('notification_endpoint_url')) out.notification_endpoint_url = orNull(after.notification_endpoint_url);
  if (changed('webhook_url')) out.webhook_url = orNull(after.webhook_url);
  if (changed('resend_after_seconds')) out.resend_after_seconds = intOrNull(after.resend_after_seconds);
  if (changed('max_resends')) out.max_resends = Number(after.max_resends);
  if (changed('quiet_start') || changed('quiet_end') || changed('quiet_zone')) {
    out.quiet_hours =
      after.quiet_start && after.quiet_end
        ? { start: after.quiet_start, end: after.quiet_end, time_zone: after.quiet_zone }
        : null;
  }
  if (after.totp_secret.trim() !== '') out.totp_secret = after.totp_secret.trim();
  return out;
}

export function AccountSettings({
  id,
  bank,
  editable,
  onCredentialsSaved,
}: {
  id: string;
  bank: Bank | undefined;
  editable: boolean;
  /** Called after new credentials are saved (the account page lifts a block the old password caused). */
  onCredentialsSaved?: (() => Promise<void>) | undefined;
}) {
  const config = useResource<AccountConfig>(`/accounts/${id}/config`);
  const [saved, setSaved] = useState<Form | null>(null);
  const [form, setForm] = useState<Form | null>(null);
  const [credentials, setCredentials] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    if (!config.data) return;
    const next = toForm(config.data);
    setSaved(next);
    setForm(next);
  }, [config.data]);

  if (!form || !saved || !config.data)
    return (
      <Panel title="Settings">
        {config.error ? <ErrorNote error={config.error} /> : <p className="muted">Loading…</p>}
      </Panel>
    );

  const set = (key: keyof Form) => (event: { target: { value: string } }) =>
    setForm({ ...form, [key]: event.target.value });
  const field = (key: keyof Form, label: string, props: Record<string, unknown> = {}, hint?: string) => (
    <div className="field">
      <TextField
        id={`cfg-${key}`}
        label={label}
        value={form[key]}
        onChange={(value) => setForm({ ...form, [key]: value })}
        disabled={!editable}
        {...props}
      />
      {hint && <small className="muted">{hint}</small>}
    </div>
  );

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!form || !saved) return;
    setError(null);
    setNotice(null);
    const body = changes(saved, form);
    if (Object.values(credentials).some((v) => v !== '')) body.credentials = credentials;
    if (Object.keys(body).length === 0) {
      setNotice('Nothing changed.');
      return;
    }
    try {
      await api('PUT', `/accounts/${id}/config`, body);
      setCredentials({});
      setNotice('Settings saved.');
      if (body.credentials) await onCredentialsSaved?.();
      config.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  const stored = config.data.credentials !== null;
  return (
    <Panel title="Settings">
      <form className="form settings" onSubmit={submit}>
        <fieldset disabled={!editable}>
          <legend>Credentials</legend>
          <p className="muted small">
            {stored
              ? 'Stored encrypted and never shown. Fill in every field to replace them.'
              : 'No credentials yet: logins cannot start without them.'}
          </p>
          {bank?.credential_fields.map((f) => (
            <div className="field" key={f.name}>
              <label htmlFor={`cred-${f.name}`}>{f.label}</label>
              <input
                id={`cred-${f.name}`}
                type={f.type}
                autoComplete="off"
                placeholder={stored ? 'unchanged' : ''}
                value={credentials[f.name] ?? ''}
                onChange={(e) => setCredentials({ ...credentials, [f.name]: e.target.value })}
              />
            </div>
          ))}
        </fieldset>
        <fieldset disabled={!editable}>
          <legend>Login</legend>
          <div className="field">
            <label htmlFor="cfg-login_mode">Login mode</label>
            <select id="cfg-login_mode" value={form.login_mode} onChange={set('login_mode')}>
              <option value="assisted">Assisted: pause for a one-time code when the bank asks</option>
              <option value="simple">Simple: fail if the bank asks for a code</option>
            </select>
          </div>
          {field(
            'schedule',
            'Schedule',
            { placeholder: 'every 6h, or a cron like 0 7 * * *' },
            'Empty: manual only. Cron times are UTC.',
          )}
          {field('assist_timeout_seconds', 'Seconds to wait for a code', { type: 'number', min: 1, max: 3600 })}
          {field('fatal_threshold', 'Failures in a row before blocking', { type: 'number', min: 1, max: 100 })}
        </fieldset>
        <fieldset disabled={!editable}>
          <legend>Notifications</legend>
          {field('notification_endpoint_url', 'Notification endpoint URL', { type: 'url', placeholder: 'https://…' })}
          {field('webhook_url', 'Result webhook URL (movements)', { type: 'url', placeholder: 'https://…' })}
        </fieldset>
        <fieldset disabled={!editable}>
          <legend>OTP automation</legend>
          {field(
            'otp_phone',
            'Phone number that receives the codes',
            { type: 'tel', placeholder: '+31612345678' },
            'Relayed SMS to this number are matched to this account.',
          )}
          {field('sms_sender', 'Only SMS from this sender', { placeholder: 'any sender' })}
          {field(
            'sms_code_pattern',
            'Code pattern in the SMS (regular expression)',
            { placeholder: 'e.g. code:\\s*(\\d{6})' },
            'Optional: the first group (or the whole match) is the code.',
          )}
          <div className="field">
            <label htmlFor="cfg-on_no_code_source">When no one can provide a code</label>
            <select id="cfg-on_no_code_source" value={form.on_no_code_source} onChange={set('on_no_code_source')}>
              <option value="wait">Wait for a code until the deadline</option>
              <option value="fail">Fail at once (no operator signed in, no relay, no authenticator secret)</option>
            </select>
          </div>
          {field(
            'totp_secret',
            'Authenticator secret',
            {
              autoComplete: 'off',
              placeholder: config.data.totp_secret ? 'stored; type to replace' : 'base32 or otpauth:// URI',
            },
            'otpilot computes authenticator codes itself when the bank asks for one.',
          )}
          {field(
            'resend_after_seconds',
            'Ask for a new code after (seconds)',
            { type: 'number', min: 1, max: 3600 },
            'Empty: never.',
          )}
          {field('max_resends', 'New codes per request at most', { type: 'number', min: 0, max: 5 })}
          <div className="field-row">
            {field('quiet_start', 'Quiet hours from', { type: 'time' })}
            {field('quiet_end', 'until', { type: 'time' })}
            {field('quiet_zone', 'Time zone', { placeholder: 'Europe/Amsterdam' })}
          </div>
        </fieldset>
        <ErrorNote error={error} />
        <p className="status-line" role="status">
          {notice}
        </p>
        {editable && <button type="submit">Save settings</button>}
      </form>
    </Panel>
  );
}
