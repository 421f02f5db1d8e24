import { Type } from 'typebox';
import { Nullable, Timestamp } from '../http/schemas.js';

export const SessionSchema = Type.Object(
  {
    id: Type.String(),
    account_id: Type.String(),
    state: Type.Union(
      ['queued', 'running', 'awaiting_assistance', 'succeeded', 'failed', 'cancelled'].map((s) => Type.Literal(s)),
    ),
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
