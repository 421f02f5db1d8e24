import { Type } from 'typebox';
import { Literals, Nullable, Timestamp } from '../http/schemas.js';

export const ScriptSchema = Type.Object({
  bank_id: Type.String(),
  version: Type.String({ description: 'Semantic version, unique per bank; versions are immutable.' }),
  state: Literals(['draft', 'review', 'active', 'deprecated'] as const),
  sha256: Type.String(),
  credential_fields: Type.Array(
    Type.Object({ name: Type.String(), label: Type.String(), type: Type.String(), required: Type.Boolean() }),
  ),
  created_at: Timestamp,
  updated_at: Timestamp,
  pinned_accounts: Type.Array(Type.String(), {
    description: 'Accounts that run this version instead of the active one.',
  }),
  source: Type.Optional(Type.String({ description: 'The module text (only when one version is read).' })),
});

export const ScriptParams = Type.Object(
  { id: Type.String({ maxLength: 64 }), version: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);

export const EvidenceSchema = Type.Object({
  session_id: Type.String(),
  bank_id: Type.String(),
  script_version: Type.String({ description: 'The bank script version the login ran.' }),
  failed_at: Nullable(Timestamp),
  error: Nullable(Type.String()),
  url: Nullable(Type.String()),
  html: Nullable(Type.String({ description: "The page's HTML with every input's value masked and secrets redacted." })),
  screenshot_url: Nullable(Type.String({ description: 'Where the PNG screenshot is served (same authentication).' })),
  console_errors: Type.Array(Type.String()),
  stages: Type.Array(Type.Object({ name: Type.String(), at: Timestamp })),
});
