import type { BankAccount as FintsAccount } from 'lib-fints';
import {
  type Balance,
  type BankAccount,
  type BankSession,
  ConnectorError,
  type DateRange,
  type LoginContext,
  type Movement,
} from '../sdk.js';
import type { FintsCredentials } from './credentials.js';
import { call, failureOf } from './errors.js';
import type { FintsLogin } from './login.js';
import { encodeTrust } from './trust.js';

type Transaction = Awaited<
  ReturnType<FintsLogin['client']['getAccountStatements']>
>['statements'][number]['transactions'][number];

const TYPES: Record<string, string> = {
  CheckingAccount: 'current',
  SavingsAccount: 'savings',
  FixedDepositAccount: 'deposit',
  SecuritiesAccount: 'securities',
  LoanMortgageAccount: 'loan',
  CreditCardAccount: 'credit_card',
};

/** A ledger's stable id: its IBAN, else its account number (and sub-account). */
function ledgerId(a: FintsAccount): string {
  return a.iban ?? (a.subAccountId ? `${a.accountNumber}/${a.subAccountId}` : a.accountNumber);
}

/** lib-fints hands amounts over as numbers; the SDK wants decimal strings in the major unit. */
function decimal(value: number): string {
  const text = value.toFixed(2);
  return text === '-0.00' ? '0.00' : text;
}

/** lib-fints builds MT940 dates in local time; read them back the same way. */
function localDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function toMovement(t: Transaction, accountId: string, currency: string): Movement {
  const ref = t.bankReference?.trim();
  return {
    // MT940 carries the bank's reference after `//`; "NONREF" and empty mean it has none.
    id: ref && ref.toUpperCase() !== 'NONREF' ? ref : null,
    bank_account_id: accountId,
    booked_at: localDate(t.entryDate ?? t.valueDate),
    amount: decimal(t.amount),
    currency,
    // camt gives '' for a missing party, MT940 undefined.
    name: (t.remoteName || t.bookingText || '').trim(),
    reference: t.purpose?.trim() || null,
  };
}

function fromDate(iso: string): Date {
  const [y, m, d] = iso.split('-').map(Number);
  return new Date(y ?? 1970, (m ?? 1) - 1, d ?? 1);
}

/** The data calls of a logged-in FinTS client; one dialog at a time, as the client holds one. */
export function makeFintsSession(ctx: LoginContext, creds: FintsCredentials, login: FintsLogin): BankSession {
  const { client, config } = login;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(run: () => Promise<T>): Promise<T> => {
    const next = queue.then(run, run);
    queue = next.catch(() => {});
    return next;
  };
  const accounts = (): FintsAccount[] => config.bankingInformation.upd?.bankAccounts ?? [];
  const keepUpdated = async (updated: boolean) => {
    if (updated)
      await ctx.trust.set(
        encodeTrust(creds, { info: config.bankingInformation, tanMethod: config.tanMethodId ?? null }),
      );
  };
  return {
    async bankAccounts(): Promise<BankAccount[]> {
      ctx.stage('accounts');
      return accounts().map((a) => ({
        id: ledgerId(a),
        name: a.product?.trim() || a.accountType,
        iban: a.iban ?? null,
        number: a.accountNumber,
        currency: a.currency || 'EUR',
        type: TYPES[a.accountType] ?? 'other',
      }));
    },
    async balances(): Promise<Balance[]> {
      ctx.stage('balances');
      const list: Balance[] = [];
      for (const a of accounts()) {
        if (!client.canGetAccountBalance(a.accountNumber)) continue;
        const res = await serial(() =>
          call(ctx.signal, 'the balance (HKSAL)', () => client.getAccountBalance(a.accountNumber)),
        );
        if (res.requiresTan) throw new ConnectorError('connector_broken', 'the bank asks for a TAN to read a balance');
        if (!res.success || !res.balance) throw failureOf(res.bankAnswers, 'the balance (HKSAL)');
        await keepUpdated(res.bankingInformationUpdated);
        list.push({
          bank_account_id: ledgerId(a),
          current: decimal(res.balance.balance),
          available: res.balance.availableAmount === undefined ? null : decimal(res.balance.availableAmount),
          currency: res.balance.currency || a.currency || 'EUR',
          as_of: res.balance.date.toISOString(),
        });
      }
      return list;
    },
    async identity() {
      ctx.stage('identity');
      const holder = accounts()
        .find((a) => a.holder1)
        ?.holder1?.trim();
      return { name: holder || creds.userId, email: null, phone: null };
    },
    async movements(range: DateRange): Promise<Movement[]> {
      ctx.stage('movements');
      const list: Movement[] = [];
      for (const a of accounts()) {
        if (!client.canGetAccountStatements(a.accountNumber)) continue;
        // lib-fints follows the bank's touchdown points (3040) itself and joins the pages.
        const res = await serial(() =>
          call(ctx.signal, 'the statements (HKKAZ/HKCAZ)', () =>
            client.getAccountStatements(a.accountNumber, fromDate(range.from), fromDate(range.to)),
          ),
        );
        if (res.requiresTan) throw new ConnectorError('connector_broken', 'the bank asks for a TAN to read statements');
        if (!res.success) throw failureOf(res.bankAnswers, 'the statements (HKKAZ/HKCAZ)');
        await keepUpdated(res.bankingInformationUpdated);
        for (const statement of res.statements ?? []) {
          const currency = statement.closingBalance?.currency || a.currency || 'EUR';
          for (const t of statement.transactions) {
            const m = toMovement(t, ledgerId(a), currency);
            if (m.booked_at >= range.from && m.booked_at <= range.to) list.push(m);
          }
        }
      }
      return list;
    },
    async close() {
      // Every data call ran in its own dialog, ended by lib-fints (HKEND); nothing stays open.
    },
  };
}
