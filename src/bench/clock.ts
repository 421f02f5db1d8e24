import type { ChildProcess } from 'node:child_process';
import { absoluteNow } from './stats.js';

/**
 * One clock across the bench's processes. Each process's `absoluteNow()` is its start's wall time
 * plus a monotonic count, so two processes can disagree by the wall clock's reading at their starts.
 * The parent measures the difference over IPC, as NTP does: the child stamps a ping, and the ping
 * with the shortest round trip bounds the error to half of that round trip.
 */

/** In a child: answer the parent's clock pings with this process's time. */
export function answerClockPings(): void {
  process.on('message', (message: { kind: string; id?: number }) => {
    if (message.kind === 'clock') process.send!({ kind: 'clock', id: message.id, at: absoluteNow() });
  });
}

/** How far `child`'s clock runs ahead of this one's, ms (subtract it from the child's times), and the error bound. */
export async function clockOffset(child: ChildProcess, pings = 30): Promise<{ offsetMs: number; errorMs: number }> {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
  for (let id = 0; id < pings; id++) {
    const sent = absoluteNow();
    const at = await new Promise<number>((resolve) => {
      const hear = (message: { kind: string; id?: number; at?: number }) => {
        if (message.kind !== 'clock' || message.id !== id) return;
        child.off('message', hear);
        resolve(message.at!);
      };
      child.on('message', hear);
      child.send({ kind: 'clock', id });
    });
    const back = absoluteNow();
    if (back - sent < best.rtt) best = { rtt: back - sent, offset: at - (sent + back) / 2 };
  }
  return { offsetMs: best.offset, errorMs: best.rtt / 2 };
}
