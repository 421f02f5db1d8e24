/**
 * What makes the OpenAPI document otpilot's API reference rather than a route dump: the feature
 * groups (tags) in reading order, the three ways to authenticate, the error shape, and an example
 * for every request and response body, built from the schemas so they cannot drift from them.
 */

/** Feature groups, in the order the reference shows them. */
export const TAGS = [
  { name: 'accounts', description: 'Bank logins: create, configure, read their status.' },
  { name: 'banks', description: 'The banks otpilot can log in to and the credentials each needs.' },
  { name: 'sessions', description: 'Logins (scrapes): queue one, follow its stages, cancel it.' },
  { name: 'otp', description: 'One-time codes: what the paused login waits for, and submitting the code.' },
  { name: 'movements', description: 'Stored transactions, filtered, paged or as CSV.' },
  { name: 'data', description: 'Live data calls (balances, bank accounts, transactions) with the reconnect flow.' },
  { name: 'reconnect', description: 'App tokens and the embeddable reconnect widget.' },
  { name: 'reauthorisation', description: 'Links that let an account holder log in again.' },
  { name: 'relays', description: 'SMS relays that forward the bank’s texts to otpilot.' },
  { name: 'webhooks', description: 'Endpoints that receive signed events, and their deliveries.' },
  { name: 'events', description: 'The organization’s event stream (Server-Sent Events).' },
  { name: 'insights', description: 'Read-only figures: login health, balances over time, time to code.' },
  { name: 'dashboard', description: 'Sign-in, users and the audit log (dashboard sessions).' },
  { name: 'system', description: 'Health and readiness probes.' },
];

export const SECURITY_SCHEMES = {
  apiKey: {
    type: 'apiKey',
    in: 'header',
    name: 'Authorization',
    description:
      '`Authorization: Api-Key otpk_…` (or `Bearer otpk_…`, or the `x-api-key` header). Keys carry scopes and may be limited to some accounts.',
  },
  session: {
    type: 'apiKey',
    in: 'cookie',
    name: 'otpilot_session',
    description:
      'The dashboard’s sign-in (`POST /auth/login`) sets this cookie; the same token works as `Authorization: Bearer …`. The dashboard calls the routes without `/v1`.',
  },
  appToken: {
    type: 'apiKey',
    in: 'header',
    name: 'x-app-token',
    description: 'A publishable app token (`otpa_…`) that only opens reconnects, from allowed origins.',
  },
};

export const API_DESCRIPTION = `Bank logins that pause for one-time codes, and the codes that let them go on.

## Authentication
- **API keys** for servers: \`Authorization: Api-Key otpk_…\`, on every \`/v1\` route.
- **Dashboard sessions**: the \`otpilot_session\` cookie from \`POST /auth/login\` (or \`Authorization: Bearer\`).
- **App tokens** for the reconnect widget: \`x-app-token: otpa_…\` on \`/widget/v1\`.

## Errors
Every refusal has one shape and a 4xx status (5xx only for faults on our side):

\`\`\`json
{ "error": { "code": "VALIDATION_FAILED", "message": "the request is not valid", "details": [{ "path": "/name", "message": "must NOT have fewer than 1 characters" }] } }
\`\`\`

\`code\` is stable (\`VALIDATION_FAILED\`, \`UNAUTHORIZED\`, \`FORBIDDEN\`, \`NOT_FOUND\`, \`CONFLICT\`, \`RATE_LIMITED\`, \`UNAVAILABLE\`, …); \`details\` names the fields of your request.

## Lists
Lists answer \`{ data, next_cursor }\`; pass \`cursor=<next_cursor>\` for the next page until it is \`null\`.`;

// biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document is plain JSON walked generically
type Json = any;

const FORMAT_EXAMPLES: Record<string, unknown> = {
  'date-time': '2026-03-14T09:26:53.000Z',
  date: '2026-03-14',
  uri: 'https://example.com/hooks/otpilot',
  email: 'ops@example.com',
  uuid: '3f0c2c4e-8a8e-4b59-9a43-2f4b7b3c1d10',
};

/** A value that fits `schema`: its own example or default first, else one made from its type. */
export function exampleOf(schema: Json, components: Json, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 8) return null;
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.split('/').pop();
    return exampleOf(components?.schemas?.[name], components, depth + 1);
  }
  if (schema.example !== undefined) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if (schema.const !== undefined) return schema.const;
  if (schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum)) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf']) {
    if (Array.isArray(schema[key])) {
      const first = schema[key].find((s: Json) => s?.type !== 'null') ?? schema[key][0];
      return exampleOf(first, components, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf))
    return Object.assign({}, ...schema.allOf.map((s: Json) => exampleOf(s, components, depth + 1)));
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
  switch (type) {
    case 'object':
    case undefined: {
      if (!schema.properties) return type === 'object' ? {} : null;
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(schema.properties)) out[key] = exampleOf(value, components, depth + 1);
      return out;
    }
    case 'array':
      return [exampleOf(schema.items, components, depth + 1)];
    case 'string':
      if (schema.format && FORMAT_EXAMPLES[schema.format] !== undefined) return FORMAT_EXAMPLES[schema.format];
      return schema.pattern ? 'string' : 'text';
    case 'integer':
      return schema.minimum ?? 1;
    case 'number':
      return schema.minimum ?? 1.5;
    case 'boolean':
      return true;
    default:
      return null;
  }
}

/** Routes reached with something other than an API key. */
function securityFor(path: string): Json[] | null {
  if (path.startsWith('/widget/v1/')) return [{ appToken: [] }];
  if (/^\/(auth\/|me($|\/)|users|audit)/.test(path))
    return path === '/auth/login' || path.startsWith('/auth/login/') ? [] : [{ session: [] }];
  return null;
}

/** Adds what the route schemas cannot say by themselves; returns the same document. */
export function finishDocument(doc: Json): Json {
  const components = doc.components ?? {};
  const used = new Set<string>();
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const [method, operation] of Object.entries<Json>(item)) {
      if (!['get', 'put', 'post', 'patch', 'delete'].includes(method)) continue;
      const security = securityFor(path);
      if (security && !operation.security) operation.security = security;
      if (!operation.tags || operation.tags.length === 0) operation.tags = ['system'];
      for (const tag of operation.tags) used.add(tag);
      const bodies = [
        operation.requestBody?.content,
        ...Object.values<Json>(operation.responses ?? {}).map((r) => r?.content),
      ];
      for (const content of bodies) {
        for (const media of Object.values<Json>(content ?? {})) {
          if (media && media.example === undefined && media.examples === undefined && media.schema)
            media.example = exampleOf(media.schema, components);
        }
      }
    }
  }
  doc.tags = TAGS.filter((tag) => used.has(tag.name)).concat(
    [...used].filter((name) => !TAGS.some((t) => t.name === name)).map((name) => ({ name, description: '' })),
  );
  return doc;
}
