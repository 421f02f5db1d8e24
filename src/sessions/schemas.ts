import { Type } from 'typebox';
import { SESSION_STATES } from '../core/states.js';
import { Literals, Nullable, Timestamp } from '../http/schemas.js';

export const SessionSchema = Type.Object(
  {
    id: Type.String(),
    account_id: Type.String(),
    state: Literals(SESSION_STATES),
    trigger: Type.Union([Type.Literal('schedule'), Type.Literal('manual'), Type.Literal('restart')]),
    failure_category: Nullable(Type.String()),
    failure_message: Nullable(Type.String()),
    stages: Type.Array(Type.Object({ name: Type.String(), at: Timestamp })),
    cancel_requested: Type.Boolean(),
    movements_new: Type.Integer(),
    queued_at: Timestamp,
    started_at: Nullable(Timestamp),
    finished_at: Nullable(Timestamp),
  },
  { $id: 'Session' },
);

export const QueuedSchema = Type.Object({ queued: Type.Boolean(), session_id: Type.String() });
