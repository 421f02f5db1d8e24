/**
 * The probe suite's request generator: reads the server's own OpenAPI document and makes, for every
 * operation, requests a careless or hostile client would send (bad JSON, wrong types, huge and
 * NUL-laden strings, injection strings, wrong content types, no or bad credentials).
 */

/** JSON Schema as the OpenAPI document carries it (only what the generator reads). */
export interface Schema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  minLength?: number;
  minItems?: number;
  minimum?: number;
  default?: unknown;
}

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  schema: Schema;
}

export interface Operation {
  method: string;
  /** OpenAPI path template, e.g. `/v1/accounts/{id}`. */
  path: string;
  parameters: Parameter[];
  body: Schema | null;
  /** The body's content type in the document (JSON, or Twilio's form). */
  bodyType: string | null;
  /** Statuses the document lists. */
  responses: string[];
  /** Needs credentials (the document names a security requirement). */
  secured: boolean;
  /** `x-scopes`: the API key scopes that allow the route, any one of them. */
  scopes: string[] | null;
}

export interface Probe {
  /** What the request tries, for the report. */
  label: string;
  method: string;
  /** Path and query, already encoded. */
  url: string;
  headers: Record<string, string>;
  body?: string;
}

type Doc = any;

/** Every operation of the document, with `$ref`s of bodies resolved. */
export function operations(doc: Doc): Operation[] {
  const resolve = (schema: Schema): Schema => {
    if (!schema.$ref) return schema;
    const name = schema.$ref.split('/').pop() ?? '';
    return resolve(doc.components?.schemas?.[name] ?? {});
  };
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries<Record<string, Doc>>(doc.paths)) {
    for (const [method, op] of Object.entries<Doc>(methods)) {
      const content = op.requestBody?.content ?? {};
      const bodyType = Object.keys(content)[0] ?? null;
      ops.push({
        method: method.toUpperCase(),
        path,
        parameters: (op.parameters ?? []).map((p: Doc) => ({
          name: p.name,
          in: p.in,
          schema: resolve(p.schema ?? {}),
        })),
        body: bodyType ? resolve(content[bodyType].schema ?? {}) : null,
        bodyType,
        responses: Object.keys(op.responses ?? {}),
        secured: Array.isArray(op.security) && op.security.length > 0,
        scopes: Array.isArray(op['x-scopes']) ? op['x-scopes'] : null,
      });
    }
  }
  return ops;
}

const types = (schema: Schema): string[] =>
  schema.anyOf
    ? schema.anyOf.flatMap(types)
    : Array.isArray(schema.type)
      ? schema.type
      : schema.type
        ? [schema.type]
        : schema.enum || schema.const !== undefined
          ? ['string']
          : [];

/** A value the schema accepts where that is easy to know (formats, enums, bounds); patterns are not honoured. */
export function sample(schema: Schema, depth = 0): unknown {
  if (schema.default !== undefined) return schema.default;
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  if (schema.anyOf) return sample(schema.anyOf.find((s) => s.type !== 'null') ?? schema.anyOf[0]!, depth);
  switch (types(schema)[0]) {
    case 'string':
      if (schema.format === 'date-time') return new Date().toISOString();
      if (schema.format === 'email') return 'probe@example.com';
      if (schema.format === 'uri') return 'http://127.0.0.1:9/probe';
      return 'probe'.padEnd(schema.minLength ?? 0, 'x');
    case 'integer':
    case 'number':
      return schema.minimum ?? 1;
    case 'boolean':
      return false;
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => sample(schema.items ?? {}, depth + 1));
    case 'object': {
      const value: Record<string, unknown> = {};
      if (depth < 4)
        for (const name of schema.required ?? []) value[name] = sample(schema.properties?.[name] ?? {}, depth + 1);
      return value;
    }
    default:
      return null;
  }
}

/** Strings that break naive SQL, shells, paths, templates and HTML, and text stores cannot keep. */
const HOSTILE_STRINGS = [
  "' OR '1'='1' --",
  '"; DROP TABLE accounts; --',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template injection, sent as text
  '${7*7}{{7*7}}%s%n',
  'a\u0000b',
  '\ud800',
  '\udfff tail',
  '\u202e\ufeff🙂',
  'x'.repeat(100_000),
];

const HOSTILE_NUMBERS = [-1, 0, 1.5, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308];

/** Values of the wrong kind for `schema`, and hostile values of the right kind. */
function badValues(schema: Schema): unknown[] {
  const kinds = new Set(types(schema));
  const out: unknown[] = [];
  if (!kinds.has('string')) out.push('12', ...HOSTILE_STRINGS.slice(0, 2));
  else out.push(...HOSTILE_STRINGS);
  if (!kinds.has('integer') && !kinds.has('number')) out.push(12345);
  else out.push(...HOSTILE_NUMBERS);
  if (!kinds.has('boolean')) out.push(true);
  if (!kinds.has('object')) out.push({ nested: 'a\u0000b' });
  if (!kinds.has('array')) out.push(['a\u0000b']);
  else
    out.push(
      Array.from({ length: 600 }, () => 'x'),
      [{ a: 1 }],
      ['a\u0000b'],
    );
  if (!kinds.has('null')) out.push(null);
  return out;
}

/** Raw (already encoded) path segments a client can send. */
const HOSTILE_SEGMENTS = [
  '%00',
  'acc_%00',
  '%E0%A4%A',
  '%ED%A0%80',
  '%',
  'x'.repeat(101),
  'x'.repeat(10_000),
  encodeURIComponent("' OR '1'='1"),
  '..%2F..%2Fetc%2Fpasswd',
  encodeURIComponent('<script>'),
  encodeURIComponent('🙂'),
];

/** Raw (already encoded) query values. */
const HOSTILE_QUERY = [
  '%00',
  'a%00b',
  '%E0%A4%A',
  '%ED%A0%80',
  '%',
  'abc',
  '-1',
  '1e309',
  '99999999999999999999999',
  'x'.repeat(10_000),
  encodeURIComponent("' OR '1'='1"),
  '',
];

export interface Context {
  /** Credentials headers for the operation (an API key for /v1, a session for the dashboard API). */
  auth(op: Operation): Record<string, string>;
  /** Real ids for path parameters, so body and query probes reach the handlers (fake ones otherwise). */
  id(op: Operation, name: string): string;
}

const fill = (op: Operation, value: (name: string) => string) =>
  op.path.replace(/\{([^}]+)\}/g, (_all, name: string) => value(name));

const json = (value: unknown) => JSON.stringify(value);

/**
 * Every probe of one operation; with `shallow`, only credentials, path parameters and whole bodies
 * (for a second mounting of the same handlers, whose fields the full run already covers).
 */
export function probesFor(op: Operation, ctx: Context, shallow = false): Probe[] {
  const probes: Probe[] = [];
  const auth = ctx.auth(op);
  const realPath = fill(op, (name) => encodeURIComponent(ctx.id(op, name)));
  const headerParams = Object.fromEntries(
    op.parameters.filter((p) => p.in === 'header').map((p) => [p.name, String(sample(p.schema))]),
  );
  const validBody = op.body ? sample(op.body) : undefined;
  const jsonBody = op.bodyType === 'application/json';
  const withBody = (body: string, type: string) => ({
    body,
    headers: { ...auth, ...headerParams, 'content-type': type },
  });
  // A body-less operation gets no body (a DELETE or POST with none is what clients send).
  const base = (): Pick<Probe, 'headers' | 'body'> =>
    validBody !== undefined && jsonBody
      ? withBody(json(validBody), 'application/json')
      : { headers: { ...auth, ...headerParams } };
  const add = (label: string, url: string, parts: Pick<Probe, 'headers' | 'body'>) =>
    probes.push({ label: `${op.method} ${op.path}: ${label}`, method: op.method, url, ...parts });

  // Credentials: none, a malformed key, an unknown session.
  add('no credentials', realPath, { ...base(), headers: { ...base().headers, authorization: '' } });
  add('unknown API key', realPath, {
    ...base(),
    headers: { ...base().headers, authorization: 'Api-Key otpk_AAAAAAAA_nope' },
  });
  add('NUL in the session cookie', realPath, {
    ...base(),
    headers: { ...base().headers, authorization: '', cookie: 'otpilot_session=ots_%00%27' },
  });

  // Path parameters, one at a time.
  for (const param of op.parameters.filter((p) => p.in === 'path')) {
    for (const segment of HOSTILE_SEGMENTS) {
      const url = fill(op, (name) => (name === param.name ? segment : encodeURIComponent(ctx.id(op, name))));
      add(`path ${param.name}=${segment.slice(0, 20)}`, url, base());
    }
  }

  // Query parameters, one at a time, plus an unknown one and a repeated one.
  const queries = shallow ? [] : op.parameters.filter((p) => p.in === 'query');
  for (const param of queries) {
    for (const value of HOSTILE_QUERY)
      add(`query ${param.name}=${value.slice(0, 20)}`, `${realPath}?${param.name}=${value}`, base());
    add(`query ${param.name} twice`, `${realPath}?${param.name}=1&${param.name}=2`, base());
  }
  add('unknown query parameter', `${realPath}?probe%00=1`, base());

  // Header parameters: hostile text (headers cannot carry NUL).
  for (const param of op.parameters.filter((p) => p.in === 'header')) {
    for (const value of ["' OR '1'='1", 'x'.repeat(4000), '%00']) {
      add(`header ${param.name}`, realPath, { ...base(), headers: { ...base().headers, [param.name]: value } });
    }
  }

  // Bodies: not JSON, wrong content types, too large, wrong top-level types.
  const method = op.method;
  if (method !== 'GET') {
    for (const [label, body] of [
      ['bad JSON', '{"a":'],
      ['bad JSON (NUL)', '\u0000'],
      ['deep JSON', `${'['.repeat(5000)}${']'.repeat(5000)}`],
      ['JSON array', '[]'],
      ['JSON null', 'null'],
      ['JSON number', '42'],
      ['JSON string', '"a\\u0000b"'],
      ['NUL field name', '{"a\\u0000b":1}'],
      ['__proto__', '{"__proto__":{"x":1}}'],
    ] as const) {
      add(label, realPath, withBody(body, 'application/json'));
    }
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/xml',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      'application/jsonx',
    ]) {
      add(`content-type ${type}`, realPath, withBody(validBody === undefined ? 'a=b' : json(validBody), type));
    }
    add('body over the limit', realPath, withBody(json({ pad: 'x'.repeat(1_100_000) }), 'application/json'));
  }

  // Body fields, one at a time (and one level into nested objects), over an otherwise valid body.
  if (
    !shallow &&
    op.body &&
    jsonBody &&
    typeof validBody === 'object' &&
    validBody !== null &&
    !Array.isArray(validBody)
  ) {
    const fields: [string[], Schema][] = [];
    for (const [name, schema] of Object.entries(op.body.properties ?? {})) {
      fields.push([[name], schema]);
      const inner = schema.anyOf?.find((s) => s.type === 'object') ?? (schema.type === 'object' ? schema : null);
      for (const [child, childSchema] of Object.entries(inner?.properties ?? {}))
        fields.push([[name, child], childSchema]);
    }
    for (const [path, schema] of fields) {
      for (const value of badValues(schema)) {
        const body = structuredClone(validBody) as Record<string, unknown>;
        if (path.length === 1) body[path[0]!] = value;
        else body[path[0]!] = { ...((body[path[0]!] as object | undefined) ?? {}), [path[1]!]: value };
        add(`body ${path.join('.')}=${json(value)?.slice(0, 24)}`, realPath, withBody(json(body), 'application/json'));
      }
    }
  }
  return probes;
}
