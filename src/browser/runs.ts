import type { Db } from '../store/db.js';
import type { Redactor } from './redact.js';
import type { RawEvidence } from './rpc.js';

const DAY_MS = 86_400_000;
/** Evidence HTML is cut to this many characters, so one broken page cannot fill the store. */
const MAX_HTML = 512 * 1024;
/** Old evidence is deleted at most this many rows per failure (the rest goes with the next failures). */
const PRUNE_BATCH = 100;

/** The session a browser login belongs to (passed by the engine beside the connector's context). */
export interface RunRef {
  sessionId: string;
  orgId: string;
  accountId: string;
}

/** Where browser logins record the script version they ran and, on failure, their evidence. */
export interface RunRecorder {
  started(ref: RunRef, bankId: string, version: string): Promise<void>;
  failed(ref: RunRef, error: string, evidence: RawEvidence | null, redactor: Redactor): Promise<void>;
}

export function makeRunRecorder(deps: {
  db: Db;
  clock: () => number;
  /** Evidence is kept this many days (0: forever) [OTPILOT_BROWSER_EVIDENCE_DAYS]. */
  retentionDays: number;
}): RunRecorder {
  const { db, clock } = deps;
  return {
    async started(ref, bankId, version) {
      await db
        .insertInto('browser_runs')
        .values({
          session_id: ref.sessionId,
          org_id: ref.orgId,
          account_id: ref.accountId,
          bank_id: bankId,
          script_version: version,
          created_at: clock(),
          failed_at: null,
          error: null,
          url: null,
          html: null,
          screenshot: null,
          console_errors: null,
        })
        .onConflict((oc) => oc.column('session_id').doUpdateSet({ script_version: version }))
        .execute();
    },
    async failed(ref, error, evidence, redactor) {
      const now = clock();
      await db
        .updateTable('browser_runs')
        .set({
          failed_at: now,
          error: redactor.apply(error).slice(0, 2000),
          url: evidence ? redactor.apply(evidence.url).slice(0, 2000) : null,
          html: evidence?.html ? redactor.apply(evidence.html).slice(0, MAX_HTML) : null,
          screenshot: evidence?.screenshot ?? null,
          console_errors: evidence ? JSON.stringify(evidence.console_errors.map((line) => redactor.apply(line))) : null,
        })
        .where('session_id', '=', ref.sessionId)
        .execute();
      if (deps.retentionDays > 0) {
        const old = await db
          .selectFrom('browser_runs')
          .select('session_id')
          .where('failed_at', '<', now - deps.retentionDays * DAY_MS)
          .where('url', 'is not', null)
          .limit(PRUNE_BATCH)
          .execute();
        if (old.length > 0) {
          await db
            .updateTable('browser_runs')
            .set({ html: null, screenshot: null, console_errors: null, url: null })
            .where(
              'session_id',
              'in',
              old.map((r) => r.session_id),
            )
            .execute();
        }
      }
    },
  };
}
