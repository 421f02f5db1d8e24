import { type BankSession, type Connector, ConnectorError, type LoginContext } from '../sdk.js';
import { CREDENTIAL_PATTERNS, readCredentials } from './credentials.js';
import { type FintsSettings, fintsLogin } from './login.js';
import { makeFintsSession } from './session.js';

export type { FintsSettings } from './login.js';

/** This connector's version (shown in `GET /v1/banks`); bump it when its behaviour towards banks changes. */
export const FINTS_CONNECTOR_VERSION = '1.0.0';

/**
 * The FinTS 3.0 PIN/TAN connector (bank id `fints`), built on lib-fints (LGPL-2.1-or-later, used
 * unmodified as a dependency). This file is the connector's only contact with the Connector shape.
 */
export function makeFintsConnector(settings: FintsSettings): Connector {
  return {
    id: 'fints',
    name: 'FinTS (PIN/TAN)',
    version: FINTS_CONNECTOR_VERSION,
    credential_fields: [
      { name: 'blz', label: 'Bank code (BLZ)', type: 'text', required: true, ...CREDENTIAL_PATTERNS.blz },
      {
        name: 'server_url',
        label: 'FinTS server URL',
        type: 'text',
        required: true,
        ...CREDENTIAL_PATTERNS.server_url,
      },
      {
        name: 'user_id',
        label: 'User id (Benutzerkennung)',
        type: 'text',
        required: true,
        ...CREDENTIAL_PATTERNS.user_id,
      },
      {
        name: 'customer_id',
        label: 'Customer id (if different)',
        type: 'text',
        required: false,
        ...CREDENTIAL_PATTERNS.customer_id,
      },
      { name: 'pin', label: 'PIN', type: 'password', required: true, ...CREDENTIAL_PATTERNS.pin },
      {
        name: 'tan_method',
        label: 'Preferred TAN method (e.g. 942)',
        type: 'text',
        required: false,
        ...CREDENTIAL_PATTERNS.tan_method,
      },
      {
        name: 'tan_medium',
        label: 'TAN medium (phone or device name)',
        type: 'text',
        required: false,
        ...CREDENTIAL_PATTERNS.tan_medium,
      },
    ],
    async login(ctx: LoginContext): Promise<BankSession> {
      const read = readCredentials(ctx.credentials);
      if (!read.ok) throw new ConnectorError('invalid_credentials', read.problem);
      const login = await fintsLogin(ctx, read.value, settings);
      return makeFintsSession(ctx, read.value, login);
    },
  };
}
