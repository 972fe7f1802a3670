import type { Socket } from 'zeromq';

type Frames = [Buffer, Uint8Array];
interface Sender extends Pick<Socket, 'closed'> {
  send(frames: Frames): Promise<void>;
}

/**
 * zeromq.js allows one pending send per socket (a second one rejects with EBUSY), so every
 * wrapper funnels its sends through this bounded FIFO.
 */
export class SendQueue {
  private items: Frames[] = [];
  private head = 0;
  private pumping = false;
  private idleWaiters: Array<() => void> = [];
  sent = 0;
  dropped = 0;
  failed = 0;

  constructor(
    private readonly sock: Sender,
    private readonly maxItems: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Returns false (and counts a drop) when the queue is full. */
  enqueue(frames: Frames): boolean {
    if (this.length >= this.maxItems) {
      this.dropped++;
      return false;
    }
    this.items.push(frames);
    if (!this.pumping) void this.pump();
    return true;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.length > 0 && !this.sock.closed) {
        const frames = this.items[this.head]!;
        try {
          await this.sock.send(frames);
          this.sent++;
        } catch (err) {
          if (this.sock.closed) break;
          this.failed++;
          this.onError(err);
        }
        this.head++;
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items = this.items.slice(this.head);
          this.head = 0;
        }
      }
    } finally {
      this.pumping = false;
      if (this.length === 0 || this.sock.closed) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /** Resolves when everything queued has been handed to ZeroMQ, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.length === 0 && !this.pumping) return true;
    return new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(this.length === 0);
      });
    });
  }
}
