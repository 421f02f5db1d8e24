import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { contentSecurityPolicy } from '../pages.js';
import type { BankReply, BankState } from '../state.js';
import { normalizeUsername } from '../users.js';
import { type BankData, readAccount, readAccounts, readIdentity, readMovements } from './data.js';
import { cookie, readCookies, type WebChallenge, type WebSession, WebSessions } from './sessions.js';
import {
  accountsPage,
  approvalPage,
  codePage,
  type Frame,
  loginPage,
  movementsPage,
  problemPage,
  profilePage,
  type WebLayout,
} from './views.js';

/** Knobs of the website (index.ts documents the defaults). */
export interface WebOptions {
  idleMs: number;
  slowMs: number;
  layout: WebLayout;
  pageSize: number;
  trustValidityMs: number;
}

const SESSION_COOKIE = 'sbw_session';
const CONSENT_COOKIE = 'sbw_consent';
const DEVICE_COOKIE = 'sbw_device';
const LAYOUT_COOKIE = 'sbw_layout';
const MAX_FIELD = 256;

type Form = Record<string, string>;

function route() {
  return { schema: { hide: true }, config: { public: true as const, rateLimit: false as const } };
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function field(form: unknown, name: string): string {
  const value = record(form)[name];
  return typeof value === 'string' ? value.slice(0, MAX_FIELD) : '';
}

/** The challenge a login or resend answer describes, as the OTP or approval page shows it. */
function challengeOf(body: Record<string, unknown>): WebChallenge | null {
  const id = body['challenge_id'];
  if (typeof id !== 'string') return null;
  if (body['status'] === 'approval_required') {
    return {
      id,
      kind: 'approval',
      prompt: String(body['prompt'] ?? ''),
      length: null,
      type: 'numeric',
      resendable: false,
    };
  }
  const code = record(body['code']);
  return {
    id,
    kind: 'code',
    prompt: String(code['prompt'] ?? ''),
    length: typeof code['length'] === 'number' ? code['length'] : null,
    type: code['type'] === 'alphanumeric' ? 'alphanumeric' : 'numeric',
    resendable: body['status'] === 'code_required',
  };
}

/**
 * The sandbox bank's website: server-rendered pages over the same `BankState` as the JSON API, so the
 * same users behave the same way (docs/sandbox-bank.md "The website").
 */
export function webRoutes(state: BankState, options: WebOptions): FastifyPluginAsync {
  return async (app) => {
    const base = app.prefix;
    const sessions = new WebSessions(() => state.now(), options.idleMs);
    const data: BankData = { state, pageSize: options.pageSize };

    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))) as Form);
    });

    const frameOf = (request: FastifyRequest, loggedIn: boolean): Frame => {
      const cookies = readCookies(request.headers.cookie);
      const layout = cookies.get(LAYOUT_COOKIE);
      return {
        base,
        nonce: randomBytes(16).toString('base64'),
        layout: layout === 'compact' || layout === 'classic' ? layout : options.layout,
        banner: cookies.get(CONSENT_COOKIE) !== 'yes',
        path: request.url,
        loggedIn,
      };
    };

    const html = (reply: FastifyReply, frame: Frame, status: number, body: string) =>
      reply
        .code(status)
        .header('content-security-policy', contentSecurityPolicy(frame.nonce))
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(body);

    const go = (reply: FastifyReply, path: string) => reply.code(303).header('location', `${base}${path}`).send();

    /** The visitor's session, or a redirect to the login (with "session expired" when it timed out). */
    const current = (request: FastifyRequest, reply: FastifyReply): WebSession | null => {
      const found = sessions.find(readCookies(request.headers.cookie).get(SESSION_COOKIE));
      if (found === 'expired') {
        go(reply, '/login?expired=1');
        return null;
      }
      if (found === null) {
        go(reply, '/login');
        return null;
      }
      return found;
    };

    /** The logged-in bank user behind the visitor's session, or a redirect. */
    const loggedIn = (request: FastifyRequest, reply: FastifyReply) => {
      const session = current(request, reply);
      if (session === null) return null;
      const user = session.bankToken === null ? null : state.sessionUser(session.bankToken);
      if (user === null) {
        sessions.end(session.id);
        go(reply, session.bankToken === null ? '/login' : '/login?expired=1');
        return null;
      }
      return { session, user };
    };

    /** Where a bank answer that carries a session or a challenge leads. */
    const proceed = (reply: FastifyReply, session: WebSession, answer: BankReply, trustDevice: boolean) => {
      const body = record(answer.body);
      if (answer.status === 200 && body['status'] === 'ok' && typeof body['session_token'] === 'string') {
        session.bankToken = body['session_token'];
        session.challenge = null;
        const trust = body['trust_token'];
        if (trustDevice && typeof trust === 'string') {
          reply.header('set-cookie', cookie(DEVICE_COOKIE, trust, base, options.trustValidityMs / 1000));
        }
        return go(reply, '/accounts');
      }
      const challenge = answer.status === 200 ? challengeOf(body) : null;
      if (challenge === null) return null;
      session.challenge = challenge;
      return go(reply, challenge.kind === 'approval' ? '/approval' : '/otp');
    };

    const failure = (request: FastifyRequest, reply: FastifyReply, answer: BankReply) => {
      const frame = frameOf(request, false);
      switch (answer.status) {
        case 423:
          return html(reply, frame, 423, problemPage(frame, 'Account locked', 'Your account is locked. Call us.'));
        case 503:
          return html(reply, frame, 503, problemPage(frame, 'Temporarily unavailable', 'Please try again later.'));
        case 410:
          return html(reply, frame, 410, problemPage(frame, 'Login expired', 'This login has expired. Log in again.'));
        default:
          return html(
            reply,
            frame,
            answer.status === 401 ? 401 : 400,
            loginPage(frame, 'Unknown username or wrong password.', null),
          );
      }
    };

    app.get('/', route(), async (_request, reply) => go(reply, '/accounts'));

    app.get<{ Querystring: Record<string, unknown> }>('/login', route(), async (request, reply) => {
      const frame = frameOf(request, false);
      const notice = request.query['expired'] === '1' ? 'Your session has expired. Please log in again.' : null;
      return html(reply, frame, 200, loginPage(frame, null, notice));
    });

    app.post('/login', route(), async (request, reply) => {
      const username = normalizeUsername(field(request.body, 'username'));
      const password = field(request.body, 'password');
      const frame = frameOf(request, false);
      if (username === '' || password === '') {
        return html(reply, frame, 400, loginPage(frame, 'Enter your username and password.', null));
      }
      const device = readCookies(request.headers.cookie).get(DEVICE_COOKIE) ?? null;
      const answer = await state.login(username, password, device);
      const session = sessions.create();
      reply.header('set-cookie', cookie(SESSION_COOKIE, session.id, base, null));
      return proceed(reply, session, answer, false) ?? failure(request, reply, answer);
    });

    app.get('/otp', route(), async (request, reply) => {
      const session = current(request, reply);
      if (session === null) return reply;
      if (session.challenge?.kind !== 'code') return go(reply, '/login');
      const frame = frameOf(request, false);
      const flash = session.flash;
      session.flash = null;
      const isNotice = flash?.startsWith('A new code') ?? false;
      return html(
        reply,
        frame,
        200,
        codePage(frame, session.challenge, isNotice ? null : flash, isNotice ? flash : null),
      );
    });

    app.post('/otp', route(), async (request, reply) => {
      const session = current(request, reply);
      if (session === null) return reply;
      if (session.challenge?.kind !== 'code') return go(reply, '/login');
      const code = field(request.body, 'code').trim();
      // An empty form is not an attempt: the bank asks again without counting it.
      if (code === '') {
        session.flash = 'Enter the code.';
        return go(reply, '/otp');
      }
      const answer = await state.verify(session.challenge.id, code);
      const body = record(answer.body);
      if (answer.status === 200 && body['status'] === 'rejected') {
        session.flash = `The code is not correct. ${String(body['attempts_left'])} attempt(s) left.`;
        return go(reply, '/otp');
      }
      return proceed(reply, session, answer, field(request.body, 'trust') === '1') ?? failure(request, reply, answer);
    });

    app.post('/otp/resend', route(), async (request, reply) => {
      const session = current(request, reply);
      if (session === null) return reply;
      if (session.challenge?.kind !== 'code') return go(reply, '/login');
      const answer = await state.resend(session.challenge.id);
      if (answer.status === 429) {
        session.flash = 'You asked for too many codes.';
        return go(reply, '/otp');
      }
      const challenge = answer.status === 200 ? challengeOf(record(answer.body)) : null;
      if (challenge === null) return failure(request, reply, answer);
      session.challenge = challenge;
      session.flash = 'A new code is on its way.';
      return go(reply, '/otp');
    });

    app.get('/approval', route(), async (request, reply) => {
      const session = current(request, reply);
      if (session === null) return reply;
      if (session.challenge?.kind !== 'approval') return go(reply, '/login');
      const answer = await state.status(session.challenge.id);
      const status = record(answer.body)['status'];
      if (status === 'pending') {
        const frame = frameOf(request, false);
        return html(reply, frame, 200, approvalPage(frame, session.challenge));
      }
      if (status === 'ok') return proceed(reply, session, answer, false);
      return failure(request, reply, { status: 410, body: {} });
    });

    app.get('/accounts', route(), async (request, reply) => {
      const who = loggedIn(request, reply);
      if (who === null) return reply;
      // The slow page: real bank dashboards often take seconds to assemble.
      if (options.slowMs > 0) await delay(options.slowMs);
      const frame = frameOf(request, true);
      return html(reply, frame, 200, accountsPage(frame, await readAccounts(data, who.user)));
    });

    app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>(
      '/accounts/:id/movements',
      route(),
      async (request, reply) => {
        const who = loggedIn(request, reply);
        if (who === null) return reply;
        const frame = frameOf(request, true);
        const account = await readAccount(data, who.user, request.params.id);
        if (account === null) return html(reply, frame, 404, problemPage(frame, 'Not found', 'No such account.'));
        const result = await readMovements(data, who.user, account, request.query);
        if (!result.ok) return html(reply, frame, 400, problemPage(frame, 'Invalid request', result.problem));
        return html(reply, frame, 200, movementsPage(frame, account, result.movements, result.paging));
      },
    );

    app.get('/profile', route(), async (request, reply) => {
      const who = loggedIn(request, reply);
      if (who === null) return reply;
      const frame = frameOf(request, true);
      return html(reply, frame, 200, profilePage(frame, await readIdentity(data, who.user)));
    });

    app.post('/logout', route(), async (request, reply) => {
      const id = readCookies(request.headers.cookie).get(SESSION_COOKIE);
      if (id !== undefined) sessions.end(id);
      reply.header('set-cookie', cookie(SESSION_COOKIE, '', base, 0));
      return go(reply, '/login');
    });

    app.post('/consent', route(), async (request, reply) => {
      const back = field(request.body, 'back');
      reply.header('set-cookie', cookie(CONSENT_COOKIE, 'yes', base, 365 * 86_400));
      // Only a path of this website: the form must not become an open redirect.
      const target = back.startsWith(`${base}/`) && !back.startsWith(`${base}//`) ? back.slice(base.length) : '/login';
      return go(reply, target);
    });
  };
}
