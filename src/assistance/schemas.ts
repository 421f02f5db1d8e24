import { Type } from 'typebox';
import { Nullable, Timestamp } from '../http/schemas.js';

export const DescriptorSchema = Type.Object({
  length: Nullable(Type.Integer()),
  type: Type.Union([Type.Literal('numeric'), Type.Literal('alphanumeric')]),
  purpose: Type.String(),
  prompt: Nullable(Type.String()),
  channel: Type.Optional(Nullable(Type.Union([Type.Literal('sms'), Type.Literal('authenticator')]))),
});

export const ApprovalDescriptorSchema = Type.Object({
  purpose: Type.String(),
  prompt: Nullable(Type.String()),
});

export const AssistanceStateSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('fulfilled'),
  Type.Literal('cancelled'),
  Type.Literal('expired'),
]);

export const AssistanceSchema = Type.Object(
  {
    id: Type.String(),
    account_id: Type.String(),
    session_id: Type.String(),
    type: Type.Union([Type.Literal('otp'), Type.Literal('approval')], {
      description: '`otp`: a code is needed; `approval`: approve the login in the bank app (no code is taken)',
    }),
    state: AssistanceStateSchema,
    descriptor: Type.Union([DescriptorSchema, ApprovalDescriptorSchema]),
    attempts: Type.Integer(),
    max_attempts: Type.Integer(),
    resends: Type.Integer(),
    last_error: Nullable(Type.String()),
    code_in_flight: Type.Boolean(),
    created_at: Timestamp,
    expires_at: Timestamp,
    resolved_at: Nullable(Timestamp),
    resolution: Nullable(Type.Object({ via: Nullable(Type.String()), reason: Nullable(Type.String()) })),
  },
  { $id: 'AssistanceRequest' },
);

export const SubmitCodeSchema = Type.Object(
  {
    code: Type.String({ minLength: 1, maxLength: 64, description: 'spaces and dashes are dropped' }),
    request_id: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const SubmitResultSchema = Type.Object({
  submitted: Type.Boolean(),
  request_id: Type.String(),
  outcome: Type.Optional(
    Type.Union(
      [Type.Literal('accepted'), Type.Literal('rejected'), Type.Literal('withdrawn'), Type.Literal('pending')],
      {
        description:
          "`accepted`/`rejected`: the bank's verdict on this code; `withdrawn`: the request closed before the bank judged it (the login ended); `pending`: no verdict within the wait",
      },
    ),
  ),
  assistance_request: Type.Optional(Type.Ref('AssistanceRequest')),
});
