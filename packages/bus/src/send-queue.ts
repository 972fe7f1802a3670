import type { Socket } from 'zeromq';

type Frames = [Buffer, Uint8Array];
interface Sender extends Pick<Socket, 'closed'> {
  send(frames: Frames): Promise<void>;
}

/** An immediate queue hands over at once when this many messages wait (a producer that never yields). */
const BATCH = 4096;

/**
 * zeromq.js allows one pending send per socket (a second one rejects with EBUSY), so every
 * wrapper funnels its sends through this bounded FIFO.
 *
 * `immediate` is for sockets that never wait to send (PUB with `sendTimeout: 0`: ZeroMQ drops for a
 * subscriber past its high-water mark instead of blocking). Messages published during one turn of
 * the event loop are then handed over together as soon as the publishing code yields (a microtask),
 * or at once every BATCH messages if it does not: nothing is left behind for later turns, and
 * ZeroMQ's I/O thread is woken once per batch rather than once per message (which costs several µs a
 * message on a busy 2-core machine). With a waiting send, zeromq.js resolves at most 512 sends per
 * turn, so a producer faster than that (a replay at full speed) built a backlog that was sent, or
 * dropped, long after the producer had finished.
 */
export class SendQueue {
  private items: Frames[] = [];
  private head = 0;
  private pumping = false;
  private idleWaiters: Array<() => void> = [];
  sent = 0;
  dropped = 0;
  failed = 0;

  private flushQueued = false;
  private shut = false;

  /** Immediate mode: every waiting message to ZeroMQ, in order. */
  private readonly flush = () => {
    this.flushQueued = false;
    const items = this.items;
    if (items.length === 0) return;
    this.items = [];
    // Once per batch: `closed` is a native call, and nothing below can close the socket.
    if (this.shut || this.sock.closed) {
      this.dropped += items.length;
      items.length = 0;
    }
    for (let i = 0; i < items.length; i++) {
      try {
        // Resolved (or rejected) before it returns: the next send may follow at once.
        this.sock.send(items[i]!).catch(this.onLateError);
        this.sent++;
      } catch (err) {
        this.failed++;
        this.onError(err);
      }
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  };

  private readonly onLateError = (err: unknown) => {
    if (this.sock.closed) return;
    this.sent--;
    this.failed++;
    this.onError(err);
  };

  constructor(
    private readonly sock: Sender,
    private readonly maxItems: number,
    private readonly onError: (err: unknown) => void,
    private readonly immediate = false,
  ) {}

  /** Immediate mode: the owner is closing the socket; later messages are refused and counted. */
  close(): void {
    this.shut = true;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Returns false (and counts a drop) when the queue is full. */
  enqueue(frames: Frames): boolean {
    if (this.immediate) {
      if (this.shut) {
        this.dropped++;
        return false;
      }
      this.items.push(frames);
      if (this.items.length >= BATCH) this.flush();
      else if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(this.flush);
      }
      return true;
    }
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
