import { Type } from 'typebox';
import { Nullable, Timestamp } from '../http/schemas.js';
import { MAX_PASSWORD_LENGTH } from './step.js';

export const ReauthTokenSchema = Type.Object(
  {
    token: Type.String({
      description: 'Single use; give it to `POST /v1/connect/session`. Shown once, stored hashed.',
    }),
    expires_at: Type.String({ format: 'date-time', description: '10 minutes after issue' }),
  },
  { description: 'A reauthorisation token' },
);

export const OpenSessionSchema = Type.Object(
  {
    reauth_token: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'From `POST /v1/accounts/:id/reauthorise`',
    }),
  },
  { additionalProperties: false },
);

export const SessionHeaders = Type.Object({
  'x-session-id': Type.String({
    minLength: 1,
    maxLength: 64,
    description: 'The connect session id (`id` of `POST /v1/connect/session`)',
  }),
});

export const CommitSchema = Type.Object(
  {
    otp: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'The code the bank sent; checked against the request descriptor first (CODE_FORMAT)',
      }),
    ),
    password: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_PASSWORD_LENGTH,
        description: 'The current bank password, when the form asked for `password`; stored encrypted',
      }),
    ),
  },
  { additionalProperties: false, description: 'Exactly one of `otp` and `password`' },
);

const ResponseCode = Type.Union([Type.Literal(99), Type.Literal(102)], {
  description:
    '99: done, the bank accepted the login; 102: the bank wants more (see `ui`), or the login is still going',
});

const FormFieldSchema = Type.Object({
  type: Type.Literal('elements.input'),
  name: Type.Union([Type.Literal('otp'), Type.Literal('password')], { description: 'The field to commit' }),
  hint: Type.String({ description: "The bank's own prompt when it gave one" }),
  content_type: Type.Union([Type.Literal('number'), Type.Literal('text'), Type.Literal('password')]),
  max_length: Type.Integer(),
});

const UiSchema = Nullable(
  Type.Object(
    { title: Type.String(), form: Type.Array(FormFieldSchema) },
    { description: 'The form to show; null when nothing is to be typed (done, or still in progress)' },
  ),
);

export const ConnectSessionSchema = Type.Object(
  {
    status: Type.Literal(200),
    message: Type.String(),
    id: Type.String({ description: 'The connect session id (`ses_…`): send it as `x-session-id`' }),
    account_id: Type.String(),
    bank: Type.Object({ id: Type.String(), name: Type.String() }),
    expires_at: Timestamp,
    ui: UiSchema,
    reauth: Type.Object({ response_code: ResponseCode, message: Type.String() }),
  },
  { description: 'A connect session (Mono-style)' },
);

export const CommitResultSchema = Type.Object(
  {
    status: Type.Literal(200),
    response_code: ResponseCode,
    message: Type.String(),
    id: Type.String({ description: 'The connect session id' }),
    ui: UiSchema,
    data: Nullable(
      Type.Object(
        { code: Type.String({ description: 'The account id (it does not change on reauthorisation)' }) },
        { description: 'Present with response_code 99' },
      ),
    ),
  },
  { description: 'The answer to a commit' },
);
