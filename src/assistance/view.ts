import type { Static } from 'typebox';
import { iso } from '../core/time.js';
import type { AssistanceRequest } from './request.js';
import type { ApprovalDescriptorSchema, AssistanceSchema, DescriptorSchema } from './schemas.js';

type Fields = Omit<Static<typeof AssistanceSchema>, 'type' | 'descriptor'>;

/**
 * The assistance request as the API and events show it (the `AssistanceRequest` schema), with the
 * descriptor narrowed by `type`: `otp` asks for a code; `approval` waits for the user to approve the
 * login in the bank's app (no code: attempts stay 0 of 0).
 */
export type AssistanceView = Fields &
  (
    | { type: 'otp'; descriptor: Static<typeof DescriptorSchema> }
    | { type: 'approval'; descriptor: Static<typeof ApprovalDescriptorSchema> }
  );

export function assistanceView(request: AssistanceRequest): AssistanceView {
  const fields: Fields = {
    id: request.id,
    account_id: request.account_id,
    session_id: request.session_id,
    state: request.state,
    attempts: request.attempts,
    max_attempts: request.max_attempts,
    resends: request.resends,
    last_error: request.last_error,
    code_in_flight: request.code_submitted_at !== null,
    created_at: iso(request.created_at),
    expires_at: iso(request.expires_at),
    resolved_at: iso(request.resolved_at),
    resolution: request.state === 'pending' ? null : { via: request.resolution_via, reason: request.resolution_reason },
  };
  return request.type === 'otp'
    ? { ...fields, type: 'otp', descriptor: request.descriptor }
    : { ...fields, type: 'approval', descriptor: request.descriptor };
}
