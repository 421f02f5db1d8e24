import { Type } from 'typebox';
import { Nullable, Timestamp } from '../http/schemas.js';

export const MovementSchema = Type.Object(
  {
    id: Type.String(),
    account_id: Type.String(),
    bank_account_id: Type.String(),
    external_id: Nullable(Type.String()),
    booked_at: Type.String(),
    amount: Type.String({ description: 'decimal string in the major unit, negative for debits' }),
    currency: Type.String(),
    name: Type.String(),
    reference: Nullable(Type.String()),
    received_at: Timestamp,
  },
  { $id: 'Movement' },
);
