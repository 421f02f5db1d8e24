export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface Api {
  readonly url: string;
  /** The default API key (absent on hand-built clients). */
  readonly key?: string;
  get<T = any>(path: string, key?: string | null): Promise<Reply<T>>;
  post<T = any>(path: string, body?: unknown, key?: string | null): Promise<Reply<T>>;
  put<T = any>(path: string, body?: unknown, key?: string | null): Promise<Reply<T>>;
  patch<T = any>(path: string, body?: unknown, key?: string | null): Promise<Reply<T>>;
  delete<T = any>(path: string, body?: unknown, key?: string | null): Promise<Reply<T>>;
  /** Raw request for odd cases (bad JSON, huge bodies, wrong content types). */
  raw(path: string, init: RequestInit): Promise<Reply>;
}

/** A tiny HTTP client for tests: JSON in and out, the API key in `Authorization: Api-Key`. */
export function makeApi(url: string, defaultKey: string): Api {
  async function send(method: string, path: string, body: unknown, key: string | null | undefined): Promise<Reply> {
    const headers: Record<string, string> = {};
    const useKey = key === undefined ? defaultKey : key;
    if (useKey !== null) headers.authorization = `Api-Key ${useKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return raw(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  }
  async function raw(path: string, init: RequestInit): Promise<Reply> {
    const response = await fetch(`${url}${path}`, init);
    const text = await response.text();
    let parsed: unknown = text;
    if (response.headers.get('content-type')?.includes('json') && text !== '') parsed = JSON.parse(text);
    return { status: response.status, body: parsed, headers: response.headers };
  }
  return {
    url,
    key: defaultKey,
    get: (path, key) => send('GET', path, undefined, key),
    post: (path, body, key) => send('POST', path, body, key),
    put: (path, body, key) => send('PUT', path, body, key),
    patch: (path, body, key) => send('PATCH', path, body, key),
    delete: (path, body, key) => send('DELETE', path, body, key),
    raw,
  };
}
