import { Type } from 'typebox';
import { INSTANCE_SCOPES, SCOPES } from '../core/scopes.js';
import { Literals, Nullable, Timestamp } from '../http/schemas.js';

/** An API key as listed (never the secret). */
export const KeySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String(),
  scopes: Type.Array(Literals([...SCOPES, ...INSTANCE_SCOPES])),
  account_ids: Nullable(Type.Array(Type.String())),
  created_at: Timestamp,
  last_used_at: Nullable(Timestamp),
  revoked_at: Nullable(Timestamp),
});
