import { Type } from 'typebox';
import { Nullable, Timestamp } from '../http/schemas.js';

/** One audit log entry: who did what, never a secret or a code. */
export const EntrySchema = Type.Object({
  id: Type.String(),
  actor: Type.Object({ type: Type.String(), id: Nullable(Type.String()) }),
  action: Type.String(),
  account_id: Nullable(Type.String()),
  target_id: Nullable(Type.String()),
  outcome: Nullable(Type.String()),
  details: Type.Unknown(),
  at: Timestamp,
});
