import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Api, Reply } from './api.js';

/**
 * An integrator's page on its own origin that embeds the widget from `otpilotUrl`: a "Reconnect bank"
 * button opens it for the `app_token` and `reconnect_id` of the page's query, and the callbacks
 * write to `#log`.
 */
export async function startIntegratorPage(otpilotUrl: string): Promise<{ origin: string; close(): void }> {
  const integrator = createServer((request, response) => {
    const query = new URL(request.url ?? '/', 'http://x').searchParams;
    response.setHeader('content-type', 'text/html');
    response.end(`<!doctype html><html><body>
<h1>Acme Books</h1>
<button id="go">Reconnect bank</button>
<pre id="log"></pre>
<script src="${otpilotUrl}/widget.js"></script>
<script>
const log = (line) => { document.getElementById('log').textContent += line + '\\n'; };
document.getElementById('go').addEventListener('click', () => otpilot.reconnect({
  app_token: ${JSON.stringify(query.get('app_token'))},
  reconnect_id: ${JSON.stringify(query.get('reconnect_id'))},
  sandbox: true,
  onSuccess: (r) => log('success ' + r.reconnect_id),
  onError: (e) => log('error ' + e.code),
  onClose: () => log('closed'),
}));
</script></body></html>`);
  });
  await new Promise<void>((resolve) => integrator.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(integrator.address() as AddressInfo).port}`,
    close: () => integrator.close(),
  };
}

/** A widget endpoint as a browser on `origin` would call it (no Origin header: same origin). */
export function widgetCall(
  api: Api,
  appToken: string,
  method: string,
  path: string,
  options: { token?: string; origin?: string; body?: unknown } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { 'x-app-token': options.token ?? appToken };
  if (options.origin) headers.origin = options.origin;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return api.raw(`/widget/v1/reconnects/${path}`, {
    method,
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
}
