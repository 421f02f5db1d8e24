import type { Connector, LoginContext } from '../connectors/sdk.js';
import { absoluteNow } from './stats.js';

/**
 * Wraps the sandbox connector to note when the bank prompted for a code and when the connector held
 * the code: instrumentation only, the login is unchanged. Keys are the bank usernames; each list is in
 * login order (one entry per prompt and per code tried).
 */
export function timingConnectors(holds: Map<string, number[]>, prompts: Map<string, number[]>) {
  const note = (map: Map<string, number[]>, key: string) => {
    const list = map.get(key) ?? [];
    list.push(absoluteNow());
    map.set(key, list);
  };
  return (builtin: Connector[]): Connector[] =>
    builtin.map((connector) => ({
      ...connector,
      login: (ctx: LoginContext) => {
        // The sandbox names its login `username`, FinTS `user_id`.
        const user = ctx.credentials.username ?? ctx.credentials.user_id ?? '';
        return connector.login({
          ...ctx,
          requestCode: (request, tryCode, options) => {
            note(prompts, user);
            return ctx.requestCode(
              request,
              (code) => {
                note(holds, user);
                return tryCode(code);
              },
              options,
            );
          },
        });
      },
    }));
}
