import { Type } from 'typebox';
import { Literals, Timestamp } from '../http/schemas.js';
import { ROLES } from './roles.js';

export const RoleSchema = Literals(ROLES);

/** A dashboard user (never the password). */
export const UserSchema = Type.Object({
  id: Type.String(),
  email: Type.String(),
  role: RoleSchema,
  created_at: Timestamp,
});

export const TwoFactorStatusSchema = Type.Object({
  enabled: Type.Boolean(),
  pending: Type.Boolean({ description: 'enrollment started but not confirmed' }),
  backup_codes_left: Type.Integer(),
});

export const EnrollmentSchema = Type.Object({
  secret: Type.String({ description: 'base32, for typing into an authenticator by hand' }),
  otpauth_url: Type.String(),
  qr_svg: Type.String({ description: 'the otpauth URL as an SVG QR code' }),
});
