import { useState } from 'react';
import type { BrowserRun } from '../api.js';
import { useResource } from '../hooks.js';
import { useI18n } from '../i18n/index.js';
import { ErrorNote, Loading } from '../ui.js';

/**
 * What a failed browser login left behind (docs/browser-scripts.md "Failure evidence"): read only when
 * opened, since the HTML and the screenshot are large.
 */
export function SessionEvidence({ sessionId }: { sessionId: string }) {
  const { t } = useI18n();
  const [open, setOpen] = useState(false);
  const run = useResource<BrowserRun>(open ? `/sessions/${sessionId}/browser` : null);
  return (
    <details className="evidence" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{t('sessions.evidence')}</summary>
      {run.error !== undefined && <ErrorNote error={run.error} />}
      {open && run.data === undefined && run.error === undefined && <Loading />}
      {run.data && (
        <div>
          <p className="muted">{t('sessions.evidence.script', { version: run.data.script_version })}</p>
          {run.data.url && <p className="small">{run.data.url}</p>}
          {run.data.screenshot_url && <img src={run.data.screenshot_url} alt={t('sessions.evidence.screenshot')} />}
          {run.data.console_errors.length > 0 && (
            <ul className="small">
              {run.data.console_errors.map((line, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: console lines may repeat; their order is their identity
                <li key={i}>{line}</li>
              ))}
            </ul>
          )}
          {run.data.html && (
            <details>
              <summary>{t('sessions.evidence.html')}</summary>
              <pre className="small">{run.data.html}</pre>
            </details>
          )}
        </div>
      )}
    </details>
  );
}
