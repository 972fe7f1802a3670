import { Pull, Push } from 'zeromq';
import { Codec, PROTOCOL_VERSION, type BusMessage, type CodecLimits, type Unstamped } from '@polybot/protocol';
import { prepareEndpoint } from './endpoints.js';
import { InvalidFrameTracker, type InvalidFrame } from './invalid.js';
import { silentLogger, type BusLogger } from './log.js';
import { SendQueue } from './send-queue.js';

export interface PusherOptions {
  endpoint: string;
  src: string;
  sendHighWaterMark?: number;
  maxQueue?: number;
  log?: BusLogger;
}

/**
 * PUSH socket (connects to a PULL that binds). `immediate` keeps ZeroMQ from queueing messages
 * on connections that are not complete, where they would be lost if the peer never appears.
 */
export class BusPusher {
  private readonly sock: Push;
  private readonly codec = new Codec();
  private readonly queue: SendQueue;
  private readonly log: BusLogger;
  private seq = 0;

  constructor(private readonly opts: PusherOptions) {
    this.log = opts.log ?? silentLogger;
    this.sock = new Push({ sendHighWaterMark: opts.sendHighWaterMark ?? 10_000, immediate: true, linger: 2000 });
    this.queue = new SendQueue(this.sock, opts.maxQueue ?? 10_000, (err) =>
      this.log.warn({ err, endpoint: opts.endpoint }, 'push failed'),
    );
  }

  start(): void {
    this.sock.connect(this.opts.endpoint);
  }

  /** Validates, stamps and queues; false when invalid or the queue is full. */
  push<M extends BusMessage>(topic: string, msg: Unstamped<M>): boolean {
    const full = { ...msg, v: PROTOCOL_VERSION, src: this.opts.src, seq: this.seq + 1, ts: Date.now() } as BusMessage;
    const problem = this.codec.check(full);
    if (problem) {
      this.log.error({ topic, problem }, 'refusing to push an invalid message');
      return false;
    }
    this.seq++;
    return this.queue.enqueue(this.codec.encode(topic, full));
  }

  get stats() {
    return { seq: this.seq, sent: this.queue.sent, queued: this.queue.length, dropped: this.queue.dropped };
  }

  async close(drainMs = 2000): Promise<void> {
    await this.queue.drain(drainMs);
    this.sock.close();
  }
}

export interface PullerOptions {
  endpoint: string;
  onMessage: (msg: BusMessage, topic: string) => void | Promise<void>;
  /** Malformed frames (e.g. to a dead-letter table). */
  onInvalid?: (frame: InvalidFrame) => void;
  limits?: Partial<CodecLimits>;
  log?: BusLogger;
}

/** PULL socket (binds); handlers run one message at a time, in arrival order. */
export class BusPuller {
  private readonly sock: Pull;
  private readonly codec: Codec;
  private readonly tracker: InvalidFrameTracker;
  private readonly log: BusLogger;
  private loop?: Promise<void>;
  private stopping = false;
  received = 0;

  constructor(private readonly opts: PullerOptions) {
    this.log = opts.log ?? silentLogger;
    this.codec = new Codec(opts.limits);
    this.sock = new Pull({ maxMessageSize: this.codec.limits.maxPayloadBytes + 1024, linger: 0 });
    this.tracker = new InvalidFrameTracker(opts.endpoint, this.log);
  }

  async start(): Promise<void> {
    prepareEndpoint(this.opts.endpoint);
    await this.sock.bind(this.opts.endpoint);
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopping) {
        const frames = await this.sock.receive();
        const res = this.codec.decode(frames);
        if (!res.ok) {
          const frame: InvalidFrame = { code: res.code, reason: res.reason, topic: res.topic, frames };
          this.tracker.record(frame);
          this.opts.onInvalid?.(frame);
          continue;
        }
        this.received++;
        try {
          await this.opts.onMessage(res.msg, res.topic);
        } catch (err) {
          this.log.error({ err, topic: res.topic }, 'pull handler failed');
          this.tracker.record({ code: 'handler', reason: (err as Error).message, topic: res.topic, frames });
          this.opts.onInvalid?.({ code: 'handler', reason: (err as Error).message, topic: res.topic, frames });
        }
      }
    } catch (err) {
      if (!this.sock.closed && !this.stopping) this.log.error({ err }, 'puller loop ended');
    }
  }

  get stats() {
    return { received: this.received, invalid: this.tracker.total, invalid_by_code: this.tracker.snapshot() };
  }

  /** Stops intake: the message being handled finishes; nothing more is taken. */
  async close(): Promise<void> {
    this.stopping = true;
    this.sock.close();
    await this.loop;
  }
}
