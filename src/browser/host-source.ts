/**
 * The code of the worker thread a bank script runs in (a string, so the same worker starts from src/
 * under vitest and from dist/). It is plain JavaScript on purpose: it holds the only references to
 * the script, its page and its browser context, and talks to the parent over one message port.
 *
 * Messages both ways: `{ kind: 'req', id, type, payload }` answered by `{ kind: 'res', id, ok, value | error }`,
 * and `{ kind: 'event', type, ... }` (stage, log) from the worker. See rpc.ts for the parent's side.
 */
export const HOST_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { chromium } = require(workerData.playwright);

let seq = 0;
const pending = new Map();
const callbacks = new Map();
const handlers = Object.create(null);
const consoleErrors = [];
let browser = null;
let context = null;
let page = null;
let script = null;
let pages = 0;
let pageLimitHit = false;

function request(type, payload) {
  const id = ++seq;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    parentPort.postMessage({ kind: 'req', id, type, payload });
  });
}
function event(type, data) {
  parentPort.postMessage(Object.assign({ kind: 'event', type }, data));
}
function errorOf(described) {
  const error = new Error(described && described.message ? described.message : 'failed');
  if (described && described.kind) error.kind = described.kind;
  error.name = (described && described.name) || 'Error';
  return error;
}
function describe(error) {
  return {
    name: error && error.name ? String(error.name) : 'Error',
    message: error && error.message ? String(error.message) : String(error),
    kind: error && typeof error.kind === 'string' ? error.kind : null,
  };
}
function register(fn) {
  const id = ++seq;
  callbacks.set(id, fn);
  return id;
}

parentPort.on('message', async (m) => {
  if (m.kind === 'res') {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(errorOf(m.error));
    return;
  }
  if (m.kind !== 'req') return;
  try {
    const handler = handlers[m.type];
    if (!handler) throw new Error('unknown request ' + m.type);
    const value = await handler(m.payload);
    parentPort.postMessage({ kind: 'res', id: m.id, ok: true, value });
  } catch (error) {
    const described = describe(error);
    if (m.type !== 'invoke' && m.type !== 'close') described.evidence = await evidence();
    parentPort.postMessage({ kind: 'res', id: m.id, ok: false, error: described });
  }
});

/** What a failure leaves behind: every input's value masked before the screenshot and the HTML. */
async function evidence() {
  if (!page || page.isClosed()) return null;
  try {
    await page.evaluate(() => {
      for (const el of document.querySelectorAll('input, textarea, select')) {
        if (el.type === 'checkbox' || el.type === 'radio' || el.type === 'submit' || el.type === 'button') continue;
        const masked = el.value ? '•'.repeat(Math.min(8, el.value.length)) : '';
        try { el.value = masked; } catch {}
        if (el.hasAttribute('value')) el.setAttribute('value', masked);
        if (el.tagName === 'TEXTAREA') el.textContent = masked;
      }
    });
    const screenshot = await page.screenshot({ type: 'png', timeout: 10000 });
    return {
      url: page.url(),
      html: await page.content(),
      screenshot: screenshot.toString('base64'),
      console_errors: consoleErrors.slice(),
    };
  } catch (error) {
    return { url: page.url(), html: null, screenshot: null, console_errors: consoleErrors.slice() };
  }
}

function scriptContext(start) {
  return {
    credentials: Object.freeze(Object.assign({}, start.credentials)),
    baseUrl: start.baseUrl,
    stage(name) { event('stage', { name: String(name) }); },
    log: {
      debug(msg, data) { event('log', { level: 'debug', msg: String(msg), data: data || {} }); },
      info(msg, data) { event('log', { level: 'info', msg: String(msg), data: data || {} }); },
      warn(msg, data) { event('log', { level: 'warn', msg: String(msg), data: data || {} }); },
    },
    fail(kind, message) {
      const error = new Error(String(message || kind));
      error.kind = String(kind);
      throw error;
    },
    async requestCode(req, tryCode, options) {
      const tryId = register(tryCode);
      const resendId = options && options.resend ? register(options.resend) : null;
      try {
        return await request('requestCode', { request: req, tryCode: tryId, resend: resendId });
      } finally {
        callbacks.delete(tryId);
        if (resendId !== null) callbacks.delete(resendId);
      }
    },
    async requestApproval(req, check, options) {
      const checkId = register(check);
      try {
        return await request('requestApproval', { request: req, check: checkId, pollMs: options && options.pollMs });
      } finally {
        callbacks.delete(checkId);
      }
    },
  };
}

let ctx = null;

handlers.start = async (start) => {
  const module = await import('data:text/javascript;base64,' + Buffer.from(start.source).toString('base64'));
  script = module.default && typeof module.default.login === 'function' ? module.default : module;
  if (typeof script.login !== 'function') throw new Error('the script exports no login(page, ctx)');
  browser = await chromium.connect(start.wsEndpoint, { timeout: start.limits.actionMs });
  context = await browser.newContext(Object.assign(
    { viewport: { width: 1280, height: 900 }, acceptDownloads: false, serviceWorkers: 'block' },
    start.storageState ? { storageState: start.storageState } : {},
  ));
  context.setDefaultTimeout(start.limits.actionMs);
  context.setDefaultNavigationTimeout(start.limits.navigationMs);
  context.on('page', (p) => {
    pages++;
    if (pages > start.limits.maxPages) {
      pageLimitHit = true;
      p.close().catch(() => {});
    }
    const note = (text) => {
      consoleErrors.push(String(text).slice(0, 500));
      if (consoleErrors.length > 50) consoleErrors.shift();
    };
    p.on('console', (msg) => { if (msg.type() === 'error') note(msg.text()); });
    p.on('pageerror', (error) => note(error && error.message));
  });
  page = await context.newPage();
  ctx = scriptContext(start);
  return { trustCookies: Array.isArray(script.trustCookies) ? script.trustCookies.map(String) : [] };
};

function checkPages() {
  if (pageLimitHit) throw Object.assign(new Error('the script opened more pages than allowed'), { kind: 'connector_broken' });
}

handlers.login = async () => {
  await script.login(page, ctx);
  checkPages();
  return { storageState: await context.storageState() };
};

// One page: the engine may ask for several data at once, the script answers them one after another.
let queue = Promise.resolve();
handlers.data = (payload) => {
  const run = queue.then(() => dataCall(payload));
  queue = run.catch(() => {});
  return run;
};

async function dataCall({ fn, args }) {
  if (typeof script[fn] !== 'function') {
    if (fn === 'keepAlive') return true;
    throw new Error('the script exports no ' + fn + '(page, ctx)');
  }
  const value = await script[fn](page, ctx, ...(args || []));
  checkPages();
  return value;
}

handlers.invoke = async ({ callback, args }) => {
  const fn = callbacks.get(callback);
  if (!fn) throw new Error('this request is over');
  return fn(...(args || []));
};

handlers.close = async () => {
  let storageState = null;
  try { if (context) storageState = await context.storageState(); } catch {}
  try { if (browser) await browser.close(); } catch {}
  return { storageState };
};
`;
