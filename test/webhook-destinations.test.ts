import { describe, expect, it } from 'vitest';
import { destinationsFor, subscribersFrom } from '../src/webhooks/destinations.js';

const endpoint = (id: string, orgId: string, events: string[] | null = null, accountIds: string[] | null = null) => ({
  id,
  org_id: orgId,
  events: events && JSON.stringify(events),
  account_ids: accountIds && JSON.stringify(accountIds),
});
const config = (accountId: string, fields: { notify?: string; events?: string[]; result?: string }) => ({
  account_id: accountId,
  notification_endpoint_url: fields.notify ?? null,
  notification_events: fields.events ? JSON.stringify(fields.events) : null,
  webhook_url: fields.result ?? null,
});

describe('destinationsFor', () => {
  it('has no destination without subscribers', () => {
    const none = subscribersFrom([], []);
    expect(destinationsFor({ orgId: 'org_1', accountId: 'acc_1', type: 'scrape_succeeded' }, none)).toEqual([]);
  });

  it("sends to the organization's endpoints that want the type and the account, in order", () => {
    const subscribers = subscribersFrom(
      [
        endpoint('whe_all', 'org_1'),
        endpoint('whe_other_org', 'org_2'),
        endpoint('whe_types', 'org_1', ['login_failed']),
        endpoint('whe_acc', 'org_1', null, ['acc_1']),
        endpoint('whe_acc2', 'org_1', null, ['acc_2']),
      ],
      [],
    );
    expect(destinationsFor({ orgId: 'org_1', accountId: 'acc_1', type: 'scrape_succeeded' }, subscribers)).toEqual([
      { destination: 'whe_all', endpointId: 'whe_all' },
      { destination: 'whe_acc', endpointId: 'whe_acc' },
    ]);
    // An event of no account reaches only endpoints for every account.
    expect(destinationsFor({ orgId: 'org_1', accountId: null, type: 'login_failed' }, subscribers)).toEqual([
      { destination: 'whe_all', endpointId: 'whe_all' },
      { destination: 'whe_types', endpointId: 'whe_types' },
    ]);
  });

  it("sends to the account's notification endpoint (no movements by default) and movements to its result webhook", () => {
    const subscribers = subscribersFrom(
      [],
      [
        config('acc_1', { notify: 'https://n.example', result: 'https://r.example' }),
        config('acc_2', { notify: 'x', events: ['bank_movement'] }),
      ],
    );
    expect(destinationsFor({ orgId: 'org_1', accountId: 'acc_1', type: 'scrape_succeeded' }, subscribers)).toEqual([
      { destination: 'notify:acc_1', endpointId: null },
    ]);
    expect(destinationsFor({ orgId: 'org_1', accountId: 'acc_1', type: 'bank_movement' }, subscribers)).toEqual([
      { destination: 'result:acc_1', endpointId: null },
    ]);
    expect(destinationsFor({ orgId: 'org_1', accountId: 'acc_2', type: 'bank_movement' }, subscribers)).toEqual([
      { destination: 'notify:acc_2', endpointId: null },
    ]);
    expect(destinationsFor({ orgId: 'org_1', accountId: 'acc_3', type: 'bank_movement' }, subscribers)).toEqual([]);
  });
});
