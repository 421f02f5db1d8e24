import { Type } from 'typebox';
import { Nullable } from '../http/schemas.js';

/** The data API's answer (docs/api.md "Data API, results and reconnects"); `GET /v1/results/:id` returns the same. */
export const EnvelopeSchema = Type.Object(
  {
    status: Type.Union([
      Type.Literal('OK'),
      Type.Literal('PENDING'),
      Type.Literal('RECONNECT_REQUIRED'),
      Type.Literal('FAILED'),
    ]),
    payload: Type.Unknown({
      description: 'the data (OK), `{ reconnect_id, type: "reconnect" }` (RECONNECT_REQUIRED), else null',
    }),
    results_id: Type.String(),
    message: Nullable(Type.String()),
    timestamp: Type.String({ format: 'date-time' }),
  },
  { $id: 'DataEnvelope' },
);
