/**
 * The reconnect widget (`/widget.js`). An integrator's page loads it with a script tag and calls
 * `otpilot.reconnect({ app_token, reconnect_id, sandbox, onSuccess, onError, onClose })`; a modal
 * asks the account's owner for the bank's code, built from the request's descriptor. It talks only
 * to the widget endpoints of the otpilot that served this script, with the publishable app token.
 */

interface Descriptor {
  length: number | null;
  type: 'numeric' | 'alphanumeric';
  prompt: string | null;
}

interface ReconnectView {
  id: string;
  state: 'code_needed' | 'approval_needed' | 'working' | 'login_needed' | 'completed';
  account: { name: string; bank: string };
  request: { id: string; descriptor: Descriptor; attempts: number; max_attempts: number; expires_at: string } | null;
  message: string | null;
}

export interface ReconnectOptions {
  app_token: string;
  reconnect_id: string;
  /** Shows that this is the sandbox bank (where the code is on the sandbox phone page). */
  sandbox?: boolean;
  onSuccess?: (result: { reconnect_id: string }) => void;
  onError?: (error: { code: string; message: string }) => void;
  onClose?: () => void;
  /** `en` or `es`; default: the first of the browser's languages the widget speaks, else English. */
  locale?: string;
}

/** The widget's words in each language it speaks (English is the reference). */
const WORDS = {
  en: {
    title: 'Reconnect your bank',
    titleBank: (bank: string) => `Reconnect ${bank}`,
    loading: 'Loading…',
    close: 'Close',
    sandbox: 'Sandbox',
    unreachable: 'otpilot cannot be reached from this page, or this site is not allowed to use the app token.',
    wrong: 'Something went wrong.',
    expired: 'This reconnect link has expired. Ask for a new one.',
    continue: 'Continue',
    code: 'Verification code',
    checking: 'Checking with your bank…',
    attemptsLeft: (n: number) => `${n} ${n === 1 ? 'attempt' : 'attempts'} left`,
    rejected: 'That code was not accepted.',
    accepted: 'Code accepted. Finishing…',
    digits: 'digits',
    lettersDigits: 'letters and digits',
    sandboxHint: 'Sandbox: the code is on the sandbox bank phone page.',
    approve: 'Approve this login in your bank app. This window updates by itself.',
    working: 'Talking to your bank…',
    again: 'Start again',
    unfinished: 'The last attempt did not finish.',
    done: 'Done',
    connectedAgain: 'Your bank is connected again.',
    connected: 'Connected.',
  },
  es: {
    title: 'Vuelve a conectar tu banco',
    titleBank: (bank: string) => `Vuelve a conectar ${bank}`,
    loading: 'Cargando…',
    close: 'Cerrar',
    sandbox: 'Pruebas',
    unreachable: 'No se puede contactar con otpilot desde esta página, o este sitio no puede usar el token de la app.',
    wrong: 'Algo salió mal.',
    expired: 'Este enlace ha caducado. Pide uno nuevo.',
    continue: 'Continuar',
    code: 'Código de verificación',
    checking: 'Comprobando con tu banco…',
    attemptsLeft: (n: number) => `${n} ${n === 1 ? 'intento restante' : 'intentos restantes'}`,
    rejected: 'El código no fue aceptado.',
    accepted: 'Código aceptado. Terminando…',
    digits: 'dígitos',
    lettersDigits: 'letras y dígitos',
    sandboxHint: 'Pruebas: el código está en la página del teléfono del banco de pruebas.',
    approve: 'Aprueba este acceso en la app de tu banco. Esta ventana se actualiza sola.',
    working: 'Hablando con tu banco…',
    again: 'Empezar de nuevo',
    unfinished: 'El último intento no terminó.',
    done: 'Hecho',
    connectedAgain: 'Tu banco vuelve a estar conectado.',
    connected: 'Conectado.',
  },
} as const;
type Words = (typeof WORDS)[keyof typeof WORDS];

function wordsFor(locale: string | undefined): Words {
  for (const language of [locale, ...(navigator.languages ?? [navigator.language])]) {
    const base = language?.toLowerCase().split('-')[0];
    if (base && base in WORDS) return WORDS[base as keyof typeof WORDS];
  }
  return WORDS.en;
}

class WidgetError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// Captured while the script runs: where this otpilot lives.
const script = document.currentScript as HTMLScriptElement | null;
const BASE = script ? new URL(script.src).origin : window.location.origin;
/** How often the widget looks again while the bank works, ms. */
const POLL_MS = 1000;

const STYLE = `
:host { all: initial; }
*, *::before, *::after { box-sizing: border-box; }
.overlay { position: fixed; inset: 0; background: rgb(15 20 30 / 0.55); display: grid; place-items: center; z-index: 2147483000; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1c2230; }
.dialog { background: #fff; border-radius: 14px; width: min(24rem, calc(100vw - 1.5rem)); max-height: calc(100vh - 1.5rem); overflow: auto; padding: 1.25rem; box-shadow: 0 20px 50px rgb(0 0 0 / 0.3); }
header { display: flex; justify-content: space-between; align-items: start; gap: 0.5rem; }
h2 { font-size: 1.15rem; margin: 0; }
.sub { color: #5b6475; margin: 0.2rem 0 0.8rem; font-size: 0.9rem; }
.close { background: none; border: none; font-size: 1.5rem; line-height: 1; cursor: pointer; color: #5b6475; padding: 0.1rem 0.3rem; }
label { display: block; font-weight: 600; margin-bottom: 0.3rem; }
.hint { color: #5b6475; font-size: 0.85rem; margin: 0 0 0.4rem; }
input { box-sizing: border-box; width: 100%; font: inherit; font-size: 1.5rem; letter-spacing: 0.2em; padding: 0.5rem 0.6rem; border: 1px solid #c5cbd6; border-radius: 8px; }
button.primary { margin-top: 0.75rem; width: 100%; font: inherit; font-weight: 600; padding: 0.65rem; border-radius: 8px; border: none; background: #2457d6; color: #fff; cursor: pointer; }
button.primary:disabled { opacity: 0.6; cursor: wait; }
:focus-visible { outline: 3px solid #2457d6; outline-offset: 2px; }
.status { min-height: 1.4em; margin: 0.6rem 0 0; }
.status.bad { color: #b42318; }
.status.ok { color: #137a3a; font-weight: 600; }
.badge { display: inline-block; font-size: 0.75rem; font-weight: 600; background: #fff1d0; color: #8a5a00; border-radius: 999px; padding: 0.05rem 0.5rem; }
`;

async function call(
  options: ReconnectOptions,
  w: Words,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: the answer's shape depends on the path; callers read known fields
): Promise<any> {
  let response: Response;
  try {
    response = await fetch(`${BASE}/widget/v1/reconnects/${encodeURIComponent(options.reconnect_id)}${path}`, {
      method,
      headers: { 'x-app-token': options.app_token, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : null,
      credentials: 'omit',
    });
  } catch {
    throw new WidgetError('NETWORK', w.unreachable);
  }
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    throw new WidgetError(
      payload?.error?.code ?? 'INTERNAL',
      payload?.error?.message ?? `otpilot answered ${response.status}`,
    );
  }
  return payload;
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & Record<string, unknown> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith('aria-') || key === 'role' || key === 'for') node.setAttribute(key, String(value));
    else (node as unknown as Record<string, unknown>)[key] = value;
  }
  node.append(...children);
  return node;
}

function describeCode(d: Descriptor, w: Words): string {
  const kind = d.type === 'numeric' ? w.digits : w.lettersDigits;
  return d.length ? `${d.length} ${kind}` : kind;
}

function reconnect(options: ReconnectOptions): { close(): void } {
  if (!options?.app_token || !options.reconnect_id)
    throw new Error('otpilot.reconnect needs app_token and reconnect_id');
  const w = wordsFor(options.locale);
  const host = element('div');
  host.setAttribute('lang', w === WORDS.es ? 'es' : 'en');
  host.setAttribute('data-otpilot-widget', '');
  const root = host.attachShadow({ mode: 'open' });
  const previousFocus = document.activeElement as HTMLElement | null;
  const titleId = 'otpilot-title';
  const title = element('h2', { id: titleId }, w.title);
  const sub = element('p', { className: 'sub' }, w.loading);
  const closeButton = element('button', { className: 'close', type: 'button', 'aria-label': w.close }, '×');
  const body = element('div');
  const status = element('p', { className: 'status', role: 'status' });
  const dialog = element(
    'div',
    { className: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId },
    element(
      'header',
      {},
      element('div', {}, title, ...(options.sandbox ? [element('span', { className: 'badge' }, w.sandbox)] : [])),
      closeButton,
    ),
    sub,
    body,
    status,
  );
  const overlay = element('div', { className: 'overlay' }, dialog);
  root.append(element('style', {}, STYLE), overlay);
  document.body.append(host);

  let closed = false;
  let timer: number | undefined;
  let finished = false;
  let shownRequest: string | null = null;
  let hint: HTMLParagraphElement | null = null;

  function close() {
    if (closed) return;
    closed = true;
    window.clearTimeout(timer);
    host.remove();
    document.removeEventListener('keydown', onKey, true);
    previousFocus?.focus?.();
    options.onClose?.();
  }

  function say(text: string, tone: '' | 'ok' | 'bad' = '') {
    status.textContent = text;
    status.className = `status ${tone}`;
  }

  function fail(error: unknown) {
    const e = error instanceof WidgetError ? error : new WidgetError('INTERNAL', w.wrong);
    say(e.code === 'GONE' ? w.expired : e.message, 'bad');
    options.onError?.({ code: e.code, message: e.message });
  }

  // Keyboard: Escape closes, Tab stays inside the dialog.
  function onKey(event: KeyboardEvent) {
    if (event.key === 'Escape') {
      event.preventDefault();
      close();
    } else if (event.key === 'Tab') {
      const focusable = [...dialog.querySelectorAll<HTMLElement>('button, input')].filter(
        (el) => !el.hasAttribute('disabled'),
      );
      if (focusable.length === 0) return;
      const first = focusable[0]!;
      const last = focusable[focusable.length - 1]!;
      const active = root.activeElement;
      if (event.shiftKey && active === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && active === last) {
        event.preventDefault();
        first.focus();
      }
    }
  }
  document.addEventListener('keydown', onKey, true);
  closeButton.addEventListener('click', close);

  function codeForm(view: ReconnectView) {
    const request = view.request!;
    const d = request.descriptor;
    const input = element('input', {
      id: 'otpilot-code',
      inputMode: d.type === 'numeric' ? 'numeric' : 'text',
      autocomplete: 'one-time-code',
      maxLength: d.length ?? 32,
      spellcheck: false,
    });
    input.setAttribute('aria-describedby', 'otpilot-hint');
    const submit = element('button', { className: 'primary', type: 'submit' }, w.continue);
    hint = element('p', { className: 'hint', id: 'otpilot-hint' });
    const form = element('form', {}, element('label', { for: 'otpilot-code' }, w.code), hint, input, submit);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const code = input.value.replace(/[\s-]/g, '');
      if (!code) return;
      submit.disabled = true;
      say(w.checking);
      try {
        const answer = await call(options, w, 'POST', '/code', { code });
        if (answer.outcome === 'rejected') {
          input.value = '';
          const after = answer.reconnect as ReconnectView;
          const remaining = after.request ? after.request.max_attempts - after.request.attempts : 0;
          say(`${w.rejected}${remaining > 0 ? ` ${w.attemptsLeft(remaining)}.` : ''}`, 'bad');
          render(after, true);
        } else {
          say(w.accepted);
          render(answer.reconnect as ReconnectView, true);
        }
      } catch (error) {
        fail(error);
      } finally {
        submit.disabled = false;
      }
    });
    body.replaceChildren(form);
    input.focus();
  }

  function render(view: ReconnectView, keepStatus = false) {
    if (closed) return;
    title.textContent = w.titleBank(view.account.bank);
    sub.textContent = view.account.name;
    switch (view.state) {
      case 'code_needed':
        if (shownRequest !== view.request?.id || body.querySelector('form') === null) {
          shownRequest = view.request?.id ?? null;
          codeForm(view);
        }
        if (hint && view.request) {
          const d = view.request.descriptor;
          const left = view.request.max_attempts - view.request.attempts;
          hint.textContent = `${d.prompt ? `${d.prompt} ` : ''}(${describeCode(d, w)}; ${w.attemptsLeft(left)})`;
        }
        if (!keepStatus && !status.textContent) say(options.sandbox ? w.sandboxHint : '');
        schedule(2 * POLL_MS);
        break;
      case 'approval_needed':
        body.replaceChildren(element('p', {}, w.approve));
        schedule(POLL_MS);
        break;
      case 'working':
        shownRequest = null;
        body.replaceChildren(element('p', {}, w.working));
        schedule(POLL_MS);
        break;
      case 'login_needed': {
        shownRequest = null;
        const again = element('button', { className: 'primary', type: 'button' }, w.again);
        again.addEventListener('click', async () => {
          again.disabled = true;
          try {
            say('');
            const view = await call(options, w, 'POST', '/start');
            if (!closed) render(view);
          } catch (error) {
            again.disabled = false;
            fail(error);
          }
        });
        body.replaceChildren(element('p', {}, view.message ?? w.unfinished), again);
        again.focus();
        break;
      }
      case 'completed': {
        if (finished) return;
        finished = true;
        const done = element('button', { className: 'primary', type: 'button' }, w.done);
        done.addEventListener('click', close);
        body.replaceChildren(element('p', {}, w.connectedAgain));
        body.append(done);
        say(w.connected, 'ok');
        done.focus();
        options.onSuccess?.({ reconnect_id: view.id });
        break;
      }
    }
  }

  function schedule(ms: number) {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, ms);
  }

  let failures = 0;
  async function refresh() {
    if (closed || finished) return;
    try {
      const view = await call(options, w, 'GET', '');
      failures = 0;
      if (!closed) render(view);
    } catch (error) {
      if (closed) return;
      fail(error);
      // A network blip or a busy server: look again, more slowly; a refusal is final.
      const final =
        error instanceof WidgetError && ['GONE', 'NOT_FOUND', 'UNAUTHORIZED', 'FORBIDDEN'].includes(error.code);
      if (!final) schedule(Math.min(30_000, POLL_MS * 2 ** ++failures));
    }
  }

  closeButton.focus();
  void refresh();
  return { close };
}

(window as unknown as { otpilot: unknown }).otpilot = { reconnect };
