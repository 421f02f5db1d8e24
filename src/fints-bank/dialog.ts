import { balance, statements } from './orders.js';
import {
  type Answer,
  bpd,
  DECOUPLED_TAN,
  type Draft,
  envelope,
  hirmg,
  hirms,
  hisyn,
  hitan,
  SMS_TAN,
  upd,
} from './segments.js';
import type { Challenge, DialogState, FintsBankState, UserState } from './state.js';
import { accountsOf, FINTS_PIN, holderOf } from './users.js';
import { decodeSegments, field, type Parsed } from './wire.js';

/** What the HTTP layer sends back: a FinTS message, or a bare HTTP status (the bank is down). */
export type BankReply = { status: 200; message: string } | { status: 503 };

const RECEIVED: Answer = ['0010', 'Nachricht entgegengenommen.'];
const ABORTED: Answer = ['9800', 'Dialog abgebrochen.'];
const ERRORS: Answer = ['9050', 'Die Nachricht enthält Fehler.'];

/** The parsed request: its header fields and its segments, unwrapped from HNVSD. */
interface Request {
  dialogId: string;
  msgNr: number;
  segments: Parsed[];
  find(id: string): Parsed | undefined;
  userId: string | null;
  systemId: string;
  /** HNSHK's security function: 999 (one-step) or the TAN method. */
  secFunc: number | null;
  pin: string | null;
  tan: string | null;
}

function parseRequest(text: string): Request {
  const outer = decodeSegments(text);
  const hnhbk = outer[0];
  if (hnhbk?.id !== 'HNHBK') throw new Error('the message does not start with HNHBK');
  const hnvsd = outer.find((s) => s.id === 'HNVSD');
  const segments = hnvsd ? decodeSegments(field(hnvsd, 0)) : outer.slice(1, -1);
  const find = (id: string) => segments.find((s) => s.id === id);
  const hnshk = find('HNSHK');
  const hnsha = find('HNSHA');
  const hkidn = find('HKIDN');
  const userId = hnshk ? field(hnshk, 10, 2) : hkidn ? field(hkidn, 1) : null;
  const systemId = (hnshk ? field(hnshk, 5, 2) : '') || (hkidn ? field(hkidn, 2) : '') || '0';
  return {
    dialogId: field(hnhbk, 2),
    msgNr: Number(field(hnhbk, 3)) || 1,
    segments,
    find,
    userId: userId || null,
    systemId,
    secFunc: hnshk ? Number(field(hnshk, 1)) : null,
    pin: hnsha ? field(hnsha, 2, 0) || null : null,
    tan: hnsha ? field(hnsha, 2, 1) || null : null,
  };
}

/** Handles one FinTS message (already base64-decoded, ISO-8859-1) and returns the answer. */
export function handleMessage(state: FintsBankState, text: string): BankReply {
  let req: Request;
  try {
    req = parseRequest(text);
  } catch {
    return reply(state, '0', 1, null, '0', [hirmg([['9110', 'Unbekannter Aufbau der Nachricht.']])]);
  }
  const out = (dialogId: string, inner: Draft[], user: UserState | null = null) =>
    reply(state, dialogId, req.msgNr, user?.id ?? req.userId, req.systemId, inner);

  if (req.dialogId === '0' || req.dialogId === '') return initDialog(state, req, out);
  const dialog = state.dialogs.get(req.dialogId);
  if (!dialog) return out(req.dialogId, [hirmg([['9800', 'Dialog abgebrochen - Dialog-ID unbekannt.']])]);
  const hkend = req.find('HKEND');
  if (hkend) {
    state.dialogs.delete(dialog.id);
    return out(dialog.id, [hirmg([RECEIVED]), hirms(hkend.nr, [['0100', 'Dialog beendet.']])]);
  }
  if (dialog.userId === null) return out(dialog.id, [hirmg([ERRORS]), hirms(1, [['9010', 'Anonymer Dialog.']])]);
  const user = state.user(dialog.userId);
  if (!user) return out(dialog.id, [hirmg([ABORTED])]);
  const refused = checkAccess(state, user, req);
  if (refused) {
    state.dialogs.delete(dialog.id);
    return out(dialog.id, refused, user);
  }
  const hktan = req.find('HKTAN');
  if (hktan && dialog.challenge && !dialog.authenticated)
    return continueChallenge(state, req, dialog, user, hktan, out);
  if (!dialog.authenticated)
    return out(dialog.id, [hirmg([ERRORS]), hirms(1, [['9075', 'Starke Kundenauthentifizierung notwendig.']])], user);
  for (const s of req.segments)
    if (s.id === 'HKSAL' || s.id === 'HKKAZ' || s.id === 'HKCAZ')
      state.orders.set(s.id, (state.orders.get(s.id) ?? 0) + 1);
  const hksal = req.find('HKSAL');
  if (hksal) return out(dialog.id, balance(state, user, hksal), user);
  const statementRequest = req.find('HKKAZ') ?? req.find('HKCAZ');
  if (statementRequest) return out(dialog.id, statements(state, user, statementRequest), user);
  return out(dialog.id, [hirmg([['9010', 'Geschäftsvorfall wird nicht unterstützt.']])], user);
}

type Out = (dialogId: string, inner: Draft[], user?: UserState | null) => BankReply;

function reply(
  state: FintsBankState,
  dialogId: string,
  msgNr: number,
  userId: string | null,
  systemId: string,
  inner: Draft[],
): BankReply {
  return {
    status: 200,
    message: envelope({
      dialogId,
      msgNr,
      blz: state.blz,
      userId: userId ?? '9999999999',
      systemId,
      now: new Date(state.now()),
      inner,
    }),
  };
}

/** Locked access, wrong PIN: the answer that ends the dialog, or null when the user may go on. */
function checkAccess(state: FintsBankState, user: UserState, req: Request): Draft[] | null {
  if (user.locked)
    return [hirmg([ABORTED]), hirms(1, [['3938', 'Zugang gesperrt. Bitte wenden Sie sich an Ihre Bank.']])];
  if (req.pin !== FINTS_PIN) {
    user.wrongPins++;
    if (user.wrongPins >= state.attempts) user.locked = true;
    return [hirmg([ABORTED]), hirms(1, [['9942', 'PIN falsch.']])];
  }
  user.wrongPins = 0;
  return null;
}

function allowedMethods(user: UserState): number[] {
  return user.behaviour === 'decoupled' ? [DECOUPLED_TAN] : [SMS_TAN];
}

function initDialog(state: FintsBankState, req: Request, out: Out): BankReply {
  const hkidn = req.find('HKIDN');
  const hkvvb = req.find('HKVVB');
  if (!hkidn || !hkvvb) return out('0', [hirmg([['9110', 'Dialoginitialisierung ohne HKIDN/HKVVB.']])]);
  if (field(hkidn, 0, 1) !== state.blz)
    return out('0', [hirmg([ABORTED]), hirms(hkidn.nr, [['9210', 'Bankleitzahl unbekannt.']])]);
  if (!field(hkvvb, 3)) return out('0', [hirmg([ABORTED]), hirms(hkvvb.nr, [['9078', 'Produkt nicht registriert.']])]);
  const hksyn = req.find('HKSYN');
  const hktan = req.find('HKTAN');
  state.prune();
  const dialog: DialogState = {
    id: state.newId('D'),
    openedAt: state.now(),
    userId: null,
    systemId: req.systemId,
    challenge: null,
    authenticated: false,
    newSystemId: null,
    initRefs: { hkidn: hkidn.nr, hkvvb: hkvvb.nr, hksyn: hksyn?.nr ?? null, hktan: hktan?.nr ?? null },
  };
  // Anonymous dialog (customer 9999999999, unsigned): the bank parameter data only.
  if (req.pin === null) {
    state.dialogs.set(dialog.id, dialog);
    return out(dialog.id, [
      hirmg([RECEIVED]),
      hirms(hkidn.nr, [['0020', 'Dialoginitialisierung erfolgreich.']]),
      ...bpd(hkvvb.nr, state.blz),
    ]);
  }
  const userId = req.userId ?? '';
  const user = state.user(userId);
  if (user === null) return out('0', [hirmg([ABORTED]), hirms(1, [['9942', 'PIN falsch.']])]);
  if (user.behaviour === 'down') return { status: 503 };
  const refused = checkAccess(state, user, req);
  if (refused) return out('0', refused, user);
  dialog.userId = user.id;
  // A system id this bank never handed out (or has dropped) cannot sign: the client must synchronize again.
  if (dialog.systemId !== '0' && !state.systemIds.has(dialog.systemId))
    return out('0', [hirmg([ABORTED]), hirms(hkidn.nr, [['9010', 'Kundensystem-ID ungültig.']])], user);
  if (hksyn && field(hksyn, 0) === '0') {
    dialog.newSystemId = state.newId('S');
    state.systemIds.add(dialog.newSystemId);
    dialog.systemId = dialog.newSystemId;
  }
  state.dialogs.set(dialog.id, dialog);
  const methods = allowedMethods(user);
  // One-step (999): the parameter data and the TAN methods this user may use, no account data.
  if (req.secFunc === 999 || req.secFunc === null || !hktan) {
    return out(
      dialog.id,
      [
        hirmg([RECEIVED]),
        hirms(hkidn.nr, [
          ['0020', 'Dialoginitialisierung erfolgreich.'],
          ['3920', 'Zugelassene Zwei-Schritt-Verfahren für den Benutzer.', ...methods.map(String)],
        ]),
        ...bpd(hkvvb.nr, state.blz),
        ...(dialog.newSystemId ? [hisyn(hksyn?.nr ?? 1, dialog.newSystemId)] : []),
      ],
      user,
    );
  }
  if (!methods.includes(req.secFunc))
    return out(
      dialog.id,
      [hirmg([ABORTED]), hirms(1, [['9955', 'TAN-Verfahren für den Benutzer nicht zugelassen.']])],
      user,
    );
  if (state.exempt(user, dialog.systemId)) {
    dialog.authenticated = true;
    return out(
      dialog.id,
      initAnswer(state, dialog, user, ['3076', 'Starke Kundenauthentifizierung nicht notwendig.']),
      user,
    );
  }
  const kind = req.secFunc === DECOUPLED_TAN ? 'decoupled' : 'tan';
  const challenge = state.openChallenge(user, dialog.systemId, kind);
  dialog.challenge = challenge;
  const validUntil = new Date(challenge.createdAt + state.challengeValidityMs);
  return out(
    dialog.id,
    [
      hirmg([RECEIVED]),
      hirms(hktan.nr, [
        kind === 'tan'
          ? ['0030', 'Auftrag empfangen - Sicherheitsfreigabe erforderlich.']
          : ['3955', 'Sicherheitsfreigabe erfolgt über anderen Kanal.'],
      ]),
      hitan(
        hktan.nr,
        '4',
        challenge.orderRef,
        kind === 'tan'
          ? 'Bitte geben Sie die TAN ein, die wir per SMS an Ihr Mobiltelefon gesendet haben.'
          : 'Bitte bestätigen Sie die Anmeldung in Ihrer pushTAN-App.',
        validUntil,
      ),
    ],
    user,
  );
}

/** The answer to a completed dialog init: codes, BPD, UPD, the new system id. */
function initAnswer(state: FintsBankState, dialog: DialogState, user: UserState, extra: Answer): Draft[] {
  const accounts = accountsOf(user.id, state.blz);
  const refs = dialog.initRefs;
  return [
    hirmg([RECEIVED]),
    hirms(refs.hkidn, [
      ['0020', 'Dialoginitialisierung erfolgreich.'],
      extra,
      ['3920', 'Zugelassene Zwei-Schritt-Verfahren für den Benutzer.', ...allowedMethods(user).map(String)],
    ]),
    ...bpd(refs.hkvvb, state.blz),
    ...upd(refs.hkvvb, state.blz, user.id, holderOf(user.id), accounts, user.behaviour === 'camt' ? 'HKCAZ' : 'HKKAZ'),
    ...(dialog.newSystemId ? [hisyn(refs.hksyn ?? refs.hkidn, dialog.newSystemId)] : []),
  ];
}

function continueChallenge(
  state: FintsBankState,
  req: Request,
  dialog: DialogState,
  user: UserState,
  hktan: Parsed,
  out: Out,
): BankReply {
  const challenge = dialog.challenge as Challenge;
  const process = field(hktan, 0);
  if (field(hktan, 4) !== challenge.orderRef)
    return out(dialog.id, [hirmg([ERRORS]), hirms(hktan.nr, [['9210', 'Auftragsreferenz unbekannt.']])], user);
  const end = (answers: Answer[]): BankReply => {
    state.dialogs.delete(dialog.id);
    state.challenges.delete(challenge.orderRef);
    return out(dialog.id, [hirmg([ABORTED]), hirms(hktan.nr, answers)], user);
  };
  if (state.expired(challenge)) return end([['9951', 'Die TAN ist abgelaufen.']]);
  const done = (): BankReply => {
    challenge.state = 'used';
    state.challenges.delete(challenge.orderRef);
    dialog.authenticated = true;
    state.authenticated(user, dialog.systemId);
    return out(
      dialog.id,
      [
        ...initAnswer(state, dialog, user, ['0020', 'Starke Kundenauthentifizierung erfolgreich.']),
        hitan(hktan.nr, process, challenge.orderRef),
      ],
      user,
    );
  };
  if (challenge.kind === 'decoupled') {
    if (process !== 'S' && process !== '2')
      return out(dialog.id, [hirmg([ERRORS]), hirms(hktan.nr, [['9210', 'TAN-Prozess ungültig.']])], user);
    if (challenge.state === 'approved') return done();
    if (challenge.state === 'refused') return end([['9941', 'Die Freigabe wurde abgelehnt.']]);
    return out(
      dialog.id,
      [
        hirmg([RECEIVED]),
        hirms(hktan.nr, [['3956', 'Starke Kundenauthentifizierung noch ausstehend.']]),
        hitan(hktan.nr, 'S', challenge.orderRef),
      ],
      user,
    );
  }
  if (req.tan !== null && req.tan === challenge.code) return done();
  challenge.attempts++;
  if (challenge.attempts >= state.attempts) {
    user.locked = true;
    return end([
      ['9941', 'TAN ungültig.'],
      ['3938', 'Zugang gesperrt nach zu vielen Fehlversuchen.'],
    ]);
  }
  return out(
    dialog.id,
    [
      hirmg([ERRORS]),
      hirms(hktan.nr, [['9941', `TAN ungültig. Noch ${state.attempts - challenge.attempts} Versuche.`]]),
    ],
    user,
  );
}
