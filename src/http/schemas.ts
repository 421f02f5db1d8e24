import { type TSchema, Type } from 'typebox';
import { ApiError } from '../core/errors.js';

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    }),
  },
  { $id: 'Error', description: 'The one error shape of the API' },
);

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const Timestamp = Type.String({ format: 'date-time' });

/** One of a list of strings (`anyOf` of `const`s), typed as the list's union. */
export const Literals = <const T extends readonly string[]>(values: T) =>
  Type.Unsafe<T[number]>(Type.Union(values.map((value) => Type.Literal(value))));

export const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const AccountParams = Type.Object({ id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

export const listOf = <T extends TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), next_cursor: Nullable(Type.String()) });

/** Standard error responses a route documents besides its success. */
export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, Type.Ref('Error')]));

/** Cursors are the last id seen, made opaque so clients do not build them. */
export function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined || cursor === '') return null;
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[a-z]{3}_[0-9a-z]{26}$/.test(id)) {
    throw new ApiError('VALIDATION_FAILED', 'invalid cursor', {
      details: [{ path: '/cursor', message: 'is not a cursor from this API' }],
    });
  }
  return id;
}

/** `{ data, next_cursor }` from rows fetched with `limit + 1`. */
export function page<R extends { id: string }, V>(
  rows: R[],
  limit: number,
  view: (row: R) => V,
): { data: V[]; next_cursor: string | null } {
  const more = rows.length > limit;
  const slice = more ? rows.slice(0, limit) : rows;
  return { data: slice.map(view), next_cursor: more ? encodeCursor(slice[slice.length - 1]!.id) : null };
}

/** A cursor over a compound sort key (e.g. booking date, then id), opaque like the id cursors. */
export function encodeKeyCursor(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts), 'utf8').toString('base64url');
}

export function decodeKeyCursor(cursor: string | undefined, size: number): string[] | null {
  if (cursor === undefined || cursor === '') return null;
  try {
    const parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(parts) && parts.length === size && parts.every((p) => typeof p === 'string'))
      return parts as string[];
  } catch {
    // falls through to the refusal
  }
  throw new ApiError('VALIDATION_FAILED', 'invalid cursor', {
    details: [{ path: '/cursor', message: 'is not a cursor from this API' }],
  });
}
