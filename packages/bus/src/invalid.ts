import type { DecodeErrorCode } from '@polybot/protocol';
import type { BusLogger } from './log.js';

export interface InvalidFrame {
  code: DecodeErrorCode | 'handler';
  reason: string;
  topic?: string;
  frames: readonly Uint8Array[];
}

/** Counts rejected frames by reason and logs the first of each kind, so a flood cannot flood the log. */
export class InvalidFrameTracker {
  readonly counts = new Map<string, number>();
  total = 0;

  constructor(
    private readonly socket: string,
    private readonly log: BusLogger,
  ) {}

  record(frame: InvalidFrame): void {
    this.total++;
    const n = (this.counts.get(frame.code) ?? 0) + 1;
    this.counts.set(frame.code, n);
    if (n === 1) {
      this.log.warn(
        { socket: this.socket, code: frame.code, reason: frame.reason, topic: frame.topic?.slice(0, 80) },
        'rejected inbound frame (further frames of this kind are counted, not logged)',
      );
    }
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
