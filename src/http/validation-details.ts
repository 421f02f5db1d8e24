import type { FastifySchemaValidationError } from 'fastify';
import type { ErrorDetail } from '../core/errors.js';

/** Keywords of a branch that allows fixed values. */
const FIXED = new Set(['const', 'enum']);

/** The longest bad value echoed back, characters. */
const ECHO_LIMIT = 60;

function echo(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > ECHO_LIMIT ? `${text.slice(0, ECHO_LIMIT)}…` : text;
}

/** The values an error's branch allows, or null when the branch is not a fixed value. */
function allowed(error: FastifySchemaValidationError): unknown[] | null {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'const') return [params.allowedValue];
  if (error.keyword === 'enum') return (params.allowedValues as unknown[]) ?? [];
  if (error.keyword === 'type' && params.type === 'null') return [null];
  if (error.keyword === 'anyOf' || error.keyword === 'oneOf') return [];
  return null;
}

function oneOf(values: unknown[], data: unknown, verbose: boolean): string {
  const list = [...new Set(values.map((v) => JSON.stringify(v)))].join(', ');
  return verbose ? `${echo(data)} is not one of ${list}` : `must be one of ${list}`;
}

/**
 * Ajv's errors as `{ path, message }` details under `base` (`''` for the body). A union of fixed
 * values (TypeBox literals, enums) fails once per branch; those become one detail that names the
 * value sent and every allowed one. A nullable field keeps only what its non-null branch says.
 */
export function validationDetails(errors: FastifySchemaValidationError[], base: string): ErrorDetail[] {
  const consumed = new Set<FastifySchemaValidationError>();
  const details: ErrorDetail[] = [];
  /** The errors a union's branches report about the union's own value. */
  const branchesOf = (union: FastifySchemaValidationError) =>
    errors.filter(
      (e) => e !== union && e.instancePath === union.instancePath && e.schemaPath.startsWith(`${union.schemaPath}/`),
    );
  const unions = errors
    .filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const union of unions) {
    if (consumed.has(union)) continue;
    const branches = branchesOf(union);
    const values = branches.map(allowed);
    // Only a union whose failing branches are all fixed values, one of them at least not null.
    if (values.some((v) => v === null) || !branches.some((e) => FIXED.has(e.keyword))) continue;
    for (const e of [union, ...branches]) consumed.add(e);
    details.push({
      path: `${base}${union.instancePath}` || '/',
      message: oneOf(values.flat(), (union as { data?: unknown }).data, 'data' in union),
    });
  }
  // A nullable value that is not null: the null branch's "must be null" and the union's own error
  // say nothing the other branch does not.
  for (const union of unions) {
    if (consumed.has(union)) continue;
    const branches = branchesOf(union);
    const nullBranch = branches.find((e) => e.keyword === 'type' && (e.params as { type?: string }).type === 'null');
    if (!nullBranch) continue;
    consumed.add(union);
    consumed.add(nullBranch);
    const others = errors.filter((e) => !consumed.has(e) && e.schemaPath.startsWith(`${union.schemaPath}/`));
    const typeOnly = others.length === 1 && others[0]!.keyword === 'type' ? others[0] : undefined;
    if (typeOnly) {
      consumed.add(typeOnly);
      details.push({
        path: `${base}${union.instancePath}` || '/',
        message: `${typeOnly.message ?? 'is invalid'} or null`,
      });
    }
  }
  for (const error of errors) {
    if (consumed.has(error)) continue;
    const params = error.params as Record<string, unknown>;
    const path = `${base}${error.instancePath}`;
    if (error.keyword === 'additionalProperties')
      details.push({ path: `${path}/${String(params.additionalProperty)}`, message: 'is not a known field' });
    else if (error.keyword === 'required')
      details.push({ path: `${path}/${String(params.missingProperty)}`, message: 'is required' });
    else if (error.keyword === 'enum' || error.keyword === 'const')
      details.push({
        path: path || '/',
        message: oneOf(allowed(error) ?? [], (error as { data?: unknown }).data, 'data' in error),
      });
    else details.push({ path: path || '/', message: error.message ?? 'is invalid' });
  }
  return details;
}
