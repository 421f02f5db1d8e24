import { readdirSync, readFileSync } from 'node:fs';
import { percentile, round } from './stats.js';

/**
 * Browser-script logins (docs/benchmarks.md "Browser logins"): `browser_login_ms`, one full login
 * of the sandbox website with an SMS code (scrape → code page → code over the API → movements read
 * → session ended), one after another; and the peak memory of this process plus its Chromium while
 * `n` logins wait on their code page at once and then finish.
 */

/** Proportional set size of a process, kB (RSS when smaps_rollup is unreadable); 0 when it is gone. */
function pssKb(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    try {
      return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  }
}

/** This process and every process below it (Chromium's browser, renderers, utilities). */
function treeKb(root: number): number {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) if (p === root) return true;
    return false;
  };
  let total = 0;
  for (const pid of parents.keys()) if (inTree(pid)) total += pssKb(pid);
  return total;
}

export async function benchBrowser(url: string, key: string, options: { logins: number; concurrent: number }) {
  const auth = { authorization: `Api-Key ${key}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? auth : json,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  let n = 0;
  const account = async () => {
    const username = `otp+browserbench${process.pid}x${++n}`;
    const created = await call('POST', '/v1/accounts', {
      bank_id: 'sandbox-web',
      name: username,
      credentials: { username, password: 'bench' },
    });
    if (created.status !== 201) throw new Error(`create answered ${created.status}`);
    return { id: created.body['id'] as string, username };
  };
  const until = async (path: string, done: (body: Record<string, unknown>) => boolean) => {
    // Generous: a shared 2-core machine can be very slow.
    const deadline = Date.now() + 300_000;
    for (;;) {
      const reply = await call('GET', path);
      if (done(reply.body)) return reply.body;
      if (Date.now() > deadline) throw new Error(`${path} stuck: ${JSON.stringify(reply.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const login = async (a: { id: string; username: string }, beforeCode?: () => Promise<void>) => {
    const started = performance.now();
    const session = (await call('POST', `/v1/accounts/${a.id}/scrape`)).body['session_id'] as string;
    await until(`/v1/accounts/${a.id}/status`, (s) => s['pending_assistance'] !== null);
    await beforeCode?.();
    const phone = await fetch(`${url}/sandbox-bank/phone/${encodeURIComponent(a.username)}`);
    const code = ((await phone.json()) as { messages: { code: string }[] }).messages[0]!.code;
    const submitted = await call('POST', `/v1/accounts/${a.id}/otp?wait=true`, { code });
    if (submitted.body['outcome'] !== 'accepted')
      throw new Error(`the code was not accepted: ${JSON.stringify(submitted.body)}`);
    const end = await until(`/v1/sessions/${session}`, (s) =>
      ['succeeded', 'failed', 'cancelled'].includes(String(s['state'])),
    );
    if (end['state'] !== 'succeeded')
      throw new Error(`browser login ended ${String(end['state'])}: ${String(end['failure_message'])}`);
    return performance.now() - started;
  };

  // One warm-up login starts Chromium; the figures are of a running runtime.
  await login(await account());
  const times: number[] = [];
  for (let i = 0; i < options.logins; i++) times.push(await login(await account()));

  const idleKb = treeKb(process.pid);
  let peakKb = idleKb;
  const sampler = setInterval(() => {
    peakKb = Math.max(peakKb, treeKb(process.pid));
  }, 100);
  try {
    const accounts = await Promise.all(Array.from({ length: options.concurrent }, () => account()));
    // Every login reaches its code page before any code is sent: all N browsers are open at once.
    let waiting = 0;
    let release: () => void = () => {};
    const allWaiting = new Promise<void>((resolve) => {
      release = resolve;
    });
    await Promise.all(
      accounts.map((a) =>
        login(a, async () => {
          if (++waiting === options.concurrent) release();
          await allWaiting;
          peakKb = Math.max(peakKb, treeKb(process.pid));
        }),
      ),
    );
  } finally {
    clearInterval(sampler);
  }
  return {
    browser_logins: options.logins,
    browser_login_ms: { p50: round(percentile(times, 50), 0), p99: round(percentile(times, 99), 0) },
    browser_concurrent_logins: options.concurrent,
    browser_idle_mb: round(idleKb / 1024, 0),
    browser_peak_mb: round(peakKb / 1024, 0),
    browser_mb_per_login: round((peakKb - idleKb) / 1024 / options.concurrent, 0),
  };
}
