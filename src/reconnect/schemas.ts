import { Type } from 'typebox';
import { Nullable } from '../http/schemas.js';

/** Where a reconnect stands, as the widget shows it (see `ReconnectState`). */
export const ReconnectViewSchema = Type.Object({
  id: Type.String(),
  state: Type.Union([
    Type.Literal('code_needed'),
    Type.Literal('approval_needed'),
    Type.Literal('working'),
    Type.Literal('login_needed'),
    Type.Literal('completed'),
  ]),
  account: Type.Object({ name: Type.String(), bank: Type.String() }),
  request: Nullable(
    Type.Object({
      id: Type.String(),
      type: Type.String(),
      descriptor: Type.Unknown(),
      attempts: Type.Integer(),
      max_attempts: Type.Integer(),
      expires_at: Type.String(),
    }),
  ),
  message: Nullable(Type.String()),
  expires_at: Type.String(),
});
