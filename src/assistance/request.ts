import type { ApprovalDescriptor, CodeDescriptor } from '../core/descriptor.js';
import type { AssistanceRequestsTable } from '../store/schema.js';

/** A stored request with its descriptor parsed and narrowed by `type`. */
export type AssistanceRequest = Omit<AssistanceRequestsTable, 'type' | 'descriptor'> &
  ({ type: 'otp'; descriptor: CodeDescriptor } | { type: 'approval'; descriptor: ApprovalDescriptor });

export function toRequest(row: AssistanceRequestsTable): AssistanceRequest {
  switch (row.type) {
    case 'otp':
      return { ...row, type: 'otp', descriptor: JSON.parse(row.descriptor) as CodeDescriptor };
    case 'approval':
      return { ...row, type: 'approval', descriptor: JSON.parse(row.descriptor) as ApprovalDescriptor };
    default: {
      const never: never = row.type;
      throw new Error(`unknown request type ${String(never)}`);
    }
  }
}

/** Whether an SMS can answer the request: a code request that is not an authenticator's. */
export function takesSms(request: AssistanceRequest): boolean {
  return request.type === 'otp' && request.descriptor.channel !== 'authenticator';
}
